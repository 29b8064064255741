"""Evaluation from Python: the official verification protocol (reference fixture, bit for bit),
a NumPy re-implementation of verification.py / sklearn's roc_curve / eval_ijbc's TAR@FAR, and
Model.evaluate_bin / evaluate_pairs against the same pipeline written with the binding."""

import numpy as np
import pytest

import transface
from conftest import SHARED

VER = SHARED / "reference" / "verification" / "ver"
LFW = SHARED / "data" / "lfw"


def needs(path):
    if not path.exists():
        pytest.skip(f"reference data not found at {path}")


# ------------------------------------------------------------------ verification.py in NumPy

def kfold(n, k, interleaved):
    if interleaved:
        return [np.arange(n)[np.arange(n) % k == f] for f in range(k)]
    sizes = np.full(k, n // k)
    sizes[:n % k] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return [np.arange(starts[f], starts[f + 1]) for f in range(k)]


def calculate_accuracy(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    tp = np.sum(np.logical_and(predict_issame, actual_issame))
    fp = np.sum(np.logical_and(predict_issame, np.logical_not(actual_issame)))
    tn = np.sum(np.logical_and(np.logical_not(predict_issame), np.logical_not(actual_issame)))
    fn = np.sum(np.logical_and(np.logical_not(predict_issame), actual_issame))
    tpr = 0 if (tp + fn == 0) else float(tp) / float(tp + fn)
    fpr = 0 if (fp + tn == 0) else float(fp) / float(fp + tn)
    return tpr, fpr, float(tp + tn) / dist.size


def calculate_val_far(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    true_accept = np.sum(np.logical_and(predict_issame, actual_issame))
    false_accept = np.sum(np.logical_and(predict_issame, np.logical_not(actual_issame)))
    return float(true_accept) / float(np.sum(actual_issame)), float(false_accept) / float(np.sum(np.logical_not(actual_issame)))


def official(dist, issame, k=10, interleaved=False, far_target=1e-3):
    """calculate_roc + calculate_val of verification.py (np.interp for interp1d 'slinear',
    which newer SciPy refuses on the duplicate FARs)."""
    issame = np.asarray(issame)
    thresholds = np.arange(0, 4, 0.01)
    n = len(dist)
    folds = kfold(n, k, interleaved)
    tprs, fprs = np.zeros((k, len(thresholds))), np.zeros((k, len(thresholds)))
    acc, best = np.zeros(k), np.zeros(k)
    val, far = np.zeros(k), np.zeros(k)
    vth = np.arange(0, 4, 0.001)
    for f, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n), test)
        acc_train = np.array([calculate_accuracy(t, dist[train], issame[train])[2] for t in thresholds])
        b = np.argmax(acc_train)
        for i, t in enumerate(thresholds):
            tprs[f, i], fprs[f, i], _ = calculate_accuracy(t, dist[test], issame[test])
        acc[f] = calculate_accuracy(thresholds[b], dist[test], issame[test])[2]
        best[f] = thresholds[b]
        if issame[test].all() or not issame[test].any() or issame[train].all():
            val[f] = far[f] = np.nan  # the official code divides by zero here
            continue
        far_train = np.array([calculate_val_far(t, dist[train], issame[train])[1] for t in vth])
        th = np.interp(far_target, far_train, vth) if np.max(far_train) >= far_target else 0.0
        val[f], far[f] = calculate_val_far(th, dist[test], issame[test])
    return dict(tpr=np.mean(tprs, 0), fpr=np.mean(fprs, 0), acc=acc, best=best, mean=np.mean(acc), std=np.std(acc),
                val=np.mean(val), val_std=np.std(val), far=np.mean(far))


def test_reference_fixture_bit_exact():
    needs(VER)
    dist, issame = np.load(VER / "dist.npy"), np.load(VER / "issame.npy")
    r = transface.verify_distances(dist, issame)
    assert r.accuracy == float(np.load(VER / "accuracy_mean.npy")[0])
    assert r.accuracy_std == float(np.load(VER / "accuracy_std.npy")[0])
    assert np.array_equal(r.fold_accuracy, np.load(VER / "fold_accuracy.npy"))
    assert np.array_equal(r.fold_thresholds, np.load(VER / "best_threshold.npy"))
    assert np.array_equal(r.thresholds, np.load(VER / "thresholds.npy"))
    assert np.array_equal(r.tpr, np.load(VER / "tpr.npy"))
    assert np.array_equal(r.fpr, np.load(VER / "fpr.npy"))
    print(f"fixture: accuracy {r.accuracy!r} ± {r.accuracy_std!r}, VAL@1e-3 {r.val:.4f}, FAR {r.far:.5f}")
    # from the embeddings (float32 through the ABI): same protocol outputs
    emb = np.load(VER / "embeddings.npy")
    d32 = transface.pair_distances(emb)
    assert np.abs(d32 - dist).max() < 1e-6
    r2 = transface.verify(emb, None, issame)
    assert np.array_equal(r2.fold_accuracy, r.fold_accuracy)
    assert np.array_equal(r2.tpr, r.tpr) and np.array_equal(r2.fpr, r.fpr)
    # and equal to verification.py in NumPy, VAL included
    o = official(dist, issame)
    assert np.array_equal(o["tpr"], r.tpr) and o["mean"] == r.accuracy and o["std"] == r.accuracy_std
    assert r.val == pytest.approx(o["val"], abs=1e-12) and r.far == pytest.approx(o["far"], abs=1e-12)


@pytest.mark.parametrize("interleaved", [False, True])
def test_matches_numpy_reimplementation(interleaved):
    rng = np.random.default_rng(4)
    n = 437  # uneven folds
    issame = np.arange(n) < 230  # class-sorted, like pairsDevTest
    dist = np.where(issame, rng.uniform(0.5, 1.7, n), rng.uniform(1.1, 2.6, n))
    r = transface.verify_distances(dist, issame, interleaved=interleaved)
    o = official(dist, issame, interleaved=interleaved)
    assert np.array_equal(r.fold_accuracy, o["acc"])
    assert np.array_equal(r.fold_thresholds, o["best"])
    assert np.array_equal(r.tpr, o["tpr"]) and np.array_equal(r.fpr, o["fpr"])
    assert r.accuracy == o["mean"] and r.accuracy_std == o["std"]
    if interleaved:
        assert r.val == pytest.approx(o["val"], abs=1e-12)
        assert r.far == pytest.approx(o["far"], abs=1e-12)


def test_verify_arguments():
    e = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    r = transface.verify(e[:20], e[20:], np.arange(20) % 2 == 0, folds=5)
    assert r.folds == 5 and r.pairs == 20 and len(r.fold_accuracy) == 5
    with pytest.raises(transface.InvalidArgumentError):
        transface.verify(e[:20], e[20:], [True] * 3)
    with pytest.raises(transface.InvalidArgumentError):
        transface.verify(e[:20], e[20:30], [True] * 20)
    with pytest.raises(transface.InvalidArgumentError, match="folds"):
        transface.verify(e[:4], None, [True, False], folds=10)
    bad = e.copy()
    bad[3] = 0
    with pytest.raises(transface.NumericError):
        transface.verify(bad, None, [True] * 20)


# ------------------------------------------------------------------ ROC and TAR@FAR

def sk_roc_curve(y_true, y_score):
    """sklearn.metrics.roc_curve (drop_intermediate=True), written out."""
    desc = np.argsort(y_score, kind="mergesort")[::-1]
    y_score, y_true = y_score[desc], y_true[desc]
    distinct = np.where(np.diff(y_score))[0]
    idx = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true)[idx]
    fps = 1 + idx - tps
    thresholds = y_score[idx]
    if len(fps) > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    tps, fps = np.r_[0, tps], np.r_[0, fps]
    return fps / fps[-1], tps / tps[-1], np.r_[np.inf, thresholds]


