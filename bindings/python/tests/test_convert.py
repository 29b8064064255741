"""The converter (the library's, through transface_convert_state_dict): shape inference for
every official preset, .npz and torch .pt sources (read without torch), training checkpoints,
refusals (exit code 2, one line on stderr), byte identity with the converters it replaced,
export and info."""

import hashlib
import json
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import convert_sources
import oracle
import torchzip
import transface
from conftest import TINY_HEADS, run_cli
from transface import __main__ as cli
from transface.convert import ConversionError, convert, infer_config


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


_as_pt_state_dict = convert_sources.as_pt_state_dict
_half_params = convert_sources.half_params


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
    ckpt = convert_sources.training_checkpoint(tiny_params)
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
    assert_refused(code, err, "os.system", "not on the whitelist")
    assert not witness.exists()
    for module, name in (("builtins", "eval"), ("subprocess", "Popen"), ("torch", "load"),
                         ("numpy.core.multiarray", "_reconstruct")):
        torchzip.save({"x": torchzip.Raw(torchzip.glob(module, name) + b")R")}, pt)
        code, _, err = run_main(capsys, "convert", pt, "-o", tmp_path / "x.tfm", "--no-torch")
        assert_refused(code, err, f"{module}.{name}")
    torchzip.save({"pos_embed": evil}, pt)
    with pytest.raises(ConversionError, match="os.system") as e:
        convert(pt, tmp_path / "x.tfm")
    assert e.value.status == transface._lib.TRANSFACE_FORMAT
    assert not witness.exists()


def test_malformed_pt_files(tiny_params, tmp_path, capsys):
    pt = tmp_path / "bad.pt"
    out = tmp_path / "x.tfm"
    # a view reaching past its storage
    torchzip.save({"a": torchzip.Tensor(np.zeros(4, np.float32), (3, 3))}, pt)
    with pytest.raises(ConversionError, match="reaches element"):
        convert(pt, out)
    # a storage record shorter than declared
    data, storages = torchzip.pickle_bytes({"a": torchzip.Tensor.of(np.zeros(8, np.float32))})
    with zipfile.ZipFile(pt, "w") as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/data/0", b"\0" * 12)
    with pytest.raises(ConversionError, match="bytes"):
        convert(pt, out)
    # missing storage record
    with zipfile.ZipFile(pt, "w") as z:
        z.writestr("archive/data.pkl", data)
    with pytest.raises(ConversionError, match="missing"):
        convert(pt, out)
    # legacy (pre-zip) torch.save files and truncated pickles
    pt.write_bytes(b"\x80\x02\x8a\x0alegacy")
    code, _, err = run_main(capsys, "convert", pt, "-o", out, "--no-torch")
    assert_refused(code, err, "legacy")
    with zipfile.ZipFile(pt, "w") as z:
        z.writestr("archive/data.pkl", data[:20])
    code, _, err = run_main(capsys, "convert", pt, "-o", out, "--no-torch")
    assert_refused(code, err, "data.pkl")
    # not a state_dict
    torchzip.save([1, 2, 3], pt)
    code, _, err = run_main(capsys, "convert", pt, "-o", out)
    assert_refused(code, err, "not a state_dict")
    # a truncated torch.save file, and a damaged storage (CRC mismatch)
    good = tmp_path / "good.pt"
    torchzip.save(_as_pt_state_dict(tiny_params), good)
    raw = good.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 10, 30):
        pt.write_bytes(raw[:cut])
        code, _, err = run_main(capsys, "convert", pt, "-o", out)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (cut, err)
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF  # inside a stored (uncompressed) storage record
    pt.write_bytes(bytes(flipped))
    code, _, err = run_main(capsys, "convert", pt, "-o", out)
    assert_refused(code, err, "damaged")
    assert not out.exists()
    # big-endian storages are byte-swapped
    npz = _write_npz(tmp_path / "little.npz", tiny_params)
    big = OrderedDict((n, torchzip.Tensor.of(v.astype(v.dtype.newbyteorder(">")))) for n, v in tiny_params.items())
    torchzip.save(big, pt, byteorder="big")
    a, b = tmp_path / "little.tfm", tmp_path / "big.tfm"
    convert(npz, a, num_heads=TINY_HEADS)
    convert(pt, b, num_heads=TINY_HEADS)
    assert_same_model(a, b)


def test_torch_save_files_if_torch_is_installed(tiny_params, tmp_path, capsys):
    """A real torch.save file converts to the same model as the .npz of the same arrays, and our
    hand-made .pt files load in torch. Skipped where torch is not installed."""
    torch = pytest.importorskip("torch")
    sd = OrderedDict((k, torch.from_numpy(v.copy())) for k, v in tiny_params.items())
    pt = tmp_path / "real.pt"
    torch.save(sd, pt)
    a, b = tmp_path / "a.tfm", tmp_path / "b.tfm"
    assert run_main(capsys, "convert", pt, "-o", a, "--num-heads", 4, "-q")[0] == 0
    assert run_main(capsys, "convert", _write_npz(tmp_path / "same.npz", tiny_params), "-o", b, "--num-heads", 4, "-q")[0] == 0
    assert_same_model(a, b)
    hand = tmp_path / "hand.pt"
    torchzip.save(_as_pt_state_dict(tiny_params), hand)
    loaded = torch.load(hand, weights_only=True)
    for k, v in tiny_params.items():
        if not k.endswith("num_batches_tracked"):
            np.testing.assert_array_equal(loaded[k].numpy(), v, err_msg=k)


