/* Matmul backend comparison on libtransface's shapes (issue: peak speed). Not a test.
 *
 * For each ViT Linear of vit_t and vit_s (qkv, proj, fc1, fc2), each row count M (one image's
 * 144 tokens, a batch of 8 and of 32) and 1 or 2 threads, times:
 *   openblas      Debian's OpenBLAS (cblas_sgemm on the unpacked [N x K] weight, re-packed per call)
 *   openblas-new  the newest OpenBLAS from the scipy-openblas32 wheel (dlopen'ed; fp32 only)
 *   dnnl-cols     oneDNN's matmul primitive, weights reordered once to its blocked layout, output
 *                 columns split between the threads (one packed weight slice each)
 *   dnnl-rows     the same, rows split between the threads, one packed weight shared
 *   dnnl-rows-bf16  dnnl-rows with bf16 source and weights, f32 output (AVX512_BF16 CPUs)
 *   xsmm          libxsmm JIT kernels over 64-column panels of weights packed once
 * With 2 threads the product is split between two pthreads (by output columns unless named
 * -rows), each running the backend single-threaded (as libtransface's worker pool does); "dnnl-omp" lets oneDNN use its
 * own 2 OpenMP threads on the whole product instead. Also the two backward products of training
 * (dX = dY.W, dW = dY^T.X) for openblas and dnnl, and a plain FMA loop (the peak).
 * Prints one line per measurement: shape, M, library, threads, GFLOP/s, % of the measured peak.
 * Build and run: bash bindings/c/bench-matmul-backends.sh */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <immintrin.h>
#include <libxsmm.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static float *alloc_floats(size_t n) {
    float *p = aligned_alloc(64, ((n * 4 + 63) / 64) * 64);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

#define CHECK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "%s: %d\n", #x, s_); exit(1); } } while (0)

/* ---- the measured FMA peak: 12 independent accumulators per thread ---- */
/* 12 independent FMA chains in named registers (covers 2 pipes x 4-5 cycles of latency). */
#define FMA_CHAINS(T, SET1, FMA, iters, out)                                                        \
    T a0 = SET1(0), a1 = SET1(1), a2 = SET1(2), a3 = SET1(3), a4 = SET1(4), a5 = SET1(5);           \
    T a6 = SET1(6), a7 = SET1(7), a8 = SET1(8), a9 = SET1(9), a10 = SET1(10), a11 = SET1(11);        \
    T b = SET1(1.0000001f), c = SET1(1e-7f);                                                        \
    for (long it = 0; it < iters; it++) {                                                           \
        a0 = FMA(a0, b, c); a1 = FMA(a1, b, c); a2 = FMA(a2, b, c); a3 = FMA(a3, b, c);             \
        a4 = FMA(a4, b, c); a5 = FMA(a5, b, c); a6 = FMA(a6, b, c); a7 = FMA(a7, b, c);             \
        a8 = FMA(a8, b, c); a9 = FMA(a9, b, c); a10 = FMA(a10, b, c); a11 = FMA(a11, b, c);         \
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));          \
    }                                                                                               \
    T s_ = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;                             \
    memcpy(out, &s_, 4)
__attribute__((target("avx512f"))) static void *fma512(void *arg) {
    long iters = *(long *)arg;
    FMA_CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, iters, arg);
    return NULL;
}
__attribute__((target("avx2,fma"))) static void *fma256(void *arg) {
    long iters = *(long *)arg;
    FMA_CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, iters, arg);
    return NULL;
}
static double fma_peak(int threads, int avx512) {
    long iters = 20000000;
    long args[2] = {iters, iters};
    pthread_t th;
    double t0 = now();
    if (threads == 2) pthread_create(&th, NULL, avx512 ? fma512 : fma256, &args[1]);
    (avx512 ? fma512 : fma256)(&args[0]);
    if (threads == 2) pthread_join(th, NULL);
    double dt = now() - t0;
    return threads * (double)iters * 12 * (avx512 ? 16 : 8) * 2 / dt / 1e9;
}

