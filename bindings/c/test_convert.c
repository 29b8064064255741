/*
 * C test of transface_convert_state_dict and transface_convert_infer_config: a state_dict
 * written here as an .npz (a stored zip of .npy arrays, made from a builder's initialised
 * weights) converts to a model with exactly those tensors, the options and metadata given,
 * and the notes reported; NULLs, bad params (struct_size rules of transface_convert_params,
 * params_init), contradicting options, missing, empty, garbage and truncated files and an
 * unwritable output all fail with a status and a message, never crash, and write no output.
 *
 *   test_convert     prints failures and "N passed, M failed" (temporary files in $TMPDIR or /tmp)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

enum { DIM = 16, DEPTH = 2, HEADS = 2, MLP = 32, EMB = 8, MAX_TENSORS = 64 };

static char tmpdir[256];

static const char *path_in(char *buf, const char *name) {
    snprintf(buf, 512, "%s/%s", tmpdir, name);
    return buf;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static transface_config tiny_config(void) {
    transface_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    strcpy(c.arch, "custom");
    c.img_size = 112; c.patch_size = 9; c.in_channels = 3; c.embed_dim = DIM; c.depth = DEPTH;
    c.num_heads = HEADS; c.mlp_hidden_dim = MLP; c.embedding_size = EMB;
    return c;
}

/* ------------------------------------------------------------------ a stored zip of .npy arrays */

