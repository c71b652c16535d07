"""The package's errors: UsageError for mistakes a user can make or meet, and how training ends early.

Their own module, below every other and without TensorFlow, so that the lowest modules
(keras_pix2pix.files) can raise them and the command line can catch them before anything heavy
is imported.
"""


class UsageError(ValueError):
    """A problem with what the user asked for or gave us.

    The command line prints it as one line and exits with status 2; Python callers get a
    ValueError whose message names the argument, the allowed values and the value received.
    """


class TrainingInterrupted(Exception):
    """Training stopped early after a checkpoint at `step` (SIGTERM, SIGINT or the time limit); the same command resumes."""

    def __init__(self, message, step):
        super().__init__(message)
        self.step = step

    def __reduce__(self):
        # Picklable with its step, so that it crosses process boundaries (multiprocessing, pools).
        return type(self), (str(self), self.step)


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is untouched."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written; the last good checkpoint is untouched."""


def first_line(error, limit=200):
    """The first line of an exception's message (its type's name when it has none), for one-line reports.

    Example:
    >>> first_line(ValueError("bad value\\nsecond line"))
    'bad value'
    """
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]
