/* Crash safety of training checkpoints, through the C ABI.
 *
 * Part 1, kill -9: a child process (this program re-executed with --child) trains a small model
 * and saves a checkpoint after every step to one path (run.tfc); the parent SIGKILLs it after a
 * random delay, TRANSFACE_CRASH_KILLS times (default 24). After each kill the parent checks that
 *  - run.tfc loads (transface_trainer_resume) and equals, bit for bit (parameters, class
 *    centres, optimizer moments), an uninterrupted run at the step the child last reported
 *    saved, or one step later (killed after the rename, before reporting);
 *  - every temporary file the killed writer left ("run.tfc.tmp-*") is refused as damaged or,
 *    if it was complete, also equals the uninterrupted run; it is then deleted;
 *  - the resumed trainer's next step equals the uninterrupted run's.
 * The next child resumes from run.tfc. At the end a child runs to the final step unkilled and
 * the result must equal the uninterrupted run there. Random truncations of a checkpoint are
 * refused too.
 *
 * Part 2, failed writes: a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored: write fails with
 * EFBIG as on a full disk), an unwritable folder (/sys, where even root cannot create files; a
 * read-only folder when not root), a regular file in place of the folder, and a folder in place
 * of the target. Each must fail with TRANSFACE_IO and a message naming the path, leave the
 * existing target byte for byte intact and leave no temporary file.
 *
 *   test_crash                 TRANSFACE_CRASH_SEED (default: time) seeds the kill delays
 * Prints each kill and a summary, then "N passed, M failed"; exits non-zero on any failure.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* 36x36 images, 16 patches; 20,000 classes make the checkpoint about 4 MB (centres and their
 * two AdamW moments), so writing it takes a good part of each step's time. */
static const char *CONFIG =
    "{\"arch\": \"custom\", \"model\": {\"img_size\": 36, \"embed_dim\": 32, \"depth\": 2, \"num_heads\": 4,"
    " \"mlp_hidden_dim\": 64}, \"embedding_size\": 16, \"mask_ratio\": 0.25, \"drop_path_rate\": 0.1,"
    " \"num_classes\": 20000, \"batch_size\": 4, \"dpap\": {\"probability\": 0.5},"
    " \"schedule\": {\"warmup_steps\": 3, \"max_steps\": 100000}, \"seed\": 9}";

enum { B = 4, SIDE = 36, IMAGE = SIDE * SIDE * 3, CLASSES = 20000, MAX_STEPS = 4096, MAX_NAMES = 256 };

