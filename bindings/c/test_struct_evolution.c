/* Struct evolution: every public struct as released in 0.2 (struct_v1.h) and the two 0.1 sizes
 * that grew since, passed to today's library from the end of a page followed by an inaccessible
 * page, so any read or write past struct_size faults. Checked for each struct:
 *  - its fields keep their offsets in today's header (append-only);
 *  - transface_<x>_params_init fills exactly the caller's size with the by-value defaults, zeroes
 *    the tail of a newer (larger) struct, and refuses sizes below the first release;
 *  - parameter structs of every size are accepted and mean the same as today's;
 *  - result structs are written up to struct_size only, with struct_size set to the bytes filled
 *    and the same values as today's struct gets;
 *  - below the first released size, or a larger struct with a set unknown byte: INVALID_ARGUMENT
 *    naming the struct and both sizes.
 * The IJB structs are checked the same way in test_ijb.c (it has the IJB folder), the conversion
 * call's struct_size rules in test_convert.c.
 * Usage: test_struct_evolution MODEL.tfm (test_parity --save writes the reference tiny model). */
#include "struct_v1.h"

#include <sys/stat.h>

#include "check.h"

#define SAME_OFFSET(v1, now, field) CHECK(offsetof(v1, field) == offsetof(now, field), #now "." #field " moved")
#define NAMES(struct_name, sizes) \
    CHECK(strstr(transface_last_error(), struct_name) && strstr(transface_last_error(), sizes), \
          "message names " struct_name " and sizes " sizes ": %s", transface_last_error())

enum { N = 2, IMG = 112 };
static uint8_t images[N * IMG * IMG * 3];

static const char *TRAIN_CONFIG =
    "{\"arch\": \"custom\", \"model\": {\"img_size\": 36, \"embed_dim\": 32, \"depth\": 1, \"num_heads\": 4,"
    " \"mlp_hidden_dim\": 64}, \"embedding_size\": 16, \"num_classes\": 5, \"batch_size\": 2, \"seed\": 4}";

static void layout(void) {
    SAME_OFFSET(config_v1, transface_config, embedding_size);
    SAME_OFFSET(config_v1, transface_config, no_se_gate);
    SAME_OFFSET(preprocess_v1, transface_preprocess, align_template);
    SAME_OFFSET(load_params_v1, transface_load_params, max_weight_bytes);
    SAME_OFFSET(tensor_info_v1, transface_tensor_info, count);
    SAME_OFFSET(context_params_v1, transface_context_params, precision);
    SAME_OFFSET(decode_params_v1, transface_decode_params, accept_damaged);
    SAME_OFFSET(image_info_v1, transface_image_info, channels);
    SAME_OFFSET(pack_params_v1, transface_pack_params, jpeg_quality);
    SAME_OFFSET(verify_params_v1, transface_verify_params, landmark_source);
    SAME_OFFSET(verify_result_v1, transface_verify_result, images);
    SAME_OFFSET(ijb_params_v1, transface_ijb_params, image_dir);
    SAME_OFFSET(ijb_summary_v1, transface_ijb_summary, auc);
    SAME_OFFSET(step_result_v1, transface_step_result, seconds);
    SAME_OFFSET(trainer_info_v1, transface_trainer_info, learning_rate_scale);
    SAME_OFFSET(convert_params_v1, transface_convert_params, user_data);
    CHECK(sizeof(convert_params_v1) == sizeof(transface_convert_params), "convert_params v1 size");
    SAME_OFFSET(detector_params_v1, transface_detector_params, landmark_box);
    SAME_OFFSET(face_v1, transface_face, landmarks);
    SAME_OFFSET(gallery_params_v1, transface_gallery_params, search_threads);
    SAME_OFFSET(match_v1, transface_match, label);
    CHECK(sizeof(config_v0) == 76 && sizeof(context_params_v0) == 12, "0.1 sizes");
}

/* params_init into a guarded struct of v1's size equals the by-value getter; a larger struct gets
 * a zero tail; below the first released size it is refused. */
