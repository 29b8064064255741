"""ctypes declarations of every function and struct of include/transface.h.

The shared library is located, in order, through:
  1. the environment variable TRANSFACE_LIBRARY (a path to libtransface.so);
  2. the copy bundled in a platform wheel, transface/_native/libtransface.so (its RUNPATH
     $ORIGIN makes the loader find the system libraries bundled beside it);
  3. the Swift build folders of the repository this package sits in: walking up from this file,
     the first folder holding `.build/release/libtransface.so` or `.build/debug/libtransface.so`
     (when both exist, the more recently built one);
  4. ctypes.util.find_library("transface").
It is loaded on first use, so `import transface` works without it (e.g. for `--help`).
"""

import ctypes
import ctypes.util
import os
import threading
from ctypes import (POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_int32, c_int64,
                    c_size_t, c_uint8, c_uint32, c_uint64, c_void_p)

__all__ = [
    "Error", "InvalidArgumentError", "FileError", "FormatError", "OutOfMemoryError",
    "AbortedError", "NumericError", "MisuseError", "InternalError", "NotFoundError",
    "LibraryNotFoundError", "lib", "library_path", "check", "find_library",
]

# ------------------------------------------------------------------ constants (header macros)

TRANSFACE_OK = 0
TRANSFACE_INVALID_ARGUMENT = 1
TRANSFACE_IO = 2
TRANSFACE_FORMAT = 3
TRANSFACE_OUT_OF_MEMORY = 4
TRANSFACE_ABORTED = 5
TRANSFACE_NUMERIC = 6
TRANSFACE_MISUSE = 7
TRANSFACE_INTERNAL = 8
TRANSFACE_NOT_FOUND = 9

TRANSFACE_CHANNELS_RGB = 0
TRANSFACE_CHANNELS_BGR = 1

TRANSFACE_EMBED_FLIP = 1
TRANSFACE_EMBED_NO_NORMALIZE = 2

TRANSFACE_DTYPE_F32 = 0
TRANSFACE_DTYPE_F16 = 1
TRANSFACE_DTYPE_BF16 = 2

# Version of the header these declarations were written from.
HEADER_VERSION = (0, 2, 0)
HEADER_FORMAT_VERSION = 1

# ------------------------------------------------------------------ errors


class Error(Exception):
    """An error reported by libtransface (or found by the binding before calling it).

    `status` is the transface_status code (None for binding-level problems) and `message`
    the library's message (transface_last_error()).
    """

    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def __str__(self):
        return self.message


class InvalidArgumentError(Error, ValueError):
    status = TRANSFACE_INVALID_ARGUMENT


class FileError(Error, OSError):
    """File cannot be opened, read or written (TRANSFACE_IO)."""
    status = TRANSFACE_IO

    def __str__(self):
        return self.message


class FormatError(Error):
    """The file is not a valid model (magic, version, checksum...)."""
    status = TRANSFACE_FORMAT


class OutOfMemoryError(Error, MemoryError):
    status = TRANSFACE_OUT_OF_MEMORY


class AbortedError(Error):
    status = TRANSFACE_ABORTED


class NumericError(Error, ArithmeticError):
    status = TRANSFACE_NUMERIC


class MisuseError(Error, RuntimeError):
    status = TRANSFACE_MISUSE


class InternalError(Error, RuntimeError):
    status = TRANSFACE_INTERNAL


class NotFoundError(Error, LookupError):
    status = TRANSFACE_NOT_FOUND


class LibraryNotFoundError(Error, OSError):
    """libtransface.so could not be located or loaded."""

    def __str__(self):
        return self.message


ERROR_CLASSES = {
    TRANSFACE_INVALID_ARGUMENT: InvalidArgumentError,
    TRANSFACE_IO: FileError,
    TRANSFACE_FORMAT: FormatError,
    TRANSFACE_OUT_OF_MEMORY: OutOfMemoryError,
    TRANSFACE_ABORTED: AbortedError,
    TRANSFACE_NUMERIC: NumericError,
    TRANSFACE_MISUSE: MisuseError,
    TRANSFACE_INTERNAL: InternalError,
    TRANSFACE_NOT_FOUND: NotFoundError,
}

# ------------------------------------------------------------------ structs


