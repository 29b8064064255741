//! Raw declarations of the C ABI in `include/transface.h`, written by hand (no bindgen).
//!
//! Everything here mirrors the header one to one: the functions, the `#[repr(C)]` structs,
//! the enum constants (C enums are `unsigned int` here: all their values are non-negative) and
//! the flags. Use the safe wrappers of the crate root unless you need the raw calls.
//! Every one of the header's 106 functions is declared here.

#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_uint};
use core::marker::{PhantomData, PhantomPinned};

// ------------------------------------------------------------------ versions

pub const TRANSFACE_VERSION_MAJOR: u32 = 0;
pub const TRANSFACE_VERSION_MINOR: u32 = 2;
pub const TRANSFACE_VERSION_PATCH: u32 = 0;
/// `MAJOR * 10000 + MINOR * 100 + PATCH` of the header these declarations were written for.
pub const TRANSFACE_VERSION_NUMBER: u32 =
    TRANSFACE_VERSION_MAJOR * 10000 + TRANSFACE_VERSION_MINOR * 100 + TRANSFACE_VERSION_PATCH;
/// Version of the model file layout.
pub const TRANSFACE_FORMAT_VERSION: u32 = 1;

// ------------------------------------------------------------------ errors

/// `enum transface_status`.
pub type transface_status = c_uint;

/// A parameter struct filled by its `transface_<x>_params_init`, which writes exactly
/// `size_of::<T>()` bytes whatever the library's own version of the struct (the by-value
/// `*_default_params` getters would not be safe against an older library).
pub(crate) fn defaults<T>(init: unsafe extern "C" fn(*mut T, u32) -> transface_status) -> T {
    let mut p = core::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: `p` is writable for size_of::<T>() bytes, the size passed; every T here is a
    // plain C struct for which all-zero bytes are valid.
    let status = unsafe { init(p.as_mut_ptr(), core::mem::size_of::<T>() as u32) };
    debug_assert_eq!(status, TRANSFACE_OK, "params_init refused the size of this binding's struct");
    unsafe { p.assume_init() }
}
pub const TRANSFACE_OK: transface_status = 0;
pub const TRANSFACE_INVALID_ARGUMENT: transface_status = 1;
pub const TRANSFACE_IO: transface_status = 2;
pub const TRANSFACE_FORMAT: transface_status = 3;
pub const TRANSFACE_OUT_OF_MEMORY: transface_status = 4;
pub const TRANSFACE_ABORTED: transface_status = 5;
pub const TRANSFACE_NUMERIC: transface_status = 6;
pub const TRANSFACE_MISUSE: transface_status = 7;
pub const TRANSFACE_INTERNAL: transface_status = 8;
pub const TRANSFACE_NOT_FOUND: transface_status = 9;

// ------------------------------------------------------------------ configuration

/// `struct transface_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct transface_config {
    pub struct_size: u32,
    /// Preset name or "custom"; NUL-terminated.
    pub arch: [c_char; 32],
    pub img_size: i32,
    pub patch_size: i32,
    pub in_channels: i32,
    pub embed_dim: i32,
    pub depth: i32,
    pub num_heads: i32,
    pub mlp_hidden_dim: i32,
    pub embedding_size: i32,
    pub drop_path_rate: f32,
    pub mask_ratio: f32,
    pub no_se_gate: i32,
}

/// `enum transface_channel_order`.
pub type transface_channel_order = c_uint;
pub const TRANSFACE_CHANNELS_RGB: transface_channel_order = 0;
pub const TRANSFACE_CHANNELS_BGR: transface_channel_order = 1;

/// `struct transface_preprocess`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct transface_preprocess {
    pub struct_size: u32,
    pub input_width: i32,
    pub input_height: i32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// A `transface_channel_order` value, stored as `int32_t`.
    pub channel_order: i32,
    pub align_template: [f32; 10],
}

// ------------------------------------------------------------------ models

