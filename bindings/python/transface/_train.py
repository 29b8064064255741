"""Training from Python: `transface.Trainer` over the C trainer."""

import json
from ctypes import POINTER, byref, c_char_p, c_int32, c_size_t, c_void_p

import numpy as np

from . import _lib as L
from ._api import Model, _Handle, _prepare_images
from ._lib import InvalidArgumentError, check

__all__ = ["Trainer", "amplitude_mix"]


class Trainer(_Handle):
    """A TransFace training run (see README.md for the configuration keys).

        trainer = transface.Trainer({"arch": "vit_t", "num_classes": 1000, "batch_size": 32})
        result = trainer.step(images_u8_nhwc, labels)     # dict: loss, learning_rate, ...
        trainer.save_checkpoint("run.tfc"); trainer.export_model("model.tfm")
        trainer = transface.Trainer.resume("run.tfc")
    """
    _free_name = "transface_trainer_free"

    def __init__(self, config, init_model=None):
        super().__init__()
        text = config if isinstance(config, str) else json.dumps(config)
        h = c_void_p()
        model = init_model._handle() if init_model is not None else None
        check(L.lib().transface_trainer_create(L.encode(text, "config"), model, byref(h)))
        self._set_handle(h.value)
        self.config = json.loads(text)

    @classmethod
    def resume(cls, checkpoint, threads=0):
        """Continue from a checkpoint; threads=0 keeps the saved count (bit-exact resume)."""
        t = cls.__new__(cls)
        _Handle.__init__(t)
        h = c_void_p()
        check(L.lib().transface_trainer_resume(L.encode_path(checkpoint), int(threads), byref(h)))
        t._set_handle(h.value)
        t.config = None
        return t

    def step(self, images, labels):
        """One batch of uint8 RGB images [N, H, W, 3] and int labels [N]; returns a dict."""
        images, _ = _prepare_images(images)
        labels = np.ascontiguousarray(labels, dtype=np.int32)
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise InvalidArgumentError(f"labels must be [{images.shape[0]}], got {list(labels.shape)}")
        r = L.new_struct(L.transface_step_result)
        check(L.lib().transface_trainer_step(
            self._handle(), images.ctypes.data_as(L.u8_p), labels.ctypes.data_as(POINTER(c_int32)),
            images.shape[0], images.shape[2], images.shape[1], byref(r)))
        return {"loss": r.loss, "first_pass_loss": r.first_pass_loss, "learning_rate": r.learning_rate,
                "gradient_norm": r.gradient_norm, "clip_coefficient": r.clip_coefficient,
                "optimizer_stepped": bool(r.optimizer_stepped), "skipped": bool(r.skipped),
                "images_augmented": r.images_augmented, "step": r.step, "seconds": r.seconds}

    def save_checkpoint(self, path):
        """Write a checkpoint atomically (temporary file, fsync, rename): path always holds a
        complete checkpoint, the previous one if the write fails or the process dies."""
        check(L.lib().transface_trainer_save_checkpoint(self._handle(), L.encode_path(path)))

    def info(self):
        """Where the run is: dict with step, batches, learning_rate (of the next step) and
        learning_rate_scale (the "non_finite": "reduce_lr" back-off so far, 1 if none)."""
        r = L.new_struct(L.transface_trainer_info)
        check(L.lib().transface_trainer_get_info(self._handle(), byref(r)))
        return {"step": r.step, "batches": r.batches, "learning_rate": r.learning_rate,
                "learning_rate_scale": r.learning_rate_scale}

    def export_model(self, path):
        """Write the current weights as a model file and return it loaded."""
        check(L.lib().transface_trainer_export_model(self._handle(), L.encode_path(path)))
        return Model(path)

    def tensor(self, name):
        """A parameter by its official name, "partial_fc.weight", "gradient.<name>" or
        "optimizer.<exp_avg|exp_avg_sq|momentum_buffer>.<name>", as float32 (flat)."""
        lib, n = L.lib(), c_size_t()
        key = L.encode(name, "name")
        check(lib.transface_trainer_tensor_size(self._handle(), key, byref(n)))
        out = np.empty(n.value, dtype=np.float32)
        check(lib.transface_trainer_read_tensor(self._handle(), key, out.ctypes.data_as(L.float_p), n.value))
        return out

    def set_tensor(self, name, values):
        """Overwrite a tensor by the names `tensor` reads (gradients aside) with float32 values of
        exactly its size (any shape, flattened); non-finite values are refused, nothing changes."""
        values = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
        check(L.lib().transface_trainer_set_tensor(self._handle(), L.encode(name, "name"),
                                                   values.ctypes.data_as(L.float_p), values.size))

    @classmethod
    def import_official(cls, checkpoints, config):
        """Continue an official train.py run: `checkpoints` are its checkpoint_gpu_<rank>.pt files
        (or folders holding them), `config` the trainer configuration (dict or JSON text)."""
        if isinstance(checkpoints, (str, bytes)) or hasattr(checkpoints, "__fspath__"):
            checkpoints = [checkpoints]
        encoded = [L.encode_path(p) for p in checkpoints]
        array = (c_char_p * max(len(encoded), 1))(*encoded)
        text = config if isinstance(config, str) else json.dumps(config)
        t = cls.__new__(cls)
        _Handle.__init__(t)
        h = c_void_p()
        check(L.lib().transface_trainer_import_official(array, len(encoded), L.encode(text, "config"), byref(h)))
        t._set_handle(h.value)
        t.config = json.loads(text)
        return t


def amplitude_mix(source, partner, lam, ratio=1.0):
    """DPAP's amplitude-spectrum mix of two uint8 patches [H, W, C] (keeps source's phase)."""
    source = np.ascontiguousarray(source, dtype=np.uint8)
    partner = np.ascontiguousarray(partner, dtype=np.uint8)
    if source.ndim != 3 or source.shape != partner.shape:
        raise InvalidArgumentError(f"patches must be two [H, W, C] arrays of one shape, got {source.shape} and {partner.shape}")
    out = np.empty_like(source)
    h, w, c = source.shape
    check(L.lib().transface_amplitude_mix(source.ctypes.data_as(L.u8_p), partner.ctypes.data_as(L.u8_p), h, w, c,
                                          float(lam), float(ratio), out.ctypes.data_as(L.u8_p), out.size))
    return out
