"""Reading a PyTorch state_dict file (.pth) without PyTorch, and running nothing from it.

A .pth file is a pickle, and unpickling an untrusted pickle can run any code it names. So this
unpickler resolves only the globals a tensor state_dict holds (an OrderedDict, PyTorch's tensor
rebuild functions, its storage types) to harmless stand-ins of its own, and refuses any other
with one line naming it; nothing of PyTorch is imported.

Both of PyTorch's formats are read:
- the zip format (PyTorch 1.6 and later): ARCHIVE/data.pkl, whose persistent ids name the
  storages ARCHIVE/data/KEY (raw little-endian values, unless ARCHIVE/byteorder says big);
- the legacy format (the 2017-2019 checkpoints): pickles of a magic number, a protocol version
  and the system's description, then the object, then the list of storage keys, then each
  storage as an int64 count followed by its raw values.

What a file makes the reader hold is bounded by what a pix2pix generator needs (MAX_CHECKPOINT_BYTES),
counted from the sizes its pickle announces before any storage is read; a storage is read once,
however many tensors view it.
"""

import collections
import functools
import math
import os
import pickle
import struct
import zipfile

import numpy as np

from keras_pix2pix.errors import UsageError, first_line

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
# The most a checkpoint may make the reader hold: in its storages, and again in its tensors (which
# the importer copies). Both are counted from the sizes the pickle announces, before any value is
# read. The largest generator the importer is for, junyanz's U-Net 256 at 64 base filters, is
# 218 MB of float32: 512 MiB holds it twice over, or saved in float64 (436 MB), or a U-Net 1024
# (318 MB), and refuses the few compressed kilobytes that claim gigabytes (a zip member can
# inflate a thousandfold, and one storage can be named by any number of keys).
MAX_CHECKPOINT_BYTES = 2**29
# How much of a zip member is inflated at a time.
READ_PIECE_BYTES = 2**22
# The largest ARCHIVE/data.pkl read: a U-Net's holds names and sizes only, some 10 KB.
MAX_PICKLE_BYTES = 2**24
# PyTorch's storage types and the values they hold.
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """What `torch.FloatStorage` and its kin unpickle to: the dtype of a storage."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


class _Parameter:
    """What `torch.nn.Parameter` unpickles to: a marker, since a parameter is stored as its tensor."""


class _Storage:
    """A storage a pickle names: its dtype and count as announced, and its values, read once when first needed.

    Args:
        key: its name in the file.
        dtype: the numpy dtype of its values.
        count: the number of values the pickle announces.
        read: a function of the storage that reads its values from the file.
    """

    def __init__(self, key, dtype, count, read):
        self.key, self.dtype, self.count, self.read = key, dtype, count, read
        self.loaded = None

    @property
    def bytes(self):
        return self.count * self.dtype.itemsize

    def values(self):
        if self.loaded is None:
            self.loaded = self.read(self)
        return self.loaded


class _Tensor:
    """What PyTorch's _rebuild_tensor(_v2) unpickles to: a strided view of a storage, made into an array later.

    Later, because the legacy format stores the storages after the pickle that refers to them, and
    because the sizes of all the tensors are checked before any storage is read.
    """

    def __init__(self, storage, offset, size, stride, *unused):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def checked_bytes(self):
        """The bytes of the tensor's values, once checked to lie inside its storage's announced count."""
        storage, offset, size, stride = self.storage, self.offset, self.size, self.stride
        if not isinstance(storage, _Storage):
            raise TypeError(f"a tensor's storage is a {type(storage).__name__}")
        numbers = (*size, *stride, offset)
        if len(size) != len(stride) or not all(type(number) is int and number >= 0 for number in numbers):
            raise ValueError(f"a tensor of size {size}, stride {stride} and offset {offset} is malformed")
        if 0 in size:
            return 0
        if math.prod(size) > storage.count:  # a stride-0 view could claim gigabytes of a 4-byte storage
            raise ValueError(f"a tensor of size {size} holds more values than its storage's {storage.count}")
        last = offset + sum((side - 1) * step for side, step in zip(size, stride))
        if last >= storage.count:
            raise ValueError(f"a tensor reaches element {last} of a storage of {storage.count}")
        return math.prod(size) * storage.dtype.itemsize

    def array(self):
        """The tensor's values (after checked_bytes), a read-only view: a storage is held once, however many keys name it."""
        values = self.storage.values()
        if 0 in self.size:
            return np.zeros(self.size, values.dtype)
        strides = tuple(step * values.itemsize for step in self.stride)
        return np.lib.stride_tricks.as_strided(values[self.offset :], self.size, strides, writeable=False)


