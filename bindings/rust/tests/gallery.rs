//! `Gallery`: enrol, search, remove, persistence and the model guard through the C ABI, as
//! `bindings/python/tests/test_gallery.py`, on the tiny reference model.

mod common;

use common::{expect, reference_model, TempDir};
use transface::{Builder, Gallery, GalleryParams, GalleryStorage, Status};

/// Approximately standard normal floats (the sum of 12 xorshift uniforms, as test_gallery.c).
struct Rng(u64);

impl Rng {
    fn gauss(&mut self) -> f32 {
        let mut u = 0f64;
        for _ in 0..12 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            u += (self.0 >> 11) as f64 / 9007199254740992.0;
        }
        (u - 6.0) as f32
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.gauss()).collect()
    }
}

fn owned(list: &[(&str, usize)]) -> Vec<(String, usize)> {
    list.iter().map(|&(l, n)| (l.to_owned(), n)).collect()
}

#[test]
fn enrol_search_remove_and_reopen() {
    let model = reference_model();
    let e = model.embedding_size();
    let mut rng = Rng(5);
    let people: Vec<(&str, Vec<f32>)> = ["ann", "bo", "cy"].iter().map(|&n| (n, rng.vec(2 * e))).collect();
    let dir = TempDir::new("gallery");
    let path = dir.0.join("people.tfg");
    let query: Vec<f32>;
    let mut ids_of = Vec::new();
    {
        let mut g = Gallery::open(&path, Some(&model), &GalleryParams::default()).expect("open");
        assert!(g.is_empty() && g.dim() == Some(e));
        for (name, emb) in &people {
            let ids = g.enrol(name, emb, &[("dept", "x")]).expect("enrol");
            assert_eq!(ids.len(), 2);
            assert_eq!(ids[1], ids[0] + 1);
            ids_of.push(ids);
        }
        assert_eq!(g.len(), 6);
        assert_eq!(g.identities().unwrap(), owned(&[("ann", 2), ("bo", 2), ("cy", 2)]));

        // A noisy copy of bo's second embedding.
        query = people[1].1[e..].iter().map(|&x| x + 0.3 * rng.gauss()).collect();
        let top = g.search(&query, 5, 0.5).expect("search");
        assert_eq!(top.len(), 1);
        let top = &top[0];
        assert_eq!(top.len(), 3, "k 5 over 3 identities: {top:?}");
        assert_eq!(top[0].label, "bo");
        assert!(top[0].passes && top[0].score > 0.9, "{top:?}");
        assert!(!top[1].passes && top[1].score <= top[0].score && top[2].score <= top[1].score);
        let mut labels: Vec<&str> = top.iter().map(|m| m.label.as_str()).collect();
        labels.sort();
        assert_eq!(labels, ["ann", "bo", "cy"]);
        // Each match's entry id is one of its identity's.
        for m in top {
            let i = ["ann", "bo", "cy"].iter().position(|&l| l == m.label).unwrap();
            assert!(ids_of[i].contains(&m.entry_id), "{m:?} vs {ids_of:?}");
        }

        let mut both = query.clone();
        both.extend_from_slice(&people[2].1[..e]);
        let r = g.search(&both, 1, 0.3).expect("search 2");
        let firsts: Vec<&str> = r.iter().map(|m| m[0].label.as_str()).collect();
        assert_eq!(firsts, ["bo", "cy"]);
        assert!(r.iter().all(|m| m.len() == 1));

        // Searches from several threads at once (Gallery is Sync).
        std::thread::scope(|s| {
            let g = &g;
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| g.search(&query, 2, 0.5).unwrap())).collect();
            for h in handles {
                let r = h.join().unwrap();
                assert_eq!(r[0][0].label, "bo");
                assert_eq!(r[0].len(), 2);
            }
        });

        assert_eq!(g.remove("bo").unwrap(), 2);
        expect(g.remove("bo"), Status::NotFound, &[]);
        assert_eq!(g.len(), 4);
    }
    // Read-only, no model: listing only.
    let g = Gallery::open(&path, None, &GalleryParams::default()).expect("reopen read-only");
    assert_eq!(g.identities().unwrap(), owned(&[("ann", 2), ("cy", 2)]));
    assert_eq!(g.len(), 4);
    assert_eq!(g.dim(), None);
    expect(g.search(&people[0].1[..e], 5, 0.3), Status::InvalidArgument, &["without a model"]);
    // A read-only open with the model searches.
    let g = Gallery::open(&path, Some(&model), &GalleryParams { read_only: true, ..Default::default() }).unwrap();
    assert_eq!(g.search(&people[2].1[..e], 1, 0.3).unwrap()[0][0].label, "cy");
}

#[test]
fn float16_and_int8_storage() {
    let model = reference_model();
    let e = model.embedding_size();
    let mut rng = Rng(11);
    let dir = TempDir::new("gallery16");
    for storage in [GalleryStorage::Float16, GalleryStorage::Int8] {
        let params = GalleryParams { storage, search_threads: 2, ..Default::default() };
        let mut g = Gallery::open(dir.0.join(format!("{storage:?}.tfg")), Some(&model), &params).unwrap();
        let (a, b) = (rng.vec(e), rng.vec(e));
        g.enrol("a", &a, &[]).unwrap();
        g.enrol("b", &b, &[]).unwrap();
        let r = g.search(&b, 2, 0.5).unwrap();
        assert_eq!(r[0][0].label, "b");
        assert!((r[0][0].score - 1.0).abs() < 1e-2, "{storage:?} {r:?}");
    }
}

#[test]
fn another_models_gallery_is_refused() {
    let model = reference_model();
    let dir = TempDir::new("gallery-other");
    let path = dir.0.join("g.tfg");
    {
        let mut g = Gallery::open(&path, Some(&model), &GalleryParams::default()).unwrap();
        g.enrol("ann", &vec![1.0; model.embedding_size()], &[]).unwrap();
    }
    let mut b = Builder::new(model.config()).unwrap();
    b.init_weights(3).unwrap();
    let other = b.build().unwrap();
    expect(Gallery::open(&path, Some(&other), &GalleryParams::default()), Status::InvalidArgument, &["holds embeddings of"]);
}

#[test]
fn errors() {
    let model = reference_model();
    let e = model.embedding_size();
    let dir = TempDir::new("gallery-errors");
    let path = dir.0.join("g.tfg");
    let mut g = Gallery::open(&path, Some(&model), &GalleryParams::default()).unwrap();
    expect(g.enrol("x", &vec![1.0; e + 1], &[]), Status::InvalidArgument, &["embeddings"]);
    expect(g.enrol("x", &[], &[]), Status::InvalidArgument, &["embeddings"]);
    expect(g.enrol("", &vec![1.0; e], &[]), Status::InvalidArgument, &[]);
    expect(g.enrol("a\0b", &vec![1.0; e], &[]), Status::InvalidArgument, &["NUL"]);
    expect(g.search(&vec![1.0; e], 0, 0.3), Status::InvalidArgument, &["k"]);
    expect(g.search(&vec![1.0; e - 1], 1, 0.3), Status::InvalidArgument, &["queries"]);
    assert!(g.is_empty());
    expect(Gallery::open(&path, Some(&model), &GalleryParams::default()), Status::Io, &["open for writing"]);
    // A missing gallery cannot be listed without a model.
    assert!(Gallery::open(dir.0.join("absent.tfg"), None, &GalleryParams::default()).is_err());
    // A bad storage value cannot be written: GalleryStorage is an enum.
    drop(g);
    // The writer lock goes with the gallery.
    Gallery::open(&path, Some(&model), &GalleryParams::default()).expect("open after close");
}
