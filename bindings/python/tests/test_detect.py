"""transface.Detector: MTCNN through the C ABI on real photos (the detector file is converted from
the facenet-pytorch wheel by the Swift CLI; skipped when either is absent)."""

import os
import pathlib
import subprocess

import numpy as np
import pytest

import transface
from conftest import REPO_ROOT, SHARED

WHEEL = pathlib.Path(os.environ.get("TRANSFACE_FACENET_WHEEL",
                                    REPO_ROOT / ".build-data" / "facenet_pytorch-2.6.0-py3-none-any.whl"))
PHOTO = SHARED / "data" / "lfw" / "images" / "Abdullah_Gul" / "Abdullah_Gul_0013.jpg"
DOGS = SHARED / "data" / "photos_misc" / "dlib_examples_faces" / "dogs.jpg"


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory):
    cli = pathlib.Path(transface.library_path()).parent / "transface-cli"
    if not WHEEL.is_file() or not cli.is_file():
        pytest.skip(f"needs {WHEEL} (bash .ci/setup downloads it) and {cli}")
    out = tmp_path_factory.mktemp("detector") / "mtcnn.tfd"
    subprocess.run([str(cli), "convert-detector", "--facenet-wheel", str(WHEEL), "-o", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def test_detects_the_face_of_an_lfw_photo(detector_file):
    image = transface.decode_image(PHOTO)
    with transface.Detector(detector_file, threads=2) as d:
        faces = d.detect(image)
        main = d.main_face(image)
        facenet = transface.Detector(detector_file, landmark_box="facenet").main_face(image)
    assert len(faces) >= 1 and all(a.score >= b.score for a, b in zip(faces, faces[1:]))
    h, w, _ = image.shape
    centre = (main.box[:2] + main.box[2:]) / 2
    assert np.all(np.abs(centre - [w / 2, h / 2]) < 25) and main.score > 0.9
    assert np.all((main.landmarks >= main.box[:2]) & (main.landmarks <= main.box[2:]))
    # the two decoding modes differ by a pixel or two, not more
    assert 0 < np.abs(facenet.landmarks - main.landmarks).max() < 4


def test_no_face_on_dogs(detector_file):
    image = transface.decode_image(DOGS)
    with transface.Detector(detector_file) as d:
        assert d.detect(image) == [] and d.main_face(image) is None


def test_embed_photo_equals_align_and_embed(detector_file, tiny_model):
    image = transface.decode_image(PHOTO)
    with transface.Detector(detector_file) as d, tiny_model.context() as ctx:
        emb, face = d.embed_photo(ctx, image, flip=True)
        aligned, _ = transface.align_face(image, face.landmarks, template=tiny_model.preprocess.align_template)
        assert np.array_equal(emb, ctx.embed(aligned, flip=True))
        assert d.embed_photo(ctx, transface.decode_image(DOGS)) == (None, None)


def test_errors(detector_file, tiny_tfm):
    with pytest.raises(transface.FormatError, match="not a detector"):
        transface.Detector(tiny_tfm)
    with pytest.raises(transface.InvalidArgumentError, match="landmark_box"):
        transface.Detector(detector_file, landmark_box="nope")
    with pytest.raises(transface.InvalidArgumentError, match="threshold"):
        transface.Detector(detector_file, thresholds=[0.6, 2, 0.7])
    with transface.Detector(detector_file) as d:
        with pytest.raises(transface.InvalidArgumentError):
            d.detect(np.zeros((0, 10, 3), np.uint8))
        with pytest.raises(transface.InvalidArgumentError, match="limit"):
            d.detect(np.zeros((9000, 9000, 3), np.uint8))
