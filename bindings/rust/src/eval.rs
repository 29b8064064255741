//! Evaluation: insightface's verification protocol, ROC and TAR@FAR, model evaluation on
//! `.bin` sets and pairs lists; IJB-B/C 1:1 in [`ijb`].

use std::ffi::CString;
use std::path::Path;
use std::ptr;

use crate::context::Context;
use crate::error::{check, Error, Result};
use crate::ffi;
use crate::util::{c_path, c_string, opt_ptr, to_i32};

pub mod ijb;

/// The target FARs IJB-B/C results are usually reported at.
pub const STANDARD_FARS: [f64; 6] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

/// Options of the verification protocol (`transface_verify_params`).
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyParams {
    /// Folds (10).
    pub folds: usize,
    /// Pair i in fold i % folds instead of contiguous folds (for class-sorted pair files).
    pub interleaved: bool,
    /// Model evaluations: add the mirrored face's embedding (official TTA).
    pub flip: bool,
    /// VAL@FAR target (1e-3).
    pub far_target: f64,
    /// Pairs lists in LFW `pairs.txt` form: path template (`{name}`, `{num}`, `{num4}`).
    pub pair_naming: Option<String>,
    /// Preferred `source` of the landmark table.
    pub landmark_source: Option<String>,
}

impl Default for VerifyParams {
    fn default() -> Self {
        VerifyParams { folds: 10, interleaved: false, flip: true, far_target: 1e-3, pair_naming: None, landmark_source: None }
    }
}

impl VerifyParams {
    /// The C struct and the strings it points into (keep both alive during the call).
    pub(crate) fn to_c(&self) -> Result<(ffi::transface_verify_params, Option<CString>, Option<CString>)> {
        let naming = self.pair_naming.as_deref().map(|s| c_string(s, "pair_naming")).transpose()?;
        let source = self.landmark_source.as_deref().map(|s| c_string(s, "landmark_source")).transpose()?;
        // SAFETY: returns a struct by value.
        let mut p = ffi::defaults(ffi::transface_verify_params_init);
        p.struct_size = std::mem::size_of::<ffi::transface_verify_params>() as u32;
        p.folds = to_i32(self.folds, "folds")?;
        p.interleaved = i32::from(self.interleaved);
        p.flip = i32::from(self.flip);
        p.far_target = self.far_target;
        p.pair_naming = opt_ptr(&naming);
        p.landmark_source = opt_ptr(&source);
        Ok((p, naming, source))
    }
}

/// Results of the verification protocol (`transface_verify_result`).
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyResult {
    pub pairs: usize,
    pub folds: usize,
    pub accuracy_mean: f64,
    pub accuracy_std: f64,
    pub fold_accuracy: Vec<f64>,
    pub fold_threshold: Vec<f64>,
    pub best_threshold: f64,
    pub best_accuracy: f64,
    pub far_target: f64,
    pub val_mean: f64,
    pub val_std: f64,
    pub far_mean: f64,
    /// Mean raw embedding norm (model evaluations); NaN otherwise.
    pub xnorm: f64,
    /// Images embedded (model evaluations).
    pub images: usize,
}

fn empty_verify_result() -> ffi::transface_verify_result {
    ffi::transface_verify_result {
        struct_size: std::mem::size_of::<ffi::transface_verify_result>() as u32,
        folds: 0,
        pairs: 0,
        accuracy_mean: 0.0,
        accuracy_std: 0.0,
        fold_accuracy: [0.0; ffi::TRANSFACE_MAX_FOLDS],
        fold_threshold: [0.0; ffi::TRANSFACE_MAX_FOLDS],
        best_threshold: 0.0,
        best_accuracy: 0.0,
        far_target: 0.0,
        val_mean: 0.0,
        val_std: 0.0,
        far_mean: 0.0,
        xnorm: 0.0,
        images: 0,
    }
}

