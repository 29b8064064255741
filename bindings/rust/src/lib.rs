//! Safe Rust bindings to **libtransface**, a CPU implementation of the TransFace
//! face-recognition ViT (ICCV 2023), through its C ABI (`include/transface.h`).
//!
//! ```no_run
//! use transface::{Context, EmbedFlags, Model};
//!
//! # fn main() -> transface::Result<()> {
//! let model = Model::load("vit_s.tfm")?;
//! let mut ctx = Context::new(&model, 2, 8)?;
//! let side = model.preprocess().input_width as usize;
//! let faces = vec![0u8; 2 * side * side * 3]; // 2 aligned RGB faces, HWC
//! let emb = ctx.embed(&faces, 2, side, side, EmbedFlags::NONE)?;
//! let e = model.embedding_size();
//! let similarity = transface::compare(&emb[..e], &emb[e..])?;
//! # let _ = similarity;
//! # Ok(())
//! # }
//! ```
//!
//! # Ownership and threads
//!
//! * [`Model`] is immutable once loaded: it is `Send + Sync` and cheap to clone (clones share
//!   one library handle through an [`Arc`]; the handle is freed when the last clone goes).
//! * [`Context`] holds the buffers of one inference stream: it is `Send` but not `Sync`, and its
//!   methods take `&mut self`. A context keeps a clone of its model, so it has no lifetime
//!   parameter and can be moved into a spawned thread:
//!
//! ```compile_fail
//! fn shared<T: Sync>() {}
//! shared::<transface::Context>(); // a context is not Sync
//! ```
//!
//! * [`Builder`] is `Send`, not `Sync`.
//!
//! # Errors
//!
//! Every fallible call returns [`Result`]; the [`Error`] carries the library's [`Status`] and
//! the message of `transface_last_error()` (or, for problems the Rust side catches before
//! calling C, such as a string with an interior NUL or a slice of the wrong length, a message
//! produced here).

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::c_char;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::Arc;

pub mod ffi;

// ================================================================== errors

/// `transface_status`: why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    /// NULL pointer, bad count or size, capacity too small.
    InvalidArgument,
    /// File cannot be opened, read or written.
    Io,
    /// File is not a valid model: magic, version, checksum...
    Format,
    OutOfMemory,
    Aborted,
    /// NaN, Inf, zero-length vector.
    Numeric,
    /// Call not allowed in the object's current state.
    Misuse,
    Internal,
    /// No tensor, metadata key or preset of that name.
    NotFound,
    /// A status code this version of the bindings does not know.
    Unknown(u32),
}

impl Status {
    /// The status for a raw `transface_status` code.
    pub fn from_raw(code: ffi::transface_status) -> Status {
        match code {
            ffi::TRANSFACE_OK => Status::Ok,
            ffi::TRANSFACE_INVALID_ARGUMENT => Status::InvalidArgument,
            ffi::TRANSFACE_IO => Status::Io,
            ffi::TRANSFACE_FORMAT => Status::Format,
            ffi::TRANSFACE_OUT_OF_MEMORY => Status::OutOfMemory,
            ffi::TRANSFACE_ABORTED => Status::Aborted,
            ffi::TRANSFACE_NUMERIC => Status::Numeric,
            ffi::TRANSFACE_MISUSE => Status::Misuse,
            ffi::TRANSFACE_INTERNAL => Status::Internal,
            ffi::TRANSFACE_NOT_FOUND => Status::NotFound,
            other => Status::Unknown(other),
        }
    }

    /// The raw `transface_status` code.
    pub fn code(self) -> ffi::transface_status {
        match self {
            Status::Ok => ffi::TRANSFACE_OK,
            Status::InvalidArgument => ffi::TRANSFACE_INVALID_ARGUMENT,
            Status::Io => ffi::TRANSFACE_IO,
            Status::Format => ffi::TRANSFACE_FORMAT,
            Status::OutOfMemory => ffi::TRANSFACE_OUT_OF_MEMORY,
            Status::Aborted => ffi::TRANSFACE_ABORTED,
            Status::Numeric => ffi::TRANSFACE_NUMERIC,
            Status::Misuse => ffi::TRANSFACE_MISUSE,
            Status::Internal => ffi::TRANSFACE_INTERNAL,
            Status::NotFound => ffi::TRANSFACE_NOT_FOUND,
            Status::Unknown(code) => code,
        }
    }

