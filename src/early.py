"""What the command line needs before anything heavy is imported: quiet signals, one-line resource errors.

``python -m src.main`` imports the package ``src`` first, and ``src/__init__.py`` calls
:func:`install` there, before click, pydantic, NumPy or polars are loaded. From then until
the run installs its own handlers (the first thing ``main`` does for a run), SIGINT or
SIGTERM ends the process at once: nothing has been written, one line says so (none with
``-q``), and the exit status is 128 + the signal's number (130, 143), as a shell reports a
command it interrupted. Out of memory while starting (a MemoryError, or an ImportError
because a shared library could not be mapped) is one line and exit status 1, not a
traceback. Nothing happens when the package is imported as a library.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import resource
import signal
import sys
from collections.abc import Iterator
from types import FrameType, TracebackType

MEMORY_HINT = "raise the memory limit (ulimit -v, the container's) or lower USER_POOL_SIZE"
# Address space a run reserves at its peak (VmPeak, with two glibc arenas: src/tuning.py): 0.65 GB for 10,000
# events, 1.6-1.8 GB for a million (the run), 1.9 GB for 3 million, 2.4 GB for 10 million. Below what a
# run needs polars aborts the process with no way to catch it; a limit from this up runs a million events.
MIN_ADDRESS_SPACE = 2 << 30
_installed = False
stdout_closed = False  # the process was started with standard output closed (now on /dev/null)
_signalled = 0  # the signal that is ending the process, once one came


def running_cli() -> bool:
    """True when this process is ``python -m src.main``."""
    argv = list(getattr(sys, "orig_argv", []))
    return any(a == "-m" and b == "src.main" for a, b in itertools.pairwise(argv)) or "-msrc.main" in argv


def _quiet() -> bool:
    argv = list(getattr(sys, "orig_argv", sys.argv))
    return "-q" in argv or "--quiet" in argv


def signalled() -> int:
    """The signal that came before the run's own handlers took over, or 0.

    The handler raises SystemExit, but Python drops an exception raised where it cannot be
    passed on (a finaliser, a library's callback); the run checks this as it starts.
    """
    return _signalled


def _stop_now(signum: int, frame: FrameType | None) -> None:
    """Before a run has started: end the process quietly, nothing written."""
    global _signalled
    if _signalled:
        raise SystemExit(128 + _signalled)
    _signalled = signum
    if not _quiet():
        what = "" if "report" in getattr(sys, "orig_argv", sys.argv) else " before any event was written"
        os.write(2, f"stopped by {signal.Signals(signum).name}{what}\n".encode())
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then take any that came.

    A C extension's module set-up (DuckDB's nanobind enums) aborts with a "critical error" if
    our handler's SystemExit is raised inside it: in the block a signal is only noted, and
    raised again once it ends. (Blocking it would not do: another thread may take it.)
    """
    pending: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])


def out_of_memory(error: BaseException) -> bool:
    """True for the errors that mean the process ran out of memory (or address space)."""
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    if isinstance(error, RuntimeError) and "can't start new thread" in text:
        return True
    return isinstance(error, ImportError | OSError) and any(
        words in text for words in ("cannot allocate memory", "failed to map segment", "out of memory")
    )


def _excepthook(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    if _signalled:
        # A library turned our SystemExit into its own error (DuckDB: "Query interrupted"): still a quiet stop.
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os._exit(128 + _signalled)
    if out_of_memory(error):
        detail = str(error).splitlines()[0][:160] if str(error) else kind.__name__
        sys.stderr.write(f"error: out of memory while starting ({detail}); {MEMORY_HINT}\n")
        return
    sys.__excepthook__(kind, error, trace)


def stdout_was_closed() -> bool:
    """True when the process was started with standard output closed (it is /dev/null now)."""
    return stdout_closed


def _reopen_closed_streams() -> None:
    """Standard output or error closed at start (``2>&-``): put /dev/null there, so writes go nowhere, not to a file."""
    global stdout_closed
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        spare = os.open(os.devnull, os.O_WRONLY)
        if spare != fd:
            os.dup2(spare, fd)
            os.close(spare)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "w", encoding="utf-8", closefd=False))  # noqa: SIM115 (lives as long as the process)
        stdout_closed = stdout_closed or fd == 1


def _unraisablehook(unraisable: sys.UnraisableHookArgs) -> None:
    if _signalled and isinstance(unraisable.exc_value, SystemExit):
        return  # our own quiet stop, raised where Python could not pass it on: signalled() tells the run
    sys.__unraisablehook__(unraisable)


def install() -> None:
    """Install the quiet signal handlers and the one-line memory errors, once, if this is the command line."""
    global _installed
    if _installed or not running_cli():
        return
    _installed = True
    _reopen_closed_streams()
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY and soft < MIN_ADDRESS_SPACE:
        os.write(
            2,
            f"error: the address-space limit (ulimit -v) is {soft >> 20:,} MB; a run needs up to "
            f"{MIN_ADDRESS_SPACE >> 20:,} MB, and below it polars aborts without a message; raise the limit\n".encode(),
        )
        raise SystemExit(1)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop_now)
    sys.excepthook = _excepthook
    sys.unraisablehook = _unraisablehook
