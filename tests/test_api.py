"""The library twin of the command: `generate(Settings(...))` writes what the command writes, and says where."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from src import Settings, SettingsError, generate
from src.models import EVENT_TYPES, file_name

from .conftest import ROOT, run_cli, run_outside

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _bytes(directory: Path) -> dict[str, bytes]:
    names = [file_name(t) for t in EVENT_TYPES] + ["users.jsonl", "items.jsonl"]
    return {name: (directory / name).read_bytes() for name in names}


def test_generate_writes_what_the_command_writes_manifest_included(tmp_path: Path) -> None:
    """Same settings: the same JSONL bytes (answer keys too) and manifest (but its write time); counts and paths."""
    args = {"event_count": 5000, "seed": 11, "window_end": "2026-02-01", "overwrite": True}
    result = generate(Settings(output_dir=tmp_path / "lib", **args))
    cli = run_cli("--count", "5000", "--seed", "11", "--end", "2026-02-01", "--overwrite",
                  "--output-dir", str(tmp_path / "cli"))  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert _bytes(tmp_path / "lib") == _bytes(tmp_path / "cli")
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("lib", "cli")]
    for manifest in manifests:
        manifest.pop("written_at")
        for run in manifest["runs"]:
            run.pop("written_at")
        manifest["settings"].pop("OUTPUT_DIR")
    assert manifests[0] == manifests[1]
    assert result.total == 5000 and sum(result.counts.values()) == 5000
    assert result.files == {t: tmp_path / "lib" / file_name(t) for t in EVENT_TYPES}
    assert result.manifest == tmp_path / "lib" / "manifest.json"
    assert (result.users, result.items) == (tmp_path / "lib" / "users.jsonl", tmp_path / "lib" / "items.jsonl")
    assert result.summary()["counts"] == result.counts and result.failure is None


def test_generate_appends_like_the_command_unless_overwrite(tmp_path: Path) -> None:
    """A second call adds its events and a second run to the manifest, as a second command run does."""
    generate(output_dir=tmp_path, event_count=1000, seed=1, window_end="2026-01-01")
    again = generate(output_dir=tmp_path, event_count=500, seed=2, window_end="2026-01-01")
    manifest = json.loads(again.manifest.read_text())
    assert [run["seed"] for run in manifest["runs"]] == [1, 2]
    assert sum(manifest["totals_in_files"].values()) == 1500


def test_a_bad_override_is_a_settings_error_of_one_line(tmp_path: Path) -> None:
    """Keyword overrides are validated as flags are: SettingsError, one line naming the setting."""
    with pytest.raises(SettingsError, match=r"^CLICK_THROUGH_RATE=2: must be a probability between 0 and 1$"):
        generate(output_dir=tmp_path, click_through_rate=2)
    assert list(tmp_path.iterdir()) == []


def test_importing_src_is_light() -> None:
    """`import src` loads neither polars nor the engine: names come on first use, so --help stays fast."""
    code = "import sys, src; print(sorted(m for m in ('polars', 'numpy', 'src.api') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def _readme_snippet() -> str:
    section = README.split("## Library", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "no python snippet under ## Library"
    return found.group(1)


def test_the_readme_snippet_runs_from_another_folder(installed: Path, tmp_path: Path) -> None:
    """The README's library snippet, run by the installed package's python in an empty folder, writes its files."""
    snippet = _readme_snippet()
    assert "from src import Settings, generate" in snippet
    (tmp_path / "snippet.py").write_text(snippet, encoding="utf-8")
    first = run_outside([str(installed / "python"), "snippet.py"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "out" / "manifest.json").is_file()
    lines = sum(len((tmp_path / "out" / file_name(t)).read_bytes().splitlines()) for t in EVENT_TYPES)
    assert lines == 100_000
    second = run_outside([str(installed / "python"), "snippet.py"], tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[0] == first.stdout.splitlines()[0]  # the same counts: no append on a rerun
    assert sum(len((tmp_path / "out" / file_name(t)).read_bytes().splitlines()) for t in EVENT_TYPES) == 100_000
