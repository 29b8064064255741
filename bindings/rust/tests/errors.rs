//! Error paths: every failure is an Err with the right Status and a message naming it.

mod common;

use common::*;
use transface::{compare, Builder, Config, Context, EmbedFlags, Model, Status};

/// A saved copy of the reference model.
fn saved_model() -> (TempPath, Vec<u8>) {
    let path = TempPath::new("model.tfm");
    reference_builder().save(&path.0).unwrap();
    let bytes = std::fs::read(&path.0).unwrap();
    (path, bytes)
}

#[test]
fn missing_file() {
    let path = TempPath::new("does-not-exist.tfm");
    let name = path.0.file_name().unwrap().to_str().unwrap().to_owned();
    expect(Model::load(&path.0), Status::Io, &[&name]);
}

#[test]
fn garbage_file() {
    let path = TempPath::new("garbage.tfm");
    std::fs::write(&path.0, b"this is not a model file, just some text that is long enough").unwrap();
    expect(Model::load(&path.0), Status::Format, &["magic"]);
    std::fs::write(&path.0, b"").unwrap();
    expect(Model::load(&path.0), Status::Format, &["empty"]);
}

#[test]
fn truncated_and_corrupt_files() {
    let (path, bytes) = saved_model();
    assert!(Model::load(&path.0).is_ok());
    let cut = TempPath::new("truncated.tfm");
    for len in [10, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&cut.0, &bytes[..len]).unwrap();
        expect(Model::load(&cut.0), Status::Format, &[]);
    }
    std::fs::write(&cut.0, &bytes[..bytes.len() - 4]).unwrap();
    expect(Model::load(&cut.0), Status::Format, &["truncated"]);
    // One flipped bit in the last tensor: caught by its checksum.
    let mut corrupt = bytes.clone();
    *corrupt.last_mut().unwrap() ^= 0x10;
    std::fs::write(&cut.0, &corrupt).unwrap();
    expect(Model::load(&cut.0), Status::Format, &["checksum", "senet.2.weight"]);
}

#[test]
fn interior_nul_strings() {
    // Refused on the Rust side, before any C call.
    expect(Model::load("model\0.tfm"), Status::InvalidArgument, &["NUL"]);
    expect(Builder::new(&tiny_config()).unwrap().save("a\0b"), Status::InvalidArgument, &["NUL"]);
    expect(Config::preset("vit\0_s", 0), Status::InvalidArgument, &["NUL"]);
    let model = reference_model();
    expect(model.metadata_get("k\0"), Status::InvalidArgument, &["NUL"]);
    expect(model.read_tensor("norm\0.weight"), Status::InvalidArgument, &["NUL"]);
    let mut b = Builder::new(&tiny_config()).unwrap();
    expect(b.set_metadata("key", "va\0lue"), Status::InvalidArgument, &["NUL"]);
    expect(b.set_tensor_f32("norm\0.weight", &[0.0; 64], &[64]), Status::InvalidArgument, &["NUL"]);
    let mut c = tiny_config();
    c.arch = "cus\0tom".into();
    expect(Builder::new(&c), Status::InvalidArgument, &["NUL"]);
    c.arch = "x".repeat(32);
    expect(Builder::new(&c), Status::InvalidArgument, &["arch"]);
}

#[test]
fn embedding_errors() {
    let model = reference_model();
    let (images, count) = reference_images();
    let mut ctx = Context::new(&model, 1, 4).unwrap();

    // Wrong image size: 100x100 images of the right byte count; the library refuses them.
    let small = vec![128u8; 2 * 100 * 100 * 3];
    expect(ctx.embed(&small, 2, 100, 100, EmbedFlags::NONE), Status::InvalidArgument, &["100x100", "112x112"]);
    // Zero images.
    expect(ctx.embed(&[], 0, 112, 112, EmbedFlags::NONE), Status::InvalidArgument, &["count"]);
    // Output too small: the library checks the capacity.
    let mut out = vec![0f32; count * 32 - 1];
    expect(ctx.embed_into(&images, count, 112, 112, EmbedFlags::NONE, &mut out), Status::InvalidArgument, &["capacity"]);
    let mut weights = vec![0f32; 10];
    expect(
        ctx.embed_with_patches_into(&images, count, 112, 112, EmbedFlags::NONE, None, Some(&mut weights), None),
        Status::InvalidArgument,
        &["capacity"],
    );
    // No output at all.
    expect(
        ctx.embed_with_patches_into(&images, count, 112, 112, EmbedFlags::NONE, None, None, None),
        Status::InvalidArgument,
        &[],
    );
    // Unknown flags.
    expect(ctx.embed(&images, count, 112, 112, EmbedFlags::from_bits_retain(8)), Status::InvalidArgument, &["flags"]);
    // Image buffer that does not match count x height x width x 3: caught on the Rust side.
    expect(ctx.embed(&images[..images.len() - 1], count, 112, 112, EmbedFlags::NONE), Status::InvalidArgument, &["bytes"]);
    expect(ctx.embed(&images, count + 1, 112, 112, EmbedFlags::NONE), Status::InvalidArgument, &["bytes"]);

    // The context still works after all that.
    assert!(ctx.embed(&images, count, 112, 112, EmbedFlags::NONE).is_ok());

    // Context parameters.
    expect(Context::new(&model, 0, 8), Status::InvalidArgument, &["num_threads"]);
    expect(Context::new(&model, 1, 0), Status::InvalidArgument, &["max_batch"]);
    expect(Context::new(&model, 1, usize::MAX), Status::InvalidArgument, &["max_batch"]);

    // compare.
    expect(compare(&[1.0, 2.0], &[1.0]), Status::InvalidArgument, &["length"]);
    expect(compare(&[], &[]), Status::InvalidArgument, &["dim"]);
    expect(compare(&[0.0, 0.0], &[1.0, 0.0]), Status::Numeric, &[]);
}

