"""Datasets over the C ABI: InsightFace RecordIO training sets and .bin verification sets.

    import transface
    with transface.RecordIO("faces_emore") as rec:      # folder with train.rec/train.idx, or the .rec
        label, jpeg = rec[0]
        for label, jpeg in rec: ...
    transface.RecordIO.pack("aligned_faces/", "out/")   # one sub-folder per identity
    bins, issame = transface.read_bin("lfw.bin")        # safe: nothing in the file is executed
    transface.write_bin("lfw.bin", bins, issame)        # the bytes Python's pickle.dump writes

Paths inside dataset files (list entries) are resolved under the dataset root only: absolute
paths and ".." are refused.
"""

import ctypes
import os
from ctypes import byref, c_int32, c_size_t, c_void_p

import numpy as np

from . import _lib as L
from ._api import _Handle
from ._lib import InvalidArgumentError, check

__all__ = ["RecordIO", "read_bin", "write_bin"]

_LAYOUTS = {"flat": L.TRANSFACE_RECORDIO_FLAT, "legacy": L.TRANSFACE_RECORDIO_LEGACY}


class RecordIO(_Handle):
    """An InsightFace RecordIO training set (train.rec + train.idx + property), read without
    MXNet. Items are (label, encoded image bytes); reads may come from several threads."""
    _free_name = "transface_recordio_close"

    def __init__(self, path):
        super().__init__()
        h = c_void_p()
        check(L.lib().transface_recordio_open(L.encode_path(path), byref(h)))
        self._set_handle(h.value)
        self.path = os.fspath(path)

    def __repr__(self):
        if self.closed:
            return "<transface.RecordIO (closed)>"
        return f"<transface.RecordIO {self.path!r}: {len(self)} images, {self.num_classes} classes>"

    def __len__(self):
        return int(L.lib().transface_recordio_count(self._handle()))

    @property
    def num_classes(self):
        """Classes named by property or the legacy header (None when the set does not say)."""
        n = int(L.lib().transface_recordio_num_classes(self._handle()))
        return n or None

    def read(self, index):
        """(label, bytes) of image `index` (negative indices count from the end)."""
        h = self._handle()
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InvalidArgumentError(f"index must be an integer, got {type(index).__name__}")
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"image index out of range (0..{n - 1})")
        lib = L.lib()
        size = c_size_t()
        label = c_int32()
        check(lib.transface_recordio_read(h, index, byref(label), None, 0, byref(size)))
        buf = (ctypes.c_uint8 * max(size.value, 1))()
        check(lib.transface_recordio_read(h, index, byref(label), buf, size.value, byref(size)))
        return int(label.value), bytes(buf)[:size.value]

    def __getitem__(self, index):
        return self.read(index)

    def __iter__(self):
        for i in range(len(self)):
            yield self.read(i)

    def labels(self):
        """The label of every image (reads every record)."""
        return np.array([self.read(i)[0] for i in range(len(self))], dtype=np.int32)

    @staticmethod
    def pack(source, output_dir, root=None, layout="flat", image_size=(112, 112), jpeg_quality=0):
        """Pack an image folder (one sub-folder per identity) or a list file of
        "path<TAB>label" lines (paths under `root`, default the list's folder) into
        output_dir/train.rec, train.idx and property. Files are stored byte for byte, or with
        jpeg_quality 1..100 non-JPEG images are re-encoded as JPEG. layout: "flat" (insightface
        RecBuilder) or "legacy" (MS1MV2 header and identity records). Returns the number of
        images."""
        lib = L.lib()
        p = L.default_params("pack")
        if layout not in _LAYOUTS:
            raise InvalidArgumentError(f"layout must be 'flat' or 'legacy', got {layout!r}")
        p.layout = _LAYOUTS[layout]
        w, h = image_size
        p.image_width, p.image_height = int(w), int(h)
        p.jpeg_quality = int(jpeg_quality)
        n = c_size_t()
        check(lib.transface_recordio_pack(L.encode_path(source, "source"),
                                          None if root is None else L.encode_path(root, "root"),
                                          L.encode_path(output_dir, "output_dir"), byref(p), byref(n)))
        return int(n.value)


class _Bin(_Handle):
    _free_name = "transface_bin_close"


def read_bin(path):
    """(bins, issame): the encoded images (bytes; pair i is bins[2i], bins[2i+1]) and the
    same-person flags (bools) of an insightface .bin verification set. The pickle is read by
    the library's safe parser: nothing in the file is ever executed."""
    lib = L.lib()
    h = c_void_p()
    check(lib.transface_bin_open(L.encode_path(path), byref(h)))
    b = _Bin()
    b._set_handle(h.value)
    with b:
        pairs = int(lib.transface_bin_pair_count(h.value))
        bins = []
        data = L.u8_p()
        size = c_size_t()
        for i in range(2 * pairs):
            check(lib.transface_bin_image(h.value, i, byref(data), byref(size)))
            bins.append(ctypes.string_at(data, size.value) if size.value else b"")
        flags = np.zeros(max(pairs, 1), dtype=np.uint8)
        check(lib.transface_bin_issame(h.value, flags.ctypes.data_as(L.u8_p), pairs))
        return bins, [bool(f) for f in flags[:pairs]]


def write_bin(path, bins, issame, protocol=4):
    """Write a .bin set as pickle.dump((bins, issame), f, protocol) does (protocols 3-5: the
    same bytes as CPython; 2: Python 2 str opcodes). bins: 2 * len(issame) bytes-like images."""
    bins = [bytes(b) if not isinstance(b, bytes) else b for b in bins]
    issame = [bool(s) for s in issame]
    if len(bins) != 2 * len(issame):
        raise InvalidArgumentError(f"write_bin: {len(bins)} images for {len(issame)} pairs (need 2 per pair)")
    n = len(bins)
    keep = [ctypes.create_string_buffer(b, len(b)) if b else None for b in bins]
    ptrs = (L.u8_p * max(n, 1))(*[ctypes.cast(k, L.u8_p) if k is not None else L.u8_p() for k in keep])
    sizes = (c_size_t * max(n, 1))(*[len(b) for b in bins])
    flags = (ctypes.c_uint8 * max(len(issame), 1))(*[1 if s else 0 for s in issame])
    check(L.lib().transface_bin_write(L.encode_path(path), ptrs, sizes, flags, len(issame), int(protocol)))