    /// The library's short description ("invalid argument"), `transface_status_string`.
    pub fn description(self) -> &'static str {
        // SAFETY: the library returns NULL or a NUL-terminated string in static storage.
        unsafe { static_str(ffi::transface_status_string(self.code())) }.unwrap_or("unknown status")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// A failed call: the status and the message naming the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }

    /// An invalid argument caught on the Rust side (the C function was not called).
    fn invalid(message: impl Into<String>) -> Error {
        Error::new(Status::InvalidArgument, message)
    }

    /// The error of the C call that just returned `code` on this thread.
    fn last(code: ffi::transface_status) -> Error {
        let status = Status::from_raw(code);
        // SAFETY: transface_last_error returns a NUL-terminated string valid until the next
        // failing call on this thread; it is copied at once.
        let message = unsafe { owned_string(ffi::transface_last_error()) }.unwrap_or_default();
        let message = if message.is_empty() { status.description().to_owned() } else { message };
        Error { status, message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn check(code: ffi::transface_status) -> Result<()> {
    if code == ffi::TRANSFACE_OK {
        Ok(())
    } else {
        Err(Error::last(code))
    }
}

// ================================================================== strings

/// Copies a library string (NULL gives None; invalid UTF-8 is replaced).
unsafe fn owned_string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

/// A string in the library's static storage.
unsafe fn static_str(p: *const c_char) -> Option<&'static str> {
    if p.is_null() {
        None
    } else {
        CStr::from_ptr(p).to_str().ok()
    }
}

/// A C string for an argument; interior NUL bytes are refused without calling C.
fn c_string(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|e| {
        Error::invalid(format!("{what} contains a NUL byte at offset {}: {s:?}", e.nul_position()))
    })
}

fn c_path(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path
        .to_str()
        .ok_or_else(|| Error::invalid(format!("path {path:?} is not valid UTF-8")))?
        .as_bytes()
        .to_vec();
    CString::new(bytes).map_err(|e| {
        Error::invalid(format!("path contains a NUL byte at offset {}: {path:?}", e.nul_position()))
    })
}

fn to_i32(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::invalid(format!("{what} {v} does not fit in int32_t")))
}

fn product(factors: &[usize], what: &str) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .ok_or_else(|| Error::invalid(format!("{what} overflows: {factors:?}")))
}

// ================================================================== versions

/// Version of the library actually loaded, "MAJOR.MINOR.PATCH".
pub fn version() -> &'static str {
    // SAFETY: static storage.
    unsafe { static_str(ffi::transface_version_string()) }.unwrap_or("")
}

/// Version of the library actually loaded, `MAJOR * 10000 + MINOR * 100 + PATCH`.
pub fn version_number() -> u32 {
    unsafe { ffi::transface_version_number() }
}

/// Newest model file format version the loaded library reads (and the one it writes).
pub fn format_version() -> u32 {
    unsafe { ffi::transface_format_version() }
}

// ================================================================== configuration

/// Architecture of a TransFace ViT (`transface_config`).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Preset name ("vit_s", ...) or "custom"; at most 31 bytes.
    pub arch: String,
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

impl Config {
    /// An official configuration; `embedding_size` 0 means 512. `NotFound` for an unknown name.
    pub fn preset(name: &str, embedding_size: i32) -> Result<Config> {
        let name = c_string(name, "preset name")?;
        let mut out = empty_config();
        check(unsafe { ffi::transface_config_preset(name.as_ptr(), embedding_size, &mut out) })?;
        Ok(Config::from_ffi(&out))
    }

