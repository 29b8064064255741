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
    /// The SE module re-weights the tokens (every official model); `false`: plain ViT (ablation).
    pub se_gate: bool,
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
            se_gate: c.no_se_gate == 0,
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
        c.no_se_gate = if self.se_gate { 0 } else { 1 };
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
        no_se_gate: 0,
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

/// Arithmetic of a context's token GEMMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// float32 throughout.
    #[default]
    Fp32,
    /// bfloat16 weights and GEMM inputs with float32 accumulation (AVX512_BF16 or AMX CPUs).
    Bf16,
}

impl Context {
    /// Inference buffers for up to `max_batch` images per forward pass (larger requests run in
    /// chunks), run by `threads` workers including the calling thread, in float32.
    pub fn new(model: &Model, threads: usize, max_batch: usize) -> Result<Context> {
        Context::with_precision(model, threads, max_batch, Precision::Fp32)
    }

    /// As `new`, with the arithmetic of the token GEMMs (`Precision::Bf16` is refused with
    /// `InvalidArgument` on CPUs without bf16 instructions).
    pub fn with_precision(model: &Model, threads: usize, max_batch: usize, precision: Precision) -> Result<Context> {
        let mut p = unsafe { ffi::transface_context_default_params() };
        p.num_threads = to_i32(threads, "threads")?;
        p.max_batch = to_i32(max_batch, "max_batch")?;
        p.precision = match precision {
            Precision::Fp32 => ffi::TRANSFACE_PRECISION_FP32,
            Precision::Bf16 => ffi::TRANSFACE_PRECISION_BF16,
        };
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

// ================================================================== images (decoding, alignment)

/// Encoded image formats (`transface_image_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Jpeg,
    Png,
    /// PBM, PGM, PPM (P1 to P6).
    Pnm,
    /// A code this version of the bindings does not know.
    Unknown(i32),
}

impl ImageFormat {
    fn from_raw(code: i32) -> ImageFormat {
        match u32::try_from(code).unwrap_or(u32::MAX) {
            ffi::TRANSFACE_IMAGE_JPEG => ImageFormat::Jpeg,
            ffi::TRANSFACE_IMAGE_PNG => ImageFormat::Png,
            ffi::TRANSFACE_IMAGE_PNM => ImageFormat::Pnm,
            _ => ImageFormat::Unknown(code),
        }
    }
}

/// What an image header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: usize,
    pub height: usize,
    pub format: ImageFormat,
    /// Channels stored in the file: 1 grey, 2 grey + alpha, 3 colour, 4 colour + alpha or CMYK.
    pub channels: usize,
}

/// Options of [`decode_image_with`] and [`decode_file_with`] (`transface_decode_params`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeParams {
    /// Images whose header claims more pixels are refused before allocating; 0 = no limit.
    pub max_pixels: u64,
    /// Return truncated or corrupt JPEGs as libjpeg reconstructs them instead of failing.
    pub accept_damaged: bool,
}

impl Default for DecodeParams {
    fn default() -> Self {
        // SAFETY: returns a struct by value.
        let p = unsafe { ffi::transface_decode_default_params() };
        DecodeParams { max_pixels: p.max_pixels, accept_damaged: p.accept_damaged != 0 }
    }
}

impl DecodeParams {
    fn to_c(self) -> ffi::transface_decode_params {
        let mut p = unsafe { ffi::transface_decode_default_params() };
        p.max_pixels = self.max_pixels;
        p.accept_damaged = i32::from(self.accept_damaged);
        p
    }
}

/// A decoded image: `height` rows of `width` pixels, interleaved R, G, B bytes, no padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Image {
    /// The image as an RGB [`ImageRef`] (for [`align_face`] and [`warp_affine`]).
    pub fn view(&self) -> ImageRef<'_> {
        ImageRef { pixels: &self.pixels, width: self.width, height: self.height, stride: 0, format: PixelFormat::Rgb }
    }
}

fn image_info_from_c(i: &ffi::transface_image_info) -> ImageInfo {
    ImageInfo {
        width: i.width.max(0) as usize,
        height: i.height.max(0) as usize,
        format: ImageFormat::from_raw(i.format),
        channels: i.channels.max(0) as usize,
    }
}

fn new_image_info() -> ffi::transface_image_info {
    ffi::transface_image_info { struct_size: std::mem::size_of::<ffi::transface_image_info>() as u32, ..Default::default() }
}

