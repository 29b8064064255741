"""Image decoding and 5-point face alignment over the C ABI.

    import transface
    img = transface.decode_image("photo.jpg")                    # uint8 [H, W, 3], RGB
    crop, matrix = transface.align_face(img, landmarks)          # [112, 112, 3], [2, 3] float64

Landmarks are 5 (x, y) points in this order: image-left eye, image-right eye, nose tip,
image-left mouth corner, image-right mouth corner (insightface / MTCNN order).
"""

import collections
import os
from ctypes import byref, c_uint8

import numpy as np

from . import _lib as L
from ._lib import InvalidArgumentError, check

__all__ = ["ImageInfo", "decode_image", "image_info", "align_face", "alignment_template",
           "estimate_similarity", "warp_affine"]

ImageInfo = collections.namedtuple("ImageInfo", "width height format channels")
ImageInfo.__doc__ = ("Header of an encoded image: format is 'jpeg', 'png' or 'pnm'; channels as stored "
                     "(1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha or CMYK).")

_FORMAT_NAMES = {L.TRANSFACE_IMAGE_JPEG: "jpeg", L.TRANSFACE_IMAGE_PNG: "png", L.TRANSFACE_IMAGE_PNM: "pnm"}
_PIXEL_FORMATS = {"rgb": L.TRANSFACE_PIXELS_RGB, "bgr": L.TRANSFACE_PIXELS_BGR,
                  "rgba": L.TRANSFACE_PIXELS_RGBA, "bgra": L.TRANSFACE_PIXELS_BGRA,
                  "gray": L.TRANSFACE_PIXELS_GRAY, "grey": L.TRANSFACE_PIXELS_GRAY}
_CHANNELS = {L.TRANSFACE_PIXELS_RGB: 3, L.TRANSFACE_PIXELS_BGR: 3, L.TRANSFACE_PIXELS_RGBA: 4,
             L.TRANSFACE_PIXELS_BGRA: 4, L.TRANSFACE_PIXELS_GRAY: 1}


def _params(max_pixels, accept_damaged):
    p = L.default_params("decode")
    if max_pixels is not None:
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or \
                not 0 <= max_pixels < 2**64:
            raise InvalidArgumentError(f"max_pixels must be a non-negative integer, got {max_pixels!r}")
        p.max_pixels = int(max_pixels)
    p.accept_damaged = 1 if accept_damaged else 0
    return p


