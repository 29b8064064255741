/*
 * Parity of libtransface with the official PyTorch TransFace, on the reference data set
 * written by the reference generator (e.g. /work/shared/reference/tiny):
 *
 *   test_parity MODEL.tfm REFDIR                      a model converted from REFDIR/param
 *   test_parity --from-reference REFDIR [--save OUT]  build the model here from REFDIR/param/<name>.npy
 *   options: --threads N (default 1)
 *
 * Embeds REFDIR/input/u8_hwc.npy with TRANSFACE_EMBED_NO_NORMALIZE and compares with
 * eval/embedding.npy, eval/se_weight_softmax.npy and eval/patch_std.npy: every element must be
 * within 1e-6 + 1e-4 * max|ref|. Prints the errors and "N passed, M failed".
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transface.h"

/* ------------------------------------------------------------------ .npy reader */

/* A C-order little-endian array: float32 ('f') or uint8 ('u'). */
typedef struct npy {
    char kind;
    int ndim;
    int64_t dims[8];
    size_t count;
    void *data;
} npy;

static char npy_error[2048];

static int npy_fail(const char *path, const char *what) {
    snprintf(npy_error, sizeof npy_error, "%s: %s", path, what);
    return 0;
}

/* Reads a version 1, 2 or 3 .npy file; validates magic, header, dtype, order and size. */
static int npy_load(const char *path, npy *out) {
    FILE *f = fopen(path, "rb");
    unsigned char *file = NULL;
    const char *p, *end;
    char header[4096];
    size_t size, start, hlen, item, i;
    long fsize;
    memset(out, 0, sizeof *out);
    if (!f) return npy_fail(path, "cannot open");
    if (fseek(f, 0, SEEK_END) != 0 || (fsize = ftell(f)) < 0) { fclose(f); return npy_fail(path, "cannot seek"); }
    size = (size_t)fsize;
    rewind(f);
    file = malloc(size ? size : 1);
    if (!file || fread(file, 1, size, f) != size) { fclose(f); free(file); return npy_fail(path, "cannot read"); }
    fclose(f);

    if (size < 10 || memcmp(file, "\x93NUMPY", 6) != 0) { free(file); return npy_fail(path, "not a .npy file (magic)"); }
    if (file[6] == 1) { hlen = file[8] | (size_t)file[9] << 8; start = 10; }
    else if ((file[6] == 2 || file[6] == 3) && size >= 12) {
        hlen = file[8] | (size_t)file[9] << 8 | (size_t)file[10] << 16 | (size_t)file[11] << 24;
        start = 12;
    } else { free(file); return npy_fail(path, "unsupported .npy version"); }
    if (hlen >= sizeof header || start + hlen > size || hlen == 0 || file[start + hlen - 1] != '\n') {
        free(file);
        return npy_fail(path, "bad header length");
    }
    memcpy(header, file + start, hlen);
    header[hlen] = 0;
    if (header[0] != '{') { free(file); return npy_fail(path, "header is not a dict"); }

    if (strstr(header, "'descr': '<f4'")) { out->kind = 'f'; item = 4; }
    else if (strstr(header, "'descr': '|u1'") || strstr(header, "'descr': '<u1'")) { out->kind = 'u'; item = 1; }
    else { free(file); return npy_fail(path, "dtype is not little-endian float32 or uint8"); }
    if (!strstr(header, "'fortran_order': False")) { free(file); return npy_fail(path, "not C order"); }
    p = strstr(header, "'shape': (");
    if (!p) { free(file); return npy_fail(path, "no shape"); }
    p += strlen("'shape': (");
    end = strchr(p, ')');
    if (!end) { free(file); return npy_fail(path, "bad shape"); }
    out->count = 1;
    while (p < end) {
        char *next;
        long long d;
        while (*p == ' ' || *p == ',') p++;
        if (p >= end) break;
        d = strtoll(p, &next, 10);
        if (next == p || d < 0 || out->ndim == 8) { free(file); return npy_fail(path, "bad shape"); }
        if (d > 0 && out->count > SIZE_MAX / 8 / (size_t)d) { free(file); return npy_fail(path, "shape overflows"); }
        out->dims[out->ndim++] = d;
        out->count *= (size_t)d;
        p = next;
    }
    if (size - start - hlen != out->count * item) { free(file); return npy_fail(path, "data size does not match the shape"); }
    out->data = malloc(out->count * item + 1);
    if (!out->data) { free(file); return npy_fail(path, "out of memory"); }
    memcpy(out->data, file + start + hlen, out->count * item);
    if (out->kind == 'f') {  /* data is little-endian: swap on big-endian hosts */
        const uint16_t probe = 1;
        if (*(const unsigned char *)&probe == 0) {
            unsigned char *b = out->data;
            for (i = 0; i < out->count; i++) {
                unsigned char t = b[4 * i]; b[4 * i] = b[4 * i + 3]; b[4 * i + 3] = t;
                t = b[4 * i + 1]; b[4 * i + 1] = b[4 * i + 2]; b[4 * i + 2] = t;
            }
        }
    }
    free(file);
    return 1;
}

