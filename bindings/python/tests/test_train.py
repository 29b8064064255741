"""Training through the C ABI: a few steps on synthetic faces, checkpoint and exact resume,
export, errors."""

import numpy as np
import pytest

import transface

CONFIG = {"arch": "custom", "model": {"img_size": 36, "embed_dim": 32, "depth": 2, "num_heads": 4,
                                     "mlp_hidden_dim": 64},
          "embedding_size": 16, "mask_ratio": 0.25, "drop_path_rate": 0.1, "num_classes": 6,
          "batch_size": 6, "margin": {"s": 16, "m2": 0.2}, "dpap": {"probability": 0.5},
          "schedule": {"warmup_steps": 1, "max_steps": 50}, "seed": 9}


def batches(n, seed=0):
    rng = np.random.default_rng(seed)
    protos = np.random.default_rng(1).integers(0, 256, size=(6, 36, 36, 3))
    for _ in range(n):
        labels = rng.integers(0, 6, size=6)
        noise = rng.integers(-30, 31, size=(6, 36, 36, 3))
        yield np.clip(protos[labels] + noise, 0, 255).astype(np.uint8), labels


def test_steps_checkpoint_resume_export(tmp_path):
    data = list(batches(4))
    straight = transface.Trainer(CONFIG)
    results = [straight.step(x, y) for x, y in data]
    assert all(r["optimizer_stepped"] and np.isfinite(r["loss"]) for r in results)
    assert results[0]["learning_rate"] == 0.0 and results[-1]["step"] == 4

    first = transface.Trainer(CONFIG)
    for x, y in data[:2]:
        first.step(x, y)
    first.save_checkpoint(tmp_path / "run.tfc")
    resumed = transface.Trainer.resume(tmp_path / "run.tfc")
    for x, y in data[2:]:
        resumed.step(x, y)
    for name in ["blocks.1.mlp.fc2.weight", "partial_fc.weight", "optimizer.exp_avg_sq.senet.0.weight",
                 "feature.3.running_var", "mask_token"]:
        np.testing.assert_array_equal(resumed.tensor(name), straight.tensor(name), err_msg=name)

    model = straight.export_model(tmp_path / "m.tfm")
    emb = model.embed(data[0][0])
    assert emb.shape == (6, 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, rtol=1e-5)


def test_errors():
    with pytest.raises(transface.InvalidArgumentError, match="unknown key 'lr'"):
        transface.Trainer({"num_classes": 3, "lr": 0.1})
    t = transface.Trainer(CONFIG)
    x, y = next(batches(1))
    with pytest.raises(transface.InvalidArgumentError, match="outside 0..<6"):
        t.step(x, np.full(6, 7))
    with pytest.raises(transface.InvalidArgumentError, match="batch_size"):
        t.step(x[:5], y[:5])
    with pytest.raises(transface.NotFoundError):
        t.tensor("blocks.9.norm1.weight")
    with pytest.raises(transface.FormatError):
        transface.Trainer.resume(__file__)


def test_amplitude_mix_keeps_a_patch_with_lambda_zero():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, size=(9, 9, 3)).astype(np.uint8)
    b = rng.integers(0, 256, size=(9, 9, 3)).astype(np.uint8)
    out = transface.amplitude_mix(a, b, 0.0)
    assert np.abs(out.astype(int) - a.astype(int)).max() <= 1


def test_info_after_resume(tmp_path):
    t = transface.Trainer(CONFIG)
    for x, y in batches(3):
        t.step(x, y)
    t.save_checkpoint(tmp_path / "run.tfc")
    info = transface.Trainer.resume(tmp_path / "run.tfc").info()
    assert info == t.info()
    assert info["step"] == 3 and info["batches"] == 3 and info["learning_rate_scale"] == 1.0
    assert info["learning_rate"] > 0


def test_reduce_lr_backs_off_and_is_checkpointed(tmp_path):
    # Huge (finite) final-norm weights make the head overflow: every batch is non-finite.
    b = transface.Builder(transface.Config(img_size=36, embed_dim=32, depth=2, num_heads=4, mlp_hidden_dim=64,
                                           embedding_size=16))
    b.init_weights(1)
    b.set_tensor("norm.weight", np.full(32, 3e38, dtype=np.float32))
    poisoned = b.build()
    x, y = next(batches(1))
    with pytest.raises(transface.NumericError, match="not finite"):
        transface.Trainer(CONFIG, init_model=poisoned).step(x, y)
    t = transface.Trainer(dict(CONFIG, non_finite="reduce_lr", non_finite_lr_factor=0.5), init_model=poisoned)
    lr = t.info()["learning_rate"]
    r = t.step(x, y)
    assert r["skipped"] and not r["optimizer_stepped"] and r["learning_rate"] == lr * 0.5
    t.step(x, y)
    assert t.info()["learning_rate_scale"] == 0.25
    t.save_checkpoint(tmp_path / "run.tfc")
    assert transface.Trainer.resume(tmp_path / "run.tfc").info()["learning_rate_scale"] == 0.25
    with pytest.raises(transface.InvalidArgumentError, match="non_finite_lr_factor"):
        transface.Trainer(dict(CONFIG, non_finite="reduce_lr", non_finite_lr_factor=1.5))
