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

from keras_pix2pix.errors import Stopped, UsageError

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# Every temporary name carries the package's mark and the writing process's id: .STEM.tmp-keras-pix2pix-PID
# (+ the target's extension). A sweep removes only names with the mark whose process is gone, so a
# user's own ".thesis.tmp-999.tex" is never ours to touch.
_MARK = "tmp-keras-pix2pix"
_TEMPORARY = re.compile(rf"\..+\.{_MARK}-(\d+)(\.[^.]*)?")
# Inside each staging folder: the proof that this package made it (a folder is swept only with it).
STAGING_MARKER = ".keras-pix2pix-staging"


def temporary_name(name):
    """The name of this process's temporary for `name`: hidden, marked, with the same extension.

    Example:
    >>> temporary_name("generator.keras").startswith(".generator.tmp-keras-pix2pix-")
    True
    """
    stem, extension = os.path.splitext(name)
    return f".{stem}.{_MARK}-{os.getpid()}{extension}"


def _removed_on_the_way_out(path, error):
    """Removes an unfinished temporary path; a stop (SIGTERM, SIGINT) learns what it cleaned up."""
    if not os.path.lexists(path):
        return
    _remove(path)
    if isinstance(error, Stopped):
        error.removed.append(path)


@contextlib.contextmanager
def replacing(path):
    """Yields a temporary path beside `path`; on a clean exit it is renamed over `path`.

    The temporary path keeps `path`'s extension (Keras picks the format of `model.save` from it).
    On an error, or a stop, the temporary file is removed and `path` is untouched.

    Args:
        path: the file to write.

    Example:
    >>> import tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with replacing(target) as temporary:
    ...     _ = open(temporary, "w").write("hello")
    >>> open(target).read()
    'hello'
    """
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, temporary_name(name))
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        _removed_on_the_way_out(temporary, error)
        # A failure of this file's own write (a full disk), named after the file the user knows
        # rather than its temporary name (which is gone); other errors (a network's) pass as they are.
        if error.filename not in (temporary, None) or (error.filename is None and error.errno not in _DISK_FULL):
            raise
        raise OSError(error.errno, error.strerror, path) from None
    except BaseException as error:
        _removed_on_the_way_out(temporary, error)
        raise


@contextlib.contextmanager
def staging_folder(folder, name):
    """Yields a new, marked, hidden folder inside `folder` to assemble `name` in; it is removed when the block ends.

    The caller moves what it assembled into place before the block ends; whatever is still there
    afterwards (an error, a stop) is removed. The marker file inside proves to a later sweep that
    the folder is this package's.

    Args:
        folder: where to stage (a folder the command writes into, never the parent of one the user named).
        name: what is assembled, for the staging folder's name.

    Example:
    >>> import tempfile
    >>> with staging_folder(tempfile.mkdtemp(), "export") as staging:
    ...     sorted(os.listdir(staging))
    ['.keras-pix2pix-staging']
    >>> os.path.exists(staging)
    False
    """
    staging = os.path.join(folder, temporary_name(name))
    _remove(staging)  # this process's own, from an earlier call that could not clean up
    try:
        os.makedirs(staging)
        try:
            with open(os.path.join(staging, STAGING_MARKER), "w") as marker:
                marker.write(f"made by keras-pix2pix (process {os.getpid()}); removed when that process is gone\n")
        except OSError as error:  # a full disk fails the flush at close, which names no file
            raise OSError(error.errno, error.strerror, folder) from None
        yield staging
    except BaseException as error:
        _removed_on_the_way_out(staging, error)
        raise
    _remove(staging)


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


@contextlib.contextmanager
def output_folder(path, what, own=()):
    """Makes the folder a command writes into (see make_folder); a failed or stopped command leaves no empty folder it made.

    Args:
        path: the folder.
        what: how the user named it, for messages ("--output").
        own: names of files the command keeps in it that go with a folder it made (fit's ".lock").

    Example:
    >>> import tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "reports", "today")
    >>> try:
    ...     with output_folder(target, "--output"):
    ...         raise OSError("the disk is full")
    ... except OSError:
    ...     os.path.exists(os.path.dirname(target))
    False
    """
    made = []
    above = os.path.abspath(path)
    while not os.path.lexists(above):
        made.append(above)
        above = os.path.dirname(above)
    make_folder(path, what)
    try:
        yield path
    except BaseException:
        if made:
            for name in own:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(path, name))
            for root, _, _ in sorted(os.walk(made[0]), key=lambda entry: -len(entry[0])):
                _remove_if_empty(root)
            for folder in made[1:]:
                _remove_if_empty(folder)
        raise


