/*
 * ABI test of libtransface: calls every function of include/transface.h, every error path
 * (NULL pointers, zero and negative counts, small capacities, bad flags, bad struct sizes,
 * unknown names, damaged model files: a sweep of truncations and of byte flips) and checks
 * the documented behaviour of embeddings (normalisation, flip, batching, threads, patches).
 *
 *   test_abi            prints one line per failure and a final "N passed, M failed"
 *   TRANSFACE_TEST_VERBOSE=1 test_abi    also prints every error message received
 *   TRANSFACE_TEST_NOFORK=1 test_abi     runs every section in this process (for debuggers)
 *
 * Model files use a tiny custom architecture (about 1.6 MB) created with the builder in a
 * temporary folder ($TMPDIR or /tmp) that is removed at the end.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transface.h"

/* ------------------------------------------------------------------ test harness */

static int passed, failed, verbose;
static const char *section = "start";
static char current_case[256];

static void report(int ok, int line, const char *fmt, ...) {
    va_list ap;
    if (ok) { passed++; return; }
    failed++;
    fprintf(stderr, "FAIL test_abi.c:%d [%s] ", line, section);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
#define CHECK(cond, ...) report(!!(cond), __LINE__, __VA_ARGS__)

static const char *status_name(transface_status s) {
    static const char *names[] = {"OK", "INVALID_ARGUMENT", "IO", "FORMAT", "OUT_OF_MEMORY", "ABORTED",
                                  "NUMERIC", "MISUSE", "INTERNAL", "NOT_FOUND"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "(unknown status)";
}

/* A failing call must leave a new message: before each expected failure the thread's message
 * is set to one that names SENTINEL, and afterwards it must not name it any more. */
#define SENTINEL "sentinel-preset-7f3a"
#define ANY_ERROR ((transface_status)-1)

static void prime_error(void) {
    transface_config c = { .struct_size = sizeof c };
    if (transface_config_preset(SENTINEL, 0, &c) == TRANSFACE_OK) abort();
}

static void expect_status(transface_status got, transface_status want, const char *call, int line) {
    const char *msg = transface_last_error();
    if (want == TRANSFACE_OK) {
        report(got == TRANSFACE_OK, line, "%s -> %s: %s", call, status_name(got), msg ? msg : "(NULL)");
        return;
    }
    if (verbose) printf("  %-16s %s\n", status_name(got), msg ? msg : "(NULL)");
    report((want == ANY_ERROR ? got != TRANSFACE_OK : got == want) && msg && msg[0] && !strstr(msg, SENTINEL),
           line, "%s -> %s, expected %s; message \"%s\"", call, status_name(got),
           want == ANY_ERROR ? "an error" : status_name(want), msg ? msg : "(NULL)");
}
#define EXPECT_OK(call) \
    do { transface_status s_ = (call); expect_status(s_, TRANSFACE_OK, #call, __LINE__); } while (0)
#define EXPECT_ERR(want, call) \
    do { prime_error(); { transface_status s_ = (call); expect_status(s_, (want), #call, __LINE__); } } while (0)

/* Each section runs in a child process (unless TRANSFACE_TEST_NOFORK=1), so that a crash or a
 * Swift trap (SIGILL/SIGTRAP) counts as a failure of that section and the others still run.
 * The child reports its counts to the parent through a pipe. */
struct counts { int passed, failed, crashed; };
static int result_fd = -1;

static void send_counts(int crashed) {
    struct counts c;
    c.passed = passed; c.failed = failed; c.crashed = crashed;
    if (result_fd >= 0 && write(result_fd, &c, sizeof c) != (ssize_t)sizeof c) _exit(4);
}

static void on_crash(int sig) {
    char line[512];
    int n = snprintf(line, sizeof line, "FAIL CRASH: signal %d in section [%s] case [%s]\n", sig, section, current_case);
    if (n > 0 && write(2, line, (size_t)n) < 0) _exit(3);
    failed++;
    if (result_fd >= 0) send_counts(1);
    else {
        n = snprintf(line, sizeof line, "%d passed, %d failed\n", passed, failed);
        if (n > 0 && write(1, line, (size_t)n) < 0) _exit(3);
    }
    _exit(3);
}

static void install_crash_handlers(void) {
    int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE};
    struct sigaction sa;
    size_t i;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    for (i = 0; i < sizeof sigs / sizeof *sigs; i++) sigaction(sigs[i], &sa, NULL);
}

/* ------------------------------------------------------------------ utilities */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float rnd_unit(void) { return (float)(rnd() >> 8) / 16777216.0f * 2.0f - 1.0f; } /* [-1, 1) */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static char tmpdir[200];
static const char *tmp_path(char *buf, const char *name) {
    snprintf(buf, 512, "%s/%s", tmpdir, name);
    return buf;
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    return ok;
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *data;
    long size;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    data = xmalloc((size_t)size);
    if (fread(data, 1, (size_t)size, f) != (size_t)size) { free(data); data = NULL; }
    fclose(f);
    *n = (size_t)size;
    return data;
}

static int patch_byte(const char *path, size_t offset, unsigned char value) {
    int fd = open(path, O_WRONLY), ok;
    if (fd < 0) return 0;
    ok = pwrite(fd, &value, 1, (off_t)offset) == 1;
    return close(fd) == 0 && ok;
}

/* Names in tmpdir that contain `part` (temporary files of atomic saves). */
static int count_files_containing(const char *part) {
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

static void remove_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];
    if (!d) return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        unlink(tmp_path(path, e->d_name));
    }
    closedir(d);
    rmdir(tmpdir);
}

static float f16_to_f32(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(m | 1024), e - 25);
    return (h & 0x8000) ? -v : v;
}
static float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

static double norm(const float *v, size_t n) {
    double s = 0;
    size_t i;
    for (i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* ------------------------------------------------------------------ the tiny model */

enum { IMG = 112, PATCH = 9, DIM = 16, DEPTH = 1, HEADS = 2, MLP = 32, EMB = 8, P = (IMG / PATCH) * (IMG / PATCH) };
enum { NIMG = 7, IMG_BYTES = IMG * IMG * 3 };

static transface_config tiny_config(void) {
    transface_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    strcpy(c.arch, "abi-test");
    c.img_size = IMG; c.patch_size = PATCH; c.in_channels = 3; c.embed_dim = DIM; c.depth = DEPTH;
    c.num_heads = HEADS; c.mlp_hidden_dim = MLP; c.embedding_size = EMB;
    return c;
}

static transface_builder *initialised_builder(uint64_t seed) {
    transface_config c = tiny_config();
    transface_builder *b = NULL;
    EXPECT_OK(transface_builder_create(&c, &b));
    if (b) EXPECT_OK(transface_builder_init_weights(b, seed));
    return b;
}

static transface_model *built_model(uint64_t seed) {
    transface_builder *b = initialised_builder(seed);
    transface_model *m = NULL;
    EXPECT_OK(transface_builder_build(b, &m));
    transface_builder_free(b);
    return m;
}

static uint8_t *images;           /* NIMG random images */
static uint8_t *mirrored;         /* the same, flipped horizontally */

static void make_images(void) {
    size_t i, x, y, c;
    images = xmalloc((size_t)NIMG * IMG_BYTES);
    mirrored = xmalloc((size_t)NIMG * IMG_BYTES);
    for (i = 0; i < (size_t)NIMG * IMG_BYTES; i++) images[i] = (uint8_t)rnd();
    for (i = 0; i < NIMG; i++)
        for (y = 0; y < IMG; y++)
            for (x = 0; x < IMG; x++)
                for (c = 0; c < 3; c++)
                    mirrored[i * IMG_BYTES + (y * IMG + x) * 3 + c] = images[i * IMG_BYTES + (y * IMG + (IMG - 1 - x)) * 3 + c];
}

/* ------------------------------------------------------------------ versions, statuses, presets */

static void test_versions_and_statuses(void) {
    char expected[32];
    const char *seen[10];
    int s, t, distinct = 1;
    section = "versions";
    CHECK(transface_version_number() == TRANSFACE_VERSION_NUMBER, "version number %u != %d",
          transface_version_number(), TRANSFACE_VERSION_NUMBER);
    snprintf(expected, sizeof expected, "%d.%d.%d", TRANSFACE_VERSION_MAJOR, TRANSFACE_VERSION_MINOR, TRANSFACE_VERSION_PATCH);
    CHECK(transface_version_string() && strcmp(transface_version_string(), expected) == 0,
          "version string \"%s\" != \"%s\"", transface_version_string() ? transface_version_string() : "(NULL)", expected);
    CHECK(transface_version_string() == transface_version_string(), "version string is not static storage");
    CHECK(transface_format_version() == TRANSFACE_FORMAT_VERSION, "format version %u != %d",
          transface_format_version(), TRANSFACE_FORMAT_VERSION);

    section = "status_string";
    for (s = TRANSFACE_OK; s <= TRANSFACE_NOT_FOUND; s++) {
        seen[s] = transface_status_string((transface_status)s);
        CHECK(seen[s] && seen[s][0], "status_string(%s) is empty", status_name((transface_status)s));
        for (t = 0; t < s; t++) distinct &= seen[s] && seen[t] && strcmp(seen[s], seen[t]) != 0;
    }
    CHECK(distinct, "status strings are not distinct");
    CHECK(strcmp(transface_status_string(TRANSFACE_OK), "ok") == 0, "status_string(OK) = \"%s\"", transface_status_string(TRANSFACE_OK));
    CHECK(strcmp(transface_status_string(TRANSFACE_INVALID_ARGUMENT), "invalid argument") == 0,
          "status_string(INVALID_ARGUMENT) = \"%s\"", transface_status_string(TRANSFACE_INVALID_ARGUMENT));
    CHECK(transface_status_string((transface_status)99) && transface_status_string((transface_status)99)[0],
          "status_string(99) is NULL or empty");
    CHECK(transface_status_string((transface_status)-1) != NULL, "status_string(-1) is NULL");
}

static void test_presets(void) {
    size_t n = transface_config_preset_count(), i;
    transface_config c;
    section = "presets";
    CHECK(n == 7, "preset count %zu, header lists 7", n);
    for (i = 0; i < n; i++) {
        const char *name = transface_config_preset_name(i);
        CHECK(name && name[0], "preset name %zu is empty", i);
        if (!name) continue;
        memset(&c, 0xAB, sizeof c);
        c.struct_size = sizeof c;
        EXPECT_OK(transface_config_preset(name, 0, &c));
        CHECK(c.struct_size == sizeof c, "%s: struct_size %u", name, c.struct_size);
        CHECK(strcmp(c.arch, name) == 0, "%s: arch \"%.32s\"", name, c.arch);
        CHECK(c.embedding_size == 512, "%s: embedding_size 0 gave %d, expected 512", name, c.embedding_size);
        CHECK(c.img_size == 112 && c.patch_size == 9 && c.in_channels == 3, "%s: img %d patch %d channels %d", name,
              c.img_size, c.patch_size, c.in_channels);
        CHECK(c.embed_dim > 0 && c.depth > 0 && c.num_heads > 0 && c.embed_dim % c.num_heads == 0 &&
              c.mlp_hidden_dim == 4 * c.embed_dim, "%s: dim %d depth %d heads %d mlp %d", name, c.embed_dim, c.depth,
              c.num_heads, c.mlp_hidden_dim);
        CHECK(c.drop_path_rate >= 0 && c.drop_path_rate < 1 && c.mask_ratio >= 0 && c.mask_ratio < 1,
              "%s: drop_path %g mask %g", name, c.drop_path_rate, c.mask_ratio);
        EXPECT_OK(transface_config_preset(name, 128, &c));
        CHECK(c.embedding_size == 128, "%s: embedding_size 128 gave %d", name, c.embedding_size);
    }
    CHECK(transface_config_preset_name(n) == NULL, "preset_name(count) is not NULL");
    CHECK(transface_config_preset_name((size_t)-1) == NULL, "preset_name(SIZE_MAX) is not NULL");
    c.struct_size = sizeof c;
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_config_preset("vit_zz", 0, &c));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_config_preset("", 0, &c));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_config_preset("VIT_T", 0, &c));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_config_preset(NULL, 0, &c));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_config_preset("vit_t", 0, NULL));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_config_preset("vit_t", -1, &c));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_config_preset("vit_t", INT32_MIN, &c));
    c.struct_size = 0;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_config_preset("vit_t", 0, &c));
    {   /* an older caller's smaller struct: refused, or filled without writing past struct_size */
        transface_status s;
        memset(&c, 0x5A, sizeof c);
        c.struct_size = offsetof(transface_config, img_size);
        s = transface_config_preset("vit_t", 0, &c);
        CHECK(s == TRANSFACE_INVALID_ARGUMENT || (s == TRANSFACE_OK && c.img_size == 0x5A5A5A5A && c.mask_ratio != 0.1f),
              "config_preset with struct_size %u: %s, wrote past it", (unsigned)offsetof(transface_config, img_size), status_name(s));
    }
}