impl VerifyResult {
    fn from_c(r: &ffi::transface_verify_result) -> VerifyResult {
        let k = (r.folds.max(0) as usize).min(ffi::TRANSFACE_MAX_FOLDS);
        VerifyResult {
            pairs: r.pairs,
            folds: k,
            accuracy_mean: r.accuracy_mean,
            accuracy_std: r.accuracy_std,
            fold_accuracy: r.fold_accuracy[..k].to_vec(),
            fold_threshold: r.fold_threshold[..k].to_vec(),
            best_threshold: r.best_threshold,
            best_accuracy: r.best_accuracy,
            far_target: r.far_target,
            val_mean: r.val_mean,
            val_std: r.val_std,
            far_mean: r.far_mean,
            xnorm: r.xnorm,
            images: r.images,
        }
    }
}

fn pair_rows(emb1: &[f32], emb2: Option<&[f32]>, dim: usize) -> Result<usize> {
    if dim == 0 || emb1.len() % dim != 0 {
        return Err(Error::invalid(format!("emb1 holds {} values, not rows of {dim}", emb1.len())));
    }
    let rows = emb1.len() / dim;
    match emb2 {
        Some(e2) if e2.len() != emb1.len() => Err(Error::invalid(format!("emb1 and emb2 hold {} and {} values", emb1.len(), e2.len()))),
        Some(_) => Ok(rows),
        None if rows % 2 != 0 => Err(Error::invalid(format!("interleaved embeddings need an even number of rows, got {rows}"))),
        None => Ok(rows / 2),
    }
}

/// Squared L2 distances after float64 L2-normalisation: pairs (emb1 row i, emb2 row i), or
/// with `emb2` None rows 2i and 2i+1 of `emb1`.
pub fn pair_distances(emb1: &[f32], emb2: Option<&[f32]>, dim: usize) -> Result<Vec<f64>> {
    let pairs = pair_rows(emb1, emb2, dim)?;
    let mut out = vec![0f64; pairs.max(1)];
    check(unsafe {
        ffi::transface_pair_distances(emb1.as_ptr(), emb2.map_or(ptr::null(), <[f32]>::as_ptr), pairs, dim, out.as_mut_ptr())
    })?;
    out.truncate(pairs);
    Ok(out)
}

pub(crate) fn flag_bytes(flags: &[bool], n: usize, what: &str) -> Result<Vec<u8>> {
    if flags.len() != n {
        return Err(Error::invalid(format!("{what} has {} entries for {n} pairs", flags.len())));
    }
    Ok(flags.iter().map(|&f| u8::from(f)).collect())
}

/// insightface's verification protocol on embeddings (see `transface_verify_embeddings`).
pub fn verify_embeddings(emb1: &[f32], emb2: Option<&[f32]>, issame: &[bool], dim: usize, params: &VerifyParams) -> Result<VerifyResult> {
    let pairs = pair_rows(emb1, emb2, dim)?;
    let flags = flag_bytes(issame, pairs, "issame")?;
    let (p, _n, _s) = params.to_c()?;
    let mut r = empty_verify_result();
    check(unsafe {
        ffi::transface_verify_embeddings(emb1.as_ptr(), emb2.map_or(ptr::null(), <[f32]>::as_ptr), flags.as_ptr(), pairs, dim, &p, &mut r)
    })?;
    Ok(VerifyResult::from_c(&r))
}

/// The protocol on precomputed squared distances.
pub fn verify_distances(distances: &[f64], issame: &[bool], params: &VerifyParams) -> Result<VerifyResult> {
    let flags = flag_bytes(issame, distances.len(), "issame")?;
    let (p, _n, _s) = params.to_c()?;
    let mut r = empty_verify_result();
    check(unsafe { ffi::transface_verify_distances(distances.as_ptr(), flags.as_ptr(), distances.len(), &p, &mut r) })?;
    Ok(VerifyResult::from_c(&r))
}

/// A ROC curve: parallel arrays, first point (0, 0) at threshold +inf.
#[derive(Clone, Debug, PartialEq)]
pub struct Roc {
    /// Score (or distance) thresholds, one per point.
    pub thresholds: Vec<f64>,
    pub tpr: Vec<f64>,
    pub fpr: Vec<f64>,
}

