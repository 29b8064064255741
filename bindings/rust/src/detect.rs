//! Face detection (`transface_detector`, MTCNN): boxes, scores and the 5 landmarks the
//! alignment uses, and photo-to-embedding ([`Detector::embed_photo`]).

use std::fmt;
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::context::{Context, EmbedFlags};
use crate::error::{check, Error, Result};
use crate::ffi;
use crate::util::{c_path, new_handle, product, to_i32};

/// Which box R-Net's and O-Net's outputs are decoded from (`transface_landmark_box`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LandmarkBox {
    /// The original MTCNN's truncated crop box (mean landmark error 1.93 px on LFW's hand labels).
    #[default]
    Truncated,
    /// facenet-pytorch 2.6.0's arithmetic exactly (2.28 px).
    Facenet,
}

impl LandmarkBox {
    fn code(self) -> i32 {
        match self {
            LandmarkBox::Truncated => ffi::TRANSFACE_LANDMARKS_TRUNCATED as i32,
            LandmarkBox::Facenet => ffi::TRANSFACE_LANDMARKS_FACENET as i32,
        }
    }
}

/// Options of [`Detector::load`] (`transface_detector_params`). Build it with
/// `DetectorParams { threads: 2, ..Default::default() }` so that fields added later keep their
/// defaults. `None` keeps the detector file's setting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorParams {
    /// Worker threads including the calling thread (1).
    pub threads: usize,
    /// Which box the landmarks are decoded from ([`LandmarkBox::Truncated`]).
    pub landmark_box: LandmarkBox,
    /// Smallest face in pixels (the file's: 20).
    pub min_face_size: Option<i32>,
    /// Pyramid step in (0.1, 1) (the file's: 0.709).
    pub scale_factor: Option<f32>,
    /// P-, R- and O-Net score thresholds (the file's: 0.6, 0.7, 0.7).
    pub thresholds: Option<[f32; 3]>,
}

impl Default for DetectorParams {
    /// The library's defaults (`transface_detector_params_init`).
    fn default() -> DetectorParams {
        let p = ffi::defaults(ffi::transface_detector_params_init);
        DetectorParams {
            threads: p.num_threads.max(0) as usize,
            landmark_box: if p.landmark_box == ffi::TRANSFACE_LANDMARKS_FACENET as i32 {
                LandmarkBox::Facenet
            } else {
                LandmarkBox::Truncated
            },
            min_face_size: None,
            scale_factor: None,
            thresholds: None,
        }
    }
}

impl DetectorParams {
    fn to_c(self) -> Result<ffi::transface_detector_params> {
        let mut p = ffi::defaults(ffi::transface_detector_params_init);
        p.struct_size = std::mem::size_of::<ffi::transface_detector_params>() as u32;
        p.num_threads = to_i32(self.threads, "threads")?;
        p.landmark_box = self.landmark_box.code();
        if let Some(v) = self.min_face_size {
            p.min_face_size = v;
        }
        if let Some(v) = self.scale_factor {
            p.scale_factor = v;
        }
        if let Some(v) = self.thresholds {
            p.thresholds = v;
        }
        Ok(p)
    }
}

/// One face: box and landmarks in pixels of the image given (`transface_face`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Face {
    /// x1, y1, x2, y2.
    pub bbox: [f32; 4],
    /// O-Net's face probability.
    pub score: f32,
    /// (x, y) of the left eye, right eye, nose, left and right mouth corners.
    pub landmarks: [[f32; 2]; 5],
}

impl Face {
    fn from_c(f: &ffi::transface_face) -> Face {
        let mut landmarks = [[0f32; 2]; 5];
        for (i, p) in landmarks.iter_mut().enumerate() {
            *p = [f.landmarks[2 * i], f.landmarks[2 * i + 1]];
        }
        Face { bbox: f.r#box, score: f.score, landmarks }
    }

    /// The landmarks as x0, y0, ..., x4, y4, the layout [`align_face`](crate::align_face) and
    /// [`align_face_to`](crate::align_face_to) take.
    pub fn landmark_points(&self) -> [f32; 10] {
        let mut out = [0f32; 10];
        for (i, p) in self.landmarks.iter().enumerate() {
            out[2 * i] = p[0];
            out[2 * i + 1] = p[1];
        }
        out
    }
}

fn new_face() -> ffi::transface_face {
    ffi::transface_face { struct_size: std::mem::size_of::<ffi::transface_face>() as u32, ..Default::default() }
}

/// Checks that `rgb` holds exactly `height * width * 3` bytes (packed RGB rows). Sizes the
/// library refuses (zero, above its pixel limit) are left to it: such calls read no pixels.
fn check_rgb(rgb: &[u8], width: usize, height: usize) -> Result<(i32, i32)> {
    let need = product(&[height, width, 3], "image size")?;
    if rgb.len() != need {
        return Err(Error::invalid(format!(
            "image holds {} bytes; {width}x{height} RGB needs {need}",
            rgb.len()
        )));
    }
    Ok((to_i32(width, "width")?, to_i32(height, "height")?))
}

/// Faces asked for by the first [`Detector::detect`] call; more are fetched by a second call.
const FIRST_CAPACITY: usize = 16;

/// An MTCNN face detector loaded from a detector file (`transface convert-detector`).
///
/// It holds the buffers of one stream: `Send`, not `Sync`, and its methods take `&mut self`.
/// Use one per thread.
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<transface::Detector>(); // a detector is not Sync
/// ```
pub struct Detector {
    ptr: NonNull<ffi::transface_detector>,
}

// SAFETY: the header allows a detector to be used from any thread, one at a time; `&mut self`
// methods and the missing Sync impl (NonNull is !Sync) enforce the "one at a time".
unsafe impl Send for Detector {}

impl Drop for Detector {
    fn drop(&mut self) {
        unsafe { ffi::transface_detector_free(self.ptr.as_ptr()) }
    }
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector").finish_non_exhaustive()
    }
}

