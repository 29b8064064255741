//! Parity with the official tiny reference (PyTorch), save/load round trip, API surface.

mod common;

use common::*;
use transface::{compare, Builder, ChannelOrder, Config, Context, EmbedFlags, LoadParams, Model, Status};

#[test]
fn versions() {
    assert_eq!(transface::version_number(), transface::ffi::TRANSFACE_VERSION_NUMBER);
    assert_eq!(transface::version(), "0.2.0");
    assert_eq!(transface::format_version(), transface::ffi::TRANSFACE_FORMAT_VERSION);
}

#[test]
fn embeddings_and_patches_match_the_reference() {
    let model = reference_model();
    assert_eq!(model.embedding_size(), 32);
    assert_eq!(model.num_patches(), 144);
    let (images, count) = reference_images();
    let mut ctx = Context::new(&model, 1, 8).unwrap();

    let out = ctx.embed_with_patches(&images, count, 112, 112, EmbedFlags::NO_NORMALIZE).unwrap();
    let e = compare_to_reference("embedding", &out.embeddings, reference("eval/embedding.npy").f32());
    let w = compare_to_reference("patch_weights", &out.patch_weights, reference("eval/se_weight_softmax.npy").f32());
    let s = compare_to_reference("patch_std", &out.patch_std, reference("eval/patch_std.npy").f32());
    println!("max rel errors: embedding {e:.3e}, patch weights {w:.3e}, patch std {s:.3e}");

    // embed() gives the same embeddings as embed_with_patches().
    let plain = ctx.embed(&images, count, 112, 112, EmbedFlags::NO_NORMALIZE).unwrap();
    assert_eq!(plain, out.embeddings);

    // Partial outputs through the _into variant.
    let mut weights = vec![0f32; count * 144];
    ctx.embed_with_patches_into(&images, count, 112, 112, EmbedFlags::NONE, None, Some(&mut weights), None).unwrap();
    assert_eq!(weights, out.patch_weights);
}

#[test]
fn default_embeddings_are_unit_length() {
    let model = reference_model();
    let (images, count) = reference_images();
    let mut ctx = Context::new(&model, 1, 8).unwrap();
    let unit = ctx.embed(&images, count, 112, 112, EmbedFlags::NONE).unwrap();
    let raw = ctx.embed(&images, count, 112, 112, EmbedFlags::NO_NORMALIZE).unwrap();
    for (u, r) in unit.chunks(32).zip(raw.chunks(32)) {
        let norm = u.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        let rn = r.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        for (a, b) in u.iter().zip(r) {
            assert!((*a as f64 - *b as f64 / rn).abs() < 1e-6);
        }
        // compare() of an embedding with itself (normalised or not) is 1.
        assert!((compare(u, r).unwrap() - 1.0).abs() < 1e-6);
    }
    // Different faces are not identical.
    assert!(compare(&unit[..32], &unit[32..64]).unwrap() < 0.9999);
}

#[test]
fn flip_adds_the_mirrored_embedding() {
    let model = reference_model();
    let (images, count) = reference_images();
    let mut mirrored = images.clone();
    for img in mirrored.chunks_mut(112 * 112 * 3) {
        for row in img.chunks_mut(112 * 3) {
            for x in 0..56 {
                for c in 0..3 {
                    row.swap(x * 3 + c, (111 - x) * 3 + c);
                }
            }
        }
    }
    let mut ctx = Context::new(&model, 1, 3).unwrap();
    let raw = ctx.embed(&images, count, 112, 112, EmbedFlags::NO_NORMALIZE).unwrap();
    let raw_mirror = ctx.embed(&mirrored, count, 112, 112, EmbedFlags::NO_NORMALIZE).unwrap();
    let flipped = ctx.embed(&images, count, 112, 112, EmbedFlags::FLIP | EmbedFlags::NO_NORMALIZE).unwrap();
    let sum: Vec<f32> = raw.iter().zip(&raw_mirror).map(|(a, b)| a + b).collect();
    compare_to_reference("flip = embed(x) + embed(mirror(x))", &flipped, &sum);
}

