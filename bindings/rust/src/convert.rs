//! Converting official TransFace state_dicts (`.npz` or torch.save `.pt`) to model files
//! (`transface_convert_state_dict`, the converter of `transface convert`), and the shape
//! inference behind it (`transface_convert_infer_config`). Mirrors Python's `convert.py`.
//!
//! ```no_run
//! use transface::{convert_state_dict, ConvertOptions, Model};
//!
//! # fn main() -> transface::Result<()> {
//! let opts = ConvertOptions { arch: Some("vit_s".into()), ..Default::default() };
//! let done = transface::convert::convert_state_dict_with_notes("model.pt", "vit_s.tfm", &opts)?;
//! for note in &done.notes {
//!     println!("note: {note}"); // skipped tensors, stripped prefixes, where num_heads came from
//! }
//! let config = convert_state_dict("model.pt", "vit_s.tfm", &opts)?; // the same, notes dropped
//! let model = Model::load("vit_s.tfm")?;
//! assert_eq!(model.config(), &config);
//! # Ok(())
//! # }
//! ```
//!
//! Sources hold arrays under the official PyTorch names (`blocks.0.attn.qkv.weight`, ...); `.pt`
//! files are read without torch (the pickle is unpickled with an allow-list, nothing in it is
//! run). The architecture is inferred from the shapes; num_heads cannot be, so it comes from
//! `arch` (a preset name), `num_heads`, or defaults to 8 (every official model), which a note
//! reports.
//!
//! Refusals come back as [`Error`]s with the library's one-line message:
//! `NotFound` (no such source), `Format` (not an .npz or torch.save zip, damaged archive,
//! forbidden pickle global, tensors missing, unknown, mis-shaped or not floating point, shapes
//! that describe no TransFace ViT), `InvalidArgument` (options that contradict the tensors, bad
//! metadata, NaN or Inf in a tensor), or `Io` for an output that cannot be written. The output
//! path is then left as it was.

use std::ffi::CString;
use std::os::raw::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::ptr;

use crate::config::{empty_config, Config};
use crate::error::{check, Error, Result};
use crate::ffi;
use crate::util::{c_path, c_string, opt_ptr, owned_string, to_i32};

/// Options of [`convert_state_dict`] and [`infer_config`] (`transface_convert_params`).
/// `Default` gives the library's defaults: everything inferred, no extra metadata. Build it
/// with `ConvertOptions { num_heads: Some(4), ..Default::default() }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConvertOptions {
    /// An official preset name ("vit_s", ...): sets num_heads and the training fields, and the
    /// shapes must match it. None: "custom".
    pub arch: Option<String>,
    /// Attention heads (must divide embed_dim). None: from `arch`, else 8 (noted).
    pub num_heads: Option<i32>,
    /// None: from `feature.2.weight`; else it must agree with it.
    pub embedding_size: Option<i32>,
    /// Input side. None: 112 when 112 / patch gives the grid of `pos_embed` (official), else
    /// grid * patch.
    pub img_size: Option<i32>,
    /// (key, value) entries (UTF-8, non-empty keys) stored after, and replacing any of, the
    /// converter's own `source`, `source_format`, `converter`, `arch` and `num_heads_from`.
    /// Not used by [`infer_config`].
    pub metadata: Vec<(String, String)>,
}

/// What a conversion or an inference gives: the architecture and the library's notes.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversion {
    /// The architecture written (or inferred).
    pub config: Config,
    /// The converter's notes, one line each, in order: skipped tensors, prefixes stripped,
    /// where num_heads came from.
    pub notes: Vec<String>,
}

/// A `transface_convert_params` and the C strings its pointers point to (they live as long
/// as this value; the struct must not be used after it is dropped).
#[derive(Debug)]
struct Params {
    c: ffi::transface_convert_params,
    _arch: Option<CString>,
    _metadata: Vec<CString>,
    _pointers: Vec<*const c_char>,
}

