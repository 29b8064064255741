#ifndef CHNSW_H
#define CHNSW_H
/* A C face over hnswlib's HierarchicalNSW (Debian libhnswlib-dev 0.6.2, header-only, Apache-2.0)
   on inner-product distance (1 - dot) over float32 rows, for the gallery's approximate index.
   Labels are the gallery's entry ids. Every call returns 0 on success or -1 with a message in
   err (err_size bytes, NUL-terminated); no C++ exception leaves this layer. Searches may run
   concurrently with each other; adds, deletes, save and free need the caller's exclusive lock. */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct chnsw_index chnsw_index;

/* A new empty graph: rows of `dim` floats, `m` links per node (2m on the base layer), build
   beam `ef_construction`, search beam `ef_search`, level draws from `seed`. */
int chnsw_create(int dim, int m, int ef_construction, int ef_search, uint64_t seed, chnsw_index **out, char *err, size_t err_size);
/* A graph saved by chnsw_save at `path`; refused unless its header matches `dim` and `m` and every
   link points at a stored node (so a damaged file cannot make a search read out of bounds). */
int chnsw_load(const char *path, int dim, int m, int ef_search, chnsw_index **out, char *err, size_t err_size);
/* Writes the graph to `path` (hnswlib's own format; the caller syncs and renames it). */
int chnsw_save(const chnsw_index *index, const char *path, char *err, size_t err_size);
/* Adds `n` rows (n x dim floats, unit norm) under `labels` (new ones), on `threads` threads. */
int chnsw_add(chnsw_index *index, const float *rows, const uint64_t *labels, size_t n, int threads, char *err, size_t err_size);
/* Marks these labels deleted (kept as waypoints, never returned); an unknown label is an error. */
int chnsw_mark_deleted(chnsw_index *index, const uint64_t *labels, size_t n, char *err, size_t err_size);
/* Up to `k` live labels nearest to `query` (best first); *out_count says how many. */
int chnsw_search(const chnsw_index *index, const float *query, size_t k, uint64_t *out_labels, size_t *out_count, char *err, size_t err_size);
/* Live (not deleted) labels: writes up to `capacity`, *out_count = how many there are. */
int chnsw_live_labels(const chnsw_index *index, uint64_t *out, size_t capacity, size_t *out_count);
/* Nodes stored (live and deleted). */
size_t chnsw_node_count(const chnsw_index *index);
void chnsw_free(chnsw_index *index);

#ifdef __cplusplus
}
#endif
#endif
