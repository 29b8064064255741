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
 *  - Struct evolution (as sqlite's iVersion): every struct starts with struct_size, and new
 *    fields are only ever appended. The library reads and writes only the first struct_size
 *    bytes of a caller's struct, so a program compiled against an older header keeps working
 *    with a newer library (fields it predates take their defaults; results it predates are not
 *    written), and a newer program works with an older library as long as the fields it sets
 *    past the older struct are zero. A struct_size below the struct's first released size,
 *    or a larger struct whose bytes past the library's struct are not zero, fails with
 *    TRANSFACE_INVALID_ARGUMENT naming the struct and both sizes.
 *    Parameter structs: fill them with transface_<x>_params_init(&p, sizeof p) and change
 *    the fields you need; passing NULL means "defaults". (The by-value
 *    transface_<x>_default_params() getters remain for source compatibility; use them only in
 *    code compiled against this header, since an older caller's return slot is smaller.)
 *    Structs the library fills (results, transface_config, transface_preprocess,
 *    transface_tensor_info): set struct_size = sizeof(the struct) before the call; on return
 *    struct_size is the number of bytes the library filled (smaller when the library predates
 *    fields of your header; the bytes past it are left as they were).
 *    bindings/c/test_struct_evolution.c checks this with the structs as released in 0.2 and
 *    smaller ones, each at the end of a page followed by an inaccessible page.
 *  - Outputs are caller-allocated buffers with an explicit capacity counted in elements.
 *    Strings returned by the library live as long as the object that returned them.
 *  - On any error, output buffers may have been partly written, nothing is leaked and the
 *    objects involved stay valid.
 *
 * Thread safety
 *  - transface_model is immutable after loading: share it between any number of threads.
 *    transface_model_free may be called while contexts created from it are alive: the weights
 *    are released when the last of them is freed.
 *  - transface_model_load and transface_model_free may run on any threads at the same time,
 *    also while other threads embed with other (or the same, still referenced) models.
 *  - transface_context holds the buffers of one inference stream: use it from one thread at a
 *    time (calls on different contexts run in parallel, each on its own workers). Typical use:
 *    one model shared by all threads, one context per thread.
 *  - transface_trainer is not shareable: one thread at a time (its worker threads are its own);
 *    different trainers may run in parallel.
 *  - transface_builder: one thread at a time.
 *  - transface_recordio and transface_bin may be read from several threads at once.
 *  - transface_detector holds buffers like a context: one thread at a time (one per thread).
 *  - transface_gallery: any number of threads may search, count and list (identity_count,
 *    identity) at once; enrol and remove wait for them and run alone. One writer process per
 *    gallery file (a lock file beside it).
 *  - Functions without a handle (decoding, alignment, comparison, evaluation of arrays) are
 *    reentrant.
 *  - transface_last_error() is per thread: a failing call never changes another thread's
 *    message.
 *  bindings/c/test_stress.c checks this contract under load (8 threads sharing a model, each
 *  with its own context, while other threads load and free models).
 *
 * Untrusted input
 *  - Sizes claimed by a file are checked against the file's size and against the caller's limit
 *    before anything is allocated: model files and checkpoints (every tensor record must lie in
 *    the file; transface_load_params.max_weight_bytes), images
 *    (transface_decode_params.max_pixels), RecordIO records, .bin sets.
 *  - Paths read from dataset files resolve under the dataset root only (see "datasets").
 *  - Damaged files fail with TRANSFACE_FORMAT; nothing in a file is executed.
 *  - Parallelism: each context runs its own worker threads (num_threads, including the calling
 *    thread) and calls its matmul backend (oneDNN) and OpenBLAS single-threaded from them. The
 *    library sets OpenBLAS to one thread when the first context is created (do not raise it while
 *    contexts run) and holds oneDNN's OpenMP team size to one for the length of each of its calls
 *    (the calling thread's own OpenMP setting is restored afterwards).
 *  - Instruction sets: the kernels use AVX-512 where the CPU has it, AVX2 + FMA otherwise. The
 *    environment variable TRANSFACE_ISA (native, avx2, avx512, avx512_bf16), read once when the
 *    first context or trainer is created, caps that for the whole process (for testing); an
 *    unknown value makes context and trainer creation fail with TRANSFACE_INVALID_ARGUMENT.
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
#define TRANSFACE_VERSION_MINOR 2
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
    int32_t no_se_gate;      /* 0: the SE module re-weights the tokens (TransFace, every official
                                model); 1: plain ViT without it (the paper's ablation baseline) */
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
/** Defaults into the first `size` bytes of *params (size = sizeof *params; also sets struct_size). */
transface_status transface_load_params_init(transface_load_params *params, uint32_t size);

/**
 * Load a model file (.tfm). Weights are read straight into one aligned buffer: peak memory
 * is the weight size plus a small header. float16/bfloat16 tensors are converted to float32.
 * A header whose tensors do not tile the file exactly (e.g. claiming sizes the file does not
 * hold) fails with TRANSFACE_FORMAT before the weights are allocated; weights above
 * params->max_weight_bytes fail with TRANSFACE_INVALID_ARGUMENT, also before allocating.
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

/** Arithmetic of the model's token GEMMs. */
typedef enum transface_precision {
    TRANSFACE_PRECISION_FP32 = 0, /* float32 throughout (default) */
    TRANSFACE_PRECISION_BF16 = 1  /* bfloat16 weights and GEMM inputs, float32 accumulation and
                                     everything else; needs AVX512_BF16 or AMX (else
                                     TRANSFACE_INVALID_ARGUMENT). Embeddings agree with fp32 to
                                     cosine >= 0.9995 on the reference faces. */
} transface_precision;

typedef struct transface_context_params {
    uint32_t struct_size;
    int32_t num_threads; /* worker threads including the caller; default 1 */
    int32_t max_batch;   /* images per forward pass; larger requests run in chunks; default 8 */
    transface_precision precision; /* since 0.2 (struct_size 16); default FP32 */
} transface_context_params;

transface_context_params transface_context_default_params(void);
/** Defaults into the first `size` bytes of *params (size = sizeof *params; also sets struct_size). */
transface_status transface_context_params_init(transface_context_params *params, uint32_t size);

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

/* ---------------------------------------------------------------- converting official state_dicts */

/**
 * Options of transface_convert_state_dict and transface_convert_infer_config (fill with
 * transface_convert_params_init; NULL params mean these defaults). The converter's messages
 * name the options as the command line does (--arch, --num-heads, --embedding-size).
 */
typedef struct transface_convert_params {
    uint32_t struct_size;
    int32_t num_heads;      /* attention heads; 0 (default): from arch, else 8 (every official
                               model), which a note reports; must divide embed_dim */
    int32_t embedding_size; /* 0 (default): from feature.2.weight; else must agree with it */
    int32_t img_size;       /* input side; 0 (default): 112 when 112 / patch gives the grid of
                               pos_embed (official), else grid * patch */
    const char *arch;       /* official preset name ("vit_s", ...): sets num_heads and the training
                               fields, and the shapes must match it; NULL (default): "custom" */
    const char *const *metadata; /* metadata_count (key, value) pairs, UTF-8: key i at
                               metadata[2i], its value at metadata[2i+1]; stored after (and
                               replacing any of) the converter's own source, source_format,
                               converter, arch and num_heads_from entries */
    size_t metadata_count;
    /* NULL (default), or called on the calling thread with each note (one UTF-8 line: skipped
       tensors, prefixes stripped, where num_heads came from), in order, after a successful call;
       line lives for the call only */
    void (*note)(void *user_data, const char *line);
    void *user_data;        /* passed to note */
} transface_convert_params;

transface_convert_params transface_convert_default_params(void);
/** Defaults into the first `size` bytes of *params (size = sizeof *params; also sets struct_size). */
transface_status transface_convert_params_init(transface_convert_params *params, uint32_t size);

/**
 * Convert an official TransFace PyTorch state_dict to a model file at out_path (written as
 * transface_builder_save does). src_path: a torch.save file of torch >= 1.6 (zip format; read
 * without torch: the pickle is unpickled with an allow-list of tensor rebuilds, storage types
 * and OrderedDict, nothing in it is run) or an .npz of arrays under the state_dict names; a
 * training checkpoint's state_dict_backbone is used and a "module." prefix stripped;
 * *.num_batches_tracked and partial_fc.* are skipped. The architecture is inferred from the
 * shapes (see transface_convert_infer_config). float16, bfloat16 and float64 tensors are stored
 * as float32. The output is byte-identical to `transface convert`'s.
 * out_config may be NULL; else (struct_size set) it receives the architecture written.
 * Fails with TRANSFACE_NOT_FOUND (no such source), TRANSFACE_FORMAT (not an .npz or torch.save
 * zip, damaged or truncated archive, forbidden pickle global, tensors missing, unknown,
 * mis-shaped or not floating point: all named in one message), TRANSFACE_INVALID_ARGUMENT
 * (NULL paths, bad params, options that contradict the tensors, NaN or Inf in a tensor) or
 * TRANSFACE_IO; out_path is then left as it was.
 */
transface_status transface_convert_state_dict(const char *src_path,
                                              const transface_convert_params *params,
                                              const char *out_path, transface_config *out_config);

/**
 * The architecture that official tensors of these shapes describe, as transface_convert_state_dict
 * infers it (no file is read): count tensors, tensor i named names[i] with ndims[i] (0..8)
 * dimensions; dims holds all shapes one after another (sum of ndims values). Needs pos_embed,
 * patch_embed.proj.weight, blocks.0.mlp.fc1.weight and feature.2.weight; depth counts the
 * blocks.<i>. names. params->metadata is not used. TRANSFACE_FORMAT when the shapes describe no
 * TransFace ViT, TRANSFACE_INVALID_ARGUMENT for options that contradict them.
 */
transface_status transface_convert_infer_config(const char *const *names, const int32_t *ndims,
                                                const int64_t *dims, size_t count,
                                                const transface_convert_params *params,
                                                transface_config *out_config);

/* ---------------------------------------------------------------- images (decoding, alignment) */

/*
 * Decoding: JPEG (libjpeg-turbo), PNG (libpng), PNM (P1..P6), recognised by their first bytes.
 * Every image comes out as 8-bit RGB, rows packed (width * 3 bytes), top row first:
 *  - grey is expanded to R = G = B; alpha is dropped, not composited (the stored colours, as
 *    OpenCV's imread); 16-bit samples are scaled to 8 bits; CMYK JPEGs are converted as
 *    OpenCV does; PNM samples are scaled by 255 / maxval; EXIF orientation is NOT applied.
 *  - JPEGs are decoded with libjpeg's defaults (accurate integer IDCT, fancy upsampling), as
 *    OpenCV does: on the reference photos the pixels equal cv2.imread's exactly.
 *  - Damaged, truncated or foreign data fails with TRANSFACE_FORMAT, never a crash.
 * Every image function is reentrant and keeps no state: call them from any number of threads
 * (they run on the calling thread only).
 */
typedef enum transface_image_format {
    TRANSFACE_IMAGE_JPEG = 1,
    TRANSFACE_IMAGE_PNG = 2,
    TRANSFACE_IMAGE_PNM = 3 /* PBM, PGM, PPM (P1 to P6), maxval up to 65535 */
} transface_image_format;

typedef struct transface_decode_params {
    uint32_t struct_size;
    uint64_t max_pixels;    /* images whose header claims more pixels (width * height) are refused
                               with TRANSFACE_INVALID_ARGUMENT before anything is allocated;
                               default 100,000,000; 0 = no limit beyond the formats' own */
    int32_t accept_damaged; /* 0 (default): a JPEG libjpeg can only decode with a warning (truncated
                               file, corrupt data) fails with TRANSFACE_FORMAT; 1: it is returned as
                               libjpeg reconstructs it (missing parts filled in by libjpeg) */
} transface_decode_params;

transface_decode_params transface_decode_default_params(void);
/** Defaults into the first `size` bytes of *params (size = sizeof *params; also sets struct_size). */
transface_status transface_decode_params_init(transface_decode_params *params, uint32_t size);

/** What an image header says. Set struct_size before the call. */
typedef struct transface_image_info {
    uint32_t struct_size;
    int32_t width;
    int32_t height;
    int32_t format;   /* transface_image_format */
    int32_t channels; /* stored in the file: 1 grey, 2 grey+alpha, 3 colour, 4 colour+alpha or CMYK */
} transface_image_info;

/**
 * Decode an encoded image held in memory to RGB. out_info (required) receives the header.
 * With out_rgb NULL and capacity 0 only the header is read (and checked against max_pixels):
 * use it to size the buffer, then call again. Otherwise capacity (bytes) must be at least
 * width * height * 3, else TRANSFACE_INVALID_ARGUMENT (out_info is filled all the same).
 */
transface_status transface_decode_image(const uint8_t *data, size_t size,
                                        const transface_decode_params *params, uint8_t *out_rgb,
                                        size_t capacity, transface_image_info *out_info);
/** As transface_decode_image, reading the file at path (TRANSFACE_IO if it cannot be read). */
transface_status transface_decode_file(const char *path, const transface_decode_params *params,
                                       uint8_t *out_rgb, size_t capacity,
                                       transface_image_info *out_info);

/*
 * Alignment: insightface's norm_crop. A least-squares similarity transform (rotation, uniform
 * scale, translation; never a reflection) maps 5 landmarks onto a template, then the image is
 * warped bilinearly into a square RGB crop, black (0) where the source is outside the image.
 *
 * Landmarks and template points: 10 floats x0, y0, ..., x4, y4 in pixels (pixel centres at
 * integers), in this order (image-left and image-right, as seen in the picture):
 *     0 image-left eye, 1 image-right eye, 2 nose tip,
 *     3 image-left mouth corner, 4 image-right mouth corner.
 * (For a frontal face the image-left eye is the subject's right eye. OpenCV's YuNet gives
 * right eye, left eye, nose, right mouth corner, left mouth corner in the subject's terms,
 * which is this order.)
 *
 * Matrices: 6 doubles, row-major 2x3 [a b c; d e f], mapping image (x, y) to crop
 * (a x + b y + c, d x + e y + f), as cv2.warpAffine takes them (double, like OpenCV, because
 * the warp inverts the matrix). The warp uses OpenCV's arithmetic (4.11 and later): results
 * equal cv2.warpAffine's exactly for the same matrix on the reference photos.
 */
typedef enum transface_pixel_format {
    TRANSFACE_PIXELS_RGB = 0,
    TRANSFACE_PIXELS_BGR = 1,
    TRANSFACE_PIXELS_RGBA = 2,
    TRANSFACE_PIXELS_BGRA = 3,
    TRANSFACE_PIXELS_GRAY = 4
} transface_pixel_format;

/**
 * The ArcFace template for a size x size crop, as insightface's estimate_norm: size a multiple
 * of 112 scales the 112x112 points by size/112; otherwise a multiple of 128 scales them by
 * size/128 and adds 8*size/128 to x. Other sizes: TRANSFACE_INVALID_ARGUMENT.
 */
transface_status transface_alignment_template(int32_t size, float out_points[10]);

/**
 * The least-squares similarity transform mapping the 5 points src onto dst (Umeyama, as
 * scikit-image's SimilarityTransform.estimate, computed in double precision; scikit-image
 * keeps float32 points in float32, so its matrices differ from these by about 2e-5).
 * TRANSFACE_NUMERIC when the points are not finite, src points coincide or the fit is degenerate.
 */
transface_status transface_estimate_similarity(const float src[10], const float dst[10],
                                               double out_matrix[6]);

/**
 * Warp an 8-bit image by matrix (image to output coordinates) into an out_width x out_height
 * RGB image (capacity >= out_width * out_height * 3 bytes). image: height rows stride bytes
 * apart (0 = packed), pixels in format. TRANSFACE_NUMERIC when the matrix is singular.
 */
transface_status transface_warp_affine(const uint8_t *image, int32_t width, int32_t height,
                                       size_t stride, transface_pixel_format format,
                                       const double matrix[6], int32_t out_width,
                                       int32_t out_height, uint8_t *out_rgb, size_t capacity);

/**
 * Align a face: the transform from landmarks to template_points (NULL: the ArcFace template
 * for out_size, see transface_alignment_template; a model's transface_preprocess.align_template
 * with its input size also works), then the warp into an out_size x out_size RGB crop
 * (capacity >= out_size * out_size * 3 bytes). out_matrix (may be NULL) receives the matrix.
 */
transface_status transface_align_face(const uint8_t *image, int32_t width, int32_t height,
                                      size_t stride, transface_pixel_format format,
                                      const float landmarks[10], const float *template_points,
                                      int32_t out_size, uint8_t *out_rgb, size_t capacity,
                                      double out_matrix[6]);

/* ---------------------------------------------------------------- datasets */

/*
 * Training sets in InsightFace's RecordIO form (train.rec + train.idx + property, as MXNet and
 * dmlc-core write them; no MXNet needed), image folders, list files and .bin verification sets.
 *
 * Paths read from inside dataset files (list entries, pairs lists, image names) are resolved
 * under the dataset's root folder only: absolute paths and ".." components are refused with
 * TRANSFACE_FORMAT, so a dataset file never names a file outside its root. The rule is lexical:
 * symbolic links inside the root are followed like any file (the root's contents are trusted,
 * only the text of list, pairs and IJB files is not); do not place links there you would not
 * want read.
 */

/** An opened RecordIO training set. Reads may come from several threads at once. */
typedef struct transface_recordio transface_recordio;

/**
 * Open a RecordIO set: path is the folder holding train.rec and train.idx (and optionally
 * property), or the .rec file itself (its .idx beside it; without an .idx the file is scanned).
 * Both layouts of arcface_torch are read: legacy (MS1MV2: record 0 is a header whose labels name
 * the image and identity key ranges) and flat (RecBuilder, im2rec: every record is an image).
 */
transface_status transface_recordio_open(const char *path, transface_recordio **out_recordio);
/** Close a set (NULL is accepted). */
void transface_recordio_close(transface_recordio *recordio);
/** Number of images, or 0 when recordio is NULL. */
size_t transface_recordio_count(const transface_recordio *recordio);
/** Number of classes from property or the legacy header; 0 when the set does not say. */
size_t transface_recordio_num_classes(const transface_recordio *recordio);
/**
 * Image index (0 .. count-1): its class (the record's label, or its first label when it has
 * several) and its encoded bytes as stored (JPEG, PNG, ...). *out_size receives the byte count;
 * pass image NULL with capacity 0 to learn it, otherwise capacity must be at least that size.
 * out_label may be NULL.
 */
transface_status transface_recordio_read(const transface_recordio *recordio, size_t index,
                                         int32_t *out_label, uint8_t *image, size_t capacity,
                                         size_t *out_size);

typedef enum transface_recordio_layout {
    TRANSFACE_RECORDIO_FLAT = 0,  /* image i at key i, label = class (insightface RecBuilder) */
    TRANSFACE_RECORDIO_LEGACY = 1 /* header record 0 + images sorted by class at keys 1..N +
                                     one [start, end) key-range record per class (MS1MV2) */
} transface_recordio_layout;

typedef struct transface_pack_params {
    uint32_t struct_size;
    int32_t layout;       /* transface_recordio_layout; default FLAT */
    int32_t image_width;  /* written to property; default 112 */
    int32_t image_height; /* default 112 */
    int32_t jpeg_quality; /* 0 (default): store every file byte for byte; 1..100: keep JPEG files
                             as they are and re-encode other images (PNG, PNM) as JPEG of this
                             quality (insightface's pack_img uses 95) */
} transface_pack_params;

transface_pack_params transface_pack_default_params(void);
/** Defaults into the first `size` bytes of *params (size = sizeof *params; also sets struct_size). */
transface_status transface_pack_params_init(transface_pack_params *params, uint32_t size);

/**
 * Pack images into output_dir/train.rec, train.idx and property (created atomically; the folder
 * is created if missing). source is either a folder with one sub-folder of images per identity
 * (labels 0, 1, ... in sorted folder-name order), or a list file of "path<TAB>label" lines (an
 * optional header line; further columns ignored) whose paths are relative to root (NULL: the list
 * file's folder). Image files are stored byte for byte unless params->jpeg_quality asks for
 * non-JPEG images to be re-encoded (aligned faces are expected: nothing is resized or aligned).
 * *out_images (may be NULL) receives the number of images packed.
 */
transface_status transface_recordio_pack(const char *source, const char *root,
                                         const char *output_dir,
                                         const transface_pack_params *params, size_t *out_images);

/**
 * A verification set in insightface's .bin form (lfw.bin, cfp_fp.bin, agedb_30.bin, ...): a
 * pickle of (bins, issame_list), pair i being images 2i and 2i+1. It is read by a safe parser of
 * the pickle subset these files use (protocols 2 to 5, Python 2 str and Python 3 bytes, numpy
 * uint8 arrays): nothing in the file is ever executed; anything else fails with TRANSFACE_FORMAT.
 */
typedef struct transface_bin transface_bin;

/** Read a .bin file into memory. */
transface_status transface_bin_open(const char *path, transface_bin **out_bin);
/** Release a set (NULL is accepted). */
void transface_bin_close(transface_bin *bin);
/** Number of pairs, or 0 when bin is NULL. */
size_t transface_bin_pair_count(const transface_bin *bin);
/**
 * The encoded bytes of image index (0 .. 2 * pairs - 1); *out_data lives as long as bin.
 */
transface_status transface_bin_image(const transface_bin *bin, size_t index,
                                     const uint8_t **out_data, size_t *out_size);
/** The same-person flag (1 or 0) of every pair; capacity >= pairs. */
transface_status transface_bin_issame(const transface_bin *bin, uint8_t *out_issame,
                                      size_t capacity);
/**
 * Write a .bin set (atomically) as pickle.dump((bins, issame_list), f, protocol) does: images[i]
 * of sizes[i] bytes for i < 2 * pairs, issame[pairs] (non-zero = same). protocol 3, 4 or 5 gives
 * the bytes CPython writes (0 means 4, Python 3's usual HIGHEST_PROTOCOL for these files); 2
 * writes Python 2 str opcodes, which Python 3 reads with encoding='bytes'.
 */
transface_status transface_bin_write(const char *path, const uint8_t *const *images,
                                     const size_t *sizes, const uint8_t *issame, size_t pairs,
                                     int32_t protocol);

/* ---------------------------------------------------------------- evaluation */

/*
 * Face verification as insightface's eval/verification.py computes it, to the last bit on
 * float64 distances: embeddings L2-normalised (float64), distance = squared L2 of the pair's
 * difference, thresholds 0, 0.01, ..., 3.99 (np.arange(0, 4, 0.01)), KFold(folds, shuffle=False)
 * (contiguous folds, the first pairs % folds one pair larger); per fold the best threshold is the
 * first argmax of the accuracy on the other folds and the fold's accuracy is measured at it; a
 * pair is "same" iff distance < threshold. VAL@FAR: thresholds np.arange(0, 4, 0.001), the
 * threshold reaching far_target on the training folds interpolated linearly (as SciPy's
 * interp1d(kind='slinear'); the last threshold of a run of equal FARs; 0 if never reached), then
 * VAL and FAR of the test fold; NaN for a fold without same (or different) pairs.
 */

/** Largest number of folds (the size of the per-fold arrays of transface_verify_result). */
#define TRANSFACE_MAX_FOLDS 64
/** Number of thresholds of the verification ROC (transface_verify_roc). */
#define TRANSFACE_VERIFY_THRESHOLDS 400

typedef struct transface_verify_params {
    uint32_t struct_size;
    int32_t folds;               /* 1 .. TRANSFACE_MAX_FOLDS and at most the pair count; 10 */
    int32_t interleaved;         /* 0 (default): contiguous folds, as the official code; 1: pair i
                                    goes to fold i % folds, for files sorted by class such as LFW's
                                    pairsDevTest.txt (500 same, then 500 different pairs) */
    int32_t flip;                /* evaluate_*: add the mirrored face's embedding (1, official) */
    double far_target;           /* VAL@FAR target; 1e-3 */
    const char *pair_naming;     /* evaluate_pairs, LFW pairs.txt form: the path of "name number",
                                    {name}, {num} and {num4} (4 digits) replaced; NULL =
                                    "{name}/{name}_{num4}.jpg" */
    const char *landmark_source; /* evaluate_pairs: preferred value of the landmark table's
                                    `source` column; NULL = the first row of each image */
} transface_verify_params;

transface_verify_params transface_verify_default_params(void);
/** Defaults into the first `size` bytes of *params (size = sizeof *params; also sets struct_size). */
transface_status transface_verify_params_init(transface_verify_params *params, uint32_t size);

/** Verification results. Set struct_size before the call. */
typedef struct transface_verify_result {
    uint32_t struct_size;
    int32_t folds;
    size_t pairs;
    double accuracy_mean;                       /* mean and population std of fold_accuracy */
    double accuracy_std;
    double fold_accuracy[TRANSFACE_MAX_FOLDS];  /* first `folds` entries used */
    double fold_threshold[TRANSFACE_MAX_FOLDS]; /* each fold's best threshold */
    double best_threshold;                      /* first argmax threshold on all pairs at once */
    double best_accuracy;                       /* its accuracy on all pairs */
    double far_target;
    double val_mean;                            /* VAL@far_target over folds: mean, std */
    double val_std;
    double far_mean;                            /* mean FAR at the chosen thresholds */
    double xnorm;       /* evaluate_*: mean norm of the raw embeddings (of the original and the
                           mirrored faces), insightface's "XNorm"; NaN otherwise */
    size_t images;      /* evaluate_*: distinct images embedded; 0 otherwise */
} transface_verify_result;

/**
 * Squared L2 distances of pairs after float64 L2-normalisation of every row (dim floats each):
 * pair i = (emb1 row i, emb2 row i), or with emb2 NULL rows 2i and 2i+1 of emb1 (the .bin
 * order). out_distances holds pairs doubles. TRANSFACE_NUMERIC for a zero or non-finite row.
 */
transface_status transface_pair_distances(const float *emb1, const float *emb2, size_t pairs,
                                          size_t dim, double *out_distances);
/** The verification protocol on embeddings (emb2 NULL: interleaved rows, as above). */
transface_status transface_verify_embeddings(const float *emb1, const float *emb2,
                                             const uint8_t *issame, size_t pairs, size_t dim,
                                             const transface_verify_params *params,
                                             transface_verify_result *out);
/** The verification protocol on precomputed squared distances. */
transface_status transface_verify_distances(const double *distances, const uint8_t *issame,
                                            size_t pairs, const transface_verify_params *params,
                                            transface_verify_result *out);
/**
 * The protocol's ROC: for each of the TRANSFACE_VERIFY_THRESHOLDS thresholds (i * 0.01), the
 * mean over folds of the test fold's TPR and FPR (calculate_roc's tpr, fpr). capacity >= 400.
 */
transface_status transface_verify_roc(const double *distances, const uint8_t *issame,
                                      size_t pairs, const transface_verify_params *params,
                                      double *out_thresholds, double *out_tpr, double *out_fpr,
                                      size_t capacity);

/**
 * The ROC of similarity scores (higher = more alike) as sklearn.metrics.roc_curve computes it:
 * one point per distinct score (accept iff score >= threshold), collinear points dropped
 * (drop_intermediate), a first point (0, 0) at threshold +inf. labels: non-zero = genuine pair.
 * *out_points receives the number of points; pass NULL arrays with capacity 0 to learn it.
 */
transface_status transface_roc_curve(const double *scores, const uint8_t *labels, size_t n,
                                     double *out_fpr, double *out_tpr, double *out_thresholds,
                                     size_t capacity, size_t *out_points);
/**
 * TAR (TPR) at each target FAR in fars, with the convention of insightface's IJB evaluation
 * (eval_ijbc.py): on that ROC, the point whose FPR is closest to the target (among equally
 * close points the one with the largest TPR), which may lie above the target.
 * out_thresholds (may be NULL) receives each point's score threshold.
 */
transface_status transface_tar_at_far(const double *scores, const uint8_t *labels, size_t n,
                                      const double *fars, size_t nfars, double *out_tar,
                                      double *out_thresholds);

/**
 * Evaluate a model on a .bin verification set: every image is decoded and must be an aligned
 * face of the model's input size; the original (and, with flip, mirrored) faces are embedded
 * with context, summed, and verified as above.
 */
transface_status transface_evaluate_bin(transface_context *context, const char *bin_path,
                                        const transface_verify_params *params,
                                        transface_verify_result *out);
/**
 * Evaluate a model on a pairs list: a TSV with a header naming path1, path2 and same (the form
 * of ../shared/data/lfw/splits/devtest_pairs.tsv) or an LFW pairs.txt (View 1 or 2, paths made
 * with params->pair_naming). Image paths are relative to image_root. With landmarks_path (a TSV
 * with columns path, leye_x, leye_y, ..., rmouth_y, optionally source), each image is aligned
 * with its landmarks to the model's template; without it, images must already be aligned faces
 * of the model's input size. Each distinct image is embedded once.
 */
transface_status transface_evaluate_pairs(transface_context *context, const char *pairs_path,
                                          const char *image_root, const char *landmarks_path,
                                          const transface_verify_params *params,
                                          transface_verify_result *out);

/*
 * IJB-B / IJB-C 1:1 verification of a model, as insightface's eval_ijbc.py, on the
 * "IJB_release" layout (t = "ijbb" or "ijbc"):
 *   <ijb_dir>/loose_crop/<image>                the images (params->image_dir overrides the folder)
 *   <ijb_dir>/meta/<t>_face_tid_mid.txt         "image template_id media_id" per line
 *   <ijb_dir>/meta/<t>_template_pair_label.txt  "template_id_1 template_id_2 label" (1 genuine, 0 not)
 *   <ijb_dir>/meta/<t>_name_5pts_score.txt      "image x1 y1 ... x5 y5 faceness", the images of
 *                                               face_tid_mid.txt in the same order
 * Protocol: every image is aligned with its 5 points to the model's template and embedded (raw);
 * F1 (flip) adds the mirrored crop's embedding; unless N1 (use_norm_score) that feature is
 * L2-normalised; D1 (use_detector_score) multiplies it by the faceness score. A template's
 * feature is the mean of the features of each of its medias, summed over its medias, then
 * L2-normalised. A pair's score is the cosine of its two template features. The ROC is
 * sklearn's roc_curve of the scores (as transface_roc_curve) and the TAR at each target FAR is
 * the TPR of the ROC point whose FPR is closest to the target (as transface_tar_at_far; it may
 * lie above the target). Computed in float64 (the official code mixes float32 and float64:
 * scores agree to about 1e-7).
 */

typedef struct transface_ijb_params {
    uint32_t struct_size;
    int32_t flip;               /* F1: add the mirrored face's embedding; 1 (official) */
    int32_t use_norm_score;     /* N1: keep each image feature's norm; 0 */
    int32_t use_detector_score; /* D1: weight each image feature by its faceness score; 0 */
    const char *image_dir;      /* folder the image names are relative to; NULL = <ijb_dir>/loose_crop */
} transface_ijb_params;

transface_ijb_params transface_ijb_default_params(void);
/** Defaults into the first `size` bytes of *params (size = sizeof *params; also sets struct_size). */
transface_status transface_ijb_params_init(transface_ijb_params *params, uint32_t size);

/** What transface_evaluate_ijb evaluated. Set struct_size before the call. */
typedef struct transface_ijb_summary {
    uint32_t struct_size;
    char dataset[8];       /* "IJBB" or "IJBC", NUL-terminated */
    size_t images;         /* images embedded */
    size_t templates;      /* distinct templates with images */
    size_t pairs;          /* template pairs scored */
    size_t genuine_pairs;  /* pairs labelled 1 */
    size_t impostor_pairs; /* pairs labelled 0 */
    size_t roc_points;     /* points of the ROC */
    double auc;            /* area under the ROC (sklearn.metrics.auc) */
} transface_ijb_summary;

/**
 * Evaluate a model on IJB-B or IJB-C 1:1 (see above). dataset: "IJBB" or "IJBC" (any case),
 * or NULL to take the one whose meta files ijb_dir holds (an error when it holds both).
 * params may be NULL (defaults). For each of the nfars (>= 1) target FARs in [0, 1], out_tar
 * receives the TAR and out_thresholds (may be NULL) the score threshold of the chosen ROC point
 * (accept iff score >= threshold; +inf for the (0, 0) point); both hold capacity >= nfars
 * doubles. out (may be NULL) receives the summary. Errors: TRANSFACE_IO for a missing folder
 * or file, TRANSFACE_FORMAT for a malformed meta line (the message names the file and line)
 * or an image that cannot be decoded, TRANSFACE_NUMERIC for a zero or non-finite embedding.
 */
transface_status transface_evaluate_ijb(transface_context *context, const char *ijb_dir,
                                        const char *dataset, const transface_ijb_params *params,
                                        const double *fars, size_t nfars, double *out_tar,
                                        double *out_thresholds, size_t capacity,
                                        transface_ijb_summary *out);

/* ---------------------------------------------------------------- training */

/**
 * DPAP's amplitude-spectrum mix of one patch, the official FFT.amplitude_spectrum_mix with a given
 * lambda: per channel, with F1, F2 the 2-D DFTs of source and partner,
 *   out = uint8(clip(real(ifft2(A * exp(i * angle(F1)))), 0, 255))   (truncated, not rounded)
 * where A = lambda * |F2| + (1 - lambda) * |F1| inside the centred crop of the fftshifted spectrum
 * (h_crop = int(height * sqrt(ratio)), likewise w; ratio 1 mixes every frequency, as training
 * does) and |F1| outside. source, partner and out hold height * width * channels bytes, row by
 * row, channels interleaved (official DPAP: 9 x 9 x 3); out may be source or partner. lambda must
 * be finite (DPAP draws it from U(0, 1)); ratio in [0, 1]. Single-precision FFT: an output byte
 * can differ by one from NumPy's where the exact value is an integer (e.g. lambda 0).
 */
transface_status transface_amplitude_mix(const uint8_t *source, const uint8_t *partner,
                                         int32_t height, int32_t width, int32_t channels,
                                         double lambda, double ratio, uint8_t *out, size_t capacity);

/*
 * Training. A trainer owns parameters, gradients, optimizer moments, class centres (Partial FC)
 * and seeded random streams; transface_trainer_step runs the official TransFace iteration
 * (a train-mode pass without gradient ranks patches by SE weight, DPAP mixes amplitude spectra,
 * the second pass computes the EHSM-weighted margin loss, backward, clipping, optimizer step).
 * The configuration is JSON (keys documented in README.md; unknown keys are errors), e.g.
 *   {"arch": "vit_t", "num_classes": 1000, "batch_size": 32, "threads": 2}
 * A trainer is used by one thread at a time; its worker threads are its own.
 */
typedef struct transface_trainer transface_trainer;

/** A trainer from a JSON configuration; weights from init_model (same architecture) or, when
 *  NULL, the official initialisation seeded by the configuration's "seed". */
transface_status transface_trainer_create(const char *config_json, const transface_model *init_model,
                                          transface_trainer **out_trainer);
/** Continue from a checkpoint; num_threads 0 keeps the saved count (needed for bit-exact
 *  continuation). The weights, class centres, optimizer moments, random streams, position and
 *  learning-rate back-off are restored; the tensor sizes the stored configuration implies are
 *  checked against the file before the trainer is allocated (TRANSFACE_FORMAT otherwise), and a
 *  truncated or damaged checkpoint fails with TRANSFACE_FORMAT. */
transface_status transface_trainer_resume(const char *checkpoint_path, int32_t num_threads,
                                          transface_trainer **out_trainer);
void transface_trainer_free(transface_trainer *trainer);

/** What one step did. Set struct_size before the call. */
typedef struct transface_step_result {
    uint32_t struct_size;
    double loss;              /* the trained pass's loss */
    double first_pass_loss;   /* the no-gradient pass's loss (DPAP on), else NaN */
    double learning_rate;     /* the rate this step used (a skipped batch: the next step's rate,
                                 already reduced under "non_finite": "reduce_lr") */
    double gradient_norm;     /* backbone gradient norm before clipping (NaN: no optimizer step) */
    double clip_coefficient;  /* factor applied to the backbone gradients (1: not clipped) */
    int32_t optimizer_stepped; /* 1 when the batch completed an optimizer step */
    int32_t skipped;          /* 1 when skipped for a non-finite value ("non_finite": "skip" or
                                 "reduce_lr") */
    int32_t images_augmented; /* images DPAP changed */
    uint64_t step;            /* optimizer steps taken so far */
    double seconds;           /* wall time of the call */
} transface_step_result;

/** One batch: batch_size RGB images of the configured size and their labels in
 *  [0, num_classes). A non-finite loss or gradient fails with TRANSFACE_NUMERIC and changes
 *  nothing (weights, statistics, random streams; a partly accumulated gradient is dropped).
 *  With "non_finite": "skip" the batch is skipped instead (out->skipped = 1, TRANSFACE_OK); with
 *  "non_finite": "reduce_lr" it is skipped and the learning rate is multiplied by
 *  "non_finite_lr_factor" (default 0.5) for the rest of the run (the factor is kept in
 *  checkpoints; see transface_trainer_get_info). out may be NULL. */
transface_status transface_trainer_step(transface_trainer *trainer, const uint8_t *images,
                                        const int32_t *labels, size_t count, int32_t width,
                                        int32_t height, transface_step_result *out);
/**
 * Write a checkpoint; resume with transface_trainer_resume. Crash-safe: the file is written as
 * "<path>.tmp-<pid>-<random>" beside path, fsynced, renamed over path, and the folder fsynced,
 * so path always holds a complete checkpoint (the previous or the new one), even if the process
 * is killed or the machine loses power mid-write. A killed writer may leave its temporary file
 * behind: the library never reads such files (delete them at will). A failed write (disk full,
 * file size limit, unwritable or missing folder) returns TRANSFACE_IO naming the path and the
 * system's reason, removes the temporary file and leaves the previous file at path intact.
 * Every model file and .bin/RecordIO output is written the same way.
 */
transface_status transface_trainer_save_checkpoint(const transface_trainer *trainer, const char *path);
/** Write the current weights as a model file for inference. */
transface_status transface_trainer_export_model(const transface_trainer *trainer, const char *path);
/** Number of values of a tensor: a parameter by its official name, "partial_fc.weight",
 *  "gradient.<name>", "optimizer.<exp_avg|exp_avg_sq|momentum_buffer>.<name>". */
transface_status transface_trainer_tensor_size(const transface_trainer *trainer, const char *name,
                                               size_t *out_count);
transface_status transface_trainer_read_tensor(const transface_trainer *trainer, const char *name,
                                               float *out, size_t capacity);
/** Overwrite a tensor by the names transface_trainer_read_tensor reads (a weight by its official
 *  name, BatchNorm running statistics included, "partial_fc.weight", or
 *  "optimizer.<exp_avg|exp_avg_sq|momentum_buffer>.<name>"; gradients cannot be set), e.g. to
 *  fine-tune from a pretrained head. count must equal transface_trainer_tensor_size and every
 *  value must be finite (second moments also non-negative); otherwise TRANSFACE_INVALID_ARGUMENT
 *  (TRANSFACE_NOT_FOUND for an unknown name) and the trainer is unchanged. The next step uses
 *  the new values. */
transface_status transface_trainer_set_tensor(transface_trainer *trainer, const char *name,
                                              const float *data, size_t count);
/** Import a run of the official TransFace train.py to continue it: paths are its
 *  checkpoint_gpu_<rank>.pt files (or folders holding them), one per rank (count in 1...65536;
 *  a single file may have any name), read without torch; config_json configures the trainer
 *  (sizes must match the run's: a mismatch is TRANSFACE_FORMAT naming the tensor). The backbone,
 *  the centres (rank r's shard at classes [C/W*r + min(r, C%W), ...) as partial_fc_exp.py), the
 *  AdamW/SGD moments and the step (schedule position) are taken; the data loader starts afresh.
 *  Save it with transface_trainer_save_checkpoint to resume later (`transface import-run` does
 *  both and prints what could not be carried over exactly). */
transface_status transface_trainer_import_official(const char *const *paths, size_t count,
                                                   const char *config_json,
                                                   transface_trainer **out_trainer);

/** Where a trainer is. Set struct_size before the call. */
typedef struct transface_trainer_info {
    uint32_t struct_size;
    uint64_t step;              /* optimizer steps taken (after a resume: the checkpoint's) */
    uint64_t batches;           /* batches seen (step * gradient_accumulation at a step boundary) */
    double learning_rate;       /* the rate the next optimizer step uses: the schedule's rate times
                                   learning_rate_scale */
    double learning_rate_scale; /* product of the "non_finite_lr_factor" back-offs so far
                                   ("non_finite": "reduce_lr"); 1 when none */
} transface_trainer_info;

/** The trainer's position, e.g. to continue feeding data after transface_trainer_resume. */
transface_status transface_trainer_get_info(const transface_trainer *trainer,
                                            transface_trainer_info *out);

/* ---------------------------------------------------------------- face detection (MTCNN) */

/**
 * A face detector: MTCNN (P-Net on an image pyramid, R-Net, O-Net) giving boxes, scores and the
 * 5 landmarks the alignment uses, loaded from a detector file (`transface convert-detector`
 * converts facenet-pytorch's weights). Like a context it holds the buffers of one stream: use it
 * from one thread at a time (one detector per thread; they may share nothing else).
 */
typedef struct transface_detector transface_detector;

/** Which box R-Net's and O-Net's outputs are decoded from. */
typedef enum transface_landmark_box {
    TRANSFACE_LANDMARKS_TRUNCATED = 0, /* the original MTCNN's truncated crop box (default: mean
                                          landmark error 1.93 px on LFW's hand labels) */
    TRANSFACE_LANDMARKS_FACENET = 1    /* facenet-pytorch 2.6.0's arithmetic exactly (2.28 px) */
} transface_landmark_box;

typedef struct transface_detector_params {
    uint32_t struct_size;
    int32_t num_threads;    /* workers including the calling thread; default 1 */
    int32_t min_face_size;  /* smallest face in pixels; 0 (default): the file's (20) */
    float scale_factor;     /* pyramid step in (0.1, 1); 0 (default): the file's (0.709) */
    float thresholds[3];    /* P-, R-, O-Net score thresholds; 0 each (default): the file's
                               (0.6, 0.7, 0.7) */
    int32_t landmark_box;   /* transface_landmark_box; default TRUNCATED */
} transface_detector_params;

transface_detector_params transface_detector_default_params(void);
/** Defaults into the first `size` bytes of *params (size = sizeof *params; also sets struct_size). */
transface_status transface_detector_params_init(transface_detector_params *params, uint32_t size);

/** One face: box and landmarks in pixels of the image given. */
typedef struct transface_face {
    uint32_t struct_size;
    float box[4];        /* x1, y1, x2, y2 */
    float score;         /* O-Net's face probability */
    float landmarks[10]; /* x, y of the left eye, right eye, nose, left and right mouth corners */
} transface_face;

/** Load a detector file (TRANSFACE_FORMAT for an embedding model or a damaged file). */
transface_status transface_detector_load(const char *path, const transface_detector_params *params,
                                         transface_detector **out_detector);
void transface_detector_free(transface_detector *detector);

/**
 * Detect the faces of an 8-bit image (`stride` bytes between rows, 0 = packed; any
 * transface_pixel_format), highest score first. *out_count is the number of faces found; the
 * first min(*out_count, capacity) are written to out_faces, an array whose elements are
 * out_faces[0].struct_size bytes apart (set it to sizeof(transface_face); each element's
 * struct_size is written). out_faces may be NULL when capacity is 0. Images above 2^26 pixels
 * are refused.
 */
transface_status transface_detect(transface_detector *detector, const uint8_t *image, int32_t width,
                                  int32_t height, size_t stride, transface_pixel_format format,
                                  transface_face *out_faces, size_t capacity, size_t *out_count);

/**
 * The main face of a photo: the face with the largest centre-weighted size (box area minus
 * twice the squared distance of its centre from the image centre; the reference face of 99.97 %
 * of LFW photos, where the largest box gives 96.7 %). TRANSFACE_NOT_FOUND when there is none.
 */
transface_status transface_detect_main_face(transface_detector *detector, const uint8_t *image,
                                            int32_t width, int32_t height, size_t stride,
                                            transface_pixel_format format, transface_face *out_face);

/**
 * Photo in, embedding out: the main face (as transface_detect_main_face) aligned onto the
 * context's model template with its landmarks, then embedded as transface_embed (flags) into
 * `embedding` (capacity >= E floats). out_face (may be NULL) receives the face used.
 * TRANSFACE_NOT_FOUND when the photo has no face.
 */
transface_status transface_embed_photo(transface_context *context, transface_detector *detector,
                                       const uint8_t *image, int32_t width, int32_t height,
                                       size_t stride, transface_pixel_format format, uint32_t flags,
                                       float *embedding, size_t capacity, transface_face *out_face);

/* ---------------------------------------------------------------- 1:N gallery */

/**
 * A gallery: a persistent file of enrolled embeddings (several per identity) searched exactly
 * (cosine = dot product of unit vectors). Crash-safe: an enrolment or removal that returned OK
 * survives kill -9 and power loss (an append-only log of CRC-checked records, synced before
 * returning); a torn last record is dropped on open, damage anywhere else is refused. Bound to
 * the model whose embeddings it holds (architecture, embedding size, a hash of the weights): a
 * gallery of another model is refused. Any number of threads may search one gallery at once;
 * enrolment and removal run alone. One writer process at a time (a lock file beside it);
 * read-only opens see the file as it was when opened.
 */
typedef struct transface_gallery transface_gallery;

typedef enum transface_gallery_storage {
    TRANSFACE_GALLERY_FLOAT32 = 0,
    TRANSFACE_GALLERY_FLOAT16 = 1, /* half the memory; top-10 recall 1.0 against float32 in tests */
    TRANSFACE_GALLERY_INT8 = 2     /* a quarter (int8, a scale per row); top-10 recall against
                                      float32 in tests 0.993 on clustered, 0.986 on random vectors */
} transface_gallery_storage;

typedef struct transface_gallery_params {
    uint32_t struct_size;
    int32_t storage;        /* transface_gallery_storage of a new gallery (an existing one keeps
                               its own); default FLOAT32 */
    int32_t read_only;      /* 1: no writes, no writer lock; default 0 */
    int32_t search_threads; /* workers of one search; default 1 */
    /* appended after the first release (struct_size 16 still accepted: exact index) */
    int32_t index;          /* transface_gallery_index; default EXACT */
    int32_t hnsw_m;         /* HNSW links per node, 2..256; default 16 */
    int32_t hnsw_ef_construction; /* HNSW build beam; default 200 */
    int32_t hnsw_ef_search; /* HNSW search beam (candidates re-scored exactly); default 64 */
    uint64_t hnsw_seed;     /* seed of the graph's node levels; default 100 */
} transface_gallery_params;

/** How a gallery searches (transface_gallery_params.index). */
typedef enum transface_gallery_index {
    TRANSFACE_GALLERY_EXACT = 0, /* every row scored */
    TRANSFACE_GALLERY_HNSW = 1   /* an HNSW graph (hnswlib) beside the file proposes rows, scored
                                    exactly; approximate: see Benchmarks/gallery/RESULTS.md */
} transface_gallery_index;

transface_gallery_params transface_gallery_default_params(void);
/** Defaults into the first `size` bytes of *params (size = sizeof *params; also sets struct_size). */
transface_status transface_gallery_params_init(transface_gallery_params *params, uint32_t size);

/**
 * Open the gallery file at path, creating it empty when absent, for the embeddings of `model`.
 * model may be NULL to open an existing gallery read-only whatever its model (to list it).
 */
transface_status transface_gallery_open(const char *path, const transface_model *model,
                                        const transface_gallery_params *params,
                                        transface_gallery **out_gallery);
void transface_gallery_close(transface_gallery *gallery);

/**
 * Enrol `count` embeddings (count * dim floats; dim = the model's embedding size; normalised to
 * unit length here) under `label` (UTF-8, 1 to 1024 bytes), with metadata_count (key, value)
 * pairs (metadata[2i], metadata[2i+1]) merged into the identity's. out_ids (NULL or count
 * entries) receives the new entries' ids. Durable when it returns OK.
 */
transface_status transface_gallery_enrol(transface_gallery *gallery, const char *label,
                                         const float *embeddings, size_t count, size_t dim,
                                         const char *const *metadata, size_t metadata_count,
                                         uint64_t *out_ids);
/** Remove every embedding of `label` (TRANSFACE_NOT_FOUND when it has none). */
transface_status transface_gallery_remove(transface_gallery *gallery, const char *label,
                                          size_t *out_removed);
/** Embeddings in the gallery (0 for NULL). */
size_t transface_gallery_count(const transface_gallery *gallery);
/** Identities in the gallery (0 for NULL). */
size_t transface_gallery_identity_count(const transface_gallery *gallery);
/**
 * Identity `index` (0 .. identity_count - 1, sorted by label): its label (valid until the
 * gallery is closed) and embedding count.
 */
transface_status transface_gallery_identity(transface_gallery *gallery, size_t index,
                                            const char **out_label, size_t *out_count);

/** One search result. */
typedef struct transface_match {
    uint32_t struct_size;
    float score;       /* cosine of the query and the identity's best embedding */
    int32_t passes;    /* 1 when score >= the threshold given */
    uint64_t entry_id; /* that embedding's id */
    const char *label; /* valid until the gallery is closed */
} transface_match;

/**
 * The top-k identities for each of `count` queries (count * dim floats), best first, one match
 * per identity. out_matches holds count * k elements (query q's at [q * k, q * k + k)), strided by
 * out_matches[0].struct_size; out_found (count entries) receives how many each query got (fewer
 * than k when the gallery has fewer identities). threshold NaN: the cosine threshold stored in
 * the model the gallery was opened with (`transface eval --set-threshold-far`; metadata
 * verification_threshold), TRANSFACE_NOT_FOUND when it stores none.
 */
transface_status transface_gallery_search(transface_gallery *gallery, const float *queries,
                                          size_t count, size_t dim, size_t k, float threshold,
                                          transface_match *out_matches, size_t capacity,
                                          size_t *out_found);

#ifdef __cplusplus
}
#endif

#endif /* TRANSFACE_H */
