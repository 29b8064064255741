"""The Pythonic layer over the C ABI: Model, Context, Builder, Config, Preprocess."""

import dataclasses
import os
import threading
from collections import OrderedDict
from ctypes import byref, c_char_p, c_float, c_int64, c_void_p

import numpy as np

from . import _lib as L
from ._lib import InvalidArgumentError, MisuseError, check

__all__ = [
    "Config", "Preprocess", "Model", "Context", "Builder", "compare", "presets",
    "config_preset", "version", "version_number", "format_version",
]

# ------------------------------------------------------------------ library facts


def version():
    """Version string of the loaded library ("MAJOR.MINOR.PATCH")."""
    return L.lib().transface_version_string().decode()


def version_number():
    """MAJOR * 10000 + MINOR * 100 + PATCH of the loaded library."""
    return int(L.lib().transface_version_number())


def format_version():
    """Newest model file format version the library reads (and the one it writes)."""
    return int(L.lib().transface_format_version())


def presets():
    """Names of the official configurations."""
    lib = L.lib()
    names = []
    for i in range(lib.transface_config_preset_count()):
        name = lib.transface_config_preset_name(i)
        if name is None:
            break
        names.append(name.decode())
    return names


def config_preset(name, embedding_size=0):
    """The official configuration `name` (embedding_size 0 means 512) as a Config."""
    c = L.new_struct(L.transface_config)
    check(L.lib().transface_config_preset(L.encode(name, "preset name"), int(embedding_size), byref(c)))
    return Config._from_c(c)


def compare(a, b):
    """Cosine similarity of two embeddings (any length, need not be normalised)."""
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32).reshape(-1))
    b = np.ascontiguousarray(np.asarray(b, dtype=np.float32).reshape(-1))
    if a.shape != b.shape:
        raise InvalidArgumentError(f"compare: embeddings have different lengths {a.size} and {b.size}")
    out = c_float()
    check(L.lib().transface_compare(_fptr(a), _fptr(b), a.size, byref(out)))
    return float(out.value)


def _fptr(a):
    return a.ctypes.data_as(L.float_p)


def _f32(v):
    """A float32 value as the shortest Python float that round-trips (0.1, not 0.100000001)."""
    return float(str(np.float32(v)))


# ------------------------------------------------------------------ plain data


