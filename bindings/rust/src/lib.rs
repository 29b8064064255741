//! Safe Rust bindings to **libtransface**, a CPU implementation of the TransFace
//! face-recognition ViT (ICCV 2023), through its C ABI (`include/transface.h`).
//!
//! ```no_run
//! use transface::{Context, ContextParams, EmbedFlags, Model};
//!
//! # fn main() -> transface::Result<()> {
//! let model = Model::load("vit_s.tfm")?;
//! let mut ctx = Context::create(&model, &ContextParams { threads: 2, ..Default::default() })?;
//! let side = model.preprocess().input_width as usize;
//! let faces = vec![0u8; 2 * side * side * 3]; // 2 aligned RGB faces, HWC
//! let emb = ctx.embed(&faces, 2, side, side, EmbedFlags::NONE)?;
//! let e = model.embedding_size();
//! let similarity = transface::compare(&emb[..e], &emb[e..])?;
//! # let _ = similarity;
//! # Ok(())
//! # }
//! ```
//!
//! # Ownership and threads
//!
//! * [`Model`] is immutable once loaded: it is `Send + Sync` and cheap to clone (clones share
//!   one library handle through an [`Arc`](std::sync::Arc); the handle is freed when the last clone goes).
//! * [`Context`] holds the buffers of one inference stream: it is `Send` but not `Sync`, and its
//!   methods take `&mut self`. A context keeps a clone of its model, so it has no lifetime
//!   parameter and can be moved into a spawned thread:
//!
//! ```compile_fail
//! fn shared<T: Sync>() {}
//! shared::<transface::Context>(); // a context is not Sync
//! ```
//!
//! * [`Builder`], [`Trainer`] and [`Detector`] are `Send`, not `Sync`.
//! * [`Gallery`] is `Send + Sync`: any number of threads may [`search`](Gallery::search) it
//!   at once; [`enrol`](Gallery::enrol) and [`remove`](Gallery::remove) take `&mut self`.
//!
//! # Errors
//!
//! Every fallible call returns [`Result`]; the [`Error`] carries the library's [`Status`] and
//! the message of `transface_last_error()` (or, for problems the Rust side catches before
//! calling C, such as a string with an interior NUL or a slice of the wrong length, a message
//! produced here).
//!
//! # Modules
//!
//! The modules mirror the Python package (`bindings/python/transface/`); everything is also
//! re-exported here. [`error`] (`_lib.py`'s errors), [`config`], [`model`], [`context`],
//! [`builder`] (`_api.py`), [`convert`] (`convert.py`), [`image`] (`_image.py`), [`data`]
//! (`_data.py`), [`detect`] (`_detect.py`), [`gallery`] (`_gallery.py`), [`eval`]
//! (`_eval.py`), [`train`] (`_train.py`), and [`ffi`], the raw declarations of every function of `include/transface.h`.

pub mod builder;
pub mod config;
pub mod context;
pub mod convert;
pub mod data;
pub mod detect;
pub mod error;
pub mod eval;
pub mod ffi;
pub mod gallery;
pub mod image;
pub mod model;
pub mod train;
mod util;
mod version;

pub use builder::Builder;
pub use config::{ChannelOrder, Config, Preprocess, TensorInfo};
pub use context::{compare, Context, ContextParams, EmbedFlags, Patches, Precision};
pub use convert::{
    convert_state_dict, convert_state_dict_with_notes, infer_config, infer_config_with_notes, Conversion, ConvertOptions,
};
pub use data::{PackParams, RecordIO, RecordIOLayout, VerificationBin};
pub use detect::{Detector, DetectorParams, Face, LandmarkBox};
pub use error::{Error, Result, Status};
pub use gallery::{Gallery, GalleryIndex, GalleryParams, GalleryStorage, Match};
pub use eval::ijb::{IjbParams, IjbResult};
pub use eval::{
    pair_distances, roc_curve, tar_at_far, verify_distances, verify_embeddings, verify_roc, Roc, VerifyParams,
    VerifyResult, STANDARD_FARS,
};
pub use image::{
    align_face, align_face_to, alignment_template, decode_file, decode_file_with, decode_image, decode_image_with,
    estimate_similarity, image_info, warp_affine, DecodeParams, Image, ImageFormat, ImageInfo, ImageRef, PixelFormat,
};
pub use model::{LoadParams, Model};
pub use train::{amplitude_mix, StepResult, Trainer, TrainerInfo};
pub use version::{format_version, version, version_number};

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn auto_traits() {
        send_sync::<Model>();
        send::<Context>();
        send::<Builder>();
        send::<Trainer>();
        send::<Detector>();
        send_sync::<Gallery>();
        send_sync::<RecordIO>();
        send_sync::<Error>();
    }
}
