/* Thread-safety under load: 8 threads share one model, each with its own context, embedding
 * different batches for TRANSFACE_STRESS_SECONDS (default 30) and checking every result against
 * a single-threaded run; meanwhile other threads load and free models concurrently and check
 * that transface_last_error stays per thread. Prints throughput, mismatches and
 * "N passed, M failed". */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

enum { WORKERS = 8, BATCHES = 16, MAX_BATCH = 3, SIDE = 112, IMAGE = SIDE * SIDE * 3, LOADERS = 2 };

static transface_model *model;
static uint8_t *images;              /* BATCHES * MAX_BATCH images */
static float *expected;              /* BATCHES * MAX_BATCH * E */
static int embedding_size;
static double deadline;
static char model_path[256];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long embedded, mismatches, loads, worker_errors;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *worker(void *arg) {
    int id = (int)(size_t)arg, k, threads = 1 + id % 2;
    long done = 0, bad = 0, errors = 0;
    transface_context_params p = transface_context_default_params();
    transface_context *ctx = NULL;
    float *out = malloc(sizeof(float) * MAX_BATCH * (size_t)embedding_size);
    p.num_threads = threads;
    p.max_batch = 1 + id % MAX_BATCH;
    if (!out || transface_context_create(model, &p, &ctx) != TRANSFACE_OK) errors++;
    for (k = id; ctx && out && now() < deadline; k++) {
        int b = k % BATCHES, n = 1 + k % MAX_BATCH;
        const uint8_t *src = images + (size_t)b * MAX_BATCH * IMAGE;
        const float *want = expected + (size_t)b * MAX_BATCH * embedding_size;
        int i;
        if (transface_embed(ctx, src, (size_t)n, SIDE, SIDE, 0, out, (size_t)n * embedding_size) != TRANSFACE_OK) {
            errors++;
            continue;
        }
        /* bit-identical when this context has 1 worker thread; within 1e-6 with 2 */
        for (i = 0; i < n * embedding_size; i++) {
            float d = out[i] - want[i];
            if (threads == 1 ? out[i] != want[i] : (d > 1e-6f || d < -1e-6f)) { bad++; break; }
        }
        done += n;
    }
    transface_context_free(ctx);
    free(out);
    pthread_mutex_lock(&lock);
    embedded += done;
    mismatches += bad;
    worker_errors += errors;
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* Loads and frees models, and checks that a failure here leaves its own message. */
static void *loader(void *arg) {
    long count = 0, errors = 0;
    char wanted[64];
    (void)arg;
    snprintf(wanted, sizeof wanted, "/nonexistent/%lu.tfm", (unsigned long)pthread_self());
    while (now() < deadline) {
        transface_model *m = NULL;
        transface_context *c = NULL;
        if (transface_model_load(model_path, NULL, &m) != TRANSFACE_OK || transface_context_create(m, NULL, &c) != TRANSFACE_OK)
            errors++;
        transface_model_free(m);  /* the context keeps the weights alive */
        transface_context_free(c);
        if (transface_model_load(wanted, NULL, &m) == TRANSFACE_OK || strstr(transface_last_error(), wanted) == NULL)
            errors++;
        count++;
    }
    pthread_mutex_lock(&lock);
    loads += count;
    worker_errors += errors;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void) {
    transface_config cfg = {0};
    transface_builder *b = NULL;
    transface_context *ctx = NULL;
    pthread_t threads[WORKERS + LOADERS];
    char dir[] = "/tmp/transface-stress-XXXXXX";
    const char *env = getenv("TRANSFACE_STRESS_SECONDS");
    double seconds = env ? atof(env) : 30, start;
    size_t i;

    cfg.struct_size = sizeof cfg;
    OK(transface_config_preset("vit_t", 128, &cfg));
    cfg.depth = 2;  /* vit_t's width and heads, 2 blocks: quick but real shapes */
    strcpy(cfg.arch, "custom");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    snprintf(model_path, sizeof model_path, "%s/stress.tfm", dir);
    OK(transface_builder_create(&cfg, &b));
    OK(transface_builder_init_weights(b, 21));
    OK(transface_builder_save(b, model_path));
    transface_builder_free(b);
    OK(transface_model_load(model_path, NULL, &model));
    embedding_size = transface_model_embedding_size(model);

    images = malloc((size_t)BATCHES * MAX_BATCH * IMAGE);
    expected = malloc(sizeof(float) * BATCHES * MAX_BATCH * (size_t)embedding_size);
    if (!images || !expected) return 2;
    srand(5);
    for (i = 0; i < (size_t)BATCHES * MAX_BATCH * IMAGE; i++) images[i] = (uint8_t)(rand() & 0xFF);
    OK(transface_context_create(model, NULL, &ctx));  /* the single-threaded reference */
    OK(transface_embed(ctx, images, (size_t)BATCHES * MAX_BATCH, SIDE, SIDE, 0, expected,
                       (size_t)BATCHES * MAX_BATCH * embedding_size));
    transface_context_free(ctx);

    start = now();
    deadline = start + seconds;
    for (i = 0; i < WORKERS; i++) CHECK(pthread_create(&threads[i], NULL, worker, (void *)i) == 0, "thread %zu", i);
    for (i = 0; i < LOADERS; i++) CHECK(pthread_create(&threads[WORKERS + i], NULL, loader, NULL) == 0, "loader %zu", i);
    for (i = 0; i < WORKERS + LOADERS; i++) pthread_join(threads[i], NULL);
    printf("stress: %d threads sharing one model for %.1f s: %ld images (%.1f images/s), %ld mismatches, "
           "%ld concurrent load/free cycles, %ld errors\n", WORKERS, now() - start, embedded,
           (double)embedded / (now() - start), mismatches, loads, worker_errors);
    CHECK(embedded > 0, "no image embedded");
    CHECK(mismatches == 0, "%ld results differ from the single-threaded run", mismatches);
    CHECK(worker_errors == 0, "%ld unexpected errors", worker_errors);
    CHECK(loads > 0, "no load/free cycle");

    transface_model_free(model);
    free(images);
    free(expected);
    unlink(model_path);
    rmdir(dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
