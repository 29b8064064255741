//! Architectures (`transface_config`), preprocessing (`transface_preprocess`) and tensor shapes.

use std::os::raw::c_char;
use std::ptr;

use crate::error::{check, Error, Result, Status};
use crate::ffi;
use crate::util::{array_string, c_string, owned_string, static_str};

/// Architecture of a TransFace ViT (`transface_config`).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Preset name ("vit_s", ...) or "custom"; at most 31 bytes.
    pub arch: String,
    pub img_size: i32,
    pub patch_size: i32,
    pub in_channels: i32,
    pub embed_dim: i32,
    pub depth: i32,
    pub num_heads: i32,
    pub mlp_hidden_dim: i32,
    pub embedding_size: i32,
    pub drop_path_rate: f32,
    pub mask_ratio: f32,
    /// The SE module re-weights the tokens (every official model); `false`: plain ViT (ablation).
    pub se_gate: bool,
}

impl Config {
    /// An official configuration; `embedding_size` 0 means 512. `NotFound` for an unknown name.
    pub fn preset(name: &str, embedding_size: i32) -> Result<Config> {
        let name = c_string(name, "preset name")?;
        let mut out = empty_config();
        check(unsafe { ffi::transface_config_preset(name.as_ptr(), embedding_size, &mut out) })?;
        Ok(Config::from_ffi(&out))
    }

    /// The names [`Config::preset`] accepts.
    pub fn presets() -> Vec<&'static str> {
        let n = unsafe { ffi::transface_config_preset_count() };
        (0..n).filter_map(|i| unsafe { static_str(ffi::transface_config_preset_name(i)) }).collect()
    }

    /// Patches P = (img_size / patch_size)^2: the length of the per-patch outputs.
    pub fn num_patches(&self) -> usize {
        if self.patch_size <= 0 || self.img_size <= 0 {
            return 0;
        }
        let grid = (self.img_size / self.patch_size) as usize;
        grid * grid
    }

    pub(crate) fn from_ffi(c: &ffi::transface_config) -> Config {
        Config {
            arch: array_string(&c.arch),
            img_size: c.img_size,
            patch_size: c.patch_size,
            in_channels: c.in_channels,
            embed_dim: c.embed_dim,
            depth: c.depth,
            num_heads: c.num_heads,
            mlp_hidden_dim: c.mlp_hidden_dim,
            embedding_size: c.embedding_size,
            drop_path_rate: c.drop_path_rate,
            mask_ratio: c.mask_ratio,
            se_gate: c.no_se_gate == 0,
        }
    }

    pub(crate) fn to_ffi(&self) -> Result<ffi::transface_config> {
        let arch = c_string(&self.arch, "config.arch")?;
        let bytes = arch.as_bytes_with_nul();
        let mut c = empty_config();
        if bytes.len() > c.arch.len() {
            return Err(Error::invalid(format!(
                "config.arch '{}' is {} bytes; at most {} fit",
                self.arch,
                bytes.len() - 1,
                c.arch.len() - 1
            )));
        }
        for (dst, &b) in c.arch.iter_mut().zip(bytes) {
            *dst = b as c_char;
        }
        c.img_size = self.img_size;
        c.patch_size = self.patch_size;
        c.in_channels = self.in_channels;
        c.embed_dim = self.embed_dim;
        c.depth = self.depth;
        c.num_heads = self.num_heads;
        c.mlp_hidden_dim = self.mlp_hidden_dim;
        c.embedding_size = self.embedding_size;
        c.drop_path_rate = self.drop_path_rate;
        c.mask_ratio = self.mask_ratio;
        c.no_se_gate = if self.se_gate { 0 } else { 1 };
        Ok(c)
    }
}

pub(crate) fn empty_config() -> ffi::transface_config {
    ffi::transface_config {
        struct_size: std::mem::size_of::<ffi::transface_config>() as u32,
        arch: [0; 32],
        img_size: 0,
        patch_size: 0,
        in_channels: 0,
        embed_dim: 0,
        depth: 0,
        num_heads: 0,
        mlp_hidden_dim: 0,
        embedding_size: 0,
        drop_path_rate: 0.0,
        mask_ratio: 0.0,
        no_se_gate: 0,
    }
}

/// Channel order of the uint8 input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// How images must be prepared for a model (`transface_preprocess`); stored in the model file.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// = img_size.
    pub input_width: i32,
    /// = img_size.
    pub input_height: i32,
    /// Pixel value `x = (u8 / 255 - mean[c]) / std[c]`; 0.5 officially.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub channel_order: ChannelOrder,
    /// 5 (x, y) points, the ArcFace template for 112x112.
    pub align_template: [f32; 10],
}

impl Preprocess {
    pub(crate) fn from_ffi(p: &ffi::transface_preprocess) -> Result<Preprocess> {
        let channel_order = match p.channel_order as ffi::transface_channel_order {
            ffi::TRANSFACE_CHANNELS_RGB => ChannelOrder::Rgb,
            ffi::TRANSFACE_CHANNELS_BGR => ChannelOrder::Bgr,
            other => {
                return Err(Error::new(Status::Internal, format!("library returned channel order {other}")))
            }
        };
        Ok(Preprocess {
            input_width: p.input_width,
            input_height: p.input_height,
            mean: p.mean,
            std: p.std,
            channel_order,
            align_template: p.align_template,
        })
    }

    pub(crate) fn to_ffi(&self) -> ffi::transface_preprocess {
        ffi::transface_preprocess {
            struct_size: std::mem::size_of::<ffi::transface_preprocess>() as u32,
            input_width: self.input_width,
            input_height: self.input_height,
            mean: self.mean,
            std: self.std,
            channel_order: match self.channel_order {
                ChannelOrder::Rgb => ffi::TRANSFACE_CHANNELS_RGB as i32,
                ChannelOrder::Bgr => ffi::TRANSFACE_CHANNELS_BGR as i32,
            },
            align_template: self.align_template,
        }
    }
}

pub(crate) fn empty_preprocess() -> ffi::transface_preprocess {
    ffi::transface_preprocess {
        struct_size: std::mem::size_of::<ffi::transface_preprocess>() as u32,
        input_width: 0,
        input_height: 0,
        mean: [0.0; 3],
        std: [0.0; 3],
        channel_order: 0,
        align_template: [0.0; 10],
    }
}

/// Shape of one tensor, under its official PyTorch state_dict name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// 1 to 4 dimensions.
    pub dims: Vec<i64>,
    /// Number of elements.
    pub count: usize,
}

impl TensorInfo {
    /// Reads the info of tensor `index` through `f` (model or builder variant).
    pub(crate) fn fetch(f: impl FnOnce(*mut ffi::transface_tensor_info) -> ffi::transface_status) -> Result<TensorInfo> {
        let mut info = ffi::transface_tensor_info {
            struct_size: std::mem::size_of::<ffi::transface_tensor_info>() as u32,
            name: ptr::null(),
            ndim: 0,
            dims: [0; 4],
            count: 0,
        };
        check(f(&mut info))?;
        let ndim = info.ndim.clamp(0, 4) as usize;
        Ok(TensorInfo {
            // SAFETY: the name lives as long as the model or builder; it is copied now.
            name: unsafe { owned_string(info.name) }.unwrap_or_default(),
            dims: info.dims[..ndim].to_vec(),
            count: info.count,
        })
    }
}
