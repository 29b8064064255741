//! Images: decoding (JPEG, PNG, PNM) and face alignment (insightface's `norm_crop`).

use std::path::Path;
use std::ptr;

use crate::error::{check, Error, Result, Status};
use crate::ffi;
use crate::util::{c_path, product, to_i32};

/// Encoded image formats (`transface_image_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Jpeg,
    Png,
    /// PBM, PGM, PPM (P1 to P6).
    Pnm,
    /// A code this version of the bindings does not know.
    Unknown(i32),
}

impl ImageFormat {
    fn from_raw(code: i32) -> ImageFormat {
        match u32::try_from(code).unwrap_or(u32::MAX) {
            ffi::TRANSFACE_IMAGE_JPEG => ImageFormat::Jpeg,
            ffi::TRANSFACE_IMAGE_PNG => ImageFormat::Png,
            ffi::TRANSFACE_IMAGE_PNM => ImageFormat::Pnm,
            _ => ImageFormat::Unknown(code),
        }
    }
}

/// What an image header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: usize,
    pub height: usize,
    pub format: ImageFormat,
    /// Channels stored in the file: 1 grey, 2 grey + alpha, 3 colour, 4 colour + alpha or CMYK.
    pub channels: usize,
}

/// Options of [`decode_image_with`] and [`decode_file_with`] (`transface_decode_params`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeParams {
    /// Images whose header claims more pixels are refused before allocating; 0 = no limit.
    pub max_pixels: u64,
    /// Return truncated or corrupt JPEGs as libjpeg reconstructs them instead of failing.
    pub accept_damaged: bool,
}

impl Default for DecodeParams {
    fn default() -> Self {
        // SAFETY: returns a struct by value.
        let p = ffi::defaults(ffi::transface_decode_params_init);
        DecodeParams { max_pixels: p.max_pixels, accept_damaged: p.accept_damaged != 0 }
    }
}

impl DecodeParams {
    fn to_c(self) -> ffi::transface_decode_params {
        // SAFETY: returns a struct by value.
        let mut p = ffi::defaults(ffi::transface_decode_params_init);
        p.struct_size = std::mem::size_of::<ffi::transface_decode_params>() as u32;
        p.max_pixels = self.max_pixels;
        p.accept_damaged = i32::from(self.accept_damaged);
        p
    }
}

/// A decoded image: `height` rows of `width` pixels, interleaved R, G, B bytes, no padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Image {
    /// The image as an RGB [`ImageRef`] (for [`align_face`] and [`warp_affine`]).
    pub fn view(&self) -> ImageRef<'_> {
        ImageRef { pixels: &self.pixels, width: self.width, height: self.height, stride: 0, format: PixelFormat::Rgb }
    }
}

fn image_info_from_c(i: &ffi::transface_image_info) -> ImageInfo {
    ImageInfo {
        width: i.width.max(0) as usize,
        height: i.height.max(0) as usize,
        format: ImageFormat::from_raw(i.format),
        channels: i.channels.max(0) as usize,
    }
}

fn new_image_info() -> ffi::transface_image_info {
    ffi::transface_image_info { struct_size: std::mem::size_of::<ffi::transface_image_info>() as u32, ..Default::default() }
}

/// Calls the decoder twice: the header (to size the buffer), then the pixels.
fn decode_with(
    params: &DecodeParams,
    call: impl Fn(&ffi::transface_decode_params, *mut u8, usize, &mut ffi::transface_image_info) -> ffi::transface_status,
) -> Result<Image> {
    let p = params.to_c();
    let mut info = new_image_info();
    check(call(&p, ptr::null_mut(), 0, &mut info))?;
    let header = image_info_from_c(&info);
    let bytes = product(&[header.width, header.height, 3], "image size")?;
    let mut pixels = vec![0u8; bytes];
    check(call(&p, pixels.as_mut_ptr(), pixels.len(), &mut info))?;
    if (info.width as usize, info.height as usize) != (header.width, header.height) {
        return Err(Error::new(Status::Internal, "the image changed size between the two decoder calls"));
    }
    Ok(Image { width: header.width, height: header.height, pixels })
}