static void batch(long k, uint8_t *images, int32_t *labels) {
    long i;
    for (i = 0; i < B; i++) labels[i] = (int32_t)((k * 7 + i * 13) % CLASSES);
    for (i = 0; i < B * IMAGE; i++) images[i] = (uint8_t)((i * 13 + labels[i / IMAGE] * 71 + k * 7) % 251);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ child: train and checkpoint */

/* --child DIR START END FD: trains steps START..END-1 (resuming DIR/run.tfc when START > 0),
 * saving DIR/run.tfc after each step. Reports on FD (longs): -1 ready, -2 about to save, then
 * the step count once it is saved. */
static int child(const char *dir, long start, long end, int fd) {
    static uint8_t images[B * IMAGE];
    int32_t labels[B];
    char path[512];
    transface_trainer *t = NULL;
    transface_trainer_info info;
    long k;
    snprintf(path, sizeof path, "%s/run.tfc", dir);
    if (start == 0 ? transface_trainer_create(CONFIG, NULL, &t) : transface_trainer_resume(path, 0, &t)) {
        fprintf(stderr, "child: %s\n", transface_last_error());
        return 3;
    }
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (transface_trainer_get_info(t, &info) != TRANSFACE_OK || (long)info.step != start) {
        fprintf(stderr, "child: resumed at step %llu, expected %ld\n", (unsigned long long)info.step, start);
        return 3;
    }
    k = -1;
    if (write(fd, &k, sizeof k) != (ssize_t)sizeof k) return 3; /* ready */
    for (k = start; k < end; k++) {
        long saved = k + 1, saving = -2;
        batch(k, images, labels);
        if (transface_trainer_step(t, images, labels, B, SIDE, SIDE, NULL) != TRANSFACE_OK ||
            write(fd, &saving, sizeof saving) != (ssize_t)sizeof saving ||
            transface_trainer_save_checkpoint(t, path) != TRANSFACE_OK) {
            fprintf(stderr, "child: step %ld: %s\n", k, transface_last_error());
            return 3;
        }
        if (write(fd, &saved, sizeof saved) != (ssize_t)sizeof saved) return 3;
    }
    transface_trainer_free(t);
    return 0;
}

/* ------------------------------------------------------------------ parent: the reference run */

static const char *names[MAX_NAMES];
static char name_storage[MAX_NAMES][160];
static int name_count;
static float *scratch;
static size_t scratch_count;

/* FNV-1a (over 8-byte words) of the bytes of every tensor of the state (parameters, centres, moments). */
static uint64_t state_hash(transface_trainer *t) {
    uint64_t h = 1469598103934665603ull;
    int i;
    for (i = 0; i < name_count; i++) {
        size_t n = 0, j;
        const unsigned char *b;
        if (transface_trainer_tensor_size(t, names[i], &n) != TRANSFACE_OK) return 0;
        if (n > scratch_count) {
            free(scratch);
            scratch = malloc(n * sizeof *scratch);
            scratch_count = scratch ? n : 0;
            if (!scratch) return 0;
        }
        if (transface_trainer_read_tensor(t, names[i], scratch, n) != TRANSFACE_OK) return 0;
        b = (const unsigned char *)scratch;
        for (j = 0; j + 8 <= n * sizeof *scratch; j += 8) {
            uint64_t w;
            memcpy(&w, b + j, 8);
            h = (h ^ w) * 1099511628211ull;
        }
        for (; j < n * sizeof *scratch; j++) h = (h ^ b[j]) * 1099511628211ull;
    }
    return h;
}

static void add_name(transface_trainer *t, const char *name) {
    size_t n;
    if (name_count >= MAX_NAMES || transface_trainer_tensor_size(t, name, &n) != TRANSFACE_OK) return;
    snprintf(name_storage[name_count], sizeof name_storage[0], "%s", name);
    names[name_count] = name_storage[name_count];
    name_count++;
}

/* Every model tensor, the centres, and their AdamW moments when they have them. */
static int collect_names(transface_trainer *t, const char *dir) {
    char path[512], moment[200];
    transface_model *m = NULL;
    size_t i, count;
    snprintf(path, sizeof path, "%s/names.tfm", dir);
    if (transface_trainer_export_model(t, path) != TRANSFACE_OK || transface_model_load(path, NULL, &m) != TRANSFACE_OK) return 0;
    count = transface_model_tensor_count(m);
    for (i = 0; i < count + 1; i++) {
        transface_tensor_info info;
        const char *name = "partial_fc.weight";
        info.struct_size = sizeof info;
        if (i < count) {
            if (transface_model_tensor_info(m, i, &info) != TRANSFACE_OK) return 0;
            name = info.name;
        }
        add_name(t, name);
        snprintf(moment, sizeof moment, "optimizer.exp_avg.%s", name);
        add_name(t, moment);
        snprintf(moment, sizeof moment, "optimizer.exp_avg_sq.%s", name);
        add_name(t, moment);
    }
    transface_model_free(m);
    unlink(path);
    return name_count > 10;
}

static transface_trainer *reference;
static uint64_t reference_hash[MAX_STEPS + 1];
static long reference_steps;

/* The uninterrupted run's state hash after `step` steps (trained on demand). */
static uint64_t expected_hash(long step) {
    static uint8_t images[B * IMAGE];
    int32_t labels[B];
    if (step > MAX_STEPS) return 0;
    while (reference_steps < step) {
        batch(reference_steps, images, labels);
        if (transface_trainer_step(reference, images, labels, B, SIDE, SIDE, NULL) != TRANSFACE_OK) return 0;
        reference_steps++;
        reference_hash[reference_steps] = state_hash(reference);
    }
    return reference_hash[step];
}

/* ------------------------------------------------------------------ parent: kill -9 loop */

static uint64_t rng_state;
static double uniform(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Removes DIR/run.tfc.tmp-* after checking each: damaged (refused) or a complete checkpoint
 * equal to the reference. Returns the number found; *complete counts the loadable ones. */
static int check_temporaries(const char *dir, long max_step, int *complete) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    if (!d) return 0;
    while ((e = readdir(d)) != NULL) {
        char path[600];
        transface_trainer *t = NULL;
        transface_status s;
        if (strncmp(e->d_name, "run.tfc.tmp-", 12) != 0) continue;
        found++;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        s = transface_trainer_resume(path, 0, &t);
        if (s == TRANSFACE_OK) {
            transface_trainer_info info;
            uint64_t h = state_hash(t);
            info.struct_size = sizeof info;
            OK(transface_trainer_get_info(t, &info));
            CHECK((long)info.step <= max_step && h == expected_hash((long)info.step),
                  "complete temporary file %s (step %llu) differs from the uninterrupted run", e->d_name,
                  (unsigned long long)info.step);
            (*complete)++;
            transface_trainer_free(t);
        } else {
            CHECK(s == TRANSFACE_FORMAT, "partial temporary file %s: status %d, expected TRANSFACE_FORMAT", e->d_name, (int)s);
            CHECK(t == NULL, "no trainer from a refused file");
        }
        unlink(path);
    }
    closedir(d);
    return found;
}

static pid_t spawn(const char *self, const char *dir, long start, long end, int *read_fd) {
    int fds[2];
    pid_t pid;
    if (pipe(fds) != 0) return -1;
    pid = fork();
    if (pid == 0) {
        char a[32], b[32], c[32];
        int null = open("/dev/null", O_WRONLY);
        close(fds[0]);
        if (null >= 0 && !getenv("TRANSFACE_CRASH_VERBOSE")) dup2(null, 2);
        snprintf(a, sizeof a, "%ld", start);
        snprintf(b, sizeof b, "%ld", end);
        snprintf(c, sizeof c, "%d", fds[1]);
        execl(self, self, "--child", dir, a, b, c, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    *read_fd = fds[0];
    return pid;
}

/* Reads the child's reports until EOF (stop_at_save: until an "about to save" report):
 * returns the last step it reported saved, or `last` when none. */
static long drain(int fd, long last, int *ready, int stop_at_save) {
    long v;
    while (read(fd, &v, sizeof v) == (ssize_t)sizeof v) {
        if (v == -1) *ready = 1;
        else if (v >= 0) last = v;
        else if (stop_at_save) break;
    }
    return last;
}

static void kill_loop(const char *self, const char *dir, int kills, double max_delay, double save_time, long saved) {
    char ckpt[512];
    int k, newest = 0, one_more = 0, temporaries = 0, complete_temporaries = 0, during_startup = 0, aimed = 0;
    double started = now();
    snprintf(ckpt, sizeof ckpt, "%s/run.tfc", dir);
    for (k = 0; k < kills; k++) {
        int fd, status, ready = 0, left, complete = 0;
        long reported = saved, found = -1, j;
        double delay = uniform() * max_delay, t0;
        const char *when = "training";
        transface_trainer *t = NULL;
        pid_t pid = spawn(self, dir, saved, MAX_STEPS, &fd);
        CHECK(pid > 0, "fork");
        if (pid <= 0) return;
        /* Every 8th kill lands at a random moment of the start-up (resuming); every other one
         * within a checkpoint write (a random moment of the write's typical duration after the
         * child says it starts one); the rest at a random moment of training and saving. */
        if (k % 8 != 7) {
            long v;
            if (read(fd, &v, sizeof v) == (ssize_t)sizeof v && v == -1) ready = 1;
            if (k % 2 == 0) {
                reported = drain(fd, saved, &ready, 1);
                delay = uniform() * save_time * 1.2;
                when = "writing";
                aimed++;
            }
        }
        t0 = now();
        {
            struct timespec ts;
            ts.tv_sec = (time_t)delay;
            ts.tv_nsec = (long)((delay - (double)ts.tv_sec) * 1e9);
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        reported = drain(fd, reported, &ready, 0);
        close(fd);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "kill %d: child was not killed (status %d)", k, status);
        if (!ready) {
            during_startup++;
            when = "starting";
        }

        left = check_temporaries(dir, reported + 1, &complete);
        temporaries += left;
        complete_temporaries += complete;
        if (access(ckpt, F_OK) != 0) {
            CHECK(reported == 0 && saved == 0, "kill %d: run.tfc missing after %ld reported saves", k, reported);
            printf("kill %2d after %6.1f ms (%s): no checkpoint yet\n", k, (now() - t0) * 1e3, when);
            continue;
        }
        if (transface_trainer_resume(ckpt, 0, &t) != TRANSFACE_OK) {
            CHECK(0, "kill %d: run.tfc does not load", k);
            return;
        }
        {
            transface_trainer_info info;
            uint64_t h = state_hash(t);
            info.struct_size = sizeof info;
            OK(transface_trainer_get_info(t, &info));
            for (j = reported; j <= reported + 1 && found < 0; j++) {
                if ((long)info.step == j && h == expected_hash(j)) found = j;
            }
            CHECK(found >= 0, "kill %d: run.tfc (step %llu) is neither the uninterrupted run's step %ld nor %ld",
                  k, (unsigned long long)info.step, reported, reported + 1);
        }
        if (found < 0) { transface_trainer_free(t); return; }
        if (found == reported) newest++;
        else one_more++;
        CHECK(found >= saved, "kill %d: the checkpoint went back from step %ld to %ld", k, saved, found);
        /* The surviving checkpoint resumes: its next step equals the uninterrupted run's. */
        {
            static uint8_t images[B * IMAGE];
            int32_t labels[B];
            batch(found, images, labels);
            OK(transface_trainer_step(t, images, labels, B, SIDE, SIDE, NULL));
            CHECK(state_hash(t) == expected_hash(found + 1), "kill %d: step %ld after resuming differs", k, found + 1);
        }
        transface_trainer_free(t);
        printf("kill %2d after %6.1f ms (%s): %ld saves reported, run.tfc holds step %ld%s, %d temporary file(s)%s\n",
               k, delay * 1e3, when, reported, found,
               found == reported ? "" : " (renamed before it was reported)", left,
               left ? (complete ? " (complete, not yet renamed)" : " (partial: refused)") : "");
        saved = found;
    }
    printf("%d kills (%d aimed at a checkpoint write) in %.1f s: run.tfc always loaded and matched the uninterrupted run; it held the last reported "
           "step %d times and one step more %d times; %d kill(s) during start-up; %d temporary file(s) left by "
           "killed writes (%d partial and refused, %d complete), none read as run.tfc\n",
           kills, aimed, now() - started, newest, one_more, during_startup, temporaries, temporaries - complete_temporaries,
           complete_temporaries);
    CHECK(temporaries > 0, "no kill landed during a checkpoint write (raise TRANSFACE_CRASH_KILLS)");

    /* An unkilled child finishes the run; the result equals the uninterrupted run. */
    {
        int fd, status, ready = 0;
        long target = saved + 5, reported;
        transface_trainer *t = NULL;
        pid_t pid = spawn(self, dir, saved, target, &fd);
        waitpid(pid, &status, 0);
        reported = drain(fd, saved, &ready, 0);
        close(fd);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && reported == target, "final child: status %d, %ld saved",
              status, reported);
        OK(transface_trainer_resume(ckpt, 0, &t));
        CHECK(t && state_hash(t) == expected_hash(target),
              "after %d kills and resumes, step %ld differs from the uninterrupted run", kills, target);
        printf("resumed %d times, then trained to step %ld: equal to the uninterrupted run bit for bit\n", kills, target);
        transface_trainer_free(t);
    }
}

/* ------------------------------------------------------------------ truncations */

static int read_file(const char *path, unsigned char **data, size_t *size) {
    FILE *f = fopen(path, "rb");
    long n;
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc((size_t)n + 1);
    *size = *data && fread(*data, 1, (size_t)n, f) == (size_t)n ? (size_t)n : 0;
    fclose(f);
    return *size == (size_t)n && n > 0;
}

static int write_file(const char *path, const unsigned char *data, size_t size) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, size, f) == size;
    if (f) ok = fclose(f) == 0 && ok;
    return ok;
}