static int npy_load_as(const char *dir, const char *name, char kind, int ndim, npy *out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!npy_load(path, out)) return 0;
    if (out->kind != kind || out->ndim != ndim) {
        free(out->data);
        out->data = NULL;
        return npy_fail(path, kind == 'f' ? "expected a float32 array of another rank" : "expected a uint8 array of another rank");
    }
    return 1;
}

/* ------------------------------------------------------------------ building the model from param/ */

#define TRY(call) do { if ((call) != TRANSFACE_OK) { \
    fprintf(stderr, "%s: %s\n", #call, transface_last_error()); goto fail; } } while (0)

static int read_num_heads(const char *dir) {
    char path[1024], text[8192];
    const char *p;
    size_t n;
    FILE *f;
    snprintf(path, sizeof path, "%s/meta.json", dir);
    if (!(f = fopen(path, "rb"))) return 0;
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    p = strstr(text, "\"num_heads\"");
    if (!p || !(p = strchr(p, ':'))) return 0;
    return atoi(p + 1);
}

static transface_model *model_from_reference(const char *dir, const char *save_path, int img_size) {
    transface_config c;
    transface_builder *b = NULL;
    transface_model *m = NULL;
    npy a;
    char name[1200], path[1024];
    size_t i, n;
    DIR *d;
    struct dirent *e;

    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    snprintf(c.arch, sizeof c.arch, "reference");
    c.img_size = img_size;
    c.num_heads = read_num_heads(dir);
    snprintf(path, sizeof path, "%s/param", dir);
    if (!npy_load_as(path, "pos_embed.npy", 'f', 3, &a)) { fprintf(stderr, "%s\n", npy_error); return NULL; }
    c.embed_dim = (int32_t)a.dims[2];
    free(a.data);
    if (!npy_load_as(path, "patch_embed.proj.weight.npy", 'f', 4, &a)) { fprintf(stderr, "%s\n", npy_error); return NULL; }
    c.in_channels = (int32_t)a.dims[1];
    c.patch_size = (int32_t)a.dims[2];
    free(a.data);
    if (!npy_load_as(path, "blocks.0.mlp.fc1.weight.npy", 'f', 2, &a)) { fprintf(stderr, "%s\n", npy_error); return NULL; }
    c.mlp_hidden_dim = (int32_t)a.dims[0];
    free(a.data);
    if (!npy_load_as(path, "feature.3.weight.npy", 'f', 1, &a)) { fprintf(stderr, "%s\n", npy_error); return NULL; }
    c.embedding_size = (int32_t)a.dims[0];
    free(a.data);
    for (c.depth = 0;; c.depth++) {
        FILE *f;
        snprintf(name, sizeof name, "%s/blocks.%d.norm1.weight.npy", path, c.depth);
        if (!(f = fopen(name, "rb"))) break;
        fclose(f);
    }
    printf("config from %s: img %d patch %d channels %d embed %d depth %d heads %d mlp %d embedding %d\n", path,
           c.img_size, c.patch_size, c.in_channels, c.embed_dim, c.depth, c.num_heads, c.mlp_hidden_dim, c.embedding_size);

    TRY(transface_builder_create(&c, &b));
    n = transface_builder_tensor_count(b);
    for (i = 0; i < n; i++) {
        transface_tensor_info ti;
        int k, same;
        memset(&ti, 0, sizeof ti);
        ti.struct_size = sizeof ti;
        TRY(transface_builder_tensor_info(b, i, &ti));
        snprintf(name, sizeof name, "%s.npy", ti.name);
        if (!npy_load_as(path, name, 'f', ti.ndim, &a)) { fprintf(stderr, "%s\n", npy_error); goto fail; }
        for (same = 1, k = 0; k < ti.ndim; k++) same &= a.dims[k] == ti.dims[k];
        if (!same) { fprintf(stderr, "%s/%s: shape differs from the architecture's\n", path, name); free(a.data); goto fail; }
        if (transface_builder_set_tensor(b, ti.name, a.data, TRANSFACE_DTYPE_F32, a.dims, a.ndim) != TRANSFACE_OK) {
            fprintf(stderr, "set_tensor %s: %s\n", ti.name, transface_last_error());
            free(a.data);
            goto fail;
        }
        free(a.data);
    }
    /* say what the reference holds that a model does not (training state) */
    if ((d = opendir(path)) != NULL) {
        printf("not part of the model:");
        while ((e = readdir(d)) != NULL) {
            size_t len = strlen(e->d_name), found = 0;
            if (len < 5 || strcmp(e->d_name + len - 4, ".npy") != 0) continue;
            for (i = 0; i < n && !found; i++) {
                transface_tensor_info ti = { .struct_size = sizeof ti };
                transface_builder_tensor_info(b, i, &ti);
                found = strlen(ti.name) == len - 4 && strncmp(ti.name, e->d_name, len - 4) == 0;
            }
            if (!found) printf(" %.*s", (int)(len - 4), e->d_name);
        }
        printf("\n");
        closedir(d);
    }
    TRY(transface_builder_set_metadata(b, "source", dir));
    if (save_path) {
        TRY(transface_builder_save(b, save_path));
        TRY(transface_model_load(save_path, NULL, &m));
        printf("saved and reloaded %s\n", save_path);
    } else {
        TRY(transface_builder_build(b, &m));
    }
    transface_builder_free(b);
    return m;
fail:
    transface_builder_free(b);
    return NULL;
}

/* ------------------------------------------------------------------ comparison */

static int passed, failed;

static void compare(const char *what, const float *got, const npy *ref, size_t rows, size_t cols) {
    double max_ref = 0, max_err = 0, tol;
    size_t i, worst = 0;
    int ok;
    if (ref->ndim != 2 || (size_t)ref->dims[0] != rows || (size_t)ref->dims[1] != cols) {
        printf("FAIL %-14s reference shape is not (%zu, %zu)\n", what, rows, cols);
        failed++;
        return;
    }
    const float *r = ref->data;
    for (i = 0; i < rows * cols; i++) if (fabs(r[i]) > max_ref) max_ref = fabs(r[i]);
    for (i = 0; i < rows * cols; i++) {
        double e = fabs((double)got[i] - r[i]);
        if (!(e <= max_err)) { max_err = e; worst = i; }
    }
    tol = 1e-6 + 1e-4 * max_ref;
    ok = max_err <= tol;
    printf("%s %-14s (%zu x %zu): max |err| %.3g at [%zu][%zu] (%.9g vs %.9g), max |ref| %.4g, "
           "max rel err %.3g (tolerance %.3g)\n", ok ? "ok  " : "FAIL", what, rows, cols, max_err, worst / cols,
           worst % cols, got[worst], r[worst], max_ref, max_ref > 0 ? max_err / max_ref : max_err, tol);
    if (ok) passed++; else failed++;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *dir = NULL, *save = NULL;
    int from_reference = 0, threads = 1, a;
    transface_model *m = NULL;
    transface_context *ctx = NULL;
    transface_context_params cp = transface_context_default_params();
    transface_config config = { .struct_size = sizeof config };
    npy input, emb_ref, pw_ref, ps_ref;
    float *emb = NULL, *pw = NULL, *ps = NULL;
    size_t n, e, p, i;
    char eval[1024];

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--from-reference") == 0 && a + 1 < argc) { from_reference = 1; dir = argv[++a]; }
        else if (strcmp(argv[a], "--save") == 0 && a + 1 < argc) save = argv[++a];
        else if (strcmp(argv[a], "--threads") == 0 && a + 1 < argc) threads = atoi(argv[++a]);
        else if (!model_path && !from_reference) model_path = argv[a];
        else if (!dir) dir = argv[a];
        else { model_path = NULL; dir = NULL; break; }
    }
    if (!dir || (!from_reference && !model_path)) {
        fprintf(stderr, "usage: %s MODEL.tfm REFDIR\n       %s --from-reference REFDIR [--save OUT.tfm]\n"
                        "options: --threads N\n", argv[0], argv[0]);
        return 2;
    }
    if (!npy_load_as(dir, "input/u8_hwc.npy", 'u', 4, &input) || input.dims[3] != 3) {
        fprintf(stderr, "%s\n", npy_error[0] ? npy_error : "input/u8_hwc.npy is not N x H x W x 3");
        return 1;
    }
    if (from_reference) m = model_from_reference(dir, save, (int)input.dims[1]);
    else if (transface_model_load(model_path, NULL, &m) != TRANSFACE_OK) fprintf(stderr, "%s\n", transface_last_error());
    if (!m) { free(input.data); return 1; }

    n = (size_t)input.dims[0];
    e = (size_t)transface_model_embedding_size(m);
    if (transface_model_get_config(m, &config) != TRANSFACE_OK) { fprintf(stderr, "%s\n", transface_last_error()); return 1; }
    p = (size_t)(config.img_size / config.patch_size) * (size_t)(config.img_size / config.patch_size);
    snprintf(eval, sizeof eval, "%s/eval", dir);
    if (!npy_load_as(eval, "embedding.npy", 'f', 2, &emb_ref) || !npy_load_as(eval, "se_weight_softmax.npy", 'f', 2, &pw_ref) ||
        !npy_load_as(eval, "patch_std.npy", 'f', 2, &ps_ref)) {
        fprintf(stderr, "%s\n", npy_error);
        return 1;
    }
    emb = malloc(n * e * sizeof *emb);
    pw = malloc(n * p * sizeof *pw);
    ps = malloc(n * p * sizeof *ps);
    cp.num_threads = threads;
    if (!emb || !pw || !ps) return 1;
    if (transface_context_create(m, &cp, &ctx) != TRANSFACE_OK ||
        transface_embed_with_patches(ctx, input.data, n, (int32_t)input.dims[2], (int32_t)input.dims[1],
                                     TRANSFACE_EMBED_NO_NORMALIZE, emb, n * e, pw, n * p, ps, n * p) != TRANSFACE_OK) {
        fprintf(stderr, "%s\n", transface_last_error());
        failed++;
    } else {
        printf("%zu images, embedding %zu, %zu patches, %d thread(s)\n", n, e, p, threads);
        for (i = 0; i < n && emb_ref.ndim == 2 && (size_t)emb_ref.dims[0] == n && (size_t)emb_ref.dims[1] == e; i++) {
            float cosine = 0;
            if (transface_compare(emb + i * e, (const float *)emb_ref.data + i * e, e, &cosine) == TRANSFACE_OK)
                printf("     image %zu: cosine with the reference embedding %.9f\n", i, cosine);
        }
        compare("embedding", emb, &emb_ref, n, e);
        compare("patch weights", pw, &pw_ref, n, p);
        compare("patch std", ps, &ps_ref, n, p);
    }
    transface_context_free(ctx);
    transface_model_free(m);
    free(input.data); free(emb_ref.data); free(pw_ref.data); free(ps_ref.data);
    free(emb); free(pw); free(ps);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
