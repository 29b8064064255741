//! A short training run on the tiny official reference: the model is built from
//! `reference/tiny/param/*.npy` (the official initial weights), then trained for 20 steps on the
//! reference batch (`input/u8_hwc.npy`, `input/labels.npy`) with the reference configuration.
//! Prints one line per step and a summary; exits non-zero on any error.
//!
//!     cargo run --offline --example train_tiny [-- REFERENCE_DIR [STEPS]]
//!
//! REFERENCE_DIR defaults to $TRANSFACE_REFERENCE_DIR, else `../../../shared/reference/tiny`.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use transface::{Builder, Config, Trainer};

type Res<T> = Result<T, Box<dyn Error>>;

/// The tiny reference's architecture and training settings (`reference/tiny/meta.json`).
const CONFIG: &str = r#"{"arch": "custom", "model": {"embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_hidden_dim": 256},
 "embedding_size": 32, "mask_ratio": 0, "drop_path_rate": 0, "num_classes": 10, "batch_size": 4,
 "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.1}, "schedule": {"warmup_steps": 0, "max_steps": 100},
 "clip_grad_norm": 5.0, "seed": 1}"#;

/// A little-endian, C-order .npy array: shape and raw data bytes.
fn read_npy(path: &Path, descr: &str) -> Res<(Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = || format!("{}: not a supported .npy file", path.display());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad().into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes(bytes.get(8..12).ok_or_else(bad)?.try_into()?) as usize, 12),
    };
    let header = std::str::from_utf8(bytes.get(start..start + len).ok_or_else(bad)?)?;
    if !header.contains(&format!("'descr': '{descr}'")) || !header.contains("'fortran_order': False") {
        return Err(format!("{}: expected {descr} in C order, header {header}", path.display()).into());
    }
    let shape_text = header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).ok_or_else(bad)?;
    let shape = shape_text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect::<Result<Vec<usize>, _>>()?;
    Ok((shape, bytes[start + len..].to_vec()))
}

fn f32s(path: &Path) -> Res<(Vec<usize>, Vec<f32>)> {
    let (shape, data) = read_npy(path, "<f4")?;
    Ok((shape, data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
}

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let reference = args
        .next()
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("TRANSFACE_REFERENCE_DIR").filter(|d| !d.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/tiny"));
    let steps: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);

    // The official initial weights through Builder (the trainer's centres are seeded).
    let mut builder = Builder::new(&Config {
        arch: "custom".into(),
        img_size: 112,
        patch_size: 9,
        in_channels: 3,
        embed_dim: 64,
        depth: 2,
        num_heads: 4,
        mlp_hidden_dim: 256,
        embedding_size: 32,
        drop_path_rate: 0.0,
        mask_ratio: 0.0,
        se_gate: true,
    })?;
    for info in builder.tensor_infos() {
        let (shape, values) = f32s(&reference.join("param").join(format!("{}.npy", info.name)))?;
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        builder.set_tensor_f32(&info.name, &values, &dims)?;
    }
    let model = builder.build()?;

    let (shape, images) = read_npy(&reference.join("input/u8_hwc.npy"), "|u1")?;
    let (_, raw_labels) = read_npy(&reference.join("input/labels.npy"), "<i8")?;
    let labels: Vec<i32> = raw_labels.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as i32).collect();
    if shape.len() != 4 || shape[3] != 3 || labels.len() != shape[0] {
        return Err(format!("unexpected reference batch: images {shape:?}, {} labels", labels.len()).into());
    }
    let (height, width) = (shape[1], shape[2]);

    let mut trainer = Trainer::create(CONFIG, Some(&model))?;
    println!("training the tiny reference ViT ({} images of {width}x{height}, labels {labels:?}) for {steps} steps", labels.len());
    let start = Instant::now();
    let mut first_loss = f64::NAN;
    let mut last_loss = f64::NAN;
    for _ in 0..steps {
        let r = trainer.step(&images, &labels, width, height)?;
        if !r.loss.is_finite() {
            return Err(format!("step {}: loss {} is not finite", r.step, r.loss).into());
        }
        if first_loss.is_nan() {
            first_loss = r.loss;
        }
        last_loss = r.loss;
        println!(
            "step {:3}  loss {:10.4}  lr {:.6}  grad norm {:9.2}  clip {:.5}  DPAP images {}  {:.3} s",
            r.step, r.loss, r.learning_rate, r.gradient_norm, r.clip_coefficient, r.images_augmented, r.seconds
        );
    }
    let info = trainer.info()?;
    println!(
        "done: {} steps in {:.2} s, loss {:.4} -> {:.4}, next lr {:.6}",
        info.step,
        start.elapsed().as_secs_f64(),
        first_loss,
        last_loss,
        info.learning_rate
    );
    Ok(())
}