static void truncations(const char *dir) {
    char ckpt[512], cut[512];
    unsigned char *data = NULL;
    size_t size = 0;
    int i, refused = 0;
    snprintf(ckpt, sizeof ckpt, "%s/run.tfc", dir);
    snprintf(cut, sizeof cut, "%s/cut.tfc", dir);
    if (!read_file(ckpt, &data, &size)) { CHECK(0, "read %s", ckpt); return; }
    for (i = 0; i < 40; i++) {
        size_t n = i < 8 ? (size_t)i * 4 : (size_t)(uniform() * (double)size);
        transface_trainer *t = NULL;
        transface_status s;
        if (n >= size) n = size - 1;
        write_file(cut, data, n);
        s = transface_trainer_resume(cut, 0, &t);
        CHECK(s == TRANSFACE_FORMAT && t == NULL, "checkpoint cut at %zu of %zu bytes: status %d", n, size, (int)s);
        refused += s == TRANSFACE_FORMAT;
    }
    unlink(cut);
    free(data);
    printf("40 truncated copies of a checkpoint: %d refused with TRANSFACE_FORMAT\n", refused);
}

/* ------------------------------------------------------------------ failed writes */

static int same_file(const char *path, const unsigned char *data, size_t size) {
    unsigned char *now_data = NULL;
    size_t now_size = 0;
    int same = read_file(path, &now_data, &now_size) && now_size == size && memcmp(now_data, data, size) == 0;
    free(now_data);
    return same;
}

