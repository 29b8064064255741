//! `Detector` (MTCNN) on real photos, as `bindings/python/tests/test_detect.py`: the detector
//! file is converted from facenet-pytorch's wheel by the Swift CLI built next to the library
//! (`transface-cli convert-detector`); the tests are skipped when either is absent.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{expect, reference_builder, reference_dir, reference_model, shared_dir, TempDir, TempPath};
use transface::{
    align_face_to, decode_file, Context, ContextParams, Detector, DetectorParams, EmbedFlags, Face, Image, LandmarkBox,
    Status,
};

/// $TRANSFACE_FACENET_WHEEL, or `<repo>/.build-data/facenet_pytorch-2.6.0-py3-none-any.whl`.
fn wheel() -> PathBuf {
    match std::env::var_os("TRANSFACE_FACENET_WHEEL").filter(|w| !w.is_empty()) {
        Some(w) => PathBuf::from(w),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.build-data/facenet_pytorch-2.6.0-py3-none-any.whl"),
    }
}

/// `transface-cli` in the directory of the library this crate links (build.rs's choice).
fn cli() -> Option<PathBuf> {
    option_env!("TRANSFACE_LINKED_LIBRARY_DIR").map(|dir| Path::new(dir).join("transface-cli"))
}

/// A detector file converted from the wheel in a fresh temporary directory (kept alive by the
/// returned `TempDir`), or None (the reason printed) without the wheel or the CLI.
fn detector_file() -> Option<(TempDir, PathBuf)> {
    let wheel = wheel();
    let cli_path = cli();
    let Some(cli) = cli_path.clone().filter(|c| c.is_file() && wheel.is_file()) else {
        println!(
            "skipped: needs {} (bash .ci/setup downloads it) and {}",
            wheel.display(),
            cli_path.map_or_else(|| "transface-cli (library directory unknown)".into(), |c| c.display().to_string())
        );
        return None;
    };
    let dir = TempDir::new("detector");
    let out = dir.0.join("mtcnn.tfd");
    let status = Command::new(&cli)
        .args(["convert-detector", "--facenet-wheel"])
        .arg(&wheel)
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("run transface-cli");
    assert!(status.success(), "{} convert-detector failed: {status}", cli.display());
    Some((dir, out))
}

fn photo() -> Image {
    decode_file(shared_dir().join("data/lfw/images/Abdullah_Gul/Abdullah_Gul_0013.jpg")).expect("decode the LFW photo")
}

fn dogs() -> Image {
    decode_file(shared_dir().join("data/photos_misc/dlib_examples_faces/dogs.jpg")).expect("decode dogs.jpg")
}

fn load(path: &Path) -> Detector {
    Detector::load(path, &DetectorParams::default()).expect("load the detector")
}

#[test]
fn detects_the_face_of_an_lfw_photo() {
    let Some((_dir, file)) = detector_file() else { return };
    let image = photo();
    let (w, h) = (image.width, image.height);
    let mut d = Detector::load(&file, &DetectorParams { threads: 2, ..Default::default() }).unwrap();
    let faces = d.detect(&image.pixels, w, h).unwrap();
    let main = d.main_face(&image.pixels, w, h).unwrap().expect("a main face");
    let facenet = Detector::load(&file, &DetectorParams { landmark_box: LandmarkBox::Facenet, ..Default::default() })
        .unwrap()
        .main_face(&image.pixels, w, h)
        .unwrap()
        .expect("a main face (facenet box)");
    println!("{} face(s), main {main:?}", faces.len());

    assert!(!faces.is_empty());
    assert!(faces.windows(2).all(|p| p[0].score >= p[1].score), "faces not sorted by score");
    let centre = [(main.bbox[0] + main.bbox[2]) / 2.0, (main.bbox[1] + main.bbox[3]) / 2.0];
    assert!((centre[0] - w as f32 / 2.0).abs() < 25.0 && (centre[1] - h as f32 / 2.0).abs() < 25.0, "centre {centre:?}");
    assert!(main.score > 0.9, "score {}", main.score);
    for [x, y] in main.landmarks {
        assert!(x >= main.bbox[0] && x <= main.bbox[2] && y >= main.bbox[1] && y <= main.bbox[3], "({x}, {y}) outside");
    }
    // The two decoding modes differ by a pixel or two, not more.
    let diff = main
        .landmark_points()
        .iter()
        .zip(facenet.landmark_points())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff > 0.0 && diff < 4.0, "facenet vs truncated landmarks differ by {diff}");
    // The main face is one of the faces detected.
    assert!(faces.contains(&main));
}

#[test]
fn no_face_on_dogs() {
    let Some((_dir, file)) = detector_file() else { return };
    let image = dogs();
    let mut d = load(&file);
    assert_eq!(d.detect(&image.pixels, image.width, image.height).unwrap(), Vec::<Face>::new());
    assert_eq!(d.main_face(&image.pixels, image.width, image.height).unwrap(), None);
}

