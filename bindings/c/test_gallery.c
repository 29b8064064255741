/* The 1:N gallery through the C ABI: enrol, list, search (top-k, one match per identity, the
 * threshold flag), remove, persistence across close/open, the model guard, read-only opens, one
 * writer at a time, and argument errors. Usage: test_gallery MODEL.tfm */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define SAYS(text) CHECK(strstr(transface_last_error(), text) != NULL, "message lacks '%s': %s", text, transface_last_error())
enum { IDS = 3, PER = 2 };

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float gauss(void) {
    double u = 0;
    for (int i = 0; i < 12; i++) {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        u += (double)(rng >> 11) / 9007199254740992.0;
    }
    return (float)(u - 6);
}

int main(int argc, char **argv) {
    transface_model *m = NULL, *other = NULL;
    transface_gallery *g = NULL, *again = NULL;
    transface_config c;
    char dir[] = "/tmp/transface-c-gallery-XXXXXX", path[4200], cmd[4300];
    const char *labels[IDS] = {"ann", "bo", "cy"};
    static float emb[IDS][PER * 512], query[2 * 512];
    transface_match matches[2 * 4];
    size_t found[2], e, n = 0;
    uint64_t ids[PER];
    if (argc < 2 || transface_model_load(argv[1], NULL, &m) != TRANSFACE_OK || !mkdtemp(dir)) {
        fprintf(stderr, "usage: test_gallery MODEL.tfm (%s)\n", transface_last_error());
        return 2;
    }
    snprintf(path, sizeof path, "%s/people.tfg", dir);
    c.struct_size = sizeof c;
    OK(transface_model_get_config(m, &c));
    e = (size_t)c.embedding_size;
    for (int i = 0; i < IDS; i++)
        for (int j = 0; j < PER; j++)
            for (size_t d = 0; d < e; d++) emb[i][(size_t)j * e + d] = gauss();

    transface_gallery_params p;
    OK(transface_gallery_params_init(&p, sizeof p));
    CHECK(p.storage == TRANSFACE_GALLERY_FLOAT32 && p.read_only == 0 && p.search_threads == 1, "default params");
    OK(transface_gallery_open(path, m, &p, &g));
    const char *meta[2] = {"dept", "x"};
    for (int i = 0; i < IDS; i++) OK(transface_gallery_enrol(g, labels[i], emb[i], PER, e, meta, 1, ids));
    CHECK(ids[1] == ids[0] + 1, "entry ids %llu %llu", (unsigned long long)ids[0], (unsigned long long)ids[1]);
    CHECK(transface_gallery_count(g) == IDS * PER && transface_gallery_identity_count(g) == IDS, "counts");
    for (size_t i = 0; i < IDS; i++) {
        const char *label = NULL;
        OK(transface_gallery_identity(g, i, &label, &n));
        CHECK(label && strcmp(label, labels[i]) == 0 && n == PER, "identity %zu: %s, %zu", i, label ? label : "(null)", n);
    }

    /* queries: a noisy copy of bo's first embedding, and of cy's second */
    for (size_t d = 0; d < e; d++) {
        query[d] = emb[1][d] + 0.3f * gauss();
        query[e + d] = emb[2][e + d] + 0.3f * gauss();
    }
    matches[0].struct_size = sizeof matches[0];
    OK(transface_gallery_search(g, query, 2, e, 4, 0.5f, matches, 8, found));
    CHECK(found[0] == IDS && found[1] == IDS, "found %zu %zu (k 4 over %d identities)", found[0], found[1], IDS);
    if (found[0] != IDS || found[1] != IDS) goto done;
    CHECK(strcmp(matches[0].label, "bo") == 0 && matches[0].passes && matches[0].score > 0.9f, "query 0 top-1 %s %.3f",
          matches[0].label, matches[0].score);
    CHECK(strcmp(matches[4].label, "cy") == 0 && matches[4].passes, "query 1 top-1 %s", matches[4].label);
    CHECK(matches[1].score <= matches[0].score && !matches[1].passes && fabsf(matches[1].score) < 0.5f, "second match");
    CHECK(strcmp(matches[0].label, matches[1].label) != 0 && strcmp(matches[1].label, matches[2].label) != 0,
          "one match per identity");

    /* a second writer is refused; a read-only open without a model lists it */
    EXPECT(TRANSFACE_IO, transface_gallery_open(path, m, NULL, &again));
    SAYS("open for writing");
    OK(transface_gallery_remove(g, "bo", &n));
    CHECK(n == PER, "removed %zu", n);
    EXPECT(TRANSFACE_NOT_FOUND, transface_gallery_remove(g, "bo", &n));
    transface_gallery_close(g);
    g = NULL;
    p.read_only = 1;
    OK(transface_gallery_open(path, NULL, &p, &again));
    CHECK(transface_gallery_count(again) == (IDS - 1) * PER && transface_gallery_identity_count(again) == IDS - 1,
          "persisted: %zu embeddings", transface_gallery_count(again));
    EXPECT(TRANSFACE_MISUSE, transface_gallery_enrol(again, "dee", emb[0], 1, e, NULL, 0, NULL));
    transface_gallery_close(again);

    /* another model's embeddings are refused */
    {
        transface_builder *b = NULL;
        OK(transface_builder_create(&c, &b));
        OK(transface_builder_init_weights(b, 99));
        OK(transface_builder_build(b, &other));
        transface_builder_free(b);
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_gallery_open(path, other, NULL, &again));
        CHECK(again == NULL, "no gallery for another model");
    }

    /* argument errors */
    OK(transface_gallery_open(path, m, NULL, &g));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_gallery_enrol(g, "x", emb[0], 1, e + 1, NULL, 0, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_gallery_enrol(g, "", emb[0], 1, e, NULL, 0, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_gallery_enrol(g, "x", NULL, 1, e, NULL, 0, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_gallery_search(g, query, 2, e, 4, 0.5f, matches, 7, found));
    SAYS("capacity");
    matches[0].struct_size = 8;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_gallery_search(g, query, 1, e, 1, 0.5f, matches, 1, found));
    SAYS("transface_match");
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_gallery_search((transface_gallery *)m, query, 1, e, 1, 0.5f, matches, 1, found));
    SAYS("expected a transface_gallery, got a transface_model");
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_gallery_open(path, NULL, NULL, &again));
    matches[0].struct_size = sizeof matches[0];
    EXPECT(TRANSFACE_NOT_FOUND, transface_gallery_search(g, query, 1, e, 1, NAN, matches, 1, found));
    SAYS("verification_threshold");

    /* the HNSW index: the same answer on this small gallery, its score the exact one */
    {
        transface_match exact[2], approx[2];
        size_t fe = 0, fa = 0;
        exact[0].struct_size = approx[0].struct_size = sizeof exact[0];
        char top[64] = "";
        OK(transface_gallery_search(g, query + e, 1, e, 2, 0.5f, exact, 2, &fe));
        if (fe) snprintf(top, sizeof top, "%s", exact[0].label); /* labels live until close */
        transface_gallery_close(g);
        g = NULL;
        OK(transface_gallery_params_init(&p, sizeof p));
        CHECK(p.index == TRANSFACE_GALLERY_EXACT && p.hnsw_m == 16 && p.hnsw_ef_construction == 200 && p.hnsw_ef_search == 64,
              "default index params");
        p.index = TRANSFACE_GALLERY_HNSW;
        p.hnsw_m = 1;
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_gallery_open(path, m, &p, &g));
        SAYS("HNSW M");
        p.hnsw_m = 8;
        p.index = 7;
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_gallery_open(path, m, &p, &g));
        SAYS("transface_gallery_index");
        p.index = TRANSFACE_GALLERY_HNSW;
        OK(transface_gallery_open(path, m, &p, &g));
        OK(transface_gallery_search(g, query + e, 1, e, 2, 0.5f, approx, 2, &fa));
        CHECK(fa == fe && fa > 0 && strcmp(approx[0].label, top) == 0 && approx[0].score == exact[0].score,
              "HNSW search: %zu matches (exact %zu), top-1 %s %.9g (exact %s %.9g)", fa, fe, fa ? approx[0].label : "-",
              fa ? approx[0].score : 0.0f, top, fe ? exact[0].score : 0.0f);
        snprintf(cmd, sizeof cmd, "%s.hnsw", path);
        CHECK(access(cmd, F_OK) == 0, "graph file beside the gallery");
    }

done:
    transface_gallery_close(g);
    transface_model_free(other);
    transface_model_free(m);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
