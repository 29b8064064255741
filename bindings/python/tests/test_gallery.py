"""transface.Gallery: enrol, search, remove, persistence and the model guard through the C ABI."""

import numpy as np
import pytest

import transface


def test_enrol_search_remove_and_reopen(tiny_model, tmp_path):
    rng = np.random.default_rng(5)
    people = {name: rng.standard_normal((2, tiny_model.embedding_size)).astype(np.float32) for name in ("ann", "bo", "cy")}
    path = tmp_path / "people.tfg"
    with transface.Gallery(path, tiny_model) as g:
        for name, emb in people.items():
            assert len(g.enrol(name, emb, {"dept": "x"})) == 2
        assert len(g) == 6 and g.identities() == {"ann": 2, "bo": 2, "cy": 2}
        query = people["bo"][1] + 0.3 * rng.standard_normal(tiny_model.embedding_size).astype(np.float32)
        top = g.search(query, k=5, threshold=0.5)
        assert [m.label for m in top][0] == "bo" and top[0].passes and len(top) == 3
        assert sorted(m.label for m in top) == ["ann", "bo", "cy"] and not top[1].passes
        both = g.search(np.stack([query, people["cy"][0]]), k=1, threshold=0.5)
        assert [r[0].label for r in both] == ["bo", "cy"]
        assert g.remove("bo") == 2
        assert g.identities() == {"ann": 2, "cy": 2}  # the listing follows writes through this handle
        g.enrol("dee", people["ann"][0])
        assert g.identities() == {"ann": 2, "cy": 2, "dee": 1}
        g.remove("dee")
        with pytest.raises(transface.NotFoundError):
            g.remove("bo")
    with transface.Gallery(path) as g:  # read-only, no model: listing
        assert g.identities() == {"ann": 2, "cy": 2}
        with pytest.raises(transface.InvalidArgumentError, match="without a model"):
            g.search(people["ann"][0])


def test_another_models_gallery_is_refused(tiny_model, tmp_path):
    path = tmp_path / "g.tfg"
    with transface.Gallery(path, tiny_model) as g:
        g.enrol("ann", np.ones(tiny_model.embedding_size, np.float32))
    b = transface.Builder(tiny_model.config)
    b.init_weights(seed=3)
    with b.build() as other, pytest.raises(transface.InvalidArgumentError, match="holds embeddings of"):
        transface.Gallery(path, other)


def test_errors(tiny_model, tmp_path):
    with transface.Gallery(tmp_path / "g.tfg", tiny_model) as g:
        with pytest.raises(transface.InvalidArgumentError):
            g.enrol("x", np.ones(tiny_model.embedding_size + 1, np.float32))
        with pytest.raises(transface.InvalidArgumentError):
            g.enrol("", np.ones(tiny_model.embedding_size, np.float32))
        with pytest.raises(transface.FileError, match="open for writing"):
            transface.Gallery(tmp_path / "g.tfg", tiny_model)
    with pytest.raises(transface.InvalidArgumentError, match="storage"):
        transface.Gallery(tmp_path / "h.tfg", tiny_model, storage="int4")


def test_small_storages(tiny_model, tmp_path):
    rng = np.random.default_rng(4)
    emb = rng.standard_normal((3, tiny_model.embedding_size)).astype(np.float32)
    for storage in ("float16", "int8"):
        with transface.Gallery(tmp_path / f"{storage}.tfg", tiny_model, storage=storage) as g:
            for i, e in enumerate(emb):
                g.enrol(f"p{i}", e)
            hit = g.search(emb[1], k=3, threshold=0.5)[0]
            assert hit.label == "p1" and abs(hit.score - 1) < 1e-2, (storage, hit)


def test_threshold_defaults_to_the_models_stored_one(tiny_model, tmp_path):
    emb = np.random.default_rng(1).standard_normal((2, tiny_model.embedding_size)).astype(np.float32)
    with transface.Gallery(tmp_path / "a.tfg", tiny_model) as g:
        g.enrol("ann", emb[0])
        with pytest.raises(transface.NotFoundError, match="verification_threshold"):
            g.search(emb[1])
    b = transface.Builder(tiny_model.config)
    for name, value in tiny_model.state_dict().items():
        b.set_tensor(name, value)
    score = float(np.dot(emb[0], emb[1]) / np.linalg.norm(emb[0]) / np.linalg.norm(emb[1]))
    b.set_metadata("verification_threshold", repr(score - 1e-3))
    with b.build() as stored, transface.Gallery(tmp_path / "b.tfg", stored) as g:
        g.enrol("ann", emb[0])
        assert g.search(emb[1])[0].passes
        assert not g.search(emb[1], threshold=score + 1e-3)[0].passes


def test_hnsw_index_matches_exact_on_a_small_gallery(tiny_model, tmp_path):
    rng = np.random.default_rng(9)
    rows = rng.standard_normal((50, tiny_model.embedding_size)).astype(np.float32)
    path = tmp_path / "g.tfg"
    with transface.Gallery(path, tiny_model) as g:
        for i, row in enumerate(rows):
            g.enrol(f"p{i}", row)
        exact = g.search(rows[7], k=3, threshold=0.5)
    with pytest.raises(transface.InvalidArgumentError, match="index must be"):
        transface.Gallery(path, tiny_model, index="ivf")
    with pytest.raises(transface.InvalidArgumentError, match="HNSW M"):
        transface.Gallery(path, tiny_model, index="hnsw", hnsw_m=1)
    with transface.Gallery(path, tiny_model, index="hnsw", hnsw_m=8, hnsw_ef_search=32) as g:
        approx = g.search(rows[7], k=3, threshold=0.5)
    assert [(m.label, m.score) for m in approx] == [(m.label, m.score) for m in exact]
    assert (tmp_path / "g.tfg.hnsw").exists()
