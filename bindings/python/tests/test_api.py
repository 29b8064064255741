"""The Python API itself: presets, Builder round trips, dtypes, metadata, handles, install."""

import gc
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import transface
from conftest import PACKAGE_ROOT, cli_env, random_images, tiny_config
from transface import _lib

OFFICIAL = ["vit_t", "vit_t_dp005_mask0", "vit_s", "vit_s_dp005_mask_0", "vit_b",
            "vit_b_dp005_mask_005", "vit_l_dp005_mask_005"]


def test_every_header_function_is_declared():
    header = (PACKAGE_ROOT.parents[1] / "include" / "transface.h").read_text()
    import re
    declared = set(re.findall(r"\b(transface_[a-z0-9_]+)\s*\(", header))
    declared -= {"transface_status", "transface_dtype"}
    assert declared == set(_lib.FUNCTIONS), declared ^ set(_lib.FUNCTIONS)
    structs = set(re.findall(r"typedef struct (transface_[a-z_]+) \{", header))
    assert structs == set(_lib.STRUCTS)
    lib = _lib.lib()
    for name in _lib.FUNCTIONS:
        assert getattr(lib, name).argtypes is not None or _lib.FUNCTIONS[name][1] == []


def test_struct_layouts_match_the_library():
    lib = _lib.lib()
    assert lib.transface_load_default_params().struct_size == _lib.ctypes.sizeof(_lib.transface_load_params)
    assert lib.transface_context_default_params().struct_size == _lib.ctypes.sizeof(_lib.transface_context_params)
    c = _lib.new_struct(_lib.transface_config)
    assert lib.transface_config_preset(b"vit_s", 0, _lib.ctypes.byref(c)) == 0
    assert c.struct_size == _lib.ctypes.sizeof(_lib.transface_config)
    assert (c.embed_dim, c.depth, c.num_heads, c.embedding_size) == (512, 12, 8, 512)


def test_versions_and_presets():
    assert transface.version().count(".") == 2
    assert transface.version_number() // 10000 == 0
    assert transface.format_version() >= 1
    assert os.path.exists(transface.library_path())
    assert transface.presets() == OFFICIAL
    expect = {"vit_t": (256, 12), "vit_s": (512, 12), "vit_b": (512, 24), "vit_l_dp005_mask_005": (768, 24)}
    for name, (d, depth) in expect.items():
        c = transface.config_preset(name)
        assert (c.arch, c.embed_dim, c.depth, c.num_heads, c.mlp_hidden_dim, c.embedding_size,
                c.img_size, c.patch_size) == (name, d, depth, 8, 4 * d, 512, 112, 9)
    assert transface.config_preset("vit_t", 128).embedding_size == 128
    c = transface.config_preset("vit_b_dp005_mask_005")
    assert (c.drop_path_rate, c.mask_ratio) == (0.05, 0.05)
    assert transface.config_preset("vit_t").num_patches == 144


def test_builder_round_trip(tmp_path):
    cfg = tiny_config(arch="mini")
    with transface.Builder(cfg) as b:
        info = b.tensor_info()
        assert list(info)[:4] == ["pos_embed", "mask_token", "patch_embed.proj.weight", "patch_embed.proj.bias"]
        assert info["senet.0.weight"] == (144, 144 * 64)
        b.init_weights(42)
        b.set_metadata("author", "test")
        b.set_metadata("author", "replaced")
        b.set_metadata("ключ", "значение")
        path = tmp_path / "mini.tfm"
        b.save(path)
        with b.build() as built:
            x = random_images(3)
            e_built = built.embed(x)
    with transface.Model(path) as m:
        assert m.config == cfg
        assert m.metadata == {"author": "replaced", "ключ": "значение"}
        assert m.tensor_info() == info
        np.testing.assert_array_equal(m.embed(x), e_built)
        p = m.preprocess
        assert p.channel_order == "RGB" and p.mean == (0.5, 0.5, 0.5) and p.std == (0.5, 0.5, 0.5)
        assert p.align_template[0] == (38.2946, 51.6963)
        assert np.abs(np.linalg.norm(m.embed(x), axis=1) - 1).max() < 1e-6
        assert m.path == os.fspath(path)
        assert "mini" in repr(m)


def test_init_weights_is_seeded():
    def weights(seed):
        with transface.Builder(tiny_config()) as b:
            b.init_weights(seed)
            with b.build() as m:
                return m.state_dict()
    a, b, c = weights(1), weights(1), weights(2)
    for n in a:
        np.testing.assert_array_equal(a[n], b[n])
    assert any(not np.array_equal(a[n], c[n]) for n in a if n.endswith("qkv.weight"))
    assert np.all(a["blocks.0.norm1.weight"] == 1) and np.all(a["blocks.0.norm1.bias"] == 0)
    assert np.all(a["feature.3.running_var"] == 1)
    q = a["blocks.0.attn.qkv.weight"]
    # timm's trunc_normal_(std=0.02) cuts at +-2 in absolute value, i.e. practically a normal
    assert abs(float(q.std()) - 0.02) < 0.002 and np.abs(q).max() <= 2


