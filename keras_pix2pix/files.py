"""Writing files so that a reader never sees half of one: write beside, then rename into place.

Every file keras-pix2pix writes for a user to keep (config.json, generator.keras, metrics.json,
predictions, export folders) goes through here; a kill or a full disk part-way leaves the
previous file as it was and at most a temporary file beside it.
"""

import contextlib
import errno
import fcntl
import os
import re
import shutil

from keras_pix2pix.errors import UsageError

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# The temporary names `replacing` gives: .STEM.tmp-PID or .STEM.tmp-PID.EXT.
_TEMPORARY = re.compile(r"\..+\.tmp-(\d+)(\.[^.]*)?")


@contextlib.contextmanager
def replacing(path):
    """Yields a temporary path beside `path`; on a clean exit it is renamed over `path`.

    The temporary path keeps `path`'s extension (Keras picks the format of `model.save` from it).
    On an error the temporary file or folder is removed and `path` is untouched.

    Args:
        path: the file or folder to write.

    Example:
    >>> import tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with replacing(target) as temporary:
    ...     _ = open(temporary, "w").write("hello")
    >>> open(target).read()
    'hello'
    """
    folder, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    temporary = os.path.join(folder, f".{stem}.tmp-{os.getpid()}{extension}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        # A failure of this file's own write (a full disk), named after the file the user knows
        # rather than its temporary name (which is gone); other errors (a network's) pass as they are.
        if error.filename not in (temporary, None) or (error.filename is None and error.errno not in _DISK_FULL):
            raise
        raise OSError(error.errno, error.strerror, path) from None
    finally:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
        elif os.path.exists(temporary):
            os.remove(temporary)


def write_atomically(path, contents):
    """Writes text or bytes to path through a temporary file beside it, flushed to disk first.

    Args:
        path: the file to write.
        contents: str or bytes.

    Example:
    >>> import tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "config.json")
    >>> write_atomically(target, "{}")
    >>> open(target).read()
    '{}'
    """
    with replacing(path) as temporary:
        with open(temporary, "wb" if isinstance(contents, bytes) else "w") as file:
            file.write(contents)
            file.flush()
            os.fsync(file.fileno())


def make_folder(path, what):
    """Creates a folder the user named (and its parents), or says in one line why it cannot be one.

    Args:
        path: the folder.
        what: how the user named it, for the message ("--output", "--workdir").

    Raises:
        UsageError when path, or a folder above it, is a file, or cannot be created.

    Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = open(os.path.join(folder, "notes.txt"), "w").close()
    >>> make_folder(os.path.join(folder, "notes.txt", "out"), "--output")
    Traceback (most recent call last):
    ...
    keras_pix2pix.errors.UsageError: --output .../notes.txt/out sits under .../notes.txt, which is a file
    """
    try:
        os.makedirs(path, exist_ok=True)
        return path
    except OSError as error:
        problem = error
    above = os.path.abspath(path)
    while above and not os.path.exists(above):
        above = os.path.dirname(above)
    if os.path.isfile(os.path.abspath(path)):
        raise UsageError(f"{what} {path} is a file, not a folder")
    if above and not os.path.isdir(above):
        raise UsageError(f"{what} {path} sits under {above}, which is a file")
    raise UsageError(f"{what} {path} cannot be created: {problem.strerror}")


def is_inside(path, folder):
    """Whether path is folder or lies under it (both resolved, links followed).

    Example:
    >>> is_inside("/data/a/out", "/data/a"), is_inside("/data/ab", "/data/a")
    (True, False)
    """
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def sweep_leftovers(folder, log=None):
    """Removes the temporary files and folders `replacing` left in folder when a process was killed.

    Only ours: names of the form `.STEM.tmp-PID[EXT]` whose process is gone, so that a temporary
    file a running command is writing is never touched.

    Args:
        folder: where to look (not recursive); a missing folder is fine.
        log: where a note of what was removed goes; None: nowhere.

    Returns:
        The paths removed.

    Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = open(os.path.join(folder, ".generator.tmp-999999999.keras"), "w").close()
    >>> [os.path.basename(path) for path in sweep_leftovers(folder)]
    ['.generator.tmp-999999999.keras']
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMPORARY.fullmatch(name)
        if not match or _process_alive(int(match.group(1))):
            continue
        path = os.path.join(folder, name)
        _remove(path)
        removed.append(path)
    if removed and log:
        log(f"removed {len(removed)} temporary file(s) left by an interrupted command in {folder}")
    return removed


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def locked(folder, what):
    """Holds an exclusive lock on folder for one process at a time (WORKDIR/.lock, flock).

    The lock goes with the process: a kill releases it, so a stale lock never blocks a resume.

    Args:
        folder: the folder to lock (it must exist).
        what: what the holder does, for the refusal's message ("fit").

    Raises:
        UsageError naming the process that holds the lock.
    """
    path = os.path.join(folder, ".lock")
    with open(path, "a+") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            raise UsageError(
                f"{folder} is in use by {holder}: wait for it to end (or stop it) before running {what} there"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"{what} (process {os.getpid()})")
        file.flush()
        try:
            yield
        finally:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
