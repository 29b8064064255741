//! Tells cargo where libtransface lives. The first of these that gives a directory wins:
//!
//! 1. `TRANSFACE_LIB_DIR` (or its older name `TRANSFACE_LIBRARY_DIR`), if set and non-empty:
//!    the directory holding `libtransface.so` (or `.dylib`).
//! 2. `pkg-config --libs-only-L transface`, when pkg-config knows a `transface` package (an
//!    installed `transface.pc`): its first `-L` directory, or none when the library is in a
//!    directory the linker searches anyway (pkg-config omits `-L/usr/lib` and the like).
//! 3. The Swift package's own build output: `../../.build/release` or `../../.build/debug`
//!    relative to this crate; when both hold the library, the more recently built one wins.
//!
//! An rpath to that directory is added so that this crate's tests, examples and binaries run
//! without `LD_LIBRARY_PATH` (crates depending on this one must arrange their own rpath or
//! set `LD_LIBRARY_PATH`: cargo only applies `rustc-link-arg` to this package's targets).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

const LIBRARY_FILES: [&str; 2] = ["libtransface.so", "libtransface.dylib"];
const ENV_NAMES: [&str; 2] = ["TRANSFACE_LIB_DIR", "TRANSFACE_LIBRARY_DIR"];

fn library_file(dir: &Path) -> Option<PathBuf> {
    LIBRARY_FILES.iter().map(|f| dir.join(f)).find(|p| p.is_file())
}

fn modified(path: &Path) -> SystemTime {
    path.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Step 1, the directory an environment variable names.
fn from_env() -> Option<PathBuf> {
    let (name, dir) = ENV_NAMES.iter().find_map(|n| env::var_os(n).filter(|d| !d.is_empty()).map(|d| (n, d)))?;
    let dir = PathBuf::from(dir);
    if library_file(&dir).is_none() {
        println!("cargo:warning={name}={} holds no libtransface.so", dir.display());
    }
    Some(dir)
}

/// Step 2, `pkg-config --libs-only-L transface`, if the command succeeds: `Some(Some(dir))`
/// for its first `-L` directory, `Some(None)` when it gives none (a system library directory).
fn from_pkg_config() -> Option<Option<PathBuf>> {
    let pkg_config = env::var_os("PKG_CONFIG").unwrap_or_else(|| "pkg-config".into());
    let out = Command::new(&pkg_config).args(["--libs-only-L", "transface"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    // Look again when the .pc file changes.
    if let Ok(pc) = Command::new(&pkg_config).args(["--variable=pcfiledir", "transface"]).output() {
        let pc_dir = String::from_utf8_lossy(&pc.stdout).trim().to_owned();
        if pc.status.success() && !pc_dir.is_empty() {
            println!("cargo:rerun-if-changed={}", Path::new(&pc_dir).join("transface.pc").display());
        }
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text.split_whitespace().find_map(|arg| arg.strip_prefix("-L")).map(PathBuf::from);
    match dir {
        Some(dir) => {
            if library_file(&dir).is_none() {
                println!("cargo:warning=pkg-config's transface.pc names {}, which holds no libtransface.so", dir.display());
            }
            Some(Some(dir))
        }
        None => Some(None),
    }
}

/// Step 3, the Swift package's `.build/release` or `.build/debug`, the newer one.
fn from_swift_build() -> PathBuf {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
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
                "cargo:warning=libtransface.so not found in {0}/release or {0}/debug: run `swift build` in the \
                 repository root, install it with a transface.pc for pkg-config, or set TRANSFACE_LIB_DIR",
                build.display()
            );
            build.join("debug")
        }
    }
}

fn main() {
    for name in ENV_NAMES.iter().chain(&["PKG_CONFIG", "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR"]) {
        println!("cargo:rerun-if-env-changed={name}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let dir = match from_env() {
        Some(dir) => Some(dir),
        None => from_pkg_config().unwrap_or_else(|| Some(from_swift_build())),
    };
    println!("cargo:rustc-link-lib=dylib=transface");
    // None: pkg-config found the library in a directory the linker and loader search anyway.
    if let Some(dir) = dir {
        // An absolute path, so that the rpath works from wherever the binaries run.
        let dir = dir.canonicalize().unwrap_or(dir);
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        // For crates that depend on this one (`links = "transface"`): DEP_TRANSFACE_LIBRARY_DIR.
        println!("cargo:library_dir={}", dir.display());
        // For this crate's own tests (the detector test runs the Swift CLI built next to it).
        println!("cargo:rustc-env=TRANSFACE_LINKED_LIBRARY_DIR={}", dir.display());
    }
}