static int count_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

static void expect_io(transface_status s, const char *what, const char *path_fragment) {
    CHECK(s == TRANSFACE_IO, "%s: status %d, expected TRANSFACE_IO", what, (int)s);
    CHECK(strstr(transface_last_error(), path_fragment) != NULL, "%s: message does not name %s", what, path_fragment);
    printf("%s: %s\n", what, transface_last_error());
}

static void failed_writes(const char *dir) {
    char ckpt[512], model[512], blocker[512], under[512], folder[512];
    unsigned char *before = NULL, *model_before = NULL;
    size_t size = 0, model_size = 0;
    struct rlimit old, small;
    transface_trainer *t = NULL;
    static uint8_t images[B * IMAGE];
    int32_t labels[B];

    snprintf(ckpt, sizeof ckpt, "%s/run.tfc", dir);
    snprintf(model, sizeof model, "%s/model.tfm", dir);
    OK(transface_trainer_resume(ckpt, 0, &t));
    if (!t) return;
    OK(transface_trainer_export_model(t, model));
    batch(0, images, labels);
    OK(transface_trainer_step(t, images, labels, B, SIDE, SIDE, NULL));  /* the new state differs */
    if (!read_file(ckpt, &before, &size) || !read_file(model, &model_before, &model_size)) { CHECK(0, "read"); return; }

    /* Disk full: a 256 KiB file size limit; write() fails with EFBIG past it. */
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 256 * 1024;
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0, "setrlimit");
    expect_io(transface_trainer_save_checkpoint(t, ckpt), "checkpoint past RLIMIT_FSIZE (disk full)", "run.tfc");
    small.rlim_cur = 64 * 1024;
    setrlimit(RLIMIT_FSIZE, &small);
    expect_io(transface_trainer_export_model(t, model), "model past RLIMIT_FSIZE (disk full)", "model.tfm");
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(same_file(ckpt, before, size), "run.tfc changed by a failed write");
    CHECK(same_file(model, model_before, model_size), "model.tfm changed by a failed write");
    CHECK(count_temporaries(dir) == 0, "a failed write left a temporary file");

    /* A folder where files cannot be created: /sys refuses even root. */
    if (access("/sys", F_OK) == 0) {
        transface_status s = transface_trainer_save_checkpoint(t, "/sys/run.tfc");
        expect_io(s, "checkpoint into /sys (unwritable folder)", "/sys/run.tfc");
    }
    /* A read-only folder (only effective when not root). */
    snprintf(folder, sizeof folder, "%s/readonly", dir);
    mkdir(folder, 0755);
    snprintf(under, sizeof under, "%s/readonly/run.tfc", dir);
    if (geteuid() != 0) {
        chmod(folder, 0555);
        expect_io(transface_trainer_save_checkpoint(t, under), "checkpoint into a read-only folder", "readonly/run.tfc");
        chmod(folder, 0755);
    }
    /* A regular file where the folder should be. */
    snprintf(blocker, sizeof blocker, "%s/blocker", dir);
    write_file(blocker, (const unsigned char *)"x", 1);
    snprintf(under, sizeof under, "%s/blocker/run.tfc", dir);
    expect_io(transface_trainer_save_checkpoint(t, under), "checkpoint under a regular file", "blocker/run.tfc");
    /* A folder in place of the target: the rename fails, the folder stays, no temporary file. */
    expect_io(transface_trainer_save_checkpoint(t, folder), "checkpoint onto a folder", "readonly");
    CHECK(access(folder, F_OK) == 0 && count_temporaries(dir) == 0, "folder target: temporary file left");
    CHECK(same_file(ckpt, before, size), "run.tfc changed");
    /* After all that, a normal save works and replaces the file. */
    OK(transface_trainer_save_checkpoint(t, ckpt));
    CHECK(!same_file(ckpt, before, size), "run.tfc not replaced by a successful save");
    rmdir(folder);
    unlink(blocker);
    unlink(model);
    free(before);
    free(model_before);
    transface_trainer_free(t);
}

