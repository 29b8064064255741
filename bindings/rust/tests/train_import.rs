//! `Trainer::set_tensor` and `Trainer::import_official` (the torch-made official checkpoints of
//! Tests/TFTrainTests/Fixtures/official_run), as bindings/python/tests/test_train_import.py.

use std::path::PathBuf;
use transface::{Status, Trainer};

const MICRO: &str = r#"{"arch": "custom", "model": {"img_size": 18, "patch_size": 9, "embed_dim": 8, "depth": 1, "num_heads": 2, "mlp_hidden_dim": 16},
 "embedding_size": 4, "mask_ratio": 0, "drop_path_rate": 0, "num_classes": 5, "batch_size": 2,
 "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.1}, "schedule": {"warmup_steps": 2, "max_steps": 10},
 "dpap": {"enabled": false}, "seed": 1}"#;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../Tests/TFTrainTests/Fixtures/official_run")
}

fn images() -> Vec<u8> {
    (0..2 * 18 * 18 * 3).map(|i: u32| (i * 37 % 251) as u8).collect()
}

const NAMES: [&str; 6] = ["senet.0.weight", "feature.1.running_var", "partial_fc.weight", "optimizer.exp_avg.pos_embed",
                          "optimizer.exp_avg_sq.partial_fc.weight", "blocks.0.attn.qkv.weight"];

#[test]
fn set_tensor_reads_back_and_steps_as_the_source() {
    let mut source = Trainer::import_official(&[fixtures().join("w1")], MICRO).unwrap();
    let mut written = Trainer::create(MICRO, None).unwrap();
    assert_ne!(written.read_tensor("senet.0.weight").unwrap(), source.read_tensor("senet.0.weight").unwrap());
    // Every tensor the import set, written by name (moments of untrained tensors do not exist).
    let mut names: Vec<String> = Vec::new();
    for base in ["pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias", "feature.0.weight",
                 "feature.2.weight", "senet.0.weight", "senet.2.weight", "partial_fc.weight", "mask_token"] {
        names.push(base.to_string());
        names.push(format!("optimizer.exp_avg.{base}"));
        names.push(format!("optimizer.exp_avg_sq.{base}"));
    }
    for bn in ["feature.1", "feature.3"] {
        for t in ["weight", "bias", "running_mean", "running_var"] {
            names.push(format!("{bn}.{t}"));
            if !t.starts_with("running") {
                names.push(format!("optimizer.exp_avg.{bn}.{t}"));
                names.push(format!("optimizer.exp_avg_sq.{bn}.{t}"));
            }
        }
    }
    for t in ["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
              "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"] {
        names.push(format!("blocks.0.{t}"));
        names.push(format!("optimizer.exp_avg.blocks.0.{t}"));
        names.push(format!("optimizer.exp_avg_sq.blocks.0.{t}"));
    }
    let mut set = 0;
    for name in &names {
        let Ok(values) = source.read_tensor(name) else { continue };
        written.set_tensor(name, &values).unwrap();
        assert_eq!(written.read_tensor(name).unwrap(), values, "{name}");
        set += 1;
    }
    assert_eq!(set, names.len() - 2, "all but mask_token's moments");
    // The step counters differ (2 against 0), so the updates differ; the loss depends on the
    // weights, statistics and centres only.
    let a = written.step(&images(), &[1, 4], 18, 18).unwrap();
    let b = source.step(&images(), &[1, 4], 18, 18).unwrap();
    assert_eq!(a.loss, b.loss);
}

#[test]
fn set_tensor_refuses_bad_values() {
    let mut t = Trainer::create(MICRO, None).unwrap();
    let before = t.read_tensor("feature.0.weight").unwrap();
    let e = t.set_tensor("feature.0.weight", &[1.0, 2.0]).unwrap_err();
    assert_eq!(e.status, Status::InvalidArgument);
    assert!(e.message.contains("holds 256 values, 2 were given"), "{}", e.message);
    let mut bad = vec![0.5f32; 256];
    bad[3] = f32::INFINITY;
    assert_eq!(t.set_tensor("feature.0.weight", &bad).unwrap_err().status, Status::InvalidArgument);
    assert_eq!(t.set_tensor("feature.7.weight", &bad).unwrap_err().status, Status::NotFound);
    assert_eq!(t.read_tensor("feature.0.weight").unwrap(), before);
}

#[test]
fn import_official_two_ranks_equal_one() {
    let one = Trainer::import_official(&[fixtures().join("w1/checkpoint_gpu_0.pt")], MICRO).unwrap();
    let two = Trainer::import_official(&[fixtures().join("w2/checkpoint_gpu_0.pt"), fixtures().join("w2/checkpoint_gpu_1.pt")], MICRO)
        .unwrap();
    assert_eq!(one.info().unwrap().step, 2);
    for name in NAMES {
        assert_eq!(one.read_tensor(name).unwrap(), two.read_tensor(name).unwrap(), "{name}");
    }
    let e = Trainer::import_official(&[fixtures().join("w1")], &MICRO.replace(r#""num_classes": 5"#, r#""num_classes": 6"#))
        .unwrap_err();
    assert_eq!(e.status, Status::Format);
    assert!(e.message.contains("state_dict_softmax_fc.weight"), "{}", e.message);
    let none: [PathBuf; 0] = [];
    assert_eq!(Trainer::import_official(&none, MICRO).unwrap_err().status, Status::InvalidArgument);
}
