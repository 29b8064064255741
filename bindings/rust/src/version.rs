//! Versions of the library actually loaded.

use crate::ffi;
use crate::util::static_str;

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
