/* oneDNN matmul primitives for libtransface's Linear layers (see include/tf_matmul.h). */
#include "tf_matmul.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OpenMP's per-thread team size (libgomp, which libdnnl links): declared here because the
 * compiler building this file need not ship omp.h. */
int omp_get_max_threads(void);
void omp_set_num_threads(int);

struct tf_matmul {
    dnnl_primitive_t primitive;
    dnnl_primitive_t to_bf16;            /* f32 input tile -> bf16 (bf16 primitives only) */
    dnnl_memory_desc_t src_md, user_src_md, weight_md, dst_md, bias_md, scratch_md, user_weight_md;
    int64_t m, n, k;
    tf_matmul_precision precision;
    tf_matmul_epilogue epilogue;
};

struct tf_matmul_exec {
    const tf_matmul *matmul;
    dnnl_stream_t stream;
    dnnl_memory_t src, user_src, weight, dst, bias, scratch;
    void *scratch_buffer, *bf16_buffer;
};

static dnnl_engine_t engine;
static int engine_status = -1;

static int fail(char *error, size_t size, const char *format, ...) {
    if (error && size) {
        va_list args;
        va_start(args, format);
        vsnprintf(error, size, format, args);
        va_end(args);
    }
    return 1;
}

static int ensure_engine(char *error, size_t error_size) {
    /* Callers create primitives under their own lock (Swift's MatmulBackend), so this runs once. */
    if (engine_status < 0) engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success ? 0 : 1;
    return engine_status ? fail(error, error_size, "oneDNN: no CPU engine") : 0;
}

int tf_matmul_set_max_isa(tf_isa isa, char *error, size_t error_size) {
    dnnl_cpu_isa_t target;
    switch (isa) {
    case TF_ISA_DEFAULT: return 0;
    case TF_ISA_AVX2: target = dnnl_cpu_isa_avx2; break;
    case TF_ISA_AVX512: target = dnnl_cpu_isa_avx512_core; break;
    case TF_ISA_AVX512_BF16: target = dnnl_cpu_isa_avx512_core_bf16; break;
    default: return fail(error, error_size, "unknown instruction set %d", (int)isa);
    }
    if (dnnl_set_max_cpu_isa(target) != dnnl_success)
        return fail(error, error_size, "oneDNN refused the instruction-set cap (it must be set before the first matmul)");
    return 0;
}

