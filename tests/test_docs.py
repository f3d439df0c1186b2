"""The docs match the code: settings table, flags, commands, Docker and requirements."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from src.config import Settings, settings_table
from src.main import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_settings_table_matches_the_settings_object() -> None:
    """The README's settings table is exactly what config.settings_table() renders."""
    assert settings_table() in README


def test_every_flag_is_documented() -> None:
    """Each command-line option of the CLI appears in the README."""
    for param in cli.params:
        for option in param.opts:
            if option.startswith("--"):
                assert f"`{option}" in README, option


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
    assert "src.main" in dockerfile


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
    command = generator["command"]
    assert command[:3] == ["python", "-m", "src.main"]
    assert command[command.index("--mode") + 1] == "continuous"
    assert command[command.index("--output") + 1] == "redis"
    flags = {option for param in cli.params for option in param.opts}
    assert all(word in flags for word in command[3:] if word.startswith("-"))
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