/* ------------------------------------------------------------------ compare */

static void test_compare(void) {
    float a[4] = {1, 2, 3, 4}, b[4] = {2, -1, 4, -3}, z[4] = {0, 0, 0, 0}, neg[4] = {-1, -2, -3, -4};
    float big[4] = {3e38f, 3e38f, 0, 0}, nan4[4] = {1, NAN, 0, 0}, out = -5;
    section = "compare";
    EXPECT_OK(transface_compare(a, a, 4, &out));
    CHECK(fabsf(out - 1) <= 1e-6f, "cos(a, a) = %.9g", out);
    EXPECT_OK(transface_compare(a, b, 4, &out));
    CHECK(fabsf(out) <= 1e-6f, "cos(a, orthogonal) = %.9g", out);
    EXPECT_OK(transface_compare(a, neg, 4, &out));
    CHECK(fabsf(out + 1) <= 1e-6f, "cos(a, -a) = %.9g", out);
    EXPECT_OK(transface_compare(a, b, 1, &out));
    CHECK(fabsf(out - 1) <= 1e-6f, "cos over dim 1 = %.9g", out);
    EXPECT_OK(transface_compare(big, big, 4, &out));
    CHECK(fabsf(out - 1) <= 1e-6f, "cos of huge vectors = %.9g", out);
    EXPECT_ERR(TRANSFACE_NUMERIC, transface_compare(a, z, 4, &out));
    EXPECT_ERR(TRANSFACE_NUMERIC, transface_compare(z, z, 4, &out));
    EXPECT_ERR(TRANSFACE_NUMERIC, transface_compare(a, nan4, 4, &out));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_compare(NULL, b, 4, &out));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_compare(a, NULL, 4, &out));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_compare(a, b, 4, NULL));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_compare(a, b, 0, &out));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_compare(a, b, (size_t)-1, &out));
}

/* ------------------------------------------------------------------ builder */

static void test_builder_errors(void) {
    transface_config c = tiny_config(), bad;
    transface_builder *b = NULL;
    transface_tensor_info info;
    transface_preprocess pre;
    transface_model *m = NULL;
    char path[512];
    float values[DIM] = {0};
    int64_t dims[4] = {DIM, 0, 0, 0};
    size_t n;

    section = "builder_create";
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_create(NULL, &b));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_create(&c, NULL));
#define BAD_CONFIG(field, value) \
    do { bad = tiny_config(); bad.field = value; \
         EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_create(&bad, &b)); } while (0)
    BAD_CONFIG(struct_size, 0);
    BAD_CONFIG(struct_size, offsetof(transface_config, no_se_gate) - 1); /* below the first release (76) */
    BAD_CONFIG(img_size, 0);
    BAD_CONFIG(img_size, -112);
    BAD_CONFIG(patch_size, 0);
    BAD_CONFIG(patch_size, -9);
    BAD_CONFIG(patch_size, IMG + 1);
    BAD_CONFIG(in_channels, 0);
    BAD_CONFIG(in_channels, 1);          /* header: must be 3 */
    BAD_CONFIG(in_channels, 4);
    BAD_CONFIG(embed_dim, 0);
    BAD_CONFIG(embed_dim, -16);
    BAD_CONFIG(depth, 0);
    BAD_CONFIG(depth, -1);
    BAD_CONFIG(num_heads, 0);
    BAD_CONFIG(num_heads, -2);
    BAD_CONFIG(num_heads, 3);            /* does not divide embed_dim 16 */
    BAD_CONFIG(mlp_hidden_dim, 0);
    BAD_CONFIG(mlp_hidden_dim, -32);
    BAD_CONFIG(embedding_size, 0);
    BAD_CONFIG(embedding_size, -8);
    BAD_CONFIG(drop_path_rate, NAN);
    BAD_CONFIG(drop_path_rate, -0.5f);
    BAD_CONFIG(mask_ratio, 1.0f);
    BAD_CONFIG(no_se_gate, 2);
    BAD_CONFIG(img_size, INT32_MAX);
    bad = tiny_config();
    memset(bad.arch, 'x', sizeof bad.arch);  /* not NUL-terminated */
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_create(&bad, &b));
#undef BAD_CONFIG
    transface_builder_free(NULL);

    EXPECT_OK(transface_builder_create(&c, &b));
    if (!b) return;

    section = "builder_tensor_info";
    n = transface_builder_tensor_count(b);
    CHECK(n == 4 + 11 * DEPTH + 2 + 1 + 4 + 1 + 4 + 2, "tensor count %zu", n);
    CHECK(transface_builder_tensor_count(NULL) == 0, "tensor_count(NULL) != 0");
    info.struct_size = sizeof info;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_tensor_info(NULL, 0, &info));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_tensor_info(b, n, &info));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_tensor_info(b, (size_t)-1, &info));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_tensor_info(b, 0, NULL));
    info.struct_size = 0;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_tensor_info(b, 0, &info));
    info.struct_size = sizeof info;

    section = "builder_set_tensor";
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(NULL, "norm.bias", values, TRANSFACE_DTYPE_F32, dims, 1));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, NULL, values, TRANSFACE_DTYPE_F32, dims, 1));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", NULL, TRANSFACE_DTYPE_F32, dims, 1));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", values, TRANSFACE_DTYPE_F32, NULL, 1));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", values, TRANSFACE_DTYPE_F32, dims, 0));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", values, TRANSFACE_DTYPE_F32, dims, -1));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", values, TRANSFACE_DTYPE_F32, dims, INT32_MIN));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", values, TRANSFACE_DTYPE_F32, dims, 5));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", values, TRANSFACE_DTYPE_F32, dims, 2));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", values, (transface_dtype)3, dims, 1));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", values, (transface_dtype)-1, dims, 1));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_builder_set_tensor(b, "norm.bogus", values, TRANSFACE_DTYPE_F32, dims, 1));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_builder_set_tensor(b, "", values, TRANSFACE_DTYPE_F32, dims, 1));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_builder_set_tensor(b, "partial_fc.weight", values, TRANSFACE_DTYPE_F32, dims, 1));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_builder_set_tensor(b, "feature.1.num_batches_tracked", values, TRANSFACE_DTYPE_F32, dims, 1));
    dims[0] = DIM - 1;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", values, TRANSFACE_DTYPE_F32, dims, 1));
    dims[0] = -DIM;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", values, TRANSFACE_DTYPE_F32, dims, 1));
    dims[0] = 1; dims[1] = DIM;  /* right element count, wrong shape */
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.bias", values, TRANSFACE_DTYPE_F32, dims, 2));
    dims[0] = DIM; dims[1] = 0;
    EXPECT_OK(transface_builder_set_tensor(b, "norm.bias", values, TRANSFACE_DTYPE_F32, dims, 1));
    values[3] = NAN;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.weight", values, TRANSFACE_DTYPE_F32, dims, 1));
    values[3] = INFINITY;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.weight", values, TRANSFACE_DTYPE_F32, dims, 1));
    values[3] = 0;
    {   /* half-precision Inf/NaN are refused too */
        uint16_t halfs[DIM] = {0};
        halfs[5] = 0x7C00;
        EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.weight", halfs, TRANSFACE_DTYPE_F16, dims, 1));
        halfs[5] = 0x7FC0;
        EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.weight", halfs, TRANSFACE_DTYPE_BF16, dims, 1));
    }

    section = "builder_init_weights";
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_init_weights(NULL, 1));

    section = "builder_set_preprocess";
    memset(&pre, 0, sizeof pre);
    pre.struct_size = sizeof pre;
    pre.input_width = pre.input_height = IMG;
    pre.mean[0] = pre.mean[1] = pre.mean[2] = 0.5f;
    pre.std[0] = pre.std[1] = pre.std[2] = 0.5f;
    EXPECT_OK(transface_builder_set_preprocess(b, &pre));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_preprocess(NULL, &pre));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_preprocess(b, NULL));
