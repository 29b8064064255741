/*
 * C test of transface_evaluate_ijb: a miniature IJB-C folder (PPM faces in loose_crop, the three
 * meta files) evaluated with a small model built from seeded weights, checked against the
 * protocol written out here (align, embed with the mirror image, normalise, per-media mean
 * summed per template, cosine, transface_tar_at_far); then the error paths.
 *
 *   test_ijb
 *
 * Prints one line per failure and a final "N passed, M failed"; exit status 1 on failure.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transface.h"

#include "check.h"
#include "struct_v1.h"
#define HAS(text) CHECK(strstr(transface_last_error(), (text)) != NULL, "last error lacks '%s'", (text))

#define N 24          /* images */
#define W 120         /* image side */
#define SIDE 112      /* model input */
#define E 16          /* embedding size */
#define NFARS 5

static const float arcface[10] = {38.2946f, 51.6963f, 73.5318f, 51.5014f, 56.0252f,
                                  71.7366f, 41.5493f, 92.3655f, 70.7299f, 92.2041f};
static uint64_t rng = 88172645463325252ull;
static double uniform(void) {  /* xorshift64 */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text)) { perror(path); exit(2); }
    fclose(f);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    long n;
    char *s;
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END); n = ftell(f); fseek(f, 0, SEEK_SET);
    s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) exit(2);
    fclose(f);
    return s;
}

static transface_context *make_context(transface_model **model) {
    transface_config c;
    transface_builder *b = NULL;
    transface_context *ctx = NULL;
    transface_context_params cp = transface_context_default_params();
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    strcpy(c.arch, "ijb-test");
    c.img_size = SIDE; c.patch_size = 9; c.in_channels = 3; c.embed_dim = 32; c.depth = 1;
    c.num_heads = 4; c.mlp_hidden_dim = 64; c.embedding_size = E;
    OK(transface_builder_create(&c, &b));
    OK(transface_builder_init_weights(b, 7));
    OK(transface_builder_build(b, model));
    transface_builder_free(b);
    cp.max_batch = 5;
    OK(transface_context_create(*model, &cp, &ctx));
    return ctx;
}

