"""Face detection (MTCNN: boxes, scores, 5 landmarks) and photo-to-embedding, over the C ABI."""

import dataclasses
from ctypes import byref, c_size_t, c_void_p

import numpy as np

from . import _lib as L
from ._api import Context, _fptr, _Handle, _prepare_images
from ._lib import InvalidArgumentError, check


@dataclasses.dataclass
class Face:
    """One face: box (x1, y1, x2, y2) and landmarks [5, 2] (left eye, right eye, nose, left and
    right mouth corners) in pixels of the image given, and O-Net's face probability."""
    box: np.ndarray
    score: float
    landmarks: np.ndarray

    @classmethod
    def _from_c(cls, f):
        return cls(np.array(f.box, dtype=np.float32), float(f.score),
                   np.array(f.landmarks, dtype=np.float32).reshape(5, 2))


def _image(image):
    """(contiguous uint8 HWC RGB array, width, height)."""
    x, single = _prepare_images(image, "image")
    if not single:
        raise InvalidArgumentError(f"image must have shape [H, W, 3], got {list(image.shape)}")
    return x[0], x.shape[2], x.shape[1]


class Detector(_Handle):
    """An MTCNN face detector loaded from a detector file (`transface convert-detector`); holds
    buffers: use it from one thread at a time. landmark_box: "truncated" (default, the original
    MTCNN) or "facenet" (facenet-pytorch's arithmetic). min_face_size, scale_factor and
    thresholds (3 values) override the file's settings when given."""
    _free_name = "transface_detector_free"

    def __init__(self, path, threads=1, landmark_box="truncated", min_face_size=None, scale_factor=None,
                 thresholds=None):
        super().__init__()
        p = L.default_params("detector")
        p.num_threads = int(threads)
        if landmark_box not in L.TRANSFACE_LANDMARK_BOX:
            raise InvalidArgumentError(f"landmark_box must be one of {', '.join(L.TRANSFACE_LANDMARK_BOX)}, "
                                       f"got {landmark_box!r}")
        p.landmark_box = L.TRANSFACE_LANDMARK_BOX[landmark_box]
        if min_face_size is not None:
            p.min_face_size = int(min_face_size)
        if scale_factor is not None:
            p.scale_factor = float(scale_factor)
        if thresholds is not None:
            if len(thresholds) != 3:
                raise InvalidArgumentError(f"thresholds must be 3 values, got {len(thresholds)}")
            for i, t in enumerate(thresholds):
                p.thresholds[i] = float(t)
        h = c_void_p()
        check(L.lib().transface_detector_load(L.encode_path(path), byref(p), byref(h)))
        self._set_handle(h.value)

    def detect(self, image):
        """The faces of a uint8 RGB image [H, W, 3], highest score first."""
        x, w, h = _image(image)
        lib, count = L.lib(), c_size_t()
        check(lib.transface_detect(self._handle(), x.ctypes.data_as(L.u8_p), w, h, 0, 0, None, 0, byref(count)))
        faces = (L.transface_face * max(count.value, 1))()
        faces[0].struct_size = L.ctypes.sizeof(L.transface_face)
        check(lib.transface_detect(self._handle(), x.ctypes.data_as(L.u8_p), w, h, 0, 0, faces, len(faces), byref(count)))
        return [Face._from_c(faces[i]) for i in range(count.value)]

    def main_face(self, image):
        """The photo's main face (largest centre-weighted size), or None when there is none."""
        x, w, h = _image(image)
        f = L.new_struct(L.transface_face)
        status = L.lib().transface_detect_main_face(self._handle(), x.ctypes.data_as(L.u8_p), w, h, 0, 0, byref(f))
        if status == L.TRANSFACE_NOT_FOUND:
            return None
        check(status)
        return Face._from_c(f)

    def embed_photo(self, context, image, flip=False, normalize=True):
        """(embedding [E], Face) of the photo's main face, detected, aligned onto the context's
        model template and embedded; (None, None) when the photo has no face."""
        if not isinstance(context, Context):
            raise InvalidArgumentError(f"context must be a transface.Context, got {type(context).__name__}")
        x, w, h = _image(image)
        out = np.empty(context._e, dtype=np.float32)
        f = L.new_struct(L.transface_face)
        status = L.lib().transface_embed_photo(context._handle(), self._handle(), x.ctypes.data_as(L.u8_p), w, h, 0, 0,
                                               Context._flags(flip, normalize), _fptr(out), out.size, byref(f))
        if status == L.TRANSFACE_NOT_FOUND:
            return None, None
        check(status)
        return out, Face._from_c(f)