#define BAD_PRE(field, value) \
    do { transface_preprocess q_ = pre; q_.field = value; \
         EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_preprocess(b, &q_)); } while (0)
    BAD_PRE(struct_size, 0);
    BAD_PRE(struct_size, 8);
    BAD_PRE(input_width, 100);
    BAD_PRE(input_height, 100);
    BAD_PRE(input_width, -112);
    BAD_PRE(std[1], 0.0f);
    BAD_PRE(std[2], -1.0f);
    BAD_PRE(std[0], NAN);
    BAD_PRE(mean[0], INFINITY);
    BAD_PRE(channel_order, 2);
    BAD_PRE(channel_order, -1);
    BAD_PRE(align_template[7], NAN);
#undef BAD_PRE

    section = "builder_set_metadata";
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_metadata(NULL, "k", "v"));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_metadata(b, NULL, "v"));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_metadata(b, "k", NULL));

    section = "builder_save/build unset";
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_build(NULL, &m));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_build(b, NULL));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_save(NULL, tmp_path(path, "x.tfm")));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_save(b, NULL));
    /* every tensor unset but norm.bias: save and build fail (MISUSE) and name an unset tensor */
    EXPECT_ERR(TRANSFACE_MISUSE, transface_builder_save(b, tmp_path(path, "unset.tfm")));
    CHECK(strstr(transface_last_error(), "pos_embed") != NULL, "save with unset tensors: message does not name pos_embed: %s",
          transface_last_error());
    CHECK(access(path, F_OK) != 0, "save with unset tensors created %s", path);
    EXPECT_ERR(TRANSFACE_MISUSE, transface_builder_build(b, &m));
    CHECK(strstr(transface_last_error(), "pos_embed") != NULL, "build with unset tensors: message does not name pos_embed: %s",
          transface_last_error());
    /* every tensor set but one: the message names it */
    {   /* set every tensor of b except senet.2.weight (the last one) from an initialised builder's model */
        transface_model *src = built_model(9);
        size_t i;
        for (i = 0; src && i < n; i++) {
            transface_tensor_info ti = { .struct_size = sizeof ti };
            float *v;
            EXPECT_OK(transface_model_tensor_info(src, i, &ti));
            if (strcmp(ti.name, "senet.2.weight") == 0) continue;
            v = xmalloc(ti.count * sizeof *v);
            EXPECT_OK(transface_model_read_tensor(src, ti.name, v, ti.count));
            EXPECT_OK(transface_builder_set_tensor(b, ti.name, v, TRANSFACE_DTYPE_F32, ti.dims, ti.ndim));
            free(v);
        }
        transface_model_free(src);
        EXPECT_ERR(TRANSFACE_MISUSE, transface_builder_save(b, tmp_path(path, "unset.tfm")));
        CHECK(strstr(transface_last_error(), "senet.2.weight") != NULL, "message does not name senet.2.weight: %s",
              transface_last_error());
        EXPECT_ERR(TRANSFACE_MISUSE, transface_builder_build(b, &m));
        CHECK(strstr(transface_last_error(), "senet.2.weight") != NULL, "message does not name senet.2.weight: %s",
              transface_last_error());
    }

    section = "builder_save paths";
    EXPECT_OK(transface_builder_init_weights(b, 3));
    EXPECT_ERR(ANY_ERROR, transface_builder_save(b, ""));
    EXPECT_ERR(TRANSFACE_IO, transface_builder_save(b, "/nonexistent-transface-dir/model.tfm"));
    EXPECT_ERR(TRANSFACE_IO, transface_builder_save(b, tmpdir));        /* a folder */
    EXPECT_OK(transface_builder_save(b, tmp_path(path, "first.tfm")));
    EXPECT_OK(transface_builder_save(b, path));                         /* replaces it */
    CHECK(count_files_containing(".tmp") == 0, "temporary files left in %s", tmpdir);
    unlink(path);
    transface_builder_free(b);
}

/* A NaN refused by set_tensor must not end up in the model: the failed call leaves the builder
 * as it was (header: "on any error ... the objects involved stay valid"). */
static void test_failed_set_tensor_keeps_builder(void) {
    transface_builder *b = initialised_builder(11);
    transface_model *before = NULL, *after = NULL;
    float good[DIM], bad[DIM], got[DIM];
    int64_t dims[1] = {DIM};
    int i;
    section = "failed set_tensor leaves the builder unchanged";
    if (!b) return;
    for (i = 0; i < DIM; i++) { good[i] = 1.0f + (float)i / 64; bad[i] = (float)i; }
    bad[DIM - 1] = NAN;
    EXPECT_OK(transface_builder_set_tensor(b, "norm.weight", good, TRANSFACE_DTYPE_F32, dims, 1));
    EXPECT_OK(transface_builder_build(b, &before));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_builder_set_tensor(b, "norm.weight", bad, TRANSFACE_DTYPE_F32, dims, 1));
    EXPECT_OK(transface_builder_build(b, &after));
    if (after) {
        EXPECT_OK(transface_model_read_tensor(after, "norm.weight", got, DIM));
        CHECK(memcmp(got, good, sizeof good) == 0,
              "after a refused set_tensor (NaN) the builder holds the refused values: norm.weight[0] = %g (was %g), [15] = %g",
              got[0], good[0], got[DIM - 1]);
    }
    transface_model_free(before);
    transface_model_free(after);
    transface_builder_free(b);
}

/* ------------------------------------------------------------------ round trip through a file */