/// Embeddings of the reference images with contexts of several max_batch values, and one
/// image at a time.
fn batch_variants() -> (Vec<f32>, Vec<(String, Vec<f32>)>) {
    let model = reference_model();
    let (images, count) = reference_images();
    let flags = EmbedFlags::NO_NORMALIZE;
    let all = Context::new(&model, 1, 8).unwrap().embed(&images, count, 112, 112, flags).unwrap();
    let mut variants = Vec::new();
    for max_batch in [1, 2, 3, 4] {
        let out = Context::new(&model, 1, max_batch).unwrap().embed(&images, count, 112, 112, flags).unwrap();
        variants.push((format!("max_batch {max_batch}"), out));
    }
    let image = 112 * 112 * 3;
    let mut ctx = Context::new(&model, 1, 8).unwrap();
    let mut split = vec![0f32; count * 32];
    for i in 0..count {
        ctx.embed_into(&images[i * image..(i + 1) * image], 1, 112, 112, flags, &mut split[i * 32..(i + 1) * 32])
            .unwrap();
    }
    variants.push(("one image per call".into(), split));
    (all, variants)
}

#[test]
fn results_do_not_depend_on_max_batch_or_splitting() {
    let (all, variants) = batch_variants();
    for (what, out) in variants {
        compare_to_reference(&format!("{what} vs max_batch 8"), &out, &all);
    }
}

/// The header promises "Results do not depend on max_batch or on how images are split between
/// calls".
#[test]
fn results_are_bitwise_independent_of_max_batch() {
    let (all, variants) = batch_variants();
    for (what, out) in variants {
        assert_eq!(out, all, "{what}");
    }
}

#[test]
fn save_load_round_trip() {
    let mut builder = reference_builder();
    builder.set_metadata("source", "official tiny reference").unwrap();
    builder.set_metadata("note", "héllo ✓").unwrap();
    builder.set_metadata("note", "replaced").unwrap();
    let path = TempPath::new("roundtrip.tfm");
    builder.save(&path.0).unwrap();
    let built = builder.build().unwrap();
    drop(builder);

    let loaded = Model::load(&path.0).unwrap();
    let no_check = Model::load_with(&path.0, LoadParams { verify_checksums: false, max_weight_bytes: 0 }).unwrap();
    assert_eq!(loaded.config(), &tiny_config());
    assert_eq!(loaded.config(), built.config());
    assert_eq!(loaded.preprocess(), built.preprocess());
    assert_eq!(
        loaded.metadata(),
        vec![("source".to_string(), "official tiny reference".to_string()), ("note".to_string(), "replaced".to_string())]
    );
    assert_eq!(loaded.metadata_get("note").unwrap().as_deref(), Some("replaced"));
    assert_eq!(loaded.metadata_get("absent").unwrap(), None);
    assert_eq!(built.metadata(), loaded.metadata());

    // Tensors: same names, shapes and values as the reference files.
    assert_eq!(loaded.tensor_infos(), built.tensor_infos());
    let names = loaded.tensor_names();
    assert_eq!(names.len(), 40);
    assert_eq!(names[0], "pos_embed");
    for info in loaded.tensor_infos() {
        let npy = reference(&format!("param/{}.npy", info.name));
        assert_eq!(info.dims, npy.dims_i64());
        assert_eq!(info.count, npy.f32().len());
        assert_eq!(loaded.read_tensor(&info.name).unwrap(), npy.f32(), "{}", info.name);
    }
    assert_eq!(loaded.tensor_info("norm.weight").unwrap().dims, vec![64]);
    assert_eq!(loaded.tensor_info_at(0).unwrap().name, "pos_embed");

    // Identical embeddings.
    let (images, count) = reference_images();
    let flags = EmbedFlags::NO_NORMALIZE;
    let a = Context::new(&built, 1, 8).unwrap().embed_with_patches(&images, count, 112, 112, flags).unwrap();
    let b = Context::new(&loaded, 1, 8).unwrap().embed_with_patches(&images, count, 112, 112, flags).unwrap();
    let c = Context::new(&no_check, 1, 8).unwrap().embed_with_patches(&images, count, 112, 112, flags).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);

    // max_weight_bytes refuses a model that is too large.
    let err = Model::load_with(&path.0, LoadParams { verify_checksums: true, max_weight_bytes: 1000 }).unwrap_err();
    assert_eq!(err.status, Status::InvalidArgument, "{err}");
}

