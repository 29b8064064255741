//! Datasets and evaluation from Rust: the verification fixture bit for bit, ROC / TAR@FAR,
//! `.bin` round trips and RecordIO packing.

use std::path::PathBuf;

use transface::{
    pair_distances, roc_curve, tar_at_far, verify_distances, verify_embeddings, verify_roc, PackParams, RecordIO, RecordIOLayout, Status,
    VerificationBin, VerifyParams,
};

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The data of a little-endian .npy file (format 1.0).
fn npy(name: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(shared().join("reference/verification/ver").join(format!("{name}.npy"))).ok()?;
    let header = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    Some(bytes[header..].to_vec())
}

fn f64s(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("transface-rust-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn verification_fixture_bit_for_bit() {
    let (Some(dist), Some(same), Some(emb)) = (npy("dist"), npy("issame"), npy("embeddings")) else {
        eprintln!("SKIP: no reference data under {}", shared().display());
        return;
    };
    let dist = f64s(&dist);
    let issame: Vec<bool> = same.iter().map(|&b| b != 0).collect();
    let r = verify_distances(&dist, &issame, &VerifyParams::default()).unwrap();
    assert_eq!(r.accuracy_mean.to_bits(), f64s(&npy("accuracy_mean").unwrap())[0].to_bits());
    assert_eq!(r.accuracy_std.to_bits(), f64s(&npy("accuracy_std").unwrap())[0].to_bits());
    assert_eq!(r.fold_accuracy, f64s(&npy("fold_accuracy").unwrap()));
    assert_eq!(r.fold_threshold, f64s(&npy("best_threshold").unwrap()));
    assert!(r.xnorm.is_nan() && r.images == 0);
    let roc = verify_roc(&dist, &issame, &VerifyParams::default()).unwrap();
    assert_eq!(roc.tpr, f64s(&npy("tpr").unwrap()));
    assert_eq!(roc.fpr, f64s(&npy("fpr").unwrap()));
    assert_eq!(roc.thresholds, f64s(&npy("thresholds").unwrap()));

    let e32: Vec<f32> = f64s(&emb).iter().map(|&v| v as f32).collect();
    let d32 = pair_distances(&e32, None, 32).unwrap();
    assert!(d32.iter().zip(&dist).all(|(a, b)| (a - b).abs() < 1e-6));
    let r32 = verify_embeddings(&e32, None, &issame, 32, &VerifyParams::default()).unwrap();
    assert_eq!(r32.fold_accuracy, r.fold_accuracy);

    let interleaved = VerifyParams { interleaved: true, ..VerifyParams::default() };
    assert!(verify_distances(&dist, &issame, &interleaved).unwrap().accuracy_mean > 0.95);
    let e = verify_distances(&dist[..5], &issame[..5], &VerifyParams::default()).unwrap_err();
    assert_eq!(e.status, Status::InvalidArgument);
    assert!(verify_distances(&dist, &issame[..3], &VerifyParams::default()).is_err());
}

#[test]
fn roc_and_tar_at_far() {
    let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
    let labels = [true, false, true, false, true, false];
    let roc = roc_curve(&scores, &labels).unwrap();
    assert_eq!(roc.fpr.len(), 7);
    assert!(roc.thresholds[0].is_infinite());
    let (tar, th) = tar_at_far(&scores, &labels, &[0.0, 0.3, 1.0]).unwrap();
    assert_eq!(tar, vec![1.0 / 3.0, 2.0 / 3.0, 1.0]);
    assert_eq!(th[1], 0.7);
}

#[test]
fn bin_round_trip_and_recordio() {
    let dir = temp_dir("data");
    let bin = VerificationBin {
        images: vec![vec![0xff, 0xd8, 1, 2], vec![], vec![7; 300], vec![9]],
        issame: vec![true, false],
    };
    for protocol in [2, 4, 5] {
        let path = dir.join(format!("p{protocol}.bin"));
        bin.write(&path, protocol).unwrap();
        assert_eq!(VerificationBin::read(&path).unwrap(), bin);
    }
    std::fs::write(dir.join("evil.bin"), b"\x80\x02cos\nsystem\nU\x04echo\x85R.").unwrap();
    assert_eq!(VerificationBin::read(dir.join("evil.bin")).unwrap_err().status, Status::Format);

    let faces = dir.join("faces");
    for (who, n) in [("ann", 2), ("bo", 3)] {
        std::fs::create_dir_all(faces.join(who)).unwrap();
        for k in 0..n {
            std::fs::write(faces.join(who).join(format!("{k}.jpg")), format!("{who}{k}")).unwrap();
        }
    }
    for layout in [RecordIOLayout::Flat, RecordIOLayout::Legacy] {
        let out = dir.join(format!("{layout:?}"));
        assert_eq!(RecordIO::pack(&faces, None, &out, layout).unwrap(), 5);
        let rec = RecordIO::open(&out).unwrap();
        assert_eq!((rec.len(), rec.num_classes()), (5, Some(2)));
        assert_eq!(rec.read(3).unwrap(), (1, b"bo1".to_vec()));
        assert_eq!(rec.read(5).unwrap_err().status, Status::InvalidArgument);
    }
    // Every pack option: the image size goes to `property`.
    let d = PackParams::default();
    assert_eq!((d.layout, d.image_width, d.image_height, d.jpeg_quality), (RecordIOLayout::Flat, 112, 112, 0));
    let out = dir.join("sized");
    let params = PackParams { image_width: 96, image_height: 80, ..d };
    assert_eq!(RecordIO::pack_with(&faces, None, &out, &params).unwrap(), 5);
    let property = std::fs::read_to_string(out.join("property")).unwrap();
    assert!(property.contains("96") && property.contains("80"), "property: {property}");
    assert_eq!(RecordIO::open(&out).unwrap().read(3).unwrap(), (1, b"bo1".to_vec()));
    let e = RecordIO::pack_with(&faces, None, dir.join("bad"), &PackParams { jpeg_quality: 101, ..d }).unwrap_err();
    assert_eq!(e.status, Status::InvalidArgument, "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
