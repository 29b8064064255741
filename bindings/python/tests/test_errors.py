"""Error paths: every failure raises the right transface.Error subclass with a message naming
the problem, and leaves the objects usable."""

import os

import numpy as np
import pytest

import transface
from conftest import random_images, tiny_config


@pytest.fixture(scope="module")
def tfm_bytes(tiny_tfm):
    return tiny_tfm.read_bytes()


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_error_hierarchy():
    for cls in (transface.InvalidArgumentError, transface.FileError, transface.FormatError,
                transface.OutOfMemoryError, transface.AbortedError, transface.NumericError,
                transface.MisuseError, transface.InternalError, transface.NotFoundError):
        assert issubclass(cls, transface.Error)
    assert issubclass(transface.FileError, OSError)
    assert issubclass(transface.InvalidArgumentError, ValueError)
    assert issubclass(transface.NotFoundError, LookupError)
    assert [transface.InvalidArgumentError.status, transface.FileError.status,
            transface.FormatError.status, transface.OutOfMemoryError.status,
            transface.AbortedError.status, transface.NumericError.status,
            transface.MisuseError.status, transface.InternalError.status,
            transface.NotFoundError.status] == list(range(1, 10))


def test_missing_file(tmp_path):
    with pytest.raises(transface.FileError, match="absent.tfm") as e:
        transface.Model(tmp_path / "absent.tfm")
    assert e.value.status == 2
    with pytest.raises(transface.FileError, match="regular file"):
        transface.Model(tmp_path)


def test_empty_and_garbage_files(tmp_path):
    with pytest.raises(transface.FormatError, match="empty"):
        transface.Model(write(tmp_path, "empty.tfm", b""))
    with pytest.raises(transface.FormatError, match="magic"):
        transface.Model(write(tmp_path, "garbage.tfm", os.urandom(4096)))
    with pytest.raises(transface.FormatError, match="magic"):
        transface.Model(write(tmp_path, "text.tfm", b"not a model\n" * 100))


