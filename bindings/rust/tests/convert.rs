//! The converter (`transface_convert_state_dict`, `transface_convert_infer_config`) as
//! bindings/python/tests/test_convert.py checks it: the tiny official reference written here as
//! an .npz converts to a model with the reference's tensors and embeddings (and the same bytes
//! as `transface convert`), shape inference for every preset, notes, metadata, refusals.

mod common;

use common::*;
use transface::{
    convert_state_dict, convert_state_dict_with_notes, infer_config, infer_config_with_notes, Config, Context,
    ConvertOptions, EmbedFlags, Model, Status,
};

/// The heads of the tiny reference (its shapes cannot tell).
const TINY_HEADS: i32 = 4;

fn heads(n: i32) -> ConvertOptions {
    ConvertOptions { num_heads: Some(n), ..Default::default() }
}

/// The reference's param/*.npy (all of them, skipped ones included) as an .npz in `dir`.
fn tiny_npz(dir: &TempDir, file_name: &str) -> std::path::PathBuf {
    let path = dir.0.join(file_name);
    std::fs::write(&path, npz(&reference_param_files())).unwrap();
    path
}

/// An .npz of the reference params with some dropped and some added or replaced.
fn edited_npz(dir: &TempDir, file_name: &str, drop: &[&str], add: &[(&str, Vec<u8>)]) -> std::path::PathBuf {
    let mut files: Vec<(String, Vec<u8>)> =
        reference_param_files().into_iter().filter(|(n, _)| !drop.contains(&n.as_str())).collect();
    for (name, bytes) in add {
        files.retain(|(n, _)| n != name);
        files.push((name.to_string(), bytes.clone()));
    }
    let path = dir.0.join(file_name);
    std::fs::write(&path, npz(&files)).unwrap();
    path
}

/// Official state_dict name -> shape (inference tensors, state_dict order), as
/// bindings/python/tests/oracle.py's official_shapes.
fn official_shapes(d: i64, depth: i64, e: i64, mlp: Option<i64>, img: i64, patch: i64) -> Vec<(String, Vec<i64>)> {
    let h = mlp.unwrap_or(4 * d);
    let p = (img / patch) * (img / patch);
    let mut s: Vec<(String, Vec<i64>)> = vec![
        ("pos_embed".into(), vec![1, p, d]),
        ("mask_token".into(), vec![1, 1, d]),
        ("patch_embed.proj.weight".into(), vec![d, 3, patch, patch]),
        ("patch_embed.proj.bias".into(), vec![d]),
    ];
    for i in 0..depth {
        for (n, shape) in [
            ("norm1.weight", vec![d]),
            ("norm1.bias", vec![d]),
            ("attn.qkv.weight", vec![3 * d, d]),
            ("attn.proj.weight", vec![d, d]),
            ("attn.proj.bias", vec![d]),
            ("norm2.weight", vec![d]),
            ("norm2.bias", vec![d]),
            ("mlp.fc1.weight", vec![h, d]),
            ("mlp.fc1.bias", vec![h]),
            ("mlp.fc2.weight", vec![d, h]),
            ("mlp.fc2.bias", vec![d]),
        ] {
            s.push((format!("blocks.{i}.{n}"), shape));
        }
    }
    s.push(("norm.weight".into(), vec![d]));
    s.push(("norm.bias".into(), vec![d]));
    s.push(("feature.0.weight".into(), vec![d, d * p]));
    for (layer, k) in [("feature.1", d)] {
        for f in ["weight", "bias", "running_mean", "running_var"] {
            s.push((format!("{layer}.{f}"), vec![k]));
        }
    }
    s.push(("feature.2.weight".into(), vec![e, d]));
    for (layer, k) in [("feature.3", e)] {
        for f in ["weight", "bias", "running_mean", "running_var"] {
            s.push((format!("{layer}.{f}"), vec![k]));
        }
    }
    s.push(("senet.0.weight".into(), vec![p, d * p]));
    s.push(("senet.2.weight".into(), vec![p, p]));
    s
}

fn shapes(d: i64, depth: i64, e: i64) -> Vec<(String, Vec<i64>)> {
    official_shapes(d, depth, e, None, 112, 9)
}

// ------------------------------------------------------------------ converting the reference