def _parameter(data, *unused):
    return data  # a parameter is stored as its tensor


def _from_type(function, new_type, arguments, state):
    return function(*arguments)


# (module, name) -> a maker of what it unpickles to: everything a tensor state_dict holds, and
# nothing else. Each global is made afresh for each file, so that a pickle that sets attributes on
# what it was handed (pickle's BUILD can) changes nothing beyond its own load.
_ALLOWED = {
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): lambda: functools.partial(_Tensor),
    ("torch._utils", "_rebuild_tensor_v2"): lambda: functools.partial(_Tensor),
    ("torch._utils", "_rebuild_parameter"): lambda: functools.partial(_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): lambda: functools.partial(_parameter),
    ("torch._tensor", "_rebuild_from_type_v2"): lambda: functools.partial(_from_type),
    ("torch.nn.parameter", "Parameter"): _Parameter,
    **{("torch", name): functools.partial(_StorageType, dtype) for name, dtype in STORAGE_DTYPES.items()},
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle named a global outside the allow-list."""


class _Unpickler(pickle._Unpickler):
    """An unpickler that resolves only _ALLOWED globals and makes each storage it names a _Storage, once per key.

    Python's own unpickler rather than its C accelerator: the C one grows its memo to whatever
    index a PUT opcode names, so that a pickle of 9 bytes makes it allocate 4 GB; this one keeps
    its memo in a dict.

    Args:
        file: the pickle, opened in binary.
        read_storage: how a storage's values are read (see _Storage); None: the pickle may name none.
    """

    def __init__(self, file, read_storage=None):
        super().__init__(file)
        self.read_storage = read_storage
        self.storages = {}  # key -> _Storage

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]()
        raise RefusedGlobal(f"{module}.{name}")

    def persistent_load(self, pid):
        if (self.read_storage is None or not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"an unknown persistent id {str(pid)[:80]}")
        _, storage_type, key, _location, count = pid[:5]
        key, dtype, count = str(key), storage_type.dtype, int(count)
        if count < 0:
            raise pickle.UnpicklingError(f"storage {key} announces {count} values")
        storage = self.storages.setdefault(key, _Storage(key, dtype, count, self.read_storage))
        if (storage.dtype, storage.count) != (dtype, count):
            raise pickle.UnpicklingError(
                f"storage {key} is announced as {storage.count} {storage.dtype} values and as {count} {dtype}"
            )
        return storage


def _read_zip(archive):
    """The object of a zip-format checkpoint; its storages are read from the open archive when first needed."""
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise ValueError("no ARCHIVE/data.pkl in the zip file")
    if archive.getinfo(pickles[0]).file_size > MAX_PICKLE_BYTES:
        raise ValueError(f"{pickles[0]} inflates to more than {MAX_PICKLE_BYTES} bytes, where a state_dict's is kilobytes")
    prefix = pickles[0][: -len("data.pkl")]
    big_endian = False
    if prefix + "byteorder" in archive.namelist():
        with archive.open(prefix + "byteorder") as file:
            big_endian = file.read(16).strip() == b"big"

    def read(storage):
        # The announced bytes only (those were capped), whatever the member claims to inflate to, and
        # in pieces straight into the array: a zip member's read(n) would hold its result twice.
        values = np.empty(storage.count, storage.dtype.newbyteorder(">" if big_endian else "<"))
        raw, filled = values.view(np.uint8), 0
        with archive.open(f"{prefix}data/{storage.key}") as file:
            while filled < storage.bytes and (piece := file.read(min(READ_PIECE_BYTES, storage.bytes - filled))):
                raw[filled : filled + len(piece)] = np.frombuffer(piece, np.uint8)
                filled += len(piece)
        if filled < storage.bytes:
            held = filled // storage.dtype.itemsize
            raise ValueError(f"storage {storage.key} holds {held} values of the {storage.count} announced")
        return values.astype(storage.dtype, copy=False)

    with archive.open(pickles[0]) as file:
        return _Unpickler(file, read).load()


def _read_legacy(file):
    """The object of a legacy-format checkpoint; its storages, which follow the pickles, are read when first needed."""
    if _Unpickler(file).load() != LEGACY_MAGIC:
        raise ValueError("not a PyTorch checkpoint (no PyTorch magic number)")
    if _Unpickler(file).load() != LEGACY_PROTOCOL:
        raise ValueError("an unknown PyTorch protocol version")
    _Unpickler(file).load()  # the saving system's description

    def read(first_needed):
        # The storages lie one after the other in the order of `keys`: all are read at the first need of one.
        for key in keys:
            storage = unpickler.storages[key]
            (stored,) = struct.unpack("<q", file.read(8))
            raw = file.read(storage.bytes) if stored >= storage.count else b""
            if len(raw) != storage.bytes:
                raise ValueError(f"storage {key} is cut short")
            file.seek((stored - storage.count) * storage.dtype.itemsize, os.SEEK_CUR)  # values no tensor reaches
            storage.loaded = np.frombuffer(raw, storage.dtype.newbyteorder("<")).astype(storage.dtype, copy=False)
        return first_needed.loaded

    unpickler = _Unpickler(file, read)
    result = unpickler.load()
    keys = _Unpickler(file).load()
    if not isinstance(keys, list) or len(keys) != len(unpickler.storages) or set(map(str, keys)) != set(unpickler.storages):
        raise ValueError("the list of storages does not match the tensors")
    keys = list(map(str, keys))
    return result


def read_state_dict(path):
    """The tensors of a PyTorch state_dict file, as numpy arrays by name, without PyTorch.

    Args:
        path: a .pth file in PyTorch's zip or legacy format.

    Returns:
        An OrderedDict of name -> numpy array (a read-only view of the file's storage), in the
        file's order.

    Raises:
        UsageError, in one line, for a file that names anything outside the allow-list (a
        malicious or non-state_dict pickle: nothing of it is run), a truncated or corrupt file,
        one that holds no tensors, or one whose storages or tensors announce more than
        MAX_CHECKPOINT_BYTES (refused before anything is inflated).

    Example:
    >>> read_state_dict(pytorch_checkpoint)["model.model.0.weight"].shape
    (2, 3, 4, 4)
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _tensors(path, _read_zip(archive))
        with open(path, "rb") as file:
            return _tensors(path, _read_legacy(file))
    except RefusedGlobal as refused:
        raise UsageError(
            f"refusing {path}: its pickle asks for {refused}, which a state_dict of tensors never holds; "
            "nothing from it was run"
        ) from None
    except UsageError:
        raise
    except OSError as error:
        raise UsageError(f"{path} cannot be read: {error.strerror or first_line(error)}") from None
    except Exception as error:  # noqa: BLE001 - a damaged pickle fails in many ways; each means: not readable
        raise UsageError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt: {first_line(error)})") from None