def test_set_tensor_dtypes():
    rng = np.random.default_rng(3)
    with transface.Builder(tiny_config()) as b:
        b.init_weights(0)
        w32 = rng.standard_normal((64,)).astype(np.float32)
        b.set_tensor("norm.weight", w32)
        w16 = rng.standard_normal((64,)).astype(np.float16)
        b.set_tensor("norm.bias", w16)
        f64 = rng.standard_normal((32,))
        b.set_tensor("feature.3.bias", f64)
        bf_src = rng.standard_normal((32, 64)).astype(np.float32)
        bits = (bf_src.view(np.uint32) >> 16).astype(np.uint16)
        b.set_tensor("feature.2.weight", bits, dtype="bfloat16")
        b.set_tensor("feature.3.weight", w16[:32].view(np.uint16), dtype="float16")
        b.set_tensor("feature.1.bias", np.asfortranarray(w32.reshape(64)))
        t = np.ascontiguousarray(rng.standard_normal((64, 64)).astype(np.float32))
        b.set_tensor("blocks.0.attn.proj.weight", t.T)  # non-contiguous view
        with b.build() as m:
            np.testing.assert_array_equal(m.read_tensor("norm.weight"), w32)
            np.testing.assert_array_equal(m.read_tensor("norm.bias"), w16.astype(np.float32))
            np.testing.assert_array_equal(m.read_tensor("feature.3.bias"), f64.astype(np.float32))
            np.testing.assert_array_equal(m.read_tensor("feature.2.weight"),
                                          (bits.astype(np.uint32) << 16).view(np.float32))
            np.testing.assert_array_equal(m.read_tensor("feature.3.weight"), w16[:32].astype(np.float32))
            np.testing.assert_array_equal(m.read_tensor("blocks.0.attn.proj.weight"), t.T)
            assert m.read_tensor("senet.0.weight").shape == (144, 9216)


def test_preprocess_round_trip(tmp_path):
    with transface.Builder(tiny_config()) as b:
        b.init_weights(0)
        template = [(float(i), float(i + 1)) for i in range(5)]
        b.set_preprocess(transface.Preprocess(mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25),
                                              channel_order="BGR", align_template=template))
        b.save(tmp_path / "p.tfm")
    with transface.Model(tmp_path / "p.tfm") as m:
        p = m.preprocess
        assert p.mean == (0.4, 0.5, 0.6) and p.std == (0.2, 0.3, 0.25)
        assert p.channel_order == "BGR"
        assert p.align_template == tuple(template)
        assert m.input_size == (112, 112)


def test_no_leaks(tiny_tfm):
    """Creating and freeing handles many times does not grow the process: each round loads the
    tiny model (8 MB of weights), makes a context, a builder (8 MB) and an in-memory model
    (8 MB more), so a leaked handle shows as >= 8 MB per round."""
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    x = random_images(1)
    with transface.Model(tiny_tfm) as source:
        weights = source.state_dict()

    def round_():
        with transface.Model(tiny_tfm, verify_checksums=False) as m:
            with m.context(max_batch=1) as c:
                c.embed(x)
        b = transface.Builder(tiny_config())
        for n, v in weights.items():
            b.set_tensor(n, v)
        built = b.build()
        ctx = built.context()  # freed after its model: the weights live until both are gone
        del b, built, ctx      # freed by __del__
        gc.collect()

    for _ in range(2):
        round_()
    before = rss()
    for _ in range(8):
        round_()
    grown = rss() - before
    assert grown < 24 << 20, f"RSS grew by {grown >> 20} MiB over 8 rounds"


def test_library_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFACE_LIBRARY", str(tmp_path / "nope.so"))
    with pytest.raises(transface.LibraryNotFoundError, match="nope.so"):
        _lib.find_library()
    monkeypatch.delenv("TRANSFACE_LIBRARY")
    path, how = _lib.find_library()
    assert how in ("repository build folder", "ctypes.util.find_library")
    if how == "repository build folder":
        assert path.endswith("libtransface.so") and os.sep + ".build" + os.sep in path


def test_pip_install_target(tmp_path):
    """`pip install ./bindings/python` works (setuptools comes through pip's build isolation);
    the installed package imports and finds the library through TRANSFACE_LIBRARY. Built from
    a copy so that the source tree stays clean."""
    source = tmp_path / "src"
    shutil.copytree(PACKAGE_ROOT, source, ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info"))
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                        "--disable-pip-version-check", "--target", str(target), str(source)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (target / "transface" / "_lib.py").exists()
    env = cli_env()
    env["PYTHONPATH"] = str(target)
    code = ("import transface, sys; assert transface.__file__.startswith(sys.argv[1]), transface.__file__; "
            "print(transface.version(), len(transface.presets()))")
    r = subprocess.run([sys.executable, "-c", code, str(target)], env=env, capture_output=True,
                       text=True, cwd=str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1] == "7"
    r = subprocess.run([sys.executable, "-m", "transface", "--help"], env=env, capture_output=True,
                       text=True, cwd=str(tmp_path), timeout=120)
    assert r.returncode == 0 and "convert" in r.stdout


def test_context_precision(tiny_model):
    """bf16 contexts agree with float32 to cosine >= 0.9995, or are refused naming the instructions."""
    x = random_images(3, seed=5)
    ref = transface.Context(tiny_model).embed(x, flip=True)
    try:
        ctx = transface.Context(tiny_model, threads=2, precision="bf16")
    except transface.InvalidArgumentError as e:
        assert "AVX512_BF16" in str(e)
    else:
        assert ctx.precision == "bf16" and "precision=bf16" in repr(ctx)
        got = ctx.embed(x, flip=True)
        assert np.min(np.sum(got * ref, axis=1)) >= 0.9995
    with pytest.raises(transface.InvalidArgumentError, match="precision"):
        transface.Context(tiny_model, precision="fp16")
