//! Inference (`transface_context`): embeddings and per-patch outputs.

use std::fmt;
use std::ptr::{self, NonNull};

use crate::error::{check, Error, Result};
use crate::ffi;
use crate::model::Model;
use crate::util::{new_handle, product, to_i32};

/// Flags of the embedding calls (`TRANSFACE_EMBED_*`); combine with `|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EmbedFlags(u32);

impl EmbedFlags {
    /// Unit-length embeddings of the images as given.
    pub const NONE: EmbedFlags = EmbedFlags(0);
    /// Add the mirrored image's embedding (official TTA).
    pub const FLIP: EmbedFlags = EmbedFlags(ffi::TRANSFACE_EMBED_FLIP);
    /// Return the raw (summed) embedding, not unit length.
    pub const NO_NORMALIZE: EmbedFlags = EmbedFlags(ffi::TRANSFACE_EMBED_NO_NORMALIZE);

    /// Any bits, passed through unchecked (the library refuses unknown ones).
    pub const fn from_bits_retain(bits: u32) -> EmbedFlags {
        EmbedFlags(bits)
    }
    /// The raw `TRANSFACE_EMBED_*` bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: EmbedFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for EmbedFlags {
    type Output = EmbedFlags;
    fn bitor(self, rhs: EmbedFlags) -> EmbedFlags {
        EmbedFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for EmbedFlags {
    fn bitor_assign(&mut self, rhs: EmbedFlags) {
        self.0 |= rhs.0
    }
}

/// Outputs of [`Context::embed_with_patches`], image after image.
#[derive(Clone, Debug, PartialEq)]
pub struct Patches {
    /// count * E.
    pub embeddings: Vec<f32>,
    /// count * P: softmax of the SE gate of the unflipped image (DPAP's ranking).
    pub patch_weights: Vec<f32>,
    /// count * P: unbiased std of each gated token (EHSM's entropy proxy).
    pub patch_std: Vec<f32>,
}

/// Buffers of one inference stream (`transface_context`): `Send`, not `Sync`.
///
/// The context holds a clone of its [`Model`] (an [`Arc`](std::sync::Arc)), so the weights stay alive as long
/// as the context does, whatever happens to the `Model` value it was created from.
pub struct Context {
    ptr: NonNull<ffi::transface_context>,
    model: Model,
}

// SAFETY: a context may be used from any thread, one thread at a time: `&mut self` methods and
// the missing Sync impl (NonNull is !Sync) enforce the "one at a time".
unsafe impl Send for Context {}

impl Drop for Context {
    fn drop(&mut self) {
        unsafe { ffi::transface_context_free(self.ptr.as_ptr()) }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").field("model", &self.model).finish_non_exhaustive()
    }
}

/// Arithmetic of a context's token GEMMs (`transface_precision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// float32 throughout.
    #[default]
    Fp32,
    /// bfloat16 weights and GEMM inputs with float32 accumulation (AVX512_BF16 or AMX CPUs).
    Bf16,
}

impl Precision {
    fn code(self) -> i32 {
        match self {
            Precision::Fp32 => ffi::TRANSFACE_PRECISION_FP32,
            Precision::Bf16 => ffi::TRANSFACE_PRECISION_BF16,
        }
    }
}

/// Options of [`Context::create`] (`transface_context_params`). Build it with
/// `ContextParams { threads: 2, ..Default::default() }` so that fields added later keep
/// their defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextParams {
    /// Worker threads including the calling thread (1).
    pub threads: usize,
    /// Images per forward pass; larger requests run in chunks (8).
    pub max_batch: usize,
    /// Arithmetic of the token GEMMs (float32).
    pub precision: Precision,
}

impl Default for ContextParams {
    /// The library's defaults (`transface_context_default_params`).
    fn default() -> ContextParams {
        // SAFETY: returns a struct by value.
        let p = ffi::defaults(ffi::transface_context_params_init);
        ContextParams {
            threads: p.num_threads.max(0) as usize,
            max_batch: p.max_batch.max(0) as usize,
            precision: if p.precision == ffi::TRANSFACE_PRECISION_BF16 { Precision::Bf16 } else { Precision::Fp32 },
        }
    }
}

impl ContextParams {
    fn to_c(self) -> Result<ffi::transface_context_params> {
        // SAFETY: returns a struct by value, struct_size set by the library.
        let mut p = ffi::defaults(ffi::transface_context_params_init);
        p.struct_size = std::mem::size_of::<ffi::transface_context_params>() as u32;
        p.num_threads = to_i32(self.threads, "threads")?;
        p.max_batch = to_i32(self.max_batch, "max_batch")?;
        p.precision = self.precision.code();
        Ok(p)
    }
}

impl Context {
    /// Inference buffers for `model` (nothing is allocated per call). `Precision::Bf16` is
    /// refused with `InvalidArgument` on CPUs without bf16 instructions.
    pub fn create(model: &Model, params: &ContextParams) -> Result<Context> {
        let p = params.to_c()?;
        let mut out = ptr::null_mut();
        // SAFETY: the model handle is alive (borrowed); p is a complete struct.
        check(unsafe { ffi::transface_context_create(model.as_ptr(), &p, &mut out) })?;
        Ok(Context { ptr: new_handle(out, "context")?, model: model.clone() })
    }

    /// Shorthand for [`Context::create`] with `threads` and `max_batch`, float32.
    pub fn new(model: &Model, threads: usize, max_batch: usize) -> Result<Context> {
        Context::create(model, &ContextParams { threads, max_batch, precision: Precision::Fp32 })
    }

