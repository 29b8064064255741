//! Raw declarations of the C ABI in `include/transface.h`, written by hand (no bindgen).
//!
//! Everything here mirrors the header one to one: the functions, the `#[repr(C)]` structs,
//! the enum constants (C enums are `unsigned int` here: all their values are non-negative) and
//! the flags. Use the safe wrappers of the crate root unless you need the raw calls.

#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_uint};
use core::marker::{PhantomData, PhantomPinned};

// ------------------------------------------------------------------ versions

pub const TRANSFACE_VERSION_MAJOR: u32 = 0;
pub const TRANSFACE_VERSION_MINOR: u32 = 1;
pub const TRANSFACE_VERSION_PATCH: u32 = 0;
/// `MAJOR * 10000 + MINOR * 100 + PATCH` of the header these declarations were written for.
pub const TRANSFACE_VERSION_NUMBER: u32 =
    TRANSFACE_VERSION_MAJOR * 10000 + TRANSFACE_VERSION_MINOR * 100 + TRANSFACE_VERSION_PATCH;
/// Version of the model file layout.
pub const TRANSFACE_FORMAT_VERSION: u32 = 1;

// ------------------------------------------------------------------ errors

/// `enum transface_status`.
pub type transface_status = c_uint;
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
}

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

#[cfg(test)]
mod layout_tests {
    use super::*;
    use core::mem::{align_of, size_of};

    /// Sizes and offsets as gcc lays out the header on x86_64 / aarch64 Linux (LP64).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn struct_layout_matches_the_header() {
        assert_eq!(size_of::<transface_config>(), 76);
        assert_eq!(align_of::<transface_config>(), 4);
        assert_eq!(size_of::<transface_preprocess>(), 80);
        assert_eq!(size_of::<transface_load_params>(), 16);
        assert_eq!(align_of::<transface_load_params>(), 8);
        assert_eq!(size_of::<transface_tensor_info>(), 64);
        assert_eq!(size_of::<transface_context_params>(), 12);
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
