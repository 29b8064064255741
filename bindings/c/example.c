/* Embed faces with libtransface and compare the first two.
 * usage: example MODEL.tfm [FACES.rgb]   (FACES.rgb: N aligned faces, height x width x 3 bytes each) */
#include <stdio.h>
#include <stdlib.h>
#include "transface.h"

/* On failure print the library's message (it names the function and the problem) and clean up. */
#define CHECK(call) do { if ((call) != TRANSFACE_OK) { \
    fprintf(stderr, "error: %s\n", transface_last_error()); goto done; } } while (0)

int main(int argc, char **argv) {
    transface_model *model = NULL;
    transface_context *ctx = NULL;
    transface_preprocess pre = { .struct_size = sizeof pre };
    FILE *f = NULL;
    uint8_t *images = NULL;
    float *emb = NULL, cosine;
    size_t n = 2, size, e, i;
    int rc = 1;
    if (argc < 2) { fprintf(stderr, "usage: %s MODEL.tfm [FACES.rgb]\n", argv[0]); return 2; }

    CHECK(transface_model_load(argv[1], NULL, &model));
    CHECK(transface_model_get_preprocess(model, &pre));
    CHECK(transface_context_create(model, NULL, &ctx));   /* NULL: default params */
    size = (size_t)pre.input_width * pre.input_height * 3;
    e = (size_t)transface_model_embedding_size(model);

    if (argc > 2) {   /* N faces from a raw file, else two synthetic images */
        if (!(f = fopen(argv[2], "rb"))) { perror(argv[2]); goto done; }
        fseek(f, 0, SEEK_END);
        n = (size_t)ftell(f) / size;
        rewind(f);
    }
    images = malloc(n * size);
    emb = malloc(n * e * sizeof *emb);
    if (!images || !emb || n < 2 || (f && fread(images, size, n, f) != n)) {
        fprintf(stderr, "need 2 or more faces of %zu bytes\n", size);
        goto done;
    }
    for (i = 0; !f && i < n * size; i++) images[i] = (uint8_t)(i * 7 + (i / size) * (i % 13));

    CHECK(transface_embed(ctx, images, n, pre.input_width, pre.input_height, 0, emb, n * e));
    CHECK(transface_compare(emb, emb + e, e, &cosine));
    printf("%zu embeddings of size %zu; cosine(face 0, face 1) = %.6f\n", n, e, cosine);
    rc = 0;
done:
    if (f) fclose(f);
    free(images);
    free(emb);
    transface_context_free(ctx);
    transface_model_free(model);
    return rc;
}
