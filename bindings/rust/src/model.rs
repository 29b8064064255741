//! Loaded models (`transface_model`): immutable, shared between threads.

use std::fmt;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use crate::config::{empty_config, empty_preprocess, Config, Preprocess, TensorInfo};
use crate::error::{check, Error, Result, Status};
use crate::ffi;
use crate::util::{c_path, c_string, new_handle, owned_string};

/// Options of [`Model::load_with`] (`transface_load_params`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadParams {
    /// Check the header's and every tensor's CRC-32 (default true).
    pub verify_checksums: bool,
    /// Refuse files whose weights exceed this many bytes; 0 = no limit (default).
    pub max_weight_bytes: u64,
}

impl Default for LoadParams {
    fn default() -> LoadParams {
        let p = ffi::defaults(ffi::transface_load_params_init);
        LoadParams { verify_checksums: p.verify_checksums != 0, max_weight_bytes: p.max_weight_bytes }
    }
}

/// The library handle shared by the clones of a [`Model`] and by its contexts.
struct ModelHandle {
    ptr: NonNull<ffi::transface_model>,
    config: Config,
    preprocess: Preprocess,
}

// SAFETY: the header guarantees a transface_model is immutable after loading and may be used
// from any number of threads; freeing it from another thread than the one that loaded it is
// fine (it is reference counted by the library).
unsafe impl Send for ModelHandle {}
unsafe impl Sync for ModelHandle {}

impl Drop for ModelHandle {
    fn drop(&mut self) {
        unsafe { ffi::transface_model_free(self.ptr.as_ptr()) }
    }
}

/// A loaded model: immutable, `Send + Sync`; clones share the same weights.
#[derive(Clone)]
pub struct Model {
    inner: Arc<ModelHandle>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Model {
    /// Loads a model file (.tfm) with the default [`LoadParams`].
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        check(unsafe { ffi::transface_model_load(path.as_ptr(), ptr::null(), &mut out) })?;
        // SAFETY: a fresh handle owned by nobody else.
        unsafe { Model::from_raw(out) }
    }

    /// Loads a model file with explicit parameters.
    pub fn load_with(path: impl AsRef<Path>, params: LoadParams) -> Result<Model> {
        let path = c_path(path.as_ref())?;
        // SAFETY: returns a struct by value.
        let mut p = ffi::defaults(ffi::transface_load_params_init);
        p.struct_size = std::mem::size_of::<ffi::transface_load_params>() as u32;
        p.verify_checksums = params.verify_checksums as i32;
        p.max_weight_bytes = params.max_weight_bytes;
        let mut out = ptr::null_mut();
        check(unsafe { ffi::transface_model_load(path.as_ptr(), &p, &mut out) })?;
        unsafe { Model::from_raw(out) }
    }

    /// Takes ownership of a handle from `transface_model_load` / `transface_builder_build`.
    ///
    /// # Safety
    /// `ptr` must be a valid model handle that nothing else frees.
    pub unsafe fn from_raw(ptr: *mut ffi::transface_model) -> Result<Model> {
        let ptr = new_handle(ptr, "model")?;
        let mut config = empty_config();
        let mut preprocess = empty_preprocess();
        let fetched = check(ffi::transface_model_get_config(ptr.as_ptr(), &mut config))
            .and_then(|_| check(ffi::transface_model_get_preprocess(ptr.as_ptr(), &mut preprocess)))
            .and_then(|_| Preprocess::from_ffi(&preprocess));
        match fetched {
            Ok(preprocess) => Ok(Model {
                inner: Arc::new(ModelHandle { ptr, config: Config::from_ffi(&config), preprocess }),
            }),
            Err(e) => {
                ffi::transface_model_free(ptr.as_ptr());
                Err(e)
            }
        }
    }

    /// The raw handle, valid as long as this model (or a clone) lives.
    pub fn as_ptr(&self) -> *const ffi::transface_model {
        self.inner.ptr.as_ptr()
    }

    /// The model's architecture.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// How images must be prepared for this model.
    pub fn preprocess(&self) -> &Preprocess {
        &self.inner.preprocess
    }

    /// Embedding size E.
    pub fn embedding_size(&self) -> usize {
        unsafe { ffi::transface_model_embedding_size(self.as_ptr()) }.max(0) as usize
    }

    /// Patches P of the per-patch outputs.
    pub fn num_patches(&self) -> usize {
        self.inner.config.num_patches()
    }

    /// All metadata entries, in stored order.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let n = unsafe { ffi::transface_model_metadata_count(self.as_ptr()) };
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let (mut k, mut v) = (ptr::null(), ptr::null());
            if check(unsafe { ffi::transface_model_metadata_at(self.as_ptr(), i, &mut k, &mut v) }).is_ok() {
                // SAFETY: strings live as long as the model.
                entries.push(unsafe { (owned_string(k).unwrap_or_default(), owned_string(v).unwrap_or_default()) });
            }
        }
        entries
    }

    /// The value of a metadata key; `Ok(None)` when the model has no such key.
    pub fn metadata_get(&self, key: &str) -> Result<Option<String>> {
        let key = c_string(key, "metadata key")?;
        let mut value = ptr::null();
        match check(unsafe { ffi::transface_model_metadata_get(self.as_ptr(), key.as_ptr(), &mut value) }) {
            Ok(()) => Ok(Some(unsafe { owned_string(value) }.unwrap_or_default())),
            Err(e) if e.status == Status::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Tensor names in layout order (the order of the official state_dict).
    pub fn tensor_names(&self) -> Vec<String> {
        self.tensor_infos().into_iter().map(|t| t.name).collect()
    }

    /// Names and shapes of all tensors, in layout order.
    pub fn tensor_infos(&self) -> Vec<TensorInfo> {
        let n = unsafe { ffi::transface_model_tensor_count(self.as_ptr()) };
        (0..n).filter_map(|i| self.tensor_info_at(i).ok()).collect()
    }

    /// The tensor at `index` in layout order.
    pub fn tensor_info_at(&self, index: usize) -> Result<TensorInfo> {
        TensorInfo::fetch(|out| unsafe { ffi::transface_model_tensor_info(self.as_ptr(), index, out) })
    }

    /// The tensor called `name`; `NotFound` if the model has none.
    pub fn tensor_info(&self, name: &str) -> Result<TensorInfo> {
        self.tensor_infos()
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::new(Status::NotFound, format!("the model has no tensor '{name}'")))
    }

    /// A copy of a tensor's float32 values.
    pub fn read_tensor(&self, name: &str) -> Result<Vec<f32>> {
        // An unknown name reads with capacity 0, so that the library reports it.
        let count = self.tensor_infos().into_iter().find(|t| t.name == name).map_or(0, |t| t.count);
        let mut values = vec![0f32; count];
        self.read_tensor_into(name, &mut values)?;
        Ok(values)
    }

    /// Copies a tensor's float32 values into `out` (which must hold at least its count).
    pub fn read_tensor_into(&self, name: &str, out: &mut [f32]) -> Result<()> {
        let cname = c_string(name, "tensor name")?;
        check(unsafe { ffi::transface_model_read_tensor(self.as_ptr(), cname.as_ptr(), out.as_mut_ptr(), out.len()) })
    }
}
