"""Converting official TransFace weights (.npz or torch .pt) to model files, and back.

    from transface.convert import convert, export
    convert("model.pt", "vit_s.tfm", arch="vit_s")        # or python3 -m transface convert ...
    export("vit_s.tfm", "vit_s.npz")

The conversion is the library's (transface_convert_state_dict, the converter of `transface
convert`): sources hold arrays under the official PyTorch state_dict names
(`blocks.0.attn.qkv.weight`, ...), .pt files are read without torch. The architecture is
inferred from the shapes; num_heads cannot be, so it comes from `arch` (a preset name),
`num_heads`, or defaults to 8 (every official model).
"""

import ctypes
import os
import tempfile
from ctypes import byref, c_char_p, c_int32, c_int64

import numpy as np

from . import _lib as L
from ._api import Config, Model

__all__ = ["ConversionError", "infer_config", "convert", "export"]

# Statuses that mean the source or the options were refused (others, such as an output that
# cannot be written, stay the library's own errors).
_REFUSED = (L.TRANSFACE_INVALID_ARGUMENT, L.TRANSFACE_FORMAT, L.TRANSFACE_NOT_FOUND, L.TRANSFACE_NUMERIC)


class ConversionError(L.Error):
    """The source cannot be converted, or the options contradict it; the message names what is
    wrong (one line). `status` is the library's transface_status."""


def _refusals(call):
    """Runs call(), raising library refusals as ConversionError."""
    try:
        return call()
    except L.Error as e:
        if e.status in _REFUSED:
            raise ConversionError(e.message, e.status) from None
        raise


def _int32(value, what):
    v = 0 if value is None else int(value)
    if not -2**31 <= v < 2**31:
        raise L.InvalidArgumentError(f"{what} {v} is out of range")
    return v


class _Params:
    """transface_convert_params of the keyword options, holding what its pointers point to."""

    def __init__(self, arch=None, num_heads=None, embedding_size=None, img_size=None, metadata=None):
        self.notes = []
        p = L.transface_convert_params()
        L.check(L.lib().transface_convert_params_init(byref(p), ctypes.sizeof(p)))
        p.num_heads = _int32(num_heads, "num_heads")
        p.embedding_size = _int32(embedding_size, "embedding_size")
        p.img_size = _int32(img_size, "img_size")
        p.arch = None if arch is None else L.encode(arch, "arch")
        pairs = list(dict(metadata or {}).items())
        self._metadata = (c_char_p * max(2 * len(pairs), 1))(
            *[L.encode(s, "metadata") for kv in pairs for s in kv])
        p.metadata = ctypes.cast(self._metadata, ctypes.POINTER(c_char_p))
        p.metadata_count = len(pairs)
        self._note = L.transface_convert_note(lambda _user, line: self.notes.append(line.decode("utf-8", "replace")))
        p.note = self._note
        self.c = p


def infer_config(shapes, arch=None, num_heads=None, embedding_size=None, img_size=None, notes=None):
    """The Config that official tensors of these shapes (name -> shape) describe, as convert()
    infers it (transface_convert_infer_config). Notes are appended to `notes` when given.

    num_heads comes from arch (a preset name), else num_heads, else 8 (noted). embedding_size,
    when given, must agree with the shapes. img_size defaults to 112 when 112 // patch gives the
    grid of pos_embed (official), else grid * patch. Raises ConversionError."""
    def call():
        params = _Params(arch, num_heads, embedding_size, img_size)
        names = [L.encode(n, "tensor name") for n in shapes]
        dims = [int(d) for n in shapes for d in shapes[n]]
        ndims = [len(shapes[n]) for n in shapes]
        c = L.new_struct(L.transface_config)
        L.check(L.lib().transface_convert_infer_config(
            (c_char_p * max(len(names), 1))(*names), (c_int32 * max(len(ndims), 1))(*ndims),
            (c_int64 * max(len(dims), 1))(*dims), len(names), byref(params.c), byref(c)))
        return Config._from_c(c), params.notes
    cfg, new_notes = _refusals(call)
    if notes is not None:
        notes.extend(new_notes)
    return cfg


def convert(src, out, arch=None, num_heads=None, embedding_size=None, img_size=None,
            metadata=None, use_torch=None, log=None):
    """Converts an official state_dict (.npz or torch.save .pt) to a model file; returns the Config.

    `metadata` (a dict) adds entries after the converter's own. `log` receives the notes
    ("note: ..."), the config and "wrote OUT". `use_torch` is accepted for compatibility and
    ignored: .pt files are always read by the library, without torch. Raises ConversionError
    for a source that cannot be converted (the message names the problem)."""
    del use_torch
    log = log or (lambda msg: None)

    def call():
        params = _Params(arch, num_heads, embedding_size, img_size, metadata)
        c = L.new_struct(L.transface_config)
        L.check(L.lib().transface_convert_state_dict(L.encode_path(src, "source path"), byref(params.c),
                                                     L.encode_path(out, "output path"), byref(c)))
        return Config._from_c(c), params.notes
    cfg, notes = _refusals(call)
    for n in notes:
        log(f"note: {n}")
    log(f"config: {cfg.arch}, img {cfg.img_size}, patch {cfg.patch_size}, embed_dim "
        f"{cfg.embed_dim}, depth {cfg.depth}, heads {cfg.num_heads}, mlp {cfg.mlp_hidden_dim}, "
        f"embedding {cfg.embedding_size}")
    log(f"wrote {out}")
    return cfg


def export(model_path, out):
    """Writes every tensor of a model file to an .npz under its official name (float32)."""
    with Model(model_path) as m:
        sd = m.state_dict()
    out = os.fspath(out)
    folder = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **sd)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return list(sd)
