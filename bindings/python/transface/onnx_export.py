"""A transface model as an ONNX graph (built with onnx.helper from the model's weights; no torch).

    from transface.onnx_export import export_onnx
    export_onnx("vit_s.tfm", "vit_s.onnx")                # or python3 -m transface export-onnx ...

The graph has one input and one output:

- ``images``: uint8 ``[N, 112, 112, 3]`` aligned RGB faces, NHWC, exactly what
  ``Model.embed`` takes (``input_type="float32"``: the same pixel values 0..255 as float32).
  N is a symbolic dimension ``"N"`` (``batch=None``) or a fixed number.
- ``embedding``: float32 ``[N, E]``, the raw embedding, not L2-normalised
  (``Model.embed(images, normalize=False)``).

Everything the library does to the pixels is inside the graph: the crop to the grid
(``Slice`` to the top-left 108×108; the conv never sees the last 4 rows and columns), the
layout change (``Transpose`` NHWC→NCHW), ``Cast``, and the model's preprocessing
((x / 255 − mean) / std per channel, as ``Div``, ``Sub``, ``Div`` so the values equal the
library's lookup table bit for bit). A BGR model's channel reversal is folded into the
patch-embedding weights and the order of mean/std, so the input is RGB for every model.

Operators (opset >= 17): Slice, Transpose, Cast, Div, Sub, Conv, Reshape, Add, Mul,
LayerNormalization, MatMul, Gather, Softmax, Clip (ReLU6), Gemm, Relu, Sigmoid,
BatchNormalization (inference form, running statistics, epsilon 2e-5). A model without the SE
module (``se_gate=False``) has no SE nodes (Gemm/Relu/Gemm/Sigmoid/Mul).
"""

import os

import numpy as np

from ._api import Model

__all__ = ["build_onnx", "export_onnx", "verify_onnx", "OnnxExportError", "OnnxDependencyError", "MIN_OPSET", "DEFAULT_OPSET",
           "INPUT_NAME", "OUTPUT_NAME"]

MIN_OPSET = 17          # LayerNormalization
DEFAULT_OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAME = "embedding"
LAYER_NORM_EPS = 1e-5
BATCH_NORM_EPS = 2e-5
_PROTOBUF_LIMIT = 2**31 - 2**26   # a ModelProto must stay below 2 GiB; keep a margin


class OnnxExportError(Exception):
    """The model cannot be exported as asked; one-line message."""


class OnnxDependencyError(OnnxExportError, ImportError):
    """The onnx (or onnxruntime) package is not installed."""


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as e:
        raise OnnxDependencyError(f"the onnx package is needed for ONNX export (pip install onnx): {e}") from None
    return onnx, helper, numpy_helper


class _Graph:
    """Collects nodes and initializers with unique, readable names."""

    def __init__(self, helper, numpy_helper):
        self.h, self.nh = helper, numpy_helper
        self.nodes, self.inits = [], []
        self._names = set()

    def _unique(self, name):
        base, i = name, 1
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def const(self, name, array):
        name = self._unique(name)
        array = np.asarray(array)   # (not ascontiguousarray: it makes a 0-d index 1-d)
        self.inits.append(self.nh.from_array(np.array(array, order="C", copy=True), name))
        return name

    def i64(self, name, values):
        return self.const(name, np.asarray(values, dtype=np.int64))

    def f32(self, name, values):
        return self.const(name, np.asarray(values, dtype=np.float32))

    def op(self, op_type, inputs, name, **attrs):
        """One node with one output (named like the node); returns the output name."""
        name = self._unique(name)
        self.nodes.append(self.h.make_node(op_type, list(inputs), [name], name=name, **attrs))
        return name


def _weights(model):
    return {n: model.read_tensor(n) for n in model.tensor_names()}


def build_onnx(model, batch=None, opset=DEFAULT_OPSET, input_type="uint8", check=True):
    """The ONNX ModelProto of `model` (a transface.Model or a path to a .tfm).

    batch: None for a symbolic batch dimension "N", or a positive int.
    input_type: "uint8" (default; what Model.embed takes) or "float32" (pixel values 0..255).
    """
    onnx, helper, numpy_helper = _onnx()
    own = not isinstance(model, Model)
    m = Model(model) if own else model
    try:
        return _build(m, onnx, helper, numpy_helper, batch, opset, input_type, check)
    finally:
        if own:
            m.close()


