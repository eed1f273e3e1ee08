"""Progress of ``ingest`` and ``export`` on stderr: a bar redrawn in place on a terminal, a plain
line every few seconds otherwise (a log, a CI job)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30
LOG_INTERVAL_SECONDS = 5.0


class Meter:
    """Counts documents done out of ``total`` (when known), starting at ``resumed_from``."""

    def __init__(self, label: str, total: int | None, resumed_from: int = 0, out: TextIO | None = None) -> None:
        self._label = label
        self._total = total
        self._out = out if out is not None else sys.stderr
        self._tty = self._out.isatty()
        self._resumed_from = resumed_from
        self.done = resumed_from
        self._started = time.monotonic()
        self._last_shown = self._started  # a short run shows only its final line

    def advance(self, documents: int) -> None:
        """``documents`` more are done."""
        self.done += documents
        now = time.monotonic()
        if now - self._last_shown >= (0.1 if self._tty else LOG_INTERVAL_SECONDS):
            self._last_shown = now
            self._show(self._line(now), final=False)

    def finish(self) -> None:
        """The last line (always shown, so that a log ends with the totals)."""
        self._show(self._line(time.monotonic()), final=True)

    def _line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = (self.done - self._resumed_from) / elapsed
        resumed = f" (resumed at {self._resumed_from:,})" if self._resumed_from else ""
        if not self._total:
            return f"{self._label} {self.done:,} documents {rate:,.0f}/s{resumed}"
        fraction = min(self.done / self._total, 1.0)
        filled = int(BAR_WIDTH * fraction)
        left = self._total - self.done
        eta = f" ETA {left / rate:,.0f}s" if rate > 0 and left > 0 else ""
        return (
            f"{self._label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done:,}/{self._total:,} "
            f"{fraction:4.0%} {rate:,.0f}/s{eta}{resumed}"
        )

    def _show(self, line: str, final: bool) -> None:
        if self._tty:
            self._out.write("\r" + line.ljust(100) + ("\n" if final else ""))
        else:
            self._out.write(line + "\n")
        self._out.flush()