def _tensors(path, result):
    """The state_dict in what was unpickled (itself, or its "state_dict" entry), its sizes checked before any value is read."""
    if isinstance(result, dict) and isinstance(result.get("state_dict"), dict):
        result = result["state_dict"]
    if not isinstance(result, dict) or not result:
        raise UsageError(f"{path} holds a {type(result).__name__}, not a state_dict of tensors")
    nested = [key for key, value in result.items() if isinstance(value, dict)]
    if nested:
        raise UsageError(
            f"{path} holds several networks ({', '.join(map(str, nested[:4]))}): save and import one generator's state_dict"
        )
    tensors = collections.OrderedDict()
    for key, value in result.items():
        if not isinstance(value, _Tensor):
            raise UsageError(f"{path} holds {type(value).__name__} at {key!r}, not a tensor")
        # DataParallel prefixes every name with "module."
        name = str(key).removeprefix("module.")
        if name in tensors:
            raise UsageError(f"{path} holds {name!r} twice, with and without DataParallel's 'module.' prefix")
        tensors[name] = value
    _check_sizes(path, tensors.values())
    return collections.OrderedDict((name, tensor.array()) for name, tensor in tensors.items())


def _check_sizes(path, tensors):
    """Refuses, from the sizes the pickle announces, storages or tensors that add up to more than MAX_CHECKPOINT_BYTES.

    Args:
        path: the file's name, for messages.
        tensors: the file's _Tensors, none of whose storages has been read.
    """
    tensor_bytes = sum(tensor.checked_bytes() for tensor in tensors)
    storages = list({id(tensor.storage): tensor.storage for tensor in tensors}.values())
    largest = max(storages, key=lambda storage: storage.bytes)
    if largest.bytes > MAX_CHECKPOINT_BYTES:
        raise UsageError(
            f"refusing {path}: its storage {largest.key} announces {largest.bytes:,} bytes, more than the "
            f"{MAX_CHECKPOINT_BYTES:,} any pix2pix generator needs; nothing was inflated"
        )
    storage_bytes = sum(storage.bytes for storage in storages)
    for what, total in ((f"{len(storages)} storages", storage_bytes), (f"{len(tensors)} tensors", tensor_bytes)):
        if total > MAX_CHECKPOINT_BYTES:
            raise UsageError(
                f"refusing {path}: its {what} add up to {total:,} bytes, more than the {MAX_CHECKPOINT_BYTES:,} "
                "any pix2pix generator needs; nothing was inflated"
            )