int tf_matmul_has_bf16(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

const char *tf_matmul_isa_name(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx) return "avx512_core_amx";
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16) return "avx512_core_bf16";
    if ((isa & dnnl_cpu_isa_avx512_core_vnni) == dnnl_cpu_isa_avx512_core_vnni) return "avx512_core_vnni";
    if ((isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core) return "avx512_core";
    if ((isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2) return "avx2";
    return "sse41";
}

const char *tf_matmul_library_version(void) {
    static char text[32];
    const dnnl_version_t *v = dnnl_version();
    snprintf(text, sizeof text, "%d.%d.%d", v->major, v->minor, v->patch);
    return text;
}

int tf_matmul_create(tf_matmul **out, const tf_matmul_shape *sh, char *error, size_t error_size) {
    *out = NULL;
    int64_t m = sh->m, n = sh->n, k = sh->k;
    if (m < 1 || n < 1 || k < 1 || sh->ldy < n || sh->a_row_stride < 1 || sh->a_col_stride < 1 ||
        sh->b_row_stride < 1 || sh->b_col_stride < 1)
        return fail(error, error_size, "matmul shape %lldx%lldx%lld (ldy %lld) or its strides are invalid",
                    (long long)m, (long long)n, (long long)k, (long long)sh->ldy);
    if (sh->precision == TF_MATMUL_BF16 && !sh->packed_b)
        return fail(error, error_size, "bf16 matmuls take packed weights only");
    if (ensure_engine(error, error_size)) return 1;
    tf_matmul *mm = calloc(1, sizeof *mm);
    if (!mm) return fail(error, error_size, "out of memory");
    mm->m = m; mm->n = n; mm->k = k; mm->precision = sh->precision; mm->epilogue = sh->epilogue;
    int bf16 = sh->precision == TF_MATMUL_BF16, has_bias = sh->epilogue == TF_MATMUL_BIAS || sh->epilogue == TF_MATMUL_BIAS_ACCUMULATE;
    dnnl_data_type_t in_type = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t src_dims = {m, k}, weight_dims = {k, n}, dst_dims = {m, n}, bias_dims = {1, n};
    dnnl_dims_t user_src_strides = {sh->a_row_stride, sh->a_col_stride}, dst_strides = {sh->ldy, 1};
    dnnl_dims_t user_weight_strides = {sh->b_row_stride, sh->b_col_stride};
    dnnl_memory_desc_t any_weight;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post_ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int rc = 1;
#define STEP(call, what) do { if ((call) != dnnl_success) { fail(error, error_size, "oneDNN: %s failed", what); goto done; } } while (0)
    STEP(dnnl_memory_desc_init_by_strides(&mm->user_src_md, 2, src_dims, dnnl_f32, user_src_strides), "source descriptor");
    if (bf16) {
        STEP(dnnl_memory_desc_init_by_tag(&mm->src_md, 2, src_dims, dnnl_bf16, dnnl_ab), "bf16 source descriptor");
    } else {
        mm->src_md = mm->user_src_md;
    }
    STEP(dnnl_memory_desc_init_by_strides(&mm->user_weight_md, 2, weight_dims, dnnl_f32, user_weight_strides), "user weight descriptor");
    STEP(dnnl_memory_desc_init_by_tag(&any_weight, 2, weight_dims, in_type, dnnl_format_tag_any), "weight descriptor");
    STEP(dnnl_memory_desc_init_by_strides(&mm->dst_md, 2, dst_dims, dnnl_f32, dst_strides), "destination descriptor");
    STEP(dnnl_memory_desc_init_by_tag(&mm->bias_md, 2, bias_dims, dnnl_f32, dnnl_ab), "bias descriptor");
    dnnl_matmul_desc_t desc;
    STEP(dnnl_matmul_desc_init(&desc, &mm->src_md, sh->packed_b ? &any_weight : &mm->user_weight_md,
                               has_bias ? &mm->bias_md : NULL, &mm->dst_md), "matmul descriptor");
    STEP(dnnl_primitive_attr_create(&attr), "attributes");
    STEP(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    if (sh->epilogue == TF_MATMUL_BIAS_ACCUMULATE || sh->epilogue == TF_MATMUL_ACCUMULATE) {
        STEP(dnnl_post_ops_create(&post_ops), "post-ops");
        STEP(dnnl_post_ops_append_sum(post_ops, 1.0f), "sum post-op");
        STEP(dnnl_primitive_attr_set_post_ops(attr, post_ops), "post-ops attribute");
    }
    STEP(dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL), "matmul primitive descriptor");
    mm->weight_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    mm->scratch_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    STEP(dnnl_primitive_create(&mm->primitive, pd), "matmul primitive");
    if (bf16) {
        dnnl_primitive_desc_t rpd;
        STEP(dnnl_reorder_primitive_desc_create(&rpd, &mm->user_src_md, engine, &mm->src_md, engine, NULL), "bf16 conversion");
        dnnl_status_t s = dnnl_primitive_create(&mm->to_bf16, rpd);
        dnnl_primitive_desc_destroy(rpd);
        STEP(s, "bf16 conversion primitive");
    }
    rc = 0;
#undef STEP
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (post_ops) dnnl_post_ops_destroy(post_ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (rc) tf_matmul_free(mm); else *out = mm;
    return rc;
}

void tf_matmul_free(tf_matmul *mm) {
    if (!mm) return;
    if (mm->primitive) dnnl_primitive_destroy(mm->primitive);
    if (mm->to_bf16) dnnl_primitive_destroy(mm->to_bf16);
    free(mm);
}

size_t tf_matmul_packed_weight_bytes(const tf_matmul *mm) { return dnnl_memory_desc_get_size(&mm->weight_md); }

int tf_matmul_same_weight_layout(const tf_matmul *a, const tf_matmul *b) {
    return dnnl_memory_desc_equal(&a->weight_md, &b->weight_md);
}

/* Reorders one weight between the user's float32 layout and the primitive's packed one. */
static int reorder_weight_here(const tf_matmul *mm, int to_packed, const void *from, void *to, char *error, size_t error_size) {
    const dnnl_memory_desc_t *from_md = to_packed ? &mm->user_weight_md : &mm->weight_md;
    const dnnl_memory_desc_t *to_md = to_packed ? &mm->weight_md : &mm->user_weight_md;
    dnnl_memory_t source = NULL, target = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_stream_t stream = NULL;
    int rc = 1;
    if (dnnl_memory_create(&source, from_md, engine, (void *)from) != dnnl_success ||
        dnnl_memory_create(&target, to_md, engine, to) != dnnl_success ||
        dnnl_reorder_primitive_desc_create(&rpd, from_md, engine, to_md, engine, NULL) != dnnl_success ||
        dnnl_primitive_create(&reorder, rpd) != dnnl_success ||
        dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        fail(error, error_size, "oneDNN: cannot set up the weight reorder");
    } else {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, source}, {DNNL_ARG_TO, target}};
        if (dnnl_primitive_execute(reorder, stream, 2, args) != dnnl_success || dnnl_stream_wait(stream) != dnnl_success)
            fail(error, error_size, "oneDNN: weight reorder failed");
        else
            rc = 0;
    }
    if (stream) dnnl_stream_destroy(stream);
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (target) dnnl_memory_destroy(target);
    if (source) dnnl_memory_destroy(source);
    return rc;
}

