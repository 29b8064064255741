/*
 * C test of the dataset and evaluation functions of include/transface.h: the verification
 * protocol against ../shared/reference/verification bit for bit, ROC / TAR@FAR, .bin sets,
 * RecordIO packing and reading, and their error paths.
 *
 *   test_data_eval SHARED_DIR      (SHARED_DIR = <repo>/../shared)
 *
 * Prints one line per failure and a final "N passed, M failed"; exit status 1 on failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transface.h"

#include "check.h"

/* A little-endian .npy file (format 1.0): its data after the header, and the byte count. */
static unsigned char *npy(const char *dir, const char *name, size_t *count) {
    char path[4096];
    FILE *f;
    long size;
    unsigned char *all, *data;
    size_t header;
    snprintf(path, sizeof path, "%s/reference/verification/ver/%s.npy", dir, name);
    f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    all = malloc((size_t)size);
    if (!all || fread(all, 1, (size_t)size, f) != (size_t)size) { fclose(f); free(all); return NULL; }
    fclose(f);
    header = 10 + (size_t)all[8] + ((size_t)all[9] << 8);
    *count = (size_t)size - header;
    data = malloc(*count);
    memcpy(data, all + header, *count);
    free(all);
    return data;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void verification(const char *shared) {
    size_t n_dist, n_same, n_emb, n_acc, n_std, n_best, n_tpr, n_fpr, i;
    double *dist = (double *)npy(shared, "dist", &n_dist);
    unsigned char *same = npy(shared, "issame", &n_same);
    double *emb = (double *)npy(shared, "embeddings", &n_emb);
    double *acc = (double *)npy(shared, "accuracy_mean", &n_acc);
    double *std = (double *)npy(shared, "accuracy_std", &n_std);
    double *best = (double *)npy(shared, "best_threshold", &n_best);
    double *tpr_ref = (double *)npy(shared, "tpr", &n_tpr);
    double *fpr_ref = (double *)npy(shared, "fpr", &n_fpr);
    transface_verify_params p = transface_verify_default_params();
    transface_verify_result r, r32;
    double th[TRANSFACE_VERIFY_THRESHOLDS], tpr[TRANSFACE_VERIFY_THRESHOLDS], fpr[TRANSFACE_VERIFY_THRESHOLDS];
    double d32[600];
    float *e32;
    size_t pairs;
    if (!dist || !same || !emb || !acc || !std || !best || !tpr_ref || !fpr_ref) {
        printf("SKIP verification: no reference data under %s\n", shared);
        return;
    }
    pairs = n_dist / 8;
    CHECK(pairs == 600 && n_same == 600, "fixture sizes");
    CHECK(p.struct_size == sizeof p && p.folds == 10 && p.interleaved == 0 && p.flip == 1 && p.far_target == 1e-3,
          "default params");
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    OK(transface_verify_distances(dist, same, pairs, &p, &r));
    CHECK(memcmp(&r.accuracy_mean, acc, 8) == 0, "accuracy %.17g vs %.17g", r.accuracy_mean, acc[0]);
    CHECK(memcmp(&r.accuracy_std, std, 8) == 0, "std %.17g vs %.17g", r.accuracy_std, std[0]);
    CHECK(r.folds == 10 && r.pairs == 600, "folds and pairs");
    CHECK(memcmp(r.fold_threshold, best, 10 * sizeof(double)) == 0, "best thresholds");
    CHECK(isnan(r.xnorm) && r.images == 0, "no xnorm without images");
    OK(transface_verify_roc(dist, same, pairs, &p, th, tpr, fpr, TRANSFACE_VERIFY_THRESHOLDS));
    CHECK(memcmp(tpr, tpr_ref, sizeof tpr) == 0 && memcmp(fpr, fpr_ref, sizeof fpr) == 0, "tpr/fpr bit for bit");
    CHECK(th[121] == 121 * 0.01, "thresholds");
    printf("verification fixture: accuracy %.17g +- %.17g, VAL@FAR=1e-3 %.6f, FAR %.6f\n", r.accuracy_mean,
           r.accuracy_std, r.val_mean, r.far_mean);

    /* float32 embeddings, interleaved rows */
    e32 = malloc(n_emb / 8 * sizeof(float));
    for (i = 0; i < n_emb / 8; i++) e32[i] = (float)emb[i];
    OK(transface_pair_distances(e32, NULL, pairs, 32, d32));
    for (i = 0; i < pairs; i++) CHECK(fabs(d32[i] - dist[i]) < 1e-6, "distance %zu", i);
    r32.struct_size = sizeof r32;
    OK(transface_verify_embeddings(e32, NULL, same, pairs, 32, NULL, &r32));
    CHECK(memcmp(r32.fold_accuracy, r.fold_accuracy, 10 * sizeof(double)) == 0, "float32 embeddings: same folds");

    /* interleaved folds */
    p.interleaved = 1;
    OK(transface_verify_distances(dist, same, pairs, &p, &r));
    CHECK(r.accuracy_mean > 0.95, "interleaved accuracy %g", r.accuracy_mean);

    /* errors */
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_verify_distances(NULL, same, pairs, NULL, &r));
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_verify_distances(dist, same, pairs, NULL, NULL));
    p.folds = 0;
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_verify_distances(dist, same, pairs, &p, &r));
    p.folds = TRANSFACE_MAX_FOLDS + 1;
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_verify_distances(dist, same, pairs, &p, &r));
    p = transface_verify_default_params();
    p.struct_size = 4;
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_verify_distances(dist, same, pairs, &p, &r));
    r.struct_size = 4;
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_verify_distances(dist, same, pairs, NULL, &r));
    r.struct_size = sizeof r;
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_verify_distances(dist, same, 5, NULL, &r)); /* 10 folds > 5 pairs */
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_verify_roc(dist, same, pairs, NULL, th, tpr, fpr, 399));
    e32[5] = NAN;
    ERR(TRANSFACE_NUMERIC, transface_verify_embeddings(e32, NULL, same, pairs, 32, NULL, &r));
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_bin(NULL, "x.bin", NULL, &r));
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_evaluate_pairs(NULL, "p.tsv", ".", NULL, NULL, &r));
    free(e32);
    free(dist); free(same); free(emb); free(acc); free(std); free(best); free(tpr_ref); free(fpr_ref);
}

