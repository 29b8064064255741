//! Context precision: bf16 embeddings agree with float32 to cosine >= 0.9995, or bf16 is
//! refused with InvalidArgument naming the instructions it needs.

mod common;

use common::*;
use transface::{Context, EmbedFlags, Precision, Status};

#[test]
fn bf16_agrees_with_fp32_or_is_refused() {
    let model = reference_model();
    let (images, count) = reference_images();
    let e = model.embedding_size();
    let reference = Context::new(&model, 1, 4).unwrap().embed(&images, count, 112, 112, EmbedFlags::FLIP).unwrap();
    match Context::with_precision(&model, 2, 4, Precision::Bf16) {
        Ok(mut ctx) => {
            let got = ctx.embed(&images, count, 112, 112, EmbedFlags::FLIP).unwrap();
            for i in 0..count {
                let cosine: f32 = (0..e).map(|j| reference[i * e + j] * got[i * e + j]).sum();
                println!("image {i}: bf16 cosine to fp32 {cosine}");
                assert!(cosine >= 0.9995, "image {i}: cosine {cosine}");
            }
        }
        Err(err) => {
            assert_eq!(err.status, Status::InvalidArgument, "{err}");
            assert!(err.message.contains("AVX512_BF16"), "{err}");
        }
    }
    let fp32 = Context::with_precision(&model, 1, 4, Precision::Fp32).unwrap().embed(&images, count, 112, 112, EmbedFlags::FLIP);
    assert_eq!(fp32.unwrap(), reference, "Precision::Fp32 is Context::new");
}
