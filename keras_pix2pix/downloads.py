"""Files fetched over the network and archives read without extracting them.

A download goes to a temporary file beside its destination and is kept only when it has every
byte the server announced and reads end to end (a tar archive, or what the caller's check
reads); its SHA-256 is returned, so that a caller can record it. Each later use of a cached
archive compares its digest with the one pinned for it (check_pinned) and with the one recorded
at its first use (check_recorded). An archive is read member by member (safe_archive_files),
never extracted: an entry that would escape its folder, a link or a device is refused.

keras_pix2pix.release downloads the pix2pix datasets through it, keras_pix2pix.importing the
authors' pretrained generators.
"""

import hashlib
import http.client
import os
import pathlib
import tarfile
import urllib.error
import urllib.request
import zlib

from keras_pix2pix.config import UsageError
from keras_pix2pix.files import replacing, write_atomically
from keras_pix2pix.progress import Progress

# The largest archive member read as an image: members are read whole into memory, so a larger
# one is refused before it is read. No JPEG or PNG under the pixel limit is anywhere near this: an
# 8-bit RGB image of config.MAX_PIXELS (50 million) pixels is 150 MB even stored raw, and the
# release's images are tens of kilobytes. A member this large is a broken or hostile archive.
MAX_IMAGE_BYTES = 256 * 1024 * 1024
# What reading a damaged archive raises: tarfile's own errors, EOFError (gzip data cut short),
# zlib.error (corrupt deflate data) and OSError (a bad gzip header or CRC, a failed read).
ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)
# Reads of archives and downloads go in pieces of this size, so memory stays flat.
CHUNK_BYTES = 1 << 20
# What to do when a download of the pix2pix release fails, the end of each of those errors (the
# default of download; keras_pix2pix.importing passes its own).
RETRY = (
    "try again, set KERAS_PIX2PIX_DATASETS_URL to a mirror, or download the archive by hand and pass --manual-dir"
)