static void test_round_trip(void) {
    transface_config c = tiny_config(), got_c;
    transface_builder *b = NULL;
    transface_model *m = NULL, *mb = NULL;
    transface_preprocess pre, got_p;
    transface_load_params lp;
    char path[512];
    size_t n, i, j, total = 0, off, bad_values = 0, half_tensors = 0;
    float *expected, *buf;
    size_t *offsets;
    const char *k, *v;
    char long_value[5001];

    section = "round trip";
    EXPECT_OK(transface_builder_create(&c, &b));
    if (!b) return;
    n = transface_builder_tensor_count(b);
    offsets = xmalloc((n + 1) * sizeof *offsets);
    for (i = 0; i < n; i++) {
        transface_tensor_info ti;
        memset(&ti, 0, sizeof ti);
        ti.struct_size = sizeof ti;
        EXPECT_OK(transface_builder_tensor_info(b, i, &ti));
        offsets[i] = total;
        total += ti.count;
    }
    offsets[n] = total;
    expected = xmalloc(total * sizeof *expected);
    buf = xmalloc((total + 5) * sizeof *buf);

    /* set every tensor: a third as float32, a third float16, a third bfloat16 */
    for (i = 0; i < n; i++) {
        transface_tensor_info ti = { .struct_size = sizeof ti };
        size_t count, prod = 1;
        int d, ok_shape = 1;
        EXPECT_OK(transface_builder_tensor_info(b, i, &ti));
        count = ti.count;
        CHECK(ti.name && ti.name[0], "tensor %zu has no name", i);
        CHECK(ti.ndim >= 1 && ti.ndim <= 4, "%s: ndim %d", ti.name, ti.ndim);
        for (d = 0; d < 4; d++) {
            if (d < ti.ndim) { ok_shape &= ti.dims[d] > 0; prod *= (size_t)ti.dims[d]; }
            else ok_shape &= ti.dims[d] == 0;
        }
        CHECK(ok_shape && prod == count, "%s: dims do not multiply to count %zu", ti.name, count);
        for (j = 0; j < i; j++) {
            transface_tensor_info tj = { .struct_size = sizeof tj };
            transface_builder_tensor_info(b, j, &tj);
            CHECK(strcmp(ti.name, tj.name) != 0, "tensor name %s appears twice", ti.name);
        }
        if (i % 3 == 0) {
            float *vals = expected + offsets[i];
            for (j = 0; j < count; j++) vals[j] = rnd_unit() * 0.1f;
            if (strstr(ti.name, "running_var")) for (j = 0; j < count; j++) vals[j] = fabsf(vals[j]) + 0.5f;
            EXPECT_OK(transface_builder_set_tensor(b, ti.name, vals, TRANSFACE_DTYPE_F32, ti.dims, ti.ndim));
        } else {
            int f16 = i % 3 == 1;
            uint16_t *h = xmalloc(count * sizeof *h);
            for (j = 0; j < count; j++) {
                uint16_t s = (uint16_t)((rnd() & 1u) << 15);
                if (f16) h[j] = (uint16_t)(s | ((5 + rnd() % 10) << 10) | (rnd() & 1023));           /* 2^-10 .. 1 */
                else h[j] = (uint16_t)(s | ((117 + rnd() % 10) << 7) | (rnd() & 127));
                if (strstr(ti.name, "running_var")) h[j] &= 0x7FFF;
            }
            if (count > 4 && f16) { h[0] = 0x0001; h[1] = 0x8000; h[2] = 0x7BFF; h[3] = 0x03FF; } /* subnormals, -0, max */
            if (count > 4 && !f16) { h[0] = 0x0001; h[1] = 0x8000; h[2] = 0x7F7F; h[3] = 0x3F80; }
            for (j = 0; j < count; j++) expected[offsets[i] + j] = f16 ? f16_to_f32(h[j]) : bf16_to_f32(h[j]);
            EXPECT_OK(transface_builder_set_tensor(b, ti.name, h, f16 ? TRANSFACE_DTYPE_F16 : TRANSFACE_DTYPE_BF16, ti.dims, ti.ndim));
            half_tensors++;
            free(h);
        }
    }

    memset(&pre, 0, sizeof pre);
    pre.struct_size = sizeof pre;
    pre.input_width = pre.input_height = IMG;
    pre.mean[0] = 0.4f; pre.mean[1] = 0.5f; pre.mean[2] = 0.625f;
    pre.std[0] = 0.2f; pre.std[1] = 0.25f; pre.std[2] = 0.3f;
    pre.channel_order = TRANSFACE_CHANNELS_BGR;
    for (i = 0; i < 10; i++) pre.align_template[i] = 3.5f + 9.25f * (float)i;
    EXPECT_OK(transface_builder_set_preprocess(b, &pre));

    memset(long_value, 'L', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = 0;
    EXPECT_OK(transface_builder_set_metadata(b, "author", "abi test"));
    EXPECT_OK(transface_builder_set_metadata(b, "unicode", "Z\xc3\xbcrich \xe2\x9c\x93"));
    EXPECT_OK(transface_builder_set_metadata(b, "empty", ""));
    EXPECT_OK(transface_builder_set_metadata(b, "long", long_value));
    EXPECT_OK(transface_builder_set_metadata(b, "author", "replaced"));

    EXPECT_OK(transface_builder_save(b, tmp_path(path, "roundtrip.tfm")));
    EXPECT_OK(transface_builder_build(b, &mb));
    transface_builder_free(b);  /* the model and the file do not depend on the builder */
    lp = transface_load_default_params();
    EXPECT_OK(transface_model_load(path, &lp, &m));
    if (!m || !mb) goto out;

    section = "round trip: config";
    memset(&got_c, 0, sizeof got_c);
    got_c.struct_size = sizeof got_c;
    EXPECT_OK(transface_model_get_config(m, &got_c));
    CHECK(got_c.struct_size == sizeof got_c && strcmp(got_c.arch, "abi-test") == 0 && got_c.img_size == IMG &&
          got_c.patch_size == PATCH && got_c.in_channels == 3 && got_c.embed_dim == DIM && got_c.depth == DEPTH &&
          got_c.num_heads == HEADS && got_c.mlp_hidden_dim == MLP && got_c.embedding_size == EMB &&
          got_c.drop_path_rate == 0 && got_c.mask_ratio == 0, "config differs after save/load (arch %.32s, dim %d)",
          got_c.arch, got_c.embed_dim);
    CHECK(transface_model_embedding_size(m) == EMB, "embedding_size %d", transface_model_embedding_size(m));
    CHECK(transface_model_embedding_size(mb) == EMB, "embedding_size (built) %d", transface_model_embedding_size(mb));

    section = "round trip: preprocess";
    memset(&got_p, 0, sizeof got_p);
    got_p.struct_size = sizeof got_p;
    EXPECT_OK(transface_model_get_preprocess(m, &got_p));
    CHECK(memcmp(&got_p, &pre, sizeof pre) == 0, "preprocess differs after save/load (channel order %d, mean0 %g, std2 %g)",
          got_p.channel_order, got_p.mean[0], got_p.std[2]);
    memset(&got_p, 0, sizeof got_p);
    got_p.struct_size = sizeof got_p;
    EXPECT_OK(transface_model_get_preprocess(mb, &got_p));
    CHECK(memcmp(&got_p, &pre, sizeof pre) == 0, "preprocess of the built model differs");

    section = "round trip: metadata";
    CHECK(transface_model_metadata_count(m) == 4, "metadata count %zu, expected 4", transface_model_metadata_count(m));
    CHECK(transface_model_metadata_count(mb) == 4, "metadata count (built) %zu", transface_model_metadata_count(mb));
    EXPECT_OK(transface_model_metadata_get(m, "author", &v));
    CHECK(v && strcmp(v, "replaced") == 0, "author = %s", v ? v : "(NULL)");
    EXPECT_OK(transface_model_metadata_get(m, "unicode", &v));
    CHECK(v && strcmp(v, "Z\xc3\xbcrich \xe2\x9c\x93") == 0, "unicode value differs");
    EXPECT_OK(transface_model_metadata_get(m, "empty", &v));
    CHECK(v && v[0] == 0, "empty value differs");
    EXPECT_OK(transface_model_metadata_get(m, "long", &v));
    CHECK(v && strcmp(v, long_value) == 0, "long value differs");
    EXPECT_OK(transface_model_metadata_get(mb, "long", &v));
    CHECK(v && strcmp(v, long_value) == 0, "long value (built) differs");
    {
        int seen = 0;
        for (i = 0; i < transface_model_metadata_count(m); i++) {
            k = v = NULL;
            EXPECT_OK(transface_model_metadata_at(m, i, &k, &v));
            if (!k || !v) continue;
            if (strcmp(k, "author") == 0 && strcmp(v, "replaced") == 0) seen |= 1;
            if (strcmp(k, "unicode") == 0) seen |= 2;
            if (strcmp(k, "empty") == 0 && !v[0]) seen |= 4;
            if (strcmp(k, "long") == 0 && strlen(v) == 5000) seen |= 8;
        }
        CHECK(seen == 15, "metadata_at did not list every entry (mask %d)", seen);
    }
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_model_metadata_get(m, "no-such-key", &v));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_model_metadata_get(m, "", &v));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_model_metadata_get(m, "Author", &v));

    section = "round trip: tensors";
    CHECK(transface_model_tensor_count(m) == n && transface_model_tensor_count(mb) == n, "tensor counts %zu/%zu, builder %zu",
          transface_model_tensor_count(m), transface_model_tensor_count(mb), n);
    CHECK(half_tensors > 10, "only %zu half-precision tensors were tested", half_tensors);
    for (i = 0; i < n; i++) {
        transface_tensor_info a = { .struct_size = sizeof a }, bb = { .struct_size = sizeof bb };
        EXPECT_OK(transface_model_tensor_info(m, i, &a));
        EXPECT_OK(transface_model_tensor_info(mb, i, &bb));
        if (!a.name || !bb.name) continue;
        CHECK(strcmp(a.name, bb.name) == 0 && a.ndim == bb.ndim && a.count == bb.count &&
              memcmp(a.dims, bb.dims, sizeof a.dims) == 0 && a.count == offsets[i + 1] - offsets[i],
              "tensor %zu: loaded %s vs built %s", i, a.name, bb.name);
        off = offsets[i];
        EXPECT_OK(transface_model_read_tensor(m, a.name, buf + off, a.count));
        for (j = 0; j < a.count; j++) bad_values += memcmp(&buf[off + j], &expected[off + j], sizeof(float)) != 0;
        memset(buf + off, 0xFF, a.count * sizeof *buf);
        EXPECT_OK(transface_model_read_tensor(mb, a.name, buf + off, a.count + 5));  /* larger capacity is fine */
        for (j = 0; j < a.count; j++) bad_values += memcmp(&buf[off + j], &expected[off + j], sizeof(float)) != 0;
    }
    CHECK(bad_values == 0, "%zu tensor values differ from what set_tensor got (f32/f16/bf16)", bad_values);

out:
    transface_model_free(m);
    transface_model_free(mb);
    free(expected);
    free(buf);
    free(offsets);
}

/* ------------------------------------------------------------------ model accessors: errors */