/// The header of an encoded image (only the header is read; the default pixel limit applies).
pub fn image_info(data: &[u8]) -> Result<ImageInfo> {
    let p = DecodeParams::default().to_c();
    let mut info = new_image_info();
    // SAFETY: data is a live slice; a NULL output with capacity 0 reads the header only.
    check(unsafe { ffi::transface_decode_image(data.as_ptr(), data.len(), &p, ptr::null_mut(), 0, &mut info) })?;
    Ok(image_info_from_c(&info))
}

/// Decodes a JPEG, PNG or PNM image held in memory to RGB (default parameters).
pub fn decode_image(data: &[u8]) -> Result<Image> {
    decode_image_with(data, &DecodeParams::default())
}

pub fn decode_image_with(data: &[u8], params: &DecodeParams) -> Result<Image> {
    // SAFETY: data lives across both calls; out points to `capacity` writable bytes or is NULL with 0.
    decode_with(params, |p, out, capacity, info| unsafe {
        ffi::transface_decode_image(data.as_ptr(), data.len(), p, out, capacity, info)
    })
}

/// Decodes an image file to RGB (default parameters).
pub fn decode_file(path: impl AsRef<Path>) -> Result<Image> {
    decode_file_with(path, &DecodeParams::default())
}

pub fn decode_file_with(path: impl AsRef<Path>, params: &DecodeParams) -> Result<Image> {
    let c = c_path(path.as_ref())?;
    decode_with(params, |p, out, capacity, info| unsafe { ffi::transface_decode_file(c.as_ptr(), p, out, capacity, info) })
}

/// Pixel layouts accepted by [`align_face`] and [`warp_affine`] (`transface_pixel_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgba,
    Bgra,
    Gray,
}

impl PixelFormat {
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Rgb | PixelFormat::Bgr => 3,
            PixelFormat::Rgba | PixelFormat::Bgra => 4,
            PixelFormat::Gray => 1,
        }
    }

    fn code(self) -> ffi::transface_pixel_format {
        match self {
            PixelFormat::Rgb => ffi::TRANSFACE_PIXELS_RGB,
            PixelFormat::Bgr => ffi::TRANSFACE_PIXELS_BGR,
            PixelFormat::Rgba => ffi::TRANSFACE_PIXELS_RGBA,
            PixelFormat::Bgra => ffi::TRANSFACE_PIXELS_BGRA,
            PixelFormat::Gray => ffi::TRANSFACE_PIXELS_GRAY,
        }
    }
}

/// A borrowed 8-bit image: `height` rows `stride` bytes apart (0 = packed), `width` pixels of
/// `format` each.
#[derive(Clone, Copy, Debug)]
pub struct ImageRef<'a> {
    pub pixels: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub format: PixelFormat,
}

impl<'a> ImageRef<'a> {
    /// A packed image (stride = width * channels).
    pub fn new(pixels: &'a [u8], width: usize, height: usize, format: PixelFormat) -> ImageRef<'a> {
        ImageRef { pixels, width, height, stride: 0, format }
    }

    /// The same image with rows `stride` bytes apart.
    pub fn with_stride(self, stride: usize) -> ImageRef<'a> {
        ImageRef { stride, ..self }
    }

    /// Checks that the slice holds every row (the C side reads them) and returns the C arguments.
    fn checked(&self) -> Result<(i32, i32, usize)> {
        let row = product(&[self.width, self.format.channels()], "image row")?;
        let stride = if self.stride == 0 { row } else { self.stride };
        if self.width == 0 || self.height == 0 {
            return Err(Error::invalid(format!("image size {}x{} must be positive", self.width, self.height)));
        }
        if stride < row {
            return Err(Error::invalid(format!("stride {stride} is smaller than a row ({row} bytes)")));
        }
        let needed = product(&[stride, self.height - 1], "image")?
            .checked_add(row)
            .ok_or_else(|| Error::invalid("image size overflows"))?;
        if self.pixels.len() < needed {
            return Err(Error::invalid(format!(
                "image of {}x{} {:?} pixels (stride {stride}) needs {needed} bytes, the slice has {}",
                self.width,
                self.height,
                self.format,
                self.pixels.len()
            )));
        }
        Ok((to_i32(self.width, "image width")?, to_i32(self.height, "image height")?, stride))
    }
}

