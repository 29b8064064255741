"""Writes files in torch.save's zip format by hand (no torch), for the converter tests.

The pickle is emitted opcode by opcode (protocol 2) exactly as torch.save lays it out:
OrderedDict via REDUCE + SETITEMS; each tensor as
`torch._utils._rebuild_tensor_v2((BINPERSID ('storage', torch.FloatStorage, key, 'cpu', numel)),
offset, size, stride, False, OrderedDict())`; storages as `<archive>/data/<key>` records.
"""

import struct
import zipfile

import numpy as np

STORAGE_NAMES = {
    "float32": "FloatStorage", "float16": "HalfStorage", "bfloat16": "BFloat16Storage",
    "float64": "DoubleStorage", "int64": "LongStorage",
}


class Tensor:
    """A tensor to write: a flat storage (numpy; bfloat16 as uint16 bits) plus a view on it."""

    def __init__(self, storage, shape, stride=None, offset=0, dtype=None, key=None):
        self.storage = np.ascontiguousarray(storage).reshape(-1)
        self.dtype = dtype or self.storage.dtype.name
        self.shape = tuple(shape)
        if stride is None:
            stride, acc = [], 1
            for d in reversed(self.shape):
                stride.insert(0, acc)
                acc *= d
        self.stride = tuple(stride)
        self.offset = offset
        self.key = key  # share a storage between tensors by giving the same key

    @classmethod
    def of(cls, array):
        a = np.ascontiguousarray(array)
        return cls(a, a.shape)


class Raw:
    """Pre-built pickle opcodes (for malicious-file tests)."""

    def __init__(self, ops):
        self.ops = ops


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s):
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def _int(i):
    if 0 <= i < 256:
        return b"K" + bytes([i])
    if -2**31 <= i < 2**31:
        return b"J" + struct.pack("<i", i)
    raise ValueError(i)


def _tuple(items):
    if not items:
        return b")"
    return b"(" + b"".join(items) + b"t"


class _Writer:
    def __init__(self):
        self.storages = {}  # key -> bytes
        self.next_key = 0

    def value(self, v):
        if isinstance(v, Raw):
            return v.ops
        if isinstance(v, Tensor):
            return self.tensor(v)
        if isinstance(v, dict):
            items = b"".join(self.value(k) + self.value(x) for k, x in v.items())
            return glob("collections", "OrderedDict") + b")R" + (b"(" + items + b"u" if items else b"")
        if isinstance(v, bool):
            return b"\x88" if v else b"\x89"
        if isinstance(v, int):
            return _int(v)
        if isinstance(v, float):
            return b"G" + struct.pack(">d", v)
        if isinstance(v, str):
            return _str(v)
        if isinstance(v, (list, tuple)):
            inner = [self.value(x) for x in v]
            if isinstance(v, tuple):
                return _tuple(inner)
            return b"]" + (b"(" + b"".join(inner) + b"e" if inner else b"")
        if v is None:
            return b"N"
        raise TypeError(type(v))

    def tensor(self, t):
        key = t.key if t.key is not None else str(self.next_key)
        if t.key is None:
            self.next_key += 1
        data = t.storage.tobytes()  # as given: native (little-endian) unless the caller swaps
        self.storages.setdefault(key, data)
        pid = _tuple([_str("storage"), glob("torch", STORAGE_NAMES[t.dtype]), _str(key), _str("cpu"),
                      _int(t.storage.size)]) + b"Q"
        args = _tuple([pid, _int(t.offset), _tuple([_int(d) for d in t.shape]),
                       _tuple([_int(s) for s in t.stride]), b"\x89",
                       glob("collections", "OrderedDict") + b")R"])
        return glob("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def pickle_bytes(obj):
    w = _Writer()
    return b"\x80\x02" + w.value(obj) + b".", w.storages


def save(obj, path, archive="archive", byteorder="little"):
    """Writes obj (dicts, Tensor, str, int, float, bool, None, lists, tuples, Raw) like
    torch.save does."""
    data, storages = pickle_bytes(obj)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{archive}/data.pkl", data)
        z.writestr(f"{archive}/byteorder", byteorder)
        for key, raw in storages.items():
            z.writestr(f"{archive}/data/{key}", raw)
        z.writestr(f"{archive}/version", "3\n")