/// Calls the decoder twice: the header (to size the buffer), then the pixels.
fn decode_with(
    params: &DecodeParams,
    call: impl Fn(&ffi::transface_decode_params, *mut u8, usize, &mut ffi::transface_image_info) -> ffi::transface_status,
) -> Result<Image> {
    let p = params.to_c();
    let mut info = new_image_info();
    check(call(&p, ptr::null_mut(), 0, &mut info))?;
    let header = image_info_from_c(&info);
    let bytes = product(&[header.width, header.height, 3], "image size")?;
    let mut pixels = vec![0u8; bytes];
    check(call(&p, pixels.as_mut_ptr(), pixels.len(), &mut info))?;
    if (info.width as usize, info.height as usize) != (header.width, header.height) {
        return Err(Error::new(Status::Internal, "the image changed size between the two decoder calls"));
    }
    Ok(Image { width: header.width, height: header.height, pixels })
}

/// The header of an encoded image (only the header is read; the default pixel limit applies).
pub fn image_info(data: &[u8]) -> Result<ImageInfo> {
    let p = DecodeParams::default().to_c();
    let mut info = new_image_info();
    // SAFETY: data is a live slice; a NULL output with capacity 0 reads the header only.
    check(unsafe { ffi::transface_decode_image(data.as_ptr(), data.len(), &p, ptr::null_mut(), 0, &mut info) })?;
    Ok(image_info_from_c(&info))
}

/// Decodes a JPEG, PNG or PNM image held in memory to RGB (default parameters).
pub fn decode_image(data: &[u8]) -> Result<Image> {
    decode_image_with(data, &DecodeParams::default())
}

pub fn decode_image_with(data: &[u8], params: &DecodeParams) -> Result<Image> {
    // SAFETY: data lives across both calls; out points to `capacity` writable bytes or is NULL with 0.
    decode_with(params, |p, out, capacity, info| unsafe {
        ffi::transface_decode_image(data.as_ptr(), data.len(), p, out, capacity, info)
    })
}

/// Decodes an image file to RGB (default parameters).
pub fn decode_file(path: impl AsRef<Path>) -> Result<Image> {
    decode_file_with(path, &DecodeParams::default())
}

pub fn decode_file_with(path: impl AsRef<Path>, params: &DecodeParams) -> Result<Image> {
    let c = c_path(path.as_ref())?;
    decode_with(params, |p, out, capacity, info| unsafe { ffi::transface_decode_file(c.as_ptr(), p, out, capacity, info) })
}

/// Pixel layouts accepted by [`align_face`] and [`warp_affine`] (`transface_pixel_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgba,
    Bgra,
    Gray,
}

impl PixelFormat {
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Rgb | PixelFormat::Bgr => 3,
            PixelFormat::Rgba | PixelFormat::Bgra => 4,
            PixelFormat::Gray => 1,
        }
    }

    fn code(self) -> ffi::transface_pixel_format {
        match self {
            PixelFormat::Rgb => ffi::TRANSFACE_PIXELS_RGB,
            PixelFormat::Bgr => ffi::TRANSFACE_PIXELS_BGR,
            PixelFormat::Rgba => ffi::TRANSFACE_PIXELS_RGBA,
            PixelFormat::Bgra => ffi::TRANSFACE_PIXELS_BGRA,
            PixelFormat::Gray => ffi::TRANSFACE_PIXELS_GRAY,
        }
    }
}

/// A borrowed 8-bit image: `height` rows `stride` bytes apart (0 = packed), `width` pixels of
/// `format` each.
#[derive(Clone, Copy, Debug)]
pub struct ImageRef<'a> {
    pub pixels: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub format: PixelFormat,
}

impl<'a> ImageRef<'a> {
    /// A packed image (stride = width * channels).
    pub fn new(pixels: &'a [u8], width: usize, height: usize, format: PixelFormat) -> ImageRef<'a> {
        ImageRef { pixels, width, height, stride: 0, format }
    }

    /// The same image with rows `stride` bytes apart.
    pub fn with_stride(self, stride: usize) -> ImageRef<'a> {
        ImageRef { stride, ..self }
    }