/// Opaque `transface_model`.
#[repr(C)]
pub struct transface_model {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `struct transface_load_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct transface_load_params {
    pub struct_size: u32,
    pub verify_checksums: i32,
    pub max_weight_bytes: u64,
}

/// `struct transface_tensor_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct transface_tensor_info {
    pub struct_size: u32,
    /// Lives as long as the model or builder.
    pub name: *const c_char,
    pub ndim: i32,
    pub dims: [i64; 4],
    pub count: usize,
}

// ------------------------------------------------------------------ inference

/// Opaque `transface_context`.
#[repr(C)]
pub struct transface_context {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `struct transface_context_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct transface_context_params {
    pub struct_size: u32,
    pub num_threads: i32,
    pub max_batch: i32,
    /// `transface_precision` (since 0.2).
    pub precision: i32,
}

/// `TRANSFACE_PRECISION_FP32`: float32 throughout.
pub const TRANSFACE_PRECISION_FP32: i32 = 0;
/// `TRANSFACE_PRECISION_BF16`: bfloat16 GEMMs (AVX512_BF16 or AMX CPUs).
pub const TRANSFACE_PRECISION_BF16: i32 = 1;

/// Add the mirrored image's embedding (official TTA).
pub const TRANSFACE_EMBED_FLIP: u32 = 1;
/// Return the raw (summed) embedding, not unit length.
pub const TRANSFACE_EMBED_NO_NORMALIZE: u32 = 2;

// ------------------------------------------------------------------ building model files

/// Opaque `transface_builder`.
#[repr(C)]
pub struct transface_builder {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `enum transface_dtype`.
pub type transface_dtype = c_uint;
pub const TRANSFACE_DTYPE_F32: transface_dtype = 0;
pub const TRANSFACE_DTYPE_F16: transface_dtype = 1;
pub const TRANSFACE_DTYPE_BF16: transface_dtype = 2;

// The library itself is linked by build.rs (`cargo:rustc-link-lib=dylib=transface`).
extern "C" {
    // versions
    pub fn transface_version_number() -> u32;
    pub fn transface_version_string() -> *const c_char;
    pub fn transface_format_version() -> u32;

    // errors
    pub fn transface_status_string(status: transface_status) -> *const c_char;
    pub fn transface_last_error() -> *const c_char;

    // configuration
    pub fn transface_config_preset(
        name: *const c_char,
        embedding_size: i32,
        out: *mut transface_config,
    ) -> transface_status;
    pub fn transface_config_preset_count() -> usize;
    pub fn transface_config_preset_name(index: usize) -> *const c_char;

    // models
    pub fn transface_load_default_params() -> transface_load_params;
    pub fn transface_load_params_init(params: *mut transface_load_params, size: u32) -> transface_status;
    pub fn transface_model_load(
        path: *const c_char,
        params: *const transface_load_params,
        out_model: *mut *mut transface_model,
    ) -> transface_status;
    pub fn transface_model_free(model: *mut transface_model);
    pub fn transface_model_get_config(
        model: *const transface_model,
        out: *mut transface_config,
    ) -> transface_status;
    pub fn transface_model_get_preprocess(
        model: *const transface_model,
        out: *mut transface_preprocess,
    ) -> transface_status;
    pub fn transface_model_embedding_size(model: *const transface_model) -> i32;
    pub fn transface_model_metadata_count(model: *const transface_model) -> usize;
    pub fn transface_model_metadata_at(
        model: *const transface_model,
        index: usize,
        out_key: *mut *const c_char,
        out_value: *mut *const c_char,
    ) -> transface_status;
    pub fn transface_model_metadata_get(
        model: *const transface_model,
        key: *const c_char,
        out_value: *mut *const c_char,
    ) -> transface_status;
    pub fn transface_model_tensor_count(model: *const transface_model) -> usize;
    pub fn transface_model_tensor_info(
        model: *const transface_model,
        index: usize,
        out: *mut transface_tensor_info,
    ) -> transface_status;
    pub fn transface_model_read_tensor(
        model: *const transface_model,
        name: *const c_char,
        out: *mut f32,
        capacity: usize,
    ) -> transface_status;

    // inference
    pub fn transface_context_default_params() -> transface_context_params;
    pub fn transface_context_params_init(params: *mut transface_context_params, size: u32) -> transface_status;
    pub fn transface_context_create(
        model: *const transface_model,
        params: *const transface_context_params,
        out_context: *mut *mut transface_context,
    ) -> transface_status;
    pub fn transface_context_free(context: *mut transface_context);
    pub fn transface_embed(
        context: *mut transface_context,
        images: *const u8,
        count: usize,
        width: i32,
        height: i32,
        flags: u32,
        embeddings: *mut f32,
        capacity: usize,
    ) -> transface_status;
    pub fn transface_embed_with_patches(
        context: *mut transface_context,
        images: *const u8,
        count: usize,
        width: i32,
        height: i32,
        flags: u32,
        embeddings: *mut f32,
        embeddings_capacity: usize,
        patch_weights: *mut f32,
        patch_weights_capacity: usize,
        patch_std: *mut f32,
        patch_std_capacity: usize,
    ) -> transface_status;
    pub fn transface_compare(
        a: *const f32,
        b: *const f32,
        dim: usize,
        out_cosine: *mut f32,
    ) -> transface_status;

    // building model files
    pub fn transface_builder_create(
        config: *const transface_config,
        out_builder: *mut *mut transface_builder,
    ) -> transface_status;
    pub fn transface_builder_free(builder: *mut transface_builder);
    pub fn transface_builder_tensor_count(builder: *const transface_builder) -> usize;
    pub fn transface_builder_tensor_info(
        builder: *const transface_builder,
        index: usize,
        out: *mut transface_tensor_info,
    ) -> transface_status;
    pub fn transface_builder_set_tensor(
        builder: *mut transface_builder,
        name: *const c_char,
        data: *const core::ffi::c_void,
        dtype: transface_dtype,
        dims: *const i64,
        ndim: i32,
    ) -> transface_status;
    pub fn transface_builder_init_weights(builder: *mut transface_builder, seed: u64) -> transface_status;
    pub fn transface_builder_set_preprocess(
        builder: *mut transface_builder,
        preprocess: *const transface_preprocess,
    ) -> transface_status;
    pub fn transface_builder_set_metadata(
        builder: *mut transface_builder,
        key: *const c_char,
        value: *const c_char,
    ) -> transface_status;
    pub fn transface_builder_save(builder: *const transface_builder, path: *const c_char) -> transface_status;
    pub fn transface_builder_build(
        builder: *const transface_builder,
        out_model: *mut *mut transface_model,
    ) -> transface_status;
}

// ------------------------------------------------------------------ converting official state_dicts

/// The `note` callback of `transface_convert_params`: one UTF-8 line, valid for the call only.
pub type transface_convert_note = Option<unsafe extern "C" fn(user_data: *mut core::ffi::c_void, line: *const c_char)>;

/// `struct transface_convert_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct transface_convert_params {
    pub struct_size: u32,
    /// Attention heads; 0: from arch, else 8 (noted).
    pub num_heads: i32,
    /// 0: from feature.2.weight; else must agree with it.
    pub embedding_size: i32,
    /// Input side; 0: 112 when it fits the grid of pos_embed, else grid * patch.
    pub img_size: i32,
    /// Official preset name; NULL: "custom".
    pub arch: *const c_char,
    /// `metadata_count` (key, value) pairs: key i at `metadata[2i]`, value at `metadata[2i+1]`.
    pub metadata: *const *const c_char,
    pub metadata_count: usize,
    /// Called on the calling thread with each note, after a successful call.
    pub note: transface_convert_note,
    /// Passed to `note`.
    pub user_data: *mut core::ffi::c_void,
}

extern "C" {
    pub fn transface_convert_default_params() -> transface_convert_params;
    pub fn transface_convert_params_init(params: *mut transface_convert_params, size: u32) -> transface_status;
    pub fn transface_convert_state_dict(
        src_path: *const c_char,
        params: *const transface_convert_params,
        out_path: *const c_char,
        out_config: *mut transface_config,
    ) -> transface_status;
    pub fn transface_convert_infer_config(
        names: *const *const c_char,
        ndims: *const i32,
        dims: *const i64,
        count: usize,
        params: *const transface_convert_params,
        out_config: *mut transface_config,
    ) -> transface_status;
}

/// Byte offset of a field in the layout tests below (rust-version 1.70 has no `offset_of!`).
#[cfg(test)]
macro_rules! offset {
    ($t:ty, $f:ident) => {{
        let v = core::mem::MaybeUninit::<$t>::uninit();
        // SAFETY: only the field's address is taken, nothing is read.
        unsafe { core::ptr::addr_of!((*v.as_ptr()).$f) as usize - v.as_ptr() as usize }
    }};
}

#[cfg(test)]
mod convert_layout_tests {
    use super::*;
    use core::mem::{align_of, size_of};


