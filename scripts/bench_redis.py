"""Benchmark batch output to Redis Streams on loopback: median events/s over several runs.

Starts its own redis-server on a free port (no persistence), runs
`python -m src.main --output redis --count COUNT` against it RUNS times, and prints the
median of the runs' own events/s (every event confirmed by Redis), with the core count,
and the CPU time the Redis server spent per million events (the other half of the cost).

    python scripts/bench_redis.py                  # 1,000,000 events, 5 runs
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_up(port: int, seconds: float = 10.0) -> None:
    """Return once the server on ``port`` answers PING (a loaded machine can take a while to start it)."""
    import redis

    deadline = time.monotonic() + seconds
    while True:
        try:
            if redis.Redis(port=port).ping():
                return
        except (redis.ConnectionError, redis.BusyLoadingError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", tmp], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_up(port)
            env = {**os.environ, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port)}
            rates, server_seconds = [], []
            for i in range(args.runs):
                cpu_before = cpu_seconds(server.pid)
                proc = subprocess.run(
                    [sys.executable, "-m", "src.main", "--output", "redis", "--count", str(args.count),
                     "--seed", "1", "--end", "2026-03-02"],
                    cwd=ROOT, env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                match = re.search(r"([\d,]+) events/s", proc.stderr)
                assert match, proc.stderr
                rates.append(float(match.group(1).replace(",", "")))
                server_seconds.append((cpu_seconds(server.pid) - cpu_before) * 1e6 / args.count)
                cost = f"redis-server CPU {server_seconds[-1]:.2f} s per million"
                print(f"run {i + 1}: {rates[-1]:,.0f} events/s, {cost}", flush=True)
        finally:
            server.terminate()
            server.wait()
    print(
        f"batch to Redis Streams (loopback): {args.count:,} events, {args.runs} runs, {os.cpu_count()} cores: "
        f"median {statistics.median(rates):,.0f} events/s; "
        f"redis-server CPU {statistics.median(server_seconds):.2f} s per million events"
    )


if __name__ == "__main__":
    main()
