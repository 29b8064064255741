"""The float64 numpy oracle (oracle.py): first checked against the official tiny outputs,
then used as the reference for official-size models (vit_t, vit_s) with random weights,
converted through the CLI."""

import numpy as np
import pytest

import oracle
import transface
from conftest import TINY, TINY_HEADS, assert_close, random_images, run_cli


def test_oracle_matches_official_tiny(tiny_params, tiny_images, tiny_ref):
    out = oracle.forward(tiny_params, tiny_images, TINY_HEADS)
    assert_close(out["embedding"], tiny_ref["embedding"], "oracle tiny embedding")
    assert_close(out["se_weight_softmax"], tiny_ref["se_weight_softmax"], "oracle tiny SE softmax")
    assert_close(out["patch_std"], tiny_ref["patch_std"], "oracle tiny patch std")
    act = TINY / "eval_act" / "feature.input.npy"
    if act.exists():
        assert_close(out["feature_input"], np.load(act).reshape(out["feature_input"].shape),
                     "oracle tiny gated tokens (feature.input)")


def test_official_shapes_match_reference_and_builder(tiny_params):
    shapes = oracle.official_shapes(64, 2, 32)
    for name, shape in shapes.items():
        assert tuple(tiny_params[name].shape) == shape, name
    from conftest import tiny_config
    with transface.Builder(tiny_config()) as b:
        assert list(b.tensor_info().items()) == list(shapes.items())


def test_library_flip_matches_oracle(tiny_model, tiny_params, tiny_images):
    raw = oracle.forward(tiny_params, tiny_images, TINY_HEADS)["embedding"]
    mirrored = oracle.forward(tiny_params, tiny_images[:, :, ::-1], TINY_HEADS)["embedding"]
    expected = raw + mirrored
    assert_close(tiny_model.embed(tiny_images, flip=True, normalize=False), expected,
                 "tiny flip-TTA vs oracle")


def test_custom_normalisation_vs_oracle(tiny_params, tiny_images):
    """mean / std stored in the model's preprocess are applied per channel."""
    from conftest import tiny_config
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)
    with transface.Builder(tiny_config()) as b:
        for n in b.tensor_names():
            b.set_tensor(n, tiny_params[n])
        b.set_preprocess(transface.Preprocess(mean=mean, std=std))
        with b.build() as m:
            emb, weights, patch_std = m.embed_with_patches(tiny_images, normalize=False)
    ref = oracle.forward(tiny_params, tiny_images, TINY_HEADS, mean=mean, std=std)
    assert_close(emb, ref["embedding"], "custom mean/std embedding vs oracle")
    assert_close(patch_std, ref["patch_std"], "custom mean/std patch std vs oracle")


@pytest.mark.parametrize("preset", ["vit_t", "vit_s"])
def test_official_size_random_weights_vs_oracle(preset, tmp_path):
    cfg = transface.config_preset(preset)
    shapes = oracle.official_shapes(cfg.embed_dim, cfg.depth, cfg.embedding_size, cfg.mlp_hidden_dim)
    if preset == "vit_t":  # the builder's list of names and shapes (vit_s: same code path)
        with transface.Builder(cfg) as b:
            assert list(b.tensor_info().items()) == list(shapes.items())
    params = oracle.random_params(shapes, seed=7)
    src = tmp_path / f"{preset}_random.npz"
    np.savez(src, **params)
    out = tmp_path / f"{preset}.tfm"
    r = run_cli("convert", src, "-o", out, "--arch", preset)
    assert r.returncode == 0, r.stderr
    del params
    images = random_images(2 if preset == "vit_t" else 1, seed=11)
    with transface.Model(out) as m:
        assert m.config == cfg
        assert m.metadata["arch"] == preset
        emb, weights, std = m.embed_with_patches(images, normalize=False)
        params = {n: m.read_tensor(n) for n in m.tensor_names()}
    ref = oracle.forward(params, images, cfg.num_heads)
    assert_close(emb, ref["embedding"], f"{preset} embedding vs oracle")
    assert_close(weights, ref["se_weight_softmax"], f"{preset} SE softmax vs oracle")
    assert_close(std, ref["patch_std"], f"{preset} patch std vs oracle")
