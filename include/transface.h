/*
 * libtransface — TransFace face recognition (ICCV 2023) on the CPU.
 *
 * The public C ABI. Hand-written; the Swift implementation checks its exported
 * functions against these declarations at compile time, so this file is the contract.
 *
 * Conventions
 *  - Every function that can fail returns a transface_status. On failure a message naming
 *    the problem is available from transface_last_error() on the same thread.
 *  - Handles are opaque. Objects created by *_create / *_load are released by the matching
 *    *_free, which accepts NULL.
 *  - Every struct starts with struct_size, and new fields are only ever appended.
 *    Parameter structs: get them from *_default_params() and change the fields you need;
 *    passing NULL means "defaults". Structs the library fills (transface_config,
 *    transface_preprocess, transface_tensor_info): set struct_size = sizeof(the struct)
 *    before the call; the library never writes past it.
 *  - Outputs are caller-allocated buffers with an explicit capacity counted in elements.
 *    Strings returned by the library live as long as the object that returned them.
 *  - On any error, output buffers may have been partly written, nothing is leaked and the
 *    objects involved stay valid.
 *
 * Thread safety
 *  - transface_model is immutable after loading: share it between any number of threads.
 *    transface_model_free may be called while contexts created from it are alive: the weights
 *    are released when the last of them is freed.
 *  - transface_context holds the buffers of one inference stream: use it from one thread at a
 *    time (calls on different contexts run in parallel, each on its own workers).
 *  - transface_builder: one thread at a time.
 *  - transface_last_error() is per thread.
 *  - Parallelism: each context runs its own worker threads (num_threads, including the calling
 *    thread) and calls OpenBLAS single-threaded from them. The library sets OpenBLAS to one
 *    thread when the first context is created; do not raise it while contexts run.
 */
#ifndef TRANSFACE_H
#define TRANSFACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- versions */

#define TRANSFACE_VERSION_MAJOR 0
#define TRANSFACE_VERSION_MINOR 1
#define TRANSFACE_VERSION_PATCH 0
/** MAJOR * 10000 + MINOR * 100 + PATCH. */
#define TRANSFACE_VERSION_NUMBER \
    (TRANSFACE_VERSION_MAJOR * 10000 + TRANSFACE_VERSION_MINOR * 100 + TRANSFACE_VERSION_PATCH)
/** Version of the model file layout; bumps only for structural changes. */
#define TRANSFACE_FORMAT_VERSION 1

/** Library version, as TRANSFACE_VERSION_NUMBER of the library actually loaded. */
uint32_t transface_version_number(void);
/** Library version as "MAJOR.MINOR.PATCH"; static storage. */
const char *transface_version_string(void);
/** Newest model file format version this library reads and the one it writes. */
uint32_t transface_format_version(void);

/* ---------------------------------------------------------------- errors */

typedef enum transface_status {
    TRANSFACE_OK = 0,
    TRANSFACE_INVALID_ARGUMENT = 1, /* NULL pointer, bad count or size, capacity too small */
    TRANSFACE_IO = 2,               /* file cannot be opened, read or written */
    TRANSFACE_FORMAT = 3,           /* file is not a valid model: magic, version, checksum... */
    TRANSFACE_OUT_OF_MEMORY = 4,
    TRANSFACE_ABORTED = 5,
    TRANSFACE_NUMERIC = 6,          /* NaN, Inf, zero-length vector */
    TRANSFACE_MISUSE = 7,           /* call not allowed in the object's current state */
    TRANSFACE_INTERNAL = 8,
    TRANSFACE_NOT_FOUND = 9         /* no tensor, metadata key or preset of that name */
} transface_status;

/** A short constant description of a status ("invalid argument"); static storage. */
const char *transface_status_string(transface_status status);
/**
 * The message of the last failed call on this thread, or "" if none failed yet.
 * Valid until the next failing call on the same thread.
 */
const char *transface_last_error(void);

/* ---------------------------------------------------------------- configuration */