    /// Sizes and offsets as gcc lays out the header on LP64 Linux (56 bytes: the struct's
    /// first released size, ConvertExports.swift's firstReleasedSize).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn convert_params_layout_matches_the_header() {
        assert_eq!(size_of::<transface_convert_params>(), 56);
        assert_eq!(align_of::<transface_convert_params>(), 8);
        assert_eq!(offset!(transface_convert_params, num_heads), 4);
        assert_eq!(offset!(transface_convert_params, embedding_size), 8);
        assert_eq!(offset!(transface_convert_params, img_size), 12);
        assert_eq!(offset!(transface_convert_params, arch), 16);
        assert_eq!(offset!(transface_convert_params, metadata), 24);
        assert_eq!(offset!(transface_convert_params, metadata_count), 32);
        assert_eq!(offset!(transface_convert_params, note), 40);
        assert_eq!(offset!(transface_convert_params, user_data), 48);
        assert_eq!(size_of::<transface_convert_note>(), size_of::<usize>());
    }

    #[test]
    fn convert_defaults() {
        // SAFETY: returns a struct by value (this binding's header is the library's).
        let p = unsafe { transface_convert_default_params() };
        assert_eq!(p.struct_size as usize, size_of::<transface_convert_params>());
        let q = defaults(transface_convert_params_init);
        assert_eq!(q.struct_size as usize, size_of::<transface_convert_params>());
        for p in [p, q] {
            assert_eq!((p.num_heads, p.embedding_size, p.img_size, p.metadata_count), (0, 0, 0, 0));
            assert!(p.arch.is_null() && p.metadata.is_null() && p.note.is_none() && p.user_data.is_null());
        }
        // A struct_size below the first released size is refused.
        let mut small = core::mem::MaybeUninit::<transface_convert_params>::zeroed();
        // SAFETY: the struct is writable for its whole size; only 8 bytes are claimed.
        assert_eq!(unsafe { transface_convert_params_init(small.as_mut_ptr(), 8) }, TRANSFACE_INVALID_ARGUMENT);
    }
}

// ------------------------------------------------------------------ images (decoding, alignment)

/// `enum transface_image_format`.
pub type transface_image_format = c_uint;
pub const TRANSFACE_IMAGE_JPEG: transface_image_format = 1;
pub const TRANSFACE_IMAGE_PNG: transface_image_format = 2;
pub const TRANSFACE_IMAGE_PNM: transface_image_format = 3;

/// `struct transface_decode_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct transface_decode_params {
    pub struct_size: u32,
    /// Refuse images with more pixels before allocating; 0 = no limit.
    pub max_pixels: u64,
    /// 1: return damaged JPEGs as libjpeg reconstructs them.
    pub accept_damaged: i32,
}

/// `struct transface_image_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct transface_image_info {
    pub struct_size: u32,
    pub width: i32,
    pub height: i32,
    /// A `transface_image_format` value.
    pub format: i32,
    /// Channels stored in the file: 1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha or CMYK.
    pub channels: i32,
}

/// `enum transface_pixel_format`.
pub type transface_pixel_format = c_uint;
pub const TRANSFACE_PIXELS_RGB: transface_pixel_format = 0;
pub const TRANSFACE_PIXELS_BGR: transface_pixel_format = 1;
pub const TRANSFACE_PIXELS_RGBA: transface_pixel_format = 2;
pub const TRANSFACE_PIXELS_BGRA: transface_pixel_format = 3;
pub const TRANSFACE_PIXELS_GRAY: transface_pixel_format = 4;