static void roc(void) {
    /* scores 0.9 (+), 0.8 (-), 0.7 (+), 0.6 (-), 0.5 (+), 0.4 (-) */
    const double scores[6] = {0.9, 0.8, 0.7, 0.6, 0.5, 0.4};
    const uint8_t labels[6] = {1, 0, 1, 0, 1, 0};
    const double fars[3] = {0.0, 0.3, 1.0};
    double fpr[8], tpr[8], th[8], tar[3], tth[3];
    size_t points = 0;
    OK(transface_roc_curve(scores, labels, 6, NULL, NULL, NULL, 0, &points));
    CHECK(points == 7, "points %zu", points);
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_roc_curve(scores, labels, 6, fpr, tpr, th, 3, &points));
    OK(transface_roc_curve(scores, labels, 6, fpr, tpr, th, 8, &points));
    CHECK(isinf(th[0]) && th[1] == 0.9 && fpr[0] == 0 && tpr[1] == 1.0 / 3 && fpr[6] == 1 && tpr[6] == 1, "curve");
    OK(transface_tar_at_far(scores, labels, 6, fars, 3, tar, tth));
    /* FAR 0: the points (0,0) and (0,1/3): the larger TPR; 0.3: fpr 1/3 is closest -> tpr 2/3 */
    CHECK(tar[0] == 1.0 / 3 && tth[0] == 0.9, "tar@0 = %g (threshold %g)", tar[0], tth[0]);
    CHECK(tar[1] == 2.0 / 3 && tth[1] == 0.7, "tar@0.3 = %g", tar[1]);
    CHECK(tar[2] == 1.0, "tar@1 = %g", tar[2]);
    OK(transface_tar_at_far(scores, labels, 6, fars, 3, tar, NULL));
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_tar_at_far(scores, labels, 0, fars, 3, tar, NULL));
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_tar_at_far(scores, labels, 6, fars, 3, NULL, NULL));
}