#[test]
fn presets_and_configs() {
    let names = Config::presets();
    assert_eq!(
        names,
        ["vit_t", "vit_t_dp005_mask0", "vit_s", "vit_s_dp005_mask_0", "vit_b", "vit_b_dp005_mask_005", "vit_l_dp005_mask_005"]
    );
    let s = Config::preset("vit_s", 0).unwrap();
    assert_eq!((s.arch.as_str(), s.img_size, s.patch_size, s.embed_dim, s.depth, s.num_heads), ("vit_s", 112, 9, 512, 12, 8));
    assert_eq!((s.mlp_hidden_dim, s.embedding_size, s.in_channels), (2048, 512, 3));
    assert_eq!(Config::preset("vit_t", 128).unwrap().embedding_size, 128);
    for name in names {
        assert_eq!(Config::preset(name, 0).unwrap().arch, name);
    }
}

#[test]
fn builder_with_init_weights_preprocess_and_half_tensors() {
    let mut config = tiny_config();
    config.depth = 1;
    config.embedding_size = 16;
    let mut builder = Builder::new(&config).unwrap();
    assert!(builder.build().is_err(), "unset tensors must be refused");
    builder.init_weights(7).unwrap();

    let mut pre = builder.build().unwrap().preprocess().clone();
    assert_eq!((pre.input_width, pre.input_height, pre.mean, pre.std), (112, 112, [0.5; 3], [0.5; 3]));
    assert_eq!(pre.channel_order, ChannelOrder::Rgb);
    pre.channel_order = ChannelOrder::Bgr;
    pre.mean = [0.4, 0.5, 0.6];
    builder.set_preprocess(&pre).unwrap();

    // float16 / bfloat16: 1.5 is 0x3E00 in f16 and 0x3FC0 in bf16; -2 is 0xC000 / 0xC000.
    builder.set_tensor_f16("norm.weight", &[0x3E00; 64], &[64]).unwrap();
    builder.set_tensor_bf16("norm.bias", &[0xC000; 64], &[64]).unwrap();

    let model = builder.build().unwrap();
    assert_eq!(model.preprocess(), &pre);
    assert_eq!(model.read_tensor("norm.weight").unwrap(), vec![1.5f32; 64]);
    assert_eq!(model.read_tensor("norm.bias").unwrap(), vec![-2f32; 64]);
    assert_eq!(model.embedding_size(), 16);

    // Same seed, same weights.
    let mut again = Builder::new(&config).unwrap();
    again.init_weights(7).unwrap();
    let again = again.build().unwrap();
    assert_eq!(again.read_tensor("pos_embed").unwrap(), model.read_tensor("pos_embed").unwrap());

    // A context keeps its model alive after the Model value is dropped.
    let mut ctx = Context::new(&model, 1, 2).unwrap();
    drop(model);
    let (images, count) = reference_images();
    let out = ctx.embed(&images, count, 112, 112, EmbedFlags::FLIP).unwrap();
    assert_eq!(out.len(), count * 16);
    assert!(out.iter().all(|x| x.is_finite()));
    assert_eq!(ctx.model().embedding_size(), 16);
}
