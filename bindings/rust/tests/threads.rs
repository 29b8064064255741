//! One Model shared by several threads, each with its own Context.

mod common;

use std::sync::Arc;
use std::thread;

use common::*;
use transface::{Context, EmbedFlags, Model};

#[test]
fn four_threads_share_one_model() {
    let model: Model = reference_model();
    let (images, count) = reference_images();
    let images = Arc::new(images);
    let flags = EmbedFlags::NONE;
    let single = Context::new(&model, 1, 8).unwrap().embed_with_patches(&images, count, 112, 112, flags).unwrap();

    let handles: Vec<_> = (0..4)
        .map(|_| {
            let model = model.clone(); // shares the same library handle
            let images = Arc::clone(&images);
            thread::spawn(move || {
                let mut ctx = Context::new(&model, 1, 8).unwrap();
                let mut runs = Vec::new();
                for _ in 0..3 {
                    runs.push(ctx.embed_with_patches(&images, count, 112, 112, flags).unwrap());
                }
                runs
            })
        })
        .collect();
    for h in handles {
        for run in h.join().unwrap() {
            assert_eq!(run, single);
        }
    }
}

#[test]
fn scoped_threads_borrow_the_model_and_contexts_move_between_threads() {
    let model = reference_model();
    let (images, count) = reference_images();
    let single = Context::new(&model, 1, 8).unwrap().embed(&images, count, 112, 112, EmbedFlags::NONE).unwrap();
    thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (model, images) = (&model, &images);
                s.spawn(move || Context::new(model, 1, 8).unwrap().embed(images, count, 112, 112, EmbedFlags::NONE).unwrap())
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), single);
        }
    });

    // A context is Send: create it here, use it on another thread, bring it back.
    let ctx = Context::new(&model, 1, 8).unwrap();
    drop(model);
    let imgs = images.clone();
    let (ctx, out) = thread::spawn(move || {
        let mut ctx = ctx;
        let out = ctx.embed(&imgs, count, 112, 112, EmbedFlags::NONE).unwrap();
        (ctx, out)
    })
    .join()
    .unwrap();
    assert_eq!(out, single);
    drop(ctx);
}

/// Contexts with more than one worker thread agree with a single-threaded one (within the
/// reference tolerance; the results are printed with `-- --nocapture`).
#[test]
fn contexts_with_several_worker_threads() {
    let model = reference_model();
    let (images, count) = reference_images();
    let flags = EmbedFlags::NO_NORMALIZE;
    let single = Context::new(&model, 1, 8).unwrap().embed_with_patches(&images, count, 112, 112, flags).unwrap();
    for threads in [2, 3, 4] {
        let mut ctx = Context::new(&model, threads, 3).unwrap();
        let out = ctx.embed_with_patches(&images, count, 112, 112, flags).unwrap();
        let rel = compare_to_reference(&format!("{threads} workers vs 1"), &out.embeddings, &single.embeddings);
        compare_to_reference(&format!("{threads} workers vs 1 (weights)"), &out.patch_weights, &single.patch_weights);
        compare_to_reference(&format!("{threads} workers vs 1 (std)"), &out.patch_std, &single.patch_std);
        println!("{threads} workers: max rel err {rel:.3e}, bitwise equal: {}", out == single);
    }
}