static void test_model_errors(transface_model *m) {
    transface_config c;
    transface_preprocess p;
    transface_tensor_info ti;
    const char *k = NULL, *v = NULL;
    float buf[DIM * P + 8];
    size_t count = transface_model_tensor_count(m), i;
    struct { transface_config c; char future[64]; } big_c;
    struct { transface_preprocess p; char future[64]; } big_p;
    struct { transface_tensor_info t; char future[64]; } big_t;

    section = "model accessors";
    c.struct_size = sizeof c;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_get_config(NULL, &c));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_get_config(m, NULL));
    c.struct_size = 0;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_get_config(m, &c));
    {   /* an older caller's smaller struct: refused, or filled without writing past struct_size */
        transface_status s;
        memset(&c, 0x5A, sizeof c);
        c.struct_size = offsetof(transface_config, img_size);
        s = transface_model_get_config(m, &c);
        CHECK(s == TRANSFACE_INVALID_ARGUMENT || (s == TRANSFACE_OK && c.img_size == 0x5A5A5A5A && c.embedding_size == 0x5A5A5A5A),
              "get_config with a smaller struct_size: %s, wrote past it", status_name(s));
        memset(&p, 0x5A, sizeof p);
        p.struct_size = offsetof(transface_preprocess, mean);
        s = transface_model_get_preprocess(m, &p);
        CHECK(s == TRANSFACE_INVALID_ARGUMENT || (s == TRANSFACE_OK && p.channel_order == 0x5A5A5A5A),
              "get_preprocess with a smaller struct_size: %s, wrote past it", status_name(s));
    }
    memset(&big_c, 0x5A, sizeof big_c);
    big_c.c.struct_size = sizeof big_c;   /* a caller compiled against a newer header */
    EXPECT_OK(transface_model_get_config(m, &big_c.c));
    CHECK(big_c.c.struct_size == sizeof big_c.c && big_c.future[0] == 0x5A && big_c.future[63] == 0x5A,
          "larger config struct: struct_size %u, bytes past it written", big_c.c.struct_size);

    p.struct_size = sizeof p;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_get_preprocess(NULL, &p));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_get_preprocess(m, NULL));
    p.struct_size = 0;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_get_preprocess(m, &p));
    memset(&big_p, 0x5A, sizeof big_p);
    big_p.p.struct_size = sizeof big_p;
    EXPECT_OK(transface_model_get_preprocess(m, &big_p.p));
    CHECK(big_p.p.struct_size == sizeof big_p.p && big_p.future[0] == 0x5A, "larger preprocess struct mishandled");
    p.struct_size = sizeof p;
    EXPECT_OK(transface_model_get_preprocess(m, &p));
    CHECK(p.input_width == IMG && p.input_height == IMG && p.channel_order == TRANSFACE_CHANNELS_RGB &&
          p.mean[0] == 0.5f && p.std[2] == 0.5f, "default preprocess is not the official one");
    CHECK(fabsf(p.align_template[0] - 38.2946f) < 1e-4f && fabsf(p.align_template[9] - 92.2041f) < 1e-4f,
          "default alignment template is not ArcFace's (%g, ..., %g)", p.align_template[0], p.align_template[9]);

    transface_model_free(NULL);
    CHECK(transface_model_embedding_size(NULL) == 0, "embedding_size(NULL) != 0");
    CHECK(transface_model_metadata_count(NULL) == 0, "metadata_count(NULL) != 0");
    CHECK(transface_model_tensor_count(NULL) == 0, "tensor_count(NULL) != 0");

    section = "model metadata errors";
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_metadata_at(NULL, 0, &k, &v));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_metadata_at(m, transface_model_metadata_count(m), &k, &v));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_metadata_at(m, (size_t)-1, &k, &v));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_metadata_at(m, 0, NULL, &v));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_metadata_at(m, 0, &k, NULL));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_metadata_get(NULL, "k", &v));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_metadata_get(m, NULL, &v));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_metadata_get(m, "k", NULL));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_model_metadata_get(m, "k", &v));

    section = "model tensor errors";
    ti.struct_size = sizeof ti;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_tensor_info(NULL, 0, &ti));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_tensor_info(m, count, &ti));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_tensor_info(m, (size_t)-1, &ti));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_tensor_info(m, 0, NULL));
    ti.struct_size = 0;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_tensor_info(m, 0, &ti));
    memset(&big_t, 0x5A, sizeof big_t);
    big_t.t.struct_size = sizeof big_t;
    EXPECT_OK(transface_model_tensor_info(m, 0, &big_t.t));
    CHECK(big_t.future[0] == 0x5A && big_t.t.name && strcmp(big_t.t.name, "pos_embed") == 0,
          "larger tensor_info struct mishandled or first tensor is not pos_embed");
    ti.struct_size = sizeof ti;
    for (i = 0; i < count; i++) {
        EXPECT_OK(transface_model_tensor_info(m, i, &ti));
        if (i == 0) CHECK(ti.ndim == 3 && ti.dims[0] == 1 && ti.dims[1] == P && ti.dims[2] == DIM && ti.dims[3] == 0,
                          "pos_embed shape");
    }
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_read_tensor(NULL, "pos_embed", buf, P * DIM));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_read_tensor(m, NULL, buf, P * DIM));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_read_tensor(m, "pos_embed", NULL, P * DIM));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_read_tensor(m, "pos_embed", buf, P * DIM - 1));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_read_tensor(m, "pos_embed", buf, 0));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_model_read_tensor(m, "pos_embedding", buf, P * DIM));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_model_read_tensor(m, "feature.1.num_batches_tracked", buf, P * DIM));
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_model_read_tensor(m, "", buf, P * DIM));
    buf[P * DIM] = 12345.0f;
    EXPECT_OK(transface_model_read_tensor(m, "pos_embed", buf, P * DIM));
    CHECK(buf[P * DIM] == 12345.0f, "read_tensor wrote past the tensor");

    section = "last error survives successful calls";
    EXPECT_ERR(TRANSFACE_NOT_FOUND, transface_model_metadata_get(m, "kept-message", &v));
    {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", transface_last_error());
        EXPECT_OK(transface_model_get_config(m, &big_c.c));
        (void)transface_version_string();
        CHECK(strcmp(copy, transface_last_error()) == 0, "a successful call changed the last error to \"%s\"",
              transface_last_error());
    }
}

/* ------------------------------------------------------------------ loading damaged files */

static transface_status load_status(const char *path, const transface_load_params *lp) {
    transface_model *m = NULL;
    transface_status s = transface_model_load(path, lp, &m);
    if (s == TRANSFACE_OK) {
        /* a file that loads must be usable */
        transface_context *ctx = NULL;
        float emb[EMB];
        if (transface_context_create(m, NULL, &ctx) == TRANSFACE_OK) {
            transface_embed(ctx, images, 1, IMG, IMG, TRANSFACE_EMBED_NO_NORMALIZE, emb, EMB);
            transface_context_free(ctx);
        }
        transface_model_free(m);
    }
    return s;
}

static void test_load_errors(const char *good_path) {
    char path[512];
    size_t size, i, data_start, header_length = 0, weights = 0;
    unsigned char *file = read_file(good_path, &size), saved[8];
    transface_load_params lp = transface_load_default_params();
    transface_model *m = NULL;
    static const char junk[] = "this is not a model file, just some text";

    section = "load params";
    CHECK(lp.struct_size == sizeof lp && lp.verify_checksums == 1 && lp.max_weight_bytes == 0,
          "load_default_params: size %u verify %d max %llu", lp.struct_size, lp.verify_checksums,
          (unsigned long long)lp.max_weight_bytes);
    if (!file || size < 64) { CHECK(0, "cannot read %s", good_path); free(file); return; }
    for (i = 0; i < 8; i++) header_length |= (size_t)file[16 + i] << (8 * i);
    data_start = (24 + header_length + 63) / 64 * 64;
    CHECK(memcmp(file, "TFMODEL\0", 8) == 0 && file[8] == TRANSFACE_FORMAT_VERSION && data_start < size,
          "unexpected file layout");
    if (verbose) printf("  model file: %zu bytes, header %zu bytes, data at %zu\n", size, header_length, data_start);

    section = "load errors";
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_load(NULL, NULL, &m));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_load(good_path, NULL, NULL));
    lp.struct_size = 0;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_load(good_path, &lp, &m));
    lp.struct_size = 4;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_model_load(good_path, &lp, &m));
    lp = transface_load_default_params();
    EXPECT_ERR(TRANSFACE_IO, transface_model_load(tmp_path(path, "missing.tfm"), NULL, &m));
    EXPECT_ERR(TRANSFACE_IO, transface_model_load("/nonexistent-transface-dir/model.tfm", NULL, &m));
    EXPECT_ERR(TRANSFACE_IO, transface_model_load(tmpdir, NULL, &m));
    EXPECT_ERR(TRANSFACE_IO, transface_model_load("", NULL, &m));
    write_file(tmp_path(path, "empty.tfm"), "", 0);
    EXPECT_ERR(TRANSFACE_FORMAT, transface_model_load(path, NULL, &m));
    write_file(tmp_path(path, "text.tfm"), junk, sizeof junk);
    EXPECT_ERR(TRANSFACE_FORMAT, transface_model_load(path, NULL, &m));
    memcpy(saved, file, 8);
    memcpy(file, "NOTMODEL", 8);
    write_file(tmp_path(path, "magic.tfm"), file, size);
    EXPECT_ERR(TRANSFACE_FORMAT, transface_model_load(path, NULL, &m));
    memcpy(file, saved, 8);
    file[8] = 99;
    write_file(tmp_path(path, "v99.tfm"), file, size);
    EXPECT_ERR(TRANSFACE_FORMAT, transface_model_load(path, NULL, &m));
    CHECK(strstr(transface_last_error(), "99") != NULL, "version 99: message does not say which version: %s",
          transface_last_error());
    file[8] = 0;
    write_file(tmp_path(path, "v0.tfm"), file, size);
    EXPECT_ERR(TRANSFACE_FORMAT, transface_model_load(path, NULL, &m));
    file[8] = TRANSFACE_FORMAT_VERSION;
    file[11] = 1;  /* version 2^24 + 1 */
    write_file(tmp_path(path, "vhuge.tfm"), file, size);
    EXPECT_ERR(TRANSFACE_FORMAT, transface_model_load(path, NULL, &m));
    file[11] = 0;
    {   /* one trailing byte */
        unsigned char *longer = xmalloc(size + 1);
        memcpy(longer, file, size);
        longer[size] = 0;
        write_file(tmp_path(path, "trailing.tfm"), longer, size + 1);
        EXPECT_ERR(TRANSFACE_FORMAT, transface_model_load(path, NULL, &m));
        free(longer);
    }
    write_file(tmp_path(path, "copy.tfm"), file, size);
    EXPECT_OK(transface_model_load(path, NULL, &m));
    if (m) {
        for (i = 0; i < transface_model_tensor_count(m); i++) {
            transface_tensor_info ti = { .struct_size = sizeof ti };
            transface_model_tensor_info(m, i, &ti);
            weights += ti.count * 4;
        }
        transface_model_free(m);
        m = NULL;
    }

    section = "load max_weight_bytes";
    lp.max_weight_bytes = weights;
    EXPECT_OK(transface_model_load(path, &lp, &m));
    transface_model_free(m);
    m = NULL;
    lp.max_weight_bytes = weights - 1;
    EXPECT_ERR(ANY_ERROR, transface_model_load(path, &lp, &m));
    lp.max_weight_bytes = 1;
    EXPECT_ERR(ANY_ERROR, transface_model_load(path, &lp, &m));
    lp = transface_load_default_params();

    section = "load verify_checksums";
    patch_byte(path, size - 3, file[size - 3] ^ 0x40);
    EXPECT_ERR(TRANSFACE_FORMAT, transface_model_load(path, &lp, &m));
    lp.verify_checksums = 0;
    EXPECT_OK(transface_model_load(path, &lp, &m));
    transface_model_free(m);
    m = NULL;
    lp = transface_load_default_params();
    patch_byte(path, size - 3, file[size - 3]);

    /* Truncations: every length below 4 KiB, a stride over the rest, the last byte. Lengths go
       down so that one file can be cut with truncate(). */
    section = "truncation sweep";
    {
        size_t stride = size / 97 + 1, len, points = 0, bad = 0, nlens = 0;
        size_t *lens = xmalloc((4096 + size / stride + 4) * sizeof *lens);
        for (len = 0; len < size && len < 4096; len++) lens[nlens++] = len;
        for (len = 4096; len < size - 1; len += stride) lens[nlens++] = len;
        if (size - 1 >= 4096) lens[nlens++] = size - 1;
        write_file(path, file, size);
        for (i = nlens; i-- > 0;) {
            transface_status s;
            const char *msg;
            snprintf(current_case, sizeof current_case, "truncated to %zu of %zu bytes", lens[i], size);
            if (truncate(path, (off_t)lens[i]) != 0) { CHECK(0, "truncate: %s", strerror(errno)); break; }
            prime_error();
            s = load_status(path, NULL);
            msg = transface_last_error();
            points++;
            if (s != TRANSFACE_FORMAT || !msg[0] || strstr(msg, SENTINEL)) {
                if (bad++ < 10) fprintf(stderr, "  %s: %s \"%s\"\n", current_case, status_name(s), msg);
            }
        }
        current_case[0] = 0;
        CHECK(bad == 0 && points > 4096, "%zu of %zu truncated files were not refused with FORMAT and a message", bad, points);
        if (verbose) printf("  %zu truncation points\n", points);
        free(lens);
    }

    /* Single-byte flips: every byte of the preamble, header and padding with three masks, and
       a spread over the tensor data with the last byte. With checksums verified, each must be
       refused. With verify_checksums = 0 none may crash (a loaded model is also run). */
    section = "byte flip sweep";
    {
        static const unsigned char masks[] = {0x01, 0x80, 0xFF};
        size_t points = 0, bad = 0, loaded_unverified = 0, off, mi, step = (size - data_start) / 251 + 1;
        write_file(path, file, size);
        for (off = 0; off < size; off = off < data_start ? off + 1 : (off + step < size ? off + step : (off == size - 1 ? size : size - 1))) {
            for (mi = 0; mi < (off < data_start ? 3u : 1u); mi++) {
                transface_status s;
                const char *msg;
                snprintf(current_case, sizeof current_case, "byte %zu ^ 0x%02x (data at %zu, size %zu)", off, masks[mi], data_start, size);
                patch_byte(path, off, (unsigned char)(file[off] ^ masks[mi]));
                prime_error();
                s = load_status(path, NULL);
                msg = transface_last_error();
                points++;
                if (s != TRANSFACE_FORMAT || !msg[0] || strstr(msg, SENTINEL)) {
                    if (bad++ < 10) fprintf(stderr, "  %s: %s \"%s\"\n", current_case, status_name(s), msg);
                }
                if (off < data_start) {
                    lp.verify_checksums = 0;
                    prime_error();
                    s = load_status(path, &lp);
                    msg = transface_last_error();
                    if (s == TRANSFACE_OK) loaded_unverified++;
                    else if (!msg[0] || strstr(msg, SENTINEL)) {
                        if (bad++ < 10) fprintf(stderr, "  unverified %s: %s without a message\n", current_case, status_name(s));
                    }
                    lp.verify_checksums = 1;
                }
                patch_byte(path, off, file[off]);
            }
        }
        current_case[0] = 0;
        CHECK(bad == 0 && points > 3 * data_start, "%zu of %zu flipped files were not refused with FORMAT and a message", bad, points);
        if (verbose) printf("  %zu flip points; %zu header flips load with verify_checksums = 0\n", points, loaded_unverified);
        EXPECT_OK(transface_model_load(path, NULL, &m));  /* restored */
        transface_model_free(m);
    }
    free(file);
}