    /// The names [`Config::preset`] accepts.
    pub fn presets() -> Vec<&'static str> {
        let n = unsafe { ffi::transface_config_preset_count() };
        (0..n).filter_map(|i| unsafe { static_str(ffi::transface_config_preset_name(i)) }).collect()
    }

    /// Patches P = (img_size / patch_size)^2: the length of the per-patch outputs.
    pub fn num_patches(&self) -> usize {
        if self.patch_size <= 0 || self.img_size <= 0 {
            return 0;
        }
        let grid = (self.img_size / self.patch_size) as usize;
        grid * grid
    }

    fn from_ffi(c: &ffi::transface_config) -> Config {
        let bytes: Vec<u8> = c.arch.iter().take_while(|&&b| b != 0).map(|&b| b as u8).collect();
        Config {
            arch: String::from_utf8_lossy(&bytes).into_owned(),
            img_size: c.img_size,
            patch_size: c.patch_size,
            in_channels: c.in_channels,
            embed_dim: c.embed_dim,
            depth: c.depth,
            num_heads: c.num_heads,
            mlp_hidden_dim: c.mlp_hidden_dim,
            embedding_size: c.embedding_size,
            drop_path_rate: c.drop_path_rate,
            mask_ratio: c.mask_ratio,
        }
    }

    fn to_ffi(&self) -> Result<ffi::transface_config> {
        let arch = c_string(&self.arch, "config.arch")?;
        let bytes = arch.as_bytes_with_nul();
        let mut c = empty_config();
        if bytes.len() > c.arch.len() {
            return Err(Error::invalid(format!(
                "config.arch '{}' is {} bytes; at most {} fit",
                self.arch,
                bytes.len() - 1,
                c.arch.len() - 1
            )));
        }
        for (dst, &b) in c.arch.iter_mut().zip(bytes) {
            *dst = b as c_char;
        }
        c.img_size = self.img_size;
        c.patch_size = self.patch_size;
        c.in_channels = self.in_channels;
        c.embed_dim = self.embed_dim;
        c.depth = self.depth;
        c.num_heads = self.num_heads;
        c.mlp_hidden_dim = self.mlp_hidden_dim;
        c.embedding_size = self.embedding_size;
        c.drop_path_rate = self.drop_path_rate;
        c.mask_ratio = self.mask_ratio;
        Ok(c)
    }
}

fn empty_config() -> ffi::transface_config {
    ffi::transface_config {
        struct_size: std::mem::size_of::<ffi::transface_config>() as u32,
        arch: [0; 32],
        img_size: 0,
        patch_size: 0,
        in_channels: 0,
        embed_dim: 0,
        depth: 0,
        num_heads: 0,
        mlp_hidden_dim: 0,
        embedding_size: 0,
        drop_path_rate: 0.0,
        mask_ratio: 0.0,
    }
}

/// Channel order of the uint8 input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// How images must be prepared for a model (`transface_preprocess`); stored in the model file.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// = img_size.
    pub input_width: i32,
    /// = img_size.
    pub input_height: i32,
    /// Pixel value `x = (u8 / 255 - mean[c]) / std[c]`; 0.5 officially.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub channel_order: ChannelOrder,
    /// 5 (x, y) points, the ArcFace template for 112x112.
    pub align_template: [f32; 10],
}

impl Preprocess {
    fn from_ffi(p: &ffi::transface_preprocess) -> Result<Preprocess> {
        let channel_order = match p.channel_order as ffi::transface_channel_order {
            ffi::TRANSFACE_CHANNELS_RGB => ChannelOrder::Rgb,
            ffi::TRANSFACE_CHANNELS_BGR => ChannelOrder::Bgr,
            other => {
                return Err(Error::new(Status::Internal, format!("library returned channel order {other}")))
            }
        };
        Ok(Preprocess {
            input_width: p.input_width,
            input_height: p.input_height,
            mean: p.mean,
            std: p.std,
            channel_order,
            align_template: p.align_template,
        })
    }

    fn to_ffi(&self) -> ffi::transface_preprocess {
        ffi::transface_preprocess {
            struct_size: std::mem::size_of::<ffi::transface_preprocess>() as u32,
            input_width: self.input_width,
            input_height: self.input_height,
            mean: self.mean,
            std: self.std,
            channel_order: match self.channel_order {
                ChannelOrder::Rgb => ffi::TRANSFACE_CHANNELS_RGB as i32,
                ChannelOrder::Bgr => ffi::TRANSFACE_CHANNELS_BGR as i32,
            },
            align_template: self.align_template,
        }
    }
}

