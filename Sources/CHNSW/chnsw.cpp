// The C face of hnswlib (see include/chnsw.h): exceptions are caught at every entry point and
// become -1 plus a message; symbols stay hidden (-fvisibility=hidden) inside libtransface.so.
#include "chnsw.h"

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct chnsw_index {
    int dim;
    std::unique_ptr<hnswlib::InnerProductSpace> space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
};

namespace {

void set_error(char *err, size_t size, const char *what) {
    if (err && size) std::snprintf(err, size, "%s", what);
}

template <class F> int guarded(char *err, size_t size, F body) {
    try {
        body();
        return 0;
    } catch (const std::bad_alloc &) {
        set_error(err, size, "hnswlib: out of memory");
    } catch (const std::exception &e) {
        std::string m = std::string("hnswlib: ") + e.what();
        set_error(err, size, m.c_str());
    } catch (...) {
        set_error(err, size, "hnswlib: unknown error");
    }
    return -1;
}

struct Fail : std::runtime_error { using std::runtime_error::runtime_error; };

/* hnswlib's header fields in file order (saveIndex), checked before its loader trusts them. */
struct SavedHeader {
    size_t offset_level0, max_elements, count, size_per_element, label_offset, offset_data;
    int max_level;
    unsigned int enter_point;
    size_t max_m, max_m0, m;
    double mult;
    size_t ef_construction;
};

template <class T> void read_pod(std::ifstream &in, T &v) {
    in.read(reinterpret_cast<char *>(&v), sizeof v);
    if (!in) throw Fail("the graph file is truncated");
}

/* Returns the node count; hnswlib's loader is then told to size the graph for exactly that many
 * (its own max_elements field, unchecked, would size the allocations). */
size_t check_header(const char *path, int dim, int m) {
    std::ifstream in(path, std::ios::binary);
    if (!in.is_open()) throw Fail("cannot open the graph file");
    in.seekg(0, in.end);
    const auto file_size = static_cast<unsigned long long>(in.tellg());
    in.seekg(0, in.beg);
    SavedHeader h;
    read_pod(in, h.offset_level0); read_pod(in, h.max_elements); read_pod(in, h.count);
    read_pod(in, h.size_per_element); read_pod(in, h.label_offset); read_pod(in, h.offset_data);
    read_pod(in, h.max_level); read_pod(in, h.enter_point); read_pod(in, h.max_m);
    read_pod(in, h.max_m0); read_pod(in, h.m); read_pod(in, h.mult); read_pod(in, h.ef_construction);
    const size_t links0 = h.max_m0 * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
    const size_t data = static_cast<size_t>(dim) * sizeof(float);
    if (h.m != static_cast<size_t>(m) || h.max_m != h.m || h.max_m0 != 2 * h.m || h.offset_level0 != 0 ||
        h.offset_data != links0 || h.label_offset != links0 + data || h.size_per_element != links0 + data + sizeof(hnswlib::labeltype))
        throw Fail("the graph file's layout does not match the gallery (dimension, M)");
    if (h.count > (1ull << 31) || h.count * h.size_per_element > file_size || h.max_level < (h.count == 0 ? -1 : 0) || h.max_level > 64 ||
        (h.count > 0 && h.enter_point >= h.count) || !(h.mult > 0 && h.mult < 10))
        throw Fail("the graph file's header is damaged");
    // the walk hnswlib's loader makes, done first so that its own throws (which would leave the
    // half-read graph unsafe to destroy) cannot happen; link list sizes also checked
    const size_t links = h.max_m * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
    in.seekg(static_cast<std::streamoff>(h.count * h.size_per_element), in.cur);
    for (size_t i = 0; i < h.count; i++) {
        unsigned int list_bytes;
        read_pod(in, list_bytes);
        if (list_bytes % links != 0 || list_bytes / links > static_cast<size_t>(h.max_level)) throw Fail("a node of the graph file is damaged");
        in.seekg(list_bytes, in.cur);
        if (!in || static_cast<unsigned long long>(in.tellg()) > file_size) throw Fail("the graph file is truncated");
    }
    if (static_cast<unsigned long long>(in.tellg()) != file_size) throw Fail("the graph file has bytes past its nodes");
    return h.count;
}

/* Every link list of a loaded graph: sizes within M (2M on level 0), targets stored nodes that
 * reach the list's level; the entry point on the top level (what searchKnn assumes). */
void check_links(const hnswlib::HierarchicalNSW<float> &g) {
    const size_t n = g.cur_element_count;
    for (size_t i = 0; i < n; i++) {
        const int levels = g.element_levels_[i];
        if (levels > g.maxlevel_) throw Fail("a node of the graph file is above its top level");
        for (int level = 0; level <= levels; level++) {
            unsigned int *list = level == 0 ? g.get_linklist0(static_cast<hnswlib::tableint>(i))
                                                  : g.get_linklist(static_cast<hnswlib::tableint>(i), level);
            const unsigned short size = g.getListCount(list);
            if (size > (level == 0 ? g.maxM0_ : g.maxM_)) throw Fail("a link list of the graph file is too long");
            const hnswlib::tableint *targets = reinterpret_cast<const hnswlib::tableint *>(list + 1);
            for (unsigned short j = 0; j < size; j++) {
                if (targets[j] >= n) throw Fail("a link of the graph file points past its nodes");
                // a search walks level L only through nodes that have level L
                if (g.element_levels_[targets[j]] < level) throw Fail("a link of the graph file points below its level");
            }
        }
    }
    if (g.label_lookup_.size() != n) throw Fail("the graph file holds a label twice");
    if (n > 0 && g.element_levels_[g.enterpoint_node_] != g.maxlevel_) throw Fail("the graph file's entry point is not on its top level");
}

}  // namespace

