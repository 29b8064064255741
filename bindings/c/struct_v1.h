/* Every public struct of include/transface.h frozen as released in 0.2 ("v1"), under its own
 * name, so that the struct-evolution tests call today's library exactly as a program compiled
 * against the 0.2 header does; plus the two structs as first released in 0.1 that grew since
 * (config without no_se_gate, context_params without precision). Never edit these: add a v2.
 *
 * guarded(slot, size) returns memory whose `size` bytes end where an inaccessible page begins, so
 * a library read or write past struct_size faults at once. */
#ifndef TRANSFACE_TEST_STRUCT_V1_H
#define TRANSFACE_TEST_STRUCT_V1_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct { uint32_t struct_size; char arch[32]; int32_t img_size, patch_size, in_channels, embed_dim, depth,
                 num_heads, mlp_hidden_dim, embedding_size; float drop_path_rate, mask_ratio; int32_t no_se_gate; } config_v1;
typedef struct { uint32_t struct_size; char arch[32]; int32_t img_size, patch_size, in_channels, embed_dim, depth,
                 num_heads, mlp_hidden_dim, embedding_size; float drop_path_rate, mask_ratio; } config_v0;
typedef struct { uint32_t struct_size; int32_t input_width, input_height; float mean[3], std[3];
                 int32_t channel_order; float align_template[10]; } preprocess_v1;
typedef struct { uint32_t struct_size; int32_t verify_checksums; uint64_t max_weight_bytes; } load_params_v1;
typedef struct { uint32_t struct_size; const char *name; int32_t ndim; int64_t dims[4]; size_t count; } tensor_info_v1;
typedef struct { uint32_t struct_size; int32_t num_threads, max_batch; int32_t precision; } context_params_v1;
typedef struct { uint32_t struct_size; int32_t num_threads, max_batch; } context_params_v0;
typedef struct { uint32_t struct_size; uint64_t max_pixels; int32_t accept_damaged; } decode_params_v1;
typedef struct { uint32_t struct_size; int32_t width, height, format, channels; } image_info_v1;
typedef struct { uint32_t struct_size; int32_t layout, image_width, image_height, jpeg_quality; } pack_params_v1;
typedef struct { uint32_t struct_size; int32_t folds, interleaved, flip; double far_target;
                 const char *pair_naming, *landmark_source; } verify_params_v1;
typedef struct { uint32_t struct_size; int32_t folds; size_t pairs; double accuracy_mean, accuracy_std;
                 double fold_accuracy[64], fold_threshold[64]; double best_threshold, best_accuracy, far_target,
                 val_mean, val_std, far_mean, xnorm; size_t images; } verify_result_v1;
typedef struct { uint32_t struct_size; int32_t flip, use_norm_score, use_detector_score; const char *image_dir; } ijb_params_v1;
typedef struct { uint32_t struct_size; char dataset[8]; size_t images, templates, pairs, genuine_pairs, impostor_pairs,
                 roc_points; double auc; } ijb_summary_v1;
typedef struct { uint32_t struct_size; double loss, first_pass_loss, learning_rate, gradient_norm, clip_coefficient;
                 int32_t optimizer_stepped, skipped, images_augmented; uint64_t step; double seconds; } step_result_v1;
typedef struct { uint32_t struct_size; uint64_t step, batches; double learning_rate, learning_rate_scale; } trainer_info_v1;
typedef struct { uint32_t struct_size; int32_t num_heads, embedding_size, img_size; const char *arch;
                 const char *const *metadata; size_t metadata_count; void (*note)(void *, const char *);
                 void *user_data; } convert_params_v1;
typedef struct { uint32_t struct_size; int32_t num_threads, min_face_size; float scale_factor, thresholds[3];
                 int32_t landmark_box; } detector_params_v1;
typedef struct { uint32_t struct_size; float box[4], score, landmarks[10]; } face_v1;
typedef struct { uint32_t struct_size; int32_t storage, read_only, search_threads; } gallery_params_v1;
typedef struct { uint32_t struct_size; float score; int32_t passes; uint64_t entry_id; const char *label; } match_v1;

/* Memory for `size` bytes that end where an inaccessible page begins; `slot` 0..3 picks one of
 * four such regions (so that a call can take several guarded structs). Filled with 0xA5. */
static void *guarded(int slot, size_t size) {
    static uint8_t *pages[4];
    static long page;
    if (!page) page = sysconf(_SC_PAGESIZE);
    if (slot < 0 || slot > 3 || size > (size_t)page) { fprintf(stderr, "guarded: slot %d, %zu bytes\n", slot, size); exit(2); }
    if (!pages[slot]) {
        uint8_t *p = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED || mprotect(p + page, (size_t)page, PROT_NONE) != 0) {
            perror("guard page");
            exit(2);
        }
        pages[slot] = p;
    }
    memset(pages[slot], 0xA5, (size_t)page);
    return pages[slot] + page - size;
}

/* A copy of `v` placed in guarded slot `slot`. */
#define GUARDED_COPY(slot, type, v) ((type *)memcpy(guarded(slot, sizeof(type)), &(v), sizeof(type)))

#endif