impl ConvertOptions {
    /// The C struct for these options, its `note` callback appending to `*notes`.
    fn to_c(&self, metadata: bool, notes: &mut Vec<String>) -> Result<Params> {
        let arch = self.arch.as_deref().map(|a| c_string(a, "arch")).transpose()?;
        let mut strings = Vec::new();
        if metadata {
            for (key, value) in &self.metadata {
                strings.push(c_string(key, "metadata key")?);
                strings.push(c_string(value, "metadata value")?);
            }
        }
        let pointers: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        let mut c = ffi::defaults(ffi::transface_convert_params_init);
        c.num_heads = self.num_heads.unwrap_or(0);
        c.embedding_size = self.embedding_size.unwrap_or(0);
        c.img_size = self.img_size.unwrap_or(0);
        c.arch = opt_ptr(&arch);
        c.metadata = if pointers.is_empty() { ptr::null() } else { pointers.as_ptr() };
        c.metadata_count = pointers.len() / 2;
        c.note = Some(collect_note);
        c.user_data = notes as *mut Vec<String> as *mut c_void;
        Ok(Params { c, _arch: arch, _metadata: strings, _pointers: pointers })
    }
}

/// The `note` callback: appends the line to the `Vec<String>` behind `user_data`. Nothing
/// unwinds out of it (a panic, which only an allocation failure could cause, drops the note).
unsafe extern "C" fn collect_note(user_data: *mut c_void, line: *const c_char) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if user_data.is_null() {
            return;
        }
        // SAFETY: user_data is the &mut Vec<String> of to_c, alive and not otherwise borrowed
        // during the call that invokes this (on the calling thread); line is NULL or a
        // NUL-terminated string valid for this callback.
        let notes = unsafe { &mut *(user_data as *mut Vec<String>) };
        if let Some(line) = unsafe { owned_string(line) } {
            notes.push(line);
        }
    }));
}

/// Converts an official state_dict (`.npz` or torch.save `.pt`; a training checkpoint's
/// `state_dict_backbone`, "module." prefixes stripped) to a model file at `out` (written
/// atomically), returning the architecture written. The notes are dropped; see
/// [`convert_state_dict_with_notes`].
pub fn convert_state_dict(src: impl AsRef<Path>, out: impl AsRef<Path>, options: &ConvertOptions) -> Result<Config> {
    convert_state_dict_with_notes(src, out, options).map(|c| c.config)
}

/// As [`convert_state_dict`], also returning the converter's notes.
pub fn convert_state_dict_with_notes(
    src: impl AsRef<Path>,
    out: impl AsRef<Path>,
    options: &ConvertOptions,
) -> Result<Conversion> {
    let src = c_path(src.as_ref())?;
    let out = c_path(out.as_ref())?;
    let mut notes = Vec::new();
    let mut config = empty_config();
    {
        let params = options.to_c(true, &mut notes)?;
        // SAFETY: the paths are NUL-terminated; params and the strings it points to live until
        // the end of this block; the callback only runs during this call, on this thread.
        check(unsafe { ffi::transface_convert_state_dict(src.as_ptr(), &params.c, out.as_ptr(), &mut config) })?;
    }
    Ok(Conversion { config: Config::from_ffi(&config), notes })
}

/// The architecture that official tensors of these shapes (name, dims) describe, as
/// [`convert_state_dict`] infers it; no file is read. Needs `pos_embed`,
/// `patch_embed.proj.weight`, `blocks.0.mlp.fc1.weight` and `feature.2.weight`; depth counts
/// the `blocks.<i>.` names; other tensors (such as `*.num_batches_tracked`) may be present.
/// `options.metadata` is not used. The notes are dropped; see [`infer_config_with_notes`].
pub fn infer_config<S: AsRef<str>, D: AsRef<[i64]>>(shapes: &[(S, D)], options: &ConvertOptions) -> Result<Config> {
    infer_config_with_notes(shapes, options).map(|c| c.config)
}