/** Architecture of a TransFace ViT. All fields are needed to build a model. */
typedef struct transface_config {
    uint32_t struct_size;
    char arch[32];           /* preset name ("vit_s", ...) or "custom"; NUL-terminated */
    int32_t img_size;        /* input side in pixels; 112 in every official model */
    int32_t patch_size;      /* 9: the conv sees the top-left (img/patch)*patch pixels */
    int32_t in_channels;     /* must be 3 (RGB or BGR faces) */
    int32_t embed_dim;       /* token width D */
    int32_t depth;           /* transformer blocks */
    int32_t num_heads;       /* attention heads; must divide embed_dim */
    int32_t mlp_hidden_dim;  /* (int)(embed_dim * mlp_ratio); 4 * embed_dim officially */
    int32_t embedding_size;  /* output embedding E; 512 officially */
    float drop_path_rate;    /* training only */
    float mask_ratio;        /* training only */
} transface_config;

/**
 * Fill *out with an official configuration: "vit_t", "vit_t_dp005_mask0", "vit_s",
 * "vit_s_dp005_mask_0", "vit_b", "vit_b_dp005_mask_005", "vit_l_dp005_mask_005".
 * embedding_size 0 means 512. TRANSFACE_NOT_FOUND for an unknown name.
 */
transface_status transface_config_preset(const char *name, int32_t embedding_size,
                                         transface_config *out);
/** Number of preset names, and the name at index (NULL past the end); static storage. */
size_t transface_config_preset_count(void);
const char *transface_config_preset_name(size_t index);

typedef enum transface_channel_order {
    TRANSFACE_CHANNELS_RGB = 0,
    TRANSFACE_CHANNELS_BGR = 1
} transface_channel_order;

/** How images must be prepared for a model; stored in the model file. */
typedef struct transface_preprocess {
    uint32_t struct_size;
    int32_t input_width;      /* = img_size */
    int32_t input_height;     /* = img_size */
    float mean[3];            /* network channel c sees (u8 / 255 - mean[c]) / std[c]; 0.5 */
    float std[3];             /* 0.5 officially */
    int32_t channel_order;    /* transface_channel_order of the network's input, RGB officially.
                                 Images are always passed as RGB; for a BGR network the library
                                 reverses the channels. */
    float align_template[10]; /* 5 (x, y) points, ArcFace template for 112x112 */
} transface_preprocess;

/* ---------------------------------------------------------------- models */

typedef struct transface_model transface_model;

typedef struct transface_load_params {
    uint32_t struct_size;
    int32_t verify_checksums;  /* 1 (default): check the header and every tensor's CRC-32 */
    uint64_t max_weight_bytes; /* refuse files whose weights exceed this; 0 = no limit */
} transface_load_params;

transface_load_params transface_load_default_params(void);

/**
 * Load a model file (.tfm). Weights are read straight into one aligned buffer: peak memory
 * is the weight size plus a small header. float16/bfloat16 tensors are converted to float32.
 */
transface_status transface_model_load(const char *path, const transface_load_params *params,
                                      transface_model **out_model);
void transface_model_free(transface_model *model);

transface_status transface_model_get_config(const transface_model *model, transface_config *out);
transface_status transface_model_get_preprocess(const transface_model *model,
                                                transface_preprocess *out);
/** Embedding size E of the model, or 0 when model is NULL. */
int32_t transface_model_embedding_size(const transface_model *model);

/** Free-form metadata (key/value UTF-8 strings) stored with the model. */
size_t transface_model_metadata_count(const transface_model *model);
transface_status transface_model_metadata_at(const transface_model *model, size_t index,
                                             const char **out_key, const char **out_value);
transface_status transface_model_metadata_get(const transface_model *model, const char *key,
                                              const char **out_value);

/** Shape of one tensor, under its official PyTorch state_dict name. */
typedef struct transface_tensor_info {
    uint32_t struct_size;
    const char *name;   /* lives as long as the model or builder */
    int32_t ndim;       /* 1..4 */
    int64_t dims[4];    /* unused dims are 0 */
    size_t count;       /* number of elements */
} transface_tensor_info;

/** Tensors of a model, in layout order (the order of the official state_dict). */
size_t transface_model_tensor_count(const transface_model *model);
transface_status transface_model_tensor_info(const transface_model *model, size_t index,
                                             transface_tensor_info *out);
/** Copy a tensor's float32 values; capacity counts floats. */
transface_status transface_model_read_tensor(const transface_model *model, const char *name,
                                             float *out, size_t capacity);

/* ---------------------------------------------------------------- inference */

typedef struct transface_context transface_context;

typedef struct transface_context_params {
    uint32_t struct_size;
    int32_t num_threads; /* worker threads including the caller; default 1 */
    int32_t max_batch;   /* images per forward pass; larger requests run in chunks; default 8 */
} transface_context_params;