/* ------------------------------------------------------------------ contexts and embedding */

static void embed_all(transface_model *m, int threads, int max_batch, uint32_t flags, const uint8_t *imgs,
                      float *emb, float *pw, float *ps) {
    transface_context_params cp = transface_context_default_params();
    transface_context *ctx = NULL;
    cp.num_threads = threads;
    cp.max_batch = max_batch;
    EXPECT_OK(transface_context_create(m, &cp, &ctx));
    if (!ctx) return;
    EXPECT_OK(transface_embed_with_patches(ctx, imgs, NIMG, IMG, IMG, flags, emb, emb ? NIMG * EMB : 0,
                                           pw, pw ? NIMG * P : 0, ps, ps ? NIMG * P : 0));
    transface_context_free(ctx);
}

static void test_context_errors(transface_model *m) {
    transface_context_params cp = transface_context_default_params();
    transface_context *ctx = NULL;
    float emb[NIMG * EMB], pw[NIMG * P], ps[NIMG * P], ref[NIMG * EMB];

    section = "context params";
    CHECK(cp.struct_size == sizeof cp && cp.num_threads == 1 && cp.max_batch == 8, "context_default_params: %u %d %d",
          cp.struct_size, cp.num_threads, cp.max_batch);
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_context_create(NULL, NULL, &ctx));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_context_create(m, NULL, NULL));
    cp.struct_size = 0;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_context_create(m, &cp, &ctx));
    cp.struct_size = 4;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_context_create(m, &cp, &ctx));
    cp = transface_context_default_params();
    cp.num_threads = 0;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_context_create(m, &cp, &ctx));
    cp.num_threads = -1;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_context_create(m, &cp, &ctx));
    cp.num_threads = INT32_MIN;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_context_create(m, &cp, &ctx));
    cp = transface_context_default_params();
    cp.max_batch = 0;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_context_create(m, &cp, &ctx));
    cp.max_batch = -8;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_context_create(m, &cp, &ctx));
    transface_context_free(NULL);

    EXPECT_OK(transface_context_create(m, NULL, &ctx));
    if (!ctx) return;
    EXPECT_OK(transface_embed(ctx, images, NIMG, IMG, IMG, 0, ref, NIMG * EMB));

    section = "embed errors";
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(NULL, images, 2, IMG, IMG, 0, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, NULL, 2, IMG, IMG, 0, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, IMG, IMG, 0, NULL, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 0, IMG, IMG, 0, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, (size_t)-1, IMG, IMG, 0, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, (size_t)1 << 62, IMG, IMG, 0, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, 100, 100, 0, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, 100, IMG, 0, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, IMG, 100, 0, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, -IMG, -IMG, 0, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, 0, 0, 0, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, IMG, IMG, 4u, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, IMG, IMG, 8u | TRANSFACE_EMBED_FLIP, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, IMG, IMG, 0x80000000u, emb, 2 * EMB));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, IMG, IMG, 0, emb, 2 * EMB - 1));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, IMG, IMG, 0, emb, 0));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_embed(ctx, images, 2, IMG, IMG, 0, emb, (size_t)-1));

    section = "embed_with_patches errors";
#define EWP(ctx_, imgs_, n_, w_, h_, fl_, e_, ec_, pw_, pwc_, ps_, psc_) \
    transface_embed_with_patches(ctx_, imgs_, n_, w_, h_, fl_, e_, ec_, pw_, pwc_, ps_, psc_)
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(NULL, images, 2, IMG, IMG, 0, emb, 2 * EMB, pw, 2 * P, ps, 2 * P));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, NULL, 2, IMG, IMG, 0, emb, 2 * EMB, pw, 2 * P, ps, 2 * P));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 2, IMG, IMG, 0, NULL, 0, NULL, 0, NULL, 0));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 0, IMG, IMG, 0, emb, 2 * EMB, pw, 2 * P, ps, 2 * P));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 2, 100, 100, 0, emb, 2 * EMB, pw, 2 * P, ps, 2 * P));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 2, IMG, IMG, 4u, emb, 2 * EMB, pw, 2 * P, ps, 2 * P));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 2, IMG, IMG, 0, emb, 2 * EMB - 1, pw, 2 * P, ps, 2 * P));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 2, IMG, IMG, 0, emb, 2 * EMB, pw, 2 * P - 1, ps, 2 * P));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 2, IMG, IMG, 0, emb, 2 * EMB, pw, 2 * P, ps, 2 * P - 1));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 2, IMG, IMG, 0, NULL, 0, pw, 0, NULL, 0));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 2, IMG, IMG, 0, NULL, 0, NULL, 0, ps, 1));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 2, IMG, IMG, 0, emb, (size_t)-1, NULL, 0, NULL, 0));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 2, IMG, IMG, 0, NULL, 0, pw, (size_t)-1, NULL, 0));
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, EWP(ctx, images, 2, IMG, IMG, 0, NULL, 0, NULL, 0, ps, (size_t)-1));
#undef EWP

    section = "context usable after errors";
    EXPECT_OK(transface_embed(ctx, images, NIMG, IMG, IMG, 0, emb, NIMG * EMB));
    CHECK(memcmp(emb, ref, sizeof ref) == 0, "results changed after failed calls");
    transface_context_free(ctx);
}

