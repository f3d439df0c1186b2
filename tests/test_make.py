"""`make redis-up` and `make redis-down` against a port another Redis holds: they touch only their own server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, RedisServer, _free_port


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture
def other_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis that is not make's, holding a port."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_up_fails_when_the_port_is_taken_and_redis_down_leaves_the_other_server(
    other_redis: RedisServer,
) -> None:
    """redis-up on a taken port exits non-zero and says so; redis-down then leaves that server running."""
    up = _make("redis-up", f"REDIS_PORT={other_redis.port}")
    assert up.returncode != 0
    assert "did not start" in up.stderr
    down = _make("redis-down", f"REDIS_PORT={other_redis.port}")
    assert down.returncode == 0
    assert other_redis.client().ping()


def test_redis_up_then_down_on_a_free_port() -> None:
    """redis-up starts a server that answers; redis-down stops it by its PID."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = _free_port()
    up = _make("redis-up", f"REDIS_PORT={port}")
    try:
        assert up.returncode == 0, up.stderr
        ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, timeout=10)
        assert ping.stdout.strip() == "PONG"
    finally:
        down = _make("redis-down", f"REDIS_PORT={port}")
    assert "stopped redis-server" in down.stdout
    ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, timeout=10)
    assert ping.stdout.strip() != "PONG"
