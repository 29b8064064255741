/* transface_context_params.precision: an unknown value is refused; bf16 either runs (cosine >=
 * 0.9995 to float32) or is refused naming the instructions it needs. (The struct's evolution is
 * checked by test_struct_evolution.c.) Usage: test_precision MODEL.tfm. */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

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
        fprintf(stderr, "usage: test_precision MODEL.tfm (%s)\n", transface_last_error());
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
    transface_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
