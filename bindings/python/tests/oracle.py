"""A float64 numpy oracle of the official TransFace ViT forward (eval mode).

Written from the official architecture (DanJun6737/TransFace backbones/vit.py), independently of
the library: patch conv 9x9/stride 9 on the top-left 108x108 pixels, no class token, pos_embed,
pre-norm blocks (LayerNorm eps 1e-5; qkv without bias; softmax(q k^T * head_dim^-0.5) v; proj
with bias; fc1 -> ReLU6 -> fc2), final LayerNorm; SE gate s = sigmoid(W2 relu(W1 flatten(x)));
patch weight = softmax(s); gated tokens x * s; patch std = unbiased std over D of the gated
tokens; head Linear(P*D -> D) -> BatchNorm1d(eps 2e-5, running stats) -> Linear(D -> E) ->
BatchNorm1d(eps 2e-5).
"""

from collections import OrderedDict

import numpy as np

LN_EPS = 1e-5
BN_EPS = 2e-5


def official_shapes(embed_dim, depth, embedding_size, mlp_hidden_dim=None, img_size=112,
                    patch_size=9, in_channels=3):
    """OrderedDict official state_dict name -> shape (inference tensors, state_dict order)."""
    d, e = embed_dim, embedding_size
    h = mlp_hidden_dim or 4 * d
    p = (img_size // patch_size) ** 2
    s = OrderedDict()
    s["pos_embed"] = (1, p, d)
    s["mask_token"] = (1, 1, d)
    s["patch_embed.proj.weight"] = (d, in_channels, patch_size, patch_size)
    s["patch_embed.proj.bias"] = (d,)
    for i in range(depth):
        b = f"blocks.{i}."
        s[b + "norm1.weight"] = (d,)
        s[b + "norm1.bias"] = (d,)
        s[b + "attn.qkv.weight"] = (3 * d, d)
        s[b + "attn.proj.weight"] = (d, d)
        s[b + "attn.proj.bias"] = (d,)
        s[b + "norm2.weight"] = (d,)
        s[b + "norm2.bias"] = (d,)
        s[b + "mlp.fc1.weight"] = (h, d)
        s[b + "mlp.fc1.bias"] = (h,)
        s[b + "mlp.fc2.weight"] = (d, h)
        s[b + "mlp.fc2.bias"] = (d,)
    s["norm.weight"] = (d,)
    s["norm.bias"] = (d,)
    s["feature.0.weight"] = (d, d * p)
    for n, k in (("feature.1", d),):
        s[n + ".weight"] = (k,)
        s[n + ".bias"] = (k,)
        s[n + ".running_mean"] = (k,)
        s[n + ".running_var"] = (k,)
    s["feature.2.weight"] = (e, d)
    for n, k in (("feature.3", e),):
        s[n + ".weight"] = (k,)
        s[n + ".bias"] = (k,)
        s[n + ".running_mean"] = (k,)
        s[n + ".running_var"] = (k,)
    s["senet.0.weight"] = (p, d * p)
    s["senet.2.weight"] = (p, p)
    return s


def random_params(shapes, seed):
    """float32 weights of a sensible scale under the official names: linear weights N(0, 0.02),
    conv / SE like PyTorch's default init, norm weights ~1 and biases ~0 with noise, running
    statistics perturbed (so an ignored bias or statistic shows)."""
    rng = np.random.default_rng(seed)
    f32 = np.float32

    def normal(n, std, mean=0.0):
        return rng.standard_normal(n, dtype=f32) * f32(std) + f32(mean)

    def uniform(n, lo, hi):
        return rng.random(n, dtype=f32) * f32(hi - lo) + f32(lo)

    out = OrderedDict()
    for name, shape in shapes.items():
        n = int(np.prod(shape))
        if name.endswith("running_var"):
            v = uniform(n, 0.5, 1.5)
        elif name.endswith("running_mean"):
            v = normal(n, 0.1)
        elif name.startswith(("patch_embed", "senet")):
            bound = 1 / np.sqrt(n // shape[0])
            v = uniform(n, -bound, bound)
        elif name.endswith("bias"):
            v = normal(n, 0.05)
        elif len(shape) == 1:  # LayerNorm / BatchNorm weights
            v = normal(n, 0.1, 1.0)
        else:  # linear weights, pos_embed, mask_token
            v = normal(n, 0.02)
        out[name] = v.astype(np.float32).reshape(shape)
    return out


def _layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * w + b


def _batch_norm(x, p, name):
    return ((x - p[name + ".running_mean"]) / np.sqrt(p[name + ".running_var"] + BN_EPS)
            * p[name + ".weight"] + p[name + ".bias"])


def _softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def forward(params, images_u8, num_heads, patch_size=None, mean=0.5, std=0.5):
    """Official eval forward in float64. images_u8: [N, H, W, 3] RGB uint8; pixels become
    (u8 / 255 - mean[c]) / std[c] (0.5 and 0.5 officially).

    Returns dict(embedding [N, E] (un-normalised), se_weight_softmax [N, P], patch_std [N, P],
    se_gate [N, P], feature_input [N, P*D])."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    conv = p["patch_embed.proj.weight"]
    d, c, k, _ = conv.shape
    patch_size = patch_size or k
    x = images_u8.astype(np.float64) / 255.0
    x = (x - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)
    n, hgt, wid, _ = x.shape
    grid = hgt // patch_size
    t = grid * grid
    # im2col over the grid*patch top-left pixels (the conv ignores the rest)
    x = x[:, :grid * patch_size, :grid * patch_size, :]
    x = x.reshape(n, grid, patch_size, grid, patch_size, c).transpose(0, 1, 3, 5, 2, 4)
    cols = x.reshape(n, t, c * patch_size * patch_size)
    x = cols @ conv.reshape(d, -1).T + p["patch_embed.proj.bias"]
    x = x + p["pos_embed"]
    depth = len({name.split(".")[1] for name in p if name.startswith("blocks.")})
    hd = d // num_heads
    for i in range(depth):
        b = f"blocks.{i}."
        h = _layer_norm(x, p[b + "norm1.weight"], p[b + "norm1.bias"])
        qkv = (h @ p[b + "attn.qkv.weight"].T).reshape(n, t, 3, num_heads, hd).transpose(2, 0, 3, 1, 4)
        q, kk, v = qkv[0], qkv[1], qkv[2]
        attn = _softmax((q @ kk.transpose(0, 1, 3, 2)) * hd ** -0.5)
        a = (attn @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
        x = x + a @ p[b + "attn.proj.weight"].T + p[b + "attn.proj.bias"]
        h = _layer_norm(x, p[b + "norm2.weight"], p[b + "norm2.bias"])
        h = np.clip(h @ p[b + "mlp.fc1.weight"].T + p[b + "mlp.fc1.bias"], 0, 6)
        x = x + h @ p[b + "mlp.fc2.weight"].T + p[b + "mlp.fc2.bias"]
    x = _layer_norm(x, p["norm.weight"], p["norm.bias"])
    flat = x.reshape(n, t * d)
    s = np.maximum(flat @ p["senet.0.weight"].T, 0) @ p["senet.2.weight"].T
    s = 1 / (1 + np.exp(-s))
    weight = _softmax(s, axis=1)
    gated = x * s[:, :, None]
    std = gated.std(axis=2, ddof=1)
    f = gated.reshape(n, t * d) @ p["feature.0.weight"].T
    f = _batch_norm(f, p, "feature.1")
    f = f @ p["feature.2.weight"].T
    f = _batch_norm(f, p, "feature.3")
    return {"embedding": f, "se_weight_softmax": weight, "patch_std": std, "se_gate": s,
            "feature_input": gated.reshape(n, t * d)}