class transface_config(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("arch", c_char * 32),
        ("img_size", c_int32),
        ("patch_size", c_int32),
        ("in_channels", c_int32),
        ("embed_dim", c_int32),
        ("depth", c_int32),
        ("num_heads", c_int32),
        ("mlp_hidden_dim", c_int32),
        ("embedding_size", c_int32),
        ("drop_path_rate", c_float),
        ("mask_ratio", c_float),
        ("no_se_gate", c_int32),
    ]


class transface_preprocess(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("input_width", c_int32),
        ("input_height", c_int32),
        ("mean", c_float * 3),
        ("std", c_float * 3),
        ("channel_order", c_int32),
        ("align_template", c_float * 10),
    ]


class transface_load_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("verify_checksums", c_int32),
        ("max_weight_bytes", c_uint64),
    ]


class transface_tensor_info(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("name", c_char_p),
        ("ndim", c_int32),
        ("dims", c_int64 * 4),
        ("count", c_size_t),
    ]


class transface_context_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("num_threads", c_int32),
        ("max_batch", c_int32),
        ("precision", c_int32),   # transface_precision (since 0.2)
    ]


TRANSFACE_PRECISION = {"fp32": 0, "bf16": 1}


def new_struct(cls):
    """A zeroed struct with struct_size filled in (for outputs the library writes)."""
    s = cls()
    s.struct_size = ctypes.sizeof(cls)
    return s


def default_params(name):
    """transface_<name>_params filled by transface_<name>_params_init (the library writes only
    the bytes of this module's struct, also when it is older or newer than it)."""
    cls = globals()[f"transface_{name}_params"]
    p = cls()
    check(getattr(lib(), f"transface_{name}_params_init")(ctypes.byref(p), ctypes.sizeof(cls)))
    return p


# Opaque handles.
transface_model_p = c_void_p
transface_context_p = c_void_p
transface_builder_p = c_void_p
transface_status = c_int  # C enum: int-sized
transface_dtype = c_int
float_p = POINTER(c_float)
u8_p = POINTER(c_uint8)

# name: (restype, argtypes)
FUNCTIONS = {
    # versions
    "transface_version_number": (c_uint32, []),
    "transface_version_string": (c_char_p, []),
    "transface_format_version": (c_uint32, []),
    # errors
    "transface_status_string": (c_char_p, [transface_status]),
    "transface_last_error": (c_char_p, []),
    # configuration
    "transface_config_preset": (transface_status, [c_char_p, c_int32, POINTER(transface_config)]),
    "transface_config_preset_count": (c_size_t, []),
    "transface_config_preset_name": (c_char_p, [c_size_t]),
    # models
    "transface_load_default_params": (transface_load_params, []),
    "transface_load_params_init": (transface_status, [POINTER(transface_load_params), c_uint32]),
    "transface_model_load": (transface_status, [c_char_p, POINTER(transface_load_params),
                                                POINTER(transface_model_p)]),
    "transface_model_free": (None, [transface_model_p]),
    "transface_model_get_config": (transface_status, [transface_model_p, POINTER(transface_config)]),
    "transface_model_get_preprocess": (transface_status, [transface_model_p,
                                                          POINTER(transface_preprocess)]),
    "transface_model_embedding_size": (c_int32, [transface_model_p]),
    "transface_model_metadata_count": (c_size_t, [transface_model_p]),
    "transface_model_metadata_at": (transface_status, [transface_model_p, c_size_t,
                                                       POINTER(c_char_p), POINTER(c_char_p)]),
    "transface_model_metadata_get": (transface_status, [transface_model_p, c_char_p,
                                                        POINTER(c_char_p)]),
    "transface_model_tensor_count": (c_size_t, [transface_model_p]),
    "transface_model_tensor_info": (transface_status, [transface_model_p, c_size_t,
                                                       POINTER(transface_tensor_info)]),
    "transface_model_read_tensor": (transface_status, [transface_model_p, c_char_p, float_p,
                                                       c_size_t]),
    # inference
    "transface_context_default_params": (transface_context_params, []),
    "transface_context_params_init": (transface_status, [POINTER(transface_context_params), c_uint32]),
    "transface_context_create": (transface_status, [transface_model_p,
                                                    POINTER(transface_context_params),
                                                    POINTER(transface_context_p)]),
    "transface_context_free": (None, [transface_context_p]),
    "transface_embed": (transface_status, [transface_context_p, u8_p, c_size_t, c_int32, c_int32,
                                           c_uint32, float_p, c_size_t]),
    "transface_embed_with_patches": (transface_status, [transface_context_p, u8_p, c_size_t,
                                                        c_int32, c_int32, c_uint32,
                                                        float_p, c_size_t, float_p, c_size_t,
                                                        float_p, c_size_t]),
    "transface_compare": (transface_status, [float_p, float_p, c_size_t, float_p]),
    # builder
    "transface_builder_create": (transface_status, [POINTER(transface_config),
                                                    POINTER(transface_builder_p)]),
    "transface_builder_free": (None, [transface_builder_p]),
    "transface_builder_tensor_count": (c_size_t, [transface_builder_p]),
    "transface_builder_tensor_info": (transface_status, [transface_builder_p, c_size_t,
                                                         POINTER(transface_tensor_info)]),
    "transface_builder_set_tensor": (transface_status, [transface_builder_p, c_char_p, c_void_p,
                                                        transface_dtype, POINTER(c_int64),
                                                        c_int32]),
    "transface_builder_init_weights": (transface_status, [transface_builder_p, c_uint64]),
    "transface_builder_set_preprocess": (transface_status, [transface_builder_p,
                                                            POINTER(transface_preprocess)]),
    "transface_builder_set_metadata": (transface_status, [transface_builder_p, c_char_p,
                                                          c_char_p]),
    "transface_builder_save": (transface_status, [transface_builder_p, c_char_p]),
    "transface_builder_build": (transface_status, [transface_builder_p,
                                                   POINTER(transface_model_p)]),
}

