"""Evaluation over the C ABI: the official k-fold verification protocol, ROC and TAR@FAR.

    import transface
    r = transface.verify(emb1, emb2, issame)            # or verify(emb, None, issame): rows 2i, 2i+1
    print(r.accuracy, r.accuracy_std, r.fold_thresholds, r.val, r.far)
    tar = transface.tar_at_far(scores, labels, [1e-4, 1e-3])
    with transface.Model("vit_s.tfm") as m:
        print(m.evaluate_bin("lfw.bin").accuracy)
        print(m.evaluate_pairs("devtest_pairs.tsv", "lfw/", landmarks="included_5pt.tsv",
                               interleaved=True).accuracy)
        print(m.evaluate_ijb("IJB_release/IJBC").tar)        # TAR at STANDARD_FARS

Verification follows insightface's eval/verification.py to the last bit on float64 distances
(see include/transface.h, section "evaluation"); TAR@FAR follows eval_ijbc.py: the ROC point
whose FPR is closest to the target.
"""

import dataclasses
from ctypes import byref, c_size_t

import numpy as np

from . import _lib as L
from ._api import Model
from ._lib import InvalidArgumentError, check

__all__ = ["VerifyResult", "IJBResult", "verify", "verify_distances", "pair_distances", "roc_curve", "tar_at_far",
           "STANDARD_FARS"]

STANDARD_FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclasses.dataclass
class VerifyResult:
    """Results of the verification protocol."""
    accuracy: float             # mean test-fold accuracy
    accuracy_std: float         # its population std
    fold_accuracy: np.ndarray
    fold_thresholds: np.ndarray  # each fold's best threshold (chosen on the other folds)
    best_threshold: float       # first argmax threshold on all pairs
    best_accuracy: float
    val: float                  # VAL@far_target, mean over folds
    val_std: float
    far: float                  # mean FAR at the chosen thresholds
    far_target: float
    pairs: int
    folds: int
    interleaved: bool
    xnorm: float = float("nan")  # mean raw embedding norm (model evaluations)
    images: int = 0              # images embedded (model evaluations)
    thresholds: np.ndarray = None  # np.arange(0, 4, 0.01)
    tpr: np.ndarray = None      # mean test-fold TPR / FPR at each threshold
    fpr: np.ndarray = None
    distances: np.ndarray = None  # squared L2 distance of each pair


def _f32(a, what):
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    if a.ndim != 2:
        raise InvalidArgumentError(f"{what} must be 2-D [rows, dim], got shape {list(a.shape)}")
    return a


def _flags(issame, n, what="issame"):
    f = np.ascontiguousarray(np.asarray(issame).reshape(-1).astype(bool).astype(np.uint8))
    if f.size != n:
        raise InvalidArgumentError(f"{what} has {f.size} entries for {n} pairs")
    return f


def _params(folds, interleaved, far, flip=True, pair_naming=None, landmark_source=None):
    p = L.default_params("verify")
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)):
        raise InvalidArgumentError(f"folds must be an integer, got {folds!r}")
    p.folds = int(folds)
    p.interleaved = 1 if interleaved else 0
    p.flip = 1 if flip else 0
    p.far_target = float(far)
    keep = []
    if pair_naming is not None:
        keep.append(L.encode(pair_naming, "pair_naming"))
        p.pair_naming = keep[-1]
    if landmark_source is not None:
        keep.append(L.encode(landmark_source, "landmark_source"))
        p.landmark_source = keep[-1]
    return p, keep


def _result(r, interleaved):
    k = int(r.folds)
    return VerifyResult(accuracy=r.accuracy_mean, accuracy_std=r.accuracy_std,
                        fold_accuracy=np.array(r.fold_accuracy[:k]), fold_thresholds=np.array(r.fold_threshold[:k]),
                        best_threshold=r.best_threshold, best_accuracy=r.best_accuracy, val=r.val_mean,
                        val_std=r.val_std, far=r.far_mean, far_target=r.far_target, pairs=int(r.pairs), folds=k,
                        interleaved=bool(interleaved), xnorm=r.xnorm, images=int(r.images))


def _dptr(a):
    return a.ctypes.data_as(L.f64_p)


