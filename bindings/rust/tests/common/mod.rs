//! Shared test helpers: a tiny .npy reader, the official tiny reference model, temp paths.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use transface::{Builder, Config, Error, Model, Status};

// ------------------------------------------------------------------ .npy

#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    F32(Vec<f32>),
    U8(Vec<u8>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

impl Npy {
    pub fn f32(&self) -> &[f32] {
        match &self.data {
            NpyData::F32(v) => v,
            other => panic!("expected float32 data, got {other:?}"),
        }
    }
    pub fn u8(&self) -> &[u8] {
        match &self.data {
            NpyData::U8(v) => v,
            other => panic!("expected uint8 data, got {:?}", std::mem::discriminant(other)),
        }
    }
    pub fn f64(&self) -> &[f64] {
        match &self.data {
            NpyData::F64(v) => v,
            other => panic!("expected float64 data, got {:?}", std::mem::discriminant(other)),
        }
    }
    pub fn i64(&self) -> &[i64] {
        match &self.data {
            NpyData::I64(v) => v,
            other => panic!("expected int64 data, got {:?}", std::mem::discriminant(other)),
        }
    }
    pub fn dims_i64(&self) -> Vec<i64> {
        self.shape.iter().map(|&d| d as i64).collect()
    }
}

/// The value of `'key': ...` in the header dict, up to the next top-level comma.
fn header_field<'a>(header: &'a str, key: &str) -> &'a str {
    let tag = format!("'{key}':");
    let start = header.find(&tag).unwrap_or_else(|| panic!("npy header has no {key}: {header}")) + tag.len();
    let rest = header[start..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').expect("unterminated shape") + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    rest[..end].trim()
}

/// Reads a little-endian, C-order .npy file of float32, float64, uint8 or int64 (format 1.0 to 3.0).
pub fn read_npy(path: impl AsRef<Path>) -> Npy {
    let path = path.as_ref();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(bytes.len() >= 10 && &bytes[..6] == b"\x93NUMPY", "{}: not an .npy file", path.display());
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
        v => panic!("{}: unsupported .npy version {v}", path.display()),
    };
    let header = std::str::from_utf8(&bytes[header_start..header_start + header_len]).expect("header is not UTF-8");
    let descr = header_field(header, "descr").trim_matches(|c| c == '\'' || c == '"');
    assert_eq!(header_field(header, "fortran_order"), "False", "{}: Fortran order", path.display());
    let shape_text = header_field(header, "shape");
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or_else(|_| panic!("bad shape {shape_text}")))
        .collect();
    let count: usize = shape.iter().product();
    let body = &bytes[header_start + header_len..];
    let data = match descr {
        "<f4" => {
            assert_eq!(body.len(), count * 4, "{}: size", path.display());
            NpyData::F32(body.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
        }
        "|u1" | "<u1" => {
            assert_eq!(body.len(), count, "{}: size", path.display());
            NpyData::U8(body.to_vec())
        }
        "<i8" => {
            assert_eq!(body.len(), count * 8, "{}: size", path.display());
            NpyData::I64(body.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
        }
        "<f8" => {
            assert_eq!(body.len(), count * 8, "{}: size", path.display());
            NpyData::F64(body.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect())
        }
        other => panic!("{}: unsupported dtype {other}", path.display()),
    };
    Npy { shape, data }
}

// ------------------------------------------------------------------ reference

/// `<repo root>/../shared/reference/tiny`, or $TRANSFACE_REFERENCE_DIR.
pub fn reference_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRANSFACE_REFERENCE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/tiny")
}

/// A file of another reference set (`<reference root>/<set>/...`), e.g. `dpap/dpap/lam.npy`.
pub fn reference_set(rel: &str) -> Npy {
    read_npy(reference_dir().join("..").join(rel))
}

pub fn reference(rel: &str) -> Npy {
    read_npy(reference_dir().join(rel))
}