/* On the calling thread alone, as every run: the reorder primitive fixes its thread count when it
 * is made, and an OpenMP team started here would outlive the call (and deadlock a child forked
 * after it: libgomp is not fork-safe). */
static int reorder_weight(const tf_matmul *mm, int to_packed, const void *from, void *to, char *error, size_t error_size) {
    int threads = omp_get_max_threads();
    if (threads != 1) omp_set_num_threads(1);
    int rc = reorder_weight_here(mm, to_packed, from, to, error, error_size);
    if (threads != 1) omp_set_num_threads(threads);
    return rc;
}

int tf_matmul_pack_weight(const tf_matmul *mm, const float *weight, void *packed, char *error, size_t error_size) {
    return reorder_weight(mm, 1, weight, packed, error, error_size);
}

int tf_matmul_unpack_weight(const tf_matmul *mm, const void *packed, float *weight, char *error, size_t error_size) {
    return reorder_weight(mm, 0, packed, weight, error, error_size);
}

int tf_matmul_exec_create(const tf_matmul *mm, tf_matmul_exec **out, char *error, size_t error_size) {
    *out = NULL;
    tf_matmul_exec *e = calloc(1, sizeof *e);
    if (!e) return fail(error, error_size, "out of memory");
    e->matmul = mm;
    size_t scratch = dnnl_memory_desc_get_size(&mm->scratch_md);
    size_t bf16 = mm->precision == TF_MATMUL_BF16 ? dnnl_memory_desc_get_size(&mm->src_md) : 0;
    if ((scratch && !(e->scratch_buffer = aligned_alloc(64, (scratch + 63) / 64 * 64))) ||
        (bf16 && !(e->bf16_buffer = aligned_alloc(64, (bf16 + 63) / 64 * 64)))) {
        tf_matmul_exec_free(e);
        return fail(error, error_size, "out of memory for matmul scratch (%zu bytes)", scratch + bf16);
    }
    /* Handles are placeholders until each run sets them. */
    void *none = DNNL_MEMORY_NONE;
    if (dnnl_stream_create(&e->stream, engine, dnnl_stream_default_flags) != dnnl_success ||
        dnnl_memory_create(&e->user_src, &mm->user_src_md, engine, none) != dnnl_success ||
        dnnl_memory_create(&e->src, &mm->src_md, engine, bf16 ? e->bf16_buffer : none) != dnnl_success ||
        dnnl_memory_create(&e->weight, &mm->weight_md, engine, none) != dnnl_success ||
        dnnl_memory_create(&e->dst, &mm->dst_md, engine, none) != dnnl_success ||
        dnnl_memory_create(&e->bias, &mm->bias_md, engine, none) != dnnl_success ||
        dnnl_memory_create(&e->scratch, &mm->scratch_md, engine, scratch ? e->scratch_buffer : none) != dnnl_success) {
        tf_matmul_exec_free(e);
        return fail(error, error_size, "oneDNN: cannot create the matmul's memory objects");
    }
    *out = e;
    return 0;
}