#[test]
fn tiny_npz_converts_to_the_reference_model() {
    let dir = TempDir::new("convert");
    let src = tiny_npz(&dir, "tiny_official.npz");
    let out = dir.0.join("tiny.tfm");
    let done = convert_state_dict_with_notes(&src, &out, &heads(TINY_HEADS)).unwrap();
    for n in &done.notes {
        println!("note: {n}");
    }
    assert_eq!(done.config, tiny_config());
    assert!(done.notes.iter().any(|n| n.contains("num_batches_tracked")), "{:?}", done.notes);
    assert!(done.notes.iter().any(|n| n.contains("partial_fc.weight")), "{:?}", done.notes);

    let model = Model::load(&out).unwrap();
    assert_eq!(model.config(), &done.config);
    assert_eq!(model.metadata_get("source").unwrap().as_deref(), Some("tiny_official.npz"));
    assert_eq!(model.metadata_get("arch").unwrap().as_deref(), Some("custom"));
    assert!(model.metadata_get("converter").unwrap().is_some());
    // Every tensor is the reference's, bit for bit.
    let infos = model.tensor_infos();
    assert_eq!(infos.len(), 40);
    for info in &infos {
        let npy = reference(&format!("param/{}.npy", info.name));
        assert_eq!(info.dims, npy.dims_i64(), "{}", info.name);
        assert_eq!(model.read_tensor(&info.name).unwrap(), npy.f32(), "{}", info.name);
    }
    assert_eq!(model.tensor_info("senet.0.weight").unwrap().dims, vec![144, 9216]);

    // Embeddings, SE patch weights and patch std as the official PyTorch model's, with the
    // tolerance of tests/parity.rs (atol 1e-6 + rtol 1e-4 · max|ref|).
    let (images, count) = reference_images();
    let mut ctx = Context::new(&model, 1, 8).unwrap();
    let got = ctx.embed_with_patches(&images, count, 112, 112, EmbedFlags::NO_NORMALIZE).unwrap();
    compare_to_reference("converted embedding", &got.embeddings, reference("eval/embedding.npy").f32());
    compare_to_reference("converted patch_weights", &got.patch_weights, reference("eval/se_weight_softmax.npy").f32());
    compare_to_reference("converted patch_std", &got.patch_std, reference("eval/patch_std.npy").f32());
    // ... and exactly what the model built through Builder from the same files gives.
    let built = Context::new(&reference_model(), 1, 8)
        .unwrap()
        .embed_with_patches(&images, count, 112, 112, EmbedFlags::NO_NORMALIZE)
        .unwrap();
    assert_eq!(got, built);

    // convert_state_dict gives the same config (notes dropped) and the same file.
    let again = dir.0.join("again.tfm");
    assert_eq!(convert_state_dict(&src, &again, &heads(TINY_HEADS)).unwrap(), done.config);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&out).unwrap());
}

/// SHA-256 of the tiny reference .npz converted with `--num-heads 4 --metadata set=tiny`, as
/// test_convert.py's SWIFT_SHA256 (a converted file depends only on the tensors, the options
/// and the source's file name; the `converter` entry names the library version).
const TINY_SHA256_0_2_0: &str = "41d8105d3d476256e4ad470116f9a3e932017f8d30c1dfa687e27b125cec6e3a";

#[test]
fn output_is_byte_identical_to_the_cli() {
    assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    if transface::version() != "0.2.0" {
        println!("skipped: the expected hash is of libtransface 0.2.0, this is {}", transface::version());
        return;
    }
    let dir = TempDir::new("convert-sha");
    let src = tiny_npz(&dir, "tiny_official.npz");
    let out = dir.0.join("t.tfm");
    let opts = ConvertOptions { metadata: vec![("set".into(), "tiny".into())], ..heads(TINY_HEADS) };
    convert_state_dict(&src, &out, &opts).unwrap();
    assert_eq!(sha256_hex(&std::fs::read(&out).unwrap()), TINY_SHA256_0_2_0);
}

#[test]
fn default_heads_are_noted() {
    let dir = TempDir::new("convert-heads");
    let src = tiny_npz(&dir, "tiny.npz");
    let out = dir.0.join("t8.tfm");
    let done = convert_state_dict_with_notes(&src, &out, &ConvertOptions::default()).unwrap();
    assert!(done.notes.iter().any(|n| n.contains("using 8")), "{:?}", done.notes);
    assert_eq!(done.config.num_heads, 8);
    let model = Model::load(&out).unwrap();
    assert_eq!(model.config().num_heads, 8);
    assert_eq!(model.metadata_get("num_heads_from").unwrap().as_deref(), Some("default (8)"));
}