int main(void) {
    char dir[] = "/tmp/transface-c-ijb-XXXXXX";
    char path[4200], cmd[4300], line[512];
    static uint8_t image[N][W * W * 3], crops[N][SIDE * SIDE * 3];
    static char tid[N * 64], lmk[N * 256], pairs[64 * 64];
    float lm[N][10], emb[N][E];
    double face[N], feat[N][E], tfeat[8][E], scores[64], tar[NFARS], th[NFARS], want[NFARS], wth[NFARS];
    const double fars[NFARS] = {1e-4, 0.1, 0.25, 0.5, 0.75};
    int templ[N], media[N], ntempl = 0, ids[8], npairs = 0, i, j, k, a, b;
    uint8_t labels[64];
    transface_model *model = NULL;
    transface_context *ctx;
    transface_ijb_params p = transface_ijb_default_params();
    transface_ijb_summary s;
    char *text;

    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    ctx = make_context(&model);
    CHECK(p.struct_size == sizeof p && p.flip == 1 && p.use_norm_score == 0 && p.use_detector_score == 0 &&
          p.image_dir == NULL, "default params");

    /* the folder: blocky random images, 6 templates of 1-2 medias */
    snprintf(path, sizeof path, "%s/loose_crop", dir); mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/meta", dir); mkdir(path, 0755);
    tid[0] = lmk[0] = pairs[0] = 0;
    for (i = 0; i < N; i++) {
        FILE *f;
        double scale = 0.9 + 0.2 * uniform(), dx = 8 * uniform(), dy = 8 * uniform();
        templ[i] = 10 + 3 * (int)(uniform() * 6);
        media[i] = 100 * templ[i] + (int)(uniform() * 2);
        face[i] = 0.5 + 0.5 * uniform();
        for (j = 0; j < W * W * 3; j++) {
            int x = (j / 3) % W, y = (j / 3) / W;
            uint64_t h = (uint64_t)(i * 7919 + (y / 10) * 131 + (x / 10) * 31 + j % 3) * 0x9E3779B97F4A7C15ull;
            image[i][j] = (uint8_t)(h >> 56);
        }
        snprintf(path, sizeof path, "%s/loose_crop/%d.ppm", dir, i + 1);
        f = fopen(path, "wb");
        fprintf(f, "P6\n%d %d\n255\n", W, W);
        fwrite(image[i], 1, sizeof image[i], f);
        fclose(f);
        snprintf(line, sizeof line, "%d.ppm %d %d\n", i + 1, templ[i], media[i]);
        strcat(tid, line);
        snprintf(line, sizeof line, "%d.ppm", i + 1);
        strcat(lmk, line);
        for (j = 0; j < 10; j++) {
            lm[i][j] = (float)(arcface[j] * scale + (j % 2 ? dy : dx) + (uniform() - 0.5) * 3);
            snprintf(line, sizeof line, " %.9g", lm[i][j]);
            strcat(lmk, line);
        }
        snprintf(line, sizeof line, " %.17g\n", face[i]);
        strcat(lmk, line);
    }
    for (i = 0; i < N; i++) {  /* sorted distinct template ids */
        for (j = 0; j < ntempl && ids[j] != templ[i]; j++) {}
        if (j == ntempl) ids[ntempl++] = templ[i];
    }
    for (i = 0; i < ntempl; i++)
        for (j = i + 1; j < ntempl; j++)
            if (ids[j] < ids[i]) { k = ids[i]; ids[i] = ids[j]; ids[j] = k; }
    for (a = 0; a < ntempl; a++)
        for (b = a + 1; b < ntempl; b++) {
            labels[npairs] = (uint8_t)((a * 7 + b) % 3 == 0);
            snprintf(line, sizeof line, "%d %d %d\n", ids[a], ids[b], labels[npairs]);
            strcat(pairs, line);
            npairs++;
        }
    snprintf(path, sizeof path, "%s/meta/ijbc_face_tid_mid.txt", dir); write_text(path, tid);
    snprintf(path, sizeof path, "%s/meta/ijbc_name_5pts_score.txt", dir); write_text(path, lmk);
    snprintf(path, sizeof path, "%s/meta/ijbc_template_pair_label.txt", dir); write_text(path, pairs);

    /* the protocol by hand (F1N0D1: every step used) */
    for (i = 0; i < N; i++)
        OK(transface_align_face(image[i], W, W, W * 3, TRANSFACE_PIXELS_RGB, lm[i], NULL, SIDE, crops[i],
                                sizeof crops[i], NULL));
    OK(transface_embed(ctx, &crops[0][0], N, SIDE, SIDE, TRANSFACE_EMBED_FLIP | TRANSFACE_EMBED_NO_NORMALIZE,
                       &emb[0][0], N * E));
    for (i = 0; i < N; i++) {
        double n2 = 0;
        for (j = 0; j < E; j++) n2 += (double)emb[i][j] * emb[i][j];
        for (j = 0; j < E; j++) feat[i][j] = emb[i][j] / sqrt(n2) * face[i];
    }
    for (k = 0; k < ntempl; k++) {
        double n2 = 0;
        int m;
        for (j = 0; j < E; j++) tfeat[k][j] = 0;
        for (m = 0; m < 2; m++) {  /* medias 100 t + 0 and + 1 */
            double sum[E] = {0};
            int count = 0;
            for (i = 0; i < N; i++)
                if (templ[i] == ids[k] && media[i] == 100 * ids[k] + m) {
                    for (j = 0; j < E; j++) sum[j] += feat[i][j];
                    count++;
                }
            if (count) for (j = 0; j < E; j++) tfeat[k][j] += sum[j] / count;
        }
        for (j = 0; j < E; j++) n2 += tfeat[k][j] * tfeat[k][j];
        for (j = 0; j < E; j++) tfeat[k][j] /= sqrt(n2);
    }
    k = 0;
    for (a = 0; a < ntempl; a++)
        for (b = a + 1; b < ntempl; b++) {
            scores[k] = 0;
            for (j = 0; j < E; j++) scores[k] += tfeat[a][j] * tfeat[b][j];
            k++;
        }
    OK(transface_tar_at_far(scores, labels, (size_t)npairs, fars, NFARS, want, wth));

    p.use_detector_score = 1;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    OK(transface_evaluate_ijb(ctx, dir, NULL, &p, fars, NFARS, tar, th, NFARS, &s));
    for (i = 0; i < NFARS; i++) {
        CHECK(tar[i] == want[i], "TAR@%g %.17g, by hand %.17g", fars[i], tar[i], want[i]);
        CHECK(th[i] == wth[i] || fabs(th[i] - wth[i]) < 1e-9, "threshold@%g %.17g, by hand %.17g", fars[i], th[i], wth[i]);
    }
    CHECK(!strcmp(s.dataset, "IJBC") && s.images == N && s.templates == (size_t)ntempl && s.pairs == (size_t)npairs,
          "summary %s %zu images %zu templates %zu pairs", s.dataset, s.images, s.templates, s.pairs);
    k = 0;
    for (i = 0; i < npairs; i++) k += labels[i];
    CHECK(s.genuine_pairs == (size_t)k && s.impostor_pairs == (size_t)(npairs - k) && k > 0 && k < npairs,
          "%zu genuine, %zu impostor pairs", s.genuine_pairs, s.impostor_pairs);
    CHECK(s.roc_points >= 2 && s.auc >= 0 && s.auc <= 1, "%zu ROC points, AUC %g", s.roc_points, s.auc);
    printf("miniature IJB-C, F1N0D1: %d pairs, TAR@{0.1,0.25,0.5} = %.3f %.3f %.3f, AUC %.4f\n", npairs, tar[1], tar[2],
           tar[3], s.auc);
    /* NULL params (F1N0D0) and NULL thresholds / summary */
    OK(transface_evaluate_ijb(ctx, dir, "ijbc", NULL, fars, NFARS, tar, NULL, NFARS, NULL));

    /* struct evolution: the structs as released in 0.2, each ending at an inaccessible page */
    {
        ijb_params_v1 p1;
        ijb_summary_v1 *s1 = guarded(1, sizeof *s1);
        memcpy(&p1, &p, sizeof p1);  /* the params of the call above (detector scores on) */
        s1->struct_size = sizeof *s1;
        OK(transface_evaluate_ijb(ctx, dir, NULL, (const transface_ijb_params *)GUARDED_COPY(0, ijb_params_v1, p1), fars, NFARS,
                                  tar, NULL, NFARS, (transface_ijb_summary *)s1));
        CHECK(memcmp(s1, &s, sizeof *s1) == 0, "v1 summary differs from today's");
        s1->struct_size = 71;
        ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_ijb(ctx, dir, NULL, NULL, fars, NFARS, tar, NULL, NFARS,
                                                               (transface_ijb_summary *)s1));
        CHECK(strstr(transface_last_error(), "transface_ijb_summary") && strstr(transface_last_error(), "72"),
              "message: %s", transface_last_error());
    }

    /* errors */
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_ijb(NULL, dir, NULL, NULL, fars, NFARS, tar, NULL, NFARS, NULL));
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_ijb(ctx, NULL, NULL, NULL, fars, NFARS, tar, NULL, NFARS, NULL));
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_ijb(ctx, dir, NULL, NULL, NULL, NFARS, tar, NULL, NFARS, NULL));
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_ijb(ctx, dir, NULL, NULL, fars, NFARS, NULL, NULL, NFARS, NULL));
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_ijb(ctx, dir, NULL, NULL, fars, NFARS, tar, NULL, NFARS - 1, NULL));
    HAS("capacity");
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_ijb(ctx, dir, NULL, NULL, fars, 0, tar, NULL, NFARS, NULL));
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_ijb(ctx, dir, "IJBA", NULL, fars, NFARS, tar, NULL, NFARS, NULL));
    HAS("IJBA");
    s.struct_size = 0;
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_ijb(ctx, dir, NULL, NULL, fars, NFARS, tar, NULL, NFARS, &s));
    HAS("struct_size");
    p.struct_size = 0;
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_ijb(ctx, dir, NULL, &p, fars, NFARS, tar, NULL, NFARS, NULL));
    ERR(TRANSFACE_IO, transface_evaluate_ijb(ctx, "/nonexistent/IJBC", NULL, NULL, fars, NFARS, tar, NULL, NFARS, NULL));
    HAS("/nonexistent/IJBC");
    ERR(TRANSFACE_IO, transface_evaluate_ijb(ctx, dir, "IJBB", NULL, fars, NFARS, tar, NULL, NFARS, NULL));
    HAS("ijbb_face_tid_mid.txt");
    p = transface_ijb_default_params();
    p.image_dir = "/nonexistent/faces";
    ERR(TRANSFACE_IO, transface_evaluate_ijb(ctx, dir, NULL, &p, fars, NFARS, tar, NULL, NFARS, NULL));
    HAS("/nonexistent/faces");
    /* a malformed meta line: file and line named */
    snprintf(path, sizeof path, "%s/meta/ijbc_face_tid_mid.txt", dir);
    text = read_text(path);
    write_text(path, "1.ppm 10 1000\n2.ppm ten 1000\n");
    ERR(TRANSFACE_FORMAT, transface_evaluate_ijb(ctx, dir, NULL, NULL, fars, NFARS, tar, NULL, NFARS, NULL));
    HAS("ijbc_face_tid_mid.txt' line 2");
    write_text(path, text);
    free(text);
    /* a missing image */
    snprintf(path, sizeof path, "%s/loose_crop/3.ppm", dir);
    unlink(path);
    ERR(TRANSFACE_IO, transface_evaluate_ijb(ctx, dir, NULL, NULL, fars, NFARS, tar, NULL, NFARS, NULL));
    HAS("3.ppm");

    transface_context_free(ctx);
    transface_model_free(model);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    printf("test_ijb: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
