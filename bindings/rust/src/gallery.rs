//! The 1:N gallery (`transface_gallery`): a crash-safe file of enrolled embeddings, searched
//! exactly (top-k identities by cosine), as `bindings/python/transface/_gallery.py`.

use std::fmt;
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::error::{check, Error, Result};
use crate::ffi;
use crate::model::Model;
use crate::util::{c_path, c_string, new_handle, owned_string, product, to_i32};

/// How a new gallery stores its embeddings (`transface_gallery_storage`); an existing gallery
/// keeps its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GalleryStorage {
    /// 4 bytes a value (default).
    #[default]
    Float32,
    /// Half the memory (top-10 recall 1.0 against float32 in the library's tests).
    Float16,
    /// A quarter of the memory: int8 with a scale per row (top-10 recall against float32 in
    /// the library's tests 0.993 on clustered, 0.986 on random vectors).
    Int8,
}

impl GalleryStorage {
    fn code(self) -> i32 {
        match self {
            GalleryStorage::Float32 => ffi::TRANSFACE_GALLERY_FLOAT32 as i32,
            GalleryStorage::Float16 => ffi::TRANSFACE_GALLERY_FLOAT16 as i32,
            GalleryStorage::Int8 => ffi::TRANSFACE_GALLERY_INT8 as i32,
        }
    }
}

/// Options of [`Gallery::open`] (`transface_gallery_params`). Build it with
/// `GalleryParams { read_only: true, ..Default::default() }` so that fields added later keep
/// their defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GalleryParams {
    /// Storage of a new gallery ([`GalleryStorage::Float32`]).
    pub storage: GalleryStorage,
    /// No writes and no writer lock (false). Always true when no model is given.
    pub read_only: bool,
    /// Workers of one search (1); also of building an HNSW graph at open.
    pub search_threads: usize,
    /// How searches find rows ([`GalleryIndex::Exact`]).
    pub index: GalleryIndex,
}

/// How a gallery searches (`transface_gallery_index` and the `hnsw_*` fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GalleryIndex {
    /// Every row scored.
    Exact,
    /// An HNSW graph beside the file proposes rows, which are scored exactly (approximate:
    /// a row the graph misses is not found).
    Hnsw {
        /// Links per node, 2..=256 (16).
        m: usize,
        /// Build beam (200).
        ef_construction: usize,
        /// Search beam: candidates re-scored per query (64).
        ef_search: usize,
        /// Seed of the node levels (100).
        seed: u64,
    },
}

impl GalleryIndex {
    /// HNSW with the library's default parameters.
    pub fn hnsw() -> GalleryIndex {
        let p = ffi::defaults(ffi::transface_gallery_params_init);
        GalleryIndex::Hnsw {
            m: p.hnsw_m.max(0) as usize,
            ef_construction: p.hnsw_ef_construction.max(0) as usize,
            ef_search: p.hnsw_ef_search.max(0) as usize,
            seed: p.hnsw_seed,
        }
    }
}

impl Default for GalleryParams {
    /// The library's defaults (`transface_gallery_params_init`).
    fn default() -> GalleryParams {
        let p = ffi::defaults(ffi::transface_gallery_params_init);
        GalleryParams {
            storage: if p.storage == ffi::TRANSFACE_GALLERY_FLOAT16 as i32 {
                GalleryStorage::Float16
            } else {
                GalleryStorage::Float32
            },
            read_only: p.read_only != 0,
            search_threads: p.search_threads.max(0) as usize,
            index: GalleryIndex::Exact,
        }
    }
}

impl GalleryParams {
    fn to_c(self, read_only: bool) -> Result<ffi::transface_gallery_params> {
        let mut p = ffi::defaults(ffi::transface_gallery_params_init);
        p.struct_size = std::mem::size_of::<ffi::transface_gallery_params>() as u32;
        p.storage = self.storage.code();
        p.read_only = read_only as i32;
        p.search_threads = to_i32(self.search_threads, "search_threads")?;
        if let GalleryIndex::Hnsw { m, ef_construction, ef_search, seed } = self.index {
            p.index = ffi::TRANSFACE_GALLERY_HNSW as i32;
            p.hnsw_m = to_i32(m, "hnsw m")?;
            p.hnsw_ef_construction = to_i32(ef_construction, "hnsw ef_construction")?;
            p.hnsw_ef_search = to_i32(ef_search, "hnsw ef_search")?;
            p.hnsw_seed = seed;
        }
        Ok(p)
    }
}

/// One search result (`transface_match`).
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// The identity.
    pub label: String,
    /// Cosine of the query and the identity's best embedding.
    pub score: f32,
    /// Whether `score >= threshold` (the threshold given to [`Gallery::search`]).
    pub passes: bool,
    /// That embedding's id (as [`Gallery::enrol`] returned it).
    pub entry_id: u64,
}

