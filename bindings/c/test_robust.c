/* Numerical robustness through the C ABI:
 *  - all-black, all-white, noise and checkerboard images give finite, unit-length embeddings
 *    (with and without flip; raw embeddings finite; SE patch weights a distribution) from the
 *    reference tiny model (when its .tfm is given) and from a randomly initialised vit_t;
 *  - "non_finite": "reduce_lr": a non-finite batch is skipped and multiplies the learning rate
 *    by non_finite_lr_factor for the rest of the run, visible in transface_trainer_get_info and
 *    kept by checkpoints; configuration errors name the key.
 *
 *   test_robust [REFERENCE_TFM]   (the reference model test_parity --save writes; skipped if absent)
 * Prints "N passed, M failed"; exits non-zero on any failure. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

enum { CASES = 4 };

static void check_model(transface_model *model, const char *name) {
    transface_config c;
    transface_context *ctx = NULL;
    int side, e, p, i, j, flags;
    size_t image;
    uint8_t *images;
    float *emb, *raw, *weights;
    uint64_t rng = 11;
    c.struct_size = sizeof c;
    OK(transface_model_get_config(model, &c));
    side = c.img_size;
    e = c.embedding_size;
    p = (c.img_size / c.patch_size) * (c.img_size / c.patch_size);
    image = (size_t)side * (size_t)side * 3;
    images = malloc(CASES * image);
    emb = malloc(sizeof(float) * CASES * (size_t)e);
    raw = malloc(sizeof(float) * CASES * (size_t)e);
    weights = malloc(sizeof(float) * CASES * (size_t)p);
    if (!images || !emb || !raw || !weights) { CHECK(0, "malloc"); return; }
    for (j = 0; j < (int)image; j++) {
        images[j] = 0;                     /* black */
        images[image + j] = 255;           /* white */
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        images[2 * image + j] = (uint8_t)(rng >> 56);                                  /* noise */
        images[3 * image + j] = (uint8_t)((((j / 3) % side + (j / 3) / side) % 2) * 255); /* checkerboard */
    }
    OK(transface_context_create(model, NULL, &ctx));
    for (flags = 0; flags <= (int)TRANSFACE_EMBED_FLIP; flags += (int)TRANSFACE_EMBED_FLIP) {
        static const char *what[CASES] = {"black", "white", "noise", "checkerboard"};
        OK(transface_embed_with_patches(ctx, images, CASES, side, side, (uint32_t)flags, emb, (size_t)CASES * (size_t)e,
                                        weights, (size_t)CASES * (size_t)p, NULL, 0));
        OK(transface_embed(ctx, images, CASES, side, side, (uint32_t)flags | TRANSFACE_EMBED_NO_NORMALIZE, raw,
                           (size_t)CASES * (size_t)e));
        for (i = 0; i < CASES; i++) {
            double norm = 0, sum = 0;
            int finite = 1, raw_finite = 1, weights_ok = 1;
            for (j = 0; j < e; j++) {
                float v = emb[i * e + j];
                finite &= isfinite(v) != 0;
                raw_finite &= isfinite(raw[i * e + j]) != 0;
                norm += (double)v * (double)v;
            }
            for (j = 0; j < p; j++) {
                weights_ok &= isfinite(weights[i * p + j]) && weights[i * p + j] >= 0;
                sum += weights[i * p + j];
            }
            CHECK(finite && fabs(sqrt(norm) - 1) < 1e-5, "%s, %s image, flags %d: norm %.7f, finite %d", name, what[i], flags,
                  sqrt(norm), finite);
            CHECK(raw_finite, "%s, %s image: raw embedding not finite", name, what[i]);
            CHECK(weights_ok && fabs(sum - 1) < 1e-4, "%s, %s image: patch weights sum %.6f", name, what[i], sum);
        }
    }
    transface_context_free(ctx);
    free(images);
    free(emb);
    free(raw);
    free(weights);
    printf("%s: black, white, noise and checkerboard images give finite unit-length embeddings\n", name);
}

static const char *CONFIG_HEAD =
    "{\"arch\": \"custom\", \"model\": {\"img_size\": 36, \"embed_dim\": 32, \"depth\": 2, \"num_heads\": 4,"
    " \"mlp_hidden_dim\": 64}, \"embedding_size\": 16, \"num_classes\": 5, \"batch_size\": 4, \"seed\": 4,"
    " \"schedule\": {\"warmup_steps\": 0, \"max_steps\": 100}";

