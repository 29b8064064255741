"""The converter: shape inference for every official preset, .npz and torch .pt sources (read
without torch), training checkpoints, refusals (exit code 2, one line on stderr), export and
info."""

import json
import os
from collections import OrderedDict

import numpy as np
import pytest

import oracle
import torchzip
import transface
from conftest import TINY_HEADS, run_cli
from transface import __main__ as cli
from transface.convert import ConversionError, infer_config


def model_tensors(path):
    with transface.Model(path) as m:
        return m.config, m.state_dict()


def assert_same_model(a, b):
    ca, ta = model_tensors(a)
    cb, tb = model_tensors(b)
    assert ca == cb
    assert list(ta) == list(tb)
    for n in ta:
        np.testing.assert_array_equal(ta[n], tb[n], err_msg=n)


def run_main(capsys, *args):
    """The CLI in-process: (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(code, err, *words):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"


# ------------------------------------------------------------------ shape inference


@pytest.mark.parametrize("preset", ["vit_t", "vit_t_dp005_mask0", "vit_s", "vit_s_dp005_mask_0", "vit_b",
                                    "vit_b_dp005_mask_005", "vit_l_dp005_mask_005"])
def test_infer_config_of_every_preset(preset):
    cfg = transface.config_preset(preset)
    shapes = oracle.official_shapes(cfg.embed_dim, cfg.depth, cfg.embedding_size, cfg.mlp_hidden_dim)
    shapes["feature.1.num_batches_tracked"] = ()
    notes = []
    guessed = infer_config(shapes, notes=notes)
    for f in ("img_size", "patch_size", "in_channels", "embed_dim", "depth", "num_heads",
              "mlp_hidden_dim", "embedding_size"):
        assert getattr(guessed, f) == getattr(cfg, f), f
    assert guessed.arch == "custom"
    assert any("num_heads cannot be inferred" in n for n in notes)
    assert any(preset in n for n in notes)  # "shapes match preset(s) ..."
    assert infer_config(shapes, arch=preset) == cfg
    assert infer_config(shapes, num_heads=16).num_heads == 16
    with pytest.raises(ConversionError, match="num_heads 7 does not divide"):
        infer_config(shapes, num_heads=7)


def test_infer_config_embedding_size_and_grid():
    shapes = oracle.official_shapes(64, 3, 128)
    assert infer_config(shapes).embedding_size == 128
    assert infer_config(shapes, embedding_size=128).embedding_size == 128
    with pytest.raises(ConversionError, match="disagrees"):
        infer_config(shapes, embedding_size=512)
    # other patch sizes: img 112 when it fits the grid, else grid * patch
    for patch, grid, img in ((8, 14, 112), (16, 7, 112), (10, 10, 100)):
        s = oracle.official_shapes(32, 1, 16, img_size=grid * patch, patch_size=patch)
        c = infer_config(s)
        assert (c.patch_size, c.img_size, c.num_patches) == (patch, img, grid * grid)
    with pytest.raises(ConversionError, match="does not match|do not match"):
        infer_config(oracle.official_shapes(64, 2, 32), arch="vit_t")
    with pytest.raises(ConversionError, match="unknown --arch"):
        infer_config(oracle.official_shapes(64, 2, 32), arch="vit_x")
    bad = oracle.official_shapes(64, 2, 32)
    del bad["pos_embed"]
    with pytest.raises(ConversionError, match="missing pos_embed"):
        infer_config(bad)
    gap = oracle.official_shapes(64, 3, 32)
    for k in [k for k in gap if k.startswith("blocks.1.")]:
        del gap[k]
    with pytest.raises(ConversionError, match="blocks 1 are missing"):
        infer_config(gap)


# ------------------------------------------------------------------ npz through the CLI


def test_cli_convert_npz_subprocess(tiny_npz, tmp_path):
    out = tmp_path / "t.tfm"
    r = run_cli("convert", tiny_npz, "-o", out, "--num-heads", TINY_HEADS, "--embedding-size", 32)
    assert r.returncode == 0, r.stderr
    assert "num_batches_tracked" in r.stdout and "partial_fc.weight" in r.stdout  # skip notes
    assert r.stderr == ""
    info = run_cli("info", out, "--json")
    assert info.returncode == 0, info.stderr
    d = json.loads(info.stdout)
    assert d["config"]["embed_dim"] == 64 and d["config"]["num_heads"] == TINY_HEADS
    assert d["metadata"]["source"] == "tiny_official.npz"
    assert len(d["tensors"]) == 40
    text = run_cli("info", out, "--tensors")
    assert text.returncode == 0 and "senet.0.weight [144, 9216]" in text.stdout


def test_cli_default_heads_note(tiny_npz, tmp_path, capsys):
    code, out, err = run_main(capsys, "convert", tiny_npz, "-o", tmp_path / "t8.tfm")
    assert code == 0, err
    assert "using 8" in out
    with transface.Model(tmp_path / "t8.tfm") as m:
        assert m.config.num_heads == 8
        assert m.metadata["num_heads_from"] == "default (8)"


def test_export_round_trip(tiny_tfm, tiny_params, tmp_path, capsys):
    npz = tmp_path / "exported.npz"
    code, out, err = run_main(capsys, "export", tiny_tfm, "-o", npz)
    assert code == 0, err
    with np.load(npz) as z:
        names = list(z.keys())
        assert set(names) == {n for n in tiny_params if not n.endswith("num_batches_tracked")
                              and not n.startswith("partial_fc")}
        for n in names:
            assert z[n].dtype == np.float32
            np.testing.assert_array_equal(z[n], tiny_params[n], err_msg=n)
    again = tmp_path / "again.tfm"
    code, out, err = run_main(capsys, "convert", npz, "-o", again, "--num-heads", TINY_HEADS)
    assert code == 0, err
    assert_same_model(tiny_tfm, again)


def test_metadata_option(tiny_npz, tmp_path, capsys):
    out = tmp_path / "m.tfm"
    code, _, err = run_main(capsys, "convert", tiny_npz, "-o", out, "--num-heads", 4, "-q",
                            "--metadata", "license=test", "--metadata", "note=a=b", "--metadata", "ünï=cödé")
    assert code == 0, err
    with transface.Model(out) as m:
        md = m.metadata
        assert md["license"] == "test" and md["note"] == "a=b" and md["ünï"] == "cödé"
        assert m.metadata_get("license") == "test"


# ------------------------------------------------------------------ refusals


def _write_npz(path, params, drop=(), add=None, replace=None):
    d = {k: v for k, v in params.items() if k not in drop}
    d.update(add or {})
    d.update(replace or {})
    np.savez(path, **d)
    return path


def test_refuse_missing_unknown_misshaped(tiny_params, tmp_path, capsys):
    out = tmp_path / "never.tfm"
    src = _write_npz(tmp_path / "missing.npz", tiny_params, drop=("norm.bias", "blocks.1.mlp.fc2.bias"))
    code, _, err = run_main(capsys, "convert", src, "-o", out, "-q")
    assert_refused(code, err, "missing 2", "norm.bias", "blocks.1.mlp.fc2.bias")

    src = _write_npz(tmp_path / "unknown.npz", tiny_params,
                     add={"blocks.0.attn.qkv.bias": np.zeros(192, np.float32), "head.weight": np.zeros(3, np.float32)})
    code, _, err = run_main(capsys, "convert", src, "-o", out, "-q")
    assert_refused(code, err, "unknown 2", "blocks.0.attn.qkv.bias", "head.weight")

    src = _write_npz(tmp_path / "shape.npz", tiny_params,
                     replace={"senet.2.weight": np.zeros((144, 143), np.float32),
                              "norm.weight": np.zeros((1, 64), np.float32)})
    code, _, err = run_main(capsys, "convert", src, "-o", out, "-q")
    assert_refused(code, err, "mis-shaped 2", "senet.2.weight [144, 143] (expected [144, 144])", "norm.weight")

    src = _write_npz(tmp_path / "all.npz", tiny_params, drop=("norm.bias",),
                     add={"extra": np.zeros(1, np.float32)},
                     replace={"senet.2.weight": np.zeros((144, 143), np.float32)})
    code, _, err = run_main(capsys, "convert", src, "-o", out, "-q")
    assert_refused(code, err, "missing 1", "unknown 1", "mis-shaped 1")

    src = _write_npz(tmp_path / "noarch.npz", tiny_params, drop=("pos_embed",))
    code, _, err = run_main(capsys, "convert", src, "-o", out, "-q")
    assert_refused(code, err, "cannot infer", "pos_embed")

    src = _write_npz(tmp_path / "int.npz", tiny_params, replace={"norm.bias": np.zeros(64, np.int32)})
    code, _, err = run_main(capsys, "convert", src, "-o", out, "-q")
    assert_refused(code, err, "not floating point", "norm.bias")

    nan = tiny_params["norm.weight"].copy()
    nan[3] = np.nan
    src = _write_npz(tmp_path / "nan.npz", tiny_params, replace={"norm.weight": nan})
    code, _, err = run_main(capsys, "convert", src, "-o", out, "-q")
    assert_refused(code, err, "norm.weight", "NaN")
    assert not out.exists()


def test_refuse_bad_sources_and_options(tiny_npz, tmp_path, capsys):
    out = tmp_path / "never.tfm"
    code, _, err = run_main(capsys, "convert", tmp_path / "absent.npz", "-o", out)
    assert_refused(code, err, "absent.npz", "no such file")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    code, _, err = run_main(capsys, "convert", empty, "-o", out)
    assert_refused(code, err, "empty")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(os.urandom(1000).replace(b"\x80", b"\x00").replace(b"PK", b"pk"))
    code, _, err = run_main(capsys, "convert", garbage, "-o", out)
    assert_refused(code, err, "neither")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(tiny_npz.read_bytes()[:5000])
    code, _, err = run_main(capsys, "convert", truncated, "-o", out)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _, err = run_main(capsys, "convert", tiny_npz, "-o", out, "--arch", "vit_t")
    assert_refused(code, err, "--arch vit_t", "embed_dim 64")
    code, _, err = run_main(capsys, "convert", tiny_npz, "-o", out, "--arch", "vit_q")
    assert_refused(code, err, "unknown --arch", "vit_q")
    code, _, err = run_main(capsys, "convert", tiny_npz, "-o", out, "--embedding-size", "512")
    assert_refused(code, err, "512", "32")
    code, _, err = run_main(capsys, "convert", tiny_npz, "-o", out, "--metadata", "novalue")
    assert_refused(code, err, "KEY=VALUE")
    assert not out.exists()


def test_refusal_from_subprocess_is_one_line_exit_2(tiny_params, tmp_path):
    src = _write_npz(tmp_path / "missing.npz", tiny_params, drop=("feature.3.running_var",))
    r = run_cli("convert", src, "-o", tmp_path / "x.tfm")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "feature.3.running_var" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("info", tmp_path / "absent.tfm")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "absent.tfm" in r.stderr


# ------------------------------------------------------------------ torch .pt without torch


def _as_pt_state_dict(params, prefix=""):
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


def _half_params(params):
    """float16 / bfloat16 versions of two tensors, and float32 params with the same values."""
    p = dict(params)
    h = params["blocks.0.mlp.fc1.weight"].astype(np.float16)
    p["blocks.0.mlp.fc1.weight"] = h.astype(np.float32)
    bits = (params["feature.2.weight"].view(np.uint32) >> 16).astype(np.uint16)  # truncate to bf16
    p["feature.2.weight"] = (bits.astype(np.uint32) << 16).view(np.float32)
    return p, h, bits


def test_pt_without_torch_equals_npz(tiny_params, tmp_path, capsys):
    same_values, h, bits = _half_params(tiny_params)
    npz = _write_npz(tmp_path / "ref.npz", same_values)
    sd = _as_pt_state_dict(same_values)
    sd["blocks.0.mlp.fc1.weight"] = torchzip.Tensor(h, h.shape)
    sd["feature.2.weight"] = torchzip.Tensor(bits, bits.shape, dtype="bfloat16")
    pt = tmp_path / "model.pt"
    torchzip.save(sd, pt, archive="model")
    a, b = tmp_path / "a.tfm", tmp_path / "b.tfm"
    assert run_main(capsys, "convert", npz, "-o", a, "--num-heads", 4, "-q")[0] == 0
    code, out, err = run_main(capsys, "convert", pt, "-o", b, "--num-heads", 4, "--no-torch")
    assert code == 0, err
    assert "num_batches_tracked" in out and "partial_fc.weight" in out
    assert_same_model(a, b)
    with transface.Model(b) as m:
        assert m.metadata["source"] == "model.pt"
        assert "without torch" in m.metadata["source_format"]


def test_training_checkpoint_with_module_prefix(tiny_params, tmp_path, capsys):
    ckpt = {
        "epoch": 7,
        "global_step": 1234,
        "state_dict_backbone": _as_pt_state_dict(tiny_params, prefix="module."),
        "state_dict_softmax_fc": {"weight": torchzip.Tensor.of(tiny_params["partial_fc.weight"])},
        "state_optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999),
                                                           "params": [0, 1, 2]}]},
        "state_lr_scheduler": {"last_epoch": 3, "base_lrs": [0.001]},
    }
    pt = tmp_path / "checkpoint_gpu_0.pt"
    torchzip.save(ckpt, pt)
    out = tmp_path / "ckpt.tfm"
    code, text, err = run_main(capsys, "convert", pt, "-o", out, "--num-heads", 4, "--no-torch")
    assert code == 0, err
    assert "state_dict_backbone" in text and "module." in text
    with transface.Model(out) as m:
        for n in m.tensor_names():
            np.testing.assert_array_equal(m.read_tensor(n), tiny_params[n], err_msg=n)


def test_forbidden_global_is_refused(tmp_path, capsys):
    witness = tmp_path / "pwned"
    evil = torchzip.Raw(torchzip.glob("os", "system") + b"(X" +
                        len(f"touch {witness}").to_bytes(4, "little") + f"touch {witness}".encode() +
                        b"tR")
    pt = tmp_path / "evil.pt"
    torchzip.save({"pos_embed": evil}, pt)
    code, _, err = run_main(capsys, "convert", pt, "-o", tmp_path / "x.tfm", "--no-torch")
    assert_refused(code, err, "os.system", "refusing")
    assert not witness.exists()
    for module, name in (("builtins", "eval"), ("subprocess", "Popen"), ("torch", "load"),
                         ("numpy.core.multiarray", "_reconstruct")):
        torchzip.save({"x": torchzip.Raw(torchzip.glob(module, name) + b")R")}, pt)
        code, _, err = run_main(capsys, "convert", pt, "-o", tmp_path / "x.tfm", "--no-torch")
        assert_refused(code, err, f"{module}.{name}")
    from transface import _torchfile
    with pytest.raises(_torchfile.TorchFileError, match="refusing global 'os.system'"):
        torchzip.save({"pos_embed": evil}, pt)
        _torchfile.load(pt)
    assert not witness.exists()


def test_malformed_pt_files(tiny_params, tmp_path, capsys):
    from transface import _torchfile
    pt = tmp_path / "bad.pt"
    # a view reaching past its storage
    torchzip.save({"a": torchzip.Tensor(np.zeros(4, np.float32), (3, 3))}, pt)
    with pytest.raises(_torchfile.TorchFileError, match="reaches element"):
        _torchfile.load(pt)
    # a storage record shorter than declared
    data, storages = torchzip.pickle_bytes({"a": torchzip.Tensor.of(np.zeros(8, np.float32))})
    import zipfile
    with zipfile.ZipFile(pt, "w") as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/data/0", b"\0" * 12)
    with pytest.raises(_torchfile.TorchFileError, match="bytes"):
        _torchfile.load(pt)
    # missing storage record
    with zipfile.ZipFile(pt, "w") as z:
        z.writestr("archive/data.pkl", data)
    with pytest.raises(_torchfile.TorchFileError, match="missing"):
        _torchfile.load(pt)
    # legacy (pre-zip) torch.save files and truncated pickles
    pt.write_bytes(b"\x80\x02\x8a\x0alegacy")
    code, _, err = run_main(capsys, "convert", pt, "-o", tmp_path / "x.tfm", "--no-torch")
    assert_refused(code, err, "legacy")
    with zipfile.ZipFile(pt, "w") as z:
        z.writestr("archive/data.pkl", data[:20])
    code, _, err = run_main(capsys, "convert", pt, "-o", tmp_path / "x.tfm", "--no-torch")
    assert_refused(code, err, "data.pkl")
    # not a state_dict
    torchzip.save([1, 2, 3], pt)
    code, _, err = run_main(capsys, "convert", pt, "-o", tmp_path / "x.tfm", "--no-torch")
    assert_refused(code, err, "not a state_dict")
    # big-endian storages are byte-swapped
    torchzip.save({"a": torchzip.Tensor(np.arange(4, dtype=">f4"), (4,))}, pt, byteorder="big")
    np.testing.assert_array_equal(_torchfile.load(pt)["a"].load(), np.arange(4, dtype=np.float32))


def test_torch_save_files_if_torch_is_installed(tiny_params, tmp_path, capsys):
    """With torch importable: torch.save files convert the same through torch.load and through
    the built-in reader. Skipped where torch is not installed."""
    torch = pytest.importorskip("torch")
    sd = OrderedDict((k, torch.from_numpy(v.copy())) for k, v in tiny_params.items())
    pt = tmp_path / "real.pt"
    torch.save(sd, pt)
    a, b = tmp_path / "a.tfm", tmp_path / "b.tfm"
    assert run_main(capsys, "convert", pt, "-o", a, "--num-heads", 4, "-q")[0] == 0
    assert run_main(capsys, "convert", pt, "-o", b, "--num-heads", 4, "-q", "--no-torch")[0] == 0
    assert_same_model(a, b)
    hand = tmp_path / "hand.pt"
    torchzip.save(_as_pt_state_dict(tiny_params), hand)
    loaded = torch.load(hand, weights_only=True)
    for k, v in tiny_params.items():
        if not k.endswith("num_batches_tracked"):
            np.testing.assert_array_equal(loaded[k].numpy(), v, err_msg=k)
