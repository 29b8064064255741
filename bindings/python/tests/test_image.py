"""Image decoding and 5-point alignment from Python: parity with the official recipe's outputs
(OpenCV imread + scikit-image similarity + cv2.warpAffine) and the error paths."""

import struct
import zlib

import numpy as np
import pytest

import transface
from conftest import SHARED

ALIGN = SHARED / "reference" / "align"
DATA = SHARED / "data"


def needs_align():
    if not ALIGN.is_dir():
        pytest.skip(f"reference data not found at {ALIGN}")


@pytest.fixture(scope="module")
def align_ref():
    needs_align()
    paths = ALIGN.joinpath("paths.txt").read_text().split()
    return {
        "paths": paths,
        "landmarks": np.load(ALIGN / "landmarks.npy"),
        "matrix": np.load(ALIGN / "matrix.npy"),
        "decoded": np.load(ALIGN / "decoded_rgb.npy"),
        "aligned": np.load(ALIGN / "aligned_rgb.npy"),
        "template": np.load(ALIGN / "template.npy"),
    }


def png_bytes(pixels, color_type, bit_depth=8, extra=b""):
    """A PNG built by hand (zlib from the standard library): rows of `pixels` (uint8 or >u2)."""
    pixels = np.asarray(pixels)
    h, w = pixels.shape[:2]

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\0" + pixels[y].tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


# ------------------------------------------------------------------ decoding


def test_decoded_pixels_equal_the_reference(align_ref):
    for i, rel in enumerate(align_ref["paths"]):
        path = DATA / rel
        from_file = transface.decode_image(path)
        from_bytes = transface.decode_image(path.read_bytes())
        assert from_file.shape == (250, 250, 3) and from_file.dtype == np.uint8
        np.testing.assert_array_equal(from_file, align_ref["decoded"][i], err_msg=rel)
        np.testing.assert_array_equal(from_bytes, from_file)
    info = transface.image_info(DATA / align_ref["paths"][0])
    assert info == transface.ImageInfo(250, 250, "jpeg", 3)


def test_orl_pgm_and_misc_photos():
    orl = sorted((DATA / "orl_faces").glob("s1*/*.pgm"))
    if not orl:
        pytest.skip("ORL images not found")
    for p in orl:
        img = transface.decode_image(str(p))
        assert img.shape == (112, 92, 3)
        raster = np.frombuffer(p.read_bytes()[-92 * 112:], np.uint8).reshape(112, 92)
        for c in range(3):
            np.testing.assert_array_equal(img[:, :, c], raster)
    for p in sorted((DATA / "photos_misc").rglob("*.jpg")):
        info = transface.image_info(p)
        assert transface.decode_image(p).shape == (info.height, info.width, 3)


def test_png_alpha_grey_and_16_bit():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (4, 6, 1), dtype=np.uint8)], axis=2)
    rgba[0, 0, 3] = 0
    np.testing.assert_array_equal(transface.decode_image(png_bytes(rgb, 2)), rgb)
    np.testing.assert_array_equal(transface.decode_image(png_bytes(rgba, 6)), rgb)  # alpha dropped
    assert transface.image_info(png_bytes(rgba, 6)) == transface.ImageInfo(6, 4, "png", 4)
    grey = rgb[:, :, 0]
    np.testing.assert_array_equal(transface.decode_image(png_bytes(grey, 0)),
                                  np.repeat(grey[:, :, None], 3, 2))
    sixteen = (rgb.astype(">u2") * 257)
    np.testing.assert_array_equal(transface.decode_image(png_bytes(sixteen, 2, 16)), rgb)


def test_decode_errors(tmp_path):
    with pytest.raises(transface.FormatError, match="GIF"):
        transface.decode_image(b"GIF89a........")
    with pytest.raises(transface.FormatError, match="0 bytes"):
        transface.decode_image(b"")
    with pytest.raises(transface.FileError):
        transface.decode_image(tmp_path / "missing.jpg")
    with pytest.raises(transface.InvalidArgumentError):
        transface.decode_image(12345)
    # Huge header: refused before allocating.
    with pytest.raises(transface.InvalidArgumentError, match="max_pixels"):
        transface.decode_image(b"P6 100000 100000 255\n")
    big = png_bytes(np.zeros((20, 20, 3), np.uint8), 2)
    with pytest.raises(transface.InvalidArgumentError, match="400 pixels"):
        transface.decode_image(big, max_pixels=399)
    assert transface.decode_image(big, max_pixels=400).shape == (20, 20, 3)
    with pytest.raises(transface.InvalidArgumentError):
        transface.decode_image(big, max_pixels=-1)