extern "C" {
    pub fn transface_decode_default_params() -> transface_decode_params;
    pub fn transface_decode_params_init(params: *mut transface_decode_params, size: u32) -> transface_status;
    pub fn transface_decode_image(
        data: *const u8,
        size: usize,
        params: *const transface_decode_params,
        out_rgb: *mut u8,
        capacity: usize,
        out_info: *mut transface_image_info,
    ) -> transface_status;
    pub fn transface_decode_file(
        path: *const c_char,
        params: *const transface_decode_params,
        out_rgb: *mut u8,
        capacity: usize,
        out_info: *mut transface_image_info,
    ) -> transface_status;
    pub fn transface_alignment_template(size: i32, out_points: *mut f32) -> transface_status;
    pub fn transface_estimate_similarity(src: *const f32, dst: *const f32, out_matrix: *mut f64) -> transface_status;
    pub fn transface_warp_affine(
        image: *const u8,
        width: i32,
        height: i32,
        stride: usize,
        format: transface_pixel_format,
        matrix: *const f64,
        out_width: i32,
        out_height: i32,
        out_rgb: *mut u8,
        capacity: usize,
    ) -> transface_status;
    pub fn transface_align_face(
        image: *const u8,
        width: i32,
        height: i32,
        stride: usize,
        format: transface_pixel_format,
        landmarks: *const f32,
        template_points: *const f32,
        out_size: i32,
        out_rgb: *mut u8,
        capacity: usize,
        out_matrix: *mut f64,
    ) -> transface_status;
}

#[cfg(test)]
mod image_layout_tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn image_struct_layouts_match_the_header() {
        assert_eq!(size_of::<transface_decode_params>(), 24);
        assert_eq!(size_of::<transface_image_info>(), 20);
        unsafe {
            let p = transface_decode_default_params();
            assert_eq!(p.struct_size as usize, size_of::<transface_decode_params>());
            assert_eq!((p.max_pixels, p.accept_damaged), (100_000_000, 0));
        }
    }
}

// ------------------------------------------------------------------ datasets

/// `struct transface_recordio` (opaque).
#[repr(C)]
pub struct transface_recordio {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `struct transface_bin` (opaque).
#[repr(C)]
pub struct transface_bin {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `enum transface_recordio_layout`.
pub type transface_recordio_layout = c_uint;
pub const TRANSFACE_RECORDIO_FLAT: transface_recordio_layout = 0;
pub const TRANSFACE_RECORDIO_LEGACY: transface_recordio_layout = 1;

/// `struct transface_pack_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct transface_pack_params {
    pub struct_size: u32,
    /// A `transface_recordio_layout` value.
    pub layout: i32,
    pub image_width: i32,
    pub image_height: i32,
    /// 0: store files byte for byte; 1..100: re-encode non-JPEG images as JPEG of this quality.
    pub jpeg_quality: i32,
}

extern "C" {
    pub fn transface_recordio_open(path: *const c_char, out_recordio: *mut *mut transface_recordio) -> transface_status;
    pub fn transface_recordio_close(recordio: *mut transface_recordio);
    pub fn transface_recordio_count(recordio: *const transface_recordio) -> usize;
    pub fn transface_recordio_num_classes(recordio: *const transface_recordio) -> usize;
    pub fn transface_recordio_read(
        recordio: *const transface_recordio,
        index: usize,
        out_label: *mut i32,
        image: *mut u8,
        capacity: usize,
        out_size: *mut usize,
    ) -> transface_status;
    pub fn transface_pack_default_params() -> transface_pack_params;
    pub fn transface_pack_params_init(params: *mut transface_pack_params, size: u32) -> transface_status;
    pub fn transface_recordio_pack(
        source: *const c_char,
        root: *const c_char,
        output_dir: *const c_char,
        params: *const transface_pack_params,
        out_images: *mut usize,
    ) -> transface_status;
    pub fn transface_bin_open(path: *const c_char, out_bin: *mut *mut transface_bin) -> transface_status;
    pub fn transface_bin_close(bin: *mut transface_bin);
    pub fn transface_bin_pair_count(bin: *const transface_bin) -> usize;
    pub fn transface_bin_image(
        bin: *const transface_bin,
        index: usize,
        out_data: *mut *const u8,
        out_size: *mut usize,
    ) -> transface_status;
    pub fn transface_bin_issame(bin: *const transface_bin, out_issame: *mut u8, capacity: usize) -> transface_status;
    pub fn transface_bin_write(
        path: *const c_char,
        images: *const *const u8,
        sizes: *const usize,
        issame: *const u8,
        pairs: usize,
        protocol: i32,
    ) -> transface_status;
}

// ------------------------------------------------------------------ evaluation

pub const TRANSFACE_MAX_FOLDS: usize = 64;
pub const TRANSFACE_VERIFY_THRESHOLDS: usize = 400;

/// `struct transface_verify_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct transface_verify_params {
    pub struct_size: u32,
    pub folds: i32,
    pub interleaved: i32,
    pub flip: i32,
    pub far_target: f64,
    pub pair_naming: *const c_char,
    pub landmark_source: *const c_char,
}

/// `struct transface_verify_result`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct transface_verify_result {
    pub struct_size: u32,
    pub folds: i32,
    pub pairs: usize,
    pub accuracy_mean: f64,
    pub accuracy_std: f64,
    pub fold_accuracy: [f64; TRANSFACE_MAX_FOLDS],
    pub fold_threshold: [f64; TRANSFACE_MAX_FOLDS],
    pub best_threshold: f64,
    pub best_accuracy: f64,
    pub far_target: f64,
    pub val_mean: f64,
    pub val_std: f64,
    pub far_mean: f64,
    pub xnorm: f64,
    pub images: usize,
}