#[test]
fn metadata_is_stored_after_and_replaces_the_converters() {
    let dir = TempDir::new("convert-meta");
    let src = tiny_npz(&dir, "tiny.npz");
    let out = dir.0.join("m.tfm");
    let metadata = [("license", "test"), ("note", "a=b"), ("ünï", "cödé"), ("source", "mine")];
    let opts = ConvertOptions {
        metadata: metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..heads(TINY_HEADS)
    };
    convert_state_dict(&src, &out, &opts).unwrap();
    let model = Model::load(&out).unwrap();
    for (k, v) in metadata {
        assert_eq!(model.metadata_get(k).unwrap().as_deref(), Some(v), "{k}");
    }
    let md = model.metadata();
    assert_eq!(md.iter().filter(|(k, _)| k == "source").count(), 1, "{md:?}");
    let pos = |key: &str| md.iter().position(|(k, _)| k == key).unwrap();
    assert!(pos("converter") < pos("license") && pos("license") < pos("note"), "{md:?}");
}

#[test]
fn explicit_options_that_agree_are_accepted() {
    let dir = TempDir::new("convert-agree");
    let src = tiny_npz(&dir, "tiny.npz");
    let out = dir.0.join("a.tfm");
    let opts = ConvertOptions { embedding_size: Some(32), img_size: Some(112), ..heads(TINY_HEADS) };
    let done = convert_state_dict_with_notes(&src, &out, &opts).unwrap();
    assert_eq!(done.config, tiny_config());
    assert!(!done.notes.iter().any(|n| n.contains("using 8")), "{:?}", done.notes);
}

// ------------------------------------------------------------------ shape inference

#[test]
fn infer_config_of_every_preset() {
    let presets = Config::presets();
    assert_eq!(presets.len(), 7);
    for preset in presets {
        let cfg = Config::preset(preset, 0).unwrap();
        let mut s = official_shapes(
            cfg.embed_dim as i64,
            cfg.depth as i64,
            cfg.embedding_size as i64,
            Some(cfg.mlp_hidden_dim as i64),
            112,
            9,
        );
        s.push(("feature.1.num_batches_tracked".into(), vec![]));
        let guessed = infer_config_with_notes(&s, &ConvertOptions::default()).unwrap();
        let g = &guessed.config;
        assert_eq!(
            (g.img_size, g.patch_size, g.in_channels, g.embed_dim, g.depth, g.num_heads, g.mlp_hidden_dim),
            (cfg.img_size, cfg.patch_size, cfg.in_channels, cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.mlp_hidden_dim),
            "{preset}"
        );
        assert_eq!(g.embedding_size, cfg.embedding_size, "{preset}");
        assert_eq!(g.arch, "custom");
        assert!(guessed.notes.iter().any(|n| n.contains("num_heads cannot be inferred")), "{:?}", guessed.notes);
        assert!(guessed.notes.iter().any(|n| n.contains(preset)), "{preset}: {:?}", guessed.notes);
        let with_arch = ConvertOptions { arch: Some(preset.into()), ..Default::default() };
        assert_eq!(infer_config(&s, &with_arch).unwrap(), cfg, "{preset}");
        assert_eq!(infer_config(&s, &heads(16)).unwrap().num_heads, 16);
        expect(infer_config(&s, &heads(7)), Status::InvalidArgument, &["num_heads 7 does not divide"]);
    }
}

#[test]
fn infer_config_embedding_size_and_grid() {
    let s = shapes(64, 3, 128);
    assert_eq!(infer_config(&s, &ConvertOptions::default()).unwrap().embedding_size, 128);
    let e128 = ConvertOptions { embedding_size: Some(128), ..Default::default() };
    assert_eq!(infer_config(&s, &e128).unwrap().embedding_size, 128);
    let e512 = ConvertOptions { embedding_size: Some(512), ..Default::default() };
    expect(infer_config(&s, &e512), Status::InvalidArgument, &["disagrees"]);
    // Other patch sizes: img 112 when it fits the grid, else grid * patch.
    for (patch, grid, img) in [(8, 14, 112), (16, 7, 112), (10, 10, 100)] {
        let c = infer_config(&official_shapes(32, 1, 16, None, grid * patch, patch), &ConvertOptions::default()).unwrap();
        assert_eq!((c.patch_size as i64, c.img_size as i64, c.num_patches() as i64), (patch, img, grid * grid));
    }
    // Borrowed shapes work as well as owned ones.
    let borrowed: Vec<(&str, &[i64])> = s.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    assert_eq!(infer_config(&borrowed, &ConvertOptions::default()).unwrap().depth, 3);
}

