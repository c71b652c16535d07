"""Checking a local folder's files before training, and remembering which ones passed.

A bad file (corrupt, truncated, oversized, a pair of unequal halves) found in the middle of a run
would stop it hours in, so fit decodes every file of a local folder before its first step. That
takes minutes on a large folder; so the files that passed are remembered, by path, size and
modification time, in DATA_DIR/checked/ (one JSON file per folder), and a later run or resume on
the same folder decodes only the files that are new or changed since.
"""

import concurrent.futures
import hashlib
import json
import os
import time

from keras_pix2pix import data
from keras_pix2pix.config import MAX_PIXELS, UsageError
from keras_pix2pix.datasets import FilePairs
from keras_pix2pix.files import write_atomically
from keras_pix2pix.progress import format_duration

# Under the data directory: what earlier checks found good.
MEMORY_FOLDER = "checked"


def _pair_problem(a_path, b_path, max_pixels=MAX_PIXELS):
    """(the path at fault, its problem, {path: (height, width)} of the files read well) for one pair."""
    contents = []
    for path in (a_path, b_path) if b_path else (a_path,):
        try:
            with open(path, "rb") as file:
                contents.append(file.read())
        except OSError as error:
            return path, f"cannot be read: {error.strerror}", {}
    a_problem, a_size = data.inspect_image(contents[0], ab=not b_path, max_pixels=max_pixels)
    if a_problem or not b_path:
        return a_path, a_problem, {} if a_problem else {a_path: a_size}
    b_problem, b_size = data.inspect_image(contents[1], max_pixels=max_pixels)
    if b_problem:
        return b_path, b_problem, {}
    if a_size != b_size:
        return b_path, (
            f"is {b_size[1]}x{b_size[0]} but its partner {a_path} is {a_size[1]}x{a_size[0]}: "
            "the two images of a pair must have the same size"
        ), {}
    return a_path, None, {a_path: a_size, b_path: b_size}


def _signature(path):
    """[size, modification time in ns] of a file (through links), or None when it cannot be read."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return [status.st_size, status.st_mtime_ns]


def memory_path(data_dir, pairs):
    """The JSON file that remembers the checked files of the folder holding pairs' first files."""
    folder = os.path.dirname(os.path.realpath(pairs.a[0]))
    key = hashlib.sha256(os.fsencode(folder)).hexdigest()[:20]
    return os.path.join(data_dir, MEMORY_FOLDER, f"{key}.json")


def _read_memory(path):
    """{path: [size, mtime_ns, height, width, ab]} remembered in path; {} when absent or damaged."""
    try:
        with open(path, encoding="utf-8") as file:
            files = json.load(file)["files"]
        return {name: entry for name, entry in files.items() if isinstance(entry, list) and len(entry) == 5}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # a damaged memory only costs a full check


def _remembered(memory, path, ab, max_pixels):
    """Whether path passed an earlier check unchanged, and its size is still within max_pixels."""
    entry = memory.get(os.fsdecode(path))
    if entry is None or entry[:2] != _signature(path):
        return False
    return entry[2] * entry[3] <= max_pixels and (entry[4] or not ab)


def _write_memory(path, memory, log):
    """Writes the memory atomically; a failure (read-only data directory, full disk) costs the next start only."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomically(path, json.dumps({"files": memory}))
    except OSError as error:
        log(f"note: could not remember the checked files in {path} ({error.strerror}): the next start checks again")


def _quiet(line):
    """A log that shows nothing: a check that remembers nothing says nothing, as before it remembered."""


def _remember(where, memory, pairs, results, log):
    """Adds the files of the pairs that passed to the memory, drops those deleted since, and writes it."""
    for index, (_, _, sizes) in results.items():
        for path, (height, width) in sizes.items():
            signature = _signature(path)
            if signature is not None:  # a file deleted since it was read is not remembered
                memory[os.fsdecode(path)] = [*signature, height, width, not pairs.b[index]]
    for path in [path for path in memory if not os.path.exists(path)]:
        del memory[path]
    _write_memory(where, memory, log)


def _check_all(pairs, indices, max_pixels, log):
    """_pair_problem of the pairs at indices, on a pool of threads, with a line before and after."""
    folder = os.path.dirname(pairs.a[0])
    log(f"checking {len(indices):,} new or changed pair(s) of {folder}: each file is decoded once, and the "
        "files that pass are remembered, so later runs on this folder start at once")
    started = time.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2))
    try:
        results = list(pool.map(_pair_problem, [pairs.a[i] for i in indices], [pairs.b[i] for i in indices],
                                [max_pixels] * len(indices)))
    finally:
        # A stop (SIGTERM at start-up raises here) must not wait for every file still queued.
        pool.shutdown(wait=True, cancel_futures=True)
    log(f"checked {len(indices):,} pair(s) in {format_duration(time.monotonic() - started)}")
    return results


def check_pairs(pairs, skip_bad=False, log=print, max_pixels=MAX_PIXELS, data_dir=None):
    """Decodes every pair of a FilePairs before training, so that no bad file stops a run later.

    Args:
        pairs: FilePairs (TfdsPairs were checked when they were prepared and pass unchanged).
        skip_bad: drop bad pairs and report how many, instead of failing on the first.
        log: where the check's lines and the skip report go.
        max_pixels: the largest image accepted, read from each file's header before it is decoded.
        data_dir: where to remember the files that passed (DATA_DIR/checked/), so that a later
            check decodes only new or changed ones; None: nothing is remembered.

    Returns:
        The pairs, less the bad ones when skip_bad.

    Raises:
        UsageError naming the first bad file and its problem (with the count of bad files).

    Example:
    >>> from keras_pix2pix.datasets import local_splits
    >>> len(check_pairs(local_splits(pairs_folder).train, log=lambda line: None))
    2
    """
    if not isinstance(pairs, FilePairs):
        return pairs
    where = memory_path(data_dir, pairs) if data_dir else None
    memory = _read_memory(where) if where else {}
    unknown = [index for index in range(len(pairs))
               if not all(_remembered(memory, path, not pairs.b[index], max_pixels)
                          for path in (pairs.a[index], pairs.b[index]) if path)]
    results = dict(zip(unknown, _check_all(pairs, unknown, max_pixels, log if where else _quiet))) if unknown else {}
    if where and unknown:
        _remember(where, memory, pairs, results, log)
    bad = sorted(index for index, (_, problem, _) in results.items() if problem)
    if not bad:
        return pairs
    path, problem, _ = results[bad[0]]
    if not skip_bad:
        raise UsageError(f"{path} {problem} ({len(bad)} bad file(s) in all; --skip-bad skips them)")
    log(f"skipped {len(bad)} bad file(s) of {len(pairs)}; the first: {path} {problem}")
    bad = set(bad)
    keep = [index for index in range(len(pairs)) if index not in bad]
    if not keep:
        raise UsageError(f"every file is bad; the first: {path} {problem}")
    return FilePairs(tuple(pairs.a[i] for i in keep), tuple(pairs.b[i] for i in keep))
