"""Redis Streams output against real redis-server processes: format, counts, outages, secrets."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from src.config import load_settings
from src.generator import EventGenerator
from src.models import EVENT_TYPES, file_name, stream_names
from src.output.encoding import Encoder
from src.publishers import RedisPublisher, RedisUnavailable, redis_client

from .conftest import RedisServer, run_cli
from .test_live import read_events, start_cli, summary_counts

STREAMS = {t: f"searchflow:events:{t}" for t in EVENT_TYPES}


def stream_entries(server: RedisServer, prefix: str = "searchflow:events") -> dict[str, list[dict[bytes, bytes]]]:
    client = server.client()
    return {t: [fields for _, fields in client.xrange(f"{prefix}:{t}")] for t in EVENT_TYPES}


def check_exactly_once(server: RedisServer, directory: Path, stderr: str, prefix: str = "searchflow:events") -> None:
    """Each stream holds every event of the summary once, the same as the file beside it, in order."""
    entries = stream_entries(server, prefix)
    counts = summary_counts(stderr)
    for event_type in EVENT_TYPES:
        lines = (directory / file_name(event_type)).read_bytes().splitlines()
        ids = [fields[b"event_id"] for fields in entries[event_type]]
        assert len(entries[event_type]) == counts[event_type], event_type
        assert len(set(ids)) == len(ids), f"duplicates in {event_type}"
        assert [fields[b"data"] for fields in entries[event_type]] == lines


def kill_generator_connections(server: RedisServer, times: int = 2) -> list[int]:
    """CLIENT KILL the generator's connections ``times`` times, 1.5 s apart; how many each time."""
    admin = server.client()
    killed = []
    for _ in range(times):
        time.sleep(1.5)
        # Kill as soon as the generator is connected (again): it connects once its first minute of
        # traffic is drawn, and reconnects at its next write, whatever the machine's speed.
        deadline = time.monotonic() + 15
        names: list[dict] = []
        while not names and time.monotonic() < deadline:
            names = [c for c in admin.client_list() if c.get("name") == "searchflow-generator"]
            time.sleep(0.05)
        for client in names:
            admin.client_kill_filter(_id=client["id"])
        killed.append(len(names))
    return killed


def test_batch_to_redis_writes_the_file_lines_as_entries(redis_server: RedisServer, tmp_path: Path) -> None:
    """`--output both`: one stream per type; each entry's data is the file's line, with event_id and event_type."""
    env = {"REDIS_PORT": str(redis_server.port), "OUTPUT_DIR": str(tmp_path), "STREAM_MAXLEN": "0"}
    result = run_cli("--count", "20000", "--seed", "2", "--output", "both", env=env)
    assert result.returncode == 0, result.stderr
    check_exactly_once(redis_server, tmp_path, result.stderr)
    entry = stream_entries(redis_server)["click"][0]
    assert entry[b"event_type"] == b"click"
    assert entry[b"data"].startswith(b'{"event_id":"' + entry[b"event_id"] + b'"')


def test_a_prefix_outside_ascii_names_the_streams(redis_server: RedisServer, tmp_path: Path) -> None:
    """Stream names are sent with their length in bytes: a prefix with accents and a space still lands whole."""
    prefix = "flux d'événements"
    env = {"REDIS_PORT": str(redis_server.port), "OUTPUT_DIR": str(tmp_path), "STREAM_PREFIX": prefix}
    result = run_cli("--count", "3000", "--seed", "4", "--output", "both", env=env)
    assert result.returncode == 0, result.stderr
    check_exactly_once(redis_server, tmp_path, result.stderr, prefix)
    assert sorted(redis_server.client().keys()) == sorted(f"{prefix}:{t}".encode() for t in EVENT_TYPES)


def test_streams_are_trimmed_to_about_maxlen(redis_server: RedisServer) -> None:
    """STREAM_MAXLEN caps each stream approximately (MAXLEN ~)."""
    env = {"REDIS_PORT": str(redis_server.port), "STREAM_MAXLEN": "1000", "STREAM_PREFIX": "t"}
    assert run_cli("--count", "20000", "--output", "redis", env=env).returncode == 0
    length = redis_server.client().xlen("t:search")
    assert 1000 <= length < 1500


def test_unreachable_redis_is_one_line_naming_host_and_port(tmp_path: Path) -> None:
    """Nothing listening: exit 2 before generating, one line with host and port, no files."""
    result = run_cli("--output", "both", env={"REDIS_PORT": "1", "OUTPUT_DIR": str(tmp_path / "out")})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "localhost:1" in result.stderr
    assert not (tmp_path / "out").exists()