extern "C" {

int chnsw_create(int dim, int m, int ef_construction, int ef_search, uint64_t seed, chnsw_index **out, char *err, size_t err_size) {
    if (!out) { set_error(err, err_size, "hnswlib: NULL output"); return -1; }
    *out = nullptr;
    return guarded(err, err_size, [&] {
        if (dim < 1 || m < 2 || m > 256 || ef_construction < 1 || ef_search < 1) throw Fail("bad dimension, M or ef");
        auto index = std::make_unique<chnsw_index>();
        index->dim = dim;
        index->space = std::make_unique<hnswlib::InnerProductSpace>(static_cast<size_t>(dim));
        index->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(index->space.get(), 1024, static_cast<size_t>(m),
                                                                         static_cast<size_t>(ef_construction), static_cast<size_t>(seed));
        index->graph->setEf(static_cast<size_t>(ef_search));
        *out = index.release();
    });
}

int chnsw_load(const char *path, int dim, int m, int ef_search, chnsw_index **out, char *err, size_t err_size) {
    if (!out || !path) { set_error(err, err_size, "hnswlib: NULL argument"); return -1; }
    *out = nullptr;
    return guarded(err, err_size, [&] {
        if (dim < 1 || m < 2 || m > 256 || ef_search < 1) throw Fail("bad dimension, M or ef");
        const size_t count = check_header(path, dim, m);
        auto index = std::make_unique<chnsw_index>();
        index->dim = dim;
        index->space = std::make_unique<hnswlib::InnerProductSpace>(static_cast<size_t>(dim));
        index->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(index->space.get());
        try {
            index->graph->loadIndex(path, index->space.get(), std::max<size_t>(count, 1));
        } catch (...) {
            index->graph.release();  // a half-loaded graph must not be destroyed (its destructor frees unset pointers): leaked
            throw;
        }
        check_links(*index->graph);
        index->graph->setEf(static_cast<size_t>(ef_search));
        *out = index.release();
    });
}

int chnsw_save(const chnsw_index *index, const char *path, char *err, size_t err_size) {
    if (!index || !path) { set_error(err, err_size, "hnswlib: NULL argument"); return -1; }
    return guarded(err, err_size, [&] {
        index->graph->saveIndex(path);
        std::ifstream check(path, std::ios::binary);
        if (!check.is_open()) throw Fail("cannot write the graph file");
    });
}

int chnsw_add(chnsw_index *index, const float *rows, const uint64_t *labels, size_t n, int threads, char *err, size_t err_size) {
    if (!index || (n && (!rows || !labels))) { set_error(err, err_size, "hnswlib: NULL argument"); return -1; }
    return guarded(err, err_size, [&] {
        auto &g = *index->graph;
        const size_t needed = g.cur_element_count + n;
        if (needed > g.max_elements_) g.resizeIndex(std::max(needed, g.max_elements_ * 2));
        std::atomic<size_t> next{0};
        std::mutex failed_lock;
        std::string failed;
        auto work = [&] {
            try {
                for (size_t i; (i = next.fetch_add(1)) < n;) g.addPoint(rows + i * static_cast<size_t>(index->dim), static_cast<size_t>(labels[i]));
            } catch (const std::exception &e) {
                std::lock_guard<std::mutex> hold(failed_lock);
                failed = e.what();
                next = n;
            } catch (...) {
                std::lock_guard<std::mutex> hold(failed_lock);
                failed = "unknown error";
                next = n;
            }
        };
        const int workers = std::max(1, std::min(threads, 256));
        std::vector<std::thread> pool;
        for (int t = 1; t < workers && static_cast<size_t>(t) < n; t++) pool.emplace_back(work);
        work();
        for (auto &t : pool) t.join();
        if (!failed.empty()) throw Fail(failed);
    });
}

int chnsw_mark_deleted(chnsw_index *index, const uint64_t *labels, size_t n, char *err, size_t err_size) {
    if (!index || (n && !labels)) { set_error(err, err_size, "hnswlib: NULL argument"); return -1; }
    return guarded(err, err_size, [&] {
        for (size_t i = 0; i < n; i++) index->graph->markDelete(static_cast<size_t>(labels[i]));
    });
}

int chnsw_search(const chnsw_index *index, const float *query, size_t k, uint64_t *out_labels, size_t *out_count, char *err, size_t err_size) {
    if (!index || !query || !out_labels || !out_count) { set_error(err, err_size, "hnswlib: NULL argument"); return -1; }
    *out_count = 0;
    return guarded(err, err_size, [&] {
        auto found = index->graph->searchKnn(query, k);
        size_t count = found.size();
        for (size_t i = count; i-- > 0;) {  // the queue pops the farthest first
            out_labels[i] = found.top().second;
            found.pop();
        }
        *out_count = count;
    });
}

int chnsw_live_labels(const chnsw_index *index, uint64_t *out, size_t capacity, size_t *out_count) {
    if (!index || !out_count || (capacity && !out)) return -1;
    const auto &g = *index->graph;
    size_t count = 0;
    for (size_t i = 0; i < g.cur_element_count; i++) {
        if (g.isMarkedDeleted(static_cast<hnswlib::tableint>(i))) continue;
        if (count < capacity) out[count] = g.getExternalLabel(static_cast<hnswlib::tableint>(i));
        count++;
    }
    *out_count = count;
    return 0;
}

size_t chnsw_node_count(const chnsw_index *index) { return index ? index->graph->cur_element_count : 0; }

void chnsw_free(chnsw_index *index) { delete index; }

}  // extern "C"
