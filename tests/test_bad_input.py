"""Bad input, as flags and as environment variables: one line, exit 2, no traceback, nothing written, no password.

Most cases run in-process through ``src.main.main`` (fast); a handful run as the real command line.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from src.main import main

from .conftest import run_cli

PASSWORD = "hunter2-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


FREE = str(_free_port())  # nothing listens there: a case that wrongly got through to Redis still fails to connect
REDIS = {"OUTPUT": "redis", "REDIS_PORT": FREE}
LONG = "x" * 300

# (flags, environment, what the one line must name)
CASES: list[tuple[list[str], dict[str, str], str]] = []


def case(args: list[str], env: dict[str, str] | None = None, names: str | None = None) -> None:
    CASES.append((args, env or {}, names or (args[0] if args else next(iter(env or {})))))


for value in ["-5", "0", "many", "1e3", "1.5", "10000000001", "nan", "inf", "", "0x10", "9" * 5000, "1_0_"]:
    case(["--count", value], names=f"--count={value[:20]}")
for value in ["0", "-3", "1e-300", "0.001", "nan", "inf", "-inf", "fast", "10000001", "1e400", ""]:
    case(["--rate", value], names=f"--rate={value}")
for value in ["0", "-1", "3661", "nan", "inf", "x", "1e-400", ""]:
    case(["--days", value], names=f"--days={value}")
for value in ["-1", "9223372036854775808", "1.5", "abc", "1e5", ""]:
    case(["--seed", value], names=f"--seed={value}")
for value in ["yesterday", "2026-13-01", "1960-01-01", "3000-01-01", "2026-01-01T25:00", "2026-02-30", "", "0"]:
    case(["--start", value], names=f"--start={value}")
for value in ["tomorrow", "1970-06-01", "2999-06-01", "2026-01-01T00:00:00+25:00"]:
    case(["--end", value], names=f"--end={value}")
case(["--end", "1971-01-01", "--days", "3660"], names="--days=3660")
case(["--end", "1971-01-03"], names="--end=1971-01-03")
case(["--start", "2997-12-30", "--days", "5"], names="--days=5")
# Trips are searched for months ahead: a window ends a year before the last date allowed (2999-01-01).
case(["--end", "2998-12-31"], names="--end=2998-12-31")
case(["--end", "2998-01-01T00:00:01"], names="--end=2998-01-01T00:00:01")
# Continuous mode: a rate whose minute of warm-up fits in memory, and a history that can be caught up.
case(["--mode", "continuous", "--rate", "10000000", "--duration", "1"], names="--rate=10000000")
case(["--mode", "continuous", "--rate", "40001"], names="--rate=40001")
case([], {"MODE": "continuous", "EVENTS_PER_SECOND": "50000"}, "EVENTS_PER_SECOND=50000")
case(["--mode", "continuous", "--start", "1971-01-01"], names="--start=1971-01-01")
case(["--mode", "continuous", "--start", "2990-01-01"], names="--start=2990-01-01")
case(["--mode", "continuous", "--rate", "40000", "--start", "2026-01-01"], names="--start=2026-01-01")
case(["--start", "2026-02-01", "--end", "2026-01-01"], names="--start=2026-02-01")
case(["--start", "2026-01-01", "--end", "2026-01-01"], names="--start=2026-01-01")
case(["--start", "1970-12-31", "--end", "2026-01-01"], names="--start=1970-12-31")
for value in ["0", "-1", "nan", "inf", "1e10", "x"]:
    case(["--mode", "continuous", "--duration", value], names=f"--duration={value}")
for value in ["sometimes", "", "batchy"]:
    case(["--mode", value], names=f"--mode={value}")
for value in ["kafka", "", "files"]:
    case(["--output", value], names=f"--output={value}")
case(["--output-dir", ""], names="--output-dir=")
case(["--output-dir", "/proc/searchflow"], names="--output-dir=/proc/searchflow")
case(["--output-dir", f"/tmp/{LONG}/raw"], names="--output-dir=/tmp/xxx")
case(["--output-dir", "a\x00b"], names="--output-dir=a")
case(["--output-dir", "/tmp/" + "/".join(["d" * 250] * 20)], names="--output-dir=/tmp/ddd")
for args in (["--no-such-flag"], ["--count"], ["-x"], ["--overwrite=yes"], ["--quiet=1"], ["report", "--nope"]):
    case(args, names=args[-1].split("=")[0])

NUMBERS = {
    "REDIS_PORT": ["0", "70000", "x", "-1", "1.5"],
    "REDIS_DB": ["-1", "1024", "x"],
    "STREAM_MAXLEN": ["-1", str(2**63), "1180591620717411303424", "x", "1.5"],
    "REDIS_BUFFER_EVENTS": ["999", str(10**9), "x"],
    "REDIS_RETRY_SECONDS": ["0", "-1", "inf", "nan", "x", "1e10"],
    "EVENTS_PER_SECOND": ["0", "inf", "nan", "1e-300", "-5"],
    "USER_POOL_SIZE": ["0", "-1", "10000001", "x", "1.5"],
    "PAGE_SIZE": ["0", "101", "x"],
    "SEARCHES_PER_SESSION": ["0.5", "21", "nan"],
    "CLICK_POSITION_DECAY": ["-1", "6", "inf"],
    "NIGHT_CONVERSION_FACTOR": ["-1", "11", "nan"],
    "MOBILE_LEAD_FACTOR": ["0", "11", "inf"],
    "SEASON_STRENGTH": ["-1", "4"],
    "PRICE_SENSITIVITY": ["-1", "11", "nan", "x"],
    "ATTRACTIVENESS_STRENGTH": ["-0.5", "6", "inf"],
    "MIN_FLIGHT_KM": ["-1", "2001", "nan", "x"],
    "IMPRESSIONS": ["maybe", "2"],
    "EVENT_COUNT": ["0", "x", "10000000001"],
    "SEED": ["-1", "x", str(2**64)],
    "WINDOW_DAYS": ["0", "4000", "nan"],
    "WINDOW_START": ["x", "1900-01-01"],
    "WINDOW_END": ["x", "3001-01-01"],
    "BATCH_RATE": ["0", "1e-300", "inf"],
    "MODE": ["production", "x"],
    "OUTPUT": ["kafka"],
    "OVERWRITE": ["maybe", "2"],
    "QUIET": ["maybe"],
}
for name in ("CLICK_THROUGH_RATE", "CONVERSION_RATE", "ANONYMOUS_RATE", "ZERO_RESULT_RATE", "RETURN_TRIP_RATE"):
    NUMBERS[name] = ["1.5", "-0.1", "nan", "inf", "x", "0.5\nx"]
for name, values in NUMBERS.items():
    for value in values:
        case([], {name: value}, f"{name}=")

MAPPINGS = {
    "MARKETS": ["US,XX", ",", "ALL,US", "usa", "US\nCA"],
    "PLATFORM_SHARES": [
        "web=inf,ios=1,android=1",
        "web=nan,ios=1,android=1",
        "web=-1,ios=1,android=1",
        "web=0,ios=0,android=0",
        "boat=1",
        "web",
        "web=1e308,ios=1e308,android=1",
        "web=1e308,ios=1e-300,android=1",
    ],
    "PRODUCT_SHARES": ["flight=1e308,hotel=1e308,car=1,package=1", "flight=x", "flight=1,boat=2"],
    "COMMISSION_RATES": [
        "flight=0,hotel=0.15",
        "flight=2,hotel=0,car=0,package=0",
        "flight=inf,hotel=0,car=0,package=0",
    ],
    "TAXES_AND_FEES": ["hotel=0.14", "flight=0,hotel=2,car=0,package=0", "flight=nan,hotel=0,car=0,package=0"],
    "JOURNEY_CONVERSION_WEIGHTS": ["first=101,middle=1,later=1", "first=1", "first=inf,middle=1,later=1"],
    "DEVICE_CONVERSION_WEIGHTS": ["desktop=nan,tablet=1,mobile=1", "desktop=0,tablet=0,mobile=0"],
}
for name, values in MAPPINGS.items():
    for value in values:
        case([], {name: value}, f"{name}=")

for host in ["a" * 64, ".", "ü" * 64, "a..b", "-a", "a b", "host:6379", ("a" * 60 + ".") * 5, "..", "a/b"]:
    case([], {**REDIS, "REDIS_HOST": host}, "REDIS_HOST=")
for url in [
    "http://localhost:6379",
    "redis://localhost:99999",
    f"redis://:{PASSWORD}@localhost:70000/0",
    "redis://localhost:6379/abc",
    "redis://localhost:6379/5000",
    "unix://",
    f"redis://:{PASSWORD}@{'a' * 64}:6379/0",
    "redis://a..b:6379",
]:
    case([], {**REDIS, "REDIS_URL": url}, "REDIS_URL=")
case([], {**REDIS, "STREAM_PREFIX": "p" * 2000}, "STREAM_PREFIX=")
for prefix in ["a\nb", "a\tb", "a\rb", "events\x1b[31m", "a\x7fb"]:
    case([], {**REDIS, "STREAM_PREFIX": prefix}, "STREAM_PREFIX=")
# Valid settings, but no Redis there: refused at the start, before anything is generated.
case([], {**REDIS, "REDIS_HOST": "127.0.0.1"}, "REDIS_HOST:REDIS_PORT=127.0.0.1:")
case([], {**REDIS, "REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{FREE}/0"}, f"REDIS_URL=127.0.0.1:{FREE}")
# Variable names are case-insensitive; empty OUTPUT_DIR is not the default.
case([], {"click_through_rate": "2"}, "CLICK_THROUGH_RATE=2")
case([], {"OUTPUT_DIR": ""}, "OUTPUT_DIR=")
case([], {"OUTPUT_DIR": "   "}, "OUTPUT_DIR=")
case([], {"OUTPUT_DIR": f"/tmp/{LONG}"}, "OUTPUT_DIR=/tmp/xxx")
case([], {"OUTPUT_DIR": "/proc/searchflow/raw"}, "OUTPUT_DIR=/proc/searchflow/raw")


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_the_table_is_large() -> None:
    """At least 150 distinct bad inputs."""
    assert len(CASES) >= 150
    assert len({(tuple(a), tuple(sorted(e.items()))) for a, e, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("args", "env", "names"), CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    env: dict[str, str],
    names: str,
) -> None:
    """Each bad value: exit 2, exactly one line on stderr naming it, no traceback, no output, no password."""
    output = tmp_path / "out"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OUTPUT_DIR", str(output))
    monkeypatch.setenv("REDIS_PASSWORD", PASSWORD)
    monkeypatch.setenv("REDIS_PORT", FREE)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = _listing(tmp_path)
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert names.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in captured.err
    assert PASSWORD not in captured.err + captured.out
    assert captured.out == ""
    assert _listing(tmp_path) == before


SUBPROCESS_CASES = [
    (["--end", "1971-01-01", "--days", "3660"], {}, "--days=3660"),
    ([], {"PLATFORM_SHARES": "web=inf,ios=1,android=1"}, "PLATFORM_SHARES="),
    ([], {**REDIS, "REDIS_HOST": "ü" * 64}, "REDIS_HOST="),
    ([], {"OUTPUT_DIR": ""}, "OUTPUT_DIR="),
    (["--rate", "1e-300"], {}, "--rate=1e-300"),
    (["--mode", "continuous", "--rate", "10000000", "--duration", "1"], {}, "--rate=10000000"),
    ([], {**REDIS, "STREAM_MAXLEN": "1180591620717411303424"}, "STREAM_MAXLEN="),
]


@pytest.mark.parametrize(("args", "env", "names"), SUBPROCESS_CASES)
def test_bad_input_on_the_real_command_line(tmp_path: Path, args: list[str], env: dict[str, str], names: str) -> None:
    """The same promise through `python -m src.main`, start-up included."""
    output = tmp_path / "out"
    result = run_cli(*args, env={"OUTPUT_DIR": str(output), "REDIS_PASSWORD": PASSWORD, **env}, cwd=Path.cwd())
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert names in result.stderr
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert not output.exists()