def _fetch(url, temporary):
    """Writes url's body to temporary, showing its progress; returns (its SHA-256, bytes received, Content-Length or None)."""
    digest, received = hashlib.sha256(), 0
    with urllib.request.urlopen(url, timeout=60) as response, open(temporary, "wb") as file:
        announced = response.headers.get("Content-Length")
        expected = int(announced) if announced and announced.strip().isdigit() else None
        megabytes = expected // CHUNK_BYTES if expected else None
        # In megabytes (CHUNK_BYTES); a line per tenth of the archive in a log.
        progress = Progress(megabytes, "downloaded MB", rate_unit="MB", log_every=max(1, (megabytes or 500) // 10))
        while chunk := response.read(CHUNK_BYTES):
            digest.update(chunk)
            file.write(chunk)
            received += len(chunk)
            if received // CHUNK_BYTES > progress.last_done:
                progress.update(received // CHUNK_BYTES)
        progress.close()
    # http.client ends a body cut short quietly (an empty read), so the count is compared here.
    return digest.hexdigest(), received, expected


def download(url, destination, verify=None, kind="tar.gz archive", retry=RETRY):
    """Downloads a tar archive (or, with verify, another file) from url to destination; returns its SHA-256.

    The body goes to a temporary file beside destination, which is moved into place only when it
    holds every byte of the server's Content-Length and reads end to end as a tar archive (so
    gzip's CRC and the tar structure are checked): a download cut short or corrupted is never
    cached. On any error, an interruption included, the temporary file is removed.

    Args:
        url: the archive's address.
        destination: where to keep it.
        verify: reads the downloaded file end to end, raising when it is incomplete; None: verify_archive.
        kind: what the file is, for the message when verify fails.
        retry: what to do when it fails, ending each message (the mirror's variable, the file to fetch by hand).

    Raises:
        UsageError naming the url, what was wrong and what to do.

    Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with tarfile.open(os.path.join(folder, "a.tar.gz"), "w:gz"):
    ...     pass
    >>> len(download(f"file://{folder}/a.tar.gz", os.path.join(folder, "cached.tar.gz")))
    64
    """
    try:
        with replacing(destination) as temporary:
            digest, received, expected = _fetch(url, temporary)
            if expected is not None and received != expected:
                raise UsageError(
                    f"the download of {url} was cut short: got {received} of {expected} bytes; nothing was kept: {retry}"
                )
            try:
                (verify or verify_archive)(temporary)
            except (*ARCHIVE_ERRORS, UsageError) as error:
                problem = f"is not a complete {kind}: {_reason(error)}"
                raise UsageError(f"the download of {url} {problem}; nothing was kept: {retry}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", None) or _reason(error)
        raise UsageError(f"could not download {url}: {reason} ({retry})") from None
    return digest


def _reason(error):
    """An error's message on one line (tarfile's can span several), or its type when it has none."""
    return " ".join(str(error).split()) or type(error).__name__


def _damaged(path, error):
    """The one-line message of an archive that failed to read with error."""
    return f"{path} is damaged (truncated or corrupt: {_reason(error)}); delete it and download it again"


def verify_archive(path):
    """Reads a tar archive end to end, in pieces, so that a truncated or corrupt one fails here.

    Every member is visited and each file member read through; then the rest of the stream is
    read, since tarfile stops at the end-of-archive blocks and gzip checks its CRC and length
    only at the very end.

    Args:
        path: the archive (tar, or tar compressed with gzip, bz2 or xz).

    Raises:
        One of ARCHIVE_ERRORS, as the reading raised it.

    Example:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.tar.gz")
    >>> with tarfile.open(path, "w:gz"):
    ...     pass
    >>> verify_archive(path)
    """
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            if member.isfile():
                with archive.extractfile(member) as contents:
                    while contents.read(CHUNK_BYTES):
                        pass
        while archive.fileobj.read(CHUNK_BYTES):
            pass


def file_sha256(path):
    """The hex SHA-256 of a file, read in pieces so memory stays flat.

    Args:
        path: the file.

    Example:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "empty")
    >>> open(path, "wb").close()
    >>> file_sha256(path)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def check_pinned(path, digest, pinned):
    """Refuses a file whose digest differs from the one pinned for it, when one is.

    Args:
        path: the file, for the message.
        digest: its SHA-256 now.
        pinned: the SHA-256 it must have, or None when none is known.

    Raises:
        UsageError naming both digests.

    Example:
    >>> check_pinned("a.tar.gz", "0" * 64, None)  # nothing pinned: accepted
    """
    if pinned and digest != pinned:
        raise UsageError(
            f"{path} has SHA-256 {digest}, not the known {pinned}: a corrupt or altered archive; "
            "delete it and try again"
        )


def check_recorded(path, record, digest):
    """Compares an archive's digest with the one recorded at its first use; records it when none is.

    An archive with no record yet (one given with --manual-dir, or cached before records were
    kept) is read end to end before its digest is recorded, so that a damaged file is never the
    reference that a good one is later compared with.

    Args:
        path: the archive.
        record: its record file, holding the hex SHA-256.
        digest: the archive's SHA-256 now.

    Raises:
        UsageError when the archive changed, naming both digests and the record to delete to
        accept it; UsageError when an archive with no record is damaged.

    Example:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.tar.gz")
    >>> with tarfile.open(path, "w:gz"):
    ...     pass
    >>> check_recorded(path, f"{path}.sha256", file_sha256(path))  # the first use records it
    >>> open(f"{path}.sha256").read().strip() == file_sha256(path)
    True
    """
    if os.path.isfile(record):
        with open(record) as file:
            recorded = file.read().strip()
        if recorded != digest:
            raise UsageError(
                f"{path} has changed since its first use: SHA-256 {digest}, recorded {recorded} in {record}; "
                f"if the new archive is the one you want, delete {record} to accept it"
            )
        return
    try:
        verify_archive(path)
    except ARCHIVE_ERRORS as error:
        raise UsageError(_damaged(path, error)) from None
    write_atomically(record, digest + "\n")


def _refuse_unsafe(path, member):
    """Refuses a member that would escape the archive's folder, a link or a device."""
    parts = pathlib.PurePosixPath(member.name).parts
    if member.name.startswith(("/", "\\")) or ".." in parts or ":" in member.name.split("/")[0]:
        raise UsageError(f"refusing {path}: entry {member.name!r} points outside the archive's folder")
    if member.issym() or member.islnk():
        raise UsageError(f"refusing {path}: entry {member.name!r} is a link")
    if not (member.isfile() or member.isdir()):
        raise UsageError(f"refusing {path}: entry {member.name!r} is not a regular file")


def safe_archive_files(path, wanted=None):
    """Yields (member name, bytes) of the wanted files of a tar archive, refusing unsafe entries.

    Nothing is extracted to disk. An entry that would escape the archive's folder (an absolute
    path or a `..` component), a link, or a device is refused with a UsageError, whether wanted
    or not: such an archive is not the release, and an extracting tool would write outside its
    target. Members that are not wanted are skipped without reading their bytes; a wanted one
    larger than MAX_IMAGE_BYTES is refused before it is read.

    Args:
        path: the archive.
        wanted: a predicate on the member name; None reads every file.

    Raises:
        UsageError for an unsafe entry, an oversized member, or a damaged archive (truncated or
        corrupt, one line).

    Example:
    >>> import io, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.tar.gz")
    >>> with tarfile.open(path, "w:gz") as archive:
    ...     for name in ("a/train/1.png", "a/notes.txt"):
    ...         archive.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    >>> [name for name, _ in safe_archive_files(path, wanted=lambda name: name.endswith(".png"))]
    ['a/train/1.png']
    """
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                _refuse_unsafe(path, member)
                if not member.isfile() or (wanted is not None and not wanted(member.name)):
                    continue  # tarfile moves past its bytes when it reads the next header
                if member.size > MAX_IMAGE_BYTES:
                    raise UsageError(
                        f"refusing {path}: entry {member.name!r} is {member.size} bytes, over the "
                        f"{MAX_IMAGE_BYTES}-byte bound of an image (MAX_IMAGE_BYTES)"
                    )
                with archive.extractfile(member) as contents:
                    data = contents.read()
                yield member.name, data
            while archive.fileobj.read(CHUNK_BYTES):
                pass  # the end of the stream, where gzip checks its CRC
    except ARCHIVE_ERRORS as error:
        raise UsageError(_damaged(path, error)) from None
