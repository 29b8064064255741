/* Run-time loaded Open MPI for libtransface's distributed training: libmpi.so.40 is dlopen'ed
 * on first use (never linked), its functions are resolved with dlsym and its handle "macros"
 * (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) as the addresses of Open MPI's exported globals
 * (ompi_mpi_comm_world, ompi_mpi_float, ompi_mpi_op_sum, ...), which is Open MPI's ABI. No
 * mpi.h is needed to build. Every function returns 0 on success, else writes a message into
 * the caller's buffer and returns a non-zero code (TF_MPI_E_* or the MPI error class). */
#ifndef TF_MPI_H
#define TF_MPI_H
#include <stddef.h>

#define TF_MPI_E_LOAD (-1)     /* the library or a symbol could not be loaded */
#define TF_MPI_E_STATE (-2)    /* used before tf_mpi_init, or initialised twice */

enum tf_mpi_type { TF_MPI_FLOAT = 0, TF_MPI_DOUBLE = 1, TF_MPI_INT = 2, TF_MPI_BYTE = 3 };
enum tf_mpi_op { TF_MPI_SUM = 0, TF_MPI_MAX = 1, TF_MPI_MIN = 2 };

/* Loads `path` (NULL: $TRANSFACE_MPI_LIBRARY, else "libmpi.so.40") with RTLD_NOW|RTLD_GLOBAL
 * (Open MPI's plugins resolve symbols from it), resolves every symbol, calls MPI_Init_thread
 * (MPI_THREAD_FUNNELED: only the calling thread talks to MPI) unless MPI is already
 * initialised (then MPI_Finalize also runs at exit unless tf_mpi_finalize ran), and sets
 * MPI_ERRORS_RETURN on MPI_COMM_WORLD. */
int tf_mpi_init(const char *path, char *error, size_t error_size);
/* Rank and size in MPI_COMM_WORLD. */
int tf_mpi_rank_size(int *rank, int *size, char *error, size_t error_size);
/* In-place allreduce of `count` values. */
int tf_mpi_allreduce(void *buffer, long count, int type, int op, char *error, size_t error_size);
/* Gathers `count` values from every rank into `receive` (size × count, rank order). */
int tf_mpi_allgather(const void *send, void *receive, long count, int type, char *error, size_t error_size);
/* Rank r contributes counts[r] values; receive holds them at displacements[r]. */
int tf_mpi_allgatherv(const void *send, long count, void *receive, const int *counts, const int *displacements, int type,
                      char *error, size_t error_size);
int tf_mpi_broadcast(void *buffer, long count, int type, int root, char *error, size_t error_size);
int tf_mpi_barrier(char *error, size_t error_size);
/* MPI_Abort(MPI_COMM_WORLD, code): ends every rank of the job. */
void tf_mpi_abort(int code);
/* MPI_Finalize, once (later calls do nothing). */
int tf_mpi_finalize(char *error, size_t error_size);
#endif