STRUCTS = {
    "transface_config": transface_config,
    "transface_preprocess": transface_preprocess,
    "transface_load_params": transface_load_params,
    "transface_tensor_info": transface_tensor_info,
    "transface_context_params": transface_context_params,
}

# ------------------------------------------------------------------ images (decoding, alignment)

TRANSFACE_IMAGE_JPEG = 1
TRANSFACE_IMAGE_PNG = 2
TRANSFACE_IMAGE_PNM = 3

TRANSFACE_PIXELS_RGB = 0
TRANSFACE_PIXELS_BGR = 1
TRANSFACE_PIXELS_RGBA = 2
TRANSFACE_PIXELS_BGRA = 3
TRANSFACE_PIXELS_GRAY = 4


class transface_decode_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("max_pixels", c_uint64),
        ("accept_damaged", c_int32),
    ]


class transface_image_info(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("width", c_int32),
        ("height", c_int32),
        ("format", c_int32),
        ("channels", c_int32),
    ]


transface_pixel_format = c_int
double_p = POINTER(ctypes.c_double)

FUNCTIONS.update({
    "transface_decode_default_params": (transface_decode_params, []),
    "transface_decode_params_init": (transface_status, [POINTER(transface_decode_params), c_uint32]),
    "transface_decode_image": (transface_status, [u8_p, c_size_t, POINTER(transface_decode_params),
                                                  u8_p, c_size_t, POINTER(transface_image_info)]),
    "transface_decode_file": (transface_status, [c_char_p, POINTER(transface_decode_params), u8_p,
                                                 c_size_t, POINTER(transface_image_info)]),
    "transface_alignment_template": (transface_status, [c_int32, float_p]),
    "transface_estimate_similarity": (transface_status, [float_p, float_p, double_p]),
    "transface_warp_affine": (transface_status, [u8_p, c_int32, c_int32, c_size_t,
                                                 transface_pixel_format, double_p, c_int32,
                                                 c_int32, u8_p, c_size_t]),
    "transface_align_face": (transface_status, [u8_p, c_int32, c_int32, c_size_t,
                                                transface_pixel_format, float_p, float_p, c_int32,
                                                u8_p, c_size_t, double_p]),
})

STRUCTS.update({
    "transface_decode_params": transface_decode_params,
    "transface_image_info": transface_image_info,
})

# ------------------------------------------------------------------ datasets and evaluation

TRANSFACE_RECORDIO_FLAT = 0
TRANSFACE_RECORDIO_LEGACY = 1
TRANSFACE_MAX_FOLDS = 64
TRANSFACE_VERIFY_THRESHOLDS = 400


