"""SIGTERM and SIGINT: a command stops at once, or, while it trains, at its next safe point.

Without TensorFlow, so that the command line installs the handlers before anything heavy is
imported: from then on a stop is never the default handler's sudden death (exit 143 with the
closing saves half done). At once means the handler raises errors.Stopped, and every temporary
file and staging folder on the way out is removed (files.replacing, files.staging_folder).
Training defers: the handler says at once that the stop is coming and what it waits for, and the
loop stops after the step in progress, with a checkpoint. The time limit and a --duration stop
it the same way: Clock says when one more step no longer fits.
"""

import contextlib
import signal
import threading

from keras_pix2pix.config import duration_text
from keras_pix2pix.errors import Stopped

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
    """The handler of SIGTERM and SIGINT: raises Stopped, or records the request while a safe point is awaited.

    Args:
        acknowledge: called with one line when a deferred stop is requested (print, a log).

    Example:
    >>> requests = StopRequests(acknowledge=print)
    >>> with requests.deferring("stopping after the step in progress"):
    ...     requests(signal.SIGTERM, None)
    SIGTERM received: stopping after the step in progress
    >>> requests.requested
    ['SIGTERM']
    """

    def __init__(self, acknowledge=None):
        self.requested = []
        self.waiting_for = None  # None: a stop raises at once; else what a deferred stop waits for
        self.acknowledge = acknowledge or (lambda line: None)

    def __call__(self, number, frame):
        name = signal.Signals(number).name
        self.requested.append(name)
        if self.waiting_for is None:
            raise Stopped(name)
        if len(self.requested) == 1:  # a second Ctrl-C is not a second stop to announce
            self.acknowledge(f"{name} received: {self.waiting_for}")

    @contextlib.contextmanager
    def deferring(self, waiting_for):
        """Within the block a stop is acknowledged and recorded, not raised.

        Args:
            waiting_for: what the stop waits for, said when it comes ("stopping after the step in progress").
        """
        before, self.waiting_for = self.waiting_for, waiting_for
        try:
            yield self
        finally:
            self.waiting_for = before


@contextlib.contextmanager
def stop_requests(acknowledge=None):
    """Installs a StopRequests for SIGTERM and SIGINT while the block runs (the previous handlers come back after).

    In a thread other than the main one nothing is installed (Python sets handlers only there);
    the requests are yielded all the same, and stay empty.

    Args:
        acknowledge: called with one line when a deferred stop is requested.

    Example:
    >>> with stop_requests() as requests:
    ...     signal.getsignal(signal.SIGTERM) is requests
    True
    """
    requests = StopRequests(acknowledge)
    if threading.current_thread() is not threading.main_thread():
        yield requests
        return
    previous = {number: signal.signal(number, requests) for number in SIGNALS}
    try:
        yield requests
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


# Kept back from the time limit for the process to end after its last checkpoint: TensorFlow's
# teardown took 1.2 s after a 64 px run on the 2-core CPU of bench/README.md.
EXIT_SECONDS = 2.0


class Clock:
    """The time limit and a run's duration: whether one more step, a checkpoint and the exit still fit in them.

    Args:
        started: when the command's time began, as `now` reads it.
        limit: the time limit in seconds, or None.
        now: the seconds of a monotonic clock (time.monotonic; tests pass one of their own).
        trained_before: the seconds the run trained in earlier commands (its checkpoint's).

    Example:
    >>> seconds = iter(range(100, 200, 10))
    >>> clock = Clock(started=100, limit=60, now=lambda: next(seconds))
    >>> clock.step_seconds = clock.measure(lambda: None)[1]
    >>> clock.step_seconds, clock.trained_seconds()
    (10, 20.0)
    >>> clock.stop_reason(signals=[])
    >>> clock.stop_reason(signals=["SIGTERM"])
    'SIGTERM'
    """

    def __init__(self, started, limit, now, trained_before=0.0):
        self.now = now
        self.started = started
        self.deadline = started + limit - EXIT_SECONDS if limit else None
        self.limit = limit
        self.step_seconds = 0.0  # the last step's, once the first (which traces the graph) is past
        self.save_seconds = 0.0  # the last checkpoint's
        self.trained_before = trained_before

    def trained_seconds(self):
        """The seconds the run has trained: earlier commands' and this one's since it started."""
        return self.trained_before + self.now() - self.started

    def duration_spent(self, duration):
        """Whether a run of `duration` seconds has no time left for one more step and its closing checkpoint."""
        return self.trained_seconds() + self.step_seconds + self.save_seconds + EXIT_SECONDS >= duration

    def measure(self, work, *arguments):
        """(work(*arguments), the seconds it took)."""
        start = self.now()
        result = work(*arguments)
        return result, self.now() - start

    def stop_reason(self, signals):
        """Why the loop must stop now (a signal's name, or the time limit), or None."""
        if signals:
            return signals[0]
        if self.deadline and self.now() + self.step_seconds + self.save_seconds >= self.deadline:
            return f"time limit of {duration_text(self.limit)} reached"
        return None