/// The protocol's ROC: mean test-fold TPR and FPR at thresholds 0, 0.01, ..., 3.99.
pub fn verify_roc(distances: &[f64], issame: &[bool], params: &VerifyParams) -> Result<Roc> {
    let flags = flag_bytes(issame, distances.len(), "issame")?;
    let (p, _n, _s) = params.to_c()?;
    let n = ffi::TRANSFACE_VERIFY_THRESHOLDS;
    let (mut th, mut tpr, mut fpr) = (vec![0f64; n], vec![0f64; n], vec![0f64; n]);
    check(unsafe {
        ffi::transface_verify_roc(distances.as_ptr(), flags.as_ptr(), distances.len(), &p, th.as_mut_ptr(), tpr.as_mut_ptr(), fpr.as_mut_ptr(), n)
    })?;
    Ok(Roc { thresholds: th, tpr, fpr })
}

/// `sklearn.metrics.roc_curve` of similarity scores (accept iff score >= threshold).
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Result<Roc> {
    let flags = flag_bytes(labels, scores.len(), "labels")?;
    let mut n = 0usize;
    check(unsafe {
        ffi::transface_roc_curve(scores.as_ptr(), flags.as_ptr(), scores.len(), ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), 0, &mut n)
    })?;
    let (mut th, mut tpr, mut fpr) = (vec![0f64; n], vec![0f64; n], vec![0f64; n]);
    check(unsafe {
        ffi::transface_roc_curve(scores.as_ptr(), flags.as_ptr(), scores.len(), fpr.as_mut_ptr(), tpr.as_mut_ptr(), th.as_mut_ptr(), n, &mut n)
    })?;
    Ok(Roc { thresholds: th, tpr, fpr })
}

/// TAR at each target FAR (insightface's IJB convention: the ROC point with the closest FPR)
/// and each point's score threshold; [`STANDARD_FARS`] are the usual targets.
pub fn tar_at_far(scores: &[f64], labels: &[bool], fars: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    let flags = flag_bytes(labels, scores.len(), "labels")?;
    let (mut tar, mut th) = (vec![0f64; fars.len()], vec![0f64; fars.len()]);
    check(unsafe {
        ffi::transface_tar_at_far(scores.as_ptr(), flags.as_ptr(), scores.len(), fars.as_ptr(), fars.len(), tar.as_mut_ptr(), th.as_mut_ptr())
    })?;
    Ok((tar, th))
}

impl Context {
    /// Verification accuracy of this context's model on an insightface `.bin` set.
    pub fn evaluate_bin(&mut self, path: impl AsRef<Path>, params: &VerifyParams) -> Result<VerifyResult> {
        let path = c_path(path.as_ref())?;
        let (p, _n, _s) = params.to_c()?;
        let mut r = empty_verify_result();
        check(unsafe { ffi::transface_evaluate_bin(self.as_mut_ptr(), path.as_ptr(), &p, &mut r) })?;
        Ok(VerifyResult::from_c(&r))
    }

    /// Verification accuracy on a pairs list with images under `image_root`, aligned with a
    /// landmark table when given.
    pub fn evaluate_pairs(
        &mut self,
        pairs: impl AsRef<Path>,
        image_root: impl AsRef<Path>,
        landmarks: Option<&Path>,
        params: &VerifyParams,
    ) -> Result<VerifyResult> {
        let pairs = c_path(pairs.as_ref())?;
        let root = c_path(image_root.as_ref())?;
        let lm = landmarks.map(c_path).transpose()?;
        let (p, _n, _s) = params.to_c()?;
        let mut r = empty_verify_result();
        check(unsafe {
            ffi::transface_evaluate_pairs(
                self.as_mut_ptr(),
                pairs.as_ptr(),
                root.as_ptr(),
                opt_ptr(&lm),
                &p,
                &mut r,
            )
        })?;
        Ok(VerifyResult::from_c(&r))
    }
}
