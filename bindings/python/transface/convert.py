"""Converting official TransFace weights (.npz or torch .pt) to model files, and back.

    from transface.convert import convert, export
    convert("model.pt", "vit_s.tfm", arch="vit_s")        # or python3 -m transface convert ...
    export("vit_s.tfm", "vit_s.npz")

Sources hold arrays under the official PyTorch state_dict names (`blocks.0.attn.qkv.weight`,
...). The architecture is inferred from the shapes; num_heads cannot be, so it comes from
`arch` (a preset name), `num_heads`, or defaults to 8 (every official model).
"""

import math
import os
import re
import tempfile
import zipfile
from collections import OrderedDict

import numpy as np

from . import _torchfile
from ._api import Builder, Config, Model, config_preset, presets, version

__all__ = ["ConversionError", "SourceTensor", "open_source", "select_state_dict", "infer_config",
           "convert", "export", "CONVERTER_VERSION", "DEFAULT_NUM_HEADS"]

CONVERTER_VERSION = "1"
DEFAULT_NUM_HEADS = 8
OFFICIAL_IMG_SIZE = 112
SKIP_SUFFIXES = (".num_batches_tracked",)
SKIP_PREFIXES = ("partial_fc.", "module_partial_fc.", "margin_softmax.")


class ConversionError(Exception):
    """The source cannot be converted; the message names what is wrong (one line)."""


class SourceTensor:
    """One array of a source: shape and dtype up front, values on load()."""

    def __init__(self, shape, dtype, loader):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = str(dtype)  # numpy dtype name, or "bfloat16"
        self._loader = loader

    def load(self):
        return self._loader()

    def __repr__(self):
        return f"SourceTensor(shape={self.shape}, dtype={self.dtype})"


# ------------------------------------------------------------------ reading sources


def _npz_tensors(path):
    """Lazily readable arrays of an .npz: shapes from the .npy headers, data on load()."""
    archive = zipfile.ZipFile(path)
    out = OrderedDict()
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            continue
        name = info.filename[:-4]
        with archive.open(info) as f:
            try:
                major, _minor = np.lib.format.read_magic(f)
                if major == 1:
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            except ValueError as e:
                raise ConversionError(f"{os.path.basename(path)}: array '{name}' is not a valid "
                                      f".npy: {e}") from None

        def loader(info=info, name=name):
            with archive.open(info) as f:
                try:
                    return np.lib.format.read_array(f, allow_pickle=False)
                except ValueError as e:
                    raise ConversionError(f"array '{name}': {e}") from None

        out[name] = SourceTensor(shape, dtype.name if dtype.kind != "O" else "object", loader)
    return out


def _wrap_torchfile(obj):
    """Replaces TorchTensor leaves (our reader) by SourceTensor."""
    if isinstance(obj, _torchfile.TorchTensor):
        return SourceTensor(obj.shape, obj.dtype, obj.load)
    if isinstance(obj, dict):
        return OrderedDict((k, _wrap_torchfile(v)) for k, v in obj.items())
    return obj


def _wrap_torch(obj, torch):
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()

        def loader(t=t):
            if t.dtype == torch.bfloat16:
                return t.contiguous().view(torch.int16).numpy().view(np.uint16).copy()
            return t.contiguous().numpy().copy()

        name = "bfloat16" if t.dtype == torch.bfloat16 else str(t.dtype).replace("torch.", "")
        return SourceTensor(tuple(t.shape), name, loader)
    if isinstance(obj, dict):
        return OrderedDict((k, _wrap_torch(v, torch)) for k, v in obj.items())
    return obj


def _torch_module(use_torch):
    if use_torch is False or os.environ.get("TRANSFACE_NO_TORCH") == "1":
        return None
    try:
        import torch
    except Exception:
        if use_torch:
            raise ConversionError("torch was requested but cannot be imported") from None
        return None
    return torch


