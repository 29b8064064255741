"""Shared fixtures of the Python binding tests.

Run from the repository root:  python3 -m pytest bindings/python/tests -q
The package is imported from bindings/python (no install needed); the library is found as
transface._lib describes (TRANSFACE_LIBRARY, else the repository's .build folders). Reference
data is read from <repo root>/../shared, located relative to this file.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent                      # bindings/python
REPO_ROOT = HERE.parents[2]                     # the repository
SHARED = REPO_ROOT.parent / "shared"
TINY = SHARED / "reference" / "tiny"

for p in (str(HERE), str(PACKAGE_ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import transface  # noqa: E402

# Tolerance of the reference README: |a - ref| <= ATOL + RTOL * max|ref| per tensor.
RTOL = 1e-4
ATOL = 1e-6

TINY_HEADS = 4


def close_error(actual, ref):
    """(max |actual - ref|, allowed bound)."""
    actual = np.asarray(actual, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert actual.shape == ref.shape, f"shape {actual.shape} != reference {ref.shape}"
    err = float(np.abs(actual - ref).max())
    return err, ATOL + RTOL * float(np.abs(ref).max())


def assert_close(actual, ref, what):
    err, bound = close_error(actual, ref)
    flat = int(np.abs(np.asarray(actual, np.float64) - np.asarray(ref, np.float64)).argmax())
    print(f"{what}: max |diff| {err:.3g} (bound {bound:.3g}) at flat index {flat}")
    assert err <= bound, f"{what}: max |diff| {err:.3g} exceeds {bound:.3g} at flat index {flat}"
    return err


def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # pin the library the tests use, so subprocesses load the same one
    env["TRANSFACE_LIBRARY"] = transface.library_path()
    return env


def run_cli(*args, timeout=300):
    """Runs `python3 -m transface ARGS` in a subprocess; returns CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "transface", *map(str, args)], env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def needs_shared():
    if not TINY.is_dir():
        pytest.skip(f"reference data not found at {TINY}")


@pytest.fixture(scope="session")
def tiny_params():
    """The official tiny weights: OrderedDict state_dict key -> array (incl. skipped ones)."""
    needs_shared()
    names = sorted(p.name[:-4] for p in (TINY / "param").glob("*.npy"))
    return {n: np.load(TINY / "param" / f"{n}.npy") for n in names}


@pytest.fixture(scope="session")
def tiny_images():
    needs_shared()
    return np.load(TINY / "input" / "u8_hwc.npy")


@pytest.fixture(scope="session")
def tiny_ref():
    needs_shared()
    return {k: np.load(TINY / "eval" / f"{k}.npy") for k in ("embedding", "se_weight_softmax", "patch_std")}


@pytest.fixture(scope="session")
def tiny_npz(tiny_params, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny_official.npz"
    np.savez(path, **tiny_params)
    return path


@pytest.fixture(scope="session")
def tiny_tfm(tiny_npz):
    """The tiny reference converted through the CLI."""
    out = tiny_npz.with_name("tiny.tfm")
    r = run_cli("convert", tiny_npz, "-o", out, "--num-heads", TINY_HEADS, "--metadata", "set=tiny")
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_tfm):
    m = transface.Model(tiny_tfm)
    yield m
    m.close()


def tiny_config(**kw):
    c = dict(arch="tiny", embed_dim=64, depth=2, num_heads=4, mlp_hidden_dim=256, embedding_size=32)
    c.update(kw)
    return transface.Config(**c)


def random_images(n, seed=0, size=112):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
