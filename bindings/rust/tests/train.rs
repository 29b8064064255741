//! Training from Rust: the tiny reference model and configuration (steps, checkpoint and exact
//! resume, export), the checks of bindings/python/tests/test_train.py (its 36-pixel config),
//! and DPAP's amplitude mix against the official fixture `dpap/`.

mod common;

use common::*;
use transface::{amplitude_mix, Builder, Config, Context, EmbedFlags, Status, Trainer};

/// The tiny reference (`reference/tiny/meta.json`) as a trainer configuration, as the Swift
/// reference test writes it: 112x112 input, D 64, depth 2, 4 heads, E 32, 10 classes, batch 4.
const TINY_JSON: &str = r#"{"arch": "custom", "model": {"embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_hidden_dim": 256},
 "embedding_size": 32, "mask_ratio": 0, "drop_path_rate": 0, "num_classes": 10, "batch_size": 4,
 "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.1}, "schedule": {"warmup_steps": 0, "max_steps": 100},
 "clip_grad_norm": 5.0, "seed": 1}"#;

fn reference_labels() -> Vec<i32> {
    reference("input/labels.npy").i64().iter().map(|&l| l as i32).collect()
}

fn tiny_trainer() -> Trainer {
    Trainer::create(TINY_JSON, Some(&reference_model())).expect("tiny trainer")
}

#[test]
fn tiny_reference_trainer_starts_from_the_reference_weights() {
    let t = tiny_trainer();
    for name in ["patch_embed.proj.weight", "blocks.1.attn.qkv.weight", "feature.3.running_var", "pos_embed"] {
        let want = reference(&format!("param/{name}.npy"));
        assert_eq!(t.read_tensor(name).unwrap(), want.f32(), "{name}");
        assert_eq!(t.tensor_size(name).unwrap(), want.f32().len(), "{name}");
    }
    assert_eq!(t.tensor_size("partial_fc.weight").unwrap(), 10 * 32);
    let info = t.info().unwrap();
    assert_eq!((info.step, info.batches, info.learning_rate_scale), (0, 0, 1.0));
    assert_eq!(info.learning_rate, 1e-3);
}

#[test]
fn tiny_reference_steps_checkpoint_resume_export() {
    let (images, count) = reference_images();
    let labels = reference_labels();
    assert_eq!(labels.len(), count);
    let dir = TempDir::new("train");

    let mut straight = tiny_trainer();
    let results: Vec<_> = (0..4).map(|_| straight.step(&images, &labels, 112, 112).unwrap()).collect();
    for (k, r) in results.iter().enumerate() {
        assert!(r.loss.is_finite() && r.optimizer_stepped && !r.skipped && r.step == k as u64 + 1, "step {k}: {r:?}");
        assert!(r.gradient_norm.is_finite() && r.clip_coefficient > 0.0 && r.clip_coefficient <= 1.0, "step {k}: {r:?}");
        assert!(r.images_augmented <= count);
    }
    // The same batch four times: the loss goes down.
    assert!(results[3].loss < results[0].loss, "{results:?}");

    let mut first = tiny_trainer();
    for _ in 0..2 {
        first.step(&images, &labels, 112, 112).unwrap();
    }
    let ckpt = dir.0.join("run.tfc");
    first.save_checkpoint(&ckpt).unwrap();
    let mut resumed = Trainer::resume(&ckpt, 0).unwrap();
    assert_eq!(resumed.info().unwrap(), first.info().unwrap());
    for _ in 0..2 {
        resumed.step(&images, &labels, 112, 112).unwrap();
    }
    // Bit-exact continuation: weights, centres, optimizer moments and running statistics.
    for name in ["blocks.1.mlp.fc2.weight", "partial_fc.weight", "optimizer.exp_avg_sq.senet.0.weight", "feature.3.running_var", "mask_token"] {
        let (a, b) = (resumed.read_tensor(name).unwrap(), straight.read_tensor(name).unwrap());
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{name} differs after resume");
    }
    assert_eq!(resumed.info().unwrap(), straight.info().unwrap());

    let model = straight.export_model(dir.0.join("m.tfm")).unwrap();
    assert_eq!(model.embedding_size(), 32);
    assert_eq!(model.read_tensor("norm.weight").unwrap(), straight.read_tensor("norm.weight").unwrap());
    let emb = Context::new(&model, 1, 4).unwrap().embed(&images, count, 112, 112, EmbedFlags::NONE).unwrap();
    for row in emb.chunks(32) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() <= 1e-5, "embedding norm {norm}");
    }
}

// ------------------------------------------------------------------ test_train.py's checks

