"""The tiny official TransFace model through the converter and the library, against the
official outputs in shared/reference/tiny (tolerance: ATOL + RTOL * max|ref|)."""

import numpy as np
import pytest

import transface
from conftest import TINY_HEADS, assert_close, random_images


def test_converted_config(tiny_model):
    c = tiny_model.config
    assert (c.img_size, c.patch_size, c.in_channels, c.embed_dim, c.depth, c.num_heads,
            c.mlp_hidden_dim, c.embedding_size) == (112, 9, 3, 64, 2, TINY_HEADS, 256, 32)
    assert tiny_model.embedding_size == 32
    assert tiny_model.num_patches == 144
    md = tiny_model.metadata
    assert md["source"] == "tiny_official.npz"
    assert md["set"] == "tiny"
    assert md["num_heads_from"] == "--num-heads"
    assert "converter" in md and "source_format" in md


def test_converted_weights_are_the_official_ones(tiny_model, tiny_params):
    names = tiny_model.tensor_names()
    skipped = {n for n in tiny_params if n.endswith("num_batches_tracked") or n.startswith("partial_fc.")}
    assert set(names) == set(tiny_params) - skipped
    for n in names:
        np.testing.assert_array_equal(tiny_model.read_tensor(n), tiny_params[n], err_msg=n)


def test_embedding_matches_reference(tiny_model, tiny_images, tiny_ref):
    emb = tiny_model.embed(tiny_images, normalize=False)
    assert emb.dtype == np.float32 and emb.shape == (4, 32)
    assert_close(emb, tiny_ref["embedding"], "tiny embedding (un-normalised)")
    unit = tiny_model.embed(tiny_images)
    ref = tiny_ref["embedding"] / np.linalg.norm(tiny_ref["embedding"], axis=1, keepdims=True)
    assert_close(unit, ref, "tiny embedding (normalised)")


def test_patch_outputs_match_reference(tiny_model, tiny_images, tiny_ref):
    weights, std = tiny_model.patches(tiny_images)
    assert weights.shape == std.shape == (4, 144)
    assert_close(weights, tiny_ref["se_weight_softmax"], "tiny SE softmax weight")
    assert_close(std, tiny_ref["patch_std"], "tiny patch std")
    np.testing.assert_allclose(weights.sum(axis=1), 1, rtol=1e-5)
    e, w2, s2 = tiny_model.embed_with_patches(tiny_images, normalize=False)
    np.testing.assert_array_equal(w2, weights)
    np.testing.assert_array_equal(s2, std)
    np.testing.assert_array_equal(e, tiny_model.embed(tiny_images, normalize=False))
    np.testing.assert_array_equal(tiny_model.patch_weights(tiny_images), weights)
    np.testing.assert_array_equal(tiny_model.patch_std(tiny_images), std)


def test_flip_tta_is_sum_of_image_and_mirror(tiny_model, tiny_images):
    raw = tiny_model.embed(tiny_images, normalize=False)
    mirrored = tiny_model.embed(np.ascontiguousarray(tiny_images[:, :, ::-1]), normalize=False)
    summed = tiny_model.embed(tiny_images, flip=True, normalize=False)
    assert_close(summed, raw + mirrored, "flip TTA raw sum")
    expected = (raw.astype(np.float64) + mirrored)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert_close(tiny_model.embed(tiny_images, flip=True), expected, "flip TTA normalised")
    # patch outputs are those of the unflipped image
    _, w_flip, s_flip = tiny_model.embed_with_patches(tiny_images, flip=True)
    w, s = tiny_model.patches(tiny_images)
    np.testing.assert_array_equal(w_flip, w)
    np.testing.assert_array_equal(s_flip, s)


def test_batch_equals_one_by_one_bit_for_bit(tiny_model, tiny_images):
    batch = tiny_model.embed(tiny_images, normalize=False)
    single = np.stack([tiny_model.embed(img, normalize=False) for img in tiny_images])
    np.testing.assert_array_equal(batch, single)
    np.testing.assert_array_equal(tiny_model.embed(tiny_images, max_batch=3, normalize=False), batch)
    flipped = tiny_model.embed(tiny_images, flip=True)
    np.testing.assert_array_equal(tiny_model.embed(tiny_images[1:3], flip=True, max_batch=1), flipped[1:3])
    pw, ps = tiny_model.patches(tiny_images)
    pw1, ps1 = tiny_model.patches(tiny_images, max_batch=1)
    np.testing.assert_array_equal(pw1, pw)
    np.testing.assert_array_equal(ps1, ps)