/* ---- timing harness: runs fn(ctx, part) on `threads` threads (part 0 on the caller); the second
 * thread is persistent and spins between calls, as libtransface's worker pool does ---- */
typedef void (*part_fn)(void *ctx, int part, int parts);
static struct { part_fn fn; void *ctx; int parts; _Atomic long go, done; } helper;
static void *helper_main(void *unused) {
    (void)unused;
    omp_set_num_threads(1);  /* each thread runs its backend single-threaded (a per-thread setting) */
    long seen = 0;
    for (;;) {
        /* spin, then yield, so that an OpenMP team (dnnl-omp) gets the core while this one idles */
        for (int spins = 0; helper.go == seen; spins++) { if (spins < 20000) __builtin_ia32_pause(); else sched_yield(); }
        seen = helper.go;
        if (!helper.fn) return NULL;
        helper.fn(helper.ctx, 1, helper.parts);
        helper.done = seen;
    }
}
static void run_parts(part_fn fn, void *ctx, int threads) {
    if (threads == 1) { fn(ctx, 0, 1); return; }
    static pthread_t th;
    static int started;
    if (!started) { pthread_create(&th, NULL, helper_main, NULL); started = 1; }
    helper.fn = fn; helper.ctx = ctx; helper.parts = threads;
    long ticket = helper.go + 1;
    helper.go = ticket;
    fn(ctx, 0, threads);
    while (helper.done != ticket) __builtin_ia32_pause();
}
/* median GFLOP/s over repetitions filling ~`budget` seconds */
static double measure(part_fn fn, void *ctx, int threads, double flops, double budget) {
    run_parts(fn, ctx, threads);
    double t0 = now(), t1;
    int reps = 0;
    do { run_parts(fn, ctx, threads); reps++; t1 = now(); } while (t1 - t0 < budget / 4);
    int per = reps > 3 ? reps / 3 : 1;
    double best[9]; int n = 0;
    for (int r = 0; r < 9; r++) {
        double s = now();
        for (int i = 0; i < per; i++) run_parts(fn, ctx, threads);
        best[n++] = (now() - s) / per;
    }
    for (int i = 0; i < n; i++) for (int k = i + 1; k < n; k++) if (best[k] < best[i]) { double t = best[i]; best[i] = best[k]; best[k] = t; }
    return flops / best[n / 2] / 1e9;
}

static void column_split(int n, int part, int parts, int *lo, int *hi) {
    int blocks = (n + 15) / 16, base = blocks / parts, extra = blocks % parts;
    int b0 = part * base + (part < extra ? part : extra), b1 = b0 + base + (part < extra);
    *lo = b0 * 16; *hi = b1 * 16 < n ? b1 * 16 : n;
}