class transface_pack_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("layout", c_int32),
        ("image_width", c_int32),
        ("image_height", c_int32),
        ("jpeg_quality", c_int32),
    ]


class transface_verify_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("folds", c_int32),
        ("interleaved", c_int32),
        ("flip", c_int32),
        ("far_target", ctypes.c_double),
        ("pair_naming", c_char_p),
        ("landmark_source", c_char_p),
    ]


class transface_verify_result(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("folds", c_int32),
        ("pairs", c_size_t),
        ("accuracy_mean", ctypes.c_double),
        ("accuracy_std", ctypes.c_double),
        ("fold_accuracy", ctypes.c_double * TRANSFACE_MAX_FOLDS),
        ("fold_threshold", ctypes.c_double * TRANSFACE_MAX_FOLDS),
        ("best_threshold", ctypes.c_double),
        ("best_accuracy", ctypes.c_double),
        ("far_target", ctypes.c_double),
        ("val_mean", ctypes.c_double),
        ("val_std", ctypes.c_double),
        ("far_mean", ctypes.c_double),
        ("xnorm", ctypes.c_double),
        ("images", c_size_t),
    ]


class transface_ijb_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("flip", c_int32),
        ("use_norm_score", c_int32),
        ("use_detector_score", c_int32),
        ("image_dir", c_char_p),
    ]


class transface_ijb_summary(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("dataset", ctypes.c_char * 8),
        ("images", c_size_t),
        ("templates", c_size_t),
        ("pairs", c_size_t),
        ("genuine_pairs", c_size_t),
        ("impostor_pairs", c_size_t),
        ("roc_points", c_size_t),
        ("auc", ctypes.c_double),
    ]


transface_recordio_p = c_void_p
transface_bin_p = c_void_p
f64_p = POINTER(ctypes.c_double)
size_p = POINTER(c_size_t)

FUNCTIONS.update({
    "transface_recordio_open": (transface_status, [c_char_p, POINTER(transface_recordio_p)]),
    "transface_recordio_close": (None, [transface_recordio_p]),
    "transface_recordio_count": (c_size_t, [transface_recordio_p]),
    "transface_recordio_num_classes": (c_size_t, [transface_recordio_p]),
    "transface_recordio_read": (transface_status, [transface_recordio_p, c_size_t, POINTER(c_int32),
                                                   u8_p, c_size_t, size_p]),
    "transface_pack_default_params": (transface_pack_params, []),
    "transface_pack_params_init": (transface_status, [POINTER(transface_pack_params), c_uint32]),
    "transface_recordio_pack": (transface_status, [c_char_p, c_char_p, c_char_p,
                                                   POINTER(transface_pack_params), size_p]),
    "transface_bin_open": (transface_status, [c_char_p, POINTER(transface_bin_p)]),
    "transface_bin_close": (None, [transface_bin_p]),
    "transface_bin_pair_count": (c_size_t, [transface_bin_p]),
    "transface_bin_image": (transface_status, [transface_bin_p, c_size_t, POINTER(u8_p), size_p]),
    "transface_bin_issame": (transface_status, [transface_bin_p, u8_p, c_size_t]),
    "transface_bin_write": (transface_status, [c_char_p, POINTER(u8_p), size_p, u8_p, c_size_t,
                                               c_int32]),
    "transface_verify_default_params": (transface_verify_params, []),
    "transface_verify_params_init": (transface_status, [POINTER(transface_verify_params), c_uint32]),
    "transface_pair_distances": (transface_status, [float_p, float_p, c_size_t, c_size_t, f64_p]),
    "transface_verify_embeddings": (transface_status, [float_p, float_p, u8_p, c_size_t, c_size_t,
                                                       POINTER(transface_verify_params),
                                                       POINTER(transface_verify_result)]),
    "transface_verify_distances": (transface_status, [f64_p, u8_p, c_size_t,
                                                      POINTER(transface_verify_params),
                                                      POINTER(transface_verify_result)]),
    "transface_verify_roc": (transface_status, [f64_p, u8_p, c_size_t,
                                                POINTER(transface_verify_params), f64_p, f64_p,
                                                f64_p, c_size_t]),
    "transface_roc_curve": (transface_status, [f64_p, u8_p, c_size_t, f64_p, f64_p, f64_p,
                                               c_size_t, size_p]),
    "transface_tar_at_far": (transface_status, [f64_p, u8_p, c_size_t, f64_p, c_size_t, f64_p,
                                                f64_p]),
    "transface_evaluate_bin": (transface_status, [transface_context_p, c_char_p,
                                                  POINTER(transface_verify_params),
                                                  POINTER(transface_verify_result)]),
    "transface_evaluate_pairs": (transface_status, [transface_context_p, c_char_p, c_char_p,
                                                    c_char_p, POINTER(transface_verify_params),
                                                    POINTER(transface_verify_result)]),
    "transface_ijb_default_params": (transface_ijb_params, []),
    "transface_ijb_params_init": (transface_status, [POINTER(transface_ijb_params), c_uint32]),
    "transface_evaluate_ijb": (transface_status, [transface_context_p, c_char_p, c_char_p,
                                                  POINTER(transface_ijb_params), f64_p, c_size_t,
                                                  f64_p, f64_p, c_size_t,
                                                  POINTER(transface_ijb_summary)]),
})