static void test_embedding(transface_model *m) {
    enum { N = NIMG, NE = NIMG * EMB, NP = NIMG * P };
    static float raw[NE], unit[NE], rawm[NE], flip[NE], flipraw[NE], e2[NE], expect[NE];
    static float pw[NP], ps[NP], pw2[NP], ps2[NP];
    transface_context *ctx = NULL;
    size_t i, j;
    double worst;
    int mb, ok;
    static const int batches[] = {1, 2, 3, 7, 16};

    section = "embedding: normalisation";
    embed_all(m, 1, 8, 0, images, unit, pw, ps);
    embed_all(m, 1, 8, TRANSFACE_EMBED_NO_NORMALIZE, images, raw, NULL, NULL);
    ok = 1;
    for (i = 0; i < N; i++) ok &= fabs(norm(unit + i * EMB, EMB) - 1) <= 1e-5;
    CHECK(ok, "default embeddings are not unit length");
    ok = 1;
    for (i = 0; i < N; i++) ok &= fabs(norm(raw + i * EMB, EMB) - 1) > 1e-3;
    CHECK(ok, "NO_NORMALIZE embeddings have unit length (they should be raw)");
    for (i = 0; i < N; i++) {
        double n = norm(raw + i * EMB, EMB);
        for (j = 0; j < EMB; j++) expect[i * EMB + j] = (float)(raw[i * EMB + j] / n);
    }
    worst = max_abs_diff(unit, expect, NE);
    CHECK(worst <= 1e-6, "default != normalize(NO_NORMALIZE): %g", worst);

    section = "embedding: flip";
    embed_all(m, 1, 8, TRANSFACE_EMBED_NO_NORMALIZE, mirrored, rawm, NULL, NULL);
    embed_all(m, 1, 8, TRANSFACE_EMBED_FLIP, images, flip, pw2, ps2);
    embed_all(m, 1, 8, TRANSFACE_EMBED_FLIP | TRANSFACE_EMBED_NO_NORMALIZE, images, flipraw, NULL, NULL);
    for (i = 0; i < NE; i++) e2[i] = raw[i] + rawm[i];
    worst = max_abs_diff(flipraw, e2, NE) / (1 + norm(e2, NE));
    CHECK(worst <= 1e-5, "FLIP|NO_NORMALIZE != raw(img) + raw(mirror): %g", worst);
    for (i = 0; i < N; i++) {
        double n = norm(e2 + i * EMB, EMB);
        for (j = 0; j < EMB; j++) expect[i * EMB + j] = (float)(e2[i * EMB + j] / n);
    }
    worst = max_abs_diff(flip, expect, NE);
    CHECK(worst <= 1e-5, "FLIP != normalize(raw(img) + raw(mirror)): %g", worst);
    CHECK(max_abs_diff(flip, unit, NE) > 1e-4, "FLIP changes nothing");
    CHECK(memcmp(pw, pw2, sizeof pw) == 0 && memcmp(ps, ps2, sizeof ps) == 0,
          "patch outputs with FLIP are not those of the unflipped image");

    section = "embedding: patches";
    ok = 1;
    for (i = 0; i < N; i++) {
        double s = 0;
        for (j = 0; j < P; j++) {
            float w = pw[i * P + j], sd = ps[i * P + j];
            s += w;
            ok &= w >= 0 && w <= 1 && sd >= 0 && isfinite(sd);
        }
        ok &= fabs(s - 1) <= 1e-5;
        if (fabs(s - 1) > 1e-5) fprintf(stderr, "  image %zu: patch weights sum to %.9g\n", i, s);
    }
    CHECK(ok, "patch weights do not sum to 1 or values out of range");
    memset(pw2, 0, sizeof pw2);
    embed_all(m, 1, 8, 0, images, NULL, pw2, NULL);
    CHECK(memcmp(pw, pw2, sizeof pw) == 0, "patch weights alone differ from patch weights with embeddings");
    memset(ps2, 0, sizeof ps2);
    embed_all(m, 1, 8, 0, images, NULL, NULL, ps2);
    CHECK(memcmp(ps, ps2, sizeof ps) == 0, "patch std alone differs");
    embed_all(m, 1, 8, 0, images, e2, NULL, NULL);
    CHECK(memcmp(unit, e2, sizeof unit) == 0, "embed_with_patches(embeddings only) differs from embed with patches");

    section = "embedding: batching is bit-exact";
    EXPECT_OK(transface_context_create(m, NULL, &ctx));
    if (ctx) {
        for (i = 0; i < N; i++)
            EXPECT_OK(transface_embed_with_patches(ctx, images + i * IMG_BYTES, 1, IMG, IMG, 0, e2 + i * EMB, EMB,
                                                   pw2 + i * P, P, ps2 + i * P, P));
        CHECK(memcmp(unit, e2, sizeof unit) == 0, "one by one != batch (embeddings; max diff %g)", max_abs_diff(unit, e2, NE));
        CHECK(memcmp(pw, pw2, sizeof pw) == 0 && memcmp(ps, ps2, sizeof ps) == 0,
              "one by one != batch (patches; max diff %g, %g)", max_abs_diff(pw, pw2, NP), max_abs_diff(ps, ps2, NP));
        EXPECT_OK(transface_embed(ctx, images, 3, IMG, IMG, 0, e2, 3 * EMB));
        EXPECT_OK(transface_embed(ctx, images + 3 * IMG_BYTES, N - 3, IMG, IMG, 0, e2 + 3 * EMB, (N - 3) * EMB));
        CHECK(memcmp(unit, e2, sizeof unit) == 0, "3 + 4 images != 7 at once (max diff %g)", max_abs_diff(unit, e2, NE));
        EXPECT_OK(transface_embed(ctx, images, N, IMG, IMG, 0, e2, NE + 100));
        CHECK(memcmp(unit, e2, sizeof unit) == 0, "repeated call differs");
        transface_context_free(ctx);
        ctx = NULL;
    }
    for (i = 0; i < sizeof batches / sizeof *batches; i++) {
        mb = batches[i];
        embed_all(m, 1, mb, 0, images, e2, pw2, ps2);
        CHECK(memcmp(unit, e2, sizeof unit) == 0 && memcmp(pw, pw2, sizeof pw) == 0 && memcmp(ps, ps2, sizeof ps) == 0,
              "max_batch %d changes the results (max diff %g, %g, %g)", mb, max_abs_diff(unit, e2, NE),
              max_abs_diff(pw, pw2, NP), max_abs_diff(ps, ps2, NP));
        embed_all(m, 1, mb, TRANSFACE_EMBED_FLIP, images, e2, NULL, NULL);
        CHECK(memcmp(flip, e2, sizeof flip) == 0, "max_batch %d changes FLIP results (max diff %g)", mb,
              max_abs_diff(flip, e2, NE));
    }

}

/* num_threads changes results by rounding only. */
static void test_embedding_threads(transface_model *m) {
    enum { NE = NIMG * EMB, NP = NIMG * P };
    static float unit[NE], pw[NP], ps[NP], flip[NE], e2[NE], pw2[NP], ps2[NP];
    double worst;
    section = "embedding: threads";
    embed_all(m, 1, 8, 0, images, unit, pw, ps);
    embed_all(m, 1, 8, TRANSFACE_EMBED_FLIP, images, flip, NULL, NULL);
    embed_all(m, 2, 8, 0, images, e2, pw2, ps2);
    worst = max_abs_diff(unit, e2, NE);
    CHECK(worst <= 1e-6, "2 threads vs 1: embeddings differ by %g", worst);
    worst = max_abs_diff(pw, pw2, NP);
    CHECK(worst <= 1e-6, "2 threads vs 1: patch weights differ by %g", worst);
    worst = max_abs_diff(ps, ps2, NP);
    CHECK(worst <= 1e-6, "2 threads vs 1: patch std differs by %g", worst);
    embed_all(m, 3, 2, TRANSFACE_EMBED_FLIP, images, e2, NULL, NULL);
    worst = max_abs_diff(flip, e2, NE);
    CHECK(worst <= 1e-6, "3 threads, max_batch 2, FLIP vs 1 thread: %g", worst);
}

/* A model whose raw embedding is zero: normalising must fail with NUMERIC, raw is fine. */
static void test_zero_embedding(void) {
    transface_builder *b = initialised_builder(21);
    transface_model *m = NULL;
    transface_context *ctx = NULL;
    float zeros[EMB] = {0}, emb[2 * EMB], pw[2 * P];
    int64_t dims[1] = {EMB};
    int i, all_zero = 1;
    section = "zero embedding";
    if (!b) return;
    EXPECT_OK(transface_builder_set_tensor(b, "feature.3.weight", zeros, TRANSFACE_DTYPE_F32, dims, 1));
    EXPECT_OK(transface_builder_set_tensor(b, "feature.3.bias", zeros, TRANSFACE_DTYPE_F32, dims, 1));
    EXPECT_OK(transface_builder_build(b, &m));
    transface_builder_free(b);
    if (!m) return;
    EXPECT_OK(transface_context_create(m, NULL, &ctx));
    if (ctx) {
        EXPECT_ERR(TRANSFACE_NUMERIC, transface_embed(ctx, images, 2, IMG, IMG, 0, emb, 2 * EMB));
        EXPECT_ERR(TRANSFACE_NUMERIC, transface_embed(ctx, images, 2, IMG, IMG, TRANSFACE_EMBED_FLIP, emb, 2 * EMB));
        EXPECT_OK(transface_embed(ctx, images, 2, IMG, IMG, TRANSFACE_EMBED_NO_NORMALIZE, emb, 2 * EMB));
        for (i = 0; i < 2 * EMB; i++) all_zero &= emb[i] == 0;
        CHECK(all_zero, "raw embedding of the zero head is not zero");
        EXPECT_ERR(TRANSFACE_NUMERIC, transface_compare(emb, emb + EMB, EMB, &zeros[0]));
        EXPECT_OK(transface_embed_with_patches(ctx, images, 2, IMG, IMG, 0, NULL, 0, pw, 2 * P, NULL, 0));
    }
    transface_context_free(ctx);
    transface_model_free(m);
}

/* Images are always RGB; a BGR network gets the channels reversed by the library: the BGR
 * model on an image equals the same weights as an RGB model on the channel-swapped image. */
static void test_channel_order(void) {
    enum { NE = NIMG * EMB, NP = NIMG * P };
    static float a[NE], b[NE], c[NE], pa[NP], pb[NP];
    transface_builder *bld = initialised_builder(1);
    transface_model *rgb = NULL, *bgr = NULL;
    transface_preprocess pre = { .struct_size = sizeof pre };
    uint8_t *swapped = xmalloc((size_t)NIMG * IMG_BYTES);
    size_t i;
    section = "channel order";
    for (i = 0; i < (size_t)NIMG * IMG_BYTES; i += 3) {
        swapped[i] = images[i + 2]; swapped[i + 1] = images[i + 1]; swapped[i + 2] = images[i];
    }
    if (bld) {
        pre.input_width = pre.input_height = IMG;
        pre.mean[0] = 0.3f; pre.mean[1] = 0.5f; pre.mean[2] = 0.7f;
        pre.std[0] = 0.2f; pre.std[1] = 0.4f; pre.std[2] = 0.6f;
        for (i = 0; i < 10; i++) pre.align_template[i] = 40.0f + (float)i;
        pre.channel_order = TRANSFACE_CHANNELS_RGB;
        EXPECT_OK(transface_builder_set_preprocess(bld, &pre));
        EXPECT_OK(transface_builder_build(bld, &rgb));
        pre.channel_order = TRANSFACE_CHANNELS_BGR;
        EXPECT_OK(transface_builder_set_preprocess(bld, &pre));
        EXPECT_OK(transface_builder_build(bld, &bgr));
        transface_builder_free(bld);
    }
    if (rgb && bgr) {
        embed_all(bgr, 1, 8, TRANSFACE_EMBED_NO_NORMALIZE, images, a, pa, NULL);
        embed_all(rgb, 1, 8, TRANSFACE_EMBED_NO_NORMALIZE, swapped, b, pb, NULL);
        embed_all(rgb, 1, 8, TRANSFACE_EMBED_NO_NORMALIZE, images, c, NULL, NULL);
        CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(pa, pb, sizeof pa) == 0,
              "BGR model on RGB images != RGB model on channel-swapped images (max diff %g)", max_abs_diff(a, b, NE));
        CHECK(max_abs_diff(a, c, NE) > 1e-4, "channel_order BGR changes nothing");
        embed_all(bgr, 1, 8, TRANSFACE_EMBED_FLIP, images, a, NULL, NULL);
        embed_all(rgb, 1, 8, TRANSFACE_EMBED_FLIP, swapped, b, NULL, NULL);
        CHECK(memcmp(a, b, sizeof a) == 0, "BGR with FLIP differs (max diff %g)", max_abs_diff(a, b, NE));
    }
    transface_model_free(rgb);
    transface_model_free(bgr);
    free(swapped);
}

