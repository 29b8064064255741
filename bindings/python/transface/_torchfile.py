"""Reading torch.save files without torch, safely.

A torch.save file (torch >= 1.6) is a zip archive holding `<name>/data.pkl`, a pickle of the
saved object, and one `<name>/data/<key>` record per storage. Tensors appear in the pickle as
calls to `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` whose storage is a
persistent id `('storage', torch.FloatStorage, key, location, numel)`.

This module unpickles data.pkl with an Unpickler whose find_class only resolves the handful of
globals such files need, each mapped to a numpy-building stand-in; any other global
(os.system, builtins.eval, ...) is refused with TorchFileError before anything runs. Tensors are
returned lazily (TorchTensor: shape and dtype known, data read from the zip on load()).
"""

import io
import pickle
import zipfile
from collections import OrderedDict

import numpy as np

__all__ = ["TorchFileError", "TorchTensor", "load", "is_torch_zip", "ALLOWED_GLOBALS"]


class TorchFileError(Exception):
    """The file is not a torch.save zip archive this reader accepts."""


class _NoState:
    """Stand-ins refuse pickle's BUILD (no attribute can be set on them from a file)."""

    def __setstate__(self, state):
        raise TorchFileError(f"a pickle tried to set the state of a {type(self).__name__}")


class StorageType(_NoState):
    """Stand-in for torch.FloatStorage & co.: only carries the element type."""

    def __init__(self, name, dtype):
        self.name = name
        self.dtype = dtype  # a numpy dtype string, or "bfloat16"

    @property
    def itemsize(self):
        return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize

    def __repr__(self):
        return f"torch.{self.name}"

    def __call__(self, *args, **kwargs):
        raise TorchFileError(f"torch.{self.name} cannot be constructed from a pickle")


_STORAGES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
}


class Storage(_NoState):
    """One storage record of the archive, read on demand."""

    def __init__(self, archive, record, stype, numel, byteorder):
        self.archive = archive
        self.record = record
        self.stype = stype
        self.numel = numel
        self.byteorder = byteorder

    def array(self):
        raw = self.archive.read(self.record)
        need = self.numel * self.stype.itemsize
        if len(raw) < need:
            raise TorchFileError(f"storage record {self.record} holds {len(raw)} bytes, "
                                 f"{need} expected")
        if self.stype.dtype == "bfloat16":
            dt = np.dtype(np.uint16)
        else:
            dt = np.dtype(self.stype.dtype)
        if dt.itemsize > 1 and self.byteorder == "big":
            dt = dt.newbyteorder(">")
        return np.frombuffer(raw, dtype=dt, count=self.numel).astype(dt.newbyteorder("="), copy=False)


class TorchTensor(_NoState):
    """A tensor of the file: shape and dtype now, values on load()."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.shape = tuple(size)
        self.stride = tuple(stride)

    @property
    def dtype(self):
        """numpy dtype name, or "bfloat16"."""
        return self.storage.stype.dtype

    def load(self):
        """The values as a numpy array (bfloat16 as uint16 bit patterns)."""
        flat = self.storage.array()
        if any(s == 0 for s in self.shape):
            return np.zeros(self.shape, dtype=flat.dtype)
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], shape=self.shape,
                                               strides=[s * item for s in self.stride],
                                               writeable=False)
        return np.array(view, copy=True)

    def __repr__(self):
        return f"TorchTensor(shape={self.shape}, dtype={self.dtype})"


def _int_tuple(v, what):
    if not isinstance(v, tuple) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise TorchFileError(f"tensor {what} must be a tuple of ints, got {v!r}")
    return v


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    if not isinstance(storage, Storage):
        raise TorchFileError(f"tensor storage is {type(storage).__name__}, not a storage record")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise TorchFileError(f"bad tensor storage offset {storage_offset!r}")
    size = _int_tuple(size, "size")
    stride = _int_tuple(stride, "stride")
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise TorchFileError(f"bad tensor size {size} / stride {stride}")
    if all(s > 0 for s in size):
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.numel:
            raise TorchFileError(f"tensor of size {size} at offset {storage_offset} reaches element "
                                 f"{last} of a storage of {storage.numel}")
    return TorchTensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, TorchTensor):
        raise TorchFileError("a Parameter must wrap a tensor")
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}
ALLOWED_GLOBALS.update({("torch", name): StorageType(name, dt) for name, dt in _STORAGES.items()})


class _Unpickler(pickle.Unpickler):
    def __init__(self, data, archive, prefix, byteorder):
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._byteorder = byteorder
        self._storages = {}
        self._records = set(archive.namelist())

    def find_class(self, module, name):
        target = ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise TorchFileError(
                f"refusing global '{module}.{name}' in {self._prefix}data.pkl: only tensors, "
                "storages and OrderedDict are allowed without torch")
        return target

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise TorchFileError(f"unsupported persistent id {pid!r:.80}")
        _, stype, key, _location, numel = pid
        if not isinstance(stype, StorageType):
            raise TorchFileError(f"unsupported storage type {stype!r:.80}")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise TorchFileError(f"bad storage reference {pid!r:.80}")
        s = self._storages.get(key)
        if s is None:
            record = f"{self._prefix}data/{key}"
            if record not in self._records:
                raise TorchFileError(f"storage record {record} is missing from the archive")
            size = self._archive.getinfo(record).file_size
            if size < numel * stype.itemsize:
                raise TorchFileError(f"storage record {record} holds {size} bytes, "
                                     f"{numel * stype.itemsize} expected")
            s = Storage(self._archive, record, stype, numel, self._byteorder)
            self._storages[key] = s
        elif s.stype.dtype != stype.dtype:
            raise TorchFileError(f"storage {key} is used with two element types")
        return s


def is_torch_zip(path):
    """True when path is a zip archive holding a `*/data.pkl` record."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("data.pkl") and n.count("/") == 1 for n in z.namelist())


def load(path):
    """Unpickles a torch.save zip archive: tensors become TorchTensor objects.

    The archive stays open as long as the returned tensors need it (they hold a reference)."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] == b"\x80":
            raise TorchFileError("this is a legacy (pre-1.6, non-zip) torch.save file; without "
                                 "torch only the zip format is read: re-save it with torch>=1.6 "
                                 "or install torch") from None
        raise TorchFileError("not a torch.save zip archive") from None
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise TorchFileError(f"expected one <name>/data.pkl record in the archive, found "
                             f"{len(pickles)}")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in archive.namelist():
        byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise TorchFileError(f"unknown byteorder {byteorder!r}")
    try:
        return _Unpickler(archive.read(pickles[0]), archive, prefix, byteorder).load()
    except TorchFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError) as e:
        raise TorchFileError(f"cannot unpickle {pickles[0]}: {type(e).__name__}: {e}") from None