STRUCTS.update({
    "transface_pack_params": transface_pack_params,
    "transface_verify_params": transface_verify_params,
    "transface_verify_result": transface_verify_result,
    "transface_ijb_params": transface_ijb_params,
    "transface_ijb_summary": transface_ijb_summary,
})

# ------------------------------------------------------------------ training


class transface_step_result(Structure):
    _fields_ = [("struct_size", c_uint32), ("loss", c_double), ("first_pass_loss", c_double),
                ("learning_rate", c_double), ("gradient_norm", c_double), ("clip_coefficient", c_double),
                ("optimizer_stepped", c_int32), ("skipped", c_int32), ("images_augmented", c_int32),
                ("step", c_uint64), ("seconds", c_double)]


class transface_trainer_info(Structure):
    _fields_ = [("struct_size", c_uint32), ("step", c_uint64), ("batches", c_uint64),
                ("learning_rate", c_double), ("learning_rate_scale", c_double)]


transface_trainer_p = c_void_p

FUNCTIONS.update({
    "transface_amplitude_mix": (transface_status, [u8_p, u8_p, c_int32, c_int32, c_int32, c_double, c_double,
                                                   u8_p, c_size_t]),
    "transface_trainer_create": (transface_status, [c_char_p, transface_model_p, POINTER(transface_trainer_p)]),
    "transface_trainer_resume": (transface_status, [c_char_p, c_int32, POINTER(transface_trainer_p)]),
    "transface_trainer_free": (None, [transface_trainer_p]),
    "transface_trainer_step": (transface_status, [transface_trainer_p, u8_p, POINTER(c_int32), c_size_t, c_int32,
                                                  c_int32, POINTER(transface_step_result)]),
    "transface_trainer_save_checkpoint": (transface_status, [transface_trainer_p, c_char_p]),
    "transface_trainer_export_model": (transface_status, [transface_trainer_p, c_char_p]),
    "transface_trainer_tensor_size": (transface_status, [transface_trainer_p, c_char_p, POINTER(c_size_t)]),
    "transface_trainer_read_tensor": (transface_status, [transface_trainer_p, c_char_p, float_p, c_size_t]),
    "transface_trainer_set_tensor": (transface_status, [transface_trainer_p, c_char_p, float_p, c_size_t]),
    "transface_trainer_import_official": (transface_status, [POINTER(c_char_p), c_size_t, c_char_p,
                                                             POINTER(transface_trainer_p)]),
    "transface_trainer_get_info": (transface_status, [transface_trainer_p, POINTER(transface_trainer_info)]),
})

STRUCTS.update({"transface_step_result": transface_step_result, "transface_trainer_info": transface_trainer_info})

# ------------------------------------------------------------------ converting official state_dicts

# void (*note)(void *user_data, const char *line)
transface_convert_note = ctypes.CFUNCTYPE(None, c_void_p, c_char_p)


class transface_convert_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("num_heads", c_int32),
        ("embedding_size", c_int32),
        ("img_size", c_int32),
        ("arch", c_char_p),
        ("metadata", POINTER(c_char_p)),
        ("metadata_count", c_size_t),
        ("note", transface_convert_note),
        ("user_data", c_void_p),
    ]