def eval_ijbc_tar(fpr, tpr, x_labels):
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    out = []
    for x in x_labels:
        _, min_index = min(list(zip(abs(fpr - x), range(len(fpr)))))
        out.append(tpr[min_index])
    return np.array(out)


def test_roc_and_tar_at_far_match_the_official_code():
    rng = np.random.default_rng(1)
    n = 20000
    labels = rng.random(n) < 0.1
    scores = np.round(np.where(labels, rng.normal(0.6, 0.15, n), rng.normal(0.1, 0.1, n)), 3)  # ties
    fpr, tpr, th = transface.roc_curve(scores, labels)
    rf, rt, rth = sk_roc_curve(labels.astype(np.int64), scores)
    assert np.array_equal(fpr, rf) and np.array_equal(tpr, rt) and np.array_equal(th, rth)
    fars = list(transface.STANDARD_FARS)
    tar, thr = transface.tar_at_far(scores, labels, fars, return_thresholds=True)
    assert np.array_equal(tar, eval_ijbc_tar(rf, rt, fars))
    # each threshold gives its TAR when counted directly
    for t, x in zip(tar, thr):
        assert np.mean(scores[labels] >= x) == t


# ------------------------------------------------------------------ model evaluation

def pnm(rgb):
    h, w, _ = rgb.shape
    return b"P6\n%d %d\n255\n" % (w, h) + np.ascontiguousarray(rgb).tobytes()