    /// Checks that the slice holds every row (the C side reads them) and returns the C arguments.
    fn checked(&self) -> Result<(i32, i32, usize)> {
        let row = product(&[self.width, self.format.channels()], "image row")?;
        let stride = if self.stride == 0 { row } else { self.stride };
        if self.width == 0 || self.height == 0 {
            return Err(Error::invalid(format!("image size {}x{} must be positive", self.width, self.height)));
        }
        if stride < row {
            return Err(Error::invalid(format!("stride {stride} is smaller than a row ({row} bytes)")));
        }
        let needed = product(&[stride, self.height - 1], "image")?
            .checked_add(row)
            .ok_or_else(|| Error::invalid("image size overflows"))?;
        if self.pixels.len() < needed {
            return Err(Error::invalid(format!(
                "image of {}x{} {:?} pixels (stride {stride}) needs {needed} bytes, the slice has {}",
                self.width,
                self.height,
                self.format,
                self.pixels.len()
            )));
        }
        Ok((to_i32(self.width, "image width")?, to_i32(self.height, "image height")?, stride))
    }
}

/// The ArcFace 5-point template for a `size` x `size` crop (size a multiple of 112, or of 128
/// with insightface's shift), as x0, y0, ..., x4, y4.
pub fn alignment_template(size: usize) -> Result<[f32; 10]> {
    let mut out = [0f32; 10];
    check(unsafe { ffi::transface_alignment_template(to_i32(size, "size")?, out.as_mut_ptr()) })?;
    Ok(out)
}

/// The least-squares similarity transform (no reflection) mapping 5 `src` points onto `dst`,
/// as a row-major 2x3 matrix (scikit-image's `SimilarityTransform.estimate`).
pub fn estimate_similarity(src: &[f32; 10], dst: &[f32; 10]) -> Result<[f64; 6]> {
    let mut out = [0f64; 6];
    check(unsafe { ffi::transface_estimate_similarity(src.as_ptr(), dst.as_ptr(), out.as_mut_ptr()) })?;
    Ok(out)
}

/// Warps an image by a 2x3 matrix (image to output coordinates): bilinear, black outside, as
/// `cv2.warpAffine(image, matrix, (out_width, out_height), borderValue=0)`. Returns RGB bytes.
pub fn warp_affine(image: &ImageRef<'_>, matrix: &[f64; 6], out_width: usize, out_height: usize) -> Result<Vec<u8>> {
    let (w, h, stride) = image.checked()?;
    let mut out = vec![0u8; product(&[out_width, out_height, 3], "output")?];
    // SAFETY: the image slice holds every row (checked); out has `out.len()` bytes.
    check(unsafe {
        ffi::transface_warp_affine(
            image.pixels.as_ptr(),
            w,
            h,
            stride,
            image.format.code(),
            matrix.as_ptr(),
            to_i32(out_width, "out_width")?,
            to_i32(out_height, "out_height")?,
            out.as_mut_ptr(),
            out.len(),
        )
    })?;
    Ok(out)
}

/// Aligns a face as insightface's `norm_crop`: returns the `size` x `size` RGB crop and the
/// matrix (image to crop). Landmarks: x0, y0, ..., x4, y4 for the image-left eye, image-right
/// eye, nose tip, image-left mouth corner, image-right mouth corner.
pub fn align_face(image: &ImageRef<'_>, landmarks: &[f32; 10], size: usize) -> Result<(Vec<u8>, [f64; 6])> {
    align(image, landmarks, None, size)
}

/// As [`align_face`], onto custom template points (e.g. a model's `Preprocess::align_template`).
pub fn align_face_to(
    image: &ImageRef<'_>,
    landmarks: &[f32; 10],
    template: &[f32; 10],
    size: usize,
) -> Result<(Vec<u8>, [f64; 6])> {
    align(image, landmarks, Some(template), size)
}

fn align(image: &ImageRef<'_>, landmarks: &[f32; 10], template: Option<&[f32; 10]>, size: usize) -> Result<(Vec<u8>, [f64; 6])> {
    let (w, h, stride) = image.checked()?;
    let mut out = vec![0u8; product(&[size, size, 3], "crop")?];
    let mut matrix = [0f64; 6];
    // SAFETY: as in warp_affine; the template is NULL or 10 floats.
    check(unsafe {
        ffi::transface_align_face(
            image.pixels.as_ptr(),
            w,
            h,
            stride,
            image.format.code(),
            landmarks.as_ptr(),
            template.map_or(ptr::null(), |t| t.as_ptr()),
            to_i32(size, "size")?,
            out.as_mut_ptr(),
            out.len(),
            matrix.as_mut_ptr(),
        )
    })?;
    Ok((out, matrix))
}

