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

/// The shared data directory, `<repo root>/../shared` (photos under `data/`, references under
/// `reference/`).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// `<repo root>/../shared/reference/tiny`, or $TRANSFACE_REFERENCE_DIR.
pub fn reference_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRANSFACE_REFERENCE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    shared_dir().join("reference/tiny")
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

// ------------------------------------------------------------------ .npz (a stored zip of .npy files)

/// CRC-32 (IEEE 802.3, as zip uses it) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// A zip archive of `entries` (name, bytes), stored (not compressed), as `np.savez` writes
/// .npz files (no ZIP64: every entry and the archive stay below 4 GiB).
pub fn stored_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    fn u16le(out: &mut Vec<u8>, v: usize) {
        out.extend_from_slice(&u16::try_from(v).expect("zip field overflows 16 bits").to_le_bytes());
    }
    fn u32le(out: &mut Vec<u8>, v: usize) {
        out.extend_from_slice(&u32::try_from(v).expect("zip field overflows 32 bits (no ZIP64 here)").to_le_bytes());
    }
    const DOS_DATE: usize = 0x21; // 1980-01-01
    let (mut file, mut central) = (Vec::new(), Vec::new());
    for (name, data) in entries {
        let (crc, offset, n) = (crc32(data) as usize, file.len(), name.len());
        // local file header
        u32le(&mut file, 0x0403_4b50);
        for v in [20, 0, 0, 0, DOS_DATE] {
            u16le(&mut file, v); // version needed, flags, method (stored), time, date
        }
        for v in [crc, data.len(), data.len()] {
            u32le(&mut file, v);
        }
        u16le(&mut file, n);
        u16le(&mut file, 0);
        file.extend_from_slice(name.as_bytes());
        file.extend_from_slice(data);
        // central directory entry
        u32le(&mut central, 0x0201_4b50);
        for v in [20, 20, 0, 0, 0, DOS_DATE] {
            u16le(&mut central, v); // made by, needed, flags, method, time, date
        }
        for v in [crc, data.len(), data.len()] {
            u32le(&mut central, v);
        }
        for v in [n, 0, 0, 0, 0] {
            u16le(&mut central, v); // name, extra, comment lengths, disk, internal attributes
        }
        u32le(&mut central, 0); // external attributes
        u32le(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let (cd_offset, cd_size) = (file.len(), central.len());
    file.extend_from_slice(&central);
    u32le(&mut file, 0x0605_4b50);
    for v in [0, 0, entries.len(), entries.len()] {
        u16le(&mut file, v);
    }
    u32le(&mut file, cd_size);
    u32le(&mut file, cd_offset);
    u16le(&mut file, 0);
    file
}

/// The .npy files of the reference's `param/` as (state_dict name, file bytes), sorted by
/// name; includes the tensors the converter skips (`*.num_batches_tracked`, `partial_fc.weight`).
pub fn reference_param_files() -> Vec<(String, Vec<u8>)> {
    let param = reference_dir().join("param");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&param)
        .unwrap_or_else(|e| panic!("{}: {e}", param.display()))
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.strip_suffix(".npy")?.to_owned();
            Some((name, std::fs::read(&p).unwrap()))
        })
        .collect();
    files.sort();
    files
}

/// An .npz of (state_dict name, .npy bytes) entries, as `np.savez(path, **arrays)`.
pub fn npz(arrays: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<(String, Vec<u8>)> = arrays.iter().map(|(n, d)| (format!("{n}.npy"), d.clone())).collect();
    stored_zip(&entries)
}

/// One little-endian .npy file (format 1.0) of `shape`, `descr` ("<f4", "<i4", ...) and raw `data`.
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A float32 .npy file.
pub fn npy_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    assert_eq!(shape.iter().product::<usize>(), values.len());
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy_bytes("<f4", shape, &data)
}

// ------------------------------------------------------------------ SHA-256

/// SHA-256 of `data`, lower-case hex (FIPS 180-4).
pub fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[4 * i..4 * i + 4].try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}