def devtest_pairs(n_same=12, n_diff=12):
    rows = (LFW / "splits" / "devtest_pairs.tsv").read_text().splitlines()[1:]
    rows = [r.split("\t") for r in rows]
    return rows[:n_same] + rows[500:500 + n_diff]


def landmarks_table():
    table = {}
    for line in (LFW / "landmarks" / "included_5pt.tsv").read_text().splitlines()[1:]:
        f = line.split("\t")
        table.setdefault(f[0], np.array(f[2:], dtype=np.float32))  # first row: mtcnn_sphereface
    return table


def manual(model, faces, flip=True):
    """The official test in Python: raw embeddings of the faces and their mirror images."""
    raw = model.embed(faces, normalize=False)
    mir = model.embed(np.ascontiguousarray(faces[:, :, ::-1]), normalize=False)
    xnorm = np.mean(np.concatenate([np.linalg.norm(raw, axis=1), np.linalg.norm(mir, axis=1)]))
    return (raw + mir if flip else raw), xnorm


def test_model_evaluate_bin_and_pairs(tiny_model, tmp_path):
    needs(LFW)
    rows = devtest_pairs()
    lm = landmarks_table()
    aligned = {}
    for _, p1, p2, _ in rows:
        for p in (p1, p2):
            if p not in aligned:
                img = transface.decode_image(str(LFW / p))
                aligned[p] = transface.align_face(img, lm[p])[0]
    issame = [r[3] == "1" for r in rows]
    faces = np.stack([aligned[p] for r in rows for p in (r[1], r[2])])
    emb, xnorm = manual(tiny_model, faces)

    # .bin of aligned PNM faces
    bins = [pnm(f) for f in faces]
    transface.write_bin(tmp_path / "mini.bin", bins, issame)
    for interleaved in (False, True):
        got = tiny_model.evaluate_bin(tmp_path / "mini.bin", folds=4, interleaved=interleaved)
        want = transface.verify(emb, None, issame, folds=4, interleaved=interleaved)
        assert np.array_equal(got.fold_accuracy, want.fold_accuracy)
        assert got.accuracy == want.accuracy
        assert got.xnorm == pytest.approx(xnorm, rel=1e-6)
        assert got.images == len(bins)
    print(f"tiny model on 24 devtest pairs (.bin, interleaved): accuracy {got.accuracy}, XNorm {got.xnorm:.4f}")

    # pairs list of the original photos, aligned by the library with the landmark table
    (tmp_path / "pairs.tsv").write_text("pair_index\tpath1\tpath2\tsame\n" + "".join("\t".join(r) + "\n" for r in rows))
    got = tiny_model.evaluate_pairs(tmp_path / "pairs.tsv", LFW, landmarks=LFW / "landmarks" / "included_5pt.tsv",
                                    folds=4, interleaved=True)
    want = transface.verify(emb, None, issame, folds=4, interleaved=True)
    assert np.array_equal(got.fold_accuracy, want.fold_accuracy)
    assert got.images == len(aligned)
    # images that are not aligned faces need landmarks
    with pytest.raises(transface.FormatError, match="250x250"):
        tiny_model.evaluate_pairs(tmp_path / "pairs.tsv", LFW, folds=4)
    with pytest.raises(transface.FileError):
        tiny_model.evaluate_bin(tmp_path / "missing.bin")


# ------------------------------------------------------------------ IJB-B / IJB-C 1:1

def png(rgb):
    """An RGB PNG written by hand (filter 0 rows, zlib)."""
    import struct
    import zlib
    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + np.ascontiguousarray(rgb[y]).tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                        [70.7299, 92.2041]])