def _remove_if_empty(folder):
    with contextlib.suppress(OSError):
        os.rmdir(folder)


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
    except (ProcessLookupError, OverflowError):  # gone, or a number no process id can be
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def sweep_leftovers(folder, log):
    """Removes what this package's killed commands left in folder: only what it can prove it made.

    A file is ours when its name carries the package's mark (`.STEM.tmp-keras-pix2pix-PID[EXT]`),
    a folder when it also holds the staging marker; either only when process PID is gone, so that
    what a running command is writing is never touched. The current folder is never swept (a
    folder the user works in is not the package's to tidy), nor is anything outside `folder`.

    Args:
        folder: a folder the command writes into (not recursive); a missing folder is fine.
        log: takes the one line that names what was removed.

    Returns:
        The paths removed.

    Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> for name in (".generator.tmp-keras-pix2pix-999999999.keras", ".thesis.tmp-999999999.tex"):
    ...     _ = open(os.path.join(folder, name), "w").close()
    >>> removed = sweep_leftovers(folder, log=lambda line: None)
    >>> [os.path.basename(path) for path in removed], sorted(os.listdir(folder))
    (['.generator.tmp-keras-pix2pix-999999999.keras'], ['.thesis.tmp-999999999.tex'])
    """
    if os.path.realpath(folder) == os.path.realpath(os.getcwd()):
        return []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(folder, name)
        if _left_by_a_killed_command(path, name):
            _remove(path)
            removed.append(path)
    if removed:
        names = ", ".join(os.path.basename(path) for path in removed)
        log(f"removed what an interrupted keras-pix2pix command left in {folder}: {names}")
    return removed


def _left_by_a_killed_command(path, name):
    match = _TEMPORARY.fullmatch(name)
    if not match or _process_alive(int(match.group(1))):
        return False
    if os.path.islink(path):
        return False
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, STAGING_MARKER))
    return os.path.isfile(path)


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


_DISK_FULL_TEXT = re.compile(r"No space left on device|Disk quota exceeded|File too large")
# Absolute paths in an error's text (TensorFlow names the file it failed to write there).
_PATH_IN_TEXT = re.compile(r"(/[^\s'\"{}:;,()\[\]]+)")


def full_disk_path(error):
    """Where a full disk stopped a write, when `error` (or an error that caused it) is one; else None.

    Python's own writes raise OSError(ENOSPC) with the file's name (files.replacing names the
    file the user knows); TensorFlow's raise an OpError (ResourceExhaustedError, UnknownError)
    whose text ends "No space left on device" after the path of a temporary file: for those the
    answer is the nearest folder that still exists above it (the temporary files are gone by now).

    Args:
        error: any exception.

    Returns:
        A path, "" when the disk is full but no path is known, or None when error is no full disk.

    Example:
    >>> full_disk_path(OSError(errno.ENOSPC, "No space left on device", "/tmp/out.png"))
    '/tmp/out.png'
    >>> full_disk_path(RuntimeError("{{node /job:localhost}} /tmp/run/ckpt-1_temp/part-0; No space left on device"))
    '/tmp'
    >>> full_disk_path(ValueError("bad value")) is None
    True
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            return _outside_staging(os.fsdecode(error.filename)) if error.filename else ""
        if _DISK_FULL_TEXT.search(str(error)):
            folders = [_existing_folder_above(path) for path in _PATH_IN_TEXT.findall(str(error))]
            return next((folder for folder in folders if folder not in ("/", "")), "")
        error = error.__cause__ or error.__context__
    return None


def _outside_staging(path):
    """A path in a staging folder as the user can find it: the folder the staging is in, and the file's name."""
    parts = path.split(os.sep)
    marked = next((index for index, part in enumerate(parts) if _TEMPORARY.fullmatch(part)), None)
    if marked is None or marked == len(parts) - 1:
        return path
    return f"{os.sep.join(parts[:marked])} ({parts[-1]})"


def _existing_folder_above(path):
    folder = os.path.dirname(path)
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    return folder


def free_space_text(path):
    """The free space of the disk holding path, for messages ("12.3 MB free there"); "" when unknown.

    Example:
    >>> free_space_text("/").endswith("free there")
    True
    """
    folder = path or "."
    while folder and not os.path.exists(folder):
        folder = os.path.dirname(folder)
    try:
        free = shutil.disk_usage(folder or ".").free
    except OSError:
        return ""
    return f"{free / 1e6:.1f} MB free there"