/* ---- OpenBLAS (Debian, and the wheel's through dlopen) ---- */
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
typedef struct { sgemm_fn gemm; int m, n, k; const float *x, *w; float *y; } blas_ctx;
static void blas_fwd(void *c, int part, int parts) {
    blas_ctx *b = c; int lo, hi;
    column_split(b->n, part, parts, &lo, &hi);
    b->gemm(CblasRowMajor, CblasNoTrans, CblasTrans, b->m, hi - lo, b->k, 1, b->x, b->k, b->w + (size_t)lo * b->k, b->k, 0, b->y + lo, b->n);
}
/* dX[m x k] = dY[m x n] . W[n x k]: rows split */
static void blas_bwd_data(void *c, int part, int parts) {
    blas_ctx *b = c; int r0 = b->m * part / parts, r1 = b->m * (part + 1) / parts;
    b->gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, b->k, b->n, 1, b->y + (size_t)r0 * b->n, b->n, b->w, b->k, 0, (float *)b->x + (size_t)r0 * b->k, b->k);
}
/* dW[n x k] += dY^T . X: output rows of dW split */
static void blas_bwd_weights(void *c, int part, int parts) {
    blas_ctx *b = c; int lo, hi;
    column_split(b->n, part, parts, &lo, &hi);
    b->gemm(CblasRowMajor, CblasTrans, CblasNoTrans, hi - lo, b->k, b->m, 1, b->y + lo, b->n, b->x, b->k, 1, (float *)b->w + (size_t)lo * b->k, b->k);
}
static void debian_sgemm(int o, int ta, int tb, int m, int n, int k, float al, const float *a, int lda, const float *b, int ldb, float be, float *c, int ldc) {
    cblas_sgemm(o, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
}

/* ---- oneDNN matmul primitive ---- */
static dnnl_engine_t engine;
static dnnl_stream_t stream;
typedef struct {
    dnnl_primitive_t prim[2];
    dnnl_memory_t src[2], wei[2], dst[2];
} dnnl_ctx;
/* out[m x n] = x[m x k] . W^T for columns [lo, hi) of W [n x k] (row stride k), packed once. */
static void dnnl_make(dnnl_ctx *d, int slot, int m, int k, int lo, int hi, const void *x, const float *w, float *y,
                      int ldy, int bf16, const uint16_t *w16) {
    dnnl_dims_t sd = {m, k}, wd = {k, hi - lo}, dd = {m, hi - lo}, ws = {1, k}, ds = {ldy, 1};
    dnnl_memory_desc_t smd, wmd_user, wmd_any, dmd;
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    CHECK(dnnl_memory_desc_init_by_tag(&smd, 2, sd, dt, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_strides(&wmd_user, 2, wd, dt, ws));
    CHECK(dnnl_memory_desc_init_by_tag(&wmd_any, 2, wd, dt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_strides(&dmd, 2, dd, dnnl_f32, ds));
    dnnl_matmul_desc_t desc;
    CHECK(dnnl_matmul_desc_init(&desc, &smd, &wmd_any, NULL, &dmd));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL));
    const dnnl_memory_desc_t *packed = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t user;
    const void *wsrc = bf16 ? (const void *)(w16 + (size_t)lo * k) : (const void *)(w + (size_t)lo * k);
    CHECK(dnnl_memory_create(&user, &wmd_user, engine, (void *)wsrc));
    CHECK(dnnl_memory_create(&d->wei[slot], packed, engine, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t reorder;
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, &wmd_user, engine, packed, engine, NULL));
    CHECK(dnnl_primitive_create(&reorder, rpd));
    dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, d->wei[slot]}};
    CHECK(dnnl_primitive_execute(reorder, stream, 2, rargs));
    CHECK(dnnl_stream_wait(stream));
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(user);
    CHECK(dnnl_primitive_create(&d->prim[slot], pd));
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    static char last[64];
    if (impl && strcmp(last, impl)) { fprintf(stderr, "# oneDNN matmul impl: %s\n", impl); snprintf(last, sizeof last, "%s", impl); }
    dnnl_primitive_desc_destroy(pd);
    CHECK(dnnl_memory_create(&d->src[slot], &smd, engine, (void *)x));
    CHECK(dnnl_memory_create(&d->dst[slot], &dmd, engine, y + lo));
}
/* Row split: part p computes rows [m*p/parts, m*(p+1)/parts) of the whole product with its own
 * primitive; all parts read one weight packed once (the packed layout does not depend on M). */