def test_truncated_model(tmp_path, tfm_bytes):
    for cut in (10, 30, 2000, len(tfm_bytes) // 2, len(tfm_bytes) - 1):
        with pytest.raises(transface.FormatError, match="truncated|magic|header") as e:
            transface.Model(write(tmp_path, f"cut{cut}.tfm", tfm_bytes[:cut]))
        assert "cut" in str(e.value)  # names the file
    with pytest.raises(transface.FormatError, match="unexpected bytes"):
        transface.Model(write(tmp_path, "long.tfm", tfm_bytes + b"\0"))


def test_flipped_bytes(tmp_path, tfm_bytes):
    data = bytearray(tfm_bytes)
    data[len(data) // 2] ^= 0x01
    path = write(tmp_path, "flipped.tfm", bytes(data))
    with pytest.raises(transface.FormatError, match="checksum mismatch in tensor"):
        transface.Model(path)
    with transface.Model(path, verify_checksums=False) as m:  # loads when asked not to verify
        assert m.embedding_size == 32
    header = bytearray(tfm_bytes)
    header[40] ^= 0x10
    with pytest.raises(transface.FormatError, match="checksum"):
        transface.Model(write(tmp_path, "header.tfm", bytes(header)))
    version = bytearray(tfm_bytes)
    version[8] = 99
    with pytest.raises(transface.FormatError, match="version"):
        transface.Model(write(tmp_path, "version.tfm", bytes(version)))


def test_max_weight_bytes(tiny_tfm):
    with pytest.raises(transface.Error, match="exceed the limit of 1000"):
        transface.Model(tiny_tfm, max_weight_bytes=1000)
    with transface.Model(tiny_tfm, max_weight_bytes=100 << 20):
        pass
    with pytest.raises(transface.InvalidArgumentError):
        transface.Model(tiny_tfm, max_weight_bytes=-1)


def test_bad_images(tiny_model):
    x = random_images(2)
    cases = [
        (x.astype(np.float32), "dtype uint8"),
        (x.astype(np.int8), "dtype uint8"),
        (x[..., :2], "shape"),
        (x[0, :, :, 0], "shape"),
        (x[None], "shape"),
        (x.tolist(), "numpy uint8 array"),
        (None, "numpy uint8 array"),
    ]
    for images, words in cases:
        with pytest.raises(transface.InvalidArgumentError, match=words):
            tiny_model.embed(images)
        with pytest.raises(transface.InvalidArgumentError, match=words):
            tiny_model.patches(images)
    # the library checks the size and the count
    with pytest.raises(transface.InvalidArgumentError, match="100x100.*112x112"):
        tiny_model.embed(np.zeros((2, 100, 100, 3), np.uint8))
    with pytest.raises(transface.InvalidArgumentError, match="112x100"):  # width x height
        tiny_model.patches(np.zeros((100, 112, 3), np.uint8))
    with pytest.raises(transface.InvalidArgumentError, match="count must be at least 1"):
        tiny_model.embed(np.zeros((0, 112, 112, 3), np.uint8))
    # the model is still fine
    assert tiny_model.embed(x).shape == (2, 32)


def test_bad_context_params(tiny_model):
    with pytest.raises(transface.InvalidArgumentError, match="num_threads"):
        transface.Context(tiny_model, threads=0)
    with pytest.raises(transface.InvalidArgumentError, match="max_batch"):
        transface.Context(tiny_model, max_batch=0)
    with pytest.raises(transface.InvalidArgumentError, match="threads"):
        transface.Context(tiny_model, threads=2**40)
    with pytest.raises(transface.InvalidArgumentError, match="max_batch"):
        tiny_model.embed(random_images(1), max_batch=-3)
    with pytest.raises(transface.InvalidArgumentError, match="transface.Model"):
        transface.Context("model.tfm")


def test_closed_objects_raise_misuse(tiny_tfm):
    m = transface.Model(tiny_tfm)
    ctx = m.context()
    m.close()
    m.close()  # idempotent
    with pytest.raises(transface.MisuseError, match="closed"):
        m.embed(random_images(1))
    with pytest.raises(transface.MisuseError, match="closed"):
        _ = m.config
    # contexts keep the weights alive after the model is freed (header contract)
    assert ctx.embed(random_images(1)).shape == (1, 32)
    ctx.close()
    with pytest.raises(transface.MisuseError, match="closed"):
        ctx.embed(random_images(1))
    b = transface.Builder(tiny_config())
    b.close()
    with pytest.raises(transface.MisuseError):
        b.init_weights(0)


def test_compare_errors():
    with pytest.raises(transface.NumericError, match="zero"):
        transface.compare(np.zeros(8, np.float32), np.ones(8, np.float32))
    with pytest.raises(transface.NumericError):
        transface.compare(np.full(4, np.nan, np.float32), np.ones(4, np.float32))
    with pytest.raises(transface.InvalidArgumentError, match="different lengths"):
        transface.compare(np.ones(3), np.ones(4))
    with pytest.raises(transface.InvalidArgumentError, match="dim"):
        transface.compare(np.ones(0), np.ones(0))


def test_lookup_errors(tiny_model):
    with pytest.raises(transface.NotFoundError, match="vit_zz"):
        transface.config_preset("vit_zz")
    with pytest.raises(transface.NotFoundError, match="no_such_tensor"):
        tiny_model.read_tensor("no_such_tensor")
    with pytest.raises(transface.NotFoundError, match="nokey"):
        tiny_model.metadata_get("nokey")
    with pytest.raises(transface.InvalidArgumentError, match="negative"):
        transface.config_preset("vit_t", embedding_size=-1)


def test_builder_errors(tmp_path):
    with transface.Builder(tiny_config()) as b:
        with pytest.raises(transface.NotFoundError, match="'nope'"):
            b.set_tensor("nope", np.zeros(3, np.float32))
        with pytest.raises(transface.InvalidArgumentError, match=r"'norm.weight' has shape \[3\], expected \[64\]"):
            b.set_tensor("norm.weight", np.zeros(3, np.float32))
        bad = np.ones(64, np.float32)
        bad[5] = np.inf
        with pytest.raises(transface.InvalidArgumentError, match="NaN or Inf"):
            b.set_tensor("norm.weight", bad)
        with pytest.raises(transface.InvalidArgumentError, match="bfloat16"):
            b.set_tensor("norm.weight", np.zeros(64, np.uint16))
        with pytest.raises(transface.InvalidArgumentError, match="int64"):
            b.set_tensor("norm.weight", np.zeros(64, np.int64))
        with pytest.raises(transface.InvalidArgumentError, match="unknown dtype"):
            b.set_tensor("norm.weight", np.zeros(64, np.float32), dtype="float8")
        with pytest.raises(transface.Error, match="not set: pos_embed"):
            b.save(tmp_path / "unset.tfm")
        with pytest.raises(transface.Error, match="not set"):
            b.build()
        assert not (tmp_path / "unset.tfm").exists()
        b.init_weights(3)
        with pytest.raises(transface.FileError, match="no_dir"):
            b.save(tmp_path / "no_dir" / "x.tfm")
        with pytest.raises(transface.InvalidArgumentError, match="does not match img_size"):
            b.set_preprocess({"input_width": 100})
        with pytest.raises(transface.InvalidArgumentError, match="std"):
            b.set_preprocess({"std": (0.5, 0.0, 0.5)})
        with pytest.raises(transface.InvalidArgumentError, match="channel_order"):
            b.set_preprocess({"channel_order": "RGBA"})
        with pytest.raises(transface.InvalidArgumentError, match="metadata key is empty"):
            b.set_metadata("", "x")
        with pytest.raises(transface.InvalidArgumentError, match="NUL"):
            b.set_metadata("a\0b", "x")
        b.save(tmp_path / "ok.tfm")  # still usable after the errors
    with pytest.raises(transface.InvalidArgumentError, match="num_heads 5 must divide"):
        transface.Builder(tiny_config(num_heads=5))
    with pytest.raises(transface.InvalidArgumentError, match="depth"):
        transface.Builder(tiny_config(depth=0))
    with pytest.raises(transface.InvalidArgumentError, match="longer than 31"):
        transface.Builder(tiny_config(arch="x" * 40))
    with pytest.raises(transface.InvalidArgumentError, match="unknown field"):
        transface.Builder({"embed_dim": 64, "heads": 4})


def test_error_message_is_per_call(tmp_path):
    """The message of each error is the library's last error for that call."""
    with pytest.raises(transface.FileError) as a:
        transface.Model(tmp_path / "first.tfm")
    with pytest.raises(transface.NotFoundError) as b:
        transface.config_preset("second")
    assert "first.tfm" in str(a.value) and "second" in str(b.value)
    assert "transface_model_load" in a.value.message


def test_raw_abi_misuse(tiny_model):
    """NULL pointers, small capacities, unknown flags and bad struct sizes through the raw C
    functions: errors with messages, never crashes."""
    from ctypes import byref, c_char_p, c_float, c_void_p
    from transface import _lib as L
    lib = L.lib()

    def fails(status, cls, words):
        assert status != 0
        err = L.make_error(status)
        assert isinstance(err, cls), (type(err), err)
        assert words in str(err), str(err)

    x = random_images(2)
    out = np.zeros((2, 32), np.float32)
    fp, up = out.ctypes.data_as(L.float_p), x.ctypes.data_as(L.u8_p)
    with tiny_model.context() as ctx:
        h = ctx._handle()
        fails(lib.transface_embed(None, up, 2, 112, 112, 0, fp, 64), transface.InvalidArgumentError, "context is NULL")
        fails(lib.transface_embed(h, None, 2, 112, 112, 0, fp, 64), transface.InvalidArgumentError, "images is NULL")
        fails(lib.transface_embed(h, up, 2, 112, 112, 0, None, 64), transface.InvalidArgumentError, "NULL")
        fails(lib.transface_embed(h, up, 2, 112, 112, 0, fp, 63), transface.InvalidArgumentError, "capacity")
        fails(lib.transface_embed(h, up, 2, 112, 112, 4, fp, 64), transface.InvalidArgumentError, "flags")
        fails(lib.transface_embed_with_patches(h, up, 2, 112, 112, 0, None, 0, None, 0, None, 0),
              transface.InvalidArgumentError, "no output")
        assert lib.transface_embed(h, up, 2, 112, 112, 0, fp, 64) == 0
    lib.transface_model_free(None)
    lib.transface_context_free(None)
    lib.transface_builder_free(None)
    assert lib.transface_model_embedding_size(None) == 0
    assert lib.transface_model_tensor_count(None) == 0
    assert lib.transface_config_preset_name(10**6) is None
    c = L.transface_config()  # struct_size 0
    fails(lib.transface_config_preset(b"vit_t", 0, byref(c)), transface.InvalidArgumentError, "struct_size")
    fails(lib.transface_model_get_config(None, byref(L.new_struct(L.transface_config))),
          transface.InvalidArgumentError, "model is NULL")
    b = c_void_p()
    fails(lib.transface_builder_create(byref(c), byref(b)), transface.InvalidArgumentError, "struct_size")
    assert b.value is None
    v = c_char_p()
    fails(lib.transface_model_metadata_at(tiny_model._handle(), 999, byref(v), byref(v)),
          transface.InvalidArgumentError, "999")
    cos = c_float()
    fails(lib.transface_compare(None, fp, 4, byref(cos)), transface.InvalidArgumentError, "NULL")
    assert lib.transface_status_string(99) is not None


def test_raw_abi_handles_are_type_checked(tiny_model, tiny_tfm):
    """A handle of one type passed (through ctypes) where another is expected, a freed handle
    used or freed again, and a pointer that is no handle: InvalidArgumentError naming both types,
    never a crash; a wrong *_free leaves the object usable."""
    from ctypes import byref, c_void_p
    from transface import _lib as L
    lib = L.lib()

    def fails(status, words):
        err = L.make_error(status)
        assert isinstance(err, transface.InvalidArgumentError), (type(err), err)
        assert words in str(err), str(err)

    x = random_images(1)
    out = np.zeros((1, 32), np.float32)
    fp, up = out.ctypes.data_as(L.float_p), x.ctypes.data_as(L.u8_p)
    config = L.new_struct(L.transface_config)
    with tiny_model.context() as ctx:
        m, c = tiny_model._handle(), ctx._handle()
        fails(lib.transface_embed(m, up, 1, 112, 112, 0, fp, 32), "expected a transface_context, got a transface_model")
        fails(lib.transface_model_get_config(c, byref(config)), "expected a transface_model, got a transface_context")
        lib.transface_model_free(c)
        assert "expected a transface_model, got a transface_context" in L.last_error()
        assert lib.transface_embed(c, up, 1, 112, 112, 0, fp, 32) == 0
    garbage = (c_void_p * 4)(1234)
    fails(lib.transface_model_get_config(garbage, byref(config)), "not a libtransface handle")

    freed = c_void_p()
    assert lib.transface_model_load(L.encode_path(tiny_tfm), None, byref(freed)) == 0
    lib.transface_model_free(freed)
    fails(lib.transface_model_get_config(freed, byref(config)), "transface_model that was already freed")
    lib.transface_model_free(freed)
    assert "already freed" in L.last_error()
