"""ONNX export (transface.onnx_export, `python3 -m transface export-onnx`): ONNX Runtime on the
exported graph against libtransface's raw embeddings (Model.embed(normalize=False)).

Tolerance: |onnx - ours| <= ATOL + RTOL * max|ours| over the whole batch, ATOL 1e-6, RTOL 1e-5
(measured: below 1e-6 relative on the tiny reference and on random vit_t weights; the two
engines differ only in float32 summation order).

Needs the onnx and onnxruntime packages (pip install onnx onnxruntime); skipped without them.
"""

import numpy as np
import pytest

try:
    import onnx
    import onnxruntime as ort
except ImportError as e:  # CI installs only numpy and pytest
    pytest.skip(f"onnx/onnxruntime not importable ({e}); pip install onnx onnxruntime to run the "
                "ONNX export tests", allow_module_level=True)

import transface
from transface.onnx_export import (OnnxExportError, build_onnx, export_onnx, verify_onnx)

from conftest import random_images, run_cli, tiny_config

ATOL = 1e-6
RTOL = 1e-5


def session(path, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_onnx(path, images):
    s = session(path)
    feed = images if s.get_inputs()[0].type == "tensor(uint8)" else images.astype(np.float32)
    return s.run(None, {"images": feed})[0]


def assert_agree(got, ref, what):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    err, top = float(np.abs(got - ref).max()), float(np.abs(ref).max())
    bound = ATOL + RTOL * top
    print(f"{what}: max |diff| {err:.3g} = {err / top:.3g} of max |ref| {top:.3g} (bound {bound:.3g})")
    assert err <= bound, f"{what}: max |diff| {err:.3g} exceeds {bound:.3g}"


def ops_of(path):
    return {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}


def build_model(config, seed=0, preprocess=None):
    with transface.Builder(config) as b:
        b.init_weights(seed=seed)
        if preprocess is not None:
            b.set_preprocess(preprocess)
        return b.build()


def test_tiny_reference(tiny_model, tiny_images, tiny_ref, tmp_path):
    path = tmp_path / "tiny.onnx"
    info = export_onnx(tiny_model, path)
    assert info["input"] == ("images", "uint8", ["N", 112, 112, 3])
    assert info["output"] == ("embedding", "float32", ["N", 32])
    got = run_onnx(path, tiny_images)
    assert_agree(got, tiny_model.embed(tiny_images, normalize=False), "tiny reference inputs vs ours")
    assert_agree(got, tiny_ref["embedding"], "tiny reference inputs vs official")
    x = random_images(5, seed=11)
    assert_agree(run_onnx(path, x), tiny_model.embed(x, normalize=False), "tiny random images vs ours")


def test_graph_interface(tiny_model, tmp_path):
    proto = build_onnx(tiny_model)
    g = proto.graph
    assert [i.name for i in g.input] == ["images"] and [o.name for o in g.output] == ["embedding"]
    assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert proto.opset_import[0].version == 17
    allowed = {"Slice", "Transpose", "Cast", "Div", "Sub", "Conv", "Reshape", "Add", "Mul",
               "LayerNormalization", "MatMul", "Gather", "Softmax", "Clip", "Gemm", "Relu", "Sigmoid",
               "BatchNormalization", "Identity"}
    assert {n.op_type for n in g.node} <= allowed
    # the weights are the model's (mask_token is unused at inference)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    np.testing.assert_array_equal(inits["feature.0.weight"], tiny_model.read_tensor("feature.0.weight"))
    np.testing.assert_array_equal(inits["blocks.1.attn.qkv.weight.T"],
                                  tiny_model.read_tensor("blocks.1.attn.qkv.weight").T)
    assert "mask_token" not in inits
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["normalized_output"] == "False" and props["embedding_size"] == "32"


def test_random_vit_t(tmp_path):
    model = build_model("vit_t", seed=7)
    path = tmp_path / "vit_t.onnx"
    export_onnx(model, path)
    s = session(path, threads=2)
    for n, seed in ((1, 1), (3, 2)):   # one graph, two batch sizes
        x = random_images(n, seed=seed)
        assert_agree(s.run(None, {"images": x})[0], model.embed(x, normalize=False, max_batch=n),
                     f"random vit_t, {n} random images")
    model.close()


def test_no_se_model_has_no_se_nodes(tmp_path):
    model = build_model(tiny_config(se_gate=False), seed=3)
    assert "senet.0.weight" not in model.tensor_names()
    path = tmp_path / "plain.onnx"
    export_onnx(model, path)
    proto = onnx.load(str(path))
    assert not any("senet" in n.name for n in proto.graph.node)
    assert not any("senet" in t.name for t in proto.graph.initializer)
    assert "Sigmoid" not in ops_of(path) and "Relu" not in ops_of(path)
    x = random_images(3, seed=4)
    assert_agree(run_onnx(path, x), model.embed(x, normalize=False), "no-SE model")
    with_se = build_model(tiny_config(), seed=3)
    export_onnx(with_se, tmp_path / "se.onnx")
    assert {"Sigmoid", "Relu"} <= ops_of(tmp_path / "se.onnx")


def test_bgr_model_and_custom_normalisation(tmp_path):
    pre = transface.Preprocess(channel_order="BGR", mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25))
    model = build_model(tiny_config(), seed=5, preprocess=pre)
    path = tmp_path / "bgr.onnx"
    export_onnx(model, path)
    x = random_images(3, seed=6)
    assert_agree(run_onnx(path, x), model.embed(x, normalize=False), "BGR model (RGB input)")


def test_float_input_fixed_batch_newer_opset(tiny_model, tmp_path):
    path = tmp_path / "f.onnx"
    info = export_onnx(tiny_model, path, batch=2, input_type="float32", opset=18)
    assert info["input"] == ("images", "float32", [2, 112, 112, 3])
    x = random_images(2, seed=8)
    assert_agree(run_onnx(path, x), tiny_model.embed(x, normalize=False), "float32 input, batch 2, opset 18")
    with pytest.raises(Exception):
        run_onnx(path, random_images(3, seed=8))   # the batch is fixed


def test_external_data(tiny_model, tmp_path):
    path = tmp_path / "ext.onnx"
    info = export_onnx(tiny_model, path, external_data=True)
    assert info["external_data"] and (tmp_path / "ext.onnx.data").is_file()
    assert path.stat().st_size < 100_000
    r = verify_onnx(tiny_model, path, count=2)
    assert r["relative"] <= RTOL and r["min_cosine"] > 0.99999


def test_refusals(tiny_model):
    for kw in (dict(opset=16), dict(batch=0), dict(batch=True), dict(input_type="int8")):
        with pytest.raises(OnnxExportError):
            build_onnx(tiny_model, **kw)


def test_cli(tiny_tfm, tmp_path):
    out = tmp_path / "cli.onnx"
    r = run_cli("export-onnx", tiny_tfm, "-o", out, "--batch", "2", "--verify")
    assert r.returncode == 0, r.stderr
    assert "opset 17" in r.stdout and "verify (2 random images" in r.stdout
    assert out.is_file()
    for bad in (["--batch", "zero"], ["--opset", "13"]):
        r = run_cli("export-onnx", tiny_tfm, "-o", tmp_path / "bad.onnx", *bad)
        assert r.returncode == 2 and r.stderr.startswith("transface export-onnx: error:"), r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.onnx").exists()
