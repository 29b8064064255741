//! Argument conversion shared by the wrappers: C strings, paths, checked integer casts.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::path::Path;
use std::ptr::NonNull;

use crate::error::{Error, Result, Status};

/// Copies a library string (NULL gives None; invalid UTF-8 is replaced).
pub(crate) unsafe fn owned_string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

/// The NUL-terminated text of a fixed-size `char` array field (invalid UTF-8 is replaced).
pub(crate) fn array_string(raw: &[c_char]) -> String {
    let bytes: Vec<u8> = raw.iter().take_while(|&&b| b != 0).map(|&b| b as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A string in the library's static storage.
pub(crate) unsafe fn static_str(p: *const c_char) -> Option<&'static str> {
    if p.is_null() {
        None
    } else {
        CStr::from_ptr(p).to_str().ok()
    }
}

/// A C string for an argument; interior NUL bytes are refused without calling C.
pub(crate) fn c_string(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|e| {
        Error::invalid(format!("{what} contains a NUL byte at offset {}: {s:?}", e.nul_position()))
    })
}

pub(crate) fn c_path(path: &Path) -> Result<CString> {
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

pub(crate) fn to_i32(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::invalid(format!("{what} {v} does not fit in int32_t")))
}

pub(crate) fn product(factors: &[usize], what: &str) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .ok_or_else(|| Error::invalid(format!("{what} overflows: {factors:?}")))
}

/// The pointer of an optional C string argument (NULL for None).
pub(crate) fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

/// A handle a `*_create` / `*_open` call returned; NULL (never expected) is an internal error.
pub(crate) fn new_handle<T>(ptr: *mut T, what: &str) -> Result<NonNull<T>> {
    NonNull::new(ptr).ok_or_else(|| Error::new(Status::Internal, format!("the library returned a NULL {what}")))
}
