"""The package's one error for mistakes a user can make or meet; every module raises it.

Its own module, below every other, so that the lowest modules (keras_pix2pix.files) can raise
it without importing the configuration.
"""


class UsageError(ValueError):
    """A problem with what the user asked for or gave us.

    The command line prints it as one line and exits with status 2; Python callers get a
    ValueError whose message names the argument, the allowed values and the value received.
    """


def first_line(error, limit=200):
    """The first line of an exception's message (its type's name when it has none), for one-line reports.

    Example:
    >>> first_line(ValueError("bad value\\nsecond line"))
    'bad value'
    """
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]