/// bindings/python/tests/test_train.py's CONFIG.
const PY_JSON: &str = r#"{"arch": "custom", "model": {"img_size": 36, "embed_dim": 32, "depth": 2, "num_heads": 4, "mlp_hidden_dim": 64},
 "embedding_size": 16, "mask_ratio": 0.25, "drop_path_rate": 0.1, "num_classes": 6, "batch_size": 6,
 "margin": {"s": 16, "m2": 0.2}, "dpap": {"probability": 0.5}, "schedule": {"warmup_steps": 1, "max_steps": 50}, "seed": 9"#;

fn py_config(extra: &str) -> String {
    format!("{PY_JSON}{extra}}}")
}

/// Six noisy copies of six class prototypes per batch (a fixed LCG, not NumPy's generator).
fn py_batches(n: usize) -> Vec<(Vec<u8>, Vec<i32>)> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let side = 36 * 36 * 3;
    let protos: Vec<u8> = (0..6 * side).map(|_| (next() % 256) as u8).collect();
    (0..n)
        .map(|_| {
            let labels: Vec<i32> = (0..6).map(|_| (next() % 6) as i32).collect();
            let images = labels
                .iter()
                .flat_map(|&l| protos[l as usize * side..(l as usize + 1) * side].to_vec())
                .map(|p| (p as i32 + (next() % 61) as i32 - 30).clamp(0, 255) as u8)
                .collect();
            (images, labels)
        })
        .collect()
}

#[test]
fn python_config_steps_resume_and_warmup() {
    let data = py_batches(4);
    let mut straight = Trainer::create(&py_config(""), None).unwrap();
    let results: Vec<_> = data.iter().map(|(x, y)| straight.step(x, y, 36, 36).unwrap()).collect();
    assert!(results.iter().all(|r| r.optimizer_stepped && r.loss.is_finite()), "{results:?}");
    assert_eq!(results[0].learning_rate, 0.0, "PolyScheduler warm-up starts at 0");
    assert_eq!(results[3].step, 4);

    let dir = TempDir::new("train-py");
    let mut first = Trainer::create(&py_config(""), None).unwrap();
    for (x, y) in &data[..2] {
        first.step(x, y, 36, 36).unwrap();
    }
    first.save_checkpoint(dir.0.join("run.tfc")).unwrap();
    let mut resumed = Trainer::resume(dir.0.join("run.tfc"), 0).unwrap();
    for (x, y) in &data[2..] {
        resumed.step(x, y, 36, 36).unwrap();
    }
    for name in ["blocks.1.mlp.fc2.weight", "partial_fc.weight", "optimizer.exp_avg_sq.senet.0.weight", "feature.3.running_var", "mask_token"] {
        assert_eq!(resumed.read_tensor(name).unwrap(), straight.read_tensor(name).unwrap(), "{name}");
    }
    let info = Trainer::resume(dir.0.join("run.tfc"), 0).unwrap().info().unwrap();
    assert_eq!(info, first.info().unwrap());
    assert!(info.step == 2 && info.batches == 2 && info.learning_rate_scale == 1.0 && info.learning_rate > 0.0, "{info:?}");
}