def _source(source):
    """('file', encoded path) or ('memory', contiguous uint8 array)."""
    if isinstance(source, (str, os.PathLike)):
        return "file", L.encode_path(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "memory", np.frombuffer(source, dtype=np.uint8)
    if isinstance(source, np.ndarray) and source.dtype == np.uint8 and source.ndim == 1:
        return "memory", np.ascontiguousarray(source)
    raise InvalidArgumentError("an image source must be a path (str or os.PathLike) or encoded "
                               "bytes (bytes, bytearray, memoryview or 1-D uint8 array), got "
                               f"{type(source).__name__}")


_EMPTY = (c_uint8 * 1)()


def _decode(kind, src, params, out, info):
    lib = L.lib()
    out_ptr = out.ctypes.data_as(L.u8_p) if out is not None else None
    capacity = out.nbytes if out is not None else 0
    if kind == "file":
        check(lib.transface_decode_file(src, byref(params), out_ptr, capacity, byref(info)))
    else:
        data = src.ctypes.data_as(L.u8_p) if src.size else _EMPTY
        check(lib.transface_decode_image(data, src.size, byref(params), out_ptr, capacity, byref(info)))


def _info(info):
    return ImageInfo(int(info.width), int(info.height), _FORMAT_NAMES.get(info.format, str(info.format)),
                     int(info.channels))


def image_info(source, max_pixels=None):
    """The header of an image (path or encoded bytes) as an ImageInfo; only the header is read."""
    kind, src = _source(source)
    info = L.new_struct(L.transface_image_info)
    _decode(kind, src, _params(max_pixels, False), None, info)
    return _info(info)


def decode_image(source, max_pixels=None, accept_damaged=False):
    """Decode a JPEG, PNG or PNM image (a path or encoded bytes) to uint8 RGB [H, W, 3].

    Grey is expanded to RGB, alpha dropped, 16-bit scaled to 8 bits; EXIF orientation is not
    applied. max_pixels: refuse larger images before allocating (default 100 million, 0 = no
    limit). accept_damaged: return truncated or corrupt JPEGs as libjpeg reconstructs them
    instead of raising FormatError.
    """
    kind, src = _source(source)
    params = _params(max_pixels, accept_damaged)
    info = L.new_struct(L.transface_image_info)
    _decode(kind, src, params, None, info)
    out = np.empty((info.height, info.width, 3), dtype=np.uint8)
    _decode(kind, src, params, out, info)
    return out


def _image(image, pixel_format):
    """(array, width, height, stride, format code) for an 8-bit image, without copying when the
    rows are evenly spaced and the pixels packed."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InvalidArgumentError("image must be a numpy uint8 array [H, W], [H, W, 1], [H, W, 3] "
                                   "or [H, W, 4]")
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InvalidArgumentError("image must have shape [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], "
                                   f"got {list(image.shape)}")
    h, w, c = image.shape
    if pixel_format is None:
        code = {1: L.TRANSFACE_PIXELS_GRAY, 3: L.TRANSFACE_PIXELS_RGB, 4: L.TRANSFACE_PIXELS_RGBA}[c]
    elif isinstance(pixel_format, str) and pixel_format.lower() in _PIXEL_FORMATS:
        code = _PIXEL_FORMATS[pixel_format.lower()]
    else:
        raise InvalidArgumentError("pixel_format must be one of rgb, bgr, rgba, bgra, gray, got "
                                   f"{pixel_format!r}")
    if _CHANNELS[code] != c:
        raise InvalidArgumentError(f"pixel_format {pixel_format!r} needs {_CHANNELS[code]} channels, "
                                   f"the image has {c}")
    if h < 1 or w < 1 or h >= 2**31 or w >= 2**31:
        raise InvalidArgumentError(f"image size {w}x{h} is not supported")
    if not (image.strides[2] == 1 and image.strides[1] == c and image.strides[0] >= w * c):
        image = np.ascontiguousarray(image)
    return image, w, h, image.strides[0], code


def _points(values, what, n=10):
    a = np.ascontiguousarray(np.asarray(values, dtype=np.float32).reshape(-1))
    if a.size != n:
        raise InvalidArgumentError(f"{what} must be {n // 2} (x, y) points, got {a.size} values")
    return a


def _fptr(a):
    return a.ctypes.data_as(L.float_p)


def _dptr(a):
    return a.ctypes.data_as(L.double_p)


def alignment_template(size=112):
    """The ArcFace 5-point template for a size x size crop, float32 [5, 2] (size a multiple of
    112, or of 128 with insightface's +8*size/128 shift on x)."""
    out = np.empty((5, 2), dtype=np.float32)
    check(L.lib().transface_alignment_template(int(size), _fptr(out)))
    return out


def estimate_similarity(src, dst):
    """The least-squares similarity transform (no reflection) mapping 5 src points onto 5 dst
    points, float64 [2, 3] (as skimage's SimilarityTransform.estimate(src, dst).params[:2])."""
    s, d = _points(src, "src"), _points(dst, "dst")
    out = np.empty((2, 3), dtype=np.float64)
    check(L.lib().transface_estimate_similarity(_fptr(s), _fptr(d), _dptr(out)))
    return out


def warp_affine(image, matrix, size, pixel_format=None):
    """Warp an image by a 2x3 matrix (image to output coordinates), bilinear, black outside, as
    cv2.warpAffine(image, matrix, size, borderValue=0). size: an int (square) or (width,
    height). Returns uint8 RGB [height, width, 3]."""
    arr, w, h, stride, code = _image(image, pixel_format)
    m = np.ascontiguousarray(np.asarray(matrix, dtype=np.float64).reshape(-1))
    if m.size != 6:
        raise InvalidArgumentError(f"matrix must be 2x3, got {m.size} values")
    ow, oh = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    out = np.empty((int(oh), int(ow), 3), dtype=np.uint8)
    check(L.lib().transface_warp_affine(arr.ctypes.data_as(L.u8_p), w, h, stride, code, _dptr(m),
                                        int(ow), int(oh), out.ctypes.data_as(L.u8_p), out.nbytes))
    return out


def align_face(image, landmarks, size=112, template=None, pixel_format=None):
    """Align a face as insightface's norm_crop: returns (crop uint8 RGB [size, size, 3], matrix
    float64 [2, 3], image to crop coordinates).

    image: uint8 [H, W] (grey), [H, W, 3] (RGB unless pixel_format='bgr') or [H, W, 4] (RGBA
    unless 'bgra'); landmarks: 5 (x, y) points, image-left eye, image-right eye, nose tip,
    image-left mouth corner, image-right mouth corner; template: 5 target points (default: the
    ArcFace template for size, see alignment_template).
    """
    arr, w, h, stride, code = _image(image, pixel_format)
    lm = _points(landmarks, "landmarks")
    t = _points(template, "template") if template is not None else None
    side = max(int(size), 0)
    out = np.empty((side, side, 3), dtype=np.uint8)
    matrix = np.empty((2, 3), dtype=np.float64)
    check(L.lib().transface_align_face(arr.ctypes.data_as(L.u8_p), w, h, stride, code, _fptr(lm),
                                       _fptr(t) if t is not None else None, int(size),
                                       out.ctypes.data_as(L.u8_p), out.nbytes, _dptr(matrix)))
    return out, matrix
