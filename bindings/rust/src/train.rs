//! Training (`transface_trainer`): the official TransFace iteration, checkpoints, export; and
//! DPAP's amplitude-spectrum mix of one patch.

use std::fmt;
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::error::{check, Error, Result};
use crate::ffi;
use crate::model::Model;
use crate::util::{c_path, c_string, new_handle, product, to_i32};

/// What one [`Trainer::step`] did (`transface_step_result`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepResult {
    /// The trained pass's loss.
    pub loss: f64,
    /// The no-gradient pass's loss (DPAP on), else NaN.
    pub first_pass_loss: f64,
    /// The rate this step used (a skipped batch: the next step's rate).
    pub learning_rate: f64,
    /// Backbone gradient norm before clipping (NaN: no optimizer step).
    pub gradient_norm: f64,
    /// Factor applied to the backbone gradients (1: not clipped).
    pub clip_coefficient: f64,
    /// The batch completed an optimizer step.
    pub optimizer_stepped: bool,
    /// The batch was skipped for a non-finite value (`"non_finite": "skip"` or `"reduce_lr"`).
    pub skipped: bool,
    /// Images DPAP changed.
    pub images_augmented: usize,
    /// Optimizer steps taken so far.
    pub step: u64,
    /// Wall time of the call in seconds.
    pub seconds: f64,
}

/// Where a trainer is (`transface_trainer_info`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainerInfo {
    /// Optimizer steps taken (after a resume: the checkpoint's).
    pub step: u64,
    /// Batches seen.
    pub batches: u64,
    /// The rate the next optimizer step uses (schedule times `learning_rate_scale`).
    pub learning_rate: f64,
    /// Product of the `"non_finite_lr_factor"` back-offs so far; 1 when none.
    pub learning_rate_scale: f64,
}

/// A TransFace training run (`transface_trainer`): `Send`, not `Sync`; freed on drop.
///
/// The configuration is JSON (keys in the repository's README; unknown keys are errors), e.g.
/// `{"arch": "vit_t", "num_classes": 1000, "batch_size": 32, "threads": 2}`.
pub struct Trainer {
    ptr: NonNull<ffi::transface_trainer>,
}

// SAFETY: the header allows a trainer on any thread, one thread at a time; `&mut self` on
// step and the missing Sync impl (NonNull is !Sync) enforce that.
unsafe impl Send for Trainer {}

impl Drop for Trainer {
    fn drop(&mut self) {
        // SAFETY: the handle is owned and freed once.
        unsafe { ffi::transface_trainer_free(self.ptr.as_ptr()) }
    }
}

impl fmt::Debug for Trainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trainer").field("info", &self.info().ok()).finish()
    }
}

impl Trainer {
    /// A trainer from a JSON configuration; weights from `init_model` (same architecture) or,
    /// when None, the official initialisation seeded by the configuration's `"seed"`.
    pub fn create(config_json: &str, init_model: Option<&Model>) -> Result<Trainer> {
        let json = c_string(config_json, "trainer configuration")?;
        let mut out = ptr::null_mut();
        // SAFETY: the string and the borrowed model outlive the call.
        check(unsafe {
            ffi::transface_trainer_create(json.as_ptr(), init_model.map_or(ptr::null(), Model::as_ptr), &mut out)
        })?;
        Ok(Trainer { ptr: new_handle(out, "trainer")? })
    }

    /// Continues from a checkpoint; `threads` 0 keeps the saved count (needed for bit-exact
    /// continuation).
    pub fn resume(checkpoint: impl AsRef<Path>, threads: usize) -> Result<Trainer> {
        let path = c_path(checkpoint.as_ref())?;
        let mut out = ptr::null_mut();
        // SAFETY: the path outlives the call.
        check(unsafe { ffi::transface_trainer_resume(path.as_ptr(), to_i32(threads, "threads")?, &mut out) })?;
        Ok(Trainer { ptr: new_handle(out, "trainer")? })
    }

    /// One batch: `labels.len()` RGB images of `width` x `height` (the configured size), row by
    /// row, channels interleaved, and their labels in `0..num_classes`. A non-finite loss or
    /// gradient fails with `Numeric` and changes nothing (unless `"non_finite"` says otherwise).
    pub fn step(&mut self, images: &[u8], labels: &[i32], width: usize, height: usize) -> Result<StepResult> {
        let need = product(&[labels.len(), height, width, 3], "image buffer size")?;
        if images.len() != need {
            return Err(Error::invalid(format!(
                "images holds {} bytes; {} images of {width}x{height}x3 need {need}",
                images.len(),
                labels.len()
            )));
        }
        let (w, h) = (to_i32(width, "width")?, to_i32(height, "height")?);
        let mut r = ffi::transface_step_result {
            struct_size: std::mem::size_of::<ffi::transface_step_result>() as u32,
            ..Default::default()
        };
        // SAFETY: images holds count * h * w * 3 bytes and labels count values (checked above).
        check(unsafe {
            ffi::transface_trainer_step(self.ptr.as_ptr(), images.as_ptr(), labels.as_ptr(), labels.len(), w, h, &mut r)
        })?;
        Ok(StepResult {
            loss: r.loss,
            first_pass_loss: r.first_pass_loss,
            learning_rate: r.learning_rate,
            gradient_norm: r.gradient_norm,
            clip_coefficient: r.clip_coefficient,
            optimizer_stepped: r.optimizer_stepped != 0,
            skipped: r.skipped != 0,
            images_augmented: r.images_augmented.max(0) as usize,
            step: r.step,
            seconds: r.seconds,
        })
    }

