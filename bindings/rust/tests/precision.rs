//! Context precision: bf16 embeddings agree with float32 to cosine >= 0.9995, or bf16 is
//! refused with InvalidArgument naming the instructions it needs.

mod common;

use common::*;
use transface::{Context, ContextParams, EmbedFlags, Precision, Status};

#[test]
fn bf16_agrees_with_fp32_or_is_refused() {
    let model = reference_model();
    let (images, count) = reference_images();
    let e = model.embedding_size();
    let reference = Context::new(&model, 1, 4).unwrap().embed(&images, count, 112, 112, EmbedFlags::FLIP).unwrap();
    match Context::create(&model, &ContextParams { threads: 2, max_batch: 4, precision: Precision::Bf16 }) {
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
    let fp32 = Context::create(&model, &ContextParams { max_batch: 4, ..Default::default() }).unwrap().embed(&images, count, 112, 112, EmbedFlags::FLIP);
    assert_eq!(fp32.unwrap(), reference, "the default precision is Context::new's");
}
