"""The package as a user installs it: a wheel built from the sources, installed in a fresh venv, run elsewhere."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from src import __version__

from .closure import closure, link, wheel_requirements
from .conftest import ROOT, install_wheel
from .conftest import run_outside as _run

pytestmark = pytest.mark.install

# pydantic pins its own pydantic-core exactly (src/config.py imports a type from it): declaring it too could only
# conflict.
BROUGHT_BY_A_DECLARED_PACKAGE = {"pydantic-core"}


def _normal(name: str) -> str:
    """A distribution name as PEP 503 compares them (PyYAML, pyyaml and py-yaml are one)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_distributions(files: list[Path], guarded: bool) -> dict[str, str]:
    """The third-party distributions these files import, each with one importing file.

    Imports at the top and inside functions count; ``guarded`` picks those inside a ``try`` that catches
    ImportError (the report command's check for its extra) instead of the others.
    """
    owners = packages_distributions()
    found: dict[str, str] = {}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_try = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.Try)
            and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers
            )
            for statement in node.body
            for inner in ast.walk(statement)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            if (id(node) in in_try) != guarded:
                continue
            for module in modules:
                top = module.partition(".")[0]
                if top in sys.stdlib_module_names or top in ("__future__", "src"):
                    continue
                assert top in owners, f"{path}: imports {top}, which no installed distribution provides"
                for distribution in owners[top]:
                    found.setdefault(_normal(distribution), str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_a_declared_dependency() -> None:
    """What src imports is in [project].dependencies; src/report may use the report extra, src/spark.py the spark one.

    A missing one installs fine and fails on first use (holidays did: `No module named 'holidays'`).
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name_of = re.compile(r"^[A-Za-z0-9._-]+")
    declared = {_normal(name_of.match(r).group()) for r in project["dependencies"]}
    report = declared | {_normal(name_of.match(r).group()) for r in project["optional-dependencies"]["report"]}
    spark = declared | {_normal(name_of.match(r).group()) for r in project["optional-dependencies"]["spark"]}
    code = sorted((ROOT / "src").rglob("*.py"))
    in_report = [p for p in code if p.relative_to(ROOT / "src").parts[0] == "report"]
    in_spark = [ROOT / "src" / "spark.py"]  # only users of Spark import it (the [spark] extra)
    outside = [p for p in code if p not in in_report and p not in in_spark]
    checks = [
        (_imported_distributions(in_spark, guarded=False), spark),
        (_imported_distributions(outside, guarded=False), declared),
        # The report command checks its extra is there before importing src/report.
        (_imported_distributions(outside, guarded=True), report),
        (_imported_distributions(in_report, guarded=False) | _imported_distributions(in_report, guarded=True), report),
    ]
    for imported, allowed in checks:
        for distribution, where in imported.items():
            assert distribution in allowed | BROUGHT_BY_A_DECLARED_PACKAGE, f"{where} imports {distribution}"


def test_the_command_runs_from_another_folder_and_writes_what_the_checkout_writes(
    installed: Path, tmp_path: Path
) -> None:
    """`searchflow-events` outside the checkout: the same bytes as `python -m src.main` in it, and a manifest."""
    args = ["--count", "3000", "--seed", "3", "--end", "2026-01-01", "--summary-json"]
    run = _run([str(installed / "searchflow-events"), *args, "--output-dir", "out"], tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["total"] == 3000 and summary["manifest"].endswith("manifest.json")
    here = _run([sys.executable, "-m", "src.main", *args, "--output-dir", str(tmp_path / "checkout")], ROOT)
    assert here.returncode == 0, here.stderr
    for name in ("search_events.jsonl", "click_events.jsonl", "conversion_events.jsonl"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "checkout" / name).read_bytes(), name
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_version_and_report_from_the_installed_command(installed: Path, report_extra: Path, tmp_path: Path) -> None:
    """`--version` names the package's version; `report` runs with the [report] extra, says how to get it without."""
    command = str(installed / "searchflow-events")
    version = _run([command, "--version"], tmp_path)
    assert version.stdout.strip() == f"searchflow-events {__version__}"
    made = _run([command, "--count", "2000", "--seed", "1", "--output-dir", "out", "-q"], tmp_path)
    assert made.returncode == 0, made.stderr
    without = _run([command, "report", "--input", "out"], tmp_path)
    assert without.returncode != 0
    assert "needs duckdb, which is not installed; pip install 'searchflow-event-generator[report]'" in without.stderr
    report = _run(
        [command, "report", "--input", "out", "--out", "new/page.html"], tmp_path, env={"PYTHONPATH": str(report_extra)}
    )
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "new" / "page.html").is_file() and (tmp_path / "new" / "page.json").is_file()


@pytest.mark.parametrize(
    ("left_out", "args"),
    [("click", ["--version"]), ("holidays", ["--count", "100", "--seed", "1", "--output-dir", "out", "-q"])],
)
def test_a_dependency_left_out_of_the_venv_is_missing_there(
    wheel: Path, tmp_path: Path, left_out: str, args: list[str]
) -> None:
    """The venv sees only the links, not the test environment: without one declared dependency the command fails.

    (Without holidays this is what `pip install .` gave before holidays was declared.)
    """
    needed = closure(wheel_requirements(wheel))
    del needed[left_out]
    link(needed.values(), tmp_path / "dependencies")
    command = install_wheel(wheel, tmp_path / "venv", tmp_path / "dependencies") / "searchflow-events"
    run = _run([str(command), *args], tmp_path)
    assert run.returncode != 0
    assert f"ModuleNotFoundError: No module named '{left_out}'" in run.stderr, run.stderr[-2000:]


def test_the_wheel_holds_the_src_package_its_data_and_the_command(wheel: Path) -> None:
    """Only `src` (code, reference data, py.typed) and the dist-info; no byte code; the console script."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = wheel.name.split("-py3")[0] + ".dist-info"
        assert {name.split("/")[0] for name in names} == {"src", info}
        assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
        on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "src").rglob("*") if p.is_file()}
        assert {"src/py.typed", "src/data/README.md", "src/data/cities.csv.gz", "src/data/countries.csv"} <= set(names)
        assert {name for name in on_disk if name.endswith(".py")} <= set(names)
        assert {name for name in names if name.startswith("src/") and not name.endswith(".py")} == {
            "src/py.typed",
            "src/data/README.md",
            *(name for name in on_disk if name.startswith("src/data/") and name.endswith((".csv", ".csv.gz"))),
        }
        assert "searchflow-events = src.main:main" in archive.read(f"{info}/entry_points.txt").decode()