extern "C" {
    pub fn transface_verify_default_params() -> transface_verify_params;
    pub fn transface_verify_params_init(params: *mut transface_verify_params, size: u32) -> transface_status;
    pub fn transface_pair_distances(
        emb1: *const f32,
        emb2: *const f32,
        pairs: usize,
        dim: usize,
        out_distances: *mut f64,
    ) -> transface_status;
    pub fn transface_verify_embeddings(
        emb1: *const f32,
        emb2: *const f32,
        issame: *const u8,
        pairs: usize,
        dim: usize,
        params: *const transface_verify_params,
        out: *mut transface_verify_result,
    ) -> transface_status;
    pub fn transface_verify_distances(
        distances: *const f64,
        issame: *const u8,
        pairs: usize,
        params: *const transface_verify_params,
        out: *mut transface_verify_result,
    ) -> transface_status;
    pub fn transface_verify_roc(
        distances: *const f64,
        issame: *const u8,
        pairs: usize,
        params: *const transface_verify_params,
        out_thresholds: *mut f64,
        out_tpr: *mut f64,
        out_fpr: *mut f64,
        capacity: usize,
    ) -> transface_status;
    pub fn transface_roc_curve(
        scores: *const f64,
        labels: *const u8,
        n: usize,
        out_fpr: *mut f64,
        out_tpr: *mut f64,
        out_thresholds: *mut f64,
        capacity: usize,
        out_points: *mut usize,
    ) -> transface_status;
    pub fn transface_tar_at_far(
        scores: *const f64,
        labels: *const u8,
        n: usize,
        fars: *const f64,
        nfars: usize,
        out_tar: *mut f64,
        out_thresholds: *mut f64,
    ) -> transface_status;
    pub fn transface_evaluate_bin(
        context: *mut transface_context,
        bin_path: *const c_char,
        params: *const transface_verify_params,
        out: *mut transface_verify_result,
    ) -> transface_status;
    pub fn transface_evaluate_pairs(
        context: *mut transface_context,
        pairs_path: *const c_char,
        image_root: *const c_char,
        landmarks_path: *const c_char,
        params: *const transface_verify_params,
        out: *mut transface_verify_result,
    ) -> transface_status;
}

/// `struct transface_ijb_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct transface_ijb_params {
    pub struct_size: u32,
    /// F1: add the mirrored face's embedding (1, official).
    pub flip: i32,
    /// N1: keep each image feature's norm (0).
    pub use_norm_score: i32,
    /// D1: weight each image feature by its faceness score (0).
    pub use_detector_score: i32,
    /// Folder the image names are relative to; NULL = `<ijb_dir>/loose_crop`.
    pub image_dir: *const c_char,
}

/// `struct transface_ijb_summary`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct transface_ijb_summary {
    pub struct_size: u32,
    /// "IJBB" or "IJBC", NUL-terminated.
    pub dataset: [c_char; 8],
    pub images: usize,
    pub templates: usize,
    pub pairs: usize,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    pub roc_points: usize,
    pub auc: f64,
}

extern "C" {
    pub fn transface_ijb_default_params() -> transface_ijb_params;
    pub fn transface_ijb_params_init(params: *mut transface_ijb_params, size: u32) -> transface_status;
    pub fn transface_evaluate_ijb(
        context: *mut transface_context,
        ijb_dir: *const c_char,
        dataset: *const c_char,
        params: *const transface_ijb_params,
        fars: *const f64,
        nfars: usize,
        out_tar: *mut f64,
        out_thresholds: *mut f64,
        capacity: usize,
        out: *mut transface_ijb_summary,
    ) -> transface_status;
}

// ------------------------------------------------------------------ training

/// Opaque `transface_trainer`.
#[repr(C)]
pub struct transface_trainer {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `struct transface_step_result`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct transface_step_result {
    pub struct_size: u32,
    pub loss: f64,
    /// The no-gradient pass's loss (DPAP on), else NaN.
    pub first_pass_loss: f64,
    pub learning_rate: f64,
    /// Backbone gradient norm before clipping (NaN: no optimizer step).
    pub gradient_norm: f64,
    pub clip_coefficient: f64,
    pub optimizer_stepped: i32,
    pub skipped: i32,
    pub images_augmented: i32,
    pub step: u64,
    pub seconds: f64,
}

/// `struct transface_trainer_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct transface_trainer_info {
    pub struct_size: u32,
    pub step: u64,
    pub batches: u64,
    pub learning_rate: f64,
    pub learning_rate_scale: f64,
}

extern "C" {
    pub fn transface_amplitude_mix(
        source: *const u8,
        partner: *const u8,
        height: i32,
        width: i32,
        channels: i32,
        lambda: f64,
        ratio: f64,
        out: *mut u8,
        capacity: usize,
    ) -> transface_status;
    pub fn transface_trainer_create(
        config_json: *const c_char,
        init_model: *const transface_model,
        out_trainer: *mut *mut transface_trainer,
    ) -> transface_status;
    pub fn transface_trainer_resume(
        checkpoint_path: *const c_char,
        num_threads: i32,
        out_trainer: *mut *mut transface_trainer,
    ) -> transface_status;
    pub fn transface_trainer_free(trainer: *mut transface_trainer);
    pub fn transface_trainer_step(
        trainer: *mut transface_trainer,
        images: *const u8,
        labels: *const i32,
        count: usize,
        width: i32,
        height: i32,
        out: *mut transface_step_result,
    ) -> transface_status;
    pub fn transface_trainer_save_checkpoint(trainer: *const transface_trainer, path: *const c_char) -> transface_status;
    pub fn transface_trainer_export_model(trainer: *const transface_trainer, path: *const c_char) -> transface_status;
    pub fn transface_trainer_tensor_size(
        trainer: *const transface_trainer,
        name: *const c_char,
        out_count: *mut usize,
    ) -> transface_status;
    pub fn transface_trainer_read_tensor(
        trainer: *const transface_trainer,
        name: *const c_char,
        out: *mut f32,
        capacity: usize,
    ) -> transface_status;
    pub fn transface_trainer_set_tensor(
        trainer: *mut transface_trainer,
        name: *const c_char,
        data: *const f32,
        count: usize,
    ) -> transface_status;
    pub fn transface_trainer_import_official(
        paths: *const *const c_char,
        count: usize,
        config_json: *const c_char,
        out_trainer: *mut *mut transface_trainer,
    ) -> transface_status;
    pub fn transface_trainer_get_info(
        trainer: *const transface_trainer,
        out: *mut transface_trainer_info,
    ) -> transface_status;
}