// ================================================================== datasets and evaluation

/// Layouts of a packed RecordIO set (`transface_recordio_layout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordIOLayout {
    /// Image i at key i (insightface RecBuilder).
    Flat,
    /// Header record 0, images sorted by class, one key-range record per class (MS1MV2).
    Legacy,
}

/// An InsightFace RecordIO training set (`train.rec` + `train.idx` + `property`), read without
/// MXNet: `Send + Sync`, reads may come from several threads.
pub struct RecordIO {
    ptr: NonNull<ffi::transface_recordio>,
}

// SAFETY: the header documents reads from several threads at once; the handle is never mutated.
unsafe impl Send for RecordIO {}
unsafe impl Sync for RecordIO {}

impl Drop for RecordIO {
    fn drop(&mut self) {
        unsafe { ffi::transface_recordio_close(self.ptr.as_ptr()) }
    }
}

impl fmt::Debug for RecordIO {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordIO").field("len", &self.len()).field("num_classes", &self.num_classes()).finish()
    }
}

impl RecordIO {
    /// Opens the folder holding `train.rec`/`train.idx`, or the `.rec` file itself.
    pub fn open(path: impl AsRef<Path>) -> Result<RecordIO> {
        let p = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        check(unsafe { ffi::transface_recordio_open(p.as_ptr(), &mut out) })?;
        let ptr = NonNull::new(out).ok_or_else(|| Error::new(Status::Internal, "the library returned a NULL set"))?;
        Ok(RecordIO { ptr })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        unsafe { ffi::transface_recordio_count(self.ptr.as_ptr()) }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Classes named by `property` or the legacy header.
    pub fn num_classes(&self) -> Option<usize> {
        match unsafe { ffi::transface_recordio_num_classes(self.ptr.as_ptr()) } {
            0 => None,
            n => Some(n),
        }
    }

    /// Image `index`: its label and encoded bytes.
    pub fn read(&self, index: usize) -> Result<(i32, Vec<u8>)> {
        let mut size = 0usize;
        let mut label = 0i32;
        check(unsafe { ffi::transface_recordio_read(self.ptr.as_ptr(), index, &mut label, ptr::null_mut(), 0, &mut size) })?;
        let mut bytes = vec![0u8; size];
        check(unsafe {
            ffi::transface_recordio_read(self.ptr.as_ptr(), index, &mut label, bytes.as_mut_ptr(), bytes.len(), &mut size)
        })?;
        bytes.truncate(size);
        Ok((label, bytes))
    }

    /// Packs an image folder (one sub-folder per identity) or a `path<TAB>label` list file
    /// (paths under `root`, default the list's folder) into `output/train.rec`, `train.idx`
    /// and `property`, storing the files byte for byte. Returns the number of images.
    pub fn pack(source: impl AsRef<Path>, root: Option<&Path>, output: impl AsRef<Path>, layout: RecordIOLayout) -> Result<usize> {
        let s = c_path(source.as_ref())?;
        let r = root.map(c_path).transpose()?;
        let o = c_path(output.as_ref())?;
        let mut p = unsafe { ffi::transface_pack_default_params() };
        p.layout = match layout {
            RecordIOLayout::Flat => ffi::TRANSFACE_RECORDIO_FLAT as i32,
            RecordIOLayout::Legacy => ffi::TRANSFACE_RECORDIO_LEGACY as i32,
        };
        let mut n = 0usize;
        check(unsafe {
            ffi::transface_recordio_pack(s.as_ptr(), r.as_ref().map_or(ptr::null(), |c| c.as_ptr()), o.as_ptr(), &p, &mut n)
        })?;
        Ok(n)
    }
}

/// An insightface `.bin` verification set: pair `i` is `images[2i]`, `images[2i + 1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationBin {
    pub images: Vec<Vec<u8>>,
    pub issame: Vec<bool>,
}

