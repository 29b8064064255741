/* Struct evolution of transface_context_params (the first struct that grew: precision, 0.2):
 * a caller compiled against the first released header (12 bytes) still creates contexts and gets
 * the float32 embeddings; the library reads no byte past struct_size (the struct is placed at the
 * end of a page followed by an inaccessible page); sizes below the first release and unknown
 * non-zero tail bytes are refused with a message naming the struct; precision is checked, and
 * bf16 either runs (cosine >= 0.9995 to float32) or is refused naming the instructions it needs.
 * Usage: test_params MODEL.tfm (test_parity --save writes the reference tiny model). */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

/* transface_context_params as released in 0.1 (struct_size 12). */
typedef struct {
    uint32_t struct_size;
    int32_t num_threads;
    int32_t max_batch;
} context_params_v1;

enum { N = 3, IMG = 112 };
static uint8_t images[N * IMG * IMG * 3];

static int embed(transface_model *m, const transface_context_params *p, float *out, size_t e) {
    transface_context *ctx = NULL;
    transface_status s = transface_context_create(m, p, &ctx);
    if (s != TRANSFACE_OK) return (int)s;
    s = transface_embed(ctx, images, N, IMG, IMG, TRANSFACE_EMBED_FLIP, out, N * e);
    transface_context_free(ctx);
    return (int)s;
}

int main(int argc, char **argv) {
    transface_model *m = NULL;
    if (argc < 2 || transface_model_load(argv[1], NULL, &m) != TRANSFACE_OK) {
        fprintf(stderr, "usage: test_params MODEL.tfm (%s)\n", transface_last_error());
        return 2;
    }
    for (size_t i = 0; i < sizeof images; i++) images[i] = (uint8_t)((i * 2654435761u) >> 24);
    transface_config cfg;
    cfg.struct_size = sizeof cfg;
    OK(transface_model_get_config(m, &cfg));
    size_t e = (size_t)cfg.embedding_size;
    float ref[N * 512], out[N * 512];
    CHECK(e <= 512, "embedding size %zu", e);

    /* Today's struct with defaults. */
    transface_context_params now = transface_context_default_params();
    CHECK(now.struct_size == sizeof now && sizeof now == 16 && now.precision == TRANSFACE_PRECISION_FP32,
          "default params: size %u, precision %d", now.struct_size, (int)now.precision);
    OK(embed(m, &now, ref, e));

    /* A 0.1 caller's struct, at the end of a page followed by an inaccessible page. */
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *pages = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(pages != MAP_FAILED && mprotect(pages + page, (size_t)page, PROT_NONE) == 0, "guard page");
    context_params_v1 *v1 = (context_params_v1 *)(pages + page - sizeof *v1);
    v1->struct_size = sizeof *v1;
    v1->num_threads = 1;
    v1->max_batch = 8;
    EXPECT(TRANSFACE_OK, embed(m, (const transface_context_params *)v1, out, e));
    CHECK(memcmp(out, ref, N * e * sizeof(float)) == 0, "a 0.1 struct gives today's float32 embeddings bit for bit");
    v1->struct_size = 8;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, embed(m, (const transface_context_params *)v1, out, e));
    CHECK(strstr(transface_last_error(), "context_params") && strstr(transface_last_error(), "12"),
          "message names the struct and its first size: %s", transface_last_error());

    /* A newer caller's larger struct: zero tail accepted, a set unknown byte refused. */
    struct { transface_context_params p; uint8_t future[8]; } newer;
    memset(&newer, 0, sizeof newer);
    newer.p = transface_context_default_params();
    newer.p.struct_size = sizeof newer;
    EXPECT(TRANSFACE_OK, embed(m, &newer.p, out, e));
    newer.future[5] = 1;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, embed(m, &newer.p, out, e));
    CHECK(strstr(transface_last_error(), "context_params") != NULL, "message: %s", transface_last_error());

    /* precision */
    transface_context_params p = transface_context_default_params();
    p.precision = (transface_precision)7;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, embed(m, &p, out, e));
    p.precision = TRANSFACE_PRECISION_BF16;
    int s = embed(m, &p, out, e);
    if (s == TRANSFACE_OK) {
        double worst = 1;
        for (int i = 0; i < N; i++) {
            double dot = 0;
            for (size_t j = 0; j < e; j++) dot += (double)ref[i * e + j] * out[i * e + j];
            if (dot < worst) worst = dot;
        }
        printf("bf16 context: worst cosine to float32 %.7f\n", worst);
        CHECK(worst >= 0.9995, "bf16 cosine %.7f", worst);
    } else {
        CHECK(s == TRANSFACE_INVALID_ARGUMENT && strstr(transface_last_error(), "AVX512_BF16"),
              "bf16 refused with status %d: %s", s, transface_last_error());
        printf("bf16 refused on this CPU: %s\n", transface_last_error());
    }
    munmap(pages, 2 * (size_t)page);
    transface_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