static void bins(const char *dir) {
    char path[4096], bad[4096];
    unsigned char a[300], b[2] = {0xff, 0xd8};
    const uint8_t *images[6];
    size_t sizes[6] = {300, 2, 0, 300, 2, 1};
    const uint8_t same[3] = {1, 0, 1};
    uint8_t got[3];
    transface_bin *bin = NULL;
    const uint8_t *data;
    size_t size, i;
    int proto;
    for (i = 0; i < sizeof a; i++) a[i] = (unsigned char)(i * 37);
    images[0] = a; images[1] = b; images[2] = NULL; images[3] = a; images[4] = b; images[5] = a;
    for (proto = 2; proto <= 5; proto++) {
        snprintf(path, sizeof path, "%s/set%d.bin", dir, proto);
        OK(transface_bin_write(path, images, sizes, same, 3, proto));
        OK(transface_bin_open(path, &bin));
        CHECK(transface_bin_pair_count(bin) == 3, "pairs");
        for (i = 0; i < 6; i++) {
            OK(transface_bin_image(bin, i, &data, &size));
            CHECK(size == sizes[i] && (size == 0 || memcmp(data, images[i], size) == 0), "image %zu, protocol %d", i, proto);
        }
        OK(transface_bin_issame(bin, got, 3));
        CHECK(memcmp(got, same, 3) == 0, "issame");
        ERR(TRANSFACE_INVALID_ARGUMENT, transface_bin_image(bin, 6, &data, &size));
        ERR(TRANSFACE_INVALID_ARGUMENT, transface_bin_issame(bin, got, 2));
        transface_bin_close(bin);
        bin = NULL;
    }
    transface_bin_close(NULL);
    CHECK(transface_bin_pair_count(NULL) == 0, "NULL bin");
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_bin_write(path, images, sizes, same, 3, 1));
    images[0] = NULL;
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_bin_write(path, images, sizes, same, 3, 4));
    snprintf(bad, sizeof bad, "%s/evil.bin", dir);
    write_file(bad, "\x80\x02" "cos\nsystem\n" "U\x04" "echo" "\x85R.", 22);
    ERR(TRANSFACE_FORMAT, transface_bin_open(bad, &bin));
    CHECK(bin == NULL, "no handle on failure");
    CHECK(strstr(transface_last_error(), "os.system") != NULL, "names the global");
    snprintf(bad, sizeof bad, "%s/missing.bin", dir);
    ERR(TRANSFACE_IO, transface_bin_open(bad, &bin));
}

static void recordio(const char *dir) {
    char path[4096], src[1024], out[1024];
    const char *people[2] = {"bob", "alice"};
    transface_recordio *rec = NULL;
    transface_pack_params pp = transface_pack_default_params();
    unsigned char img[64];
    int32_t label = -1;
    size_t n = 0, size = 0;
    int i, k, layout;
    snprintf(src, sizeof src, "%s/faces", dir);
    mkdir(src, 0755);
    for (i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", src, people[i]);
        mkdir(path, 0755);
        for (k = 0; k < 3; k++) {
            char text[32];
            snprintf(path, sizeof path, "%s/%s/%d.jpg", src, people[i], k);
            snprintf(text, sizeof text, "%s-%d", people[i], k);
            write_file(path, text, strlen(text));
        }
    }
    CHECK(pp.struct_size == sizeof pp && pp.layout == TRANSFACE_RECORDIO_FLAT && pp.image_width == 112, "pack defaults");
    for (layout = 0; layout < 2; layout++) {
        pp.layout = layout;
        snprintf(out, sizeof out, "%s/rec%d", dir, layout);
        OK(transface_recordio_pack(src, NULL, out, &pp, &n));
        CHECK(n == 6, "packed %zu", n);
        OK(transface_recordio_open(out, &rec));
        CHECK(transface_recordio_count(rec) == 6 && transface_recordio_num_classes(rec) == 2, "count, classes");
        OK(transface_recordio_read(rec, 4, &label, NULL, 0, &size));
        CHECK(size == 5, "size %zu", size); /* "bob-1": alice is label 0, bob label 1 */
        ERR(TRANSFACE_INVALID_ARGUMENT, transface_recordio_read(rec, 4, &label, img, 4, &size));
        OK(transface_recordio_read(rec, 4, &label, img, sizeof img, &size));
        CHECK(label == 1 && memcmp(img, "bob-1", 5) == 0, "image 4: label %d", (int)label);
        ERR(TRANSFACE_INVALID_ARGUMENT, transface_recordio_read(rec, 6, &label, img, sizeof img, &size));
        transface_recordio_close(rec);
        rec = NULL;
    }
    transface_recordio_close(NULL);
    CHECK(transface_recordio_count(NULL) == 0, "NULL recordio");
    pp.layout = 7;
    ERR(TRANSFACE_INVALID_ARGUMENT, transface_recordio_pack(src, NULL, out, &pp, NULL));
    snprintf(path, sizeof path, "%s/list.tsv", dir);
    write_file(path, "../faces/bob/0.jpg\t0\n", 21);
    ERR(TRANSFACE_FORMAT, transface_recordio_pack(path, src, out, NULL, NULL));
    snprintf(path, sizeof path, "%s/rec0/train.rec", dir);
    write_file(path, "garbage!", 8);
    ERR(TRANSFACE_FORMAT, transface_recordio_open(path, &rec));
    ERR(TRANSFACE_IO, transface_recordio_open("/nonexistent/train.rec", &rec));
}

int main(int argc, char **argv) {
    char dir[] = "/tmp/transface-c-data-XXXXXX";
    char cmd[4200];
    if (argc < 2) {
        fprintf(stderr, "usage: test_data_eval SHARED_DIR\n");
        return 2;
    }
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    verification(argv[1]);
    roc();
    bins(dir);
    recordio(dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    printf("test_data_eval: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