/// The ArcFace 5-point template for a `size` x `size` crop (size a multiple of 112, or of 128
/// with insightface's shift), as x0, y0, ..., x4, y4.
pub fn alignment_template(size: usize) -> Result<[f32; 10]> {
    let mut out = [0f32; 10];
    check(unsafe { ffi::transface_alignment_template(to_i32(size, "size")?, out.as_mut_ptr()) })?;
    Ok(out)
}

/// The least-squares similarity transform (no reflection) mapping 5 `src` points onto `dst`,
/// as a row-major 2x3 matrix (scikit-image's `SimilarityTransform.estimate`).
pub fn estimate_similarity(src: &[f32; 10], dst: &[f32; 10]) -> Result<[f64; 6]> {
    let mut out = [0f64; 6];
    check(unsafe { ffi::transface_estimate_similarity(src.as_ptr(), dst.as_ptr(), out.as_mut_ptr()) })?;
    Ok(out)
}

/// Warps an image by a 2x3 matrix (image to output coordinates): bilinear, black outside, as
/// `cv2.warpAffine(image, matrix, (out_width, out_height), borderValue=0)`. Returns RGB bytes.
pub fn warp_affine(image: &ImageRef<'_>, matrix: &[f64; 6], out_width: usize, out_height: usize) -> Result<Vec<u8>> {
    let (w, h, stride) = image.checked()?;
    let mut out = vec![0u8; product(&[out_width, out_height, 3], "output")?];
    // SAFETY: the image slice holds every row (checked); out has `out.len()` bytes.
    check(unsafe {
        ffi::transface_warp_affine(
            image.pixels.as_ptr(),
            w,
            h,
            stride,
            image.format.code(),
            matrix.as_ptr(),
            to_i32(out_width, "out_width")?,
            to_i32(out_height, "out_height")?,
            out.as_mut_ptr(),
            out.len(),
        )
    })?;
    Ok(out)
}

/// Aligns a face as insightface's `norm_crop`: returns the `size` x `size` RGB crop and the
/// matrix (image to crop). Landmarks: x0, y0, ..., x4, y4 for the image-left eye, image-right
/// eye, nose tip, image-left mouth corner, image-right mouth corner.
pub fn align_face(image: &ImageRef<'_>, landmarks: &[f32; 10], size: usize) -> Result<(Vec<u8>, [f64; 6])> {
    align(image, landmarks, None, size)
}

/// As [`align_face`], onto custom template points (e.g. a model's `Preprocess::align_template`).
pub fn align_face_to(
    image: &ImageRef<'_>,
    landmarks: &[f32; 10],
    template: &[f32; 10],
    size: usize,
) -> Result<(Vec<u8>, [f64; 6])> {
    align(image, landmarks, Some(template), size)
}

fn align(image: &ImageRef<'_>, landmarks: &[f32; 10], template: Option<&[f32; 10]>, size: usize) -> Result<(Vec<u8>, [f64; 6])> {
    let (w, h, stride) = image.checked()?;
    let mut out = vec![0u8; product(&[size, size, 3], "crop")?];
    let mut matrix = [0f64; 6];
    // SAFETY: as in warp_affine; the template is NULL or 10 floats.
    check(unsafe {
        ffi::transface_align_face(
            image.pixels.as_ptr(),
            w,
            h,
            stride,
            image.format.code(),
            landmarks.as_ptr(),
            template.map_or(ptr::null(), |t| t.as_ptr()),
            to_i32(size, "size")?,
            out.as_mut_ptr(),
            out.len(),
            matrix.as_mut_ptr(),
        )
    })?;
    Ok((out, matrix))
}