#[test]
fn python_config_errors() {
    expect(Trainer::create(r#"{"num_classes": 3, "lr": 0.1}"#, None), Status::InvalidArgument, &["unknown key 'lr'"]);
    expect(Trainer::create("{not json", None), Status::InvalidArgument, &[]);
    expect(Trainer::create("{\"num_classes\": 3}\0", None), Status::InvalidArgument, &["NUL"]);
    let mut t = Trainer::create(&py_config(""), None).unwrap();
    let (x, y) = py_batches(1).remove(0);
    expect(t.step(&x, &[7; 6], 36, 36), Status::InvalidArgument, &["outside 0..<6"]);
    expect(t.step(&x[..5 * 36 * 36 * 3], &y[..5], 36, 36), Status::InvalidArgument, &["batch_size"]);
    expect(t.step(&x[1..], &y, 36, 36), Status::InvalidArgument, &["need"]);
    expect(t.read_tensor("blocks.9.norm1.weight"), Status::NotFound, &[]);
    expect(t.read_tensor_into("norm.weight", &mut [0.0; 1]), Status::InvalidArgument, &[]);
    expect(Trainer::resume(file!(), 0), Status::Format, &[]);
    expect(Trainer::resume("/nonexistent/run.tfc", 0), Status::Io, &[]);
    expect(t.save_checkpoint("/nonexistent/dir/run.tfc"), Status::Io, &["/nonexistent/dir/run.tfc"]);
    // Still usable after the errors.
    assert!(t.step(&x, &y, 36, 36).unwrap().loss.is_finite());
}

#[test]
fn python_config_reduce_lr_backs_off_and_is_checkpointed() {
    // Huge (finite) final-norm weights make the head overflow: every batch is non-finite.
    let mut b = Builder::new(&Config {
        arch: "custom".into(),
        img_size: 36,
        patch_size: 9,
        in_channels: 3,
        embed_dim: 32,
        depth: 2,
        num_heads: 4,
        mlp_hidden_dim: 64,
        embedding_size: 16,
        drop_path_rate: 0.0,
        mask_ratio: 0.0,
        se_gate: true,
    })
    .unwrap();
    b.init_weights(1).unwrap();
    b.set_tensor_f32("norm.weight", &[3e38; 32], &[32]).unwrap();
    let poisoned = b.build().unwrap();
    let (x, y) = py_batches(1).remove(0);
    expect(Trainer::create(&py_config(""), Some(&poisoned)).unwrap().step(&x, &y, 36, 36), Status::Numeric, &["not finite"]);

    let mut t = Trainer::create(&py_config(r#", "non_finite": "reduce_lr", "non_finite_lr_factor": 0.5"#), Some(&poisoned)).unwrap();
    let lr = t.info().unwrap().learning_rate;
    let r = t.step(&x, &y, 36, 36).unwrap();
    assert!(r.skipped && !r.optimizer_stepped && r.learning_rate == lr * 0.5, "{r:?}");
    t.step(&x, &y, 36, 36).unwrap();
    assert_eq!(t.info().unwrap().learning_rate_scale, 0.25);
    let dir = TempDir::new("train-lr");
    t.save_checkpoint(dir.0.join("run.tfc")).unwrap();
    assert_eq!(Trainer::resume(dir.0.join("run.tfc"), 0).unwrap().info().unwrap().learning_rate_scale, 0.25);
    expect(
        Trainer::create(&py_config(r#", "non_finite": "reduce_lr", "non_finite_lr_factor": 1.5"#), None),
        Status::InvalidArgument,
        &["non_finite_lr_factor"],
    );
}

// ------------------------------------------------------------------ amplitude mix

#[test]
fn amplitude_mix_keeps_a_patch_with_lambda_zero() {
    let a: Vec<u8> = (0..243u32).map(|i| (i * 97 % 256) as u8).collect();
    let b: Vec<u8> = (0..243u32).map(|i| (i * 31 % 251) as u8).collect();
    let out = amplitude_mix(&a, &b, [9, 9, 3], 0.0, 1.0).unwrap();
    let worst = out.iter().zip(&a).map(|(&o, &s)| (o as i32 - s as i32).abs()).max().unwrap();
    assert!(worst <= 1, "lambda 0 changed a byte by {worst}");
}

/// The official `amplitude_spectrum_mix` on 8 uint8 patch pairs (reference `dpap/`): equal, or
/// off by one where the official pre-clip value lies within 2e-4 of the integer between the
/// two (float32 vs float64 FFT rounding decides the side; the Swift test's boundary rule, with
/// only the official pre-clip value visible through the C ABI).
#[test]
fn amplitude_mix_matches_the_official_fixture() {
    let lam = reference_set("dpap/dpap/lam.npy");
    let (img1, img2) = (reference_set("dpap/dpap/u8_img1.npy"), reference_set("dpap/dpap/u8_img2.npy"));
    let (out, preclip) = (reference_set("dpap/dpap/u8_out.npy"), reference_set("dpap/dpap/u8_preclip.npy"));
    assert_eq!(img1.shape, [8, 9, 9, 3]);
    let (mut exact, mut on_boundary) = (0, 0);
    for (c, &lambda) in lam.f64().iter().enumerate() {
        let r = c * 243..(c + 1) * 243;
        let ours = amplitude_mix(&img1.u8()[r.clone()], &img2.u8()[r.clone()], [9, 9, 3], lambda, 1.0).unwrap();
        for (i, j) in r.enumerate() {
            let (got, want) = (ours[i] as i32, out.u8()[j] as i32);
            if got == want {
                exact += 1;
                continue;
            }
            let integer = got.max(want) as f64;
            let distance = (preclip.f64()[j] - integer).abs();
            assert!((got - want).abs() == 1 && distance <= 2e-4, "case {c} value {i}: {got} vs official {want} (pre-clip {})", preclip.f64()[j]);
            on_boundary += 1;
        }
    }
    println!("dpap u8: {exact} equal, {on_boundary} off by one on an integer boundary");
}

#[test]
fn amplitude_mix_argument_errors() {
    let a = [7u8; 243];
    expect(amplitude_mix(&a, &a[..10], [9, 9, 3], 0.5, 1.0), Status::InvalidArgument, &["partner 10"]);
    expect(amplitude_mix(&a, &a, [9, 9, 3], f64::NAN, 1.0), Status::InvalidArgument, &[]);
    expect(amplitude_mix(&a, &a, [9, 9, 3], 0.5, 1.5), Status::InvalidArgument, &[]);
    // Other shapes work: a 16x16 RGB patch of 7s mixed with 10s at lambda 0.25 gives 7.75 -> 7.
    let big = amplitude_mix(&[7; 768], &[10; 768], [16, 16, 3], 0.25, 1.0).unwrap();
    assert_eq!(big, vec![7u8; 768]);
}