def _build(m, onnx, helper, numpy_helper, batch, opset, input_type, check):
    TP = onnx.TensorProto
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise OnnxExportError(f"opset must be an integer, got {opset!r}")
    opset = int(opset)
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise OnnxExportError(f"opset {opset} is not supported: {MIN_OPSET}..{newest} "
                              f"(LayerNormalization needs {MIN_OPSET}; {newest} is the installed onnx's newest)")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1):
        raise OnnxExportError(f"batch must be a positive integer or None (dynamic), got {batch!r}")
    if input_type not in ("uint8", "float32"):
        raise OnnxExportError(f"input_type must be 'uint8' or 'float32', got {input_type!r}")

    c, pre = m.config, m.preprocess
    if c.in_channels != 3:
        raise OnnxExportError(f"only 3-channel models are exported, this one has {c.in_channels}")
    if (pre.input_width, pre.input_height) != (c.img_size, c.img_size):
        raise OnnxExportError(f"preprocess input {pre.input_width}x{pre.input_height} differs from the "
                              f"model's {c.img_size}x{c.img_size}")
    order = str(pre.channel_order).upper()
    if order not in ("RGB", "BGR"):
        raise OnnxExportError(f"unknown channel order {pre.channel_order!r}")
    D, H, P, G, S = c.embed_dim, c.num_heads, c.num_patches, c.grid, c.patch_size
    E, hid, hd = c.embedding_size, c.mlp_hidden_dim, c.embed_dim // c.num_heads
    if D % H:
        raise OnnxExportError(f"embed_dim {D} is not a multiple of num_heads {H}")
    w = _weights(m)
    g = _Graph(helper, numpy_helper)

    # ---- pixels -> normalised NCHW crop of the grid
    mean = np.asarray(pre.mean, np.float32)
    std = np.asarray(pre.std, np.float32)
    conv_w = w["patch_embed.proj.weight"]
    if order == "BGR":
        # network channel c reads image channel 2 - c, normalised with mean[c] / std[c]:
        # reorder the conv's input channels and mean/std instead of the pixels.
        conv_w, mean, std = conv_w[:, ::-1], mean[::-1], std[::-1]
    x = INPUT_NAME
    side = G * S
    if side != c.img_size:
        x = g.op("Slice", [x, g.i64("crop_starts", [0, 0]), g.i64("crop_ends", [side, side]),
                           g.i64("crop_axes", [1, 2])], "crop")
    x = g.op("Transpose", [x], "to_nchw", perm=[0, 3, 1, 2])
    if input_type == "uint8":
        x = g.op("Cast", [x], "to_float", to=TP.FLOAT)
    x = g.op("Div", [x, g.f32("pixel_scale", 255.0)], "pixels_div_255")
    x = g.op("Sub", [x, g.f32("pixel_mean", mean.reshape(1, 3, 1, 1))], "pixels_sub_mean")
    x = g.op("Div", [x, g.f32("pixel_std", std.reshape(1, 3, 1, 1))], "pixels_div_std")

    # ---- patch embedding + position
    x = g.op("Conv", [x, g.const("patch_embed.proj.weight", conv_w), g.const("patch_embed.proj.bias",
                                                                          w["patch_embed.proj.bias"])],
             "patch_embed.proj", kernel_shape=[S, S], strides=[S, S])
    x = g.op("Reshape", [x, g.i64("shape_N_D_P", [0, D, P])], "patch_embed.flatten")
    x = g.op("Transpose", [x], "patch_embed.tokens", perm=[0, 2, 1])                  # [N, P, D]
    x = g.op("Add", [x, g.const("pos_embed", w["pos_embed"])], "pos_embed.add")

    shape_qkv = g.i64("shape_N_P_3_H_hd", [0, P, 3, H, hd])
    shape_npd = g.i64("shape_N_P_D", [0, P, D])
    idx = [g.const(f"index_{k}", np.array(k, np.int64)) for k in range(3)]
    scale = g.f32("attn_scale", hd ** -0.5)
    relu6_min, relu6_max = g.f32("relu6_min", 0.0), g.f32("relu6_max", 6.0)

    def linear(inp, name, bias=True):
        """Token Linear: MatMul with the transposed weight [in, out] (+ bias)."""
        y = g.op("MatMul", [inp, g.const(name + ".weight.T", w[name + ".weight"].T)], name)
        if bias:
            y = g.op("Add", [y, g.const(name + ".bias", w[name + ".bias"])], name + ".add_bias")
        return y

    def layer_norm(inp, name):
        return g.op("LayerNormalization", [inp, g.const(name + ".weight", w[name + ".weight"]),
                                           g.const(name + ".bias", w[name + ".bias"])],
                    name, axis=-1, epsilon=LAYER_NORM_EPS)

    for i in range(c.depth):
        b = f"blocks.{i}."
        # attention branch
        y = layer_norm(x, b + "norm1")
        qkv = linear(y, b + "attn.qkv", bias=False)                                     # [N, P, 3D]
        qkv = g.op("Reshape", [qkv, shape_qkv], b + "attn.qkv.split_heads")
        qkv = g.op("Transpose", [qkv], b + "attn.qkv.heads_first", perm=[2, 0, 3, 1, 4])  # [3, N, H, P, hd]
        q, k, v = (g.op("Gather", [qkv, idx[j]], b + f"attn.{'qkv'[j]}", axis=0) for j in range(3))
        kt = g.op("Transpose", [k], b + "attn.k.T", perm=[0, 1, 3, 2])
        s = g.op("MatMul", [q, kt], b + "attn.scores")                                  # [N, H, P, P]
        s = g.op("Mul", [s, scale], b + "attn.scale")
        s = g.op("Softmax", [s], b + "attn.softmax", axis=-1)
        y = g.op("MatMul", [s, v], b + "attn.context")                                  # [N, H, P, hd]
        y = g.op("Transpose", [y], b + "attn.merge_heads", perm=[0, 2, 1, 3])
        y = g.op("Reshape", [y, shape_npd], b + "attn.concat")
        y = linear(y, b + "attn.proj")
        x = g.op("Add", [x, y], b + "attn.residual")
        # MLP branch
        y = layer_norm(x, b + "norm2")
        y = linear(y, b + "mlp.fc1")
        y = g.op("Clip", [y, relu6_min, relu6_max], b + "mlp.relu6")
        y = linear(y, b + "mlp.fc2")
        x = g.op("Add", [x, y], b + "mlp.residual")
    x = layer_norm(x, "norm")                                                           # [N, P, D]

    # ---- SE gate
    flat_shape = g.i64("shape_N_PD", [0, P * D])
    if c.se_gate:
        f = g.op("Reshape", [x, flat_shape], "senet.flatten")
        s = g.op("Gemm", [f, g.const("senet.0.weight", w["senet.0.weight"])], "senet.0", transB=1)
        s = g.op("Relu", [s], "senet.1")
        s = g.op("Gemm", [s, g.const("senet.2.weight", w["senet.2.weight"])], "senet.2", transB=1)
        s = g.op("Sigmoid", [s], "senet.3")                                             # [N, P]
        s = g.op("Reshape", [s, g.i64("shape_N_P_1", [0, P, 1])], "senet.per_token")
        x = g.op("Mul", [x, s], "senet.gate")
    x = g.op("Reshape", [x, flat_shape], "feature.flatten")                             # [N, P*D]

    # ---- head: Linear, BN, Linear, BN
    def batch_norm(inp, name):
        return g.op("BatchNormalization",
                    [inp] + [g.const(f"{name}.{t}", w[f"{name}.{t}"])
                             for t in ("weight", "bias", "running_mean", "running_var")],
                    name, epsilon=BATCH_NORM_EPS)

    x = g.op("Gemm", [x, g.const("feature.0.weight", w["feature.0.weight"])], "feature.0", transB=1)
    x = batch_norm(x, "feature.1")
    x = g.op("Gemm", [x, g.const("feature.2.weight", w["feature.2.weight"])], "feature.2", transB=1)
    x = batch_norm(x, "feature.3")
    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="embedding"))

    n_dim = "N" if batch is None else int(batch)
    in_type = TP.UINT8 if input_type == "uint8" else TP.FLOAT
    inp = helper.make_tensor_value_info(INPUT_NAME, in_type, [n_dim, c.img_size, c.img_size, 3])
    out = helper.make_tensor_value_info(OUTPUT_NAME, TP.FLOAT, [n_dim, E])
    doc = (f"TransFace {c.arch}: {INPUT_NAME} {input_type} [N, {c.img_size}, {c.img_size}, 3] aligned "
           f"RGB faces (NHWC{', pixel values 0..255' if input_type == 'float32' else ''}) -> "
           f"{OUTPUT_NAME} float32 [N, {E}], raw (not L2-normalised)")
    graph = helper.make_graph(g.nodes, f"transface_{c.arch}", [inp], [out], initializer=g.inits, doc_string=doc)
    proto = helper.make_model(graph, producer_name="transface", producer_version=_producer_version(),
                              opset_imports=[helper.make_opsetid("", opset)], doc_string=doc)
    proto.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
    meta = {"arch": c.arch, "embed_dim": D, "depth": c.depth, "num_heads": H, "mlp_hidden_dim": hid,
            "embedding_size": E, "se_gate": c.se_gate, "input": f"{input_type} NHWC RGB",
            "model_channel_order": order, "mean": list(pre.mean), "std": list(pre.std),
            "normalized_output": False}
    if getattr(m, "path", None):
        meta["source"] = os.path.basename(m.path)
    for k, v in m.metadata.items():
        meta.setdefault(f"model.{k}", v)
    helper.set_model_props(proto, {k: str(v) for k, v in meta.items()})
    if check and proto.ByteSize() < _PROTOBUF_LIMIT:
        onnx.checker.check_model(proto)
    return proto


