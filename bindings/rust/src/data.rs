//! Datasets: InsightFace RecordIO training sets and `.bin` verification sets.

use std::fmt;
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::error::{check, Error, Result};
use crate::ffi;
use crate::util::{c_path, new_handle, opt_ptr, to_i32};

/// Layouts of a packed RecordIO set (`transface_recordio_layout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordIOLayout {
    /// Image i at key i (insightface RecBuilder).
    Flat,
    /// Header record 0, images sorted by class, one key-range record per class (MS1MV2).
    Legacy,
}

/// Options of [`RecordIO::pack_with`] (`transface_pack_params`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackParams {
    /// Record layout (flat).
    pub layout: RecordIOLayout,
    /// Image size written to `property` (112 x 112).
    pub image_width: usize,
    pub image_height: usize,
    /// 0: store every file byte for byte (default); 1..=100: re-encode non-JPEG images as JPEG
    /// of this quality (insightface's `pack_img` uses 95).
    pub jpeg_quality: u8,
}

impl Default for PackParams {
    /// The library's defaults (`transface_pack_default_params`).
    fn default() -> PackParams {
        // SAFETY: returns a struct by value.
        let p = ffi::defaults(ffi::transface_pack_params_init);
        PackParams {
            layout: if p.layout == ffi::TRANSFACE_RECORDIO_LEGACY as i32 { RecordIOLayout::Legacy } else { RecordIOLayout::Flat },
            image_width: p.image_width.max(0) as usize,
            image_height: p.image_height.max(0) as usize,
            jpeg_quality: p.jpeg_quality.clamp(0, 255) as u8,
        }
    }
}

impl PackParams {
    fn to_c(self) -> Result<ffi::transface_pack_params> {
        // SAFETY: returns a struct by value.
        let mut p = ffi::defaults(ffi::transface_pack_params_init);
        p.struct_size = std::mem::size_of::<ffi::transface_pack_params>() as u32;
        p.layout = match self.layout {
            RecordIOLayout::Flat => ffi::TRANSFACE_RECORDIO_FLAT as i32,
            RecordIOLayout::Legacy => ffi::TRANSFACE_RECORDIO_LEGACY as i32,
        };
        p.image_width = to_i32(self.image_width, "image_width")?;
        p.image_height = to_i32(self.image_height, "image_height")?;
        p.jpeg_quality = i32::from(self.jpeg_quality);
        Ok(p)
    }
}

/// An InsightFace RecordIO training set (`train.rec` + `train.idx` + `property`), read without
/// MXNet: `Send + Sync`, reads may come from several threads.
pub struct RecordIO {
    ptr: NonNull<ffi::transface_recordio>,
}

// SAFETY: the header documents reads from several threads at once; the handle is never mutated.
unsafe impl Send for RecordIO {}
unsafe impl Sync for RecordIO {}

impl Drop for RecordIO {
    fn drop(&mut self) {
        unsafe { ffi::transface_recordio_close(self.ptr.as_ptr()) }
    }
}

impl fmt::Debug for RecordIO {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordIO").field("len", &self.len()).field("num_classes", &self.num_classes()).finish()
    }
}

