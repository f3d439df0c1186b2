"""The docs match the code: settings table, flags, commands, Docker and requirements."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from src.config import Settings, settings_table
from src.main import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_settings_table_matches_the_settings_object() -> None:
    """The README's settings table is exactly what config.settings_table() renders."""
    assert settings_table() in README


def test_every_flag_is_documented() -> None:
    """Each command-line option of the CLI and of its commands appears in the README."""
    commands = [cli, *cli.commands.values()]
    assert {"generate", "report"} <= set(cli.commands)
    for command in commands:
        for param in command.params:
            for option in param.opts:
                if option.startswith("--"):
                    assert f"`{option}" in README, (command.name, option)


def test_readme_gives_the_two_set_up_commands_and_they_exist() -> None:
    """`make generate` and `make test` are in the README and are Makefile targets; CI calls `make test`."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("generate", "test", "bench"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_requirements_are_pinned_and_installed() -> None:
    """requirements.txt pins exact versions, the ones this environment runs, so Docker gets the same."""
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            assert pinned, f"{name} is not pinned"
            assert version(name) == pinned, name


def test_dockerfile_installs_requirements_and_runs_unprivileged() -> None:
    """The image installs requirements.txt, copies the package and schemas, and runs as a non-root user on /data/raw."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert "COPY src ./src" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    assert "OUTPUT_DIR=/data/raw" in dockerfile and 'VOLUME ["/data/raw"]' in dockerfile
    assert "MPLCONFIGDIR=/tmp/matplotlib" in dockerfile  # matplotlib needs a writable folder under --user
    # Flags follow `docker run IMAGE`: the entry point is the command, the CMD only its default flags.
    assert re.search(r'^ENTRYPOINT \["python", "-m", "src.main"\]$', dockerfile, re.MULTILINE)
    cmd = json.loads(re.search(r"^CMD (.*)$", dockerfile, re.MULTILINE).group(1))
    flags = {option for param in cli.params for option in param.opts}
    assert all(word in flags for word in cmd if word.startswith("-")) and "python" not in cmd


def test_performance_doc_has_the_benchmark_command_and_figures() -> None:
    """docs/PERFORMANCE.md names the command and records events/s with the core count."""
    text = (ROOT / "docs" / "PERFORMANCE.md").read_text(encoding="utf-8")
    assert "make bench" in text
    assert re.search(r"[\d,]+ events/s", text)
    assert "cores" in text


def test_compose_runs_the_generator_continuously_into_its_redis() -> None:
    """docker-compose.yml: Redis and the generator, built here, streaming to it with valid flags and settings."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    generator, redis = compose["services"]["event-generator"], compose["services"]["redis"]
    assert generator["build"] == "."
    assert redis["image"].startswith("redis:7")
    command = generator["command"]  # flags of the image's entry point, python -m src.main
    assert command[command.index("--mode") + 1] == "continuous"
    assert command[command.index("--output") + 1] == "redis"
    flags = {option for param in cli.params for option in param.opts}
    assert all(word in flags for word in command if word.startswith("-")) and "python" not in command
    assert "ports" not in redis  # a local Redis on the host's 6379 does not clash
    variables = {name.upper() for name in Settings.model_fields}
    assert set(generator["environment"]) <= variables
    assert generator["environment"]["REDIS_HOST"] == "redis"
    assert any(volume.endswith(":/data/raw") for volume in generator["volumes"])
    assert "generator-data" in compose["volumes"]


def test_makefile_has_the_redis_targets() -> None:
    """`make stream`, `make redis-up`, `make redis-down` and `make bench-redis` exist."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("stream", "redis-up", "redis-down", "bench-redis"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target


def _named_files(text: str) -> set[str]:
    """Paths of repository files the text names: link targets, and words that start at a top-level entry."""
    tops = {p.name for p in ROOT.iterdir() if p.name not in (".git", ".venv", "data") and not p.name.startswith(".")}
    tops |= {".ci"}
    names = {target for target in re.findall(r"\]\(([^)#\s]+)", text) if "://" not in target}
    for word in re.findall(r"(?<![\w/.$-])(\.{0,2}/?[\w.-]+(?:/[\w.*-]+)+|[\w-]+\.(?:md|py|toml|yml|txt))", text):
        first = word.lstrip("./").split("/")[0]
        if word.startswith("../") or first in tops:
            names.add(word.rstrip("."))
    return names


def test_every_repository_file_the_readme_names_exists() -> None:
    """A file or folder of this repository named in the README (a link, or a path such as docs/REALISM.md) exists."""
    names = _named_files(README)
    assert "docs/REALISM.md" in names and "src/data/README.md" in names  # the check sees the README's paths
    missing = [name for name in sorted(names) if not list(ROOT.glob(name.lstrip("/")))]
    assert missing == []


def test_the_file_check_catches_a_missing_file() -> None:
    """The check above fails for a path that is not in the repository."""
    names = _named_files("Sources are in `../shared/spec/REALISM.md` and [the notes](docs/NOTES.md).")
    assert {"../shared/spec/REALISM.md", "docs/NOTES.md"} <= names
    assert not (ROOT / "docs" / "NOTES.md").exists()


def test_realism_reference_is_in_the_repository_with_sources() -> None:
    """docs/REALISM.md holds the published figures with their sources and confidence column."""
    text = (ROOT / "docs" / "REALISM.md").read_text(encoding="utf-8")
    assert "| source | conf |" in text and "Sistrix 2020" in text


def test_docker_compose_parses_the_compose_file(tmp_path: Path) -> None:
    """Debian's docker-compose reads docker-compose.yml without error and sees both services, no host port."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's docker-compose)")
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    import yaml

    parsed = yaml.safe_load(result.stdout)
    assert set(parsed["services"]) == {"redis", "event-generator"}
    assert "ports" not in parsed["services"]["redis"]


def test_make_help_lists_every_documented_target() -> None:
    """`make help` prints each target that has a ## comment, with its text."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    documented = re.findall(r"^## .*\n([a-z][a-z-]*):", makefile, re.MULTILINE)
    result = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert listed == documented
    assert {"generate", "test", "redis-up", "redis-down", "wheel", "help"} <= set(listed)