// ------------------------------------------------------------------ face detection (MTCNN)

/// Opaque `transface_detector`: the buffers of one stream, used from one thread at a time.
#[repr(C)]
pub struct transface_detector {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `enum transface_landmark_box`.
pub type transface_landmark_box = c_uint;
/// The original MTCNN's truncated crop box (default).
pub const TRANSFACE_LANDMARKS_TRUNCATED: transface_landmark_box = 0;
/// facenet-pytorch 2.6.0's arithmetic exactly.
pub const TRANSFACE_LANDMARKS_FACENET: transface_landmark_box = 1;

/// `struct transface_detector_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct transface_detector_params {
    pub struct_size: u32,
    /// Workers including the calling thread (1).
    pub num_threads: i32,
    /// Smallest face in pixels; 0: the file's (20).
    pub min_face_size: i32,
    /// Pyramid step in (0.1, 1); 0: the file's (0.709).
    pub scale_factor: f32,
    /// P-, R-, O-Net score thresholds; 0 each: the file's (0.6, 0.7, 0.7).
    pub thresholds: [f32; 3],
    /// A `transface_landmark_box` value, stored as `int32_t`.
    pub landmark_box: i32,
}

/// `struct transface_face`: box and landmarks in pixels of the image given.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct transface_face {
    pub struct_size: u32,
    /// x1, y1, x2, y2.
    pub r#box: [f32; 4],
    /// O-Net's face probability.
    pub score: f32,
    /// x, y of the left eye, right eye, nose, left and right mouth corners.
    pub landmarks: [f32; 10],
}

extern "C" {
    pub fn transface_detector_default_params() -> transface_detector_params;
    pub fn transface_detector_params_init(params: *mut transface_detector_params, size: u32) -> transface_status;
    pub fn transface_detector_load(
        path: *const c_char,
        params: *const transface_detector_params,
        out_detector: *mut *mut transface_detector,
    ) -> transface_status;
    pub fn transface_detector_free(detector: *mut transface_detector);
    /// `out_faces` is an array whose elements are `out_faces[0].struct_size` bytes apart;
    /// `*out_count` is the number of faces found, the first min(count, capacity) are written.
    pub fn transface_detect(
        detector: *mut transface_detector,
        image: *const u8,
        width: i32,
        height: i32,
        stride: usize,
        format: transface_pixel_format,
        out_faces: *mut transface_face,
        capacity: usize,
        out_count: *mut usize,
    ) -> transface_status;
    /// `TRANSFACE_NOT_FOUND` when the image has no face.
    pub fn transface_detect_main_face(
        detector: *mut transface_detector,
        image: *const u8,
        width: i32,
        height: i32,
        stride: usize,
        format: transface_pixel_format,
        out_face: *mut transface_face,
    ) -> transface_status;
    /// `TRANSFACE_NOT_FOUND` when the photo has no face; `out_face` may be NULL.
    pub fn transface_embed_photo(
        context: *mut transface_context,
        detector: *mut transface_detector,
        image: *const u8,
        width: i32,
        height: i32,
        stride: usize,
        format: transface_pixel_format,
        flags: u32,
        embedding: *mut f32,
        capacity: usize,
        out_face: *mut transface_face,
    ) -> transface_status;
}

// ------------------------------------------------------------------ 1:N gallery

/// Opaque `transface_gallery`: any number of threads may search it at once; enrolment and
/// removal run alone.
#[repr(C)]
pub struct transface_gallery {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `enum transface_gallery_storage`.
pub type transface_gallery_storage = c_uint;
pub const TRANSFACE_GALLERY_FLOAT32: transface_gallery_storage = 0;
/// Half the memory.
pub const TRANSFACE_GALLERY_FLOAT16: transface_gallery_storage = 1;
/// A quarter of the memory (int8 with a scale per row).
pub const TRANSFACE_GALLERY_INT8: transface_gallery_storage = 2;

/// `struct transface_gallery_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct transface_gallery_params {
    pub struct_size: u32,
    /// A `transface_gallery_storage` value of a new gallery (an existing one keeps its own).
    pub storage: i32,
    /// 1: no writes, no writer lock (0).
    pub read_only: i32,
    /// Workers of one search (1).
    pub search_threads: i32,
    /// A `transface_gallery_index` value (appended; EXACT).
    pub index: i32,
    /// HNSW links per node (16).
    pub hnsw_m: i32,
    /// HNSW build beam (200).
    pub hnsw_ef_construction: i32,
    /// HNSW search beam (64).
    pub hnsw_ef_search: i32,
    /// Seed of the HNSW node levels (100).
    pub hnsw_seed: u64,
}

