"""The converter's reference sources, made the same way on every run from the tiny official
weights (../shared/reference/tiny/param): an .npz, hand-made torch.save files (views, shared
storages, float16/bfloat16 storages, a training checkpoint with 'module.' names), an .npz of
float64/float16 arrays and, when torch is installed, a real torch.save file. A converted file
depends only on the tensors, the options and the source's file name, so these give the same
model bytes wherever they are written."""

from collections import OrderedDict

import numpy as np

import torchzip


def as_pt_state_dict(params, prefix=""):
    """Official params as hand-made torch tensors, with some storages in other types, views and
    shared storages, like real state_dicts can have."""
    sd = OrderedDict()
    for n, v in params.items():
        if n.endswith("num_batches_tracked"):
            sd[prefix + n] = torchzip.Tensor(v.astype(np.int64).reshape(()), (), dtype="int64")
        else:
            sd[prefix + n] = torchzip.Tensor.of(v)
    # a transposed view: storage holds W^T, the tensor is W with strides (1, rows)
    w = params["blocks.0.attn.proj.weight"]
    sd[prefix + "blocks.0.attn.proj.weight"] = torchzip.Tensor(np.ascontiguousarray(w.T), w.shape,
                                                               stride=(1, w.shape[0]))
    # two tensors sharing one storage at different offsets
    b1, b2 = params["blocks.1.norm1.weight"], params["blocks.1.norm1.bias"]
    both = np.concatenate([np.zeros(5, np.float32), b1, b2])
    sd[prefix + "blocks.1.norm1.weight"] = torchzip.Tensor(both, b1.shape, offset=5, key="shared")
    sd[prefix + "blocks.1.norm1.bias"] = torchzip.Tensor(both, b2.shape, offset=5 + b1.size, key="shared")
    return sd


def half_params(params):
    """float16 / bfloat16 versions of two tensors, and float32 params with the same values."""
    p = dict(params)
    h = params["blocks.0.mlp.fc1.weight"].astype(np.float16)
    p["blocks.0.mlp.fc1.weight"] = h.astype(np.float32)
    bits = (params["feature.2.weight"].view(np.uint32) >> 16).astype(np.uint16)  # truncate to bf16
    p["feature.2.weight"] = (bits.astype(np.uint32) << 16).view(np.float32)
    return p, h, bits


def training_checkpoint(params):
    """An official training checkpoint: 'state_dict_backbone' with 'module.' names, and more."""
    return {
        "epoch": 7,
        "global_step": 1234,
        "state_dict_backbone": as_pt_state_dict(params, prefix="module."),
        "state_dict_softmax_fc": {"weight": torchzip.Tensor.of(params["partial_fc.weight"])},
        "state_optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999),
                                                           "params": [0, 1, 2]}]},
        "state_lr_scheduler": {"last_epoch": 3, "base_lrs": [0.001]},
    }


def write_sources(params, folder, torch=None):
    """Writes the reference sources into folder; returns {file name: path}."""
    out = OrderedDict()
    out["tiny_official.npz"] = folder / "tiny_official.npz"
    np.savez(out["tiny_official.npz"], **params)

    same_values, h, bits = half_params(params)
    sd = as_pt_state_dict(same_values)
    sd["blocks.0.mlp.fc1.weight"] = torchzip.Tensor(h, h.shape)
    sd["feature.2.weight"] = torchzip.Tensor(bits, bits.shape, dtype="bfloat16")
    out["model.pt"] = folder / "model.pt"
    torchzip.save(sd, out["model.pt"], archive="model")

    out["checkpoint_gpu_0.pt"] = folder / "checkpoint_gpu_0.pt"
    torchzip.save(training_checkpoint(params), out["checkpoint_gpu_0.pt"])

    mixed = dict(params)
    mixed["pos_embed"] = params["pos_embed"].astype(np.float64)
    mixed["blocks.1.mlp.fc2.weight"] = params["blocks.1.mlp.fc2.weight"].astype(np.float16)
    out["mixed_dtypes.npz"] = folder / "mixed_dtypes.npz"
    np.savez(out["mixed_dtypes.npz"], **mixed)

    if torch is not None:
        out["real.pt"] = folder / "real.pt"
        torch.save(OrderedDict((k, torch.from_numpy(v.copy())) for k, v in params.items()), out["real.pt"])
    return out
