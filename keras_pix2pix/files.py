"""Writing files so that a reader never sees half of one: write beside, then rename into place.

Every file keras-pix2pix writes for a user to keep (config.json, generator.keras, metrics.json,
predictions, export folders) goes through here; a kill or a full disk part-way leaves the
previous file as it was and at most a temporary file beside it.
"""

import contextlib
import os
import shutil


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