    /// As [`Context::new`] with a precision.
    #[deprecated(since = "0.3.0", note = "use Context::create(&model, &ContextParams { threads, max_batch, precision })")]
    pub fn with_precision(model: &Model, threads: usize, max_batch: usize, precision: Precision) -> Result<Context> {
        Context::create(model, &ContextParams { threads, max_batch, precision })
    }

    /// The model this context runs.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The raw handle, valid as long as this context lives.
    pub fn as_mut_ptr(&mut self) -> *mut ffi::transface_context {
        self.ptr.as_ptr()
    }

    /// Checks on the Rust side what the library cannot: that `images` holds exactly
    /// `count * height * width * 3` bytes. (Sizes that do not match the model are reported by
    /// the library; such calls never read the pixels.)
    fn check_images(&self, images: &[u8], count: usize, width: usize, height: usize) -> Result<(i32, i32)> {
        let w = to_i32(width, "width")?;
        let h = to_i32(height, "height")?;
        let channels = 3usize.max(self.model.config().in_channels.max(0) as usize);
        let need = product(&[count, height, width, 3], "image buffer size")?;
        let read = product(&[count, height, width, channels], "image buffer size")?;
        if images.len() != need || images.len() < read {
            return Err(Error::invalid(format!(
                "images holds {} bytes; {count} images of {width}x{height}x3 need {need}",
                images.len()
            )));
        }
        Ok((w, h))
    }

    /// Embeds `count` aligned faces of `width` x `height` (the model's input size), stored
    /// row by row with interleaved R, G, B channels (whatever the model's channel order).
    /// Returns count * E floats, unit length unless `flags` has [`EmbedFlags::NO_NORMALIZE`].
    pub fn embed(
        &mut self,
        images: &[u8],
        count: usize,
        width: usize,
        height: usize,
        flags: EmbedFlags,
    ) -> Result<Vec<f32>> {
        self.check_images(images, count, width, height)?;
        let mut out = vec![0f32; product(&[count, self.model.embedding_size()], "embedding buffer size")?];
        self.embed_into(images, count, width, height, flags, &mut out)?;
        Ok(out)
    }

    /// As [`Context::embed`], writing into `out` (at least count * E floats).
    pub fn embed_into(
        &mut self,
        images: &[u8],
        count: usize,
        width: usize,
        height: usize,
        flags: EmbedFlags,
        out: &mut [f32],
    ) -> Result<()> {
        let (w, h) = self.check_images(images, count, width, height)?;
        check(unsafe {
            ffi::transface_embed(self.ptr.as_ptr(), images.as_ptr(), count, w, h, flags.bits(), out.as_mut_ptr(), out.len())
        })
    }

    /// Embeddings plus the per-patch outputs of the unflipped images.
    pub fn embed_with_patches(
        &mut self,
        images: &[u8],
        count: usize,
        width: usize,
        height: usize,
        flags: EmbedFlags,
    ) -> Result<Patches> {
        self.check_images(images, count, width, height)?;
        let e = product(&[count, self.model.embedding_size()], "embedding buffer size")?;
        let p = product(&[count, self.model.num_patches()], "patch buffer size")?;
        let mut out = Patches { embeddings: vec![0f32; e], patch_weights: vec![0f32; p], patch_std: vec![0f32; p] };
        self.embed_with_patches_into(
            images,
            count,
            width,
            height,
            flags,
            Some(&mut out.embeddings),
            Some(&mut out.patch_weights),
            Some(&mut out.patch_std),
        )?;
        Ok(out)
    }

    /// As [`Context::embed_with_patches`] into caller buffers; `None` skips an output (at
    /// least one is needed).
    #[allow(clippy::too_many_arguments)]
    pub fn embed_with_patches_into(
        &mut self,
        images: &[u8],
        count: usize,
        width: usize,
        height: usize,
        flags: EmbedFlags,
        embeddings: Option<&mut [f32]>,
        patch_weights: Option<&mut [f32]>,
        patch_std: Option<&mut [f32]>,
    ) -> Result<()> {
        let (w, h) = self.check_images(images, count, width, height)?;
        fn raw(b: Option<&mut [f32]>) -> (*mut f32, usize) {
            b.map_or((ptr::null_mut(), 0), |b| (b.as_mut_ptr(), b.len()))
        }
        let (e, ec) = raw(embeddings);
        let (pw, pwc) = raw(patch_weights);
        let (ps, psc) = raw(patch_std);
        check(unsafe {
            ffi::transface_embed_with_patches(
                self.ptr.as_ptr(),
                images.as_ptr(),
                count,
                w,
                h,
                flags.bits(),
                e,
                ec,
                pw,
                pwc,
                ps,
                psc,
            )
        })
    }
}

/// Cosine similarity of two embeddings of the same length (need not be normalised).
pub fn compare(a: &[f32], b: &[f32]) -> Result<f32> {
    if a.len() != b.len() {
        return Err(Error::invalid(format!("embeddings have different lengths: {} and {}", a.len(), b.len())));
    }
    let mut out = 0f32;
    check(unsafe { ffi::transface_compare(a.as_ptr(), b.as_ptr(), a.len(), &mut out) })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let f = EmbedFlags::FLIP | EmbedFlags::NO_NORMALIZE;
        assert_eq!(f.bits(), 3);
        assert!(f.contains(EmbedFlags::FLIP));
        assert!(!EmbedFlags::NONE.contains(EmbedFlags::FLIP));
    }

    #[test]
    fn default_params_are_the_library_defaults() {
        let p = ContextParams::default();
        assert_eq!((p.threads, p.max_batch, p.precision), (1, 8, Precision::Fp32));
        let c = p.to_c().unwrap();
        assert_eq!(c.struct_size as usize, std::mem::size_of::<ffi::transface_context_params>());
    }
}