int main(int argc, char **argv) {
    char dir[] = "/tmp/transface-c-crash-XXXXXX", path[600];
    const char *seed_text = getenv("TRANSFACE_CRASH_SEED"), *kills_text = getenv("TRANSFACE_CRASH_KILLS");
    int kills = kills_text ? atoi(kills_text) : 24;
    uint64_t seed;
    DIR *d;
    struct dirent *e;

    if (argc == 6 && strcmp(argv[1], "--child") == 0) return child(argv[2], atol(argv[3]), atol(argv[4]), atoi(argv[5]));
    seed = seed_text ? (uint64_t)strtoull(seed_text, NULL, 10) : (uint64_t)time(NULL);
    rng_state = seed * 2654435761u + 1;
    printf("seed %llu (TRANSFACE_CRASH_SEED), %d kills (TRANSFACE_CRASH_KILLS)\n", (unsigned long long)seed, kills);
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }

    OK(transface_trainer_create(CONFIG, NULL, &reference));
    if (!reference || !collect_names(reference, dir)) { CHECK(0, "reference trainer"); return 1; }
    reference_hash[0] = state_hash(reference);

    {
        /* Calibrate the kill delays on a child's step + checkpoint time. */
        double t0 = now();
        int fd, status, ready = 0;
        pid_t pid = spawn(argv[0], dir, 0, 3, &fd);
        long reported;
        waitpid(pid, &status, 0);
        double whole, save;
        reported = drain(fd, 0, &ready, 0);
        close(fd);
        whole = now() - t0;
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && reported == 3, "calibration child");
        snprintf(path, sizeof path, "%s/probe.tfc", dir);
        t0 = now();
        OK(transface_trainer_save_checkpoint(reference, path));
        save = now() - t0;
        unlink(path);
        printf("a child starts, trains and checkpoints 3 steps in %.0f ms; one checkpoint write takes %.1f ms\n",
               whole * 1e3, save * 1e3);
        kill_loop(argv[0], dir, kills, whole * 1.5 > 0.05 ? whole * 1.5 : 0.05, save, 3);
    }
    truncations(dir);
    failed_writes(dir);

    transface_trainer_free(reference);
    free(scratch);
    if ((d = opendir(dir)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