/// `transface_gallery_index`: how a gallery searches.
pub type transface_gallery_index = u32;
/// Every row scored.
pub const TRANSFACE_GALLERY_EXACT: transface_gallery_index = 0;
/// An HNSW graph proposes rows, scored exactly (approximate).
pub const TRANSFACE_GALLERY_HNSW: transface_gallery_index = 1;

/// `struct transface_match`: one search result.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct transface_match {
    pub struct_size: u32,
    /// Cosine of the query and the identity's best embedding.
    pub score: f32,
    /// 1 when score >= the threshold given.
    pub passes: i32,
    /// That embedding's id.
    pub entry_id: u64,
    /// Valid until the gallery is closed.
    pub label: *const c_char,
}

extern "C" {
    pub fn transface_gallery_default_params() -> transface_gallery_params;
    pub fn transface_gallery_params_init(params: *mut transface_gallery_params, size: u32) -> transface_status;
    /// `model` may be NULL to open an existing gallery read-only; `params` may be NULL (defaults).
    pub fn transface_gallery_open(
        path: *const c_char,
        model: *const transface_model,
        params: *const transface_gallery_params,
        out_gallery: *mut *mut transface_gallery,
    ) -> transface_status;
    pub fn transface_gallery_close(gallery: *mut transface_gallery);
    /// `metadata` holds `2 * metadata_count` strings (key, value, ...); `out_ids` NULL or `count` entries.
    pub fn transface_gallery_enrol(
        gallery: *mut transface_gallery,
        label: *const c_char,
        embeddings: *const f32,
        count: usize,
        dim: usize,
        metadata: *const *const c_char,
        metadata_count: usize,
        out_ids: *mut u64,
    ) -> transface_status;
    /// `TRANSFACE_NOT_FOUND` when `label` has no embeddings.
    pub fn transface_gallery_remove(
        gallery: *mut transface_gallery,
        label: *const c_char,
        out_removed: *mut usize,
    ) -> transface_status;
    pub fn transface_gallery_count(gallery: *const transface_gallery) -> usize;
    pub fn transface_gallery_identity_count(gallery: *const transface_gallery) -> usize;
    /// Identity `index` (sorted by label); the label is valid until the gallery is closed.
    pub fn transface_gallery_identity(
        gallery: *mut transface_gallery,
        index: usize,
        out_label: *mut *const c_char,
        out_count: *mut usize,
    ) -> transface_status;
    /// `out_matches` holds `count * k` elements `out_matches[0].struct_size` bytes apart;
    /// `out_found` has `count` entries.
    pub fn transface_gallery_search(
        gallery: *mut transface_gallery,
        queries: *const f32,
        count: usize,
        dim: usize,
        k: usize,
        threshold: f32,
        out_matches: *mut transface_match,
        capacity: usize,
        out_found: *mut usize,
    ) -> transface_status;
}

#[cfg(test)]
mod gallery_layout_tests {
    use super::*;
    use core::mem::{align_of, size_of};

    /// Sizes and offsets as gcc lays out the header on LP64 Linux (GalleryExports.swift's
    /// firstReleasedSize: 16 and 32).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn gallery_struct_layouts_match_the_header() {
        assert_eq!(size_of::<transface_gallery_params>(), 40);
        assert_eq!(align_of::<transface_gallery_params>(), 8);
        assert_eq!(offset!(transface_gallery_params, storage), 4);
        assert_eq!(offset!(transface_gallery_params, read_only), 8);
        assert_eq!(offset!(transface_gallery_params, search_threads), 12);
        assert_eq!(offset!(transface_gallery_params, index), 16);
        assert_eq!(offset!(transface_gallery_params, hnsw_ef_search), 28);
        assert_eq!(offset!(transface_gallery_params, hnsw_seed), 32);
        assert_eq!(size_of::<transface_match>(), 32);
        assert_eq!(align_of::<transface_match>(), 8);
        assert_eq!(offset!(transface_match, score), 4);
        assert_eq!(offset!(transface_match, passes), 8);
        assert_eq!(offset!(transface_match, entry_id), 16);
        assert_eq!(offset!(transface_match, label), 24);
    }

    #[test]
    fn gallery_defaults() {
        // SAFETY: returns a struct by value (this binding's header is the library's).
        let p = unsafe { transface_gallery_default_params() };
        let q = defaults(transface_gallery_params_init);
        for p in [p, q] {
            assert_eq!(p.struct_size as usize, size_of::<transface_gallery_params>());
            assert_eq!((p.storage as u32, p.read_only, p.search_threads), (TRANSFACE_GALLERY_FLOAT32, 0, 1));
            assert_eq!((p.index as u32, p.hnsw_m, p.hnsw_ef_construction, p.hnsw_ef_search, p.hnsw_seed), (TRANSFACE_GALLERY_EXACT, 16, 200, 64, 100));
        }
    }
}

#[cfg(test)]
mod detect_layout_tests {
    use super::*;
    use core::mem::{align_of, size_of};

