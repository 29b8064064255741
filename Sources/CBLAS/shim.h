#include <cblas.h>
/* Process-wide OpenBLAS thread count (declared by OpenBLAS's cblas.h; repeated for clarity). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
