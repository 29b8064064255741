/* Training through the C ABI: steps, checkpoint and exact resume, export, and error paths.
 * Prints "N passed, M failed"; exits non-zero on any failure. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "transface.h"

#include "check.h"

static const char *CONFIG =
    "{\"arch\": \"custom\", \"model\": {\"img_size\": 36, \"embed_dim\": 32, \"depth\": 2, \"num_heads\": 4,"
    " \"mlp_hidden_dim\": 64}, \"embedding_size\": 16, \"mask_ratio\": 0.25, \"drop_path_rate\": 0.1,"
    " \"num_classes\": 5, \"batch_size\": 4, \"dpap\": {\"probability\": 0.5}, \"seed\": 4}";

enum { B = 4, SIDE = 36, IMAGE = SIDE * SIDE * 3 };

static void batch(int k, uint8_t *images, int32_t *labels) {
    int i;
    for (i = 0; i < B; i++) labels[i] = (k + i) % 5;
    for (i = 0; i < B * IMAGE; i++) images[i] = (uint8_t)((i * 13 + labels[i / IMAGE] * 71 + k * 7) % 251);
}

static int equal_tensors(transface_trainer *a, transface_trainer *b, const char *name) {
    size_t n = 0, m = 0;
    float *x, *y;
    int same;
    if (transface_trainer_tensor_size(a, name, &n) != TRANSFACE_OK || transface_trainer_tensor_size(b, name, &m) != TRANSFACE_OK || n != m) return 0;
    x = malloc(n * sizeof *x);
    y = malloc(n * sizeof *y);
    same = x && y && transface_trainer_read_tensor(a, name, x, n) == TRANSFACE_OK &&
           transface_trainer_read_tensor(b, name, y, n) == TRANSFACE_OK && memcmp(x, y, n * sizeof *x) == 0;
    free(x);
    free(y);
    return same;
}

int main(void) {
    static uint8_t images[B * IMAGE];
    int32_t labels[B];
    transface_trainer *straight = NULL, *first = NULL, *resumed = NULL, *t = NULL;
    transface_step_result r;
    transface_model *model = NULL;
    char dir[] = "/tmp/transface-c-train-XXXXXX", ckpt[256], path[256];
    const char *names[] = {"blocks.0.attn.qkv.weight", "partial_fc.weight", "optimizer.exp_avg.senet.0.weight",
                           "feature.1.running_mean", "mask_token"};
    float one;
    size_t n;
    int k, i;

    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    snprintf(ckpt, sizeof ckpt, "%s/run.tfc", dir);
    snprintf(path, sizeof path, "%s/model.tfm", dir);
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;

    EXPECT(TRANSFACE_OK, transface_trainer_create(CONFIG, NULL, &straight));
    EXPECT(TRANSFACE_OK, transface_trainer_create(CONFIG, NULL, &first));
    for (k = 0; k < 4; k++) {
        batch(k, images, labels);
        EXPECT(TRANSFACE_OK, transface_trainer_step(straight, images, labels, B, SIDE, SIDE, &r));
        CHECK(isfinite(r.loss) && r.optimizer_stepped == 1 && r.step == (uint64_t)k + 1, "step %d: loss %g step %llu", k,
              r.loss, (unsigned long long)r.step);
        if (k < 2) EXPECT(TRANSFACE_OK, transface_trainer_step(first, images, labels, B, SIDE, SIDE, NULL));
    }
    EXPECT(TRANSFACE_OK, transface_trainer_save_checkpoint(first, ckpt));
    EXPECT(TRANSFACE_OK, transface_trainer_resume(ckpt, 0, &resumed));
    for (k = 2; k < 4; k++) {
        batch(k, images, labels);
        EXPECT(TRANSFACE_OK, transface_trainer_step(resumed, images, labels, B, SIDE, SIDE, NULL));
    }
    for (i = 0; i < 5; i++) CHECK(equal_tensors(straight, resumed, names[i]), "resumed %s differs", names[i]);

    EXPECT(TRANSFACE_OK, transface_trainer_export_model(straight, path));
    EXPECT(TRANSFACE_OK, transface_model_load(path, NULL, &model));
    CHECK(transface_model_embedding_size(model) == 16, "exported embedding size");

    /* Error paths: each fails with a status and a message, and changes nothing. */
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_create(NULL, NULL, &t));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_create(CONFIG, NULL, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_create("{\"num_classes\": 3, \"lr\": 1}", NULL, &t));
    CHECK(strstr(transface_last_error(), "unknown key 'lr'") != NULL, "message: %s", transface_last_error());
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_create("{not json", NULL, &t));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_create("{\"arch\": \"vit_t\", \"num_classes\": 3}", model, &t));
    CHECK(t == NULL, "no trainer on failure");
    batch(0, images, labels);
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_step(NULL, images, labels, B, SIDE, SIDE, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_step(straight, NULL, labels, B, SIDE, SIDE, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_step(straight, images, NULL, B, SIDE, SIDE, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_step(straight, images, labels, B - 1, SIDE, SIDE, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_step(straight, images, labels, B, 112, 112, NULL));
    labels[2] = 5;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_step(straight, images, labels, B, SIDE, SIDE, NULL));
    labels[2] = 0;
    r.struct_size = 0;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_step(straight, images, labels, B, SIDE, SIDE, &r));
    EXPECT(TRANSFACE_NOT_FOUND, transface_trainer_tensor_size(straight, "blocks.7.norm1.weight", &n));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_read_tensor(straight, "norm.weight", &one, 1));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_tensor_size(straight, NULL, &n));
    EXPECT(TRANSFACE_IO, transface_trainer_resume("/nonexistent/run.tfc", 0, &t));
    EXPECT(TRANSFACE_FORMAT, transface_trainer_resume(path, 0, &t));  /* a model file is not a checkpoint */
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_resume(ckpt, -1, &t));
    EXPECT(TRANSFACE_IO, transface_trainer_save_checkpoint(straight, "/nonexistent/dir/run.tfc"));
    {   /* set_tensor: a written tensor reads back; NULLs, a wrong count, a non-finite value and an
         * unknown name are refused and change nothing; import_official refuses NULLs and bad files */
        float w[32], got[32], nan_w[32];
        const char *paths[1] = {path};
        int i;
        for (i = 0; i < 32; i++) { w[i] = 0.5f + (float)i; nan_w[i] = 1.0f; }
        nan_w[9] = NAN;
        EXPECT(TRANSFACE_OK, transface_trainer_set_tensor(straight, "optimizer.exp_avg.norm.weight", w, 32));
        EXPECT(TRANSFACE_OK, transface_trainer_read_tensor(straight, "optimizer.exp_avg.norm.weight", got, 32));
        CHECK(memcmp(w, got, sizeof w) == 0, "set_tensor reads back");
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_set_tensor(NULL, "norm.weight", w, 32));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_set_tensor(straight, NULL, w, 32));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_set_tensor(straight, "norm.weight", NULL, 32));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_set_tensor(straight, "norm.weight", w, 31));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_set_tensor(straight, "optimizer.exp_avg.norm.weight", nan_w, 32));
        EXPECT(TRANSFACE_NOT_FOUND, transface_trainer_set_tensor(straight, "norm.weights", w, 32));
        EXPECT(TRANSFACE_OK, transface_trainer_read_tensor(straight, "optimizer.exp_avg.norm.weight", got, 32));
        CHECK(memcmp(w, got, sizeof w) == 0, "refused writes change nothing");
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_import_official(NULL, 1, CONFIG, &t));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_import_official(paths, 0, CONFIG, &t));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_import_official(paths, 1, NULL, &t));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_import_official(paths, 1, CONFIG, NULL));
        EXPECT(TRANSFACE_FORMAT, transface_trainer_import_official(paths, 1, CONFIG, &t));  /* a model file */
        CHECK(t == NULL, "no trainer on failure");
    }
    CHECK(equal_tensors(straight, straight, "norm.weight"), "trainer still usable after errors");
    transface_trainer_free(NULL);

    transface_model_free(model);
    transface_trainer_free(straight);
    transface_trainer_free(first);
    transface_trainer_free(resumed);
    unlink(ckpt);
    unlink(path);
    rmdir(dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