    /// Writes a checkpoint atomically (temporary file, fsync, rename): `path` always holds a
    /// complete checkpoint, the previous one if the write fails.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = c_path(path.as_ref())?;
        // SAFETY: the path outlives the call.
        check(unsafe { ffi::transface_trainer_save_checkpoint(self.ptr.as_ptr(), path.as_ptr()) })
    }

    /// Writes the current weights as a model file and returns it loaded.
    pub fn export_model(&self, path: impl AsRef<Path>) -> Result<Model> {
        let c = c_path(path.as_ref())?;
        // SAFETY: the path outlives the call.
        check(unsafe { ffi::transface_trainer_export_model(self.ptr.as_ptr(), c.as_ptr()) })?;
        Model::load(path)
    }

    /// Number of values of a tensor: a parameter by its official name, `"partial_fc.weight"`,
    /// `"gradient.<name>"` or `"optimizer.<exp_avg|exp_avg_sq|momentum_buffer>.<name>"`.
    pub fn tensor_size(&self, name: &str) -> Result<usize> {
        let c = c_string(name, "tensor name")?;
        let mut n = 0usize;
        // SAFETY: the name outlives the call.
        check(unsafe { ffi::transface_trainer_tensor_size(self.ptr.as_ptr(), c.as_ptr(), &mut n) })?;
        Ok(n)
    }

    /// A copy of a tensor's float32 values (names as [`Trainer::tensor_size`]).
    pub fn read_tensor(&self, name: &str) -> Result<Vec<f32>> {
        let mut values = vec![0f32; self.tensor_size(name)?];
        self.read_tensor_into(name, &mut values)?;
        Ok(values)
    }

    /// Copies a tensor's values into `out`, which must hold at least its size.
    pub fn read_tensor_into(&self, name: &str, out: &mut [f32]) -> Result<()> {
        let c = c_string(name, "tensor name")?;
        // SAFETY: out has out.len() writable floats.
        check(unsafe { ffi::transface_trainer_read_tensor(self.ptr.as_ptr(), c.as_ptr(), out.as_mut_ptr(), out.len()) })
    }

    /// Overwrites a tensor by the names [`Trainer::read_tensor`] reads (gradients aside) with
    /// exactly its size of finite values; on error nothing changes.
    pub fn set_tensor(&mut self, name: &str, values: &[f32]) -> Result<()> {
        let c = c_string(name, "tensor name")?;
        // SAFETY: values has values.len() readable floats; the trainer is borrowed mutably.
        check(unsafe { ffi::transface_trainer_set_tensor(self.ptr.as_ptr(), c.as_ptr(), values.as_ptr(), values.len()) })
    }

    /// Continues an official train.py run: its `checkpoint_gpu_<rank>.pt` files (or folders
    /// holding them), read without torch, configured by `config_json` (sizes must be the run's).
    pub fn import_official<P: AsRef<Path>>(checkpoints: &[P], config_json: &str) -> Result<Trainer> {
        let paths = checkpoints.iter().map(|p| c_path(p.as_ref())).collect::<Result<Vec<_>>>()?;
        let pointers: Vec<*const std::os::raw::c_char> = paths.iter().map(|p| p.as_ptr()).collect();
        let json = c_string(config_json, "trainer configuration")?;
        let mut out = ptr::null_mut();
        // SAFETY: the strings and the pointer array outlive the call.
        check(unsafe { ffi::transface_trainer_import_official(pointers.as_ptr(), pointers.len(), json.as_ptr(), &mut out) })?;
        Ok(Trainer { ptr: new_handle(out, "trainer")? })
    }

    /// The trainer's position, e.g. to continue feeding data after [`Trainer::resume`].
    pub fn info(&self) -> Result<TrainerInfo> {
        let mut r = ffi::transface_trainer_info {
            struct_size: std::mem::size_of::<ffi::transface_trainer_info>() as u32,
            ..Default::default()
        };
        // SAFETY: r is a complete struct with struct_size set.
        check(unsafe { ffi::transface_trainer_get_info(self.ptr.as_ptr(), &mut r) })?;
        Ok(TrainerInfo { step: r.step, batches: r.batches, learning_rate: r.learning_rate, learning_rate_scale: r.learning_rate_scale })
    }

    /// The raw handle, valid as long as this trainer lives.
    pub fn as_mut_ptr(&mut self) -> *mut ffi::transface_trainer {
        self.ptr.as_ptr()
    }
}

/// DPAP's amplitude-spectrum mix of one patch (the official `FFT.amplitude_spectrum_mix` with
/// a given `lambda`): `source` keeps its phase and takes `lambda * |F(partner)| + (1 - lambda) *
/// |F(source)|` inside the centred crop of side `sqrt(ratio)` (1 mixes every frequency).
/// `source` and `partner` hold `shape = [height, width, channels]` bytes, row by row, channels
/// interleaved (DPAP: `[9, 9, 3]`); returns the mixed patch, truncated to uint8.
pub fn amplitude_mix(source: &[u8], partner: &[u8], shape: [usize; 3], lambda: f64, ratio: f64) -> Result<Vec<u8>> {
    let [h, w, c] = shape;
    let n = product(&shape, "patch size")?;
    if source.len() != n || partner.len() != n {
        return Err(Error::invalid(format!(
            "patches of shape {shape:?} need {n} bytes each; source has {}, partner {}",
            source.len(),
            partner.len()
        )));
    }
    let mut out = vec![0u8; n];
    // SAFETY: source and partner hold n bytes (checked), out n writable bytes.
    check(unsafe {
        ffi::transface_amplitude_mix(
            source.as_ptr(),
            partner.as_ptr(),
            to_i32(h, "height")?,
            to_i32(w, "width")?,
            to_i32(c, "channels")?,
            lambda,
            ratio,
            out.as_mut_ptr(),
            out.len(),
        )
    })?;
    Ok(out)
}