static uint32_t crc32_of(const uint8_t *p, size_t n, uint32_t crc) {
    size_t i;
    int k;
    crc = ~crc;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        for (k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

typedef struct { uint8_t *data; size_t size, cap; } bytes;

static void put(bytes *b, const void *p, size_t n) {
    if (b->size + n > b->cap) {
        b->cap = (b->size + n) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data) abort();
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}
static void put16(bytes *b, uint32_t v) { uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; put(b, x, 2); }
static void put32(bytes *b, uint32_t v) { put16(b, v & 0xFFFF); put16(b, v >> 16); }

/* One .npy (format 1.0, little-endian float32) of the given shape. */
static void npy(bytes *out, const float *values, const int64_t *dims, int ndim) {
    char header[256], shape[128] = "(";
    size_t count = 1, len;
    int i;
    for (i = 0; i < ndim; i++) {
        char d[32];
        snprintf(d, sizeof d, "%lld%s", (long long)dims[i], ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
        strcat(shape, d);
        count *= (size_t)dims[i];
    }
    strcat(shape, ")");
    snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    len = strlen(header);
    while ((10 + len + 1) % 64) header[len++] = ' ';
    header[len++] = '\n';
    put(out, "\x93NUMPY\x01\x00", 8);
    put16(out, (uint32_t)len);
    put(out, header, len);
    put(out, values, count * sizeof(float));
}

typedef struct { bytes file, central; uint32_t entries; } zipfile;

static void zip_add(zipfile *z, const char *name, const bytes *data) {
    uint32_t crc = crc32_of(data->data, data->size, 0), offset = (uint32_t)z->file.size;
    uint16_t n = (uint16_t)strlen(name);
    put32(&z->file, 0x04034b50); put16(&z->file, 20); put16(&z->file, 0); put16(&z->file, 0);
    put16(&z->file, 0); put16(&z->file, 0x21); put32(&z->file, crc);
    put32(&z->file, (uint32_t)data->size); put32(&z->file, (uint32_t)data->size);
    put16(&z->file, n); put16(&z->file, 0); put(&z->file, name, n);
    put(&z->file, data->data, data->size);
    put32(&z->central, 0x02014b50); put16(&z->central, 20); put16(&z->central, 20); put16(&z->central, 0);
    put16(&z->central, 0); put16(&z->central, 0); put16(&z->central, 0x21); put32(&z->central, crc);
    put32(&z->central, (uint32_t)data->size); put32(&z->central, (uint32_t)data->size);
    put16(&z->central, n); put16(&z->central, 0); put16(&z->central, 0); put16(&z->central, 0);
    put16(&z->central, 0); put32(&z->central, 0); put32(&z->central, offset); put(&z->central, name, n);
    z->entries++;
}

static void zip_finish(zipfile *z) {
    uint32_t offset = (uint32_t)z->file.size, size = (uint32_t)z->central.size;
    put(&z->file, z->central.data, z->central.size);
    put32(&z->file, 0x06054b50); put16(&z->file, 0); put16(&z->file, 0);
    put16(&z->file, z->entries); put16(&z->file, z->entries); put32(&z->file, size);
    put32(&z->file, offset); put16(&z->file, 0);
}

static void write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) { perror(path); exit(2); }
}

/* The tensors of a model with initialised weights, as an official state_dict .npz (plus a
 * num_batches_tracked the converter skips). Returns the npz bytes; *out_model is the model. */
static bytes make_npz(transface_model **out_model) {
    transface_config c = tiny_config();
    transface_builder *b = NULL;
    zipfile z;
    size_t i, n;
    memset(&z, 0, sizeof z);
    OK(transface_builder_create(&c, &b));
    OK(transface_builder_init_weights(b, 7));
    OK(transface_builder_build(b, out_model));
    transface_builder_free(b);
    n = transface_model_tensor_count(*out_model);
    for (i = 0; i < n; i++) {
        transface_tensor_info info;
        bytes one = {0};
        char name[256];
        float *values;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        OK(transface_model_tensor_info(*out_model, i, &info));
        values = malloc(info.count * sizeof *values);
        OK(transface_model_read_tensor(*out_model, info.name, values, info.count));
        npy(&one, values, info.dims, info.ndim);
        snprintf(name, sizeof name, "%s.npy", info.name);
        zip_add(&z, name, &one);
        free(values);
        free(one.data);
    }
    {
        bytes one = {0};
        float zero = 0;
        int64_t d = 1;
        npy(&one, &zero, &d, 1);
        zip_add(&z, "feature.1.num_batches_tracked.npy", &one);
        free(one.data);
    }
    zip_finish(&z);
    free(z.central.data);
    return z.file;
}

/* ------------------------------------------------------------------ tests */

typedef struct { int count; char last[512]; int saw_skip; } notes;

static void on_note(void *user, const char *line) {
    notes *n = user;
    n->count++;
    snprintf(n->last, sizeof n->last, "%s", line);
    if (strstr(line, "num_batches_tracked")) n->saw_skip = 1;
}

static void same_tensors(const transface_model *a, const transface_model *b) {
    size_t i, n = transface_model_tensor_count(a);
    CHECK(n == transface_model_tensor_count(b), "tensor counts %zu, %zu", n, transface_model_tensor_count(b));
    for (i = 0; i < n; i++) {
        transface_tensor_info info;
        float *x, *y;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        OK(transface_model_tensor_info(a, i, &info));
        x = malloc(info.count * sizeof *x);
        y = malloc(info.count * sizeof *y);
        OK(transface_model_read_tensor(a, info.name, x, info.count));
        OK(transface_model_read_tensor(b, info.name, y, info.count));
        CHECK(memcmp(x, y, info.count * sizeof *x) == 0, "tensor %s differs", info.name);
        free(x);
        free(y);
    }
}

static void test_convert(const char *npz, const transface_model *original) {
    char out[512], path[512];
    const char *pairs[] = {"license", "test", "note", "a=b"};
    transface_convert_params p;
    transface_config got;
    transface_model *m = NULL;
    const char *value = NULL;
    notes n;
    memset(&n, 0, sizeof n);
    OK(transface_convert_params_init(&p, sizeof p));
    CHECK(p.struct_size == sizeof p && p.num_heads == 0 && p.arch == NULL && p.note == NULL, "params_init defaults");
    p.num_heads = HEADS;
    p.metadata = pairs;
    p.metadata_count = 2;
    p.note = on_note;
    p.user_data = &n;
    memset(&got, 0, sizeof got);
    got.struct_size = sizeof got;
    path_in(out, "converted.tfm");
    EXPECT(TRANSFACE_OK, transface_convert_state_dict(npz, &p, out, &got));
    CHECK(got.struct_size == sizeof got && got.embed_dim == DIM && got.depth == DEPTH && got.num_heads == HEADS &&
          got.mlp_hidden_dim == MLP && got.embedding_size == EMB && got.img_size == 112 && got.patch_size == 9 &&
          strcmp(got.arch, "custom") == 0, "out_config: %s dim %d depth %d heads %d", got.arch, got.embed_dim, got.depth,
          got.num_heads);
    CHECK(n.count >= 2 && n.saw_skip && strstr(n.last, "num_heads 2 from --num-heads"), "notes: %d, last '%s'", n.count, n.last);
    OK(transface_model_load(out, NULL, &m));
    if (m) {
        same_tensors(original, m);
        OK(transface_model_metadata_get(m, "license", &value));
        CHECK(value && strcmp(value, "test") == 0, "license metadata");
        OK(transface_model_metadata_get(m, "note", &value));
        CHECK(value && strcmp(value, "a=b") == 0, "note metadata");
        OK(transface_model_metadata_get(m, "source", &value));
        CHECK(value && strcmp(value, "state_dict.npz") == 0, "source metadata %s", value ? value : "(NULL)");
        OK(transface_model_metadata_get(m, "num_heads_from", &value));
        CHECK(value && strcmp(value, "--num-heads") == 0, "num_heads_from");
        transface_model_free(m);
    }
    /* NULL params and out_config: defaults (8 heads, which divide 16) */
    EXPECT(TRANSFACE_OK, transface_convert_state_dict(npz, NULL, path_in(path, "defaults.tfm"), NULL));
    m = NULL;
    OK(transface_model_load(path, NULL, &m));
    if (m) {
        transface_config c;
        memset(&c, 0, sizeof c);
        c.struct_size = sizeof c;
        OK(transface_model_get_config(m, &c));
        CHECK(c.num_heads == 8, "default heads %d", c.num_heads);
        OK(transface_model_metadata_get(m, "num_heads_from", &value));
        CHECK(value && strcmp(value, "default (8)") == 0, "num_heads_from default");
        transface_model_free(m);
    }
    /* the by-value getter equals params_init */
    {
        transface_convert_params d = transface_convert_default_params(), q;
        memset(&q, 0xAB, sizeof q);
        OK(transface_convert_params_init(&q, sizeof q));
        CHECK(memcmp(&d, &q, sizeof d) == 0, "default_params != params_init");
    }
}

static void test_bad_arguments_and_params(const char *npz) {
    char out[512];
    const char *null_key[] = {NULL, "v"}, *empty_key[] = {"", "v"};
    transface_convert_params p;
    transface_config got;
    unsigned char big[sizeof p + 16];
    path_in(out, "never.tfm");
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(NULL, NULL, out, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, NULL, NULL, NULL));
    /* out_config with a bad struct_size is refused before anything is written */
    memset(&got, 0, sizeof got);
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, NULL, out, &got));
    /* struct_size rules */
    OK(transface_convert_params_init(&p, sizeof p));
    p.struct_size = 0;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, &p, out, NULL));
    p.struct_size = sizeof p - 1;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, &p, out, NULL));
    CHECK(strstr(transface_last_error(), "transface_convert_params") != NULL, "message names the struct: %s",
          transface_last_error());
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_params_init(NULL, sizeof p));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_params_init(&p, sizeof p - 8));
    /* a newer caller's larger struct: accepted with a zero tail (params_init zeroes it), refused with a set byte */
    memset(big, 0xCD, sizeof big);
    OK(transface_convert_params_init((transface_convert_params *)(void *)big, sizeof big));
    CHECK(big[sizeof p] == 0 && big[sizeof big - 1] == 0, "params_init zeroes the tail");
    ((transface_convert_params *)(void *)big)->num_heads = HEADS;
    EXPECT(TRANSFACE_OK, transface_convert_state_dict(npz, (transface_convert_params *)(void *)big, out, NULL));
    remove(out);
    big[sizeof p + 3] = 1;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, (transface_convert_params *)(void *)big, out, NULL));
    /* options that contradict the tensors, and bad metadata */
    OK(transface_convert_params_init(&p, sizeof p));
    p.num_heads = 7;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, &p, out, NULL));
    p.num_heads = -2;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, &p, out, NULL));
    OK(transface_convert_params_init(&p, sizeof p));
    p.embedding_size = 512;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, &p, out, NULL));
    OK(transface_convert_params_init(&p, sizeof p));
    p.img_size = 50;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, &p, out, NULL));
    OK(transface_convert_params_init(&p, sizeof p));
    p.arch = "vit_t";
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, &p, out, NULL));
    p.arch = "vit_nope";
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, &p, out, NULL));
    OK(transface_convert_params_init(&p, sizeof p));
    p.metadata_count = 1;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, &p, out, NULL));
    p.metadata = null_key;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, &p, out, NULL));
    p.metadata = empty_key;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(npz, &p, out, NULL));
    CHECK(!exists(out), "a refused conversion wrote %s", out);
    /* an output that cannot be written */
    EXPECT(TRANSFACE_IO, transface_convert_state_dict(npz, NULL, "/nonexistent-folder-7f3a/x.tfm", NULL));
}