#define CHECK_INIT(x, v1, first)                                                                        \
    do {                                                                                                \
        transface_##x##_params def = transface_##x##_default_params();                                  \
        v1 *p = guarded(0, sizeof(v1));                                                                 \
        struct { transface_##x##_params p; uint8_t tail[16]; } *big = guarded(1, sizeof *big);         \
        EXPECT(TRANSFACE_OK, transface_##x##_params_init((transface_##x##_params *)p, sizeof(v1)));     \
        CHECK(p->struct_size == sizeof(v1) && memcmp((uint8_t *)p + 4, (uint8_t *)&def + 4, sizeof(v1) - 4) == 0, \
              #x "_params_init differs from the default getter");                                       \
        EXPECT(TRANSFACE_OK, transface_##x##_params_init(&big->p, sizeof *big));                        \
        CHECK(big->p.struct_size == sizeof *big && big->tail[0] == 0 && big->tail[15] == 0,             \
              #x "_params_init of a larger struct: size %u, tail %d", big->p.struct_size, big->tail[0]); \
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_##x##_params_init((transface_##x##_params *)p, (first) - 1)); \
        NAMES("transface_" #x "_params", #first);                                                       \
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_##x##_params_init(NULL, sizeof(v1)));              \
    } while (0)

/* A larger parameter struct with a zero tail is accepted by `call` (which takes `arg`); one set
 * byte in the tail is refused naming the struct. */
#define CHECK_FUTURE(x, arg, call)                                                        \
    do {                                                                                  \
        struct { transface_##x##_params p; uint8_t tail[8]; } *f = guarded(2, sizeof *f); \
        OK(transface_##x##_params_init(&f->p, sizeof *f));                                \
        const transface_##x##_params *arg = &f->p;                                        \
        EXPECT(TRANSFACE_OK, call);                                                       \
        f->tail[3] = 1;                                                                   \
        EXPECT(TRANSFACE_INVALID_ARGUMENT, call);                                         \
        NAMES("transface_" #x "_params", "byte");                                         \
    } while (0)

static int embed(transface_model *m, const transface_context_params *p, float *out, size_t e) {
    transface_context *ctx = NULL;
    transface_status s = transface_context_create(m, p, &ctx);
    if (s != TRANSFACE_OK) return (int)s;
    s = transface_embed(ctx, images, N, IMG, IMG, TRANSFACE_EMBED_FLIP, out, N * e);
    transface_context_free(ctx);
    return (int)s;
}

static void model_structs(const char *path) {
    transface_model *m = NULL;
    transface_config now;
    transface_preprocess pre;
    transface_tensor_info ti;
    float ref[N * 512], out[N * 512];
    size_t e;

    load_params_v1 lp = {sizeof(load_params_v1), 1, 0};
    EXPECT(TRANSFACE_OK, transface_model_load(path, (const transface_load_params *)GUARDED_COPY(0, load_params_v1, lp), &m));
    if (!m) return;
    {
        transface_model *again = NULL;
        CHECK_FUTURE(load, p, (transface_model_free(again), again = NULL, transface_model_load(path, p, &again)));
        transface_model_free(again);
    }

    /* config: v1 and 0.1 sizes out; a 0.1 config in (no_se_gate takes its default, the SE gate) */
    now.struct_size = sizeof now;
    OK(transface_model_get_config(m, &now));
    e = (size_t)now.embedding_size;
    config_v1 *c1 = guarded(0, sizeof *c1);
    c1->struct_size = sizeof *c1;
    EXPECT(TRANSFACE_OK, transface_model_get_config(m, (transface_config *)c1));
    CHECK(c1->struct_size == sizeof *c1 && memcmp(c1, &now, sizeof *c1) == 0, "v1 config differs");
    config_v0 *c0 = guarded(0, sizeof *c0);
    c0->struct_size = sizeof *c0;
    EXPECT(TRANSFACE_OK, transface_model_get_config(m, (transface_config *)c0));
    CHECK(c0->struct_size == 76 && memcmp((uint8_t *)c0 + 4, (uint8_t *)&now + 4, 72) == 0, "0.1 config: size %u", c0->struct_size);
    c0->struct_size = 75;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_model_get_config(m, (transface_config *)c0));
    NAMES("transface_config", "76");
    EXPECT(TRANSFACE_OK, transface_config_preset("vit_t", 0, (transface_config *)c1));
    CHECK(c1->struct_size == sizeof *c1 && c1->embed_dim == 256, "v1 preset");
    {
        transface_builder *b = NULL;
        config_v0 small;
        memcpy(&small, &now, sizeof small);
        small.struct_size = sizeof small;
        EXPECT(TRANSFACE_OK, transface_builder_create((const transface_config *)GUARDED_COPY(0, config_v0, small), &b));
        tensor_info_v1 *t1 = guarded(1, sizeof *t1);
        t1->struct_size = sizeof *t1;
        EXPECT(TRANSFACE_OK, transface_builder_tensor_info(b, 0, (transface_tensor_info *)t1));
        CHECK(t1->struct_size == sizeof *t1 && t1->name && t1->count > 0, "builder tensor_info v1");
        preprocess_v1 *p1 = guarded(1, sizeof *p1);
        p1->struct_size = sizeof *p1;
        OK(transface_model_get_preprocess(m, (transface_preprocess *)p1));
        EXPECT(TRANSFACE_OK, transface_builder_set_preprocess(b, (const transface_preprocess *)p1));
        transface_builder_free(b);
    }

    /* preprocess and tensor_info out */
    pre.struct_size = sizeof pre;
    OK(transface_model_get_preprocess(m, &pre));
    preprocess_v1 *p1 = guarded(0, sizeof *p1);
    p1->struct_size = sizeof *p1;
    EXPECT(TRANSFACE_OK, transface_model_get_preprocess(m, (transface_preprocess *)p1));
    CHECK(memcmp(p1, &pre, sizeof *p1) == 0, "v1 preprocess differs");
    ti.struct_size = sizeof ti;
    OK(transface_model_tensor_info(m, 1, &ti));
    tensor_info_v1 *t1 = guarded(0, sizeof *t1);
    t1->struct_size = sizeof *t1;
    EXPECT(TRANSFACE_OK, transface_model_tensor_info(m, 1, (transface_tensor_info *)t1));
    CHECK(memcmp(t1, &ti, sizeof *t1) == 0, "v1 tensor_info differs");
    t1->struct_size = 63;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_model_tensor_info(m, 1, (transface_tensor_info *)t1));
    NAMES("transface_tensor_info", "64");

    /* context_params: v1 and 0.1 give today's float32 embeddings bit for bit */
    CHECK(e <= 512, "embedding size %zu", e);
    OK(embed(m, NULL, ref, e));
    context_params_v1 cp1 = {sizeof(context_params_v1), 1, 8, 0};
    EXPECT(TRANSFACE_OK, embed(m, (const transface_context_params *)GUARDED_COPY(0, context_params_v1, cp1), out, e));
    CHECK(memcmp(out, ref, N * e * sizeof(float)) == 0, "v1 context embeddings differ");
    context_params_v0 cp0 = {sizeof(context_params_v0), 1, 8};
    EXPECT(TRANSFACE_OK, embed(m, (const transface_context_params *)GUARDED_COPY(0, context_params_v0, cp0), out, e));
    CHECK(memcmp(out, ref, N * e * sizeof(float)) == 0, "0.1 context embeddings differ");
    cp0.struct_size = 8;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, embed(m, (const transface_context_params *)GUARDED_COPY(0, context_params_v0, cp0), out, e));
    NAMES("transface_context_params", "12");
    CHECK_FUTURE(context, p, embed(m, p, out, e));
    transface_model_free(m);
}

static void image_structs(void) {
    /* a 3x2 PPM */
    static const uint8_t ppm[] = "P6\n3 2\n255\nabcdefghijklmnopqr";
    uint8_t rgb[18];
    transface_image_info now = {sizeof now, 0, 0, 0, 0};
    OK(transface_decode_image(ppm, sizeof ppm - 1, NULL, rgb, sizeof rgb, &now));
    decode_params_v1 dp = {sizeof(decode_params_v1), 100000000, 0};
    image_info_v1 *info = guarded(1, sizeof *info);
    info->struct_size = sizeof *info;
    EXPECT(TRANSFACE_OK, transface_decode_image(ppm, sizeof ppm - 1, (const transface_decode_params *)GUARDED_COPY(0, decode_params_v1, dp),
                                                rgb, sizeof rgb, (transface_image_info *)info));
    CHECK(memcmp(info, &now, sizeof *info) == 0 && info->width == 3 && info->height == 2, "v1 image_info");
    info->struct_size = 19;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_decode_image(ppm, sizeof ppm - 1, NULL, NULL, 0, (transface_image_info *)info));
    NAMES("transface_image_info", "20");
    info->struct_size = sizeof *info;
    CHECK_FUTURE(decode, p, transface_decode_image(ppm, sizeof ppm - 1, p, NULL, 0, (transface_image_info *)info));
}

static void pack_structs(void) {
    char dir[] = "/tmp/transface-c-structs-XXXXXX", path[4200];
    size_t n = 0;
    FILE *f;
    static uint8_t pixels[112 * 112 * 3];
    if (!mkdtemp(dir)) { perror("mkdtemp"); exit(2); }
    snprintf(path, sizeof path, "%s/faces", dir); mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/faces/a", dir); mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/faces/a/1.ppm", dir);
    f = fopen(path, "wb");
    fprintf(f, "P6\n112 112\n255\n");
    fwrite(pixels, 1, sizeof pixels, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/faces", dir);
    char out[4200];
    snprintf(out, sizeof out, "%s/rec", dir);
    pack_params_v1 pp = {sizeof(pack_params_v1), 0, 112, 112, 0};
    EXPECT(TRANSFACE_OK, transface_recordio_pack(path, NULL, out, (const transface_pack_params *)GUARDED_COPY(0, pack_params_v1, pp), &n));
    CHECK(n == 1, "packed %zu images", n);
    CHECK_FUTURE(pack, p, transface_recordio_pack(path, NULL, out, p, &n));
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static void verify_structs(void) {
    double d[40];
    uint8_t same[40];
    transface_verify_result now;
    for (int i = 0; i < 40; i++) { same[i] = (uint8_t)(i % 2); d[i] = (i % 2 ? 0.4 : 1.2) + 0.01 * (i % 7); }
    now.struct_size = sizeof now;
    OK(transface_verify_distances(d, same, 40, NULL, &now));
    verify_params_v1 vp = {sizeof(verify_params_v1), 10, 0, 1, 1e-3, NULL, NULL};
    verify_result_v1 *r = guarded(1, sizeof *r);
    r->struct_size = sizeof *r;
    EXPECT(TRANSFACE_OK, transface_verify_distances(d, same, 40, (const transface_verify_params *)GUARDED_COPY(0, verify_params_v1, vp),
                                                    (transface_verify_result *)r));
    CHECK(memcmp(r, &now, sizeof *r) == 0, "v1 verify_result differs");
    r->struct_size = 1119;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_verify_distances(d, same, 40, NULL, (transface_verify_result *)r));
    NAMES("transface_verify_result", "1120");
    r->struct_size = sizeof *r;
    CHECK_FUTURE(verify, p, transface_verify_distances(d, same, 40, p, (transface_verify_result *)r));
}

static void trainer_structs(void) {
    transface_trainer *t = NULL;
    static uint8_t batch[2 * 36 * 36 * 3];
    int32_t labels[2] = {0, 3};
    transface_trainer_info now;
    if (transface_trainer_create(TRAIN_CONFIG, NULL, &t) != TRANSFACE_OK) {
        CHECK(0, "trainer_create: %s", transface_last_error());
        return;
    }
    for (size_t i = 0; i < sizeof batch; i++) batch[i] = (uint8_t)(i * 7);
    step_result_v1 *s = guarded(0, sizeof *s);
    s->struct_size = sizeof *s;
    EXPECT(TRANSFACE_OK, transface_trainer_step(t, batch, labels, 2, 36, 36, (transface_step_result *)s));
    CHECK(s->struct_size == sizeof *s && s->step == 1 && s->loss > 0, "v1 step_result: size %u, step %llu", s->struct_size,
          (unsigned long long)s->step);
    s->struct_size = 79;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_trainer_step(t, batch, labels, 2, 36, 36, (transface_step_result *)s));
    NAMES("transface_step_result", "80");
    now.struct_size = sizeof now;
    OK(transface_trainer_get_info(t, &now));
    trainer_info_v1 *info = guarded(0, sizeof *info);
    info->struct_size = sizeof *info;
    EXPECT(TRANSFACE_OK, transface_trainer_get_info(t, (transface_trainer_info *)info));
    CHECK(memcmp(info, &now, sizeof *info) == 0 && info->step == 1, "v1 trainer_info");
    transface_trainer_free(t);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_struct_evolution MODEL.tfm\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof images; i++) images[i] = (uint8_t)((i * 2654435761u) >> 24);
    layout();
    CHECK_INIT(load, load_params_v1, 16);
    CHECK_INIT(context, context_params_v0, 12);
    CHECK_INIT(context, context_params_v1, 12);
    CHECK_INIT(decode, decode_params_v1, 24);
    CHECK_INIT(pack, pack_params_v1, 20);
    CHECK_INIT(verify, verify_params_v1, 40);
    CHECK_INIT(ijb, ijb_params_v1, 24);
    CHECK_INIT(convert, convert_params_v1, 56);
    CHECK_INIT(detector, detector_params_v1, 32);
    CHECK_INIT(gallery, gallery_params_v1, 16);
    model_structs(argv[1]);
    image_structs();
    pack_structs();
    verify_structs();
    trainer_structs();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
