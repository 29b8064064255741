//! Building model files tensor by tensor (`transface_builder`).

use std::fmt;
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::config::{Config, Preprocess, TensorInfo};
use crate::error::{check, Error, Result};
use crate::ffi;
use crate::model::Model;
use crate::util::{c_path, c_string, new_handle, to_i32};

/// Assembles a model tensor by tensor (`transface_builder`): `Send`, not `Sync`.
pub struct Builder {
    ptr: NonNull<ffi::transface_builder>,
}

// SAFETY: one thread at a time, enforced by the missing Sync impl and `&mut self` setters.
unsafe impl Send for Builder {}

impl Drop for Builder {
    fn drop(&mut self) {
        unsafe { ffi::transface_builder_free(self.ptr.as_ptr()) }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder").finish_non_exhaustive()
    }
}

impl Builder {
    /// A model of the given architecture with every tensor unset, official preprocessing and
    /// no metadata.
    pub fn new(config: &Config) -> Result<Builder> {
        let c = config.to_ffi()?;
        let mut out = ptr::null_mut();
        check(unsafe { ffi::transface_builder_create(&c, &mut out) })?;
        Ok(Builder { ptr: new_handle(out, "builder")? })
    }

    /// The tensors the architecture expects, in layout order.
    pub fn tensor_infos(&self) -> Vec<TensorInfo> {
        let n = unsafe { ffi::transface_builder_tensor_count(self.ptr.as_ptr()) };
        (0..n)
            .filter_map(|i| {
                TensorInfo::fetch(|out| unsafe { ffi::transface_builder_tensor_info(self.ptr.as_ptr(), i, out) }).ok()
            })
            .collect()
    }

    fn set_tensor<T>(&mut self, name: &str, data: &[T], dtype: ffi::transface_dtype, dims: &[i64]) -> Result<()> {
        let cname = c_string(name, "tensor name")?;
        // The library reads as many values as the expected shape has, once `dims` equals it:
        // `data` must hold exactly the product of `dims`.
        let mut count = 1usize;
        for &d in dims {
            let d = usize::try_from(d).map_err(|_| Error::invalid(format!("tensor '{name}': negative dimension in {dims:?}")))?;
            count = count
                .checked_mul(d)
                .ok_or_else(|| Error::invalid(format!("tensor '{name}': dims {dims:?} overflow")))?;
        }
        if data.len() != count {
            return Err(Error::invalid(format!(
                "tensor '{name}': {} values given for dims {dims:?} ({count} values)",
                data.len()
            )));
        }
        let ndim = to_i32(dims.len(), "ndim")?;
        check(unsafe {
            ffi::transface_builder_set_tensor(self.ptr.as_ptr(), cname.as_ptr(), data.as_ptr().cast(), dtype, dims.as_ptr(), ndim)
        })
    }

    /// Sets one tensor by its official name from float32 values; `dims` must be its shape.
    pub fn set_tensor_f32(&mut self, name: &str, data: &[f32], dims: &[i64]) -> Result<()> {
        self.set_tensor(name, data, ffi::TRANSFACE_DTYPE_F32, dims)
    }

    /// Sets one tensor from IEEE float16 bit patterns.
    pub fn set_tensor_f16(&mut self, name: &str, data: &[u16], dims: &[i64]) -> Result<()> {
        self.set_tensor(name, data, ffi::TRANSFACE_DTYPE_F16, dims)
    }

    /// Sets one tensor from bfloat16 bit patterns.
    pub fn set_tensor_bf16(&mut self, name: &str, data: &[u16], dims: &[i64]) -> Result<()> {
        self.set_tensor(name, data, ffi::TRANSFACE_DTYPE_BF16, dims)
    }

    /// Initialises every tensor as the official code does, from a seed.
    pub fn init_weights(&mut self, seed: u64) -> Result<()> {
        check(unsafe { ffi::transface_builder_init_weights(self.ptr.as_ptr(), seed) })
    }

    /// Replaces the preprocessing stored with the model (official by default).
    pub fn set_preprocess(&mut self, preprocess: &Preprocess) -> Result<()> {
        let p = preprocess.to_ffi();
        check(unsafe { ffi::transface_builder_set_preprocess(self.ptr.as_ptr(), &p) })
    }

    /// Adds or replaces a metadata entry.
    pub fn set_metadata(&mut self, key: &str, value: &str) -> Result<()> {
        let key = c_string(key, "metadata key")?;
        let value = c_string(value, "metadata value")?;
        check(unsafe { ffi::transface_builder_set_metadata(self.ptr.as_ptr(), key.as_ptr(), value.as_ptr()) })
    }

    /// Writes the model file atomically. Fails while any tensor is unset, naming it.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = c_path(path.as_ref())?;
        check(unsafe { ffi::transface_builder_save(self.ptr.as_ptr(), path.as_ptr()) })
    }

    /// An in-memory model (a copy of the builder's weights).
    pub fn build(&self) -> Result<Model> {
        let mut out = ptr::null_mut();
        check(unsafe { ffi::transface_builder_build(self.ptr.as_ptr(), &mut out) })?;
        unsafe { Model::from_raw(out) }
    }
}