FUNCTIONS.update({
    "transface_convert_default_params": (transface_convert_params, []),
    "transface_convert_params_init": (transface_status, [POINTER(transface_convert_params), c_uint32]),
    "transface_convert_state_dict": (transface_status, [c_char_p, POINTER(transface_convert_params), c_char_p,
                                                        POINTER(transface_config)]),
    "transface_convert_infer_config": (transface_status, [POINTER(c_char_p), POINTER(c_int32), POINTER(c_int64),
                                                          c_size_t, POINTER(transface_convert_params),
                                                          POINTER(transface_config)]),
})

STRUCTS.update({"transface_convert_params": transface_convert_params})

# ------------------------------------------------------------------ face detection

transface_detector_p = c_void_p


class transface_detector_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("num_threads", c_int32),
        ("min_face_size", c_int32),
        ("scale_factor", c_float),
        ("thresholds", c_float * 3),
        ("landmark_box", c_int32),  # transface_landmark_box
    ]


class transface_face(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("box", c_float * 4),
        ("score", c_float),
        ("landmarks", c_float * 10),
    ]


TRANSFACE_LANDMARK_BOX = {"truncated": 0, "facenet": 1}

FUNCTIONS.update({
    "transface_detector_default_params": (transface_detector_params, []),
    "transface_detector_params_init": (transface_status, [POINTER(transface_detector_params), c_uint32]),
    "transface_detector_load": (transface_status, [c_char_p, POINTER(transface_detector_params),
                                                   POINTER(transface_detector_p)]),
    "transface_detector_free": (None, [transface_detector_p]),
    "transface_detect": (transface_status, [transface_detector_p, u8_p, c_int32, c_int32, c_size_t, c_int,
                                            POINTER(transface_face), c_size_t, POINTER(c_size_t)]),
    "transface_detect_main_face": (transface_status, [transface_detector_p, u8_p, c_int32, c_int32, c_size_t, c_int,
                                                      POINTER(transface_face)]),
    "transface_embed_photo": (transface_status, [transface_context_p, transface_detector_p, u8_p, c_int32, c_int32,
                                                 c_size_t, c_int, c_uint32, float_p, c_size_t, POINTER(transface_face)]),
})

STRUCTS.update({"transface_detector_params": transface_detector_params, "transface_face": transface_face})

# ------------------------------------------------------------------ 1:N gallery

transface_gallery_p = c_void_p


TRANSFACE_GALLERY_INDEX = {"exact": 0, "hnsw": 1}


class transface_gallery_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("storage", c_int32),  # transface_gallery_storage
        ("read_only", c_int32),
        ("search_threads", c_int32),
        ("index", c_int32),  # transface_gallery_index (appended)
        ("hnsw_m", c_int32),
        ("hnsw_ef_construction", c_int32),
        ("hnsw_ef_search", c_int32),
        ("hnsw_seed", c_uint64),
    ]


class transface_match(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("score", c_float),
        ("passes", c_int32),
        ("entry_id", c_uint64),
        ("label", c_char_p),
    ]


TRANSFACE_GALLERY_STORAGE = {"float32": 0, "float16": 1, "int8": 2}

FUNCTIONS.update({
    "transface_gallery_default_params": (transface_gallery_params, []),
    "transface_gallery_params_init": (transface_status, [POINTER(transface_gallery_params), c_uint32]),
    "transface_gallery_open": (transface_status, [c_char_p, transface_model_p, POINTER(transface_gallery_params),
                                                  POINTER(transface_gallery_p)]),
    "transface_gallery_close": (None, [transface_gallery_p]),
    "transface_gallery_enrol": (transface_status, [transface_gallery_p, c_char_p, float_p, c_size_t, c_size_t,
                                                   POINTER(c_char_p), c_size_t, POINTER(c_uint64)]),
    "transface_gallery_remove": (transface_status, [transface_gallery_p, c_char_p, POINTER(c_size_t)]),
    "transface_gallery_count": (c_size_t, [transface_gallery_p]),
    "transface_gallery_identity_count": (c_size_t, [transface_gallery_p]),
    "transface_gallery_identity": (transface_status, [transface_gallery_p, c_size_t, POINTER(c_char_p),
                                                      POINTER(c_size_t)]),
    "transface_gallery_search": (transface_status, [transface_gallery_p, float_p, c_size_t, c_size_t, c_size_t,
                                                    c_float, POINTER(transface_match), c_size_t, POINTER(c_size_t)]),
})

