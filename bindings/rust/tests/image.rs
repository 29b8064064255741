//! Image decoding and 5-point alignment: parity with the official recipe (OpenCV imread,
//! scikit-image similarity, cv2.warpAffine) on the reference LFW photos, and the error paths.

mod common;

use std::path::{Path, PathBuf};

use common::read_npy;
use transface::{
    align_face, align_face_to, alignment_template, decode_file, decode_image, decode_image_with, estimate_similarity,
    image_info, warp_affine, DecodeParams, ImageFormat, ImageRef, PixelFormat, Status,
};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn align_dir() -> Option<PathBuf> {
    let dir = shared().join("reference/align");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: no reference data at {}", dir.display());
        None
    }
}

/// Float64 values of a C-order '<f8' .npy file (its last count * 8 bytes).
fn read_f64(path: &Path, count: usize) -> Vec<f64> {
    let bytes = std::fs::read(path).expect("read .npy");
    bytes[bytes.len() - count * 8..].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

fn points(v: &[f32]) -> [f32; 10] {
    v.try_into().expect("10 values")
}

#[test]
fn decoding_and_alignment_match_the_reference() {
    let Some(dir) = align_dir() else { return };
    let paths: Vec<String> = std::fs::read_to_string(dir.join("paths.txt")).unwrap().lines().map(String::from).collect();
    let n = paths.len();
    let landmarks = read_npy(dir.join("landmarks.npy"));
    let decoded = read_npy(dir.join("decoded_rgb.npy"));
    let aligned = read_npy(dir.join("aligned_rgb.npy"));
    let template = read_npy(dir.join("template.npy"));
    let matrices = read_f64(&dir.join("matrix.npy"), n * 6);
    assert_eq!(alignment_template(112).unwrap().to_vec(), template.f32().to_vec());
    let (image_bytes, crop_bytes) = (250 * 250 * 3, 112 * 112 * 3);
    let mut worst_matrix = 0f64;
    let mut worst_mean = 0f64;
    for (i, rel) in paths.iter().enumerate() {
        let path = shared().join("data").join(rel);
        let image = decode_file(&path).unwrap();
        assert_eq!((image.width, image.height), (250, 250));
        assert_eq!(image.pixels, &decoded.u8()[i * image_bytes..(i + 1) * image_bytes], "{rel}: decoded pixels");
        assert_eq!(decode_image(&std::fs::read(&path).unwrap()).unwrap(), image);
        let lm = points(&landmarks.f32()[10 * i..10 * i + 10]);
        let (crop, m) = align_face(&image.view(), &lm, 112).unwrap();
        let reference = &aligned.u8()[i * crop_bytes..(i + 1) * crop_bytes];
        let ref_m: [f64; 6] = matrices[6 * i..6 * i + 6].try_into().unwrap();
        worst_matrix = m.iter().zip(&ref_m).map(|(a, b)| (a - b).abs()).fold(worst_matrix, f64::max);
        let mean = crop.iter().zip(reference).map(|(&a, &b)| (a as i32 - b as i32).abs() as f64).sum::<f64>()
            / crop_bytes as f64;
        worst_mean = worst_mean.max(mean);
        assert_eq!(estimate_similarity(&lm, &points(template.f32())).unwrap(), m);
        // With the reference's own matrix the warp equals cv2.warpAffine's output.
        assert_eq!(warp_affine(&image.view(), &ref_m, 112, 112).unwrap(), reference, "{rel}: warp");
    }
    println!("alignment: matrix max |diff| {worst_matrix:e}, mean |pixel diff| per image max {worst_mean:e}");
    assert!(worst_matrix < 1e-4);
    assert!(worst_mean < 0.5);
}

#[test]
fn image_info_formats_and_strides() {
    let Some(dir) = align_dir() else { return };
    let rel = std::fs::read_to_string(dir.join("paths.txt")).unwrap().lines().next().unwrap().to_string();
    let bytes = std::fs::read(shared().join("data").join(&rel)).unwrap();
    let info = image_info(&bytes).unwrap();
    assert_eq!((info.width, info.height, info.format, info.channels), (250, 250, ImageFormat::Jpeg, 3));
    let image = decode_image(&bytes).unwrap();
    let lm = [108.0, 112.0, 142.0, 116.0, 117.0, 139.0, 107.0, 156.0, 138.0, 158.0];
    let (expected, m) = align_face(&image.view(), &lm, 112).unwrap();
    // BGRA with padded rows.
    let stride = 250 * 4 + 12;
    let mut bgra = vec![0u8; stride * 250];
    for y in 0..250 {
        for x in 0..250 {
            for c in 0..3 {
                bgra[y * stride + 4 * x + 2 - c] = image.pixels[3 * (y * 250 + x) + c];
            }
        }
    }
    let view = ImageRef::new(&bgra, 250, 250, PixelFormat::Bgra).with_stride(stride);
    assert_eq!(align_face(&view, &lm, 112).unwrap(), (expected.clone(), m));
    // Grey, larger crops, custom template.
    let grey: Vec<u8> = image.pixels.chunks_exact(3).map(|p| p[1]).collect();
    let grey3: Vec<u8> = grey.iter().flat_map(|&g| [g, g, g]).collect();
    assert_eq!(
        align_face(&ImageRef::new(&grey, 250, 250, PixelFormat::Gray), &lm, 112).unwrap(),
        align_face(&ImageRef::new(&grey3, 250, 250, PixelFormat::Rgb), &lm, 112).unwrap()
    );
    assert_eq!(align_face(&image.view(), &lm, 224).unwrap().0.len(), 224 * 224 * 3);
    let t = alignment_template(112).unwrap();
    assert_eq!(align_face_to(&image.view(), &lm, &t, 112).unwrap(), (expected, m));
    let t128 = alignment_template(128).unwrap();
    assert_eq!(t128[0], t[0] + 8.0);
}

#[test]
fn decode_and_alignment_errors() {
    let e = decode_image(b"GIF89a....").unwrap_err();
    assert_eq!(e.status, Status::Format);
    assert!(e.message.contains("GIF"), "{}", e.message);
    assert_eq!(decode_image(b"").unwrap_err().status, Status::Format);
    assert_eq!(decode_file("/nonexistent/image.jpg").unwrap_err().status, Status::Io);
    // A header claiming 10^10 pixels is refused before allocating.
    let e = decode_image(b"P6 100000 100000 255\n").unwrap_err();
    assert_eq!(e.status, Status::InvalidArgument);
    assert!(e.message.contains("max_pixels"), "{}", e.message);
    let pgm = b"P5 4 3 255\n0123456789ab";
    assert_eq!(decode_image(pgm).unwrap().pixels.len(), 36);
    let small = DecodeParams { max_pixels: 11, ..Default::default() };
    assert_eq!(decode_image_with(pgm, &small).unwrap_err().status, Status::InvalidArgument);
    assert_eq!(decode_image(&pgm[..pgm.len() - 1]).unwrap_err().status, Status::Format);

    let pixels = vec![0u8; 20 * 10 * 3];
    let view = ImageRef::new(&pixels, 20, 10, PixelFormat::Rgb);
    let lm = [5.0, 4.0, 12.0, 4.0, 8.0, 6.0, 6.0, 8.0, 11.0, 8.0];
    assert_eq!(align_face(&view, &lm, 100).unwrap_err().status, Status::InvalidArgument);
    assert_eq!(align_face(&view, &[3.0; 10], 112).unwrap_err().status, Status::Numeric);
    // A slice too short for the claimed size is refused on the Rust side.
    let short = ImageRef::new(&pixels[..100], 20, 10, PixelFormat::Rgb);
    assert_eq!(align_face(&short, &lm, 112).unwrap_err().status, Status::InvalidArgument);
    assert_eq!(warp_affine(&view, &[0.0; 6], 8, 8).unwrap_err().status, Status::Numeric);
    assert_eq!(alignment_template(100).unwrap_err().status, Status::InvalidArgument);
}