static void dnnl_make_rows(dnnl_ctx *d, int parts, int m, int n, int k, const void *x, const float *w, float *y,
                           int bf16, const uint16_t *w16) {
    for (int p = 0; p < parts; p++) {
        int r0 = m * p / parts, r1 = m * (p + 1) / parts;
        const char *xb = (const char *)x + (size_t)r0 * k * (bf16 ? 2 : 4);
        dnnl_make(d, p, r1 - r0, k, 0, n, xb, w, y + (size_t)r0 * n, n, bf16, w16);
        if (p > 0) { dnnl_memory_destroy(d->wei[p]); d->wei[p] = d->wei[0]; }
    }
}
static void dnnl_free_rows(dnnl_ctx *d, int parts) {
    for (int p = 1; p < parts; p++) d->wei[p] = NULL;
    for (int s = 0; s < parts; s++) {
        dnnl_primitive_destroy(d->prim[s]);
        dnnl_memory_destroy(d->src[s]); dnnl_memory_destroy(d->dst[s]);
    }
    dnnl_memory_destroy(d->wei[0]);
}
static void dnnl_run(void *c, int part, int parts) {
    dnnl_ctx *d = c;
    (void)parts;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, d->src[part]}, {DNNL_ARG_WEIGHTS, d->wei[part]}, {DNNL_ARG_DST, d->dst[part]}};
    CHECK(dnnl_primitive_execute(d->prim[part], stream, 3, args));
}
static void dnnl_free(dnnl_ctx *d, int slots) {
    for (int s = 0; s < slots; s++) {
        dnnl_primitive_destroy(d->prim[s]);
        dnnl_memory_destroy(d->src[s]); dnnl_memory_destroy(d->wei[s]); dnnl_memory_destroy(d->dst[s]);
    }
}
/* Generic 2-D matmul C[m x n] = A(m x k, strides as) . B(k x n, strides bs), B packed once when `pack`. */
static void dnnl_make_general(dnnl_ctx *d, int m, int n, int k, const float *a, const dnnl_dims_t as,
                              const float *b, const dnnl_dims_t bs, float *c, int pack) {
    dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n};
    dnnl_memory_desc_t amd, bmd, bany, cmd;
    CHECK(dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_f32, as));
    CHECK(dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_f32, bs));
    CHECK(dnnl_memory_desc_init_by_tag(&bany, 2, bd, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&cmd, 2, cd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t desc;
    CHECK(dnnl_matmul_desc_init(&desc, &amd, pack ? &bany : &bmd, NULL, &cmd));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL));
    const dnnl_memory_desc_t *packed = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    CHECK(dnnl_memory_create(&d->wei[0], packed, engine, pack ? DNNL_MEMORY_ALLOCATE : (void *)b));
    if (pack) {
        dnnl_memory_t user; dnnl_primitive_desc_t rpd; dnnl_primitive_t reorder;
        CHECK(dnnl_memory_create(&user, &bmd, engine, (void *)b));
        CHECK(dnnl_reorder_primitive_desc_create(&rpd, &bmd, engine, packed, engine, NULL));
        CHECK(dnnl_primitive_create(&reorder, rpd));
        dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, d->wei[0]}};
        CHECK(dnnl_primitive_execute(reorder, stream, 2, rargs));
        dnnl_primitive_destroy(reorder); dnnl_primitive_desc_destroy(rpd); dnnl_memory_destroy(user);
    }
    CHECK(dnnl_primitive_create(&d->prim[0], pd));
    dnnl_primitive_desc_destroy(pd);
    CHECK(dnnl_memory_create(&d->src[0], &amd, engine, (void *)a));
    CHECK(dnnl_memory_create(&d->dst[0], &cmd, engine, c));
}

/* ---- libxsmm: JIT kernel per 64-column panel, weights packed once into panels [k x 64] ---- */
typedef struct { libxsmm_smmfunction kernel; int m, n, k; const float *x; float *panels, *y; } xsmm_ctx;
static void xsmm_run(void *c, int part, int parts) {
    xsmm_ctx *s = c;
    int panels = (s->n + 63) / 64, p0 = panels * part / parts, p1 = panels * (part + 1) / parts;
    /* libxsmm is column-major: C^T[n x m] = W-panel^T[64 x k] . X^T[k x m] => call with A = panel (64 x k, ld 64), B = X^T (k x m, ld k) */
    for (int p = p0; p < p1; p++)
        for (int r = 0; r < s->m; r += 48)
            s->kernel(s->panels + (size_t)p * s->k * 64, s->x + (size_t)r * s->k, s->y + (size_t)r * s->n + p * 64);
}

static const struct { const char *name; int n_mult, k_mult; } layers[] = {{"qkv", 3, 1}, {"proj", 1, 1}, {"fc1", 4, 1}, {"fc2", 1, 4}};

