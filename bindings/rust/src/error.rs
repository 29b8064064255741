//! Errors: the library's status codes and the message of `transface_last_error()`.

use std::fmt;

use crate::ffi;
use crate::util::{owned_string, static_str};

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
    /// Why the call failed.
    pub status: Status,
    /// The library's message naming the problem (or one produced on the Rust side).
    pub message: String,
}

impl Error {
    /// An error with the given status and message.
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }

    /// An invalid argument caught on the Rust side (the C function was not called).
    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::new(Status::InvalidArgument, message)
    }

    /// The error of the C call that just returned `code` on this thread.
    pub(crate) fn last(code: ffi::transface_status) -> Error {
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

/// The result of every fallible call.
pub type Result<T> = std::result::Result<T, Error>;

/// `Ok` for `TRANSFACE_OK`, else the error of the call that just returned `code`.
pub(crate) fn check(code: ffi::transface_status) -> Result<()> {
    if code == ffi::TRANSFACE_OK {
        Ok(())
    } else {
        Err(Error::last(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trip() {
        for code in 0..12 {
            assert_eq!(Status::from_raw(code).code(), code);
        }
        assert_eq!(Status::InvalidArgument.description(), "invalid argument");
        assert_eq!(Status::Unknown(77).description(), "unknown status");
    }
}