STRUCTS.update({"transface_gallery_params": transface_gallery_params, "transface_match": transface_match})

# ------------------------------------------------------------------ locating and loading

LIBRARY_NAME = "libtransface.so"
ENV_VAR = "TRANSFACE_LIBRARY"


def _repo_candidates(start):
    """Library files in the Swift build folders of the nearest ancestor that has any."""
    folder = os.path.dirname(os.path.abspath(start))
    while True:
        found = [os.path.join(folder, ".build", kind, LIBRARY_NAME) for kind in ("release", "debug")]
        found = [f for f in found if os.path.isfile(f)]
        if found:
            return sorted(found, key=lambda f: os.path.getmtime(f), reverse=True)
        parent = os.path.dirname(folder)
        if parent == folder:
            return []
        folder = parent


def find_library():
    """Path (or name for the dynamic loader) of the library to load, and how it was found."""
    env = os.environ.get(ENV_VAR)
    if env:
        if not os.path.isfile(env):
            raise LibraryNotFoundError(f"{ENV_VAR}={env!r} does not name an existing file")
        return env, ENV_VAR
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_native", "libtransface.so")
    if os.path.isfile(bundled):
        return bundled, "bundled with the wheel"
    found = _repo_candidates(__file__)
    if found:
        return found[0], "repository build folder"
    name = ctypes.util.find_library("transface")
    if name:
        return name, "ctypes.util.find_library"
    raise LibraryNotFoundError(
        "cannot find libtransface.so: set TRANSFACE_LIBRARY to its path, run `swift build` in "
        "the repository (for .build/{release,debug}/libtransface.so), or install it where the "
        "dynamic loader looks")


_lock = threading.Lock()
_lib = None
library_path = None


def _declare(cdll):
    for name, (restype, argtypes) in FUNCTIONS.items():
        try:
            f = getattr(cdll, name)
        except AttributeError:
            raise LibraryNotFoundError(f"{library_path} does not export {name}: not a compatible "
                                       "libtransface") from None
        f.restype = restype
        f.argtypes = argtypes
    return cdll


def lib():
    """The loaded library (loads it on first call)."""
    global _lib, library_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            path, _how = find_library()
            try:
                cdll = ctypes.CDLL(path)
            except OSError as e:
                raise LibraryNotFoundError(f"cannot load libtransface from {path}: {e}") from None
            library_path = path
            _declare(cdll)
            major = cdll.transface_version_number() // 10000
            if major != HEADER_VERSION[0]:
                raise LibraryNotFoundError(
                    f"{path} is libtransface {cdll.transface_version_string().decode()}, this "
                    f"binding was written for {'.'.join(map(str, HEADER_VERSION))}")
            _lib = cdll
    return _lib


def last_error():
    return (lib().transface_last_error() or b"").decode("utf-8", "replace")


def status_string(status):
    s = lib().transface_status_string(status)
    return s.decode() if s else "unknown status"


def make_error(status, message=None):
    if message is None:
        message = last_error() or status_string(status)
    cls = ERROR_CLASSES.get(status, Error)
    return cls(message, status)


def check(status):
    """Raises the Error subclass of a failed status, with transface_last_error()."""
    if status != TRANSFACE_OK:
        raise make_error(status)


def encode(s, what="string"):
    if isinstance(s, bytes):
        b = s
    elif isinstance(s, os.PathLike):
        b = os.fsencode(s)
    elif isinstance(s, str):
        b = s.encode("utf-8")
    else:
        raise InvalidArgumentError(f"{what} must be a str, got {type(s).__name__}")
    if b"\0" in b:
        raise InvalidArgumentError(f"{what} contains a NUL character")
    return b


def encode_path(p, what="path"):
    if isinstance(p, (str, os.PathLike)):
        b = os.fsencode(p)
    elif isinstance(p, bytes):
        b = p
    else:
        raise InvalidArgumentError(f"{what} must be a str or path, got {type(p).__name__}")
    if b"\0" in b:
        raise InvalidArgumentError(f"{what} contains a NUL character")
    return b