static uint16_t to_bf16(float f) { uint32_t u; memcpy(&u, &f, 4); u += 0x7fff + ((u >> 16) & 1); return (uint16_t)(u >> 16); }

int main(int argc, char **argv) {
    double budget = argc > 1 ? atof(argv[1]) : 0.3;
    openblas_set_num_threads(1);
    omp_set_num_threads(1);
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    const char *newlib = getenv("SCIPY_OPENBLAS");
    sgemm_fn new_sgemm = NULL;
    if (newlib) {
        void *h = dlopen(newlib, RTLD_NOW | RTLD_LOCAL);
        if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
        new_sgemm = (sgemm_fn)dlsym(h, "scipy_cblas_sgemm");
        void (*set)(int) = (void (*)(int))dlsym(h, "scipy_openblas_set_num_threads");
        char *(*core)(void) = (char *(*)(void))dlsym(h, "scipy_openblas_get_corename");
        if (set) set(1);
        if (core) printf("# openblas-new core: %s\n", core());
    }
    /* What oneDNN may use (DNNL_MAX_CPU_ISA=AVX2 caps it, e.g. to see a Zen 3-like machine; set
     * LIBXSMM_TARGET=hsw beside it for libxsmm): the peak column follows the cap. */
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    int avx512 = __builtin_cpu_supports("avx512f") && (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
    int bf16 = (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
    printf("# Debian OpenBLAS core: %s; oneDNN %d.%d; OPENBLAS_CORETYPE=%s\n", openblas_get_corename(),
           dnnl_version()->major, dnnl_version()->minor, getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)");
    double peak[3];
    for (int t = 1; t <= 2; t++) {
        double p = 0;
        for (int r = 0; r < 3; r++) { double v = fma_peak(t, avx512); if (v > p) p = v; }
        peak[t] = p;
        printf("# FMA peak (%s, %d thread%s): %.1f GFLOP/s", avx512 ? "AVX-512" : "AVX2", t, t > 1 ? "s" : "", p);
        if (avx512) printf(" (AVX2: %.1f)", fma_peak(t, 0));
        else if (__builtin_cpu_supports("avx512f")) printf(" (oneDNN capped below AVX-512)");
        printf("\n");
    }
    printf("%-10s %5s %-15s %7s %8s %7s\n", "shape", "M", "library", "threads", "GFLOP/s", "%peak");
    const int dims[] = {256, 512};
    const int ms[] = {144, 1152, 4608};
    for (int di = 0; di < 2; di++) for (int li = 0; li < 4; li++) for (int mi = 0; mi < 3; mi++) {
        int d = dims[di], n = d * layers[li].n_mult, k = d * layers[li].k_mult, m = ms[mi];
        char shape[32];
        snprintf(shape, sizeof shape, "%s_%s", di ? "vit_s" : "vit_t", layers[li].name);
        float *x = alloc_floats((size_t)m * k), *w = alloc_floats((size_t)n * k), *y = alloc_floats((size_t)m * n);
        double flops = 2.0 * m * n * k;
#define REPORT(lib, t, g) do { double g_ = (g); printf("%-10s %5d %-15s %7d %8.1f %6.0f%%\n", shape, m, lib, t, g_, 100 * g_ / peak[t]); fflush(stdout); } while (0)
        for (int t = 1; t <= 2; t++) {
            blas_ctx b = {debian_sgemm, m, n, k, x, w, y};
            REPORT("openblas", t, measure(blas_fwd, &b, t, flops, budget));
            if (new_sgemm) { b.gemm = new_sgemm; REPORT("openblas-new", t, measure(blas_fwd, &b, t, flops, budget)); }
            dnnl_ctx dc;
            for (int p = 0; p < t; p++) { int lo, hi; column_split(n, p, t, &lo, &hi); dnnl_make(&dc, p, m, k, lo, hi, x, w, y, n, 0, NULL); }
            REPORT("dnnl-cols", t, measure(dnnl_run, &dc, t, flops, budget));
            dnnl_free(&dc, t);
            dnnl_make_rows(&dc, t, m, n, k, x, w, y, 0, NULL);
            REPORT("dnnl-rows", t, measure(dnnl_run, &dc, t, flops, budget));
            dnnl_free_rows(&dc, t);
            if (bf16) {
                uint16_t *x16 = malloc((size_t)m * k * 2), *w16 = malloc((size_t)n * k * 2);
                for (size_t i = 0; i < (size_t)m * k; i++) x16[i] = to_bf16(x[i]);
                for (size_t i = 0; i < (size_t)n * k; i++) w16[i] = to_bf16(w[i]);
                dnnl_make_rows(&dc, t, m, n, k, x16, w, y, 1, w16);
                REPORT("dnnl-rows-bf16", t, measure(dnnl_run, &dc, t, flops, budget));
                dnnl_free_rows(&dc, t);
                free(x16); free(w16);
            }
            if (n % 64 == 0) {
                xsmm_ctx s = {0};
                s.m = m; s.n = n; s.k = k; s.x = x; s.y = y;
                float alpha = 1, beta = 0;
                /* column-major C[64 x 48] per 48-row tile (ldc n) = A[64 x k] (lda 64) . B[k x m] (ldb k) */
                libxsmm_blasint M = 64, N = 48, K = k, lda = 64, ldb = k, ldc = n;
                s.kernel = libxsmm_smmdispatch(M, N, K, &lda, &ldb, &ldc, &alpha, &beta, NULL, NULL);
                if (s.kernel) {
                    s.panels = alloc_floats((size_t)n * k);
                    for (int p = 0; p < n / 64; p++) for (int kk = 0; kk < k; kk++) for (int j = 0; j < 64; j++)
                        s.panels[(size_t)p * k * 64 + (size_t)kk * 64 + j] = w[(size_t)(p * 64 + j) * k + kk];
                    REPORT("xsmm", t, measure(xsmm_run, &s, t, flops, budget));
                    free(s.panels);
                } else {
                    printf("%-10s %5d %-15s %7d %8s\n", shape, m, "xsmm", t, "no-jit");
                }
            }
        }
        /* oneDNN with its own 2 OpenMP threads over the whole product */
        {
            omp_set_num_threads(2);
            dnnl_ctx dc;
            dnnl_make(&dc, 0, m, k, 0, n, x, w, y, n, 0, NULL);
            REPORT("dnnl-omp", 2, measure(dnnl_run, &dc, 1, flops, budget));
            dnnl_free(&dc, 1);
            omp_set_num_threads(1);
        }
        /* training's backward products */
        for (int t = 1; t <= 2; t++) {
            blas_ctx b = {debian_sgemm, m, n, k, x, w, y};
            REPORT("openblas-dX", t, measure(blas_bwd_data, &b, t, flops, budget));
            REPORT("openblas-dW", t, measure(blas_bwd_weights, &b, t, flops, budget));
        }
        {
            /* dX[m x k] = dY[m x n] . W[n x k] with W packed once; oneDNN's own threads */
            for (int t = 1; t <= 2; t++) {
                omp_set_num_threads(t);
                dnnl_ctx dc;
                dnnl_dims_t as = {n, 1}, bs = {k, 1};
                dnnl_make_general(&dc, m, k, n, y, as, w, bs, x, 1);
                REPORT("dnnl-dX-omp", t, measure(dnnl_run, &dc, 1, flops, budget));
                dnnl_free(&dc, 1);
                /* dW^T[k x n] = X^T[k x m] . dY[m x n] (written, not accumulated) */
                float *dw = alloc_floats((size_t)n * k);
                dnnl_dims_t as2 = {1, k}, bs2 = {n, 1};
                dnnl_make_general(&dc, k, n, m, x, as2, y, bs2, dw, 0);
                REPORT("dnnl-dW-omp", t, measure(dnnl_run, &dc, 1, flops, budget));
                dnnl_free(&dc, 1);
                free(dw);
            }
            omp_set_num_threads(1);
        }
        free(x); free(w); free(y);
    }
    return 0;
}