def open_source(path, use_torch=None):
    """(OrderedDict name -> SourceTensor or other values, description of the format).

    .npz archives are read with numpy. torch.save files are read with torch.load(...,
    weights_only=True) when torch imports (and use_torch is not False and TRANSFACE_NO_TORCH
    is not 1), otherwise by the restricted reader of transface._torchfile."""
    if not os.path.exists(path):
        raise ConversionError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ConversionError(f"{path} is a directory, not an .npz or .pt file")
    if os.path.getsize(path) == 0:
        raise ConversionError(f"{path} is empty")
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as e:
        raise ConversionError(f"{path}: {e.strerror or e}") from None
    if is_zip:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        if any(n.endswith("/data.pkl") and n.count("/") == 1 for n in names):
            return _open_torch(path, use_torch)
        if any(n.endswith(".npy") for n in names):
            try:
                return _npz_tensors(path), "npz"
            except zipfile.BadZipFile as e:
                raise ConversionError(f"{path}: damaged zip archive: {e}") from None
        raise ConversionError(f"{path} is a zip archive but neither an .npz nor a torch.save file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:1] == b"\x80" or path.endswith((".pt", ".pth")):
        return _open_torch(path, use_torch)
    raise ConversionError(f"{path} is neither an .npz archive nor a torch.save file")


def _open_torch(path, use_torch):
    torch = _torch_module(use_torch)
    if torch is not None:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConversionError(f"{path}: torch.load failed: {msg}") from None
        return _wrap_torch(obj, torch), "torch.load"
    try:
        obj = _torchfile.load(path)
    except _torchfile.TorchFileError as e:
        raise ConversionError(f"{path}: {e}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise ConversionError(f"{path}: {e}") from None
    return _wrap_torchfile(obj), "torch zip (read without torch)"


def select_state_dict(obj, notes):
    """The backbone state_dict of a loaded source: the object itself, or its
    'state_dict_backbone' entry (official training checkpoints); strips 'module.'."""
    if not isinstance(obj, dict):
        raise ConversionError(f"the file holds a {type(obj).__name__}, not a state_dict")
    if "state_dict_backbone" in obj:
        other = [k for k in obj if k != "state_dict_backbone"]
        notes.append("training checkpoint: using 'state_dict_backbone'"
                     + (f", ignoring {', '.join(map(str, other))}" if other else ""))
        obj = obj["state_dict_backbone"]
        if not isinstance(obj, dict):
            raise ConversionError("'state_dict_backbone' is not a dict of tensors")
    out = OrderedDict()
    stripped = 0
    for k, v in obj.items():
        if not isinstance(k, str):
            raise ConversionError(f"state_dict key {k!r} is not a string")
        if k.startswith("module."):
            k = k[len("module."):]
            stripped += 1
        if not isinstance(v, SourceTensor):
            raise ConversionError(f"entry '{k}' is a {type(v).__name__}, not a tensor")
        if k in out:
            raise ConversionError(f"tensor '{k}' appears twice (with and without 'module.')")
        out[k] = v
    if stripped:
        notes.append(f"stripped the 'module.' prefix from {stripped} names")
    if not out:
        raise ConversionError("the state_dict holds no tensors")
    return out


# ------------------------------------------------------------------ architecture


def _shape(shapes, name):
    s = shapes.get(name)
    return None if s is None else tuple(int(d) for d in s)


def infer_config(shapes, arch=None, num_heads=None, embedding_size=None, img_size=None,
                 notes=None):
    """The Config that official tensors of these shapes (name -> shape) describe.

    num_heads comes from arch (a preset name), else num_heads, else DEFAULT_NUM_HEADS (noted).
    embedding_size, when given, must agree with the shapes. img_size defaults to 112 when
    112 // patch gives the grid of pos_embed (official), else grid * patch."""
    notes = notes if notes is not None else []
    need = {"pos_embed": 3, "patch_embed.proj.weight": 4, "blocks.0.mlp.fc1.weight": 2,
            "feature.2.weight": 2}
    missing = [n for n in need if n not in shapes]
    if missing:
        raise ConversionError(f"cannot infer the architecture: missing {', '.join(missing)}")
    bad = [f"{n} {list(_shape(shapes, n))}" for n, nd in need.items() if len(_shape(shapes, n)) != nd]
    if bad:
        raise ConversionError(f"cannot infer the architecture: mis-shaped {', '.join(bad)}")
    _, patches, dim = _shape(shapes, "pos_embed")
    d_conv, channels, ph, pw = _shape(shapes, "patch_embed.proj.weight")
    hidden, d_fc1 = _shape(shapes, "blocks.0.mlp.fc1.weight")
    emb, d_f2 = _shape(shapes, "feature.2.weight")
    if ph != pw:
        raise ConversionError(f"patch_embed.proj.weight has a non-square {ph}x{pw} kernel")
    if d_conv != dim or d_fc1 != dim or d_f2 != dim:
        raise ConversionError(f"embed dims disagree: pos_embed {dim}, patch_embed.proj.weight "
                              f"{d_conv}, blocks.0.mlp.fc1.weight {d_fc1}, feature.2.weight {d_f2}")
    grid = math.isqrt(patches)
    if grid * grid != patches or patches < 2:
        raise ConversionError(f"pos_embed has {patches} patches, not a square grid")
    patch = ph
    if img_size is None:
        img_size = OFFICIAL_IMG_SIZE if OFFICIAL_IMG_SIZE // patch == grid else grid * patch
    elif img_size // patch != grid:
        raise ConversionError(f"img_size {img_size} with patch {patch} gives a {img_size // patch}"
                              f"-wide grid, pos_embed has {grid}x{grid}")
    blocks = set()
    for n in shapes:
        m = re.match(r"blocks\.(\d+)\.", n)
        if m:
            blocks.add(int(m.group(1)))
    depth = max(blocks) + 1 if blocks else 0
    gaps = sorted(set(range(depth)) - blocks)
    if gaps:
        raise ConversionError(f"blocks {', '.join(map(str, gaps))} are missing (depth {depth})")
    if embedding_size not in (None, 0) and int(embedding_size) != emb:
        raise ConversionError(f"--embedding-size {embedding_size} disagrees with feature.2.weight, "
                              f"which gives {emb}")
    cfg = Config(arch="custom", img_size=img_size, patch_size=patch, in_channels=channels,
                 embed_dim=dim, depth=depth, num_heads=DEFAULT_NUM_HEADS, mlp_hidden_dim=hidden,
                 embedding_size=emb)
    matches = [p for p in presets() if _same_shape_config(config_preset(p, emb), cfg)]
    if arch is not None:
        if arch not in presets():
            raise ConversionError(f"unknown --arch '{arch}'; known: {', '.join(presets())}")
        preset = config_preset(arch, emb)
        if not _same_shape_config(preset, cfg):
            raise ConversionError(
                f"the tensors do not match --arch {arch}: they give embed_dim {dim}, depth {depth}, "
                f"mlp {hidden}, patch {patch}, {patches} patches; {arch} has embed_dim "
                f"{preset.embed_dim}, depth {preset.depth}, mlp {preset.mlp_hidden_dim}, patch "
                f"{preset.patch_size}, {preset.num_patches} patches")
        cfg = preset
        if num_heads is not None and int(num_heads) != preset.num_heads:
            raise ConversionError(f"--num-heads {num_heads} contradicts --arch {arch} "
                                  f"({preset.num_heads} heads)")
        notes.append(f"num_heads {cfg.num_heads} from --arch {arch}")
    elif num_heads is not None:
        cfg.num_heads = int(num_heads)
        notes.append(f"num_heads {cfg.num_heads} from --num-heads")
    else:
        notes.append(f"num_heads cannot be inferred from shapes: using {DEFAULT_NUM_HEADS} "
                     "(every official model); pass --arch or --num-heads otherwise")
        if matches:
            notes.append(f"shapes match preset(s) {', '.join(matches)}")
    if cfg.num_heads < 1 or dim % cfg.num_heads:
        raise ConversionError(f"num_heads {cfg.num_heads} does not divide embed_dim {dim}")
    return cfg


def _same_shape_config(a, b):
    keys = ("img_size", "patch_size", "in_channels", "embed_dim", "depth", "mlp_hidden_dim",
            "embedding_size")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def _is_skipped(name):
    return name.endswith(SKIP_SUFFIXES) or name.startswith(SKIP_PREFIXES)


def check_tensors(tensors, expected):
    """Raises ConversionError listing missing, unknown and mis-shaped names."""
    missing = [n for n in expected if n not in tensors]
    unknown = [n for n in tensors if n not in expected]
    misshaped = [f"{n} {list(tensors[n].shape)} (expected {list(expected[n])})"
                 for n in expected if n in tensors and tuple(tensors[n].shape) != tuple(expected[n])]
    dtypes = [f"{n} ({tensors[n].dtype})" for n in expected if n in tensors
              and tensors[n].dtype not in ("float32", "float16", "float64", "bfloat16")]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown {len(unknown)}: {', '.join(unknown)}")
    if misshaped:
        problems.append(f"mis-shaped {len(misshaped)}: {', '.join(misshaped)}")
    if dtypes:
        problems.append(f"not floating point: {', '.join(dtypes)}")
    if problems:
        raise ConversionError("tensors do not match the architecture: " + "; ".join(problems))


# ------------------------------------------------------------------ convert / export


def convert(src, out, arch=None, num_heads=None, embedding_size=None, img_size=None,
            metadata=None, use_torch=None, log=None):
    """Converts an official state_dict (.npz or .pt) to a model file; returns the Config.

    Raises ConversionError for a source that cannot be converted (message names the problem)."""
    log = log or (lambda msg: None)
    notes = []
    obj, fmt = open_source(os.fspath(src), use_torch=use_torch)
    tensors = select_state_dict(obj, notes)
    skipped = [n for n in tensors if _is_skipped(n)]
    if skipped:
        notes.append(f"skipping {len(skipped)} tensor(s) that inference does not use: "
                     f"{', '.join(skipped)}")
    tensors = OrderedDict((n, t) for n, t in tensors.items() if not _is_skipped(n))
    cfg = infer_config({n: t.shape for n, t in tensors.items()}, arch=arch, num_heads=num_heads,
                       embedding_size=embedding_size, img_size=img_size, notes=notes)
    for n in notes:
        log(f"note: {n}")
    log(f"config: {cfg.arch}, img {cfg.img_size}, patch {cfg.patch_size}, embed_dim "
        f"{cfg.embed_dim}, depth {cfg.depth}, heads {cfg.num_heads}, mlp {cfg.mlp_hidden_dim}, "
        f"embedding {cfg.embedding_size}")
    try:
        builder = Builder(cfg)
    except Exception as e:
        raise ConversionError(f"the inferred architecture is not valid: {e}") from None
    with builder:
        check_tensors(tensors, builder.tensor_info())
        for name in builder.tensor_info():
            t = tensors[name]
            values = t.load()
            try:
                builder.set_tensor(name, values, dtype="bfloat16" if t.dtype == "bfloat16" else None)
            except Exception as e:
                raise ConversionError(str(e)) from None
            del values
        heads_from = ("--arch" if arch is not None else "--num-heads" if num_heads is not None
                      else f"default ({DEFAULT_NUM_HEADS})")
        meta = OrderedDict([
            ("source", os.path.basename(os.fspath(src))),
            ("source_format", fmt),
            ("converter", f"transface-python convert v{CONVERTER_VERSION} (libtransface {version()})"),
            ("arch", cfg.arch),
            ("num_heads_from", heads_from),
        ])
        meta.update(metadata or {})
        for k, v in meta.items():
            builder.set_metadata(k, v)
        builder.save(os.fspath(out))
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