def make_ijb(root, target="ijbc", n=36, seed=5):
    """A miniature IJB_release folder: n smooth random faces (PNG and PPM) in 9 templates with
    1-3 medias each, landmarks near the ArcFace template, every template pair labelled."""
    rng = np.random.default_rng(seed)
    (root / "loose_crop").mkdir(parents=True)
    (root / "meta").mkdir(exist_ok=True)
    names, templates, medias, lms, faceness, images = [], [], [], [], [], []
    for i in range(n):
        t = 200 + int(rng.integers(0, 9)) * 11  # sparse template ids
        m = 7000 + t * 3 + int(rng.integers(0, 3))
        img = np.kron(rng.integers(0, 256, (16, 16, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 128 x 128
        lm = ARCFACE_112 * rng.uniform(0.9, 1.1) + rng.uniform(0, 16, 2) + rng.normal(0, 1.5, (5, 2))
        name = f"{i + 1}.png" if i % 2 else f"{i + 1}.ppm"
        (root / "loose_crop" / name).write_bytes(png(img) if i % 2 else pnm(img))
        names.append(name); templates.append(t); medias.append(m); images.append(img)
        lms.append(lm.astype(np.float32)); faceness.append(round(float(rng.uniform(0.5, 1.0)), 6))
    ids = sorted(set(templates))
    pairs = [(a, b, int((a + b) // 11 % 3 == 0)) for a in ids for b in ids if a < b]
    (root / "meta" / f"{target}_face_tid_mid.txt").write_text(
        "".join(f"{a} {t} {m}\n" for a, t, m in zip(names, templates, medias)))
    (root / "meta" / f"{target}_name_5pts_score.txt").write_text(
        "".join(a + "".join(f" {v!r}" for v in lm.reshape(-1).tolist()) + f" {s}\n"
                for a, lm, s in zip(names, lms, faceness)))
    (root / "meta" / f"{target}_template_pair_label.txt").write_text("".join(f"{a} {b} {y}\n" for a, b, y in pairs))
    return dict(images=images, landmarks=lms, templates=np.array(templates), medias=np.array(medias),
                faceness=np.array(faceness), pairs=pairs)


def ijb_scores(model, ijb, flip=True, norm_score=False, detector_score=False):
    """eval_ijbc.py written out with NumPy on the model's own embeddings of the aligned crops."""
    crops = np.stack([transface.align_face(transface.decode_image(png(img)), lm)[0]
                      for img, lm in zip(ijb["images"], ijb["landmarks"])])
    raw = model.embed(crops, normalize=False)
    if flip:
        raw = raw + model.embed(np.ascontiguousarray(crops[:, :, ::-1]), normalize=False)
    feats = raw.astype(np.float64)
    if not norm_score:
        feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    if detector_score:
        feats = feats * ijb["faceness"][:, None]
    t, m = ijb["templates"], ijb["medias"]
    tfeat = {}
    for tid in np.unique(t):
        members = np.where(t == tid)[0]
        f = sum(np.mean(feats[members[m[members] == mid]], axis=0) for mid in np.unique(m[members]))
        tfeat[tid] = f / np.linalg.norm(f)
    scores = np.array([tfeat[a] @ tfeat[b] for a, b, _ in ijb["pairs"]])
    return scores, np.array([y for _, _, y in ijb["pairs"]])


@pytest.fixture(scope="module")
def ijb_model():
    with transface.Builder(transface.Config(arch="ijb-test", embed_dim=32, depth=1, num_heads=4, mlp_hidden_dim=64,
                                            embedding_size=16)) as b:
        b.init_weights(3)
        m = b.build()
    yield m
    m.close()


IJB_FARS = (1e-6, 1e-3, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)


def test_model_evaluate_ijb_matches_numpy(ijb_model, tmp_path):
    ijb = make_ijb(tmp_path / "IJBC")
    for flip, norm, det in [(True, False, False), (False, False, False), (True, True, False), (True, False, True)]:
        r = ijb_model.evaluate_ijb(tmp_path / "IJBC", fars=IJB_FARS, flip=flip, norm_score=norm, detector_score=det)
        scores, labels = ijb_scores(ijb_model, ijb, flip, norm, det)
        fpr, tpr, th = sk_roc_curve(labels, scores)
        want = eval_ijbc_tar(fpr, tpr, IJB_FARS)
        assert np.array_equal(r.tar, want), (r.method, r.tar, want)
        # the chosen thresholds are scores of the pairs (within float64 summation-order noise)
        flipped = np.flipud(th)
        idx = [min(zip(abs(np.flipud(fpr) - x), range(len(fpr))))[1] for x in IJB_FARS]
        np.testing.assert_allclose(r.thresholds, flipped[idx], rtol=0, atol=1e-9)
        assert r.auc == pytest.approx(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2), abs=1e-12)
        assert (r.dataset, r.images, r.templates, r.pairs) == ("IJBC", 36, len(np.unique(ijb["templates"])),
                                                               len(ijb["pairs"]))
        assert (r.genuine_pairs, r.impostor_pairs) == (int(labels.sum()), int((1 - labels).sum()))
        assert r.roc_points == len(fpr)
        assert r.method == f"F{int(flip)}N{int(norm)}D{int(det)}"
    print(f"tiny model on a miniature IJB-C ({r.pairs} pairs): TAR {dict(zip(IJB_FARS, r.tar.tolist()))}, AUC {r.auc:.4f}")
    assert 0 < r.genuine_pairs < r.pairs

    # image folder override, explicit dataset, results independent of the batch size
    (tmp_path / "IJBC" / "loose_crop").rename(tmp_path / "faces")
    (tmp_path / "IJBC" / "loose_crop").mkdir()
    moved = ijb_model.evaluate_ijb(tmp_path / "IJBC", "ijbc", fars=IJB_FARS, image_dir=tmp_path / "faces", max_batch=3)
    base = ijb_model.evaluate_ijb(tmp_path / "IJBC", fars=IJB_FARS, image_dir=tmp_path / "faces")
    assert np.array_equal(moved.tar, base.tar) and np.array_equal(moved.thresholds, base.thresholds)
    with pytest.raises(transface.FileError, match="1.ppm"):  # the default folder is now empty
        ijb_model.evaluate_ijb(tmp_path / "IJBC", fars=IJB_FARS)


def test_model_evaluate_ijb_errors(ijb_model, tmp_path):
    root = tmp_path / "IJBB"
    make_ijb(root, target="ijbb", n=12)
    assert ijb_model.evaluate_ijb(root).dataset == "IJBB"   # detected; STANDARD_FARS
    assert ijb_model.evaluate_ijb(root).tar.shape == (len(transface.STANDARD_FARS),)
    with pytest.raises(transface.FileError, match="does not exist"):
        ijb_model.evaluate_ijb(tmp_path / "missing")
    with pytest.raises(transface.FileError, match="ijbc_face_tid_mid.txt"):
        ijb_model.evaluate_ijb(root, "IJBC")
    with pytest.raises(transface.InvalidArgumentError, match="IJBB"):
        ijb_model.evaluate_ijb(root, "IJBX")
    with pytest.raises(transface.InvalidArgumentError, match="FAR"):
        ijb_model.evaluate_ijb(root, fars=[0.1, 2.0])
    with pytest.raises(transface.InvalidArgumentError, match="empty"):
        ijb_model.evaluate_ijb(root, fars=[])
    meta = root / "meta"
    tid = (meta / "ijbb_face_tid_mid.txt").read_text()
    # both datasets present: detection refuses to guess
    (meta / "ijbc_face_tid_mid.txt").write_text(tid)
    with pytest.raises(transface.InvalidArgumentError, match="both"):
        ijb_model.evaluate_ijb(root)
    (meta / "ijbc_face_tid_mid.txt").unlink()
    # malformed meta lines name their file and line
    lines = tid.splitlines()
    (meta / "ijbb_face_tid_mid.txt").write_text("\n".join(lines[:2] + ["3.ppm 5x 7"] + lines[3:]) + "\n")
    with pytest.raises(transface.FormatError, match=r"ijbb_face_tid_mid.txt' line 3"):
        ijb_model.evaluate_ijb(root)
    (meta / "ijbb_face_tid_mid.txt").write_text(tid)
    lm = (meta / "ijbb_name_5pts_score.txt").read_text()
    (meta / "ijbb_name_5pts_score.txt").write_text(lm.replace(lm.splitlines()[1], "2.png 1 2 3"))
    with pytest.raises(transface.FormatError, match=r"ijbb_name_5pts_score.txt' line 2.*12 fields"):
        ijb_model.evaluate_ijb(root)
    (meta / "ijbb_name_5pts_score.txt").write_text(lm)
    pairs = (meta / "ijbb_template_pair_label.txt").read_text()
    (meta / "ijbb_template_pair_label.txt").write_text(pairs + "200 211 2\n")
    with pytest.raises(transface.FormatError, match="template_pair_label.txt' line"):
        ijb_model.evaluate_ijb(root)
    (meta / "ijbb_template_pair_label.txt").write_text(pairs + "200 99999 1\n")
    with pytest.raises(transface.FormatError, match="99999"):
        ijb_model.evaluate_ijb(root)
    (meta / "ijbb_template_pair_label.txt").write_text(pairs)
    # an image that is not an image
    (root / "loose_crop" / "1.ppm").write_bytes(b"not an image")
    with pytest.raises(transface.FormatError):
        ijb_model.evaluate_ijb(root)