def test_password_is_never_printed(tmp_path: Path) -> None:
    """A password in REDIS_URL or REDIS_PASSWORD appears in no message or summary."""
    server = RedisServer(tmp_path, "--requirepass", "s3cr3t-pw")
    server.start()
    try:
        env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(server.port), "REDIS_PASSWORD": "s3cr3t-pw"}
        ok = run_cli("--count", "1000", "--output", "redis", env=env)
        assert ok.returncode == 0, ok.stderr
        wrong = run_cli("--output", "redis", env={**env, "REDIS_PASSWORD": "wrong-pw"})
        bad_url = run_cli("--output", "redis", env={"REDIS_URL": "redis://:s3cr3t-pw@127.0.0.1:1/0"})
        bad_scheme = run_cli("--output", "redis", env={"REDIS_URL": "http://:s3cr3t-pw@127.0.0.1:1/0"})
        at_sign = run_cli("--output", "redis", env={"REDIS_URL": "redis://u:s3cr3t-pw@x@127.0.0.1:1"})
        in_query = run_cli("--output", "redis", env={"REDIS_URL": "redis://127.0.0.1:1?password=s3cr3t-pw"})
        slash = run_cli("--output", "redis", env={"REDIS_URL": "redis://:s3cr3t/pw@127.0.0.1:1"})
    finally:
        server.stop()
    assert "REDIS_PASSWORD" in wrong.stderr
    for result in (ok, wrong, bad_url, bad_scheme, at_sign, in_query, slash):
        assert "s3cr3t" not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr
        assert "s3cr3t-pw" not in result.stderr + result.stdout
        assert "wrong-pw" not in result.stderr
    assert wrong.returncode == 2 and bad_url.returncode == 2 and bad_scheme.returncode == 2
    assert "127.0.0.1:1" in bad_url.stderr


def _until_streaming(redis_server: RedisServer, stream: str, proc: subprocess.Popen[str]) -> None:
    """Wait until the run has written to ``stream``: its start-up (imports, warm-up) takes seconds on a slow machine."""
    deadline = time.monotonic() + 60
    while not redis_server.client().xlen(stream):
        assert proc.poll() is None and time.monotonic() < deadline, "the run never wrote to Redis"
        time.sleep(0.05)


def test_sigterm_mid_run_delivers_every_counted_event_once(redis_server: RedisServer, tmp_path: Path) -> None:
    """SIGTERM at a random moment: exit 0; files and streams hold exactly the summary's events."""
    env = {"REDIS_PORT": str(redis_server.port), "OUTPUT_DIR": str(tmp_path), "STREAM_MAXLEN": "0"}
    proc = start_cli("--mode", "continuous", "--rate", "5000", "--output", "both", env=env)
    _until_streaming(redis_server, STREAMS["search"], proc)
    time.sleep(2 * (time.time() % 1))
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    check_exactly_once(redis_server, tmp_path, stderr)


def test_killed_connections_lose_and_double_nothing(redis_server: RedisServer, tmp_path: Path) -> None:
    """CLIENT KILL of the generator's connections, twice, mid-run: every event once in each stream."""
    env = {"REDIS_PORT": str(redis_server.port), "OUTPUT_DIR": str(tmp_path), "STREAM_MAXLEN": "0"}
    proc = start_cli("--mode", "continuous", "--rate", "5000", "--duration", "8", "--output", "both", env=env)
    killed = kill_generator_connections(redis_server)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert all(n >= 1 for n in killed), killed
    assert "reconnected" in stderr
    check_exactly_once(redis_server, tmp_path, stderr)


def test_redis_crash_and_restart_loses_and_doubles_nothing(durable_redis: RedisServer, tmp_path: Path) -> None:
    """redis-server with appendfsync always, SIGKILLed mid-run and restarted 5 s later on the same port:
    with a small buffer the run pauses, then every event is in each stream exactly once."""
    env = {
        "REDIS_PORT": str(durable_redis.port),
        "OUTPUT_DIR": str(tmp_path),
        "STREAM_MAXLEN": "0",
        "REDIS_BUFFER_EVENTS": "2000",
    }
    proc = start_cli("--mode", "continuous", "--rate", "2000", "--duration", "12", "--output", "both", env=env)
    _until_streaming(durable_redis, STREAMS["search"], proc)

    def crash_and_restart() -> None:
        time.sleep(1)
        durable_redis.kill()
        time.sleep(5)
        durable_redis.start()

    outage = threading.Thread(target=crash_and_restart)
    outage.start()
    _, stderr = proc.communicate(timeout=120)
    outage.join()
    assert proc.returncode == 0, stderr
    assert "reconnected" in stderr
    check_exactly_once(durable_redis, tmp_path, stderr)
    assert sum(summary_counts(stderr).values()) == pytest.approx(24_000, rel=0.02)
    events = read_events(tmp_path)
    assert len({e["event_id"] for v in events.values() for e in v}) == sum(len(v) for v in events.values())