    /// Sizes and offsets as gcc lays out the header on LP64 Linux.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn detector_struct_layouts_match_the_header() {
        assert_eq!(size_of::<transface_detector_params>(), 32);
        assert_eq!(align_of::<transface_detector_params>(), 4);
        assert_eq!(offset!(transface_detector_params, num_threads), 4);
        assert_eq!(offset!(transface_detector_params, min_face_size), 8);
        assert_eq!(offset!(transface_detector_params, scale_factor), 12);
        assert_eq!(offset!(transface_detector_params, thresholds), 16);
        assert_eq!(offset!(transface_detector_params, landmark_box), 28);
        assert_eq!(size_of::<transface_face>(), 64);
        assert_eq!(align_of::<transface_face>(), 4);
        assert_eq!(offset!(transface_face, r#box), 4);
        assert_eq!(offset!(transface_face, score), 20);
        assert_eq!(offset!(transface_face, landmarks), 24);
    }

    #[test]
    fn detector_defaults() {
        // SAFETY: returns a struct by value (this binding's header is the library's).
        let p = unsafe { transface_detector_default_params() };
        let q = defaults(transface_detector_params_init);
        for p in [p, q] {
            assert_eq!(p.struct_size as usize, size_of::<transface_detector_params>());
            assert_eq!((p.num_threads, p.min_face_size, p.scale_factor), (1, 0, 0.0));
            assert_eq!(p.thresholds, [0.0; 3]);
            assert_eq!(p.landmark_box as u32, TRANSFACE_LANDMARKS_TRUNCATED);
        }
    }
}

#[cfg(test)]
mod ijb_train_layout_tests {
    use super::*;
    use core::mem::size_of;


    /// Sizes and offsets as gcc lays out the header on LP64 Linux.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn ijb_and_train_struct_layouts_match_the_header() {
        assert_eq!(size_of::<transface_ijb_params>(), 24);
        assert_eq!(offset!(transface_ijb_params, image_dir), 16);
        assert_eq!(size_of::<transface_ijb_summary>(), 72);
        assert_eq!(offset!(transface_ijb_summary, images), 16);
        assert_eq!(offset!(transface_ijb_summary, auc), 64);
        assert_eq!(size_of::<transface_step_result>(), 80);
        assert_eq!(offset!(transface_step_result, optimizer_stepped), 48);
        assert_eq!(offset!(transface_step_result, step), 64);
        assert_eq!(offset!(transface_step_result, seconds), 72);
        assert_eq!(size_of::<transface_trainer_info>(), 40);
        // SAFETY: returns a struct by value.
        let p = unsafe { transface_ijb_default_params() };
        assert_eq!(p.struct_size as usize, size_of::<transface_ijb_params>());
        assert_eq!((p.flip, p.use_norm_score, p.use_detector_score, p.image_dir), (1, 0, 0, core::ptr::null()));
    }
}

#[cfg(test)]
mod data_eval_layout_tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn data_eval_struct_layouts_match_the_header() {
        assert_eq!(size_of::<transface_pack_params>(), 20);
        assert_eq!(size_of::<transface_verify_params>(), 40);
        assert_eq!(size_of::<transface_verify_result>(), 8 + 8 + 16 + 2 * 8 * TRANSFACE_MAX_FOLDS + 7 * 8 + 8);
        unsafe {
            let p = transface_verify_default_params();
            assert_eq!(p.struct_size as usize, size_of::<transface_verify_params>());
            assert_eq!((p.folds, p.interleaved, p.flip, p.far_target), (10, 0, 1, 1e-3));
            let q = transface_pack_default_params();
            assert_eq!(q.struct_size as usize, size_of::<transface_pack_params>());
        }
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use core::mem::{align_of, size_of};

    /// Sizes and offsets as gcc lays out the header on x86_64 / aarch64 Linux (LP64).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn struct_layout_matches_the_header() {
        assert_eq!(size_of::<transface_config>(), 80);
        assert_eq!(align_of::<transface_config>(), 4);
        assert_eq!(size_of::<transface_preprocess>(), 80);
        assert_eq!(size_of::<transface_load_params>(), 16);
        assert_eq!(align_of::<transface_load_params>(), 8);
        assert_eq!(size_of::<transface_tensor_info>(), 64);
        assert_eq!(size_of::<transface_context_params>(), 16);
        assert_eq!(size_of::<transface_status>(), 4);

        let ti = core::mem::MaybeUninit::<transface_tensor_info>::uninit();
        let base = ti.as_ptr() as usize;
        // SAFETY: only field addresses are taken, nothing is read.
        unsafe {
            assert_eq!(core::ptr::addr_of!((*ti.as_ptr()).name) as usize - base, 8);
            assert_eq!(core::ptr::addr_of!((*ti.as_ptr()).ndim) as usize - base, 16);
            assert_eq!(core::ptr::addr_of!((*ti.as_ptr()).dims) as usize - base, 24);
            assert_eq!(core::ptr::addr_of!((*ti.as_ptr()).count) as usize - base, 56);
        }
        let c = core::mem::MaybeUninit::<transface_config>::uninit();
        let base = c.as_ptr() as usize;
        unsafe {
            assert_eq!(core::ptr::addr_of!((*c.as_ptr()).img_size) as usize - base, 36);
            assert_eq!(core::ptr::addr_of!((*c.as_ptr()).mask_ratio) as usize - base, 72);
            assert_eq!(core::ptr::addr_of!((*c.as_ptr()).no_se_gate) as usize - base, 76);
        }
        let p = core::mem::MaybeUninit::<transface_preprocess>::uninit();
        let base = p.as_ptr() as usize;
        unsafe {
            assert_eq!(core::ptr::addr_of!((*p.as_ptr()).channel_order) as usize - base, 36);
            assert_eq!(core::ptr::addr_of!((*p.as_ptr()).align_template) as usize - base, 40);
        }
    }

    #[test]
    fn default_params_report_their_size() {
        unsafe {
            assert_eq!(transface_load_default_params().struct_size as usize, size_of::<transface_load_params>());
            assert_eq!(
                transface_context_default_params().struct_size as usize,
                size_of::<transface_context_params>()
            );
            assert_eq!(transface_version_number(), TRANSFACE_VERSION_NUMBER);
            assert_eq!(transface_format_version(), TRANSFACE_FORMAT_VERSION);
        }
    }
}