impl VerificationBin {
    /// Reads a `.bin` file with the library's safe pickle parser (nothing is executed).
    pub fn read(path: impl AsRef<Path>) -> Result<VerificationBin> {
        let p = c_path(path.as_ref())?;
        let mut h = ptr::null_mut();
        check(unsafe { ffi::transface_bin_open(p.as_ptr(), &mut h) })?;
        struct Guard(*mut ffi::transface_bin);
        impl Drop for Guard {
            fn drop(&mut self) {
                unsafe { ffi::transface_bin_close(self.0) }
            }
        }
        let g = Guard(h);
        let pairs = unsafe { ffi::transface_bin_pair_count(g.0) };
        let mut images = Vec::with_capacity(2 * pairs);
        for i in 0..2 * pairs {
            let mut data = ptr::null();
            let mut size = 0usize;
            check(unsafe { ffi::transface_bin_image(g.0, i, &mut data, &mut size) })?;
            // SAFETY: the library keeps the bytes alive as long as the handle.
            images.push(if size == 0 { Vec::new() } else { unsafe { std::slice::from_raw_parts(data, size) }.to_vec() });
        }
        let mut flags = vec![0u8; pairs.max(1)];
        check(unsafe { ffi::transface_bin_issame(g.0, flags.as_mut_ptr(), pairs) })?;
        Ok(VerificationBin { images, issame: flags[..pairs].iter().map(|&f| f != 0).collect() })
    }

    /// Writes the set as `pickle.dump((bins, issame), f, protocol)` does (0 = 4).
    pub fn write(&self, path: impl AsRef<Path>, protocol: i32) -> Result<()> {
        if self.images.len() != 2 * self.issame.len() {
            return Err(Error::invalid(format!("{} images for {} pairs (need 2 per pair)", self.images.len(), self.issame.len())));
        }
        let p = c_path(path.as_ref())?;
        let ptrs: Vec<*const u8> = self.images.iter().map(|i| i.as_ptr()).collect();
        let sizes: Vec<usize> = self.images.iter().map(Vec::len).collect();
        let flags: Vec<u8> = self.issame.iter().map(|&s| u8::from(s)).collect();
        check(unsafe {
            ffi::transface_bin_write(p.as_ptr(), ptrs.as_ptr(), sizes.as_ptr(), flags.as_ptr(), flags.len(), protocol)
        })
    }
}

/// Options of the verification protocol (`transface_verify_params`).
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyParams {
    /// Folds (10).
    pub folds: usize,
    /// Pair i in fold i % folds instead of contiguous folds (for class-sorted pair files).
    pub interleaved: bool,
    /// Model evaluations: add the mirrored face's embedding (official TTA).
    pub flip: bool,
    /// VAL@FAR target (1e-3).
    pub far_target: f64,
    /// Pairs lists in LFW `pairs.txt` form: path template (`{name}`, `{num}`, `{num4}`).
    pub pair_naming: Option<String>,
    /// Preferred `source` of the landmark table.
    pub landmark_source: Option<String>,
}

impl Default for VerifyParams {
    fn default() -> Self {
        VerifyParams { folds: 10, interleaved: false, flip: true, far_target: 1e-3, pair_naming: None, landmark_source: None }
    }
}

impl VerifyParams {
    /// The C struct and the strings it points into (keep both alive during the call).
    fn to_c(&self) -> Result<(ffi::transface_verify_params, Option<CString>, Option<CString>)> {
        let naming = self.pair_naming.as_deref().map(|s| c_string(s, "pair_naming")).transpose()?;
        let source = self.landmark_source.as_deref().map(|s| c_string(s, "landmark_source")).transpose()?;
        let mut p = unsafe { ffi::transface_verify_default_params() };
        p.folds = to_i32(self.folds, "folds")?;
        p.interleaved = i32::from(self.interleaved);
        p.flip = i32::from(self.flip);
        p.far_target = self.far_target;
        p.pair_naming = naming.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        p.landmark_source = source.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        Ok((p, naming, source))
    }
}

/// Results of the verification protocol (`transface_verify_result`).
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyResult {
    pub pairs: usize,
    pub folds: usize,
    pub accuracy_mean: f64,
    pub accuracy_std: f64,
    pub fold_accuracy: Vec<f64>,
    pub fold_threshold: Vec<f64>,
    pub best_threshold: f64,
    pub best_accuracy: f64,
    pub far_target: f64,
    pub val_mean: f64,
    pub val_std: f64,
    pub far_mean: f64,
    /// Mean raw embedding norm (model evaluations); NaN otherwise.
    pub xnorm: f64,
    /// Images embedded (model evaluations).
    pub images: usize,
}