def pair_distances(emb1, emb2=None):
    """Squared L2 distances after float64 L2-normalisation of every row: pairs (emb1[i],
    emb2[i]), or with emb2 None rows 2i and 2i+1 of emb1. float64 [pairs]."""
    e1 = _f32(emb1, "emb1")
    if emb2 is None:
        if e1.shape[0] % 2:
            raise InvalidArgumentError(f"interleaved embeddings need an even number of rows, got {e1.shape[0]}")
        pairs, e2p = e1.shape[0] // 2, None
    else:
        e2 = _f32(emb2, "emb2")
        if e2.shape != e1.shape:
            raise InvalidArgumentError(f"emb1 {list(e1.shape)} and emb2 {list(e2.shape)} differ in shape")
        pairs, e2p = e1.shape[0], e2.ctypes.data_as(L.float_p)
    out = np.empty(max(pairs, 1), dtype=np.float64)
    check(L.lib().transface_pair_distances(e1.ctypes.data_as(L.float_p), e2p, pairs, e1.shape[1], _dptr(out)))
    return out[:pairs]


def verify_distances(distances, issame, folds=10, interleaved=False, far=1e-3):
    """The protocol on precomputed squared distances (float64), with the ROC arrays."""
    d = np.ascontiguousarray(np.asarray(distances, dtype=np.float64).reshape(-1))
    f = _flags(issame, d.size)
    p, _keep = _params(folds, interleaved, far)
    lib = L.lib()
    r = L.new_struct(L.transface_verify_result)
    check(lib.transface_verify_distances(_dptr(d), f.ctypes.data_as(L.u8_p), d.size, byref(p), byref(r)))
    out = _result(r, interleaved)
    n = L.TRANSFACE_VERIFY_THRESHOLDS
    th, tpr, fpr = np.empty(n), np.empty(n), np.empty(n)
    check(lib.transface_verify_roc(_dptr(d), f.ctypes.data_as(L.u8_p), d.size, byref(p), _dptr(th), _dptr(tpr),
                                   _dptr(fpr), n))
    out.thresholds, out.tpr, out.fpr, out.distances = th, tpr, fpr, d
    return out


def verify(emb1, emb2=None, issame=None, folds=10, interleaved=False, far=1e-3):
    """insightface's verification protocol on embeddings (flip-summing, if wanted, is done
    before): emb1, emb2 [pairs, dim], or emb2 None and emb1 [2 * pairs, dim] with pair i in
    rows 2i, 2i+1. interleaved=True puts pair i in fold i % folds (for class-sorted files such
    as LFW pairsDevTest). Returns a VerifyResult."""
    if issame is None:
        raise InvalidArgumentError("verify needs issame")
    return verify_distances(pair_distances(emb1, emb2), issame, folds=folds, interleaved=interleaved, far=far)


def _scores(scores, labels):
    s = np.ascontiguousarray(np.asarray(scores, dtype=np.float64).reshape(-1))
    return s, _flags(labels, s.size, "labels")


def roc_curve(scores, labels):
    """(fpr, tpr, thresholds) as sklearn.metrics.roc_curve (drop_intermediate=True, first
    threshold +inf); accept iff score >= threshold."""
    s, y = _scores(scores, labels)
    lib = L.lib()
    n = c_size_t()
    check(lib.transface_roc_curve(_dptr(s), y.ctypes.data_as(L.u8_p), s.size, None, None, None, 0, byref(n)))
    fpr, tpr, th = np.empty(n.value), np.empty(n.value), np.empty(n.value)
    check(lib.transface_roc_curve(_dptr(s), y.ctypes.data_as(L.u8_p), s.size, _dptr(fpr), _dptr(tpr), _dptr(th),
                                  n.value, byref(n)))
    return fpr, tpr, th


def tar_at_far(scores, labels, fars=STANDARD_FARS, return_thresholds=False):
    """TAR at each target FAR, insightface's IJB convention: the ROC point whose FPR is
    closest to the target (ties: the largest TPR). With return_thresholds, also each point's
    score threshold."""
    s, y = _scores(scores, labels)
    f = np.ascontiguousarray(np.asarray(fars, dtype=np.float64).reshape(-1))
    tar, th = np.empty(f.size), np.empty(f.size)
    check(L.lib().transface_tar_at_far(_dptr(s), y.ctypes.data_as(L.u8_p), s.size, _dptr(f), f.size, _dptr(tar),
                                       _dptr(th)))
    return (tar, th) if return_thresholds else tar


def _evaluate_bin(self, path, folds=10, interleaved=False, far=1e-3, flip=True, threads=1, max_batch=8):
    """Verification accuracy of this model on an insightface .bin set (aligned faces of the
    model's input size), flip-sum TTA as the official test: a VerifyResult (with xnorm)."""
    p, _keep = _params(folds, interleaved, far, flip)

    def run(ctx):
        r = L.new_struct(L.transface_verify_result)
        check(L.lib().transface_evaluate_bin(ctx._handle(), L.encode_path(path), byref(p), byref(r)))
        return _result(r, interleaved)
    return self._run(threads, max_batch, run)