void tf_matmul_exec_free(tf_matmul_exec *e) {
    if (!e) return;
    dnnl_memory_t mems[] = {e->src, e->user_src, e->weight, e->dst, e->bias, e->scratch};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++) if (mems[i]) dnnl_memory_destroy(mems[i]);
    if (e->stream) dnnl_stream_destroy(e->stream);
    free(e->scratch_buffer);
    free(e->bf16_buffer);
    free(e);
}

int tf_matmul_run(tf_matmul_exec *e, const float *x, const void *packed_weight, const float *bias, float *y,
                  char *error, size_t error_size) {
    const tf_matmul *mm = e->matmul;
    int has_bias = mm->epilogue == TF_MATMUL_BIAS || mm->epilogue == TF_MATMUL_BIAS_ACCUMULATE;
    if (has_bias && !bias) return fail(error, error_size, "matmul epilogue needs a bias");
    int threads = omp_get_max_threads();
    if (threads != 1) omp_set_num_threads(1);
    int rc = 1;
    if (dnnl_memory_set_data_handle_v2(e->weight, (void *)packed_weight, NULL) != dnnl_success ||
        dnnl_memory_set_data_handle_v2(e->dst, y, NULL) != dnnl_success ||
        (has_bias && dnnl_memory_set_data_handle_v2(e->bias, (void *)bias, NULL) != dnnl_success)) {
        fail(error, error_size, "oneDNN: cannot bind the matmul's buffers");
        goto done;
    }
    if (mm->precision == TF_MATMUL_BF16) {
        if (dnnl_memory_set_data_handle_v2(e->user_src, (void *)x, NULL) != dnnl_success) {
            fail(error, error_size, "oneDNN: cannot bind the matmul's input");
            goto done;
        }
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, e->user_src}, {DNNL_ARG_TO, e->src}};
        if (dnnl_primitive_execute(mm->to_bf16, e->stream, 2, args) != dnnl_success) {
            fail(error, error_size, "oneDNN: bf16 conversion failed");
            goto done;
        }
    } else if (dnnl_memory_set_data_handle_v2(e->src, (void *)x, NULL) != dnnl_success) {
        fail(error, error_size, "oneDNN: cannot bind the matmul's input");
        goto done;
    }
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->weight}, {DNNL_ARG_DST, e->dst},
                               {DNNL_ARG_SCRATCHPAD, e->scratch}, {DNNL_ARG_BIAS, e->bias}};
    if (dnnl_primitive_execute(mm->primitive, e->stream, has_bias ? 5 : 4, args) != dnnl_success) {
        fail(error, error_size, "oneDNN: matmul failed");
        goto done;
    }
    rc = 0;
done:
    if (threads != 1) omp_set_num_threads(threads);
    return rc;
}
