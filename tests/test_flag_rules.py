"""Which flags apply to which run: errors for the other mode's flags, warnings for file flags without files."""

from __future__ import annotations

import pytest

from src.config import SettingsError, load_settings
from src.flag_rules import check_flags, check_summary_json


def test_flags_of_the_mode_pass_without_a_warning() -> None:
    """--count in batch and --duration in continuous are what those modes take."""
    assert check_flags(load_settings({"event_count": 5}), {"event_count": 5}) == []
    continuous = load_settings({"mode": "continuous", "duration": 3})
    assert check_flags(continuous, {"mode": "continuous", "duration": 3}) == []


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"mode": "continuous", "window_end": "2026-01-01"}, "--end=2026-01-01"),
        ({"mode": "batch", "duration": 9}, "--duration=9"),
    ],
)
def test_a_flag_of_the_other_mode_is_an_error_naming_it(overrides: dict[str, object], flag: str) -> None:
    """The message starts with the flag and its value, and says which mode the run has."""
    with pytest.raises(SettingsError, match=rf"^{flag}: applies to"):
        check_flags(load_settings(overrides), overrides)


def test_a_setting_from_the_environment_is_not_a_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """EVENT_COUNT in the environment of a continuous run is not an error: only typed flags are checked."""
    monkeypatch.setenv("EVENT_COUNT", "50")
    assert check_flags(load_settings({"mode": "continuous"}), {"mode": "continuous"}) == []


def test_file_flags_warn_when_no_files_are_written() -> None:
    """--overwrite with --output redis, --impressions with stdout: a warning naming it."""
    warnings = check_flags(load_settings({"output": "redis", "overwrite": True}), {"overwrite": True})
    hint = "(--output file, parquet or both writes them)"
    assert warnings == [f"--overwrite: ignored, output redis writes no files {hint}"]
    warnings = check_flags(load_settings({"output": "stdout", "impressions": True}), {"impressions": True})
    assert warnings == [f"--impressions: ignored, output stdout writes no files {hint}"]


def test_summary_json_refuses_stdout_events() -> None:
    """--summary-json and --output stdout would share standard output."""
    check_summary_json(load_settings({"output": "both"}))
    with pytest.raises(SettingsError, match=r"^--summary-json: "):
        check_summary_json(load_settings({"output": "console"}))