impl Detector {
    /// Loads a detector file. An embedding model file (or a damaged file) is a `Format` error
    /// ("not a detector"); parameters out of range are `InvalidArgument`.
    pub fn load(path: impl AsRef<Path>, params: &DetectorParams) -> Result<Detector> {
        let path = c_path(path.as_ref())?;
        let p = params.to_c()?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, p a complete struct; out receives a fresh handle.
        check(unsafe { ffi::transface_detector_load(path.as_ptr(), &p, &mut out) })?;
        Ok(Detector { ptr: new_handle(out, "detector")? })
    }

    /// The raw handle, valid as long as this detector lives.
    pub fn as_mut_ptr(&mut self) -> *mut ffi::transface_detector {
        self.ptr.as_ptr()
    }

    /// The faces of a packed RGB image (`height` rows of `width` pixels), highest score first.
    pub fn detect(&mut self, rgb: &[u8], width: usize, height: usize) -> Result<Vec<Face>> {
        let (w, h) = check_rgb(rgb, width, height)?;
        let mut capacity = FIRST_CAPACITY;
        loop {
            let mut faces = vec![new_face(); capacity];
            let mut count = 0usize;
            // SAFETY: rgb holds the packed image (checked); faces has `capacity` elements of
            // the size its first element's struct_size states.
            check(unsafe {
                ffi::transface_detect(
                    self.ptr.as_ptr(),
                    rgb.as_ptr(),
                    w,
                    h,
                    0,
                    ffi::TRANSFACE_PIXELS_RGB,
                    faces.as_mut_ptr(),
                    faces.len(),
                    &mut count,
                )
            })?;
            if count <= capacity {
                return Ok(faces[..count].iter().map(Face::from_c).collect());
            }
            // More faces than room: ask again with room for all of them.
            capacity = count;
        }
    }

    /// The photo's main face (the largest centre-weighted size), or `None` when it has none.
    pub fn main_face(&mut self, rgb: &[u8], width: usize, height: usize) -> Result<Option<Face>> {
        let (w, h) = check_rgb(rgb, width, height)?;
        let mut face = new_face();
        // SAFETY: as in detect; face is one complete element.
        let status = unsafe {
            ffi::transface_detect_main_face(self.ptr.as_ptr(), rgb.as_ptr(), w, h, 0, ffi::TRANSFACE_PIXELS_RGB, &mut face)
        };
        if status == ffi::TRANSFACE_NOT_FOUND {
            return Ok(None);
        }
        check(status)?;
        Ok(Some(Face::from_c(&face)))
    }

    /// The embedding (E floats, as [`Context::embed`] with `flags`) of the photo's main face,
    /// detected as [`Detector::main_face`] and aligned onto the context's model template, with
    /// the face used; `None` when the photo has no face.
    pub fn embed_photo(
        &mut self,
        ctx: &mut Context,
        rgb: &[u8],
        width: usize,
        height: usize,
        flags: EmbedFlags,
    ) -> Result<Option<(Vec<f32>, Face)>> {
        let (w, h) = check_rgb(rgb, width, height)?;
        let mut embedding = vec![0f32; ctx.model().embedding_size()];
        let mut face = new_face();
        // SAFETY: both handles are alive and exclusively borrowed; embedding has E floats.
        let status = unsafe {
            ffi::transface_embed_photo(
                ctx.as_mut_ptr(),
                self.ptr.as_ptr(),
                rgb.as_ptr(),
                w,
                h,
                0,
                ffi::TRANSFACE_PIXELS_RGB,
                flags.bits(),
                embedding.as_mut_ptr(),
                embedding.len(),
                &mut face,
            )
        };
        if status == ffi::TRANSFACE_NOT_FOUND {
            return Ok(None);
        }
        check(status)?;
        Ok(Some((embedding, Face::from_c(&face))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_params_are_the_library_defaults() {
        let p = DetectorParams::default();
        assert_eq!(p.threads, 1);
        assert_eq!(p.landmark_box, LandmarkBox::Truncated);
        assert_eq!((p.min_face_size, p.scale_factor, p.thresholds), (None, None, None));
        let c = DetectorParams { landmark_box: LandmarkBox::Facenet, thresholds: Some([0.5, 0.6, 0.7]), ..p }
            .to_c()
            .unwrap();
        assert_eq!(c.struct_size as usize, std::mem::size_of::<ffi::transface_detector_params>());
        assert_eq!((c.num_threads, c.min_face_size, c.scale_factor), (1, 0, 0.0));
        assert_eq!((c.thresholds, c.landmark_box), ([0.5, 0.6, 0.7], 1));
    }

    #[test]
    fn faces_convert_from_c() {
        let mut c = new_face();
        c.r#box = [1.0, 2.0, 3.0, 4.0];
        c.score = 0.5;
        c.landmarks = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let f = Face::from_c(&c);
        assert_eq!(f.bbox, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(f.landmarks[2], [4.0, 5.0]);
        assert_eq!(f.landmark_points(), c.landmarks);
    }

    #[test]
    fn image_sizes_are_checked() {
        assert!(check_rgb(&[0; 12], 2, 2).is_ok());
        assert!(check_rgb(&[0; 11], 2, 2).is_err());
        assert!(check_rgb(&[], 0, 10).is_ok()); // left to the library
    }
}
