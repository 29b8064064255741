//! IJB-B / IJB-C 1:1 verification of a model (`transface_evaluate_ijb`), as insightface's
//! `eval_ijbc.py` on the `IJB_release` layout.

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::error::{check, Result};
use crate::ffi;
use crate::util::{array_string, c_path, c_string, opt_ptr};

/// Options of [`Context::evaluate_ijb`] (`transface_ijb_params`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IjbParams {
    /// F1: add the mirrored face's embedding (true, official).
    pub flip: bool,
    /// N1: keep each image feature's norm instead of L2-normalising it (false).
    pub norm_score: bool,
    /// D1: weight each image feature by its faceness score (false).
    pub detector_score: bool,
    /// Folder the image names are relative to; None = `<ijb_dir>/loose_crop`.
    pub image_dir: Option<PathBuf>,
}

impl Default for IjbParams {
    /// The library's defaults (`transface_ijb_default_params`): F1 N0 D0.
    fn default() -> IjbParams {
        // SAFETY: returns a struct by value.
        let p = ffi::defaults(ffi::transface_ijb_params_init);
        IjbParams { flip: p.flip != 0, norm_score: p.use_norm_score != 0, detector_score: p.use_detector_score != 0, image_dir: None }
    }
}

/// IJB-B/C 1:1 results (`transface_ijb_summary` plus the TAR at each target FAR).
#[derive(Clone, Debug, PartialEq)]
pub struct IjbResult {
    /// "IJBB" or "IJBC".
    pub dataset: String,
    /// The target FARs.
    pub fars: Vec<f64>,
    /// TAR at each target: the ROC point whose FPR is closest to it (it may lie above).
    pub tar: Vec<f64>,
    /// Score threshold of each chosen point (accept iff score >= threshold; +inf for (0, 0)).
    pub thresholds: Vec<f64>,
    /// Area under the ROC.
    pub auc: f64,
    /// Images embedded.
    pub images: usize,
    /// Distinct templates with images.
    pub templates: usize,
    /// Template pairs scored, genuine (label 1) and impostor (label 0).
    pub pairs: usize,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    /// Points of the ROC.
    pub roc_points: usize,
    /// The options used (F, N, D).
    pub flip: bool,
    pub norm_score: bool,
    pub detector_score: bool,
}

impl IjbResult {
    /// insightface's naming of the options, e.g. "F1N0D0".
    pub fn method(&self) -> String {
        format!("F{}N{}D{}", u8::from(self.flip), u8::from(self.norm_score), u8::from(self.detector_score))
    }
}

impl Context {
    /// IJB-B/C 1:1 verification of this context's model on an `IJB_release` folder
    /// (`ijb_dir/loose_crop`, `ijb_dir/meta/<ijbb|ijbc>_*.txt`): every image aligned with its 5
    /// points and embedded, per-media means summed per template, cosine of template pairs, TAR
    /// at each of `fars` (at least one, each in [0, 1]; see [`STANDARD_FARS`](crate::STANDARD_FARS)).
    /// `dataset`: "IJBB" or "IJBC" (any case), or None to take the one whose meta files
    /// `ijb_dir` holds.
    pub fn evaluate_ijb(
        &mut self,
        ijb_dir: impl AsRef<Path>,
        dataset: Option<&str>,
        fars: &[f64],
        params: &IjbParams,
    ) -> Result<IjbResult> {
        let dir = c_path(ijb_dir.as_ref())?;
        let dataset = dataset.map(|d| c_string(d, "dataset")).transpose()?;
        let image_dir = params.image_dir.as_deref().map(c_path).transpose()?;
        // SAFETY: returns a struct by value.
        let mut p = ffi::defaults(ffi::transface_ijb_params_init);
        p.struct_size = std::mem::size_of::<ffi::transface_ijb_params>() as u32;
        p.flip = i32::from(params.flip);
        p.use_norm_score = i32::from(params.norm_score);
        p.use_detector_score = i32::from(params.detector_score);
        p.image_dir = opt_ptr(&image_dir);
        let mut summary = ffi::transface_ijb_summary {
            struct_size: std::mem::size_of::<ffi::transface_ijb_summary>() as u32,
            dataset: [0; 8],
            images: 0,
            templates: 0,
            pairs: 0,
            genuine_pairs: 0,
            impostor_pairs: 0,
            roc_points: 0,
            auc: 0.0,
        };
        let (mut tar, mut thresholds) = (vec![0f64; fars.len()], vec![0f64; fars.len()]);
        // SAFETY: the strings outlive the call; tar and thresholds hold fars.len() doubles.
        check(unsafe {
            ffi::transface_evaluate_ijb(
                self.as_mut_ptr(),
                dir.as_ptr(),
                opt_ptr(&dataset),
                &p,
                fars.as_ptr(),
                fars.len(),
                tar.as_mut_ptr(),
                thresholds.as_mut_ptr(),
                fars.len(),
                &mut summary,
            )
        })?;
        Ok(IjbResult {
            dataset: array_string(&summary.dataset),
            fars: fars.to_vec(),
            tar,
            thresholds,
            auc: summary.auc,
            images: summary.images,
            templates: summary.templates,
            pairs: summary.pairs,
            genuine_pairs: summary.genuine_pairs,
            impostor_pairs: summary.impostor_pairs,
            roc_points: summary.roc_points,
            flip: params.flip,
            norm_score: params.norm_score,
            detector_score: params.detector_score,
        })
    }
}
