"""Feedback while a run goes: a progress bar on a terminal, a periodic status line elsewhere.

Used by ``main`` only; everything is written to the stream it is given (stderr), so
standard output stays free for events.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

from .models import EVENT_TYPES

STATUS_INTERVAL = 5.0  # seconds between status lines when not on a terminal
BAR_INTERVAL = 1.0  # seconds between refreshes of the figures beside the bar


def thousands(n: float) -> str:
    """A count with thousands separators."""
    return f"{n:,.0f}" if n >= 10 or n == 0 or n != n else f"{n:.2g}"  # a rate of 0.5/s is not "0"


class Progress:
    """Counts events as they are written and shows how the run is going."""

    def __init__(self, stream: TextIO, total: int | None, enabled: bool = True) -> None:
        """Show a bar on ``stream`` if it is a terminal, else a status line every few seconds."""
        self.stream = stream
        self.total = total
        self.enabled = enabled
        self.started = time.monotonic()
        self.counts = dict.fromkeys(EVENT_TYPES, 0)
        self._last_status = self.started
        self._bar: tqdm | None = None
        if enabled and stream.isatty():
            self._bar = tqdm(total=total, unit="ev", unit_scale=True, file=stream, dynamic_ncols=True, leave=False)

    @property
    def written(self) -> int:
        """Events written so far, over all types."""
        return sum(self.counts.values())

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def update(self, counts: dict[str, int], extra: Callable[[], str] = lambda: "") -> None:
        """Add a batch's counts; redraw the bar or print a status line (with ``extra()``) when one is due."""
        for event_type, n in counts.items():
            self.counts[event_type] += n
        if not self.enabled:
            return
        now = time.monotonic()
        due = now - self._last_status >= (BAR_INTERVAL if self._bar is not None else STATUS_INTERVAL)
        if self._bar is not None:
            self._bar.update(sum(counts.values()))
            if due:
                self._last_status = now
                self._bar.set_postfix_str(extra(), refresh=False)
            return
        if due:
            self._last_status = now
            done = f"{thousands(self.written)}" + (f"/{thousands(self.total)}" if self.total else "")
            rate = self.written / max(self.elapsed, 1e-9)
            details = extra()
            line = f"status: {done} events, {thousands(rate)} events/s"
            print(line + (f", {details}" if details else ""), file=self.stream, flush=True)

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