impl RecordIO {
    /// Opens the folder holding `train.rec`/`train.idx`, or the `.rec` file itself.
    pub fn open(path: impl AsRef<Path>) -> Result<RecordIO> {
        let p = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        check(unsafe { ffi::transface_recordio_open(p.as_ptr(), &mut out) })?;
        Ok(RecordIO { ptr: new_handle(out, "RecordIO set")? })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        unsafe { ffi::transface_recordio_count(self.ptr.as_ptr()) }
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Classes named by `property` or the legacy header.
    pub fn num_classes(&self) -> Option<usize> {
        match unsafe { ffi::transface_recordio_num_classes(self.ptr.as_ptr()) } {
            0 => None,
            n => Some(n),
        }
    }

    /// Image `index`: its label and encoded bytes.
    pub fn read(&self, index: usize) -> Result<(i32, Vec<u8>)> {
        let mut size = 0usize;
        let mut label = 0i32;
        check(unsafe { ffi::transface_recordio_read(self.ptr.as_ptr(), index, &mut label, ptr::null_mut(), 0, &mut size) })?;
        let mut bytes = vec![0u8; size];
        check(unsafe {
            ffi::transface_recordio_read(self.ptr.as_ptr(), index, &mut label, bytes.as_mut_ptr(), bytes.len(), &mut size)
        })?;
        bytes.truncate(size);
        Ok((label, bytes))
    }

    /// Packs an image folder (one sub-folder per identity) or a `path<TAB>label` list file
    /// (paths under `root`, default the list's folder) into `output/train.rec`, `train.idx`
    /// and `property`, storing the files byte for byte. Returns the number of images.
    pub fn pack(source: impl AsRef<Path>, root: Option<&Path>, output: impl AsRef<Path>, layout: RecordIOLayout) -> Result<usize> {
        RecordIO::pack_with(source, root, output, &PackParams { layout, ..PackParams::default() })
    }

    /// As [`RecordIO::pack`] with every option (`transface_pack_params`).
    pub fn pack_with(source: impl AsRef<Path>, root: Option<&Path>, output: impl AsRef<Path>, params: &PackParams) -> Result<usize> {
        let s = c_path(source.as_ref())?;
        let r = root.map(c_path).transpose()?;
        let o = c_path(output.as_ref())?;
        let p = params.to_c()?;
        let mut n = 0usize;
        // SAFETY: every string lives to the end of the call; NULL root means the list's folder.
        check(unsafe { ffi::transface_recordio_pack(s.as_ptr(), opt_ptr(&r), o.as_ptr(), &p, &mut n) })?;
        Ok(n)
    }
}

/// An insightface `.bin` verification set: pair `i` is `images[2i]`, `images[2i + 1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationBin {
    pub images: Vec<Vec<u8>>,
    pub issame: Vec<bool>,
}

impl VerificationBin {
    /// Reads a `.bin` file with the library's safe pickle parser (nothing is executed).
    pub fn read(path: impl AsRef<Path>) -> Result<VerificationBin> {
        let p = c_path(path.as_ref())?;
        let mut h = ptr::null_mut();
        check(unsafe { ffi::transface_bin_open(p.as_ptr(), &mut h) })?;
        struct Guard(*mut ffi::transface_bin);
        impl Drop for Guard {
            fn drop(&mut self) {
                unsafe { ffi::transface_bin_close(self.0) }
            }
        }
        let g = Guard(h);
        let pairs = unsafe { ffi::transface_bin_pair_count(g.0) };
        let mut images = Vec::with_capacity(2 * pairs);
        for i in 0..2 * pairs {
            let mut data = ptr::null();
            let mut size = 0usize;
            check(unsafe { ffi::transface_bin_image(g.0, i, &mut data, &mut size) })?;
            // SAFETY: the library keeps the bytes alive as long as the handle.
            images.push(if size == 0 { Vec::new() } else { unsafe { std::slice::from_raw_parts(data, size) }.to_vec() });
        }
        let mut flags = vec![0u8; pairs.max(1)];
        check(unsafe { ffi::transface_bin_issame(g.0, flags.as_mut_ptr(), pairs) })?;
        Ok(VerificationBin { images, issame: flags[..pairs].iter().map(|&f| f != 0).collect() })
    }

    /// Writes the set as `pickle.dump((bins, issame), f, protocol)` does (0 = 4).
    pub fn write(&self, path: impl AsRef<Path>, protocol: i32) -> Result<()> {
        if self.images.len() != 2 * self.issame.len() {
            return Err(Error::invalid(format!("{} images for {} pairs (need 2 per pair)", self.images.len(), self.issame.len())));
        }
        let p = c_path(path.as_ref())?;
        let ptrs: Vec<*const u8> = self.images.iter().map(|i| i.as_ptr()).collect();
        let sizes: Vec<usize> = self.images.iter().map(Vec::len).collect();
        let flags: Vec<u8> = self.issame.iter().map(|&s| u8::from(s)).collect();
        check(unsafe {
            ffi::transface_bin_write(p.as_ptr(), ptrs.as_ptr(), sizes.as_ptr(), flags.as_ptr(), flags.len(), protocol)
        })
    }
}
