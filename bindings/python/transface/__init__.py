"""libtransface from Python: TransFace (ICCV 2023) face embeddings on the CPU.

    import transface
    with transface.Model("vit_s.tfm") as model:
        emb = model.embed(faces_u8_nhwc, flip=True)      # float32 [N, 512], unit length
        weights, std = model.patches(faces_u8_nhwc)     # [N, 144] each

The shared library is found through TRANSFACE_LIBRARY, the repository's .build folders, or
the dynamic loader (see transface._lib).
"""

from ._lib import (AbortedError, Error, FileError, FormatError, InternalError,
                   InvalidArgumentError, LibraryNotFoundError, MisuseError, NotFoundError,
                   NumericError, OutOfMemoryError)
from ._api import (Builder, Config, Context, Model, Preprocess, compare, config_preset,
                   format_version, presets, version, version_number)
from ._image import (ImageInfo, align_face, alignment_template, decode_image, estimate_similarity,
                     image_info, warp_affine)
from ._data import RecordIO, read_bin, write_bin
from ._train import Trainer, amplitude_mix
from ._detect import Detector, Face
from ._gallery import Gallery, Match
from ._eval import (STANDARD_FARS, IJBResult, VerifyResult, pair_distances, roc_curve, tar_at_far, verify,
                    verify_distances)

__version__ = "0.2.0"

__all__ = [
    "Model", "Context", "Builder", "Config", "Preprocess", "compare", "presets", "config_preset",
    "version", "version_number", "format_version", "library_path",
    "Error", "InvalidArgumentError", "FileError", "FormatError", "OutOfMemoryError",
    "AbortedError", "NumericError", "MisuseError", "InternalError", "NotFoundError",
    "LibraryNotFoundError",
]
__all__ += ["decode_image", "image_info", "ImageInfo", "align_face", "alignment_template",
            "estimate_similarity", "warp_affine"]

__all__ += ["RecordIO", "read_bin", "write_bin", "verify", "verify_distances", "pair_distances",
            "roc_curve", "tar_at_far", "VerifyResult", "STANDARD_FARS"]


def library_path():
    """Path of the loaded libtransface (loads it if needed)."""
    from . import _lib
    _lib.lib()
    return _lib.library_path
__all__ += ["Trainer", "amplitude_mix"]
__all__ += ["IJBResult"]
__all__ += ["Detector", "Face"]
__all__ += ["Gallery", "Match"]