/// A persistent gallery file for the embeddings of one model (created when absent; a gallery
/// of another model is refused). Closed when dropped (what was enrolled is already on disk).
///
/// `Send + Sync`: the header lets any number of threads search one gallery at once, and
/// [`Gallery::search`], [`Gallery::len`] and [`Gallery::identities`] take `&self`;
/// [`Gallery::enrol`] and [`Gallery::remove`], which the header has run alone, take
/// `&mut self`. One writer process per gallery file (a second is an `Io` error,
/// "open for writing").
pub struct Gallery {
    ptr: NonNull<ffi::transface_gallery>,
    /// The model's embedding size; `None` when opened without a model (listing only).
    dim: Option<usize>,
}

// SAFETY: a gallery handle may be used from any thread (include/transface.h, "Thread safety").
unsafe impl Send for Gallery {}
// SAFETY: the `&self` methods are searches and read-only queries (count, identity list), which
// the header lets run from any number of threads at once (the library holds a readers-writer
// lock around each, and guards the label strings it hands out); enrol and remove, which must
// run alone, take `&mut self`, and close runs in Drop (exclusive).
unsafe impl Sync for Gallery {}

impl Drop for Gallery {
    fn drop(&mut self) {
        // SAFETY: the handle is alive and owned; nothing borrows it any more.
        unsafe { ffi::transface_gallery_close(self.ptr.as_ptr()) }
    }
}

impl fmt::Debug for Gallery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gallery").field("dim", &self.dim).field("len", &self.len()).finish_non_exhaustive()
    }
}

/// The number of `dim`-float rows of `data`, refusing an empty or ragged slice.
fn rows(data: &[f32], dim: usize, what: &str) -> Result<usize> {
    if dim == 0 || data.is_empty() || data.len() % dim != 0 {
        return Err(Error::invalid(format!(
            "{what} must hold N x {dim} floats (N >= 1), got {}",
            data.len()
        )));
    }
    Ok(data.len() / dim)
}

impl Gallery {
    /// Opens (creating it empty when absent) the gallery file at `path` for the embeddings of
    /// `model`. `model` `None` opens an existing gallery read-only, whatever its model, to list
    /// it (`params.read_only` is then forced on, and [`Gallery::enrol`] / [`Gallery::search`]
    /// are refused). A gallery of another model is `InvalidArgument` ("holds embeddings of");
    /// a second writer is `Io` ("open for writing").
    pub fn open(path: impl AsRef<Path>, model: Option<&Model>, params: &GalleryParams) -> Result<Gallery> {
        let path = c_path(path.as_ref())?;
        let p = params.to_c(params.read_only || model.is_none())?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, the model (if any) alive, p a complete struct; out
        // receives a fresh handle. The library keeps no reference to the model.
        check(unsafe {
            ffi::transface_gallery_open(path.as_ptr(), model.map_or(ptr::null(), |m| m.as_ptr()), &p, &mut out)
        })?;
        Ok(Gallery { ptr: new_handle(out, "gallery")?, dim: model.map(Model::embedding_size) })
    }

    /// The raw handle, valid as long as this gallery lives.
    pub fn as_ptr(&self) -> *mut ffi::transface_gallery {
        self.ptr.as_ptr()
    }

    /// The embedding size of the model it was opened for (`None` without a model).
    pub fn dim(&self) -> Option<usize> {
        self.dim
    }

    fn need_dim(&self) -> Result<usize> {
        self.dim.ok_or_else(|| Error::invalid("this gallery was opened without a model (read-only, for listing)"))
    }

    /// Embeddings in the gallery.
    pub fn len(&self) -> usize {
        // SAFETY: the handle is alive; a read-only query.
        unsafe { ffi::transface_gallery_count(self.ptr.as_ptr()) }
    }