def _producer_version():
    from . import __version__
    return __version__


def export_onnx(model, output, batch=None, opset=DEFAULT_OPSET, input_type="uint8", external_data=None):
    """Writes `model` (Model or .tfm path) as ONNX to `output`; returns a summary dict.

    external_data: True stores the weights in `output + ".data"` beside the graph; None does so
    only when the graph would pass protobuf's 2 GiB limit."""
    onnx, helper, _ = _onnx()
    proto = build_onnx(model, batch=batch, opset=opset, input_type=input_type, check=False)
    size = proto.ByteSize()
    if external_data is None:
        external_data = size >= _PROTOBUF_LIMIT
    output = os.fspath(output)
    tmp = output + ".tmp"
    if external_data:
        location = os.path.basename(output) + ".data"
        onnx.save_model(proto, tmp, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=location, size_threshold=1024)
        # the graph refers to the data file by name; both live in output's folder
        onnx.checker.check_model(tmp)
        data = os.path.join(os.path.dirname(os.path.abspath(output)), location)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(data, 0o666 & ~mask)   # onnx creates it 0600; give it the usual permissions
    else:
        onnx.checker.check_model(proto)
        onnx.save_model(proto, tmp)
    os.replace(tmp, output)
    g = proto.graph
    ops = {}
    for node in g.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    params = sum(int(np.prod(t.dims)) for t in g.initializer)
    return {"opset": opset, "ir_version": proto.ir_version, "nodes": len(g.node),
            "ops": ops, "initializers": len(g.initializer), "parameters": params, "bytes": size,
            "external_data": bool(external_data),
            "input": (INPUT_NAME, input_type, _dims(g.input[0])),
            "output": (OUTPUT_NAME, "float32", _dims(g.output[0])), "path": output}


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def verify_onnx(model, onnx_path, images=None, count=4, seed=0, threads=1):
    """Runs the exported graph with onnxruntime and `model` (Model or .tfm path) on the same
    images (default: `count` random uint8 faces); returns a dict with max_abs_diff, max_abs_ref,
    relative (= max_abs_diff / max_abs_ref) and min_cosine."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise OnnxDependencyError(f"onnxruntime is needed to verify the export (pip install onnxruntime): {e}") from None
    own = not isinstance(model, Model)
    m = Model(model) if own else model
    try:
        if images is None:
            images = np.random.default_rng(seed).integers(0, 256, (count, m.config.img_size, m.config.img_size, 3),
                                                          dtype=np.uint8)
        ref = m.embed(images, normalize=False, threads=threads, max_batch=len(images))
    finally:
        if own:
            m.close()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(os.fspath(onnx_path), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    feed = images if inp.type == "tensor(uint8)" else images.astype(np.float32)
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) else None
    if fixed is not None and fixed != len(images):
        outs = [sess.run(None, {inp.name: feed[i:i + fixed]})[0] for i in range(0, len(images) - fixed + 1, fixed)]
        got = np.concatenate(outs) if outs else np.zeros((0, ref.shape[1]), np.float32)
        ref = ref[:len(got)]
    else:
        got = sess.run(None, {inp.name: feed})[0]
    diff = float(np.abs(got.astype(np.float64) - ref).max()) if len(got) else 0.0
    top = float(np.abs(ref).max()) if len(got) else 0.0
    a = got.astype(np.float64)
    r = ref.astype(np.float64)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    return {"images": int(len(got)), "max_abs_diff": diff, "max_abs_ref": top,
            "relative": diff / top if top else 0.0,
            "min_cosine": float(np.min(np.sum(a * r, axis=1))) if len(got) else 1.0}
