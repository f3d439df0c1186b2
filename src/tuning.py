"""Process-wide settings that make batch generation fast; imported by ``main`` before anything else.

Importing this module sets them, once, for the command line only: a Python program using
the library keeps its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource

# Batches are encoded on parallel threads, each using one core: polars' own pool would
# compete with them for the same two or four cores. Must be set before polars is imported.
os.environ.setdefault("POLARS_MAX_THREADS", "1")

# polars' allocator (jemalloc) keeps freed pages for ten seconds by default, and a run frees
# every slice's tables within one: returning them at once lowers the peak memory of a 1M-event
# run from about 520 to 430 MB (PSS, all processes) for about 6 % more CPU (the pages' faults).
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

# pyarrow's default pool (mimalloc) keeps the pages of the Arrow tables a Parquet run builds and
# frees for every slice; glibc's (tuned below) reuses them: a 1M-event Parquet run peaks at about
# 490 instead of 590 MB (PSS, all processes), as fast. Must be set before pyarrow is imported.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


ARENAS = 2  # glibc malloc arenas (heaps threads allocate from) of the command and its workers


def keep_freed_memory() -> None:
    """Let glibc reuse freed memory instead of returning it to the system after every batch.

    Each batch allocates and frees a few hundred MB of NumPy arrays; by default glibc maps
    and unmaps the large ones, and the page faults of mapping them again cost about a
    quarter of a run (measured: 160,000 instead of 260,000 minor faults per million events).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD: blocks below this come from the reusable heap
    libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD: keep up to this much freed memory
    # M_ARENA_MAX: glibc gives threads that contend up to 8 per core heaps of 64 MB of address space each.
    # Two hold this process's few threads at the same speed (2.7 s for a million events either way), and
    # its address space at 1.7-1.8 GB instead of 2.2-2.5 GB, varying with the threads' timing: a run fits a
    # lower `ulimit -v` (src/early.py), and reliably. Workers are new processes: they read the variable.
    libc.mallopt(-8, ARENAS)
    os.environ.setdefault("MALLOC_ARENA_MAX", str(ARENAS))


def more_open_files() -> None:
    """Raise the soft limit on open files up to the hard one (at most 65,536).

    Each shard keeps its users' rows in a file of its own, mapped a chunk at a time (a descriptor
    a chunk), and the run spools each shard's answer key to another: a run of thousands of shards
    needs more than the usual soft limit of 1,024.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


OPEN_FILES = 1 << 16

keep_freed_memory()
more_open_files()
