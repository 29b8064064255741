//! Tells cargo where libtransface lives.
//!
//! * `TRANSFACE_LIBRARY_DIR` (if set and non-empty) names the directory holding
//!   `libtransface.so` (or `.dylib`).
//! * Otherwise the Swift package's own build output is used: `../../.build/release` or
//!   `../../.build/debug` relative to this crate; when both hold the library, the more
//!   recently built one wins.
//!
//! An rpath to that directory is added so that this crate's tests, examples and binaries run
//! without `LD_LIBRARY_PATH` (crates depending on this one must arrange their own rpath or
//! set `LD_LIBRARY_PATH`: cargo only applies `rustc-link-arg` to this package's targets).

use std::env;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const LIBRARY_FILES: [&str; 2] = ["libtransface.so", "libtransface.dylib"];

fn library_file(dir: &Path) -> Option<PathBuf> {
    LIBRARY_FILES.iter().map(|f| dir.join(f)).find(|p| p.is_file())
}

fn modified(path: &Path) -> SystemTime {
    path.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
}

fn main() {
    println!("cargo:rerun-if-env-changed=TRANSFACE_LIBRARY_DIR");
    println!("cargo:rerun-if-changed=build.rs");

    let dir = match env::var_os("TRANSFACE_LIBRARY_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if library_file(&dir).is_none() {
                println!(
                    "cargo:warning=TRANSFACE_LIBRARY_DIR={} holds no libtransface.so",
                    dir.display()
                );
            }
            dir
        }
        None => {
            let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
            let build = manifest.join("..").join("..").join(".build");
            let candidates: Vec<(PathBuf, PathBuf)> = ["release", "debug"]
                .iter()
                .map(|p| build.join(p))
                .filter_map(|d| library_file(&d).map(|f| (d, f)))
                .collect();
            for (_, file) in &candidates {
                println!("cargo:rerun-if-changed={}", file.display());
            }
            // Newest first; on a tie the order above (release before debug) is kept.
            match candidates.iter().max_by_key(|(_, f)| modified(f)) {
                Some((dir, _)) => dir.clone(),
                None => {
                    println!(
                        "cargo:warning=libtransface.so not found in {0}/release or {0}/debug: \
                         run `swift build` in the repository root or set TRANSFACE_LIBRARY_DIR",
                        build.display()
                    );
                    build.join("debug")
                }
            }
        }
    };
    // An absolute path, so that the rpath works from wherever the binaries run.
    let dir = dir.canonicalize().unwrap_or(dir);

    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib=transface");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    // For crates that depend on this one (`links = "transface"`): DEP_TRANSFACE_LIBRARY_DIR.
    println!("cargo:library_dir={}", dir.display());
}
