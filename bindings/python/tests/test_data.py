"""Datasets from Python: RecordIO against an independent reader/writer of dmlc-core's format
written here, .bin sets against Python's own pickle module."""

import os
import pickle
import struct

import numpy as np
import pytest

import transface
from conftest import SHARED

MAGIC = 0xCED7230A
LFW = SHARED / "data" / "lfw"


# ------------------------------------------------------------------ dmlc-core RecordIO in Python

def dmlc_write_record(f, buf):
    """RecordIOWriter::WriteRecord: split where the magic word sits at a 4-byte-aligned offset."""
    magic = struct.pack("<I", MAGIC)
    n = len(buf)
    dptr = 0
    for i in range(0, n - n % 4, 4):
        if buf[i:i + 4] == magic:
            f.write(magic + struct.pack("<I", ((1 if dptr == 0 else 2) << 29) | (i - dptr)) + buf[dptr:i])
            dptr = i + 4
    f.write(magic + struct.pack("<I", ((3 if dptr else 0) << 29) | (n - dptr)) + buf[dptr:])
    f.write(b"\0" * ((4 - n % 4) % 4))


def dmlc_read_record(f):
    """RecordIOReader::NextRecord."""
    out = b""
    while True:
        head = f.read(8)
        if not head:
            return None
        magic, lrec = struct.unpack("<II", head)
        assert magic == MAGIC
        cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
        out += f.read((length + 3) // 4 * 4)[:length]
        if cflag in (0, 3):
            return out
        out += struct.pack("<I", MAGIC)


def ir_pack(label, rid, img, labels=None):
    """mxnet.recordio.pack(IRHeader(flag, label, id, 0), img)."""
    if labels is None:
        return struct.pack("IfQQ", 0, label, rid, 0) + img
    return struct.pack("IfQQ", len(labels), 0, rid, 0) + np.asarray(labels, np.float32).tobytes() + img


def ir_unpack(s):
    flag, label, rid, rid2 = struct.unpack("IfQQ", s[:24])
    s = s[24:]
    if flag > 0:
        label = np.frombuffer(s, np.float32, flag)
        s = s[flag * 4:]
    return flag, label, rid, s


def images(n):
    out = []
    for i in range(n):
        b = b"\xff\xd8\xff\xe0" + ("img%03d" % i).encode() + b"\x00" * 2
        if i % 2 == 0:  # a magic word at an aligned offset of the payload (24-byte header + 12)
            b += struct.pack("<I", MAGIC) + bytes([i, 1, 2])
        out.append(b)
    return out


def test_pack_folder_and_read_with_the_python_reader(tmp_path):
    src = tmp_path / "faces"
    imgs = images(9)
    for i, b in enumerate(imgs):
        d = src / f"person{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:02d}.jpg").write_bytes(b)
    assert transface.RecordIO.pack(src, tmp_path / "flat") == 9
    assert transface.RecordIO.pack(src, tmp_path / "legacy", layout="legacy") == 9
    for layout in ("flat", "legacy"):
        out = tmp_path / layout
        assert (out / "property").read_text() == "3,112,112\n9\n"
        # read with the Python implementation of dmlc-core + mxnet.recordio
        idx = {}
        for line in (out / "train.idx").read_text().splitlines():
            k, off = line.split("\t")
            idx[int(k)] = int(off)
        records = {}
        with open(out / "train.rec", "rb") as f:
            for k, off in idx.items():
                f.seek(off)
                records[k] = ir_unpack(dmlc_read_record(f))
        got = {}
        if layout == "legacy":
            flag, lab, _, _ = records[0]
            assert flag == 2 and list(lab) == [10, 13]
            ranges = [tuple(int(x) for x in records[k][1]) for k in range(10, 13)]
            assert ranges == [(1, 4), (4, 7), (7, 10)]
            keys = range(1, 10)
        else:
            keys = range(9)
        for k in keys:
            flag, lab, rid, img = records[k]
            assert flag == 0 and rid == k
            got[img] = int(lab)
        for i, b in enumerate(imgs):
            assert got[b] == i % 3
        # and with the binding
        with transface.RecordIO(out) as rec:
            assert len(rec) == 9 and rec.num_classes == 3
            assert sorted(rec.labels().tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
            assert {img: lab for lab, img in rec} == got
            assert rec[-1] == rec[8]
            with pytest.raises(IndexError):
                rec.read(9)


def test_read_a_python_written_rec(tmp_path):
    """A legacy MS1MV2-style set written by the Python writer (header record, images with
    several float labels, identity records) read through the binding."""
    imgs = images(6)
    with open(tmp_path / "train.rec", "wb") as f, open(tmp_path / "train.idx", "w") as fi:
        def put(k, buf):
            fi.write("%d\t%d\n" % (k, f.tell()))
            dmlc_write_record(f, buf)
        put(0, ir_pack(0, 0, b"", labels=[7, 9]))
        for k, b in enumerate(imgs, start=1):
            put(k, ir_pack(0, k, b, labels=[k % 2, 0.5]) if k % 3 == 0 else ir_pack(float(k % 2), k, b))
        put(7, ir_pack(0, 7, b"", labels=[1, 4]))
        put(8, ir_pack(0, 8, b"", labels=[4, 7]))
    with transface.RecordIO(tmp_path / "train.rec") as rec:
        assert len(rec) == 6 and rec.num_classes == 2
        assert [rec[i] for i in range(6)] == [((k % 2), b) for k, b in enumerate(imgs, start=1)]


def test_list_files_stay_under_their_root(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0 x")
    (tmp_path / "list.tsv").write_text("path\tlabel\na/x.jpg\t0\n")
    assert transface.RecordIO.pack(tmp_path / "list.tsv", tmp_path / "out") == 1
    for bad in ("../list.tsv\t0\n", "/etc/hostname\t0\n"):
        (tmp_path / "bad.tsv").write_text(bad)
        with pytest.raises(transface.FormatError, match="root|absolute"):
            transface.RecordIO.pack(tmp_path / "bad.tsv", tmp_path / "out2", root=tmp_path / "a")
    with pytest.raises(transface.InvalidArgumentError):
        transface.RecordIO.pack(tmp_path / "list.tsv", tmp_path / "out3", layout="shuffled")


def test_pack_reencodes_non_jpeg(tmp_path):
    orl = SHARED / "data" / "orl_faces"
    if not orl.exists():
        pytest.skip("no ORL data")
    (tmp_path / "list.tsv").write_text("s1/1.pgm\t0\ns2/1.pgm\t1\n")
    assert transface.RecordIO.pack(tmp_path / "list.tsv", tmp_path / "raw", root=orl) == 2
    assert transface.RecordIO.pack(tmp_path / "list.tsv", tmp_path / "jpg", root=orl, jpeg_quality=95) == 2
    with transface.RecordIO(tmp_path / "raw") as raw, transface.RecordIO(tmp_path / "jpg") as jpg:
        assert raw[0][1] == (orl / "s1" / "1.pgm").read_bytes()
        label, data = jpg[1]
        assert label == 1 and data[:3] == b"\xff\xd8\xff"
        a = transface.decode_image(raw[1][1]).astype(int)
        b = transface.decode_image(data).astype(int)
        assert a.shape == b.shape == (112, 92, 3) and np.abs(a - b).mean() < 2
    with pytest.raises(transface.InvalidArgumentError):
        transface.RecordIO.pack(tmp_path / "list.tsv", tmp_path / "bad", root=orl, jpeg_quality=101)


def test_lfw_train_list_packs_and_reads(tmp_path):
    if not LFW.exists():
        pytest.skip("no LFW data")
    lines = (LFW / "splits" / "train.tsv").read_text().splitlines()[:31]
    (tmp_path / "train.tsv").write_text("\n".join(lines) + "\n")
    assert transface.RecordIO.pack(tmp_path / "train.tsv", tmp_path / "rec", root=LFW) == 30
    with transface.RecordIO(tmp_path / "rec") as rec:
        label, jpeg = rec[5]
        path, lab, _ = lines[6].split("\t")
        assert label == int(lab) and jpeg == (LFW / path).read_bytes()
        assert transface.decode_image(jpeg).shape == (250, 250, 3)


# ------------------------------------------------------------------ .bin and Python's pickle

def bin_data(pairs=40):
    rng = np.random.default_rng(2)
    bins = [bytes(rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8)) for _ in range(2 * pairs)]
    return bins, [bool(x) for x in rng.integers(0, 2, pairs)]


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_write_bin_is_what_pickle_writes(tmp_path, protocol):
    bins, issame = bin_data()
    transface.write_bin(tmp_path / "x.bin", bins, issame, protocol=protocol)
    raw = (tmp_path / "x.bin").read_bytes()
    assert pickle.loads(raw) == (bins, issame)
    assert raw == pickle.dumps((bins, issame), protocol=protocol)


def test_protocol_2_is_python_2_str(tmp_path):
    bins, issame = bin_data()
    bins[0] = b"\xff\xd8 not ascii"
    transface.write_bin(tmp_path / "py2.bin", bins, issame, protocol=2)
    raw = (tmp_path / "py2.bin").read_bytes()
    with pytest.raises(UnicodeDecodeError):  # what verification.py catches before retrying
        pickle.loads(raw)
    assert pickle.loads(raw, encoding="bytes") == (bins, issame)
    assert transface.read_bin(tmp_path / "py2.bin") == (bins, issame)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_read_bin_reads_pickle_files(tmp_path, protocol):
    bins, issame = bin_data()
    with open(tmp_path / "b.bin", "wb") as f:
        pickle.dump((bins, issame), f, protocol=protocol)
    assert transface.read_bin(tmp_path / "b.bin") == (bins, issame)
    # build_eval_pack stores numpy uint8 arrays (cv2.imencode results)
    arrays = [np.frombuffer(b, np.uint8).reshape(-1, 1).copy() for b in bins]
    with open(tmp_path / "n.bin", "wb") as f:
        pickle.dump((arrays, issame), f, protocol=protocol)
    assert transface.read_bin(tmp_path / "n.bin") == (bins, issame)


def test_read_bin_never_executes(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for protocol in (2, 4):
        (tmp_path / "evil.bin").write_bytes(pickle.dumps(([Evil(), b"x"], [True]), protocol=protocol))
        with pytest.raises(transface.FormatError, match="system"):
            transface.read_bin(tmp_path / "evil.bin")
    assert not marker.exists()
    (tmp_path / "short.bin").write_bytes(pickle.dumps(([b"a", b"b"], [True]), protocol=4)[:-3])
    with pytest.raises(transface.FormatError):
        transface.read_bin(tmp_path / "short.bin")
    with pytest.raises(transface.InvalidArgumentError):
        transface.write_bin(tmp_path / "w.bin", [b"a"], [True])


def test_devtest_bin_round_trip(tmp_path):
    if not LFW.exists():
        pytest.skip("no LFW data")
    rows = [r.split("\t") for r in (LFW / "splits" / "devtest_pairs.tsv").read_text().splitlines()[1:]]
    bins = [(LFW / p).read_bytes() for r in rows for p in (r[1], r[2])]  # lfw2pack: files verbatim
    issame = [r[3] == "1" for r in rows]
    transface.write_bin(tmp_path / "lfw_devtest.bin", bins, issame)
    with open(tmp_path / "lfw_devtest.bin", "rb") as f:
        assert pickle.load(f) == (bins, issame)
    assert transface.read_bin(tmp_path / "lfw_devtest.bin") == (bins, issame)
