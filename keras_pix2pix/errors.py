"""The package's errors: UsageError for mistakes a user can make or meet, and how training ends early.

Their own module, below every other and without TensorFlow, so that the lowest modules
(keras_pix2pix.files) can raise them and the command line can catch them before anything heavy
is imported.
"""

import errno
import os
import stat


class UsageError(ValueError):
    """A problem with what the user asked for or gave us.

    The command line prints it as one line and exits with status 2; Python callers get a
    ValueError whose message names the argument, the allowed values and the value received.
    """


class DownloadError(OSError):
    """A download failed: a fault of the network or the server, not of what the user gave.

    An OSError of errno EIO, so that the command line reports it as the machine's I/O faults
    (status 1): the same command may work later, or offline with a local copy.
    """

    def __init__(self, message, url):
        super().__init__(errno.EIO, message, url)


class TrainingInterrupted(Exception):
    """Training stopped early after a checkpoint at `step` (SIGTERM, SIGINT or the time limit); the same command resumes."""

    def __init__(self, message, step):
        super().__init__(message)
        self.step = step

    def __reduce__(self):
        # Picklable with its step, so that it crosses process boundaries (multiprocessing, pools).
        return type(self), (str(self), self.step)


class Stopped(BaseException):
    """SIGTERM or SIGINT stopped a command at once (keras_pix2pix.stopping raises it).

    A BaseException, as KeyboardInterrupt is, so that an `except Exception` meant for a bad file
    never swallows a stop. On its way out, each unfinished temporary file or staging folder is
    removed and added to `removed`, so that the command can say what it cleaned up.
    """

    def __init__(self, signal_name):
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.removed = []


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


# What os.stat's file types are called in messages, for paths that are neither a file nor a folder.
_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISSOCK, "a socket"))


def path_kind(path):
    """What a path is, links followed: "a folder", "a regular file", "a character device", ..., or None when absent.

    Example:
    >>> path_kind("/dev/null"), path_kind("/"), path_kind("/no/such/path")
    ('a character device', 'a folder', None)
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def unusable_path(what, path, wanted):
    """The UsageError for a path that is not what was wanted: absent, or of another kind (/dev/zero is a device).

    Args:
        what: what the path was given as ("input", "model", "--inception-weights").
        path: the path.
        wanted: what it should be ("an image file or a folder").

    Example:
    >>> str(unusable_path("input", "/dev/zero", "an image file or a folder"))
    'input /dev/zero is a character device, not a regular file: give an image file or a folder'
    >>> str(unusable_path("input", "/no/such.png", "an image file or a folder"))
    'input /no/such.png does not exist'
    """
    kind = path_kind(path)
    if kind is None:
        return UsageError(f"{what} {path} does not exist")
    if kind in ("a folder", "a regular file"):
        return UsageError(f"{what} {path} is {kind}: give {wanted}")
    return UsageError(f"{what} {path} is {kind}, not a regular file: give {wanted}")