transface_context_params transface_context_default_params(void);

/** Create inference buffers for up to max_batch images; nothing is allocated per call. */
transface_status transface_context_create(const transface_model *model,
                                          const transface_context_params *params,
                                          transface_context **out_context);
void transface_context_free(transface_context *context);

/** Flags of transface_embed*. */
#define TRANSFACE_EMBED_FLIP 1u         /* add the mirrored image's embedding (official TTA) */
#define TRANSFACE_EMBED_NO_NORMALIZE 2u /* return the raw (summed) embedding, not unit length */

/**
 * Embed count aligned faces. images: count * height * width * 3 bytes, each image stored
 * row by row, pixels interleaved R, G, B (whatever the model's channel_order);
 * width and height must equal the model's input size. Writes count * E floats to embeddings.
 * Results do not depend on max_batch or on how images are split between calls.
 */
transface_status transface_embed(transface_context *context, const uint8_t *images, size_t count,
                                 int32_t width, int32_t height, uint32_t flags, float *embeddings,
                                 size_t capacity);

/**
 * As transface_embed, and also the per-patch outputs of the unflipped image: patch_weights
 * (count * P floats, softmax of the SE gate, the ranking DPAP uses) and patch_std (count * P,
 * unbiased std of each gated token, EHSM's entropy proxy), P = (img_size / patch_size)^2.
 * embeddings, patch_weights and patch_std may each be NULL (with capacity 0) when not wanted.
 */
transface_status transface_embed_with_patches(transface_context *context, const uint8_t *images,
                                              size_t count, int32_t width, int32_t height,
                                              uint32_t flags, float *embeddings,
                                              size_t embeddings_capacity, float *patch_weights,
                                              size_t patch_weights_capacity, float *patch_std,
                                              size_t patch_std_capacity);

/** Cosine similarity of two embeddings of length dim (need not be normalised). */
transface_status transface_compare(const float *a, const float *b, size_t dim, float *out_cosine);

/* ---------------------------------------------------------------- building model files */

typedef struct transface_builder transface_builder;

typedef enum transface_dtype {
    TRANSFACE_DTYPE_F32 = 0,
    TRANSFACE_DTYPE_F16 = 1,
    TRANSFACE_DTYPE_BF16 = 2
} transface_dtype;

/**
 * Start a model of the given architecture with every tensor unset, official preprocessing
 * and no metadata. The converter uses it to import official state_dicts.
 */
transface_status transface_builder_create(const transface_config *config,
                                          transface_builder **out_builder);
void transface_builder_free(transface_builder *builder);

/** The tensors the architecture expects (names, shapes), in layout order. */
size_t transface_builder_tensor_count(const transface_builder *builder);
transface_status transface_builder_tensor_info(const transface_builder *builder, size_t index,
                                               transface_tensor_info *out);

/** Set one tensor by its official name; dims must match the expected shape exactly. */
transface_status transface_builder_set_tensor(transface_builder *builder, const char *name,
                                              const void *data, transface_dtype dtype,
                                              const int64_t *dims, int32_t ndim);
/** Initialise every tensor as the official code does (truncated normal 0.02 for linear
 *  weights, PyTorch defaults for the SE and conv layers, unit norms), from a seed. */
transface_status transface_builder_init_weights(transface_builder *builder, uint64_t seed);
transface_status transface_builder_set_preprocess(transface_builder *builder,
                                                  const transface_preprocess *preprocess);
/** Add or replace a metadata entry (UTF-8 key and value). */
transface_status transface_builder_set_metadata(transface_builder *builder, const char *key,
                                                const char *value);
/** Write the model file (atomically: temporary file, fsync, rename). Fails with
 *  TRANSFACE_MISUSE, naming it, while any tensor is unset. */
transface_status transface_builder_save(const transface_builder *builder, const char *path);
/** Make an in-memory model from the builder (same checks as save). */
transface_status transface_builder_build(const transface_builder *builder,
                                         transface_model **out_model);

/* ---------------------------------------------------------------- images (decoding, alignment) */

/* ---------------------------------------------------------------- datasets */

/* ---------------------------------------------------------------- evaluation */

/* ---------------------------------------------------------------- training */

#ifdef __cplusplus
}
#endif

#endif /* TRANSFACE_H */