@dataclasses.dataclass
class Config:
    """Architecture of a TransFace ViT (transface_config)."""
    arch: str = "custom"
    img_size: int = 112
    patch_size: int = 9
    in_channels: int = 3
    embed_dim: int = 512
    depth: int = 12
    num_heads: int = 8
    mlp_hidden_dim: int = 2048
    embedding_size: int = 512
    drop_path_rate: float = 0.0
    mask_ratio: float = 0.0
    se_gate: bool = True   # False: plain ViT without the SE module (the paper's ablation baseline)

    @property
    def grid(self):
        return self.img_size // self.patch_size

    @property
    def num_patches(self):
        return self.grid * self.grid

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def coerce(cls, obj):
        """A Config from a Config, a dict of its fields, or a preset name."""
        if isinstance(obj, Config):
            return dataclasses.replace(obj)
        if isinstance(obj, str):
            return config_preset(obj)
        if isinstance(obj, dict):
            names = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(obj) - names)
            if unknown:
                raise InvalidArgumentError(f"config: unknown field(s) {', '.join(unknown)}")
            return cls(**obj)
        raise InvalidArgumentError(f"config must be a Config, dict or preset name, got {type(obj).__name__}")

    def _to_c(self):
        c = L.new_struct(L.transface_config)
        arch = L.encode(self.arch, "config.arch")
        if len(arch) > 31:
            raise InvalidArgumentError(f"config: arch name {self.arch!r} is longer than 31 bytes")
        c.arch = arch
        for f in ("img_size", "patch_size", "in_channels", "embed_dim", "depth", "num_heads",
                  "mlp_hidden_dim", "embedding_size"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not -2**31 <= v < 2**31:
                raise InvalidArgumentError(f"config: {f} must be a 32-bit integer, got {v!r}")
            setattr(c, f, int(v))
        c.drop_path_rate = float(self.drop_path_rate)
        c.mask_ratio = float(self.mask_ratio)
        if not isinstance(self.se_gate, (bool, np.bool_)):
            raise InvalidArgumentError(f"config: se_gate must be a bool, got {self.se_gate!r}")
        c.no_se_gate = 0 if self.se_gate else 1
        return c

    @classmethod
    def _from_c(cls, c):
        return cls(arch=c.arch.decode("utf-8", "replace"), img_size=c.img_size, patch_size=c.patch_size,
                   in_channels=c.in_channels, embed_dim=c.embed_dim, depth=c.depth,
                   num_heads=c.num_heads, mlp_hidden_dim=c.mlp_hidden_dim,
                   embedding_size=c.embedding_size, drop_path_rate=_f32(c.drop_path_rate),
                   mask_ratio=_f32(c.mask_ratio), se_gate=c.no_se_gate == 0)


_CHANNEL_ORDERS = {"RGB": L.TRANSFACE_CHANNELS_RGB, "BGR": L.TRANSFACE_CHANNELS_BGR}


@dataclasses.dataclass
class Preprocess:
    """How images must be prepared for a model (transface_preprocess)."""
    input_width: int = 112
    input_height: int = 112
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.5, 0.5, 0.5)
    channel_order: str = "RGB"
    align_template: tuple = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366),
                             (41.5493, 92.3655), (70.7299, 92.2041))

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def coerce(cls, obj):
        if isinstance(obj, Preprocess):
            return dataclasses.replace(obj)
        if isinstance(obj, dict):
            names = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(obj) - names)
            if unknown:
                raise InvalidArgumentError(f"preprocess: unknown field(s) {', '.join(unknown)}")
            return cls(**obj)
        raise InvalidArgumentError(f"preprocess must be a Preprocess or dict, got {type(obj).__name__}")

    def _to_c(self):
        p = L.new_struct(L.transface_preprocess)
        p.input_width = int(self.input_width)
        p.input_height = int(self.input_height)

        def floats(values, n, what):
            a = np.asarray(values, dtype=np.float64).reshape(-1)
            if a.size != n:
                raise InvalidArgumentError(f"preprocess: {what} needs {n} values, got {a.size}")
            return [float(v) for v in a]

        p.mean[:] = floats(self.mean, 3, "mean")
        p.std[:] = floats(self.std, 3, "std")
        p.align_template[:] = floats(self.align_template, 10, "align_template")
        order = self.channel_order
        if isinstance(order, str):
            if order.upper() not in _CHANNEL_ORDERS:
                raise InvalidArgumentError(f"preprocess: channel_order {order!r} is not 'RGB' or 'BGR'")
            order = _CHANNEL_ORDERS[order.upper()]
        p.channel_order = int(order)
        return p

    @classmethod
    def _from_c(cls, p):
        names = {v: k for k, v in _CHANNEL_ORDERS.items()}
        t = list(p.align_template)
        return cls(input_width=p.input_width, input_height=p.input_height, mean=tuple(map(_f32, p.mean)),
                   std=tuple(map(_f32, p.std)), channel_order=names.get(p.channel_order, p.channel_order),
                   align_template=tuple((_f32(t[2 * i]), _f32(t[2 * i + 1])) for i in range(5)))


def _read_tensor_infos(count, info_fn, handle):
    infos = OrderedDict()
    for i in range(count):
        t = L.new_struct(L.transface_tensor_info)
        check(info_fn(handle, i, byref(t)))
        infos[t.name.decode()] = tuple(int(t.dims[k]) for k in range(t.ndim))
    return infos


# ------------------------------------------------------------------ images


