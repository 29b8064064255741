/* See include/tf_mpi.h. Open MPI 4.x ABI: handles are pointers to the library's globals. */
#include "tf_mpi.h"
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *tf_handle;  /* MPI_Comm, MPI_Datatype, MPI_Op, MPI_Errhandler: pointers in Open MPI */
#define TF_IN_PLACE ((void *)1)
#define TF_MAX_ERROR_STRING 256

static struct {
    void *library;
    int initialized, finalized;
    tf_handle comm_world, types[4], ops[3], errors_return;
    int (*Initialized)(int *);
    int (*Init_thread)(int *, char ***, int, int *);
    int (*Comm_rank)(tf_handle, int *);
    int (*Comm_size)(tf_handle, int *);
    int (*Comm_set_errhandler)(tf_handle, tf_handle);
    int (*Allreduce)(const void *, void *, int, tf_handle, tf_handle, tf_handle);
    int (*Allgather)(const void *, int, tf_handle, void *, int, tf_handle, tf_handle);
    int (*Allgatherv)(const void *, int, tf_handle, void *, const int *, const int *, tf_handle, tf_handle);
    int (*Bcast)(void *, int, tf_handle, int, tf_handle);
    int (*Barrier)(tf_handle);
    int (*Abort)(tf_handle, int);
    int (*Finalize)(void);
    int (*Error_string)(int, char *, int *);
} M;

static int fail(char *error, size_t size, int code, const char *fmt, const char *a, const char *b) {
    if (error && size) snprintf(error, size, fmt, a, b ? b : "");
    return code;
}

/* An MPI return code as a message naming the call. */
static int check(int rc, const char *call, char *error, size_t size) {
    if (rc == 0) return 0;
    char text[TF_MAX_ERROR_STRING + 1] = "unknown MPI error";
    int length = 0;
    if (M.Error_string && M.Error_string(rc, text, &length) != 0) snprintf(text, sizeof text, "MPI error %d", rc);
    text[TF_MAX_ERROR_STRING] = 0;
    fail(error, size, rc, "%s failed: %s", call, text);
    return rc;
}

#define NEED_INIT() do { if (!M.initialized || M.finalized) return fail(error, error_size, TF_MPI_E_STATE, "%s: MPI is not initialised%s", __func__, NULL); } while (0)

static int resolve(void **slot, const char *name, const char *path, char *error, size_t size) {
    *slot = dlsym(M.library, name);
    if (!*slot) {
        return fail(error, size, TF_MPI_E_LOAD, "symbol %s not found in %s (an Open MPI 4.x libmpi.so.40 is needed)", name, path);
    }
    return 0;
}

static void finalize_at_exit(void) {
    if (M.initialized && !M.finalized) { M.finalized = 1; M.Finalize(); }
}

int tf_mpi_init(const char *path, char *error, size_t error_size) {
    if (M.initialized) return fail(error, error_size, TF_MPI_E_STATE, "MPI is already initialised%s%s", "", NULL);
    if (!path || !*path) path = getenv("TRANSFACE_MPI_LIBRARY");
    if (!path || !*path) path = "libmpi.so.40";
    M.library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!M.library) {
        const char *why = dlerror();
        return fail(error, error_size, TF_MPI_E_LOAD,
                    "cannot load the MPI library %s (Debian: apt-get install openmpi-bin libopenmpi-dev; or set TRANSFACE_MPI_LIBRARY): %s",
                    path, why ? why : "unknown reason");
    }
    struct { void **slot; const char *name; } symbols[] = {
        {(void **)&M.Initialized, "MPI_Initialized"}, {(void **)&M.Init_thread, "MPI_Init_thread"},
        {(void **)&M.Comm_rank, "MPI_Comm_rank"}, {(void **)&M.Comm_size, "MPI_Comm_size"},
        {(void **)&M.Comm_set_errhandler, "MPI_Comm_set_errhandler"}, {(void **)&M.Allreduce, "MPI_Allreduce"},
        {(void **)&M.Allgather, "MPI_Allgather"}, {(void **)&M.Allgatherv, "MPI_Allgatherv"}, {(void **)&M.Bcast, "MPI_Bcast"},
        {(void **)&M.Barrier, "MPI_Barrier"}, {(void **)&M.Abort, "MPI_Abort"}, {(void **)&M.Finalize, "MPI_Finalize"},
        {(void **)&M.Error_string, "MPI_Error_string"},
        {&M.comm_world, "ompi_mpi_comm_world"}, {&M.types[TF_MPI_FLOAT], "ompi_mpi_float"},
        {&M.types[TF_MPI_DOUBLE], "ompi_mpi_double"}, {&M.types[TF_MPI_INT], "ompi_mpi_int"},
        {&M.types[TF_MPI_BYTE], "ompi_mpi_byte"}, {&M.ops[TF_MPI_SUM], "ompi_mpi_op_sum"},
        {&M.ops[TF_MPI_MAX], "ompi_mpi_op_max"}, {&M.ops[TF_MPI_MIN], "ompi_mpi_op_min"},
        {&M.errors_return, "ompi_mpi_errors_return"},
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        int rc = resolve(symbols[i].slot, symbols[i].name, path, error, error_size);
        if (rc) { dlclose(M.library); memset(&M, 0, sizeof M); return rc; }
    }
    int already = 0, provided = 0, rc;
    if ((rc = check(M.Initialized(&already), "MPI_Initialized", error, error_size))) return rc;
    if (!already && (rc = check(M.Init_thread(NULL, NULL, 1 /* MPI_THREAD_FUNNELED */, &provided), "MPI_Init_thread", error, error_size)))
        return rc;
    M.initialized = 1;
    if (!already) atexit(finalize_at_exit);  /* a process that exits without tf_mpi_finalize */
    return check(M.Comm_set_errhandler(M.comm_world, M.errors_return), "MPI_Comm_set_errhandler", error, error_size);
}