fn empty_preprocess() -> ffi::transface_preprocess {
    ffi::transface_preprocess {
        struct_size: std::mem::size_of::<ffi::transface_preprocess>() as u32,
        input_width: 0,
        input_height: 0,
        mean: [0.0; 3],
        std: [0.0; 3],
        channel_order: 0,
        align_template: [0.0; 10],
    }
}

/// Shape of one tensor, under its official PyTorch state_dict name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// 1 to 4 dimensions.
    pub dims: Vec<i64>,
    /// Number of elements.
    pub count: usize,
}

impl TensorInfo {
    /// Reads the info of tensor `index` through `f` (model or builder variant).
    fn fetch(f: impl FnOnce(*mut ffi::transface_tensor_info) -> ffi::transface_status) -> Result<TensorInfo> {
        let mut info = ffi::transface_tensor_info {
            struct_size: std::mem::size_of::<ffi::transface_tensor_info>() as u32,
            name: ptr::null(),
            ndim: 0,
            dims: [0; 4],
            count: 0,
        };
        check(f(&mut info))?;
        let ndim = info.ndim.clamp(0, 4) as usize;
        Ok(TensorInfo {
            // SAFETY: the name lives as long as the model or builder; it is copied now.
            name: unsafe { owned_string(info.name) }.unwrap_or_default(),
            dims: info.dims[..ndim].to_vec(),
            count: info.count,
        })
    }
}

// ================================================================== models

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
        let p = unsafe { ffi::transface_load_default_params() };
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
        let mut p = unsafe { ffi::transface_load_default_params() };
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
        let ptr = NonNull::new(ptr)
            .ok_or_else(|| Error::new(Status::Internal, "the library returned a NULL model"))?;
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

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

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

// ================================================================== inference

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
    pub const fn bits(self) -> u32 {
        self.0
    }
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
/// The context holds a clone of its [`Model`] (an [`Arc`]), so the weights stay alive as long
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

impl Context {
    /// Inference buffers for up to `max_batch` images per forward pass (larger requests run in
    /// chunks), run by `threads` workers including the calling thread.
    pub fn new(model: &Model, threads: usize, max_batch: usize) -> Result<Context> {
        let mut p = unsafe { ffi::transface_context_default_params() };
        p.num_threads = to_i32(threads, "threads")?;
        p.max_batch = to_i32(max_batch, "max_batch")?;
        let mut out = ptr::null_mut();
        check(unsafe { ffi::transface_context_create(model.as_ptr(), &p, &mut out) })?;
        let ptr = NonNull::new(out)
            .ok_or_else(|| Error::new(Status::Internal, "the library returned a NULL context"))?;
        Ok(Context { ptr, model: model.clone() })
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
    /// row by row with interleaved channels in the model's channel order. Returns count * E
    /// floats, unit length unless `flags` has [`EmbedFlags::NO_NORMALIZE`].
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

// ================================================================== building model files

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
        let ptr = NonNull::new(out)
            .ok_or_else(|| Error::new(Status::Internal, "the library returned a NULL builder"))?;
        Ok(Builder { ptr })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn auto_traits() {
        send_sync::<Model>();
        send::<Context>();
        send::<Builder>();
        send_sync::<Error>();
    }

    #[test]
    fn status_round_trip() {
        for code in 0..12 {
            assert_eq!(Status::from_raw(code).code(), code);
        }
        assert_eq!(Status::InvalidArgument.description(), "invalid argument");
        assert_eq!(Status::Unknown(77).description(), "unknown status");
    }

    #[test]
    fn flags() {
        let f = EmbedFlags::FLIP | EmbedFlags::NO_NORMALIZE;
        assert_eq!(f.bits(), 3);
        assert!(f.contains(EmbedFlags::FLIP));
        assert!(!EmbedFlags::NONE.contains(EmbedFlags::FLIP));
    }
}