/* In-memory model (builder_build) == the same model saved and loaded, bit for bit. */
static void test_build_equals_load(transface_model *loaded) {
    transface_model *built = built_model(1);
    float a[NIMG * EMB], b[NIMG * EMB];
    section = "builder_build == save + load";
    if (!built) return;
    embed_all(built, 1, 8, TRANSFACE_EMBED_NO_NORMALIZE, images, a, NULL, NULL);
    embed_all(loaded, 1, 8, TRANSFACE_EMBED_NO_NORMALIZE, images, b, NULL, NULL);
    CHECK(memcmp(a, b, sizeof a) == 0, "in-memory model and loaded file give different embeddings");
    transface_model_free(built);
}

/* The context keeps the model alive. */
static void test_model_freed_before_context(void) {
    transface_model *m = built_model(1), *ref = built_model(1);
    transface_context *ctx = NULL;
    float a[NIMG * EMB], b[NIMG * EMB];
    section = "model freed before context";
    if (!m || !ref) { transface_model_free(m); transface_model_free(ref); return; }
    embed_all(ref, 1, 8, 0, images, a, NULL, NULL);
    transface_model_free(ref);
    EXPECT_OK(transface_context_create(m, NULL, &ctx));
    transface_model_free(m);
    if (!ctx) return;
    memset(b, 0, sizeof b);
    EXPECT_OK(transface_embed(ctx, images, NIMG, IMG, IMG, 0, b, NIMG * EMB));
    CHECK(memcmp(a, b, sizeof a) == 0, "embeddings differ after the model was freed");
    transface_context_free(ctx);
}

/* ------------------------------------------------------------------ threads */

struct error_thread {
    int initially_empty, bad, iterations;
    char first[256];
};

static void *error_thread_main(void *arg) {
    struct error_thread *t = arg;
    transface_model *m = NULL;
    int i;
    t->initially_empty = transface_last_error() != NULL && transface_last_error()[0] == 0;
    for (i = 0; i < t->iterations; i++) {
        if (transface_model_load("/nonexistent-transface-dir/thread-b.tfm", NULL, &m) != TRANSFACE_IO) t->bad++;
        if (i == 0) snprintf(t->first, sizeof t->first, "%s", transface_last_error());
        else if (strcmp(t->first, transface_last_error()) != 0) t->bad++;
    }
    return NULL;
}

struct embed_thread {
    transface_model *model;
    const float *expected;
    int bad, iterations;
};

static void *embed_thread_main(void *arg) {
    struct embed_thread *t = arg;
    transface_context *ctx = NULL;
    float emb[NIMG * EMB];
    int i;
    if (transface_context_create(t->model, NULL, &ctx) != TRANSFACE_OK) { t->bad++; return NULL; }
    for (i = 0; i < t->iterations; i++) {
        if (transface_embed(ctx, images, NIMG, IMG, IMG, 0, emb, NIMG * EMB) != TRANSFACE_OK ||
            memcmp(emb, t->expected, sizeof emb) != 0) t->bad++;
    }
    transface_context_free(ctx);
    return NULL;
}

static void test_threads(transface_model *m) {
    struct error_thread et;
    struct embed_thread e1, e2;
    pthread_t th, t1, t2;
    char mine[256];
    float a[4] = {1, 0, 0, 0}, out;
    static float expected[NIMG * EMB];
    int i, mine_bad = 0, created, created2;

    section = "last_error is per thread";
    memset(&et, 0, sizeof et);
    et.iterations = 2000;
    EXPECT_ERR(TRANSFACE_INVALID_ARGUMENT, transface_compare(a, NULL, 4, &out));
    snprintf(mine, sizeof mine, "%s", transface_last_error());
    created = pthread_create(&th, NULL, error_thread_main, &et) == 0;
    CHECK(created, "pthread_create");
    for (i = 0; i < 2000; i++) {
        if (transface_compare(a, NULL, 4, &out) != TRANSFACE_INVALID_ARGUMENT) mine_bad++;
        if (strcmp(mine, transface_last_error()) != 0) mine_bad++;
    }
    if (created) pthread_join(th, NULL);
    CHECK(et.initially_empty, "a new thread's last_error is not \"\" although another thread failed");
    CHECK(et.bad == 0, "thread B saw %d wrong messages", et.bad);
    CHECK(mine_bad == 0, "thread A saw %d wrong messages", mine_bad);
    CHECK(strcmp(mine, transface_last_error()) == 0, "thread B's errors changed thread A's message to \"%s\"",
          transface_last_error());
    CHECK(strcmp(mine, et.first) != 0, "threads A and B got the same message");

    section = "contexts in parallel share a model";
    embed_all(m, 1, 8, 0, images, expected, NULL, NULL);
    e1.model = e2.model = m;
    e1.expected = e2.expected = expected;
    e1.bad = e2.bad = 0;
    e1.iterations = e2.iterations = 20;
    created = pthread_create(&t1, NULL, embed_thread_main, &e1) == 0;
    created2 = pthread_create(&t2, NULL, embed_thread_main, &e2) == 0;
    CHECK(created && created2, "pthread_create");
    if (created) pthread_join(t1, NULL);
    if (created2) pthread_join(t2, NULL);
    CHECK(e1.bad == 0 && e2.bad == 0, "parallel contexts gave different results (%d, %d)", e1.bad, e2.bad);
}

/* ------------------------------------------------------------------ main */

static int isolate = 1;
static transface_model *main_model;
static char main_model_path[512];

static void run(const char *name, void (*fn)(void)) {
    int fds[2], status = 0;
    struct counts c;
    ssize_t got;
    pid_t pid;
    if (!isolate) { fn(); return; }
    fflush(NULL);
    if (pipe(fds) != 0 || (pid = fork()) < 0) { perror("fork"); exit(2); }
    if (pid == 0) {
        close(fds[0]);
        result_fd = fds[1];
        passed = failed = 0;
        fn();
        fflush(NULL);
        send_counts(0);
        _exit(0);
    }
    close(fds[1]);
    got = read(fds[0], &c, sizeof c);
    close(fds[0]);
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof c) {
        failed++;
        fprintf(stderr, "FAIL [%s] the child process died without reporting (wait status 0x%x)\n", name, status);
        return;
    }
    passed += c.passed;
    failed += c.failed;
    if (!c.crashed && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        failed++;  /* e.g. valgrind's --error-exitcode after a leak or invalid access */
        fprintf(stderr, "FAIL [%s] the child process exited with wait status 0x%x\n", name, status);
    }
}

static void section_model_errors(void) { test_model_errors(main_model); }
static void section_load_errors(void) { test_load_errors(main_model_path); }
static void section_context_errors(void) { test_context_errors(main_model); }
static void section_embedding(void) { test_embedding(main_model); }
static void section_embedding_threads(void) { test_embedding_threads(main_model); }
static void section_build_equals_load(void) { test_build_equals_load(main_model); }
static void section_threads(void) { test_threads(main_model); }

int main(void) {
    const char *base = getenv("TMPDIR");
    transface_builder *b;

    /* before anything failed on this thread */
    CHECK(transface_last_error() != NULL && transface_last_error()[0] == 0, "last_error is \"%s\" before any failure",
          transface_last_error() ? transface_last_error() : "(NULL)");
    verbose = getenv("TRANSFACE_TEST_VERBOSE") != NULL && strcmp(getenv("TRANSFACE_TEST_VERBOSE"), "0") != 0;
    install_crash_handlers();
    snprintf(tmpdir, sizeof tmpdir, "%s/transface-abi-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
    make_images();

    isolate = !(getenv("TRANSFACE_TEST_NOFORK") && strcmp(getenv("TRANSFACE_TEST_NOFORK"), "0") != 0);
    run("versions", test_versions_and_statuses);
    run("presets", test_presets);
    run("compare", test_compare);
    run("builder errors", test_builder_errors);
    run("failed set_tensor", test_failed_set_tensor_keeps_builder);
    run("round trip", test_round_trip);

    section = "main model";
    b = initialised_builder(1);
    EXPECT_OK(transface_builder_save(b, tmp_path(main_model_path, "model.tfm")));
    transface_builder_free(b);
    EXPECT_OK(transface_model_load(main_model_path, NULL, &main_model));
    if (main_model) {
        run("model accessors", section_model_errors);
        run("loading damaged files", section_load_errors);
        run("context errors", section_context_errors);
        run("embedding", section_embedding);
        run("embedding threads", section_embedding_threads);
        run("zero embedding", test_zero_embedding);
        run("channel order", test_channel_order);
        run("build == load", section_build_equals_load);
        run("model freed first", test_model_freed_before_context);
        run("threads", section_threads);
        transface_model_free(main_model);
    }

    remove_tmpdir();
    free(images);
    free(mirrored);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
