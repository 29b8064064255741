/* Handles that cannot be confused: every handle type passed where another is expected, a freed
 * handle used again or freed twice, and a pointer that is no handle at all give
 * TRANSFACE_INVALID_ARGUMENT with a message naming both types (or saying it was freed), never a
 * crash; the *_free functions leave a wrong handle alone and the objects stay usable.
 * Usage: test_handles MODEL.tfm */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define SAYS(text) CHECK(strstr(transface_last_error(), text) != NULL, "message lacks '%s': %s", text, transface_last_error())

static const char *TRAIN_CONFIG =
    "{\"arch\": \"custom\", \"model\": {\"img_size\": 36, \"embed_dim\": 32, \"depth\": 1, \"num_heads\": 4,"
    " \"mlp_hidden_dim\": 64}, \"embedding_size\": 16, \"num_classes\": 5, \"batch_size\": 2, \"seed\": 4}";

int main(int argc, char **argv) {
    transface_model *m = NULL, *freed = NULL;
    transface_context *ctx = NULL;
    transface_trainer *t = NULL;
    transface_builder *b = NULL;
    transface_config c;
    static uint8_t image[112 * 112 * 3];
    float e[512];
    uint64_t garbage[8] = {0x1234, 0, 0, 0, 0, 0, 0, 0};
    size_t n = 0;

    if (argc < 2 || transface_model_load(argv[1], NULL, &m) != TRANSFACE_OK) {
        fprintf(stderr, "usage: test_handles MODEL.tfm (%s)\n", transface_last_error());
        return 2;
    }
    OK(transface_context_create(m, NULL, &ctx));
    OK(transface_trainer_create(TRAIN_CONFIG, NULL, &t));
    c.struct_size = sizeof c;
    OK(transface_model_get_config(m, &c));
    OK(transface_builder_create(&c, &b));

    /* another type where a model is expected, and the reverse */
    {
        transface_context *other = NULL;
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_context_create((transface_model *)ctx, NULL, &other));
        SAYS("expected a transface_model, got a transface_context");
        CHECK(other == NULL, "no context from a context");
    }
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_embed((transface_context *)m, image, 1, 112, 112, 0, e, 512));
    SAYS("expected a transface_context, got a transface_model");
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_save_checkpoint((transface_trainer *)b, "/tmp/never.ckpt"));
    SAYS("expected a transface_trainer, got a transface_builder");
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_builder_init_weights((transface_builder *)t, 1));
    SAYS("expected a transface_builder, got a transface_trainer");
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_bin_issame((transface_bin *)m, NULL, 0));
    SAYS("expected a transface_bin, got a transface_model");
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_recordio_read((transface_recordio *)ctx, 0, NULL, NULL, 0, &n));
    SAYS("expected a transface_recordio, got a transface_context");
    CHECK(transface_model_tensor_count((transface_model *)ctx) == 0, "tensor_count of a context");
    CHECK(transface_recordio_count((transface_recordio *)m) == 0, "recordio_count of a model");

    /* not a handle */
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_model_get_config((transface_model *)garbage, &c));
    SAYS("is not a libtransface handle");

    /* a free of the wrong type leaves the object alone */
    transface_model_free((transface_model *)ctx);
    SAYS("expected a transface_model, got a transface_context");
    transface_context_free((transface_context *)m);
    OK(transface_embed(ctx, image, 1, 112, 112, 0, e, 512));
    CHECK(transface_model_embedding_size(m) == c.embedding_size, "model still usable");

    /* use after free and double free of a recently freed handle */
    OK(transface_model_load(argv[1], NULL, &freed));
    transface_model_free(freed);
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_model_get_config(freed, &c));
    SAYS("got a transface_model that was already freed");
    transface_model_free(freed);
    SAYS("already freed");
    transface_context_free(ctx);
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, image, 1, 112, 112, 0, e, 512));
    SAYS("transface_context that was already freed");
    transface_trainer_free(t);
    transface_trainer_free(t);
    SAYS("transface_trainer that was already freed");
    transface_builder_free(b);

    /* NULL is still "NULL" */
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_model_get_config(NULL, &c));
    SAYS("NULL");
    transface_model_free(NULL);

    transface_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