#[test]
fn infer_config_refusals() {
    let vit_t = ConvertOptions { arch: Some("vit_t".into()), ..Default::default() };
    let e = infer_config(&shapes(64, 2, 32), &vit_t).unwrap_err();
    assert!(e.message.contains("does not match") || e.message.contains("do not match"), "{e}");
    assert_eq!(e.status, Status::InvalidArgument, "{e}");
    let vit_x = ConvertOptions { arch: Some("vit_x".into()), ..Default::default() };
    expect(infer_config(&shapes(64, 2, 32), &vit_x), Status::InvalidArgument, &["unknown --arch", "vit_x"]);

    let mut bad = shapes(64, 2, 32);
    bad.retain(|(n, _)| n != "pos_embed");
    let e = expect(infer_config(&bad, &ConvertOptions::default()), Status::Format, &["missing pos_embed"]);
    assert!(e.is_conversion_refusal());
    let mut gap = shapes(64, 3, 32);
    gap.retain(|(n, _)| !n.starts_with("blocks.1."));
    expect(infer_config(&gap, &ConvertOptions::default()), Status::Format, &["blocks 1 are missing"]);

    let none: [(&str, &[i64]); 0] = [];
    assert!(infer_config(&none, &ConvertOptions::default()).is_err());
    let mut twice = shapes(64, 2, 32);
    twice.push(("pos_embed".into(), vec![1, 144, 64]));
    expect(infer_config(&twice, &ConvertOptions::default()), Status::InvalidArgument, &["appears twice"]);
    let nine = [("pos_embed", vec![1i64; 9])];
    expect(infer_config(&nine, &ConvertOptions::default()), Status::InvalidArgument, &["ndims[0] is 9"]);
    // Caught before calling C.
    let nul = [("pos\0embed", vec![1i64])];
    expect(infer_config(&nul, &ConvertOptions::default()), Status::InvalidArgument, &["NUL"]);
}

// ------------------------------------------------------------------ refusals of sources and options

/// `result` is an error of `status` naming every word, and `out` was not written.
fn refused<T: std::fmt::Debug>(result: transface::Result<T>, out: &std::path::Path, status: Status, words: &[&str]) {
    let e = expect(result, status, words);
    assert_eq!(e.message.lines().count(), 1, "{e}");
    assert!(!out.exists(), "{} was written", out.display());
}

#[test]
fn refuse_bad_sources() {
    let dir = TempDir::new("convert-bad");
    let out = dir.0.join("never.tfm");
    let none = ConvertOptions::default();

    let absent = dir.0.join("absent.npz");
    refused(convert_state_dict(&absent, &out, &none), &out, Status::NotFound, &["absent.npz", "no such file"]);

    let empty = dir.0.join("empty.pt");
    std::fs::write(&empty, b"").unwrap();
    let e = convert_state_dict(&empty, &out, &none).unwrap_err();
    assert!(e.message.contains("empty"), "{e}");
    assert!(!out.exists());

    // Pseudo-random bytes with no zip or pickle signature.
    let mut x = 0x2545F4914F6CDD1Du64;
    let garbage: Vec<u8> = (0..1000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match (x >> 56) as u8 {
                0x80 | b'P' => 0,
                b => b,
            }
        })
        .collect();
    let garbage_path = dir.0.join("garbage.bin");
    std::fs::write(&garbage_path, &garbage).unwrap();
    refused(convert_state_dict(&garbage_path, &out, &none), &out, Status::Format, &["neither"]);

    let good = tiny_npz(&dir, "tiny.npz");
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.0.join("truncated.npz");
    for cut in [5000, bytes.len() / 2, bytes.len() - 10] {
        std::fs::write(&truncated, &bytes[..cut]).unwrap();
        let e = convert_state_dict(&truncated, &out, &heads(TINY_HEADS)).unwrap_err();
        println!("truncated at {cut}: {e}");
        assert!(e.is_conversion_refusal(), "{e}");
        assert_eq!(e.message.lines().count(), 1, "{e}");
        assert!(!out.exists());
    }
    // A damaged entry: its CRC no longer matches.
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xFF;
    std::fs::write(&truncated, &flipped).unwrap();
    let e = convert_state_dict(&truncated, &out, &heads(TINY_HEADS)).unwrap_err();
    println!("flipped byte: {e}");
    assert!(e.is_conversion_refusal(), "{e}");
    assert!(!out.exists());
}