def test_truncated_and_mutated_jpegs(align_ref):
    data = (DATA / align_ref["paths"][0]).read_bytes()
    with pytest.raises(transface.FormatError, match="Premature end"):
        transface.decode_image(data[: len(data) // 2])
    damaged = transface.decode_image(data[: len(data) // 2], accept_damaged=True)
    np.testing.assert_array_equal(damaged[:20], align_ref["decoded"][0][:20])
    rng = np.random.default_rng(5)
    outcomes = {"decoded": 0, "refused": 0}
    for trial in range(200):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(0, min(len(b), 600 if trial % 2 else len(b))))] ^= int(rng.integers(1, 256))
        if trial % 4 == 3:
            b = b[: int(rng.integers(0, len(b)))]
        try:
            img = transface.decode_image(bytes(b), max_pixels=10_000_000, accept_damaged=bool(trial % 3 == 0))
            assert img.ndim == 3 and img.shape[2] == 3
            outcomes["decoded"] += 1
        except (transface.FormatError, transface.InvalidArgumentError):
            outcomes["refused"] += 1
    print("mutated JPEGs:", outcomes)


# ------------------------------------------------------------------ alignment


def test_template_and_scaling(align_ref):
    t = transface.alignment_template()
    np.testing.assert_array_equal(t, align_ref["template"])
    np.testing.assert_array_equal(transface.alignment_template(224), t * 2)
    t128 = transface.alignment_template(128)
    np.testing.assert_array_equal(t128[:, 0], t[:, 0] + 8)
    np.testing.assert_array_equal(t128[:, 1], t[:, 1])
    with pytest.raises(transface.InvalidArgumentError, match="112 or 128"):
        transface.alignment_template(100)


def test_alignment_matches_the_reference(align_ref):
    worst_matrix, diffs = 0.0, []
    for i in range(len(align_ref["paths"])):
        img = align_ref["decoded"][i]
        crop, m = transface.align_face(img, align_ref["landmarks"][i])
        assert crop.shape == (112, 112, 3) and m.shape == (2, 3)
        worst_matrix = max(worst_matrix, float(np.abs(m - align_ref["matrix"][i]).max()))
        diffs.append(np.abs(crop.astype(int) - align_ref["aligned"][i].astype(int)).mean())
        m2 = transface.estimate_similarity(align_ref["landmarks"][i], align_ref["template"])
        np.testing.assert_array_equal(m2, m)
        # The warp with the reference's matrix: equal to cv2.warpAffine's output.
        np.testing.assert_array_equal(transface.warp_affine(img, align_ref["matrix"][i], 112),
                                      align_ref["aligned"][i])
    print(f"alignment: matrix max |diff| {worst_matrix:.3g}, "
          f"mean |pixel diff| per image max {max(diffs):.3g}")
    assert worst_matrix < 1e-4
    assert max(diffs) < 0.5


def test_pixel_formats_strides_and_grey(align_ref):
    img = align_ref["decoded"][3]
    lm = align_ref["landmarks"][3]
    expected, m = transface.align_face(img, lm)
    bgr = np.ascontiguousarray(img[:, :, ::-1])
    np.testing.assert_array_equal(transface.align_face(bgr, lm, pixel_format="bgr")[0], expected)
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 9, np.uint8)], axis=2)
    np.testing.assert_array_equal(transface.align_face(rgba, lm)[0], expected)
    # A cropped view (rows further apart than their width: passed as is, with its stride) and a
    # subsampled view (pixels not adjacent: copied first) give the crops of their copies.
    view = img[10:240, 7:230]
    lm_view = lm - np.array([7, 10], np.float32)
    np.testing.assert_array_equal(transface.align_face(view, lm_view)[0],
                                  transface.align_face(np.ascontiguousarray(view), lm_view)[0])
    np.testing.assert_array_equal(transface.align_face(img[::2, ::2], lm / 2)[0],
                                  transface.align_face(np.ascontiguousarray(img[::2, ::2]), lm / 2)[0])
    grey = np.ascontiguousarray(img[:, :, 1])
    np.testing.assert_array_equal(transface.align_face(grey, lm)[0],
                                  transface.align_face(np.repeat(grey[:, :, None], 3, 2), lm)[0])
    # Larger crops and custom templates.
    crop224, m224 = transface.align_face(img, lm, size=224)
    assert crop224.shape == (224, 224, 3)
    np.testing.assert_allclose(m224[:, :2], m[:, :2] * 2, rtol=1e-5)
    custom = transface.alignment_template(112) * 0.5 + 10
    crop_c, _ = transface.align_face(img, lm, size=80, template=custom)
    assert crop_c.shape == (80, 80, 3)


def test_alignment_errors(align_ref):
    img = align_ref["decoded"][0]
    lm = align_ref["landmarks"][0]
    with pytest.raises(transface.InvalidArgumentError):
        transface.align_face(img, lm[:4])
    with pytest.raises(transface.InvalidArgumentError):
        transface.align_face(img, lm, size=100)
    with pytest.raises(transface.InvalidArgumentError):
        transface.align_face(img.astype(np.float32), lm)
    with pytest.raises(transface.InvalidArgumentError):
        transface.align_face(img, lm, pixel_format="rgba")
    with pytest.raises(transface.NumericError):
        transface.align_face(img, np.full((5, 2), 50.0))
    with pytest.raises(transface.NumericError):
        transface.warp_affine(img, np.zeros((2, 3)), 112)
    with pytest.raises(transface.NumericError):
        transface.estimate_similarity(np.full((5, 2), np.nan), lm)