fn empty_verify_result() -> ffi::transface_verify_result {
    ffi::transface_verify_result {
        struct_size: std::mem::size_of::<ffi::transface_verify_result>() as u32,
        folds: 0,
        pairs: 0,
        accuracy_mean: 0.0,
        accuracy_std: 0.0,
        fold_accuracy: [0.0; ffi::TRANSFACE_MAX_FOLDS],
        fold_threshold: [0.0; ffi::TRANSFACE_MAX_FOLDS],
        best_threshold: 0.0,
        best_accuracy: 0.0,
        far_target: 0.0,
        val_mean: 0.0,
        val_std: 0.0,
        far_mean: 0.0,
        xnorm: 0.0,
        images: 0,
    }
}

impl VerifyResult {
    fn from_c(r: &ffi::transface_verify_result) -> VerifyResult {
        let k = (r.folds.max(0) as usize).min(ffi::TRANSFACE_MAX_FOLDS);
        VerifyResult {
            pairs: r.pairs,
            folds: k,
            accuracy_mean: r.accuracy_mean,
            accuracy_std: r.accuracy_std,
            fold_accuracy: r.fold_accuracy[..k].to_vec(),
            fold_threshold: r.fold_threshold[..k].to_vec(),
            best_threshold: r.best_threshold,
            best_accuracy: r.best_accuracy,
            far_target: r.far_target,
            val_mean: r.val_mean,
            val_std: r.val_std,
            far_mean: r.far_mean,
            xnorm: r.xnorm,
            images: r.images,
        }
    }
}

fn pair_rows(emb1: &[f32], emb2: Option<&[f32]>, dim: usize) -> Result<usize> {
    if dim == 0 || emb1.len() % dim != 0 {
        return Err(Error::invalid(format!("emb1 holds {} values, not rows of {dim}", emb1.len())));
    }
    let rows = emb1.len() / dim;
    match emb2 {
        Some(e2) if e2.len() != emb1.len() => Err(Error::invalid(format!("emb1 and emb2 hold {} and {} values", emb1.len(), e2.len()))),
        Some(_) => Ok(rows),
        None if rows % 2 != 0 => Err(Error::invalid(format!("interleaved embeddings need an even number of rows, got {rows}"))),
        None => Ok(rows / 2),
    }
}

/// Squared L2 distances after float64 L2-normalisation: pairs (emb1 row i, emb2 row i), or
/// with `emb2` None rows 2i and 2i+1 of `emb1`.
pub fn pair_distances(emb1: &[f32], emb2: Option<&[f32]>, dim: usize) -> Result<Vec<f64>> {
    let pairs = pair_rows(emb1, emb2, dim)?;
    let mut out = vec![0f64; pairs.max(1)];
    check(unsafe {
        ffi::transface_pair_distances(emb1.as_ptr(), emb2.map_or(ptr::null(), <[f32]>::as_ptr), pairs, dim, out.as_mut_ptr())
    })?;
    out.truncate(pairs);
    Ok(out)
}

fn flag_bytes(flags: &[bool], n: usize, what: &str) -> Result<Vec<u8>> {
    if flags.len() != n {
        return Err(Error::invalid(format!("{what} has {} entries for {n} pairs", flags.len())));
    }
    Ok(flags.iter().map(|&f| u8::from(f)).collect())
}

/// insightface's verification protocol on embeddings (see `transface_verify_embeddings`).
pub fn verify_embeddings(emb1: &[f32], emb2: Option<&[f32]>, issame: &[bool], dim: usize, params: &VerifyParams) -> Result<VerifyResult> {
    let pairs = pair_rows(emb1, emb2, dim)?;
    let flags = flag_bytes(issame, pairs, "issame")?;
    let (p, _n, _s) = params.to_c()?;
    let mut r = empty_verify_result();
    check(unsafe {
        ffi::transface_verify_embeddings(emb1.as_ptr(), emb2.map_or(ptr::null(), <[f32]>::as_ptr), flags.as_ptr(), pairs, dim, &p, &mut r)
    })?;
    Ok(VerifyResult::from_c(&r))
}

/// The protocol on precomputed squared distances.
pub fn verify_distances(distances: &[f64], issame: &[bool], params: &VerifyParams) -> Result<VerifyResult> {
    let flags = flag_bytes(issame, distances.len(), "issame")?;
    let (p, _n, _s) = params.to_c()?;
    let mut r = empty_verify_result();
    check(unsafe { ffi::transface_verify_distances(distances.as_ptr(), flags.as_ptr(), distances.len(), &p, &mut r) })?;
    Ok(VerifyResult::from_c(&r))
}

