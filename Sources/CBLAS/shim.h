#include <cblas.h>
/* Process-wide OpenBLAS thread count (declared by OpenBLAS's cblas.h; repeated for clarity). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);

/* Whether this CPU runs the kernels' instruction set (x86-64: AVX2 and FMA; others: always). */
static inline int transface_cpu_supports_kernels(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 1;
#endif
}

/* Whether this CPU runs the AVX-512 twins of the kernels (x86-64-v4: AVX-512 F, BW, CD, DQ, VL). */
static inline int transface_cpu_supports_avx512(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}
