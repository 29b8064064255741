//! IJB-B / IJB-C 1:1 from Rust, as bindings/c/test_ijb.c: a miniature IJB-C folder (PPM faces in
//! loose_crop, the three meta files) evaluated with a small seeded model and checked against
//! the protocol written out here (align, embed with the mirror image, normalise, faceness
//! weighting, per-media mean summed per template, cosine, `tar_at_far`); then the errors.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use common::{expect, TempDir};
use transface::{
    align_face, tar_at_far, Builder, Config, Context, ContextParams, EmbedFlags, IjbParams, ImageRef, PixelFormat, Status,
    STANDARD_FARS,
};

const N: usize = 24; // images
const W: usize = 120; // image side
const SIDE: usize = 112; // model input
const E: usize = 16; // embedding size
const FARS: [f64; 5] = [1e-4, 0.1, 0.25, 0.5, 0.75];
const ARCFACE: [f32; 10] = [38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041];

struct Fixture {
    images: Vec<Vec<u8>>,
    landmarks: Vec<[f32; 10]>,
    faceness: Vec<f64>,
    templates: Vec<u32>,
    medias: Vec<u32>,
    pairs: Vec<(u32, u32, bool)>,
}

/// Writes `<root>/loose_crop/*.ppm` and `<root>/meta/<target>_*.txt`: blocky random images,
/// 6 templates of 1-2 medias, landmarks near the ArcFace template, every template pair labelled.
fn make_ijb(root: &Path, target: &str, n: usize) -> Fixture {
    let mut rng = 88172645463325252u64;
    let mut uniform = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / 9007199254740992.0
    };
    std::fs::create_dir_all(root.join("loose_crop")).unwrap();
    std::fs::create_dir_all(root.join("meta")).unwrap();
    let mut f = Fixture { images: vec![], landmarks: vec![], faceness: vec![], templates: vec![], medias: vec![], pairs: vec![] };
    let (mut tid, mut lmk, mut pairs) = (String::new(), String::new(), String::new());
    for i in 0..n {
        let (scale, dx, dy) = (0.9 + 0.2 * uniform(), 8.0 * uniform(), 8.0 * uniform());
        let t = 10 + 3 * (uniform() * 6.0) as u32;
        let m = 100 * t + (uniform() * 2.0) as u32;
        let face = 0.5 + 0.5 * uniform();
        let image: Vec<u8> = (0..W * W * 3)
            .map(|j| {
                let (x, y) = ((j / 3) % W, (j / 3) / W);
                let h = ((i * 7919 + (y / 10) * 131 + (x / 10) * 31 + j % 3) as u64).wrapping_mul(0x9E3779B97F4A7C15);
                (h >> 56) as u8
            })
            .collect();
        let mut ppm = format!("P6\n{W} {W}\n255\n").into_bytes();
        ppm.extend_from_slice(&image);
        std::fs::write(root.join("loose_crop").join(format!("{}.ppm", i + 1)), ppm).unwrap();
        let mut lm = [0f32; 10];
        for (j, v) in lm.iter_mut().enumerate() {
            *v = (ARCFACE[j] as f64 * scale + if j % 2 == 1 { dy } else { dx } + (uniform() - 0.5) * 3.0) as f32;
        }
        writeln!(tid, "{}.ppm {t} {m}", i + 1).unwrap();
        write!(lmk, "{}.ppm", i + 1).unwrap();
        for v in lm {
            write!(lmk, " {v:?}").unwrap();
        }
        writeln!(lmk, " {face:?}").unwrap();
        f.images.push(image);
        f.landmarks.push(lm);
        f.faceness.push(face);
        f.templates.push(t);
        f.medias.push(m);
    }
    let mut ids = f.templates.clone();
    ids.sort_unstable();
    ids.dedup();
    for a in 0..ids.len() {
        for b in a + 1..ids.len() {
            let genuine = (a * 7 + b) % 3 == 0;
            writeln!(pairs, "{} {} {}", ids[a], ids[b], u8::from(genuine)).unwrap();
            f.pairs.push((ids[a], ids[b], genuine));
        }
    }
    let meta = root.join("meta");
    std::fs::write(meta.join(format!("{target}_face_tid_mid.txt")), tid).unwrap();
    std::fs::write(meta.join(format!("{target}_name_5pts_score.txt")), lmk).unwrap();
    std::fs::write(meta.join(format!("{target}_template_pair_label.txt")), pairs).unwrap();
    f
}

fn context() -> Context {
    let mut b = Builder::new(&Config {
        arch: "ijb-test".into(),
        img_size: SIDE as i32,
        patch_size: 9,
        in_channels: 3,
        embed_dim: 32,
        depth: 1,
        num_heads: 4,
        mlp_hidden_dim: 64,
        embedding_size: E as i32,
        drop_path_rate: 0.0,
        mask_ratio: 0.0,
        se_gate: true,
    })
    .unwrap();
    b.init_weights(7).unwrap();
    Context::create(&b.build().unwrap(), &ContextParams { max_batch: 5, ..Default::default() }).unwrap()
}