#[test]
fn refuse_missing_unknown_misshaped_and_non_float_tensors() {
    let dir = TempDir::new("convert-tensors");
    let out = dir.0.join("never.tfm");
    let opts = heads(TINY_HEADS);

    let src = edited_npz(&dir, "missing.npz", &["norm.bias", "blocks.1.mlp.fc2.bias"], &[]);
    refused(convert_state_dict(&src, &out, &opts), &out, Status::Format, &["missing 2", "norm.bias", "blocks.1.mlp.fc2.bias"]);

    let extra = [("blocks.0.attn.qkv.bias", npy_f32(&[192], &[0.0; 192])), ("head.weight", npy_f32(&[3], &[0.0; 3]))];
    let src = edited_npz(&dir, "unknown.npz", &[], &extra);
    refused(convert_state_dict(&src, &out, &opts), &out, Status::Format, &["unknown 2", "blocks.0.attn.qkv.bias", "head.weight"]);

    let shaped = [("senet.2.weight", npy_f32(&[144, 143], &vec![0.0; 144 * 143])), ("norm.weight", npy_f32(&[1, 64], &[0.0; 64]))];
    let src = edited_npz(&dir, "shape.npz", &[], &shaped);
    refused(
        convert_state_dict(&src, &out, &opts),
        &out,
        Status::Format,
        &["mis-shaped 2", "senet.2.weight [144, 143] (expected [144, 144])", "norm.weight"],
    );

    let src = edited_npz(&dir, "noarch.npz", &["pos_embed"], &[]);
    refused(convert_state_dict(&src, &out, &opts), &out, Status::Format, &["cannot infer", "pos_embed"]);

    let ints = [("norm.bias", npy_bytes("<i4", &[64], &[0u8; 256]))];
    let src = edited_npz(&dir, "int.npz", &[], &ints);
    refused(convert_state_dict(&src, &out, &opts), &out, Status::Format, &["not floating point", "norm.bias"]);

    let mut values = reference("param/norm.weight.npy").f32().to_vec();
    values[3] = f32::NAN;
    let src = edited_npz(&dir, "nan.npz", &[], &[("norm.weight", npy_f32(&[64], &values))]);
    refused(convert_state_dict(&src, &out, &opts), &out, Status::InvalidArgument, &["norm.weight", "NaN"]);
}

#[test]
fn refuse_contradicting_options_and_bad_metadata() {
    let dir = TempDir::new("convert-options");
    let src = tiny_npz(&dir, "tiny.npz");
    let out = dir.0.join("never.tfm");

    let arch = |a: &str| ConvertOptions { arch: Some(a.into()), ..Default::default() };
    refused(convert_state_dict(&src, &out, &arch("vit_t")), &out, Status::InvalidArgument, &["--arch vit_t", "embed_dim 64"]);
    refused(convert_state_dict(&src, &out, &arch("vit_q")), &out, Status::InvalidArgument, &["unknown --arch", "vit_q"]);
    let e512 = ConvertOptions { embedding_size: Some(512), ..Default::default() };
    refused(convert_state_dict(&src, &out, &e512), &out, Status::InvalidArgument, &["512", "32"]);
    refused(convert_state_dict(&src, &out, &heads(7)), &out, Status::InvalidArgument, &["num_heads 7"]);

    // An empty metadata key is the library's refusal; a NUL byte is caught before calling C.
    let meta = |k: &str, v: &str| ConvertOptions { metadata: vec![(k.into(), v.into())], ..heads(TINY_HEADS) };
    let e = expect(convert_state_dict(&src, &out, &meta("", "value")), Status::InvalidArgument, &["metadata key"]);
    assert!(e.is_conversion_refusal());
    assert!(!out.exists());
    refused(convert_state_dict(&src, &out, &meta("k", "v\0w")), &out, Status::InvalidArgument, &["metadata value", "NUL"]);
    refused(convert_state_dict(&src, &out, &arch("vit\0s")), &out, Status::InvalidArgument, &["arch", "NUL"]);
}

#[test]
fn unwritable_output_is_an_io_error_not_a_refusal() {
    let dir = TempDir::new("convert-io");
    let src = tiny_npz(&dir, "tiny.npz");
    let out = dir.0.join("no-such-folder").join("t.tfm");
    let e = convert_state_dict(&src, &out, &heads(TINY_HEADS)).unwrap_err();
    println!("{e}");
    assert_eq!(e.status, Status::Io, "{e}");
    assert!(!e.is_conversion_refusal());
    assert!(!out.exists());
}