static void test_bad_files(const bytes *npz) {
    char src[512], out[512];
    size_t cuts[] = {0, 1, 4, 22, 30, 100, 0, 0, 0, 0}, i, ncuts = 6;
    uint8_t garbage[1000];
    path_in(out, "never.tfm");
    EXPECT(TRANSFACE_NOT_FOUND, transface_convert_state_dict(path_in(src, "absent.npz"), NULL, out, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_state_dict(tmpdir, NULL, out, NULL));
    write_file(path_in(src, "empty.pt"), "", 0);
    EXPECT(TRANSFACE_FORMAT, transface_convert_state_dict(src, NULL, out, NULL));
    for (i = 0; i < sizeof garbage; i++) garbage[i] = (uint8_t)(i * 37 + 11) == 0x80 ? 0 : (uint8_t)(i * 37 + 11);
    garbage[0] = 'x';
    write_file(path_in(src, "garbage.bin"), garbage, sizeof garbage);
    EXPECT(TRANSFACE_FORMAT, transface_convert_state_dict(src, NULL, out, NULL));
    CHECK(strstr(transface_last_error(), "neither") != NULL, "garbage: %s", transface_last_error());
    write_file(path_in(src, "legacy.pt"), "\x80\x02\x8a\x0alegacy", 10);
    EXPECT(TRANSFACE_FORMAT, transface_convert_state_dict(src, NULL, out, NULL));
    CHECK(strstr(transface_last_error(), "legacy") != NULL, "legacy: %s", transface_last_error());
    /* truncated archives: every cut fails cleanly (no central directory, or entries cut short) */
    cuts[ncuts++] = npz->size / 3;
    cuts[ncuts++] = npz->size / 2;
    cuts[ncuts++] = npz->size - 23;
    cuts[ncuts++] = npz->size - 1;
    for (i = 0; i < ncuts; i++) {
        transface_status s;
        write_file(path_in(src, "truncated.npz"), npz->data, cuts[i]);
        s = transface_convert_state_dict(src, NULL, out, NULL);
        CHECK(s != TRANSFACE_OK && transface_last_error()[0], "truncated at %zu: status %d", cuts[i], (int)s);
    }
    /* a flipped byte inside a stored array: the CRC check refuses it */
    {
        uint8_t *copy = malloc(npz->size);
        memcpy(copy, npz->data, npz->size);
        copy[npz->size / 2] ^= 0xFF;
        write_file(path_in(src, "flipped.npz"), copy, npz->size);
        free(copy);
        EXPECT(TRANSFACE_FORMAT, transface_convert_state_dict(src, NULL, out, NULL));
    }
    CHECK(!exists(out), "a refused source wrote %s", out);
}

static void test_infer_config(const transface_model *m) {
    const char *names[MAX_TENSORS];
    int32_t ndims[MAX_TENSORS];
    int64_t dims[MAX_TENSORS * 4];
    size_t i, n = transface_model_tensor_count(m), next = 0;
    transface_convert_params p;
    transface_config c;
    notes notes_seen;
    memset(&notes_seen, 0, sizeof notes_seen);
    if (n > MAX_TENSORS) { CHECK(0, "too many tensors %zu", n); return; }
    for (i = 0; i < n; i++) {
        transface_tensor_info info;
        int k;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        OK(transface_model_tensor_info(m, i, &info));
        names[i] = info.name;
        ndims[i] = info.ndim;
        for (k = 0; k < info.ndim; k++) dims[next++] = info.dims[k];
    }
    OK(transface_convert_params_init(&p, sizeof p));
    p.note = on_note;
    p.user_data = &notes_seen;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    EXPECT(TRANSFACE_OK, transface_convert_infer_config(names, ndims, dims, n, &p, &c));
    CHECK(c.embed_dim == DIM && c.depth == DEPTH && c.num_heads == 8 && c.mlp_hidden_dim == MLP && c.embedding_size == EMB,
          "inferred dim %d depth %d heads %d", c.embed_dim, c.depth, c.num_heads);
    CHECK(notes_seen.count >= 1, "no note about num_heads");
    p.num_heads = HEADS;
    EXPECT(TRANSFACE_OK, transface_convert_infer_config(names, ndims, dims, n, &p, &c));
    CHECK(c.num_heads == HEADS, "heads %d", c.num_heads);
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_infer_config(names, ndims, dims, n, &p, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_infer_config(NULL, ndims, dims, n, &p, &c));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_infer_config(names, NULL, dims, n, &p, &c));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_infer_config(names, ndims, NULL, n, &p, &c));
    EXPECT(TRANSFACE_FORMAT, transface_convert_infer_config(NULL, NULL, NULL, 0, NULL, &c));
    EXPECT(TRANSFACE_FORMAT, transface_convert_infer_config(names + 1, ndims + 1, dims + ndims[0], n - 1, &p, &c));
    ndims[1] = 9;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_infer_config(names, ndims, dims, n, &p, &c));
    ndims[1] = -1;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_infer_config(names, ndims, dims, n, &p, &c));
    ndims[1] = ndims[0];
    names[1] = names[0];
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_infer_config(names, ndims, dims, 2, &p, &c));
    names[1] = NULL;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_infer_config(names, ndims, dims, 2, &p, &c));
    p.struct_size = 4;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_convert_infer_config(names, ndims, dims, n, &p, &c));
}

int main(void) {
    const char *base = getenv("TMPDIR");
    char npz_path[512], cmd[600];
    transface_model *original = NULL;
    bytes npz;
    snprintf(tmpdir, sizeof tmpdir, "%s/transface-convert-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
    npz = make_npz(&original);
    write_file(path_in(npz_path, "state_dict.npz"), npz.data, npz.size);
    if (original) {
        test_convert(npz_path, original);
        test_bad_arguments_and_params(npz_path);
        test_bad_files(&npz);
        test_infer_config(original);
        transface_model_free(original);
    }
    free(npz.data);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