def _evaluate_pairs(self, pairs, image_root, landmarks=None, folds=10, interleaved=False, far=1e-3, flip=True,
                    landmark_source=None, pair_naming=None, threads=1, max_batch=8):
    """Verification accuracy on a pairs list (TSV with path1/path2/same, or LFW pairs.txt)
    with images under image_root, aligned with a landmark TSV when given."""
    p, _keep = _params(folds, interleaved, far, flip, pair_naming, landmark_source)

    def run(ctx):
        r = L.new_struct(L.transface_verify_result)
        check(L.lib().transface_evaluate_pairs(ctx._handle(), L.encode_path(pairs, "pairs"),
                                               L.encode_path(image_root, "image_root"),
                                               None if landmarks is None else L.encode_path(landmarks, "landmarks"),
                                               byref(p), byref(r)))
        return _result(r, interleaved)
    return self._run(threads, max_batch, run)


@dataclasses.dataclass
class IJBResult:
    """IJB-B/C 1:1 results of a model (insightface's eval_ijbc.py protocol)."""
    dataset: str                # "IJBB" or "IJBC"
    fars: np.ndarray            # target FARs
    tar: np.ndarray             # TAR at each (the ROC point whose FPR is closest to the target)
    thresholds: np.ndarray      # score threshold of each chosen point (inf for the (0, 0) point)
    auc: float                  # area under the ROC
    images: int
    templates: int
    pairs: int
    genuine_pairs: int
    impostor_pairs: int
    roc_points: int
    flip: bool                  # F1
    norm_score: bool            # N1
    detector_score: bool        # D1

    @property
    def method(self):
        """insightface's flag naming, e.g. "F1N0D0"."""
        return f"F{int(self.flip)}N{int(self.norm_score)}D{int(self.detector_score)}"

    def as_dict(self):
        return dataclasses.asdict(self)


def _evaluate_ijb(self, path, dataset=None, fars=STANDARD_FARS, flip=True, norm_score=False, detector_score=False,
                  threads=1, max_batch=8, image_dir=None):
    """IJB-B/C 1:1 verification of this model on an IJB_release folder (path/loose_crop,
    path/meta/<ijbb|ijbc>_*.txt), as insightface's eval_ijbc.py: per-image embeddings (F1
    flip-sum, N1 keep norms, D1 faceness weighting), per-media mean summed per template,
    cosine of template pairs, TAR at the FPR closest to each target. dataset: "IJBB", "IJBC" or
    None (detected from the meta files); image_dir overrides path/loose_crop. An IJBResult."""
    lib = L.lib()
    p = L.default_params("ijb")
    p.flip = 1 if flip else 0
    p.use_norm_score = 1 if norm_score else 0
    p.use_detector_score = 1 if detector_score else 0
    keep = []
    if image_dir is not None:
        keep.append(L.encode_path(image_dir, "image_dir"))
        p.image_dir = keep[-1]
    f = np.ascontiguousarray(np.asarray(fars, dtype=np.float64).reshape(-1))
    if f.size == 0:
        raise InvalidArgumentError("fars is empty")
    ds = None if dataset is None else L.encode(dataset, "dataset")
    root = L.encode_path(path, "path")

    def run(ctx):
        tar, th = np.empty(f.size), np.empty(f.size)
        s = L.new_struct(L.transface_ijb_summary)
        check(lib.transface_evaluate_ijb(ctx._handle(), root, ds, byref(p), _dptr(f), f.size, _dptr(tar), _dptr(th),
                                         f.size, byref(s)))
        return IJBResult(dataset=s.dataset.decode(), fars=f.copy(), tar=tar, thresholds=th, auc=s.auc,
                         images=int(s.images), templates=int(s.templates), pairs=int(s.pairs),
                         genuine_pairs=int(s.genuine_pairs), impostor_pairs=int(s.impostor_pairs),
                         roc_points=int(s.roc_points), flip=bool(flip), norm_score=bool(norm_score),
                         detector_score=bool(detector_score))
    return self._run(threads, max_batch, run)


# Model's evaluation methods live here, next to the rest of the evaluation API.
Model.evaluate_bin = _evaluate_bin
Model.evaluate_pairs = _evaluate_pairs
Model.evaluate_ijb = _evaluate_ijb