int tf_mpi_rank_size(int *rank, int *size, char *error, size_t error_size) {
    NEED_INIT();
    int rc = check(M.Comm_rank(M.comm_world, rank), "MPI_Comm_rank", error, error_size);
    return rc ? rc : check(M.Comm_size(M.comm_world, size), "MPI_Comm_size", error, error_size);
}

static int valid(long count, int type, char *error, size_t error_size) {
    if (count < 0 || count > INT_MAX) return fail(error, error_size, TF_MPI_E_STATE, "count out of MPI's int range%s%s", "", NULL);
    if (type < 0 || type > TF_MPI_BYTE) return fail(error, error_size, TF_MPI_E_STATE, "unknown data type%s%s", "", NULL);
    return 0;
}

int tf_mpi_allreduce(void *buffer, long count, int type, int op, char *error, size_t error_size) {
    NEED_INIT();
    int rc = valid(count, type, error, error_size);
    if (rc) return rc;
    if (op < 0 || op > TF_MPI_MIN) return fail(error, error_size, TF_MPI_E_STATE, "unknown reduction%s%s", "", NULL);
    return check(M.Allreduce(TF_IN_PLACE, buffer, (int)count, M.types[type], M.ops[op], M.comm_world), "MPI_Allreduce", error, error_size);
}

int tf_mpi_allgather(const void *send, void *receive, long count, int type, char *error, size_t error_size) {
    NEED_INIT();
    int rc = valid(count, type, error, error_size);
    if (rc) return rc;
    return check(M.Allgather(send, (int)count, M.types[type], receive, (int)count, M.types[type], M.comm_world), "MPI_Allgather",
                 error, error_size);
}

int tf_mpi_allgatherv(const void *send, long count, void *receive, const int *counts, const int *displacements, int type,
                      char *error, size_t error_size) {
    NEED_INIT();
    int rc = valid(count, type, error, error_size);
    if (rc) return rc;
    return check(M.Allgatherv(send, (int)count, M.types[type], receive, counts, displacements, M.types[type], M.comm_world),
                 "MPI_Allgatherv", error, error_size);
}

int tf_mpi_broadcast(void *buffer, long count, int type, int root, char *error, size_t error_size) {
    NEED_INIT();
    int rc = valid(count, type, error, error_size);
    if (rc) return rc;
    return check(M.Bcast(buffer, (int)count, M.types[type], root, M.comm_world), "MPI_Bcast", error, error_size);
}

int tf_mpi_barrier(char *error, size_t error_size) {
    NEED_INIT();
    return check(M.Barrier(M.comm_world), "MPI_Barrier", error, error_size);
}

void tf_mpi_abort(int code) {
    if (M.initialized && !M.finalized) M.Abort(M.comm_world, code);
    _Exit(code ? code : 1);
}

int tf_mpi_finalize(char *error, size_t error_size) {
    if (!M.initialized || M.finalized) return 0;
    M.finalized = 1;
    return check(M.Finalize(), "MPI_Finalize", error, error_size);
}
