/* The matmul backend of libtransface's Linear layers: oneDNN's matmul primitive on weights
 * reordered once into the primitive's blocked layout, with fused epilogues. A thin C layer over
 * oneDNN's C API (Debian libdnnl-dev): Swift sees plain functions and opaque handles.
 *
 * One tf_matmul is one primitive: y[m x n] = A[m x k] . B[k x n] (+ bias, + previous y), with
 * strided operands (tf_matmul_shape) covering a Linear's forward product and both backward
 * products. m is
 * fixed at creation: oneDNN's fast (brgemm) kernels need fixed shapes, and a fixed row tile makes
 * every row's result independent of how many rows a call has. Primitives of one layer with
 * different m share one packed weight (oneDNN picks the same blocked layout; checked by
 * tf_matmul_same_weight_layout). Execution runs single-threaded on the calling thread; callers
 * parallelise over row tiles, each thread with its own tf_matmul_exec. */
#ifndef TF_MATMUL_H
#define TF_MATMUL_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tf_matmul tf_matmul;
typedef struct tf_matmul_exec tf_matmul_exec;

/** Arithmetic of a primitive: float32, or bfloat16 inputs with float32 accumulation and output. */
typedef enum { TF_MATMUL_F32 = 0, TF_MATMUL_BF16 = 1 } tf_matmul_precision;

/** What follows the product: nothing, + bias, + bias then + old y, + old y. (No fused
 *  activations: oneDNN's clip maps NaN to a number where PyTorch's ReLU6 keeps it.) */
typedef enum {
    TF_MATMUL_PLAIN = 0,
    TF_MATMUL_BIAS = 1,
    TF_MATMUL_BIAS_ACCUMULATE = 2,
    TF_MATMUL_ACCUMULATE = 3
} tf_matmul_epilogue;

/** Instruction-set ceilings (a subset of oneDNN's). */
typedef enum { TF_ISA_DEFAULT = 0, TF_ISA_AVX2 = 1, TF_ISA_AVX512 = 2, TF_ISA_AVX512_BF16 = 3 } tf_isa;

/** Caps oneDNN's instruction set for the whole process; only before the first primitive is made.
 *  Returns 0 on success. */
int tf_matmul_set_max_isa(tf_isa isa, char *error, size_t error_size);
/** Whether the CPU (and the ISA cap) allows bf16 matmuls at full speed (AVX512_BF16 or AMX). */
int tf_matmul_has_bf16(void);
/** The highest instruction set oneDNN dispatches to now, as a short name ("avx512_core_bf16"). */
const char *tf_matmul_isa_name(void);
/** oneDNN's version, e.g. "2.6.3". */
const char *tf_matmul_library_version(void);

/** The operands of a primitive: y[m x n] (row stride ldy) = A[m x k] . B[k x n], where
 *  A[i][j] = a[i * a_row_stride + j * a_col_stride] and B[i][j] = b[i * b_row_stride + j * b_col_stride].
 *  With packed_b, B is a weight reordered once (tf_matmul_pack_weight reads it with these strides);
 *  otherwise B is read in place on every run (an activation). PyTorch's Linear y = x . W^T with
 *  W [n x k]: a = x (k, 1), b = W (1, k). Its input gradient dX = dY . W: a = dY (n, 1), b = W
 *  (k, 1). Its weight gradient dW += dY^T . X: a = dY (1, n), b = X (k, 1), not packed. */
typedef struct {
    int64_t m, n, k;
    int64_t a_row_stride, a_col_stride, b_row_stride, b_col_stride, ldy;
    int packed_b;
    tf_matmul_precision precision;
    tf_matmul_epilogue epilogue;
} tf_matmul_shape;

/** Creates a primitive. Returns 0, or non-zero with a message in error. */
int tf_matmul_create(tf_matmul **out, const tf_matmul_shape *shape, char *error, size_t error_size);
void tf_matmul_free(tf_matmul *matmul);
/** Bytes of the packed weight; whether two primitives read the same packed layout. */
size_t tf_matmul_packed_weight_bytes(const tf_matmul *matmul);
int tf_matmul_same_weight_layout(const tf_matmul *a, const tf_matmul *b);
/** Reorders B (read with the shape's strides from b) into packed (tf_matmul_packed_weight_bytes
 *  bytes, 64-byte aligned), converting to bf16 for a bf16 primitive. */
int tf_matmul_pack_weight(const tf_matmul *matmul, const float *b, void *packed, char *error, size_t error_size);
/** The inverse of tf_matmul_pack_weight: writes the float32 weight back with the shape's strides
 *  (exact for float32 packings; bf16 packings give the bf16 values widened). */
int tf_matmul_unpack_weight(const tf_matmul *matmul, const void *packed, float *b, char *error, size_t error_size);

/** Per-thread execution state of one primitive (memory objects, scratchpad, bf16 input tile). */
int tf_matmul_exec_create(const tf_matmul *matmul, tf_matmul_exec **out, char *error, size_t error_size);
void tf_matmul_exec_free(tf_matmul_exec *exec);
/** Runs the product on the calling thread (OpenMP held to one thread for the call). b: the
 *  packed weight or the in-place operand; bias: n floats, required by the BIAS epilogues.
 *  Returns 0 or non-zero with a message. */
int tf_matmul_run(tf_matmul_exec *exec, const float *a, const void *b, const float *bias, float *y,
                  char *error, size_t error_size);

#ifdef __cplusplus
}
#endif
#endif