/// As [`infer_config`], also returning the notes ("num_heads cannot be inferred ...",
/// "shapes match preset(s) ...").
pub fn infer_config_with_notes<S: AsRef<str>, D: AsRef<[i64]>>(
    shapes: &[(S, D)],
    options: &ConvertOptions,
) -> Result<Conversion> {
    let mut names = Vec::with_capacity(shapes.len());
    let mut ndims = Vec::with_capacity(shapes.len());
    let mut dims = Vec::new();
    for (name, shape) in shapes {
        let (name, shape) = (name.as_ref(), shape.as_ref());
        names.push(c_string(name, "tensor name")?);
        ndims.push(to_i32(shape.len(), &format!("number of dimensions of {name}"))?);
        dims.extend_from_slice(shape);
    }
    let name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let mut notes = Vec::new();
    let mut config = empty_config();
    {
        let params = options.to_c(false, &mut notes)?;
        // SAFETY: the three arrays hold shapes.len() names and ndims and sum(ndims) dims; params
        // and its strings live until the end of this block; the callback runs during the call.
        check(unsafe {
            ffi::transface_convert_infer_config(
                name_ptrs.as_ptr(),
                ndims.as_ptr(),
                dims.as_ptr(),
                shapes.len(),
                &params.c,
                &mut config,
            )
        })?;
    }
    Ok(Conversion { config: Config::from_ffi(&config), notes })
}

impl Error {
    /// Whether this error is the converter refusing the source or the options (Python's
    /// `ConversionError`): `InvalidArgument`, `Format`, `NotFound` or `Numeric`, as opposed to
    /// an output that cannot be written or another failure of the library.
    pub fn is_conversion_refusal(&self) -> bool {
        use crate::error::Status::*;
        matches!(self.status, InvalidArgument | Format | NotFound | Numeric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_to_the_library_defaults() {
        let mut notes = Vec::new();
        let p = ConvertOptions::default().to_c(true, &mut notes).unwrap();
        assert_eq!(p.c.struct_size as usize, std::mem::size_of::<ffi::transface_convert_params>());
        assert_eq!((p.c.num_heads, p.c.embedding_size, p.c.img_size, p.c.metadata_count), (0, 0, 0, 0));
        assert!(p.c.arch.is_null() && p.c.metadata.is_null());
    }

    #[test]
    fn options_fill_the_struct() {
        let opts = ConvertOptions {
            arch: Some("vit_s".into()),
            num_heads: Some(8),
            embedding_size: Some(512),
            img_size: Some(112),
            metadata: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
        };
        let mut notes = Vec::new();
        let p = opts.to_c(true, &mut notes).unwrap();
        assert_eq!((p.c.num_heads, p.c.embedding_size, p.c.img_size, p.c.metadata_count), (8, 512, 112, 2));
        // SAFETY: the pointers point into p, alive here.
        unsafe {
            assert_eq!(owned_string(p.c.arch).as_deref(), Some("vit_s"));
            let m: Vec<String> = (0..4).map(|i| owned_string(*p.c.metadata.add(i)).unwrap()).collect();
            assert_eq!(m, ["a", "1", "b", "2"]);
        }
        // infer_config does not pass metadata.
        assert_eq!(opts.to_c(false, &mut notes).unwrap().c.metadata_count, 0);
        let bad = ConvertOptions { metadata: vec![("k\0".into(), "v".into())], ..Default::default() };
        assert_eq!(bad.to_c(true, &mut notes).unwrap_err().status, crate::Status::InvalidArgument);
    }

    #[test]
    fn the_note_callback_collects_lines_and_ignores_null() {
        let mut notes: Vec<String> = Vec::new();
        let user = &mut notes as *mut Vec<String> as *mut c_void;
        // SAFETY: user is a live Vec<String>; the lines are NUL-terminated.
        unsafe {
            collect_note(user, b"first\0".as_ptr() as *const c_char);
            collect_note(user, ptr::null());
            collect_note(ptr::null_mut(), b"lost\0".as_ptr() as *const c_char);
            collect_note(user, b"second \xff\0".as_ptr() as *const c_char);
        }
        assert_eq!(notes, ["first", "second \u{FFFD}"]);
    }
}
