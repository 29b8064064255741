"""Trainer.set_tensor and Trainer.import_official through the C ABI
(transface_trainer_set_tensor, transface_trainer_import_official)."""

import numpy as np
import pytest

import transface
from conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "Tests" / "TFTrainTests" / "Fixtures" / "official_run"
MICRO = {"arch": "custom", "model": {"img_size": 18, "patch_size": 9, "embed_dim": 8, "depth": 1, "num_heads": 2,
                                     "mlp_hidden_dim": 16},
         "embedding_size": 4, "mask_ratio": 0, "drop_path_rate": 0, "num_classes": 5, "batch_size": 2,
         "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.1},
         "schedule": {"warmup_steps": 2, "max_steps": 10}, "dpap": {"enabled": False}, "seed": 1}
IMAGES = (np.arange(2 * 18 * 18 * 3) * 37 % 251).astype(np.uint8).reshape(2, 18, 18, 3)


def state_names(trainer, model):
    names = list(model.tensor_info()) + ["partial_fc.weight"]
    for name in list(model.tensor_info()) + ["partial_fc.weight"]:
        for moment in ("exp_avg", "exp_avg_sq"):
            try:
                trainer.tensor(f"optimizer.{moment}.{name}")
                names.append(f"optimizer.{moment}.{name}")
            except transface.NotFoundError:
                pass  # running statistics and mask_token have no moments
    return names


def test_set_tensor_steps_as_a_trainer_created_with_the_values(tmp_path):
    source = transface.Trainer(dict(MICRO, seed=7))
    source.step(IMAGES, [0, 3])
    model = source.export_model(tmp_path / "m.tfm")
    created = transface.Trainer(MICRO, init_model=model)
    written = transface.Trainer(MICRO)
    names = state_names(written, model)
    assert any(n.startswith("optimizer.") for n in names)
    for name in names:
        values = source.tensor(name)
        written.set_tensor(name, values)
        if name not in model.tensor_info():
            created.set_tensor(name, values)
        np.testing.assert_array_equal(written.tensor(name), values, err_msg=name)
    for _ in range(2):
        a, b = written.step(IMAGES, [1, 4]), created.step(IMAGES, [1, 4])
        assert a["loss"] == b["loss"]
    for name in names:
        np.testing.assert_array_equal(written.tensor(name), created.tensor(name), err_msg=name)


def test_set_tensor_refuses_bad_values_and_changes_nothing():
    t = transface.Trainer(MICRO)
    before = t.tensor("feature.0.weight")
    with pytest.raises(transface.InvalidArgumentError, match="holds 256 values, 3 were given"):
        t.set_tensor("feature.0.weight", [1, 2, 3])
    bad = np.ones(256, np.float32)
    bad[7] = np.nan
    with pytest.raises(transface.InvalidArgumentError, match="value 7 .* not finite"):
        t.set_tensor("feature.0.weight", bad)
    with pytest.raises(transface.NotFoundError):
        t.set_tensor("feature.9.weight", bad)
    with pytest.raises(transface.InvalidArgumentError, match="cannot be set"):
        t.set_tensor("gradient.feature.0.weight", np.ones(256))
    np.testing.assert_array_equal(t.tensor("feature.0.weight"), before)


def test_import_official_run_bit_for_bit():
    expected = np.load(FIXTURES / "expected.npz")
    one = transface.Trainer.import_official(FIXTURES / "w1" / "checkpoint_gpu_0.pt", MICRO)
    two = transface.Trainer.import_official([FIXTURES / "w2" / "checkpoint_gpu_1.pt", FIXTURES / "w2" / "checkpoint_gpu_0.pt"], MICRO)
    info = one.info()
    assert info["step"] == 2 and info["learning_rate"] == pytest.approx(0.0005, rel=1e-12)
    compared = 0
    for name in expected.files:
        if name.startswith(("next", "sgd.")):
            continue
        np.testing.assert_array_equal(one.tensor(name), expected[name].reshape(-1), err_msg=name)
        np.testing.assert_array_equal(two.tensor(name), expected[name].reshape(-1), err_msg=name)
        compared += 1
    assert compared > 40
    with pytest.raises(transface.FormatError, match="the configuration needs"):
        transface.Trainer.import_official(FIXTURES / "w1", dict(MICRO, num_classes=6))
    with pytest.raises(transface.InvalidArgumentError, match="count 0"):
        transface.Trainer.import_official([], MICRO)
