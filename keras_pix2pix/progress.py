"""One progress reporter for every long loop: a line rewritten in place on a terminal, plain lines in a log."""

import sys
import time


def format_duration(seconds):
    """H:MM:SS.

    Example:
    >>> format_duration(3725)
    '1:02:05'
    """
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Reports `done of total` with the rate and the time left.

    On a terminal the line is rewritten in place; otherwise (a log, a notebook) each reported
    update is a line of its own, one every `log_every` units.

    Args:
        total: the units of the whole loop; None when unknown (no time left is shown, and close()
            ends the line).
        label: what a unit is, shown before the count ("step", "pair").
        items_per_unit: items per unit for the rate (a step of batch 4: 4 images).
        rate_unit: the items' name in the rate ("img").
        log_every: units between lines when the output is not a terminal.
        start: units already done (a resumed run).
        stream: where to write; default: standard output.

    Example:
    >>> import io
    >>> progress = Progress(10, "pair", stream=io.StringIO(), log_every=5)
    >>> rate = progress.update(5)
    >>> progress.stream.getvalue().startswith("pair 5/10")
    True
    """

    def __init__(self, total, label, *, items_per_unit=1, rate_unit="img", log_every=1, start=0, stream=None):
        self.total, self.label, self.items_per_unit, self.rate_unit = total, label, items_per_unit, rate_unit
        self.log_every, self.stream = log_every, stream or sys.stdout
        self.interactive = self.stream.isatty()
        self.last_done, self.last_time = start, time.perf_counter()
        self.done, self.details, self.seconds_per_unit = start, "", 0.0
        self.open = False  # a line is being rewritten in place on the terminal

    def update(self, done, details=""):
        """Reports `done` units (with the details of this update); returns the items per second."""
        now = time.perf_counter()
        self.done, self.details = done, details
        self.seconds_per_unit = (now - self.last_time) / max(done - self.last_done, 1)
        rate = self.items_per_unit / max(self.seconds_per_unit, 1e-9)
        if self.interactive or done % self.log_every == 0 or done == self.total:
            self.last_done, self.last_time = done, now
            self._write(rate)
        return rate

    def _write(self, rate):
        line = f"{self.label} {self.done}{f'/{self.total}' if self.total else ''}  "
        line += f"{self.details + '  ' if self.details else ''}{rate:.2f} {self.rate_unit}/s"
        if self.total:
            line += f"  left {format_duration(self.seconds_per_unit * (self.total - self.done))}"
        if self.interactive:
            # Rewritten in place: carriage return, the line, then erase what a longer one left.
            self.open = self.done != self.total
            self.stream.write("\r" + line + "\x1b[K" + ("" if self.open else "\n"))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        """Ends a line left open on a terminal, or writes the last count that a log has not seen."""
        if not self.interactive and self.done != self.last_done:
            self.last_done = self.done
            self._write(self.items_per_unit / max(self.seconds_per_unit, 1e-9))
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False
