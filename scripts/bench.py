"""Benchmark batch generation to JSONL or Parquet: median events/s over several runs, and peak memory.

Each run is a fresh `python -m src.main` process writing COUNT events into a temporary
directory. Events/s is the whole process's: COUNT over the wall time from start to exit
(interpreter start-up, spawning workers, generation, encoding and writing). Peak memory is
the largest sum, over the run's process and its workers, of their proportional set size
(PSS: pages shared by several processes count once in total), sampled every 50 ms.

    python scripts/bench.py                          # 1,000,000 events, 5 runs, default workers
    python scripts/bench.py --workers 1              # the same in one process
    python scripts/bench.py --count 100000000 --runs 1
    python scripts/bench.py --formats file,parquet   # JSONL and Parquet side by side, runs alternating
    python scripts/bench.py --faults none,every-1%   # the cost of injecting every fault kind at 1 %

With several formats (or fault settings), the runs alternate (JSONL, Parquet, JSONL, ...) so that drifts in the
machine's speed fall on both alike; the output bytes on disk are printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            pass
    return pids


def _bytes(directory: Path) -> int:
    names = ("search_events", "click_events", "conversion_events")
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and p.name.split(".")[0] in names) + sum(
        p.stat().st_size for p in directory.rglob("*.parquet")
    )


EVERY_KIND_AT_1 = {f"FAULT_{kind.upper()}_RATE": "0.01" for kind in
                   ("duplicate", "resend", "late", "out_of_order", "malformed", "missing", "clock_skew", "drift",
                    "bot")}  # fmt: skip


def run_once(
    count: int, directory: Path, workers: int | None, output: str = "file", faults: str = "none"
) -> tuple[float, float]:
    """Run the generator once; return its events/s and the peak PSS of its processes in MB.

    ``faults`` is a FAULTS preset, or ``every-1%`` for every kind's rate at 0.01.
    """
    command = [sys.executable, "-m", "src.main", "--count", str(count), "--seed", "1", "--overwrite",
               "--end", "2026-03-02", "--output-dir", str(directory), "--output", output, "-q"]  # fmt: skip
    if workers:
        command += ["--workers", str(workers)]
    env = dict(os.environ)
    env.update(EVERY_KIND_AT_1 if faults == "every-1%" else {"FAULTS": faults})
    began = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, env=env)
    peak = 0

    def sample() -> None:
        nonlocal peak
        while proc.poll() is None:
            peak = max(peak, sum(_pss_kb(p) for p in _tree(proc.pid)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    if proc.wait() != 0:
        raise RuntimeError(f"the run failed with exit status {proc.returncode}")
    elapsed = time.monotonic() - began
    sampler.join()
    return count / elapsed, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="--workers of each run (default: the machine's)")
    parser.add_argument("--formats", default="file", help="outputs to compare, e.g. file,parquet (default: file)")
    parser.add_argument("--faults", default="none", help="fault settings to compare: presets or every-1%% (none)")
    parser.add_argument("--keep", metavar="DIR", help="write into DIR/<format>, kept (default: a temp dir)")
    args = parser.parse_args()
    formats = [(f, faults) for f in args.formats.split(",") for faults in args.faults.split(",")]
    rates: dict[tuple[str, str], list[float]] = {f: [] for f in formats}
    peaks: dict[tuple[str, str], list[float]] = {f: [] for f in formats}
    sizes: dict[tuple[str, str], int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for output, faults in formats:
                directory = Path(args.keep or tmp) / output
                rate, peak = run_once(args.count, directory, args.workers, output, faults)
                rates[(output, faults)].append(rate)
                peaks[(output, faults)].append(peak)
                sizes[(output, faults)] = _bytes(directory)
                what = f"run {i + 1} {output}, faults {faults}"
                print(f"{what}: {rate:,.0f} events/s, peak PSS {peak:,.0f} MB", flush=True)
    workers = args.workers or "default"
    for output, faults in formats:
        name = {"file": "JSONL", "parquet": "Parquet"}.get(output, output)
        key = (output, faults)
        print(
            f"batch to {name}, faults {faults}: {args.count:,} events, {args.runs} runs, {os.cpu_count()} cores, "
            f"workers {workers}: "
            f"median {statistics.median(rates[key]):,.0f} events/s (whole process), "
            f"peak PSS {max(peaks[key]):,.0f} MB, {sizes[key] / 1e6:,.1f} MB of events on disk"
        )


if __name__ == "__main__":
    main()