/// eval_ijbc.py written out on the model's own embeddings of the aligned crops (F1, N0, D1).
fn scores_by_hand(ctx: &mut Context, f: &Fixture) -> Vec<f64> {
    let mut crops = Vec::with_capacity(f.images.len() * SIDE * SIDE * 3);
    for (image, lm) in f.images.iter().zip(&f.landmarks) {
        crops.extend(align_face(&ImageRef::new(image, W, W, PixelFormat::Rgb), lm, SIDE).unwrap().0);
    }
    let emb = ctx.embed(&crops, f.images.len(), SIDE, SIDE, EmbedFlags::FLIP | EmbedFlags::NO_NORMALIZE).unwrap();
    let feats: Vec<Vec<f64>> = emb
        .chunks(E)
        .zip(&f.faceness)
        .map(|(row, &face)| {
            let norm = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
            row.iter().map(|&v| v as f64 / norm * face).collect()
        })
        .collect();
    // template -> media -> (sum, count)
    let mut medias: BTreeMap<u32, BTreeMap<u32, (Vec<f64>, usize)>> = BTreeMap::new();
    for (i, feat) in feats.iter().enumerate() {
        let entry = medias.entry(f.templates[i]).or_default().entry(f.medias[i]).or_insert((vec![0.0; E], 0));
        entry.0.iter_mut().zip(feat).for_each(|(s, v)| *s += v);
        entry.1 += 1;
    }
    let templates: BTreeMap<u32, Vec<f64>> = medias
        .into_iter()
        .map(|(t, ms)| {
            let mut sum = vec![0.0; E];
            for (s, c) in ms.values() {
                sum.iter_mut().zip(s).for_each(|(a, v)| *a += v / *c as f64);
            }
            let norm = sum.iter().map(|v| v * v).sum::<f64>().sqrt();
            (t, sum.into_iter().map(|v| v / norm).collect())
        })
        .collect();
    f.pairs.iter().map(|(a, b, _)| templates[a].iter().zip(&templates[b]).map(|(x, y)| x * y).sum()).collect()
}

#[test]
fn evaluate_ijb_matches_the_protocol_by_hand() {
    let dir = TempDir::new("ijb");
    let f = make_ijb(&dir.0, "ijbc", N);
    let mut ctx = context();
    let scores = scores_by_hand(&mut ctx, &f);
    let labels: Vec<bool> = f.pairs.iter().map(|p| p.2).collect();
    let (want, want_th) = tar_at_far(&scores, &labels, &FARS).unwrap();

    let params = IjbParams { detector_score: true, ..Default::default() };
    let r = ctx.evaluate_ijb(&dir.0, None, &FARS, &params).unwrap();
    assert_eq!(r.tar, want, "TAR vs by hand");
    for (got, want) in r.thresholds.iter().zip(&want_th) {
        assert!(got == want || (got - want).abs() < 1e-9, "threshold {got} vs by hand {want}");
    }
    let genuine = labels.iter().filter(|&&l| l).count();
    assert_eq!((r.dataset.as_str(), r.images, r.pairs), ("IJBC", N, f.pairs.len()));
    assert_eq!(r.templates, f.templates.iter().collect::<std::collections::BTreeSet<_>>().len());
    assert_eq!((r.genuine_pairs, r.impostor_pairs), (genuine, f.pairs.len() - genuine));
    assert!(genuine > 0 && genuine < f.pairs.len());
    assert!(r.roc_points >= 2 && (0.0..=1.0).contains(&r.auc), "{r:?}");
    assert_eq!((r.method(), r.fars.as_slice()), ("F1N0D1".to_owned(), &FARS[..]));
    println!("miniature IJB-C, F1N0D1: {} pairs, TAR@{:?} = {:?}, AUC {:.4}", r.pairs, &FARS[1..4], &r.tar[1..4], r.auc);

    // The images in another folder, the dataset named: the same result.
    let faces = dir.0.join("faces");
    std::fs::rename(dir.0.join("loose_crop"), &faces).unwrap();
    std::fs::create_dir(dir.0.join("loose_crop")).unwrap();
    let moved = ctx.evaluate_ijb(&dir.0, Some("ijbc"), &FARS, &IjbParams { image_dir: Some(faces), ..params.clone() }).unwrap();
    assert_eq!(moved, r);
}

#[test]
fn evaluate_ijb_errors() {
    let dir = TempDir::new("ijb-err");
    let root = dir.0.join("IJBB");
    make_ijb(&root, "ijbb", 12);
    let mut ctx = context();
    let d = IjbParams::default();
    let r = ctx.evaluate_ijb(&root, None, &STANDARD_FARS, &d).unwrap();
    assert_eq!((r.dataset.as_str(), r.tar.len(), r.method()), ("IJBB", STANDARD_FARS.len(), "F1N0D0".to_owned()));

    expect(ctx.evaluate_ijb(dir.0.join("missing"), None, &FARS, &d), Status::Io, &[]);
    expect(ctx.evaluate_ijb(&root, Some("IJBC"), &FARS, &d), Status::Io, &["ijbc_face_tid_mid.txt"]);
    expect(ctx.evaluate_ijb(&root, Some("IJBX"), &FARS, &d), Status::InvalidArgument, &["IJBB"]);
    expect(ctx.evaluate_ijb(&root, None, &[0.1, 2.0], &d), Status::InvalidArgument, &[]);
    expect(ctx.evaluate_ijb(&root, None, &[], &d), Status::InvalidArgument, &[]);
    expect(ctx.evaluate_ijb(&root, Some("ij\0bb"), &FARS, &d), Status::InvalidArgument, &["NUL"]);
    let meta = root.join("meta");
    let tid = std::fs::read_to_string(meta.join("ijbb_face_tid_mid.txt")).unwrap();
    let mut lines: Vec<&str> = tid.lines().collect();
    lines[2] = "3.ppm 5x 7";
    std::fs::write(meta.join("ijbb_face_tid_mid.txt"), lines.join("\n") + "\n").unwrap();
    expect(ctx.evaluate_ijb(&root, None, &FARS, &d), Status::Format, &["ijbb_face_tid_mid.txt' line 3"]);
}