def _prepare_images(images, what="images"):
    """(contiguous uint8 NHWC array, single?) after checking dtype and shape."""
    if not isinstance(images, np.ndarray):
        raise InvalidArgumentError(f"{what} must be a numpy uint8 array of shape [N, H, W, 3] or "
                                   f"[H, W, 3], got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise InvalidArgumentError(f"{what} must have dtype uint8, got {images.dtype}")
    single = images.ndim == 3
    if single:
        images = images[np.newaxis]
    if images.ndim != 4 or images.shape[3] != 3:
        raise InvalidArgumentError(f"{what} must have shape [N, H, W, 3] or [H, W, 3], got "
                                   f"{list(images.shape if not single else images.shape[1:])}")
    n, h, w, _ = images.shape
    if h >= 2**31 or w >= 2**31:
        raise InvalidArgumentError(f"{what} are too large ({w}x{h})")
    return np.ascontiguousarray(images), single


# ------------------------------------------------------------------ handles


class _Handle:
    """Owns one C handle; freed by close(), the context manager or the garbage collector."""
    _free_name = None

    def __init__(self):
        self._h = None
        self._free = None

    def _set_handle(self, handle):
        self._h = handle
        self._free = getattr(L.lib(), self._free_name)

    def close(self):
        h, self._h = self._h, None
        if h is not None and self._free is not None:
            self._free(h)

    @property
    def closed(self):
        return self._h is None

    def _handle(self):
        if self._h is None:
            raise MisuseError(f"this {type(self).__name__} is closed", L.TRANSFACE_MISUSE)
        return self._h

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Model(_Handle):
    """A loaded model file (.tfm); immutable and shareable between threads."""
    _free_name = "transface_model_free"

    def __init__(self, path, verify_checksums=True, max_weight_bytes=0):
        super().__init__()
        lib = L.lib()
        params = L.default_params("load")
        params.verify_checksums = 1 if verify_checksums else 0
        if int(max_weight_bytes) < 0:
            raise InvalidArgumentError(f"max_weight_bytes must be >= 0, got {max_weight_bytes}")
        params.max_weight_bytes = int(max_weight_bytes)
        h = c_void_p()
        check(lib.transface_model_load(L.encode_path(path), byref(params), byref(h)))
        self._init(h.value)
        self.path = os.fspath(path)

    @classmethod
    def _from_handle(cls, handle):
        m = cls.__new__(cls)
        _Handle.__init__(m)
        m._init(handle)
        m.path = None
        return m

    def _init(self, handle):
        self._set_handle(handle)
        self._ctx_lock = threading.Lock()
        self._ctx = None  # (threads, max_batch, Context)
        lib = L.lib()
        c = L.new_struct(L.transface_config)
        check(lib.transface_model_get_config(handle, byref(c)))
        self._config = Config._from_c(c)
        p = L.new_struct(L.transface_preprocess)
        check(lib.transface_model_get_preprocess(handle, byref(p)))
        self._preprocess = Preprocess._from_c(p)
        self._infos = None

    def close(self):
        ctx = getattr(self, "_ctx", None)
        self._ctx = None
        if ctx is not None:
            ctx[2].close()
        super().close()

    def __repr__(self):
        if self.closed:
            return "<transface.Model (closed)>"
        c = self._config
        return (f"<transface.Model {c.arch} D{c.embed_dim} depth {c.depth} heads {c.num_heads} "
                f"E{c.embedding_size}>")

    # -- description

    @property
    def config(self):
        self._handle()
        return dataclasses.replace(self._config)

    @property
    def preprocess(self):
        self._handle()
        return dataclasses.replace(self._preprocess)

    @property
    def embedding_size(self):
        return int(L.lib().transface_model_embedding_size(self._handle()))

    @property
    def num_patches(self):
        return self._config.num_patches

    @property
    def input_size(self):
        """(width, height) of the images the model takes."""
        return self._preprocess.input_width, self._preprocess.input_height

    @property
    def metadata(self):
        lib, h = L.lib(), self._handle()
        out = {}
        for i in range(lib.transface_model_metadata_count(h)):
            k, v = c_char_p(), c_char_p()
            check(lib.transface_model_metadata_at(h, i, byref(k), byref(v)))
            out[k.value.decode("utf-8", "replace")] = v.value.decode("utf-8", "replace")
        return out

    def metadata_get(self, key):
        """One metadata value; NotFoundError when absent."""
        v = c_char_p()
        check(L.lib().transface_model_metadata_get(self._handle(), L.encode(key, "key"), byref(v)))
        return v.value.decode("utf-8", "replace")

    def tensor_info(self):
        """OrderedDict official name -> shape, in layout order."""
        h = self._handle()
        if self._infos is None:
            lib = L.lib()
            self._infos = _read_tensor_infos(lib.transface_model_tensor_count(h),
                                             lib.transface_model_tensor_info, h)
        return OrderedDict(self._infos)

    def tensor_names(self):
        return list(self.tensor_info())

    def read_tensor(self, name):
        """A tensor's values as float32 numpy, in its official shape."""
        h = self._handle()
        shape = self.tensor_info().get(name)
        if shape is None:
            # let the library name the problem (NotFoundError)
            check(L.lib().transface_model_read_tensor(h, L.encode(name, "name"), None, 0))
            raise L.NotFoundError(f"the model has no tensor '{name}'", L.TRANSFACE_NOT_FOUND)
        out = np.empty(shape, dtype=np.float32)
        check(L.lib().transface_model_read_tensor(h, L.encode(name, "name"), _fptr(out), out.size))
        return out

    def state_dict(self):
        """Every tensor, float32, under its official name."""
        return OrderedDict((n, self.read_tensor(n)) for n in self.tensor_info())

    # -- inference

    def context(self, threads=1, max_batch=8):
        """A new inference Context (use it from one thread at a time)."""
        return Context(self, threads=threads, max_batch=max_batch)

    def _run(self, threads, max_batch, fn):
        """Runs fn(context) on a cached context, or a temporary one when it is busy."""
        self._handle()
        key = (int(threads), int(max_batch))
        if self._ctx_lock.acquire(blocking=False):
            try:
                if self._ctx is None or self._ctx[:2] != key:
                    old, self._ctx = self._ctx, None
                    if old is not None:
                        old[2].close()
                    self._ctx = key + (Context(self, *key),)
                return fn(self._ctx[2])
            finally:
                self._ctx_lock.release()
        with Context(self, *key) as ctx:
            return fn(ctx)

    def embed(self, images, flip=False, normalize=True, threads=1, max_batch=8):
        """Embeddings of uint8 RGB images [N, H, W, 3] (or one [H, W, 3]): float32 [N, E]
        (or [E]). flip adds the mirrored image's embedding (official TTA); normalize returns
        unit vectors."""
        return self._run(threads, max_batch, lambda c: c.embed(images, flip=flip, normalize=normalize))

    def embed_with_patches(self, images, flip=False, normalize=True, threads=1, max_batch=8):
        """(embeddings [N, E], patch_weights [N, P], patch_std [N, P])."""
        return self._run(threads, max_batch,
                         lambda c: c.embed_with_patches(images, flip=flip, normalize=normalize))

    def patches(self, images, threads=1, max_batch=8):
        """(patch_weights, patch_std), each [N, P]: softmax of the SE gate and the unbiased std
        of each gated token, of the unflipped images."""
        return self._run(threads, max_batch, lambda c: c.patches(images))

    def patch_weights(self, images, threads=1, max_batch=8):
        return self.patches(images, threads, max_batch)[0]

    def patch_std(self, images, threads=1, max_batch=8):
        return self.patches(images, threads, max_batch)[1]


class Context(_Handle):
    """Inference buffers for up to max_batch images and num_threads workers; one thread at a
    time. precision: "fp32" (default) or "bf16" (bfloat16 GEMMs; AVX512_BF16 or AMX CPUs)."""
    _free_name = "transface_context_free"

    def __init__(self, model, threads=1, max_batch=8, precision="fp32"):
        super().__init__()
        if not isinstance(model, Model):
            raise InvalidArgumentError(f"model must be a transface.Model, got {type(model).__name__}")
        lib = L.lib()
        params = L.default_params("context")
        for name, v in (("threads", threads), ("max_batch", max_batch)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not -2**31 <= v < 2**31:
                raise InvalidArgumentError(f"{name} must be a 32-bit integer, got {v!r}")
        params.num_threads = int(threads)
        params.max_batch = int(max_batch)
        if precision not in L.TRANSFACE_PRECISION:
            raise InvalidArgumentError(f"precision must be one of {', '.join(L.TRANSFACE_PRECISION)}, got {precision!r}")
        params.precision = L.TRANSFACE_PRECISION[precision]
        h = c_void_p()
        check(lib.transface_context_create(model._handle(), byref(params), byref(h)))
        self._set_handle(h.value)
        self.model = model
        self.threads = int(threads)
        self.max_batch = int(max_batch)
        self.precision = precision
        self._e = model.embedding_size
        self._p = model.num_patches

    def __repr__(self):
        return (f"<transface.Context threads={self.threads} max_batch={self.max_batch} precision={self.precision}"
                f"{' (closed)' if self.closed else ''}>")

    @staticmethod
    def _flags(flip, normalize):
        return (L.TRANSFACE_EMBED_FLIP if flip else 0) | (0 if normalize else L.TRANSFACE_EMBED_NO_NORMALIZE)

    def embed(self, images, flip=False, normalize=True):
        h = self._handle()
        x, single = _prepare_images(images)
        n, height, width, _ = x.shape
        out = np.empty((n, self._e), dtype=np.float32)
        check(L.lib().transface_embed(h, x.ctypes.data_as(L.u8_p), n, width, height,
                                      self._flags(flip, normalize), _fptr(out), out.size))
        return out[0] if single else out

    def embed_with_patches(self, images, flip=False, normalize=True, embeddings=True):
        h = self._handle()
        x, single = _prepare_images(images)
        n, height, width, _ = x.shape
        emb = np.empty((n, self._e), dtype=np.float32) if embeddings else None
        pw = np.empty((n, self._p), dtype=np.float32)
        ps = np.empty((n, self._p), dtype=np.float32)
        check(L.lib().transface_embed_with_patches(
            h, x.ctypes.data_as(L.u8_p), n, width, height, self._flags(flip, normalize),
            _fptr(emb) if emb is not None else None, emb.size if emb is not None else 0,
            _fptr(pw), pw.size, _fptr(ps), ps.size))
        if single:
            return (emb[0] if emb is not None else None), pw[0], ps[0]
        return emb, pw, ps

    def patches(self, images):
        _, pw, ps = self.embed_with_patches(images, embeddings=False)
        return pw, ps


# ------------------------------------------------------------------ builder

_DTYPE_NAMES = {
    "float32": L.TRANSFACE_DTYPE_F32, "f32": L.TRANSFACE_DTYPE_F32,
    "float16": L.TRANSFACE_DTYPE_F16, "f16": L.TRANSFACE_DTYPE_F16, "half": L.TRANSFACE_DTYPE_F16,
    "bfloat16": L.TRANSFACE_DTYPE_BF16, "bf16": L.TRANSFACE_DTYPE_BF16,
}


def _tensor_payload(name, array, dtype):
    """(contiguous array, transface_dtype) for set_tensor."""
    if not isinstance(array, np.ndarray):
        array = np.asarray(array)
    if dtype is None:
        if array.dtype == np.float32:
            code = L.TRANSFACE_DTYPE_F32
        elif array.dtype == np.float16:
            code = L.TRANSFACE_DTYPE_F16
        elif array.dtype == np.float64:
            array, code = array.astype(np.float32), L.TRANSFACE_DTYPE_F32
        elif array.dtype == np.uint16:
            raise InvalidArgumentError(f"tensor '{name}': uint16 data is ambiguous; pass "
                                       "dtype='bfloat16' (or 'float16') for raw bit patterns")
        elif array.dtype.itemsize == 2 and "bfloat16" in str(array.dtype):
            array, code = array.view(np.uint16), L.TRANSFACE_DTYPE_BF16
        else:
            raise InvalidArgumentError(f"tensor '{name}': dtype {array.dtype} is not float32, "
                                       "float16 or float64")
    else:
        key = str(dtype).lower() if not isinstance(dtype, np.dtype) else dtype.name
        if key not in _DTYPE_NAMES:
            raise InvalidArgumentError(f"tensor '{name}': unknown dtype {dtype!r} (float32, float16, "
                                       "bfloat16)")
        code = _DTYPE_NAMES[key]
        if code == L.TRANSFACE_DTYPE_F32:
            if array.dtype not in (np.float32, np.float64, np.float16):
                raise InvalidArgumentError(f"tensor '{name}': float32 needs float data, got {array.dtype}")
            array = array.astype(np.float32, copy=False)
        elif code == L.TRANSFACE_DTYPE_F16:
            if array.dtype not in (np.float16, np.uint16):
                raise InvalidArgumentError(f"tensor '{name}': float16 needs a float16 or uint16 array, "
                                           f"got {array.dtype}")
            array = array.view(np.uint16)
        else:
            if not (array.dtype == np.uint16 or "bfloat16" in str(array.dtype)):
                raise InvalidArgumentError(f"tensor '{name}': bfloat16 needs a uint16 array of bit "
                                           f"patterns, got {array.dtype}")
            array = array.view(np.uint16)
    return np.ascontiguousarray(array), code


class Builder(_Handle):
    """Assembles a model file from a Config and tensors (official state_dict names)."""
    _free_name = "transface_builder_free"

    def __init__(self, config):
        super().__init__()
        cfg = Config.coerce(config)
        c = cfg._to_c()
        h = c_void_p()
        check(L.lib().transface_builder_create(byref(c), byref(h)))
        self._set_handle(h.value)
        self.config = cfg
        lib = L.lib()
        self._infos = _read_tensor_infos(lib.transface_builder_tensor_count(h.value),
                                         lib.transface_builder_tensor_info, h.value)

    def __repr__(self):
        return f"<transface.Builder {self.config.arch} D{self.config.embed_dim} depth {self.config.depth}>"

    def tensor_info(self):
        """OrderedDict official name -> expected shape, in layout order."""
        self._handle()
        return OrderedDict(self._infos)

    def tensor_names(self):
        return list(self.tensor_info())

    def set_tensor(self, name, array, dtype=None):
        """Sets one tensor. float32 / float16 arrays (float64 is cast to float32); bfloat16 as
        uint16 bit patterns with dtype='bfloat16'. The shape must match exactly."""
        h = self._handle()
        data, code = _tensor_payload(name, array, dtype)
        dims = (c_int64 * max(data.ndim, 1))(*data.shape)
        check(L.lib().transface_builder_set_tensor(h, L.encode(name, "name"), data.ctypes.data_as(c_void_p),
                                                   code, dims, data.ndim))

    def init_weights(self, seed=0):
        """Every tensor initialised as the official code does, from seed."""
        check(L.lib().transface_builder_init_weights(self._handle(), int(seed) & (2**64 - 1)))

    def set_metadata(self, key, value):
        check(L.lib().transface_builder_set_metadata(self._handle(), L.encode(key, "metadata key"),
                                                     L.encode(value, "metadata value")))

    def set_preprocess(self, preprocess):
        p = Preprocess.coerce(preprocess)._to_c()
        check(L.lib().transface_builder_set_preprocess(self._handle(), byref(p)))

    def save(self, path):
        """Writes the model file (atomically); fails naming any unset tensor."""
        check(L.lib().transface_builder_save(self._handle(), L.encode_path(path)))

    def build(self):
        """An in-memory Model with a copy of the weights."""
        h = c_void_p()
        check(L.lib().transface_builder_build(self._handle(), byref(h)))
        return Model._from_handle(h.value)