    /// Whether it holds no embeddings.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (label, number of embeddings) of every identity, sorted by label.
    pub fn identities(&self) -> Result<Vec<(String, usize)>> {
        // SAFETY: the handle is alive; read-only queries.
        let n = unsafe { ffi::transface_gallery_identity_count(self.ptr.as_ptr()) };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let (mut label, mut count) = (ptr::null(), 0usize);
            // SAFETY: both outputs are valid; the label lives until close and is copied here.
            check(unsafe { ffi::transface_gallery_identity(self.ptr.as_ptr(), i, &mut label, &mut count) })?;
            out.push((unsafe { owned_string(label) }.unwrap_or_default(), count));
        }
        Ok(out)
    }

    /// Enrols the embeddings in `embeddings` (N x dim floats, dim the model's embedding size;
    /// normalised by the library) under `label` (1 to 1024 bytes of UTF-8), merging the
    /// (key, value) pairs of `metadata` into the identity's; returns the N new entry ids.
    /// Durable when it returns.
    pub fn enrol(&mut self, label: &str, embeddings: &[f32], metadata: &[(&str, &str)]) -> Result<Vec<u64>> {
        let dim = self.need_dim()?;
        let n = rows(embeddings, dim, "embeddings")?;
        let label = c_string(label, "label")?;
        let strings = metadata
            .iter()
            .flat_map(|&(k, v)| [k, v])
            .map(|s| c_string(s, "metadata"))
            .collect::<Result<Vec<_>>>()?;
        let pointers: Vec<*const std::os::raw::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        let mut ids = vec![0u64; n];
        // SAFETY: embeddings holds n * dim floats; pointers holds 2 * metadata.len() C strings
        // alive for the call; ids has n entries; &mut self gives the exclusive use enrol needs.
        check(unsafe {
            ffi::transface_gallery_enrol(
                self.ptr.as_ptr(),
                label.as_ptr(),
                embeddings.as_ptr(),
                n,
                dim,
                if pointers.is_empty() { ptr::null() } else { pointers.as_ptr() },
                metadata.len(),
                ids.as_mut_ptr(),
            )
        })?;
        Ok(ids)
    }

    /// Removes every embedding of `label`; returns how many (`NotFound` when it has none).
    pub fn remove(&mut self, label: &str) -> Result<usize> {
        let label = c_string(label, "label")?;
        let mut removed = 0usize;
        // SAFETY: label is NUL-terminated; &mut self gives the exclusive use remove needs.
        check(unsafe { ffi::transface_gallery_remove(self.ptr.as_ptr(), label.as_ptr(), &mut removed) })?;
        Ok(removed)
    }

    /// For each of the N queries in `queries` (N x dim floats), up to `k` matches, best first,
    /// one per identity (fewer when the gallery has fewer identities); `passes` tells whether
    /// a score reaches `threshold`. May run on any number of threads at once.
    pub fn search(&self, queries: &[f32], k: usize, threshold: f32) -> Result<Vec<Vec<Match>>> {
        let dim = self.need_dim()?;
        let n = rows(queries, dim, "queries")?;
        if k == 0 {
            return Err(Error::invalid("k must be at least 1"));
        }
        let slots = product(&[n, k], "count x k")?;
        let empty = ffi::transface_match {
            struct_size: std::mem::size_of::<ffi::transface_match>() as u32,
            score: 0.0,
            passes: 0,
            entry_id: 0,
            label: ptr::null(),
        };
        let mut matches = vec![empty; slots];
        let mut found = vec![0usize; n];
        // SAFETY: queries holds n * dim floats; matches has n * k elements of the size its
        // first element states; found has n entries. Searches may run concurrently.
        check(unsafe {
            ffi::transface_gallery_search(
                self.ptr.as_ptr(),
                queries.as_ptr(),
                n,
                dim,
                k,
                threshold,
                matches.as_mut_ptr(),
                slots,
                found.as_mut_ptr(),
            )
        })?;
        Ok(matches
            .chunks(k)
            .zip(&found)
            .map(|(row, &f)| {
                row[..f.min(k)]
                    .iter()
                    .map(|m| Match {
                        // SAFETY: the library's label strings live until close (after this copy).
                        label: unsafe { owned_string(m.label) }.unwrap_or_default(),
                        score: m.score,
                        passes: m.passes != 0,
                        entry_id: m.entry_id,
                    })
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_params_are_the_library_defaults() {
        let p = GalleryParams::default();
        assert_eq!(p, GalleryParams { storage: GalleryStorage::Float32, read_only: false, search_threads: 1, index: GalleryIndex::Exact });
        let c = GalleryParams { storage: GalleryStorage::Float16, search_threads: 3, ..p }.to_c(true).unwrap();
        assert_eq!(c.struct_size as usize, std::mem::size_of::<ffi::transface_gallery_params>());
        assert_eq!((c.storage, c.read_only, c.search_threads), (1, 1, 3));
        assert_eq!(c.index as u32, ffi::TRANSFACE_GALLERY_EXACT);
        let h = GalleryParams { index: GalleryIndex::Hnsw { m: 8, ef_construction: 50, ef_search: 20, seed: 7 }, ..p }.to_c(false).unwrap();
        assert_eq!((h.index as u32, h.hnsw_m, h.hnsw_ef_construction, h.hnsw_ef_search, h.hnsw_seed), (ffi::TRANSFACE_GALLERY_HNSW, 8, 50, 20, 7));
        assert_eq!(GalleryIndex::hnsw(), GalleryIndex::Hnsw { m: 16, ef_construction: 200, ef_search: 64, seed: 100 });
    }

    #[test]
    fn rows_are_checked() {
        assert_eq!(rows(&[0.0; 6], 3, "x").unwrap(), 2);
        assert!(rows(&[0.0; 7], 3, "x").is_err());
        assert!(rows(&[], 3, "x").is_err());
    }
}