# ------------------------------------------------------------------ byte identity

# SHA-256 of the reference sources of convert_sources.write_sources converted with
# `--num-heads 4 --metadata set=tiny`. Produced with libtransface 0.2.0 at commit 7552f40
# by the two converters this one replaced, before the Python one was removed:
#   swift: `.build/debug/transface-cli convert SRC -o OUT -q --num-heads 4 --metadata set=tiny`
#          (TFConvert; what the library's transface_convert_state_dict writes now), and
#   python: `python3 -m transface convert ...` (bindings/python/transface/convert.py +
#          _torchfile.py; with torch installed, .pt files went through torch.load).
# The two differed only in metadata values, which the Python converter set to its own name:
# converter = "transface-python convert v1 (libtransface 0.2.0)" (swift: "transface convert v1
# (libtransface 0.2.0)"), and source_format = "torch.load" where torch read the file (swift:
# "torch zip (read without torch)"); tensors, config and the other entries were byte-identical,
# as the second half of the test shows by setting those two values through --metadata.
# The `converter` entry names the library version, so these change with it (regenerate then).
EXPECTED_VERSION = "0.2.0"
SWIFT_SHA256 = {
    "tiny_official.npz": "41d8105d3d476256e4ad470116f9a3e932017f8d30c1dfa687e27b125cec6e3a",
    "model.pt": "35de55cd557961f51984c22ea159fcbe184bdfab62594e32e15479d1fc3da758",
    "checkpoint_gpu_0.pt": "590849ab404205a1e9cf1006bf5240f7047da1a04ab68de34bb95ac88c05be01",
    "mixed_dtypes.npz": "9542470220780de4ae91a83217f1bd197ee85dd346229944853e0547a18c20c0",
    "real.pt": "ff30e0cd39b4d349f0d77e2eae30b03e71f8098fccde1ad3c5dfccb08ea68555",
}
PYTHON_SHA256 = {  # torch.load for .pt (torch 2.13 installed); --no-torch gave the "without torch" ones
    "tiny_official.npz": "f5669051cf5d153b283266601dfdd9f75ecc56c84476969f9c55d556cd0b8aa1",
    "model.pt": "fef8e8e418b9569d8a47b7e7ceefcc89756c8f3c491dfd860fbed2dca6155d3d",
    "checkpoint_gpu_0.pt": "2ac3d4d46759d16a1a9324f8e693d5a68a37147590fc8bccbbf8772b1f94d78e",
    "mixed_dtypes.npz": "20d0f9c69fa37a6fe09c839d6c6a3692d7ee7fba8ca824b57b4f16c21a7a3aaa",
    "real.pt": "988dafc35c196cd2a79819bb4c1b5a3fd120eec379313ea24449724b336a184d",
}
PYTHON_NO_TORCH_SHA256 = {
    "model.pt": "7d3020775d05c981ad8fd288e47499c315a55364a7e6fecf07811c2505aab064",
    "checkpoint_gpu_0.pt": "959e39cb2804a2857093b052eb3fdb17cc58b0d74f96d7f99c8dc80ee313a49d",
    "real.pt": "9e58fd740a0c337ab354292de581d8f5cb98942c7531592f0fbb0c6aadbb382c",
}


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_output_is_byte_identical_to_the_replaced_converters(tiny_params, tmp_path):
    assert transface.version() == EXPECTED_VERSION, (
        "the converter metadata names the library version: regenerate the hashes above "
        "(convert the sources with this version's CLI and check the test's second half still holds)")
    try:
        import torch
    except ImportError:
        torch = None
    sources = convert_sources.write_sources(tiny_params, tmp_path, torch=torch)
    old_label = f"transface-python convert v1 (libtransface {EXPECTED_VERSION})"
    for name, src in sources.items():
        out = tmp_path / f"{name}.tfm"
        convert(src, out, num_heads=TINY_HEADS, metadata={"set": "tiny"})
        assert _sha256(out) == SWIFT_SHA256[name], name
        r = run_cli("convert", src, "-o", out, "-q", "--num-heads", TINY_HEADS, "--metadata", "set=tiny")
        assert r.returncode == 0, r.stderr
        assert _sha256(out) == SWIFT_SHA256[name], f"{name} (python3 -m transface)"
        # the old Python converter's files: the same but for its two labels
        labels = {"set": "tiny", "converter": old_label}
        if name.endswith(".pt"):
            convert(src, out, num_heads=TINY_HEADS, metadata=labels)
            assert _sha256(out) == PYTHON_NO_TORCH_SHA256[name], f"{name} (old python, no torch)"
            labels["source_format"] = "torch.load"
        convert(src, out, num_heads=TINY_HEADS, metadata=labels)
        assert _sha256(out) == PYTHON_SHA256[name], f"{name} (old python)"
