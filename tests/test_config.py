"""Settings from flags, SEARCHFLOW_ and plain variables, and a config file, in the documented order."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.config import SettingsError, load_settings

from .conftest import run_cli


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    path = tmp_path / "run.toml"
    path.write_text('EVENT_COUNT = 300\nseed = 4\nwindow_end = "2026-01-01"\n', encoding="utf-8")
    return path


def test_order_is_flag_prefixed_plain_config_default(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each layer wins over the ones below it."""
    assert load_settings({}, toml).event_count == 300
    monkeypatch.setenv("EVENT_COUNT", "400")
    assert load_settings({}, toml).event_count == 400
    monkeypatch.setenv("SEARCHFLOW_EVENT_COUNT", "500")
    assert load_settings({}, toml).event_count == 500
    assert load_settings({"event_count": 600}, toml).event_count == 600
    assert load_settings({}, toml).seed == 4  # from the file, untouched by the environment
    assert load_settings({}).page_size == 10  # the default


def test_searchflow_config_names_the_file(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SEARCHFLOW_CONFIG is read when --config is not given."""
    monkeypatch.setenv("SEARCHFLOW_CONFIG", str(toml))
    assert load_settings({}).event_count == 300


def test_env_file(tmp_path: Path) -> None:
    """A file not ending in .toml is read as .env lines, in any case."""
    path = tmp_path / "run.env"
    path.write_text("event_count=70\nCLICK_THROUGH_RATE=0.2\n", encoding="utf-8")
    settings = load_settings({}, path)
    assert (settings.event_count, settings.click_through_rate) == (70, 0.2)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "seed = 'x'\n", "bad.toml: SEED=x: must be a whole number"),
        ("bad.env", "MODE=sometimes\n", "bad.env: MODE=sometimes: must be one of 'batch' or 'continuous'"),
        ("extra.toml", "colour = 'red'\n", "extra.toml: COLOUR=red: not a setting"),
        ("broken.toml", "seed = \n", "--config="),
    ],
)
def test_a_bad_config_file_is_one_line_naming_it(tmp_path: Path, name: str, text: str, message: str) -> None:
    """Bad values, unknown names and bad syntax name the file (and the setting)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as raised:
        load_settings({}, path)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_prefixed_variable_errors_name_the_prefixed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad SEARCHFLOW_MODE is named as such, even with a good MODE beside it."""
    monkeypatch.setenv("MODE", "batch")
    monkeypatch.setenv("SEARCHFLOW_MODE", "production")
    with pytest.raises(SettingsError, match=r"^SEARCHFLOW_MODE=production: must be one of"):
        load_settings({})


def test_prefixed_names_keep_generic_variables_out(tmp_path: Path) -> None:
    """An unrelated MODE=production is overridden by SEARCHFLOW_MODE=batch: the run goes ahead."""
    env = {"OUTPUT_DIR": str(tmp_path), "MODE": "production", "SEARCHFLOW_MODE": "batch"}
    result = run_cli("--count", "100", "-q", env=env)
    assert result.returncode == 0, result.stderr


def test_the_cli_reads_the_config_file(toml: Path, tmp_path: Path) -> None:
    """`--config run.toml` sets the count; a flag still wins."""
    out = tmp_path / "out"
    result = run_cli("--config", str(toml), "--summary-json", "-q", env={"OUTPUT_DIR": str(out)})
    assert result.returncode == 0, result.stderr
    assert '"total": 300' in result.stdout
    result = run_cli("--config", str(toml), "--count", "50", "--summary-json", "-q", "--overwrite",
                     env={"OUTPUT_DIR": str(out)})  # fmt: skip
    assert '"total": 50' in result.stdout