#[test]
fn tensor_errors() {
    let model = reference_model();
    expect(model.read_tensor("blocks.9.norm1.weight"), Status::NotFound, &["blocks.9.norm1.weight"]);
    expect(model.tensor_info("nope"), Status::NotFound, &["nope"]);
    expect(model.tensor_info_at(1000), Status::InvalidArgument, &["1000"]);
    let mut small = vec![0f32; 63];
    expect(model.read_tensor_into("norm.weight", &mut small), Status::InvalidArgument, &["capacity"]);

    let mut b = Builder::new(&tiny_config()).unwrap();
    // Unknown name.
    expect(b.set_tensor_f32("head.weight", &[0.0; 64], &[64]), Status::NotFound, &["head.weight"]);
    // Mis-shaped: the library compares the dims with the expected shape.
    expect(b.set_tensor_f32("norm.weight", &[0.0; 128], &[2, 64]), Status::InvalidArgument, &["norm.weight", "shape"]);
    expect(
        b.set_tensor_f32("blocks.0.attn.qkv.weight", &vec![0.0; 64 * 192], &[64, 192]),
        Status::InvalidArgument,
        &["shape"],
    );
    // Data that does not fill the dims: caught on the Rust side.
    expect(b.set_tensor_f32("norm.weight", &[0.0; 63], &[64]), Status::InvalidArgument, &["63"]);
    expect(b.set_tensor_f32("norm.weight", &[0.0; 64], &[-64]), Status::InvalidArgument, &["negative"]);
    // Non-finite values.
    let mut bad = vec![0.0f32; 64];
    bad[3] = f32::NAN;
    expect(b.set_tensor_f32("norm.weight", &bad, &[64]), Status::InvalidArgument, &["NaN"]);
    // Unset tensors are named by build and save.
    expect(b.build(), Status::Misuse, &["pos_embed"]);
    let path = TempPath::new("unset.tfm");
    expect(b.save(&path.0), Status::Misuse, &["pos_embed"]);
    assert!(!path.0.exists());
    // Empty metadata key.
    expect(b.set_metadata("", "v"), Status::InvalidArgument, &["key"]);
}

#[test]
fn config_errors() {
    expect(Config::preset("vit_xxl", 0), Status::NotFound, &["vit_xxl"]);
    expect(Config::preset("vit_s", -1), Status::InvalidArgument, &["embedding_size"]);
    let mut c = tiny_config();
    c.num_heads = 5;
    expect(Builder::new(&c), Status::InvalidArgument, &["num_heads"]);
    let mut c = tiny_config();
    c.img_size = 0;
    expect(Builder::new(&c), Status::InvalidArgument, &["img_size"]);

    let mut b = Builder::new(&tiny_config()).unwrap();
    b.init_weights(1).unwrap();
    let mut pre = b.build().unwrap().preprocess().clone();
    pre.input_width = 100;
    expect(b.set_preprocess(&pre), Status::InvalidArgument, &["100"]);
    pre.input_width = 112;
    pre.std = [0.5, 0.0, 0.5];
    expect(b.set_preprocess(&pre), Status::InvalidArgument, &["std"]);
    // A directory that does not exist: I/O error on save.
    let err = expect(b.save("/nonexistent-dir/x/model.tfm"), Status::Io, &[]);
    assert!(err.message.contains("nonexistent-dir"), "{err}");
}
