"""Benchmark batch generation to JSONL: median events/s over several runs, and peak memory.

Each run is a fresh `python -m src.main` process writing COUNT events into a temporary
directory; events/s is the run's own figure (generation, encoding and writing, without
interpreter start-up), peak memory is the largest resident set of any run.

    python scripts/bench.py                 # 1,000,000 events, 5 runs
    python scripts/bench.py --count 10000000 --runs 1
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(count: int, directory: Path) -> float:
    """Run the generator once; return its events/s."""
    proc = subprocess.run(
        [sys.executable, "-m", "src.main", "--count", str(count), "--seed", "1", "--overwrite",
         "--end", "2026-03-02", "--output-dir", str(directory)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"([\d,]+) events/s", proc.stderr)
    if not match:
        raise RuntimeError(f"no events/s in output: {proc.stderr}")
    return float(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            rates.append(run_once(args.count, Path(tmp)))
            print(f"run {i + 1}: {rates[-1]:,.0f} events/s", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"batch to JSONL: {args.count:,} events, {args.runs} runs, {os.cpu_count()} cores: "
        f"median {statistics.median(rates):,.0f} events/s, peak memory {peak_mb:,.0f} MB"
    )


if __name__ == "__main__":
    main()
