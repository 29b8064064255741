"""The 1:N gallery (a crash-safe file of enrolled embeddings, exact search) over the C ABI."""

import dataclasses
from ctypes import byref, c_char_p, c_size_t, c_uint64, c_void_p

import numpy as np

from . import _lib as L
from ._api import Model, _fptr, _Handle
from ._lib import InvalidArgumentError, check


@dataclasses.dataclass
class Match:
    """One search result: the identity, its best embedding's cosine to the query, whether that
    passes the threshold given, and the embedding's id."""
    label: str
    score: float
    passes: bool
    entry_id: int


def _matrix(embeddings, dim, what):
    x = np.ascontiguousarray(np.asarray(embeddings, dtype=np.float32))
    if x.ndim == 1:
        x = x[np.newaxis]
    if x.ndim != 2 or x.shape[1] != dim or x.shape[0] < 1:
        raise InvalidArgumentError(f"{what} must have shape [N, {dim}] or [{dim}], got {list(np.shape(embeddings))}")
    return x


class Gallery(_Handle):
    """A persistent gallery file for the embeddings of `model` (created when absent; a gallery of
    another model is refused). model=None opens an existing gallery read-only to list it.
    storage "float32" (default), "float16" or "int8" (a quarter of the memory) for a new gallery;
    index "exact" (default) or "hnsw" (approximate, with hnsw_m / hnsw_ef_construction / hnsw_ef_search). Any number of threads may search
    at once; enrol and remove run alone; one writer process at a time."""
    _free_name = "transface_gallery_close"

    def __init__(self, path, model=None, storage="float32", read_only=False, search_threads=1,
                 index="exact", hnsw_m=None, hnsw_ef_construction=None, hnsw_ef_search=None, hnsw_seed=None):
        super().__init__()
        if model is not None and not isinstance(model, Model):
            raise InvalidArgumentError(f"model must be a transface.Model or None, got {type(model).__name__}")
        if storage not in L.TRANSFACE_GALLERY_STORAGE:
            raise InvalidArgumentError(f"storage must be one of {', '.join(L.TRANSFACE_GALLERY_STORAGE)}, got {storage!r}")
        p = L.default_params("gallery")
        p.storage = L.TRANSFACE_GALLERY_STORAGE[storage]
        p.read_only = 1 if read_only or model is None else 0
        p.search_threads = int(search_threads)
        # index "hnsw": an approximate HNSW graph beside the file (candidates re-scored exactly);
        # the hnsw_* values left None keep the library's defaults (M 16, ef 200 / 64, seed 100)
        if index not in L.TRANSFACE_GALLERY_INDEX:
            raise InvalidArgumentError(f"index must be one of {', '.join(L.TRANSFACE_GALLERY_INDEX)}, got {index!r}")
        p.index = L.TRANSFACE_GALLERY_INDEX[index]
        for name, value in (("hnsw_m", hnsw_m), ("hnsw_ef_construction", hnsw_ef_construction),
                            ("hnsw_ef_search", hnsw_ef_search), ("hnsw_seed", hnsw_seed)):
            if value is not None:
                setattr(p, name, int(value))
        h = c_void_p()
        check(L.lib().transface_gallery_open(L.encode_path(path), model._handle() if model else None, byref(p), byref(h)))
        self._set_handle(h.value)
        self.dim = model.embedding_size if model is not None else None

    def close(self):
        """Closes the gallery (what was enrolled is already on disk)."""
        super().close()

    def __len__(self):
        return int(L.lib().transface_gallery_count(self._handle()))

    def identities(self):
        """{label: number of embeddings}, sorted by label."""
        lib, h = L.lib(), self._handle()
        out = {}
        for i in range(lib.transface_gallery_identity_count(h)):
            label, n = c_char_p(), c_size_t()
            check(lib.transface_gallery_identity(h, i, byref(label), byref(n)))
            out[label.value.decode("utf-8")] = n.value
        return out

    def _dim(self):
        if self.dim is None:
            raise InvalidArgumentError("this gallery was opened without a model (read-only, for listing)")
        return self.dim

    def enrol(self, label, embeddings, metadata=None):
        """Enrols one embedding [E] or several [N, E] under label; returns their entry ids.
        Durable when it returns."""
        x = _matrix(embeddings, self._dim(), "embeddings")
        pairs = [L.encode(s, "metadata") for kv in (metadata or {}).items() for s in kv]
        meta = (c_char_p * max(len(pairs), 1))(*pairs)
        ids = (c_uint64 * x.shape[0])()
        check(L.lib().transface_gallery_enrol(self._handle(), L.encode(label, "label"), _fptr(x), x.shape[0], x.shape[1],
                                              meta, len(pairs) // 2, ids))
        return list(ids)

    def remove(self, label):
        """Removes every embedding of label; returns how many (NotFoundError when none)."""
        n = c_size_t()
        check(L.lib().transface_gallery_remove(self._handle(), L.encode(label, "label"), byref(n)))
        return n.value

    def search(self, queries, k=5, threshold=None):
        """For one query [E] a list of up to k Matches (best first, one per identity); for [N, E]
        a list of such lists. threshold None: the one stored in the model
        (`transface eval --set-threshold-far`; NotFoundError when it stores none)."""
        single = np.ndim(queries) == 1
        x = _matrix(queries, self._dim(), "queries")
        n = x.shape[0]
        out = (L.transface_match * (n * int(k)))()
        out[0].struct_size = L.ctypes.sizeof(L.transface_match)
        found = (c_size_t * n)()
        check(L.lib().transface_gallery_search(self._handle(), _fptr(x), n, x.shape[1], int(k), float("nan") if threshold is None else float(threshold), out,
                                               len(out), found))
        results = [[Match(out[q * k + j].label.decode("utf-8"), float(out[q * k + j].score), bool(out[q * k + j].passes),
                          int(out[q * k + j].entry_id)) for j in range(found[q])] for q in range(n)]
        return results[0] if single else results