/// A ROC curve: parallel arrays, first point (0, 0) at threshold +inf.
#[derive(Clone, Debug, PartialEq)]
pub struct Roc {
    pub thresholds: Vec<f64>,
    pub tpr: Vec<f64>,
    pub fpr: Vec<f64>,
}

/// The protocol's ROC: mean test-fold TPR and FPR at thresholds 0, 0.01, ..., 3.99.
pub fn verify_roc(distances: &[f64], issame: &[bool], params: &VerifyParams) -> Result<Roc> {
    let flags = flag_bytes(issame, distances.len(), "issame")?;
    let (p, _n, _s) = params.to_c()?;
    let n = ffi::TRANSFACE_VERIFY_THRESHOLDS;
    let (mut th, mut tpr, mut fpr) = (vec![0f64; n], vec![0f64; n], vec![0f64; n]);
    check(unsafe {
        ffi::transface_verify_roc(distances.as_ptr(), flags.as_ptr(), distances.len(), &p, th.as_mut_ptr(), tpr.as_mut_ptr(), fpr.as_mut_ptr(), n)
    })?;
    Ok(Roc { thresholds: th, tpr, fpr })
}

/// `sklearn.metrics.roc_curve` of similarity scores (accept iff score >= threshold).
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Result<Roc> {
    let flags = flag_bytes(labels, scores.len(), "labels")?;
    let mut n = 0usize;
    check(unsafe {
        ffi::transface_roc_curve(scores.as_ptr(), flags.as_ptr(), scores.len(), ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), 0, &mut n)
    })?;
    let (mut th, mut tpr, mut fpr) = (vec![0f64; n], vec![0f64; n], vec![0f64; n]);
    check(unsafe {
        ffi::transface_roc_curve(scores.as_ptr(), flags.as_ptr(), scores.len(), fpr.as_mut_ptr(), tpr.as_mut_ptr(), th.as_mut_ptr(), n, &mut n)
    })?;
    Ok(Roc { thresholds: th, tpr, fpr })
}

/// TAR at each target FAR (insightface's IJB convention: the ROC point with the closest FPR)
/// and each point's score threshold.
pub fn tar_at_far(scores: &[f64], labels: &[bool], fars: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    let flags = flag_bytes(labels, scores.len(), "labels")?;
    let (mut tar, mut th) = (vec![0f64; fars.len()], vec![0f64; fars.len()]);
    check(unsafe {
        ffi::transface_tar_at_far(scores.as_ptr(), flags.as_ptr(), scores.len(), fars.as_ptr(), fars.len(), tar.as_mut_ptr(), th.as_mut_ptr())
    })?;
    Ok((tar, th))
}

impl Context {
    /// Verification accuracy of this context's model on an insightface `.bin` set.
    pub fn evaluate_bin(&mut self, path: impl AsRef<Path>, params: &VerifyParams) -> Result<VerifyResult> {
        let path = c_path(path.as_ref())?;
        let (p, _n, _s) = params.to_c()?;
        let mut r = empty_verify_result();
        check(unsafe { ffi::transface_evaluate_bin(self.as_mut_ptr(), path.as_ptr(), &p, &mut r) })?;
        Ok(VerifyResult::from_c(&r))
    }

    /// Verification accuracy on a pairs list with images under `image_root`, aligned with a
    /// landmark table when given.
    pub fn evaluate_pairs(
        &mut self,
        pairs: impl AsRef<Path>,
        image_root: impl AsRef<Path>,
        landmarks: Option<&Path>,
        params: &VerifyParams,
    ) -> Result<VerifyResult> {
        let pairs = c_path(pairs.as_ref())?;
        let root = c_path(image_root.as_ref())?;
        let lm = landmarks.map(c_path).transpose()?;
        let (p, _n, _s) = params.to_c()?;
        let mut r = empty_verify_result();
        check(unsafe {
            ffi::transface_evaluate_pairs(
                self.as_mut_ptr(),
                pairs.as_ptr(),
                root.as_ptr(),
                lm.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                &p,
                &mut r,
            )
        })?;
        Ok(VerifyResult::from_c(&r))
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