def test_a_key_of_another_type_is_refused_before_the_run(redis_server: RedisServer) -> None:
    """A stream name used by another kind of key: one line naming STREAM_PREFIX, exit 2, nothing written."""
    redis_server.client().set("x:click", "not a stream")
    result = run_cli(
        "--count", "1000", "--output", "redis", env={"REDIS_PORT": str(redis_server.port), "STREAM_PREFIX": "x"}
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: STREAM_PREFIX=x: key x:click holds a string, not a stream"]
    assert redis_server.client().xlen("x:search") == 0


def test_an_error_reply_mid_run_ends_the_run_with_one_line(redis_server: RedisServer) -> None:
    """A stream replaced by another kind of key during a run: exit 1, a one-line error, no hang, no traceback."""
    env = {"REDIS_PORT": str(redis_server.port), "STREAM_PREFIX": "y"}
    proc = start_cli("--mode", "continuous", "--rate", "2000", "--duration", "20", "--output", "redis", env=env)
    _until_streaming(redis_server, "y:search", proc)
    client = redis_server.client()
    client.delete("y:click")
    client.set("y:click", "oops")
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "y:click holds a string" in errors[0] and "not delivered" in errors[0]


def test_a_stream_refusing_mid_run_is_counted_exactly(redis_server: RedisServer) -> None:
    """A stream replaced by a string with two chunks in flight: written counts exactly what each stream holds.

    The other streams' events of both transactions are in Redis (EXEC runs every command it can),
    so they count as written; the refused ones, and every chunk after, as not delivered.
    """
    settings = load_settings({"seed": 5, "output": "redis", "stream_prefix": "p"})
    generator = EventGenerator(settings, 5)
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC)
    encoder = Encoder(generator.catalogue, generator.cities, streams=stream_names("p"), lines=False)
    batch = encoder.encode_all(next(generator.batch(20_000, start, end)))
    client, where = redis_client(None, "127.0.0.1", redis_server.port, None, 0)
    publisher = RedisPublisher(client, where, prefix="p", chunk_events=1000)
    server = redis_server.client()
    server.set("p:click", "not a stream")
    # Hold the publisher's commands until every chunk is queued, so two are in flight when the first fails.
    server.execute_command("CLIENT", "PAUSE", "1000")
    publisher.write(batch)
    with pytest.raises(RedisUnavailable) as failure:
        publisher.close()
    message = str(failure.value)
    assert "key p:click holds a string, not a stream" in message
    lengths = {"search": server.xlen("p:search"), "click": 0, "conversion": server.xlen("p:conversion")}
    assert publisher.written == lengths
    assert 1000 < lengths["search"] < 2000  # the first two chunks' search events, no more
    not_delivered = int(message.split("; ")[-1].split()[0].replace(",", ""))
    assert not_delivered == len(batch) - sum(lengths.values())


def test_a_write_refused_before_it_runs_ends_the_run_with_one_line(redis_server: RedisServer) -> None:
    """Redis out of memory mid-run refuses each XADD as it is queued: the transaction is discarded, exit 1."""
    env = {"REDIS_PORT": str(redis_server.port)}
    proc = start_cli("--mode", "continuous", "--rate", "2000", "--duration", "20", "--output", "redis", env=env)
    _until_streaming(redis_server, STREAMS["search"], proc)
    redis_server.client().config_set("maxmemory", 1)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "used memory > 'maxmemory'; " in errors[0] and "not delivered" in errors[0]


def test_redis_gone_for_good_gives_up_after_the_retry_time(redis_server: RedisServer, tmp_path: Path) -> None:
    """Redis killed for good: after REDIS_RETRY_SECONDS the run stops, says how many events were lost, exit 1."""
    env = {"REDIS_PORT": str(redis_server.port), "REDIS_RETRY_SECONDS": "3", "OUTPUT_DIR": str(tmp_path)}
    proc = start_cli("--mode", "continuous", "--rate", "1000", "--output", "both", env=env)
    _until_streaming(redis_server, STREAMS["search"], proc)
    redis_server.kill()
    began = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert time.monotonic() - began < 20
    assert "Traceback" not in stderr
    assert "unreachable" in stderr and "not delivered" in stderr


def test_a_stop_during_an_outage_ends_within_the_grace(redis_server: RedisServer, tmp_path: Path) -> None:
    """SIGTERM while Redis is away: the run does not wait REDIS_RETRY_SECONDS (300), it stops within about 10 s."""
    env = {"REDIS_PORT": str(redis_server.port), "OUTPUT_DIR": str(tmp_path)}
    proc = start_cli("--mode", "continuous", "--rate", "1000", "--output", "both", env=env)
    _until_streaming(redis_server, STREAMS["search"], proc)
    redis_server.kill()
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    began = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - began < 20
    assert proc.returncode == 1
    assert "Traceback" not in stderr and "not delivered" in stderr


def test_a_local_server_can_be_reached_by_its_unix_socket(tmp_path: Path) -> None:
    """REDIS_URL=unix:///path: the events arrive, and messages name the socket."""
    socket_path = tmp_path / "redis.sock"
    server = RedisServer(tmp_path, "--unixsocket", str(socket_path))
    server.start()
    try:
        result = run_cli("--count", "2000", "--output", "redis", env={"REDIS_URL": f"unix://{socket_path}"})
        total = sum(server.client().xlen(STREAMS[t]) for t in EVENT_TYPES)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert total == 2000
    assert str(socket_path) in result.stderr