_THREADS_SCRIPT = r"""
import sys, numpy as np, transface
m = transface.Model(sys.argv[1])
x = np.load(sys.argv[2])
out = {}
for t in (1, 2):
    out[f"emb{t}"] = m.embed(x, threads=t)
    out[f"raw{t}"] = m.embed(x, threads=t, normalize=False, flip=True)
    out[f"w{t}"], out[f"s{t}"] = m.patches(x, threads=t)
np.savez(sys.argv[3], **out)
"""


def test_threads_one_vs_two(tiny_tfm, tiny_images, tmp_path):
    """Run in a subprocess: a crash of the library's worker threads fails this test only."""
    import subprocess
    import sys
    from conftest import cli_env
    np.save(tmp_path / "x.npy", tiny_images)
    r = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT, str(tiny_tfm), str(tmp_path / "x.npy"),
                        str(tmp_path / "out.npz")], env=cli_env(), capture_output=True, text=True,
                       timeout=300)
    lines = [l for l in r.stderr.splitlines() if l.strip() and not l.lstrip()[:1].isdigit()]
    assert r.returncode == 0, (f"embedding with 2 threads failed (exit {r.returncode}): "
                               + " | ".join(lines[:3]))
    out = np.load(tmp_path / "out.npz")
    for key in ("emb", "raw", "w", "s"):
        diff = float(np.abs(out[key + "1"] - out[key + "2"]).max())
        print(f"threads 1 vs 2, {key}: max |diff| {diff:.3g}")
        assert diff <= 1e-6, key


def test_border_pixels_are_ignored(tiny_model, tiny_images):
    """Only pixels 0..107 reach the 9x9/stride-9 patch conv (official behaviour)."""
    x = tiny_images.copy()
    x[:, 108:, :, :] = 255 - x[:, 108:, :, :]
    x[:, :, 108:, :] = 0
    np.testing.assert_array_equal(tiny_model.embed(x), tiny_model.embed(tiny_images))


def test_context_reuse_and_single_image(tiny_model, tiny_images):
    with transface.Context(tiny_model, threads=1, max_batch=2) as ctx:
        a = ctx.embed(tiny_images)
        b = ctx.embed(tiny_images)
        np.testing.assert_array_equal(a, b)
        one = ctx.embed(tiny_images[1])
        assert one.shape == (32,)
        np.testing.assert_array_equal(one, a[1])
        w, s = ctx.patches(tiny_images[2])
        assert w.shape == s.shape == (144,)
    assert ctx.closed


def test_non_contiguous_input(tiny_model, tiny_images):
    view = tiny_images[::-1]                  # negative stride over images
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(tiny_model.embed(view), tiny_model.embed(np.ascontiguousarray(view)))
    chans = np.asfortranarray(tiny_images)
    np.testing.assert_array_equal(tiny_model.embed(chans), tiny_model.embed(tiny_images))


def test_compare(tiny_model, tiny_images):
    e = tiny_model.embed(tiny_images, normalize=False)
    cos = transface.compare(e[0], e[1])
    ref = float(np.dot(e[0].astype(np.float64), e[1]) / np.linalg.norm(e[0].astype(np.float64)) /
                np.linalg.norm(e[1].astype(np.float64)))
    assert abs(cos - ref) < 1e-6
    assert abs(transface.compare(e[2], e[2]) - 1) < 1e-6


def test_model_shared_between_threads(tiny_model):
    import threading
    x = random_images(3, seed=5)
    expected = tiny_model.embed(x)
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append(tiny_model.embed(x))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 6
    for r in results:
        np.testing.assert_array_equal(r, expected)


@pytest.mark.parametrize("order", ["BGR"])
def test_channel_order_preprocess(tiny_params, tiny_images, tiny_model, order):
    """Images are always given as RGB: a model whose network takes BGR (e.g. trained on cv2
    images) reverses the channels itself, so it gives on RGB images what the RGB model gives on
    the channel-reversed images."""
    from conftest import tiny_config
    with transface.Builder(tiny_config()) as b:
        for n in b.tensor_names():
            b.set_tensor(n, tiny_params[n])
        with b.build() as m0:
            p = m0.preprocess
        p.channel_order = order
        b.set_preprocess(p)
        with b.build() as m:
            assert m.preprocess.channel_order == order
            bgr = np.ascontiguousarray(tiny_images[..., ::-1])
            np.testing.assert_array_equal(m.embed(tiny_images), tiny_model.embed(bgr))