#[test]
fn embed_photo_equals_align_and_embed() {
    let Some((_dir, file)) = detector_file() else { return };
    if !reference_dir().join("param").is_dir() {
        println!("skipped: no tiny reference model at {}", reference_dir().display());
        return;
    }
    let image = photo();
    let (w, h) = (image.width, image.height);
    let model = reference_model();
    let mut ctx = Context::create(&model, &ContextParams::default()).unwrap();
    let mut d = load(&file);
    let (emb, face) = d.embed_photo(&mut ctx, &image.pixels, w, h, EmbedFlags::FLIP).unwrap().expect("a face");
    assert_eq!(emb.len(), model.embedding_size());
    assert_eq!(Some(face), d.main_face(&image.pixels, w, h).unwrap());
    let pre = model.preprocess();
    let side = pre.input_width as usize;
    let (aligned, _) = align_face_to(&image.view(), &face.landmark_points(), &pre.align_template, side).unwrap();
    assert_eq!(emb, ctx.embed(&aligned, 1, side, side, EmbedFlags::FLIP).unwrap());
    let no_flip = d.embed_photo(&mut ctx, &image.pixels, w, h, EmbedFlags::NONE).unwrap().unwrap().0;
    assert_eq!(no_flip, ctx.embed(&aligned, 1, side, side, EmbedFlags::NONE).unwrap());
    let dogs = dogs();
    assert_eq!(d.embed_photo(&mut ctx, &dogs.pixels, dogs.width, dogs.height, EmbedFlags::NONE).unwrap(), None);
}

#[test]
fn errors() {
    let Some((_dir, file)) = detector_file() else { return };
    if reference_dir().join("param").is_dir() {
        let tfm = TempPath::new("tiny.tfm");
        reference_builder().save(&tfm.0).unwrap();
        expect(Detector::load(&tfm.0, &DetectorParams::default()), Status::Format, &["not a detector"]);
    } else {
        println!("skipped the model-as-detector check: no tiny reference model at {}", reference_dir().display());
    }
    let bad = DetectorParams { thresholds: Some([0.6, 2.0, 0.7]), ..Default::default() };
    expect(Detector::load(&file, &bad), Status::InvalidArgument, &["threshold"]);
    expect(Detector::load("/nonexistent.tfd", &DetectorParams::default()), Status::Io, &[]);

    let mut d = load(&file);
    // An empty image (the library refuses it), and a slice of the wrong length (refused here).
    expect(d.detect(&[], 10, 0), Status::InvalidArgument, &[]);
    expect(d.main_face(&[], 0, 10), Status::InvalidArgument, &[]);
    expect(d.detect(&[0; 11], 2, 2), Status::InvalidArgument, &["needs 12"]);
    // Above the pixel limit: refused before any pixel is read (calloc'd pages stay untouched).
    let side = 9000;
    let huge = vec![0u8; side * side * 3];
    expect(d.detect(&huge, side, side), Status::InvalidArgument, &["limit"]);
    // The detector still works after the errors.
    let image = photo();
    assert!(d.main_face(&image.pixels, image.width, image.height).unwrap().is_some());
}

/// A grid of `cols` x `rows` copies of an image.
fn tiled(image: &Image, cols: usize, rows: usize) -> Image {
    let (w, h) = (image.width, image.height);
    let mut pixels = Vec::with_capacity(w * h * 3 * cols * rows);
    for _ in 0..rows {
        for y in 0..h {
            for _ in 0..cols {
                pixels.extend_from_slice(&image.pixels[y * w * 3..(y + 1) * w * 3]);
            }
        }
    }
    Image { width: w * cols, height: h * rows, pixels }
}

#[test]
fn returns_every_face_of_a_crowd() {
    let Some((_dir, file)) = detector_file() else { return };
    // 20 copies of the LFW photo: more faces than detect()'s first call has room for.
    let crowd = tiled(&photo(), 5, 4);
    let mut d = load(&file);
    let faces = d.detect(&crowd.pixels, crowd.width, crowd.height).unwrap();
    // The count the library reports without writing any face.
    let mut count = 0usize;
    let status = unsafe {
        transface::ffi::transface_detect(
            d.as_mut_ptr(),
            crowd.pixels.as_ptr(),
            crowd.width as i32,
            crowd.height as i32,
            0,
            transface::ffi::TRANSFACE_PIXELS_RGB,
            std::ptr::null_mut(),
            0,
            &mut count,
        )
    };
    assert_eq!(status, transface::ffi::TRANSFACE_OK);
    println!("{} faces in the 5x4 grid", faces.len());
    assert_eq!(faces.len(), count);
    assert!(faces.len() >= 20, "{} faces", faces.len());
    assert!(faces.windows(2).all(|p| p[0].score >= p[1].score), "faces not sorted by score");
}