/// The architecture of the tiny reference.
pub fn tiny_config() -> Config {
    Config {
        arch: "custom".into(),
        img_size: 112,
        patch_size: 9,
        in_channels: 3,
        embed_dim: 64,
        depth: 2,
        num_heads: 4,
        mlp_hidden_dim: 256,
        embedding_size: 32,
        drop_path_rate: 0.0,
        mask_ratio: 0.0,
        se_gate: true,
    }
}

/// State-dict entries of the reference that the inference model does not hold.
pub fn skipped(name: &str) -> bool {
    name.ends_with(".num_batches_tracked") || name == "partial_fc.weight"
}

/// A builder holding every tensor of `param/` (checked against the builder's own list).
pub fn reference_builder() -> Builder {
    let mut builder = Builder::new(&tiny_config()).expect("builder");
    let param = reference_dir().join("param");
    let expected = builder.tensor_infos();
    for info in &expected {
        let npy = read_npy(param.join(format!("{}.npy", info.name)));
        assert_eq!(npy.dims_i64(), info.dims, "shape of {}", info.name);
        builder.set_tensor_f32(&info.name, npy.f32(), &npy.dims_i64()).expect("set_tensor_f32");
    }
    // Every reference parameter must have been used.
    let mut files: Vec<String> = std::fs::read_dir(&param)
        .expect("param dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".npy").map(str::to_owned))
        .filter(|n| !skipped(n))
        .collect();
    files.sort();
    let mut names: Vec<String> = expected.iter().map(|t| t.name.clone()).collect();
    names.sort();
    assert_eq!(files, names, "reference parameters vs builder tensors");
    builder
}

/// The reference model, built once per test binary.
pub fn reference_model() -> Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| reference_builder().build().expect("build")).clone()
}

/// The 4 reference images, 112x112x3 u8 HWC.
pub fn reference_images() -> (Vec<u8>, usize) {
    let npy = reference("input/u8_hwc.npy");
    assert_eq!(&npy.shape[1..], &[112, 112, 3]);
    (npy.u8().to_vec(), npy.shape[0])
}

// ------------------------------------------------------------------ helpers

/// A unique path in the temp directory (removed on drop).
pub struct TempPath(pub PathBuf);

impl TempPath {
    pub fn new(tag: &str) -> TempPath {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempPath(std::env::temp_dir().join(format!("transface-rs-{}-{n}-{tag}", std::process::id())))
    }
}

/// A fresh, empty temporary directory (removed with its contents on drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = TempPath::new(tag).0.clone();
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// max |a - r| and whether it is within atol 1e-6 + rtol 1e-4 * max|ref|; also returns the
/// relative error max|a - r| / max|r|.
pub fn compare_to_reference(what: &str, actual: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(actual.len(), reference.len(), "{what}: lengths");
    let scale = reference.iter().fold(0f64, |m, &r| m.max((r as f64).abs()));
    let max_abs = actual
        .iter()
        .zip(reference)
        .fold(0f64, |m, (&a, &r)| m.max((a as f64 - r as f64).abs()));
    let tolerance = 1e-6 + 1e-4 * scale;
    let rel = max_abs / scale;
    println!("{what}: max |err| = {max_abs:.3e}, max|ref| = {scale:.3e}, max rel err = {rel:.3e} (tolerance {tolerance:.3e})");
    assert!(max_abs <= tolerance, "{what}: max |err| {max_abs:e} exceeds {tolerance:e}");
    rel
}

/// Asserts the status and that the message mentions every one of `words`.
pub fn expect(result: Result<impl std::fmt::Debug, Error>, status: Status, words: &[&str]) -> Error {
    let err = result.expect_err("expected an error");
    println!("{status:?}: {err}");
    assert_eq!(err.status, status, "{err}");
    assert!(!err.message.is_empty());
    for w in words {
        assert!(err.message.contains(w), "message {:?} does not mention {w:?}", err.message);
    }
    // Display and std::error::Error.
    let boxed: Box<dyn std::error::Error> = Box::new(err.clone());
    assert!(boxed.to_string().contains(&err.message));
    err
}
