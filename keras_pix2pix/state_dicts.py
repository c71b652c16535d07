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
"""

import collections
import functools
import math
import pickle
import struct
import zipfile

import numpy as np

from keras_pix2pix.errors import UsageError, first_line

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# The largest storage read: the published pix2pix generators hold 208 MB in all, and a zip member
# can claim any size (a few compressed kilobytes can inflate to gigabytes).
MAX_STORAGE_BYTES = 2**31
LEGACY_PROTOCOL = 1001
# PyTorch's storage types and the values they hold.
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}  # fmt: skip


class _StorageType:
    """What `torch.FloatStorage` and its kin unpickle to: the dtype of a storage."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


class _Parameter:
    """What `torch.nn.Parameter` unpickles to: a marker, since a parameter is stored as its tensor."""


class _Tensor:
    """What PyTorch's _rebuild_tensor(_v2) unpickles to: a strided view of a storage, made into an array later.

    Later, because the legacy format stores the storages after the pickle that refers to them.
    """

    def __init__(self, storage, offset, size, stride, *unused):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self):
        """The tensor's values, checked to lie inside its storage."""
        values, offset, size, stride = self.storage(), self.offset, self.size, self.stride
        if len(size) != len(stride) or min((*size, *stride, offset), default=0) < 0:
            raise ValueError(f"a tensor of size {size} and stride {stride} is malformed")
        if 0 in size:
            return np.zeros(size, values.dtype)
        if math.prod(size) > len(values):  # a stride-0 view could claim gigabytes of a 4-byte storage
            raise ValueError(f"a tensor of size {size} holds more values than its storage's {len(values)}")
        last = offset + sum((side - 1) * step for side, step in zip(size, stride))
        if last >= len(values):
            raise ValueError(f"a tensor reaches element {last} of a storage of {len(values)}")
        strides = tuple(step * values.itemsize for step in stride)
        return np.lib.stride_tricks.as_strided(values[offset:], shape=size, strides=strides).copy()


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


class _Unpickler(pickle.Unpickler):
    """An unpickler that resolves only _ALLOWED globals and hands storages to `storages`."""

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]()
        raise RefusedGlobal(f"{module}.{name}")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage" or not isinstance(pid[1], _StorageType):
            raise pickle.UnpicklingError(f"an unknown persistent id {str(pid)[:80]}")
        _, storage_type, key, _location, count = pid[:5]
        return self.storages(str(key), storage_type.dtype, int(count))


def _read_zip(path, archive):
    """The object of a zip-format checkpoint."""
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise ValueError("no ARCHIVE/data.pkl in the zip file")
    prefix = pickles[0][: -len("data.pkl")]
    big_endian = prefix + "byteorder" in archive.namelist() and archive.read(prefix + "byteorder").strip() == b"big"
    loaded = {}

    def storage(key, dtype, count):
        def values():
            if key not in loaded:
                if archive.getinfo(f"{prefix}data/{key}").file_size > MAX_STORAGE_BYTES:
                    raise ValueError(f"storage {key} is larger than {MAX_STORAGE_BYTES} bytes")
                raw = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype.newbyteorder(">" if big_endian else "<"))
                if len(raw) < count:
                    raise ValueError(f"storage {key} holds {len(raw)} values of the {count} announced")
                loaded[key] = raw.astype(dtype)
            return loaded[key]

        return values

    with archive.open(pickles[0]) as file:
        return _Unpickler(file, storage).load()


def _read_legacy(path, file):
    """The object of a legacy-format checkpoint."""
    no_storages = lambda key, dtype, count: None  # noqa: E731 - the header pickles hold none
    if _Unpickler(file, no_storages).load() != LEGACY_MAGIC:
        raise ValueError("not a PyTorch checkpoint (no PyTorch magic number)")
    if _Unpickler(file, no_storages).load() != LEGACY_PROTOCOL:
        raise ValueError("an unknown PyTorch protocol version")
    _Unpickler(file, no_storages).load()  # the saving system's description
    announced, loaded = {}, {}

    def storage(key, dtype, count):
        announced[key] = (dtype, count)
        return lambda: loaded[key]

    result = _Unpickler(file, storage).load()
    keys = _Unpickler(file, no_storages).load()
    if not isinstance(keys, list) or set(map(str, keys)) != set(announced):
        raise ValueError("the list of storages does not match the tensors")
    for key in map(str, keys):
        dtype, count = announced[key]
        (stored,) = struct.unpack("<q", file.read(8))
        raw = file.read(stored * dtype.itemsize)
        if stored < count or len(raw) != stored * dtype.itemsize:
            raise ValueError(f"storage {key} is cut short")
        loaded[key] = np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype)
    return result


def read_state_dict(path):
    """The tensors of a PyTorch state_dict file, as numpy arrays by name, without PyTorch.

    Args:
        path: a .pth file in PyTorch's zip or legacy format.

    Returns:
        An OrderedDict of name -> numpy array, in the file's order.

    Raises:
        UsageError, in one line, for a file that names anything outside the allow-list (a
        malicious or non-state_dict pickle: nothing of it is run), a truncated or corrupt file,
        or one that holds no tensors.

    Example:
    >>> read_state_dict(pytorch_checkpoint)["model.model.0.weight"].shape
    (2, 3, 4, 4)
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _tensors(path, _read_zip(path, archive))
        with open(path, "rb") as file:
            return _tensors(path, _read_legacy(path, file))
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
    """The state_dict in what was unpickled: the object itself, or its "state_dict" entry."""
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
        tensors[key[len("module."):] if str(key).startswith("module.") else str(key)] = value.array()
    return tensors