static void reduce_lr(void) {
    enum { B = 4, SIDE = 36, IMAGE = SIDE * SIDE * 3 };
    static uint8_t images[B * IMAGE];
    int32_t labels[B] = {0, 1, 2, 3};
    char config[1024], dir[] = "/tmp/transface-c-robust-XXXXXX", ckpt[300];
    transface_trainer *t = NULL, *resumed = NULL;
    transface_builder *b = NULL;
    transface_model *poisoned = NULL;
    transface_config c;
    transface_step_result r;
    transface_trainer_info info;
    float *norm_weight;
    int64_t dims[1] = {32};
    int i;

    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    snprintf(ckpt, sizeof ckpt, "%s/run.tfc", dir);
    for (i = 0; i < B * IMAGE; i++) images[i] = (uint8_t)(i * 7 % 251);
    /* A model whose final norm has huge (finite) weights: the head overflows, every batch is
     * non-finite. (The builder refuses NaN and Inf weights.) */
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    snprintf(c.arch, sizeof c.arch, "custom");
    c.img_size = 36; c.patch_size = 9; c.in_channels = 3; c.embed_dim = 32; c.depth = 2; c.num_heads = 4;
    c.mlp_hidden_dim = 64; c.embedding_size = 16;
    OK(transface_builder_create(&c, &b));
    OK(transface_builder_init_weights(b, 1));
    norm_weight = calloc(32, sizeof *norm_weight);
    for (i = 0; i < 32; i++) norm_weight[i] = 3e38f;
    OK(transface_builder_set_tensor(b, "norm.weight", norm_weight, TRANSFACE_DTYPE_F32, dims, 1));
    OK(transface_builder_build(b, &poisoned));

    /* The default policy refuses the step. */
    snprintf(config, sizeof config, "%s}", CONFIG_HEAD);
    OK(transface_trainer_create(config, poisoned, &t));
    EXPECT(TRANSFACE_NUMERIC, transface_trainer_step(t, images, labels, B, SIDE, SIDE, NULL));
    CHECK(strstr(transface_last_error(), "not finite") != NULL, "refusal message: %s", transface_last_error());
    transface_trainer_free(t);
    t = NULL;

    /* reduce_lr: skipped, rate x 0.25 each time, for the rest of the run. */
    snprintf(config, sizeof config, "%s, \"non_finite\": \"reduce_lr\", \"non_finite_lr_factor\": 0.25}", CONFIG_HEAD);
    OK(transface_trainer_create(config, poisoned, &t));
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    OK(transface_trainer_get_info(t, &info));
    CHECK(info.step == 0 && info.batches == 0 && info.learning_rate_scale == 1.0 && info.learning_rate == 0.001,
          "fresh trainer info: step %llu scale %g lr %g", (unsigned long long)info.step, info.learning_rate_scale,
          info.learning_rate);
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    OK(transface_trainer_step(t, images, labels, B, SIDE, SIDE, &r));
    CHECK(r.skipped == 1 && r.optimizer_stepped == 0 && r.step == 0 && r.learning_rate == 0.001 * 0.25,
          "reduce_lr step: skipped %d lr %g", r.skipped, r.learning_rate);
    OK(transface_trainer_step(t, images, labels, B, SIDE, SIDE, &r));
    OK(transface_trainer_get_info(t, &info));
    CHECK(info.learning_rate_scale == 0.0625 && info.learning_rate == 0.001 * 0.0625 && info.step == 0,
          "after two back-offs: scale %g lr %g", info.learning_rate_scale, info.learning_rate);
    OK(transface_trainer_save_checkpoint(t, ckpt));
    OK(transface_trainer_resume(ckpt, 0, &resumed));
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    OK(transface_trainer_get_info(resumed, &info));
    CHECK(info.learning_rate_scale == 0.0625 && info.learning_rate == 0.001 * 0.0625, "resumed scale %g",
          info.learning_rate_scale);
    printf("reduce_lr: two non-finite batches skipped, learning rate 0.001 -> %g (scale %g), kept by the checkpoint\n",
           info.learning_rate, info.learning_rate_scale);

    /* Errors. */
    info.struct_size = 4;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_get_info(t, &info));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_get_info(t, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_get_info(NULL, &info));
    transface_trainer_free(resumed);
    transface_trainer_free(t);
    t = NULL;
    snprintf(config, sizeof config, "%s, \"non_finite\": \"reduce_lr\", \"non_finite_lr_factor\": 1}", CONFIG_HEAD);
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_create(config, NULL, &t));
    CHECK(strstr(transface_last_error(), "non_finite_lr_factor") != NULL, "message: %s", transface_last_error());
    snprintf(config, sizeof config, "%s, \"non_finite_lr_factor\": 0.5}", CONFIG_HEAD);
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_create(config, NULL, &t));
    CHECK(strstr(transface_last_error(), "reduce_lr") != NULL, "message: %s", transface_last_error());

    free(norm_weight);
    transface_model_free(poisoned);
    transface_builder_free(b);
    unlink(ckpt);
    rmdir(dir);
}

int main(int argc, char **argv) {
    transface_model *model = NULL;
    transface_builder *b = NULL;
    transface_config c;

    if (argc > 1 && access(argv[1], R_OK) == 0) {
        OK(transface_model_load(argv[1], NULL, &model));
        if (model) check_model(model, "reference tiny model");
        transface_model_free(model);
        model = NULL;
    } else {
        printf("SKIP reference tiny model: %s not found (test_parity --save writes it)\n", argc > 1 ? argv[1] : "no path given");
    }
    c.struct_size = sizeof c;
    OK(transface_config_preset("vit_t", 0, &c));
    OK(transface_builder_create(&c, &b));
    OK(transface_builder_init_weights(b, 2024));
    OK(transface_builder_build(b, &model));
    if (model) check_model(model, "random vit_t");
    transface_model_free(model);
    transface_builder_free(b);

    reduce_lr();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
