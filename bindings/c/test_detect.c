/* Face detection through the C ABI: a detector file converted from facenet-pytorch's MTCNN
 * weights finds the face of LFW photos (landmarks inside the box, the main face near the centre),
 * none on dogs.jpg; BGR and RGB inputs agree; face arrays are written at the caller's element
 * size and never past capacity; transface_embed_photo equals detect + align + embed by hand;
 * errors (NULL, sizes, limits, wrong handles, an embedding model as detector, bad params).
 * Usage: test_detect DETECTOR.tfd MODEL.tfm SHARED_DIR */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define SAYS(text) CHECK(strstr(transface_last_error(), text) != NULL, "message lacks '%s': %s", text, transface_last_error())

static uint8_t *decode(const char *path, int *w, int *h) {
    transface_image_info info;
    uint8_t *rgb;
    info.struct_size = sizeof info;
    if (transface_decode_file(path, NULL, NULL, 0, &info) != TRANSFACE_OK) return NULL;
    rgb = malloc((size_t)info.width * (size_t)info.height * 3);
    if (!rgb || transface_decode_file(path, NULL, rgb, (size_t)info.width * (size_t)info.height * 3, &info) != TRANSFACE_OK) {
        free(rgb);
        return NULL;
    }
    *w = info.width;
    *h = info.height;
    return rgb;
}

static int inside(const transface_face *f) {
    for (int i = 0; i < 5; i++) {
        float x = f->landmarks[2 * i], y = f->landmarks[2 * i + 1];
        if (x < f->box[0] || x > f->box[2] || y < f->box[1] || y > f->box[3]) return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    transface_detector *d = NULL;
    transface_model *m = NULL;
    transface_context *ctx = NULL;
    transface_face faces[8], main_face;
    char path[4096];
    int w = 0, h = 0, dw = 0, dh = 0;
    size_t n = 0, nb = 0;
    if (argc < 4) {
        fprintf(stderr, "usage: test_detect DETECTOR.tfd MODEL.tfm SHARED_DIR\n");
        return 2;
    }
    transface_detector_params p;
    OK(transface_detector_params_init(&p, sizeof p));
    CHECK(p.num_threads == 1 && p.landmark_box == TRANSFACE_LANDMARKS_TRUNCATED && p.min_face_size == 0, "default params");
    p.num_threads = 2;
    OK(transface_detector_load(argv[1], &p, &d));
    OK(transface_model_load(argv[2], NULL, &m));
    OK(transface_context_create(m, NULL, &ctx));
    snprintf(path, sizeof path, "%s/data/lfw/images/Abdullah_Gul/Abdullah_Gul_0013.jpg", argv[3]);
    uint8_t *photo = decode(path, &w, &h);
    snprintf(path, sizeof path, "%s/data/photos_misc/dlib_examples_faces/dogs.jpg", argv[3]);
    uint8_t *dogs = decode(path, &dw, &dh);
    CHECK(photo && dogs, "decoding the test photos under %s", argv[3]);
    if (!d || !m || !ctx || !photo || !dogs) goto done;

    /* an LFW photo: faces sorted by score, the main one near the centre with its landmarks inside */
    faces[0].struct_size = sizeof faces[0];
    OK(transface_detect(d, photo, w, h, 0, TRANSFACE_PIXELS_RGB, faces, 8, &n));
    CHECK(n >= 1 && n <= 8, "%zu faces", n);
    for (size_t i = 1; i < n; i++) CHECK(faces[i].score <= faces[i - 1].score, "faces not sorted by score");
    main_face.struct_size = sizeof main_face;
    OK(transface_detect_main_face(d, photo, w, h, 0, TRANSFACE_PIXELS_RGB, &main_face));
    float cx = (main_face.box[0] + main_face.box[2]) / 2, cy = (main_face.box[1] + main_face.box[3]) / 2;
    CHECK(fabsf(cx - w / 2.0f) < 25 && fabsf(cy - h / 2.0f) < 25 && main_face.score > 0.9f && inside(&main_face),
          "main face at (%.1f, %.1f), score %.3f", cx, cy, main_face.score);
    printf("Abdullah_Gul_0013.jpg: %zu face(s), main box %.1f %.1f %.1f %.1f score %.4f\n", n, main_face.box[0],
           main_face.box[1], main_face.box[2], main_face.box[3], main_face.score);

    /* BGR (and a padded stride) gives the same faces */
    {
        size_t stride = (size_t)w * 3 + 7;
        uint8_t *bgr = calloc(stride * (size_t)h, 1);
        transface_face again[8];
        again[0].struct_size = sizeof again[0];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) bgr[(size_t)y * stride + (size_t)x * 3 + (size_t)(2 - c)] = photo[((size_t)y * w + x) * 3 + c];
        OK(transface_detect(d, bgr, w, h, stride, TRANSFACE_PIXELS_BGR, again, 8, &nb));
        CHECK(nb == n && memcmp(again, faces, n * sizeof faces[0]) == 0, "BGR with stride: %zu faces, differ", nb);
        free(bgr);
    }

    /* capacity below the count, and a caller's larger element struct (a newer header) */
    {
        struct { transface_face f; uint8_t future[12]; } big[2];
        memset(big, 0x5A, sizeof big);
        big[0].f.struct_size = sizeof big[0];
        OK(transface_detect(d, photo, w, h, 0, TRANSFACE_PIXELS_RGB, &big[0].f, 1, &nb));
        CHECK(nb == n, "count %zu with capacity 1, %zu found", nb, n);
        CHECK(big[0].f.struct_size == sizeof(transface_face) && memcmp(&big[0].f.box, &faces[0].box, sizeof faces[0].box) == 0,
              "larger element: struct_size %u", big[0].f.struct_size);
        CHECK(big[0].future[0] == 0x5A && big[1].f.struct_size == 0x5A5A5A5A, "wrote past capacity or the element");
        OK(transface_detect(d, photo, w, h, 0, TRANSFACE_PIXELS_RGB, NULL, 0, &nb));
        CHECK(nb == n, "count only: %zu", nb);
    }

    /* no face on dogs.jpg */
    OK(transface_detect(d, dogs, dw, dh, 0, TRANSFACE_PIXELS_RGB, faces, 8, &n));
    CHECK(n == 0, "%zu faces on dogs.jpg", n);
    EXPECT(TRANSFACE_NOT_FOUND, transface_detect_main_face(d, dogs, dw, dh, 0, TRANSFACE_PIXELS_RGB, &main_face));

    /* photo in, embedding out: equal to detect + align + embed */
    {
        transface_config c;
        transface_preprocess pre;
        uint8_t aligned[112 * 112 * 3];
        float e1[512], e2[512];
        transface_face used;
        c.struct_size = sizeof c;
        pre.struct_size = sizeof pre;
        OK(transface_model_get_config(m, &c));
        OK(transface_model_get_preprocess(m, &pre));
        used.struct_size = sizeof used;
        OK(transface_embed_photo(ctx, d, photo, w, h, 0, TRANSFACE_PIXELS_RGB, TRANSFACE_EMBED_FLIP, e1, 512, &used));
        OK(transface_align_face(photo, w, h, 0, TRANSFACE_PIXELS_RGB, main_face.landmarks, pre.align_template, 112, aligned,
                                sizeof aligned, NULL));
        OK(transface_embed(ctx, aligned, 1, 112, 112, TRANSFACE_EMBED_FLIP, e2, 512));
        CHECK(memcmp(e1, e2, (size_t)c.embedding_size * sizeof(float)) == 0 && memcmp(&used, &main_face, sizeof used) == 0,
              "embed_photo differs from detect + align + embed");
        EXPECT(TRANSFACE_NOT_FOUND, transface_embed_photo(ctx, d, dogs, dw, dh, 0, TRANSFACE_PIXELS_RGB, 0, e1, 512, NULL));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_embed_photo(ctx, d, photo, w, h, 0, TRANSFACE_PIXELS_RGB, 0, e1, 1, NULL));
    }

    /* errors */
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_detect(d, NULL, w, h, 0, TRANSFACE_PIXELS_RGB, faces, 8, &n));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_detect(d, photo, 0, h, 0, TRANSFACE_PIXELS_RGB, faces, 8, &n));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_detect(d, photo, w, h, 5, TRANSFACE_PIXELS_RGB, faces, 8, &n));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_detect(d, photo, 1 << 14, 1 << 14, 0, TRANSFACE_PIXELS_RGB, faces, 8, &n));
    SAYS("limit");
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_detect(d, photo, w, h, 0, (transface_pixel_format)9, faces, 8, &n));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_detect(d, photo, w, h, 0, TRANSFACE_PIXELS_RGB, faces, 8, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_detect((transface_detector *)ctx, photo, w, h, 0, TRANSFACE_PIXELS_RGB, faces, 8, &n));
    SAYS("expected a transface_detector, got a transface_context");
    faces[0].struct_size = 8;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_detect(d, photo, w, h, 0, TRANSFACE_PIXELS_RGB, faces, 8, &n));
    SAYS("transface_face");
    {
        transface_detector *bad = NULL;
        EXPECT(TRANSFACE_FORMAT, transface_detector_load(argv[2], NULL, &bad));
        SAYS("not a detector");
        transface_model *wrong = NULL;
        EXPECT(TRANSFACE_FORMAT, transface_model_load(argv[1], NULL, &wrong));
        SAYS("not an embedding model");
        p.landmark_box = 7;
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_detector_load(argv[1], &p, &bad));
        OK(transface_detector_params_init(&p, sizeof p));
        p.thresholds[1] = 2;
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_detector_load(argv[1], &p, &bad));
        EXPECT(TRANSFACE_IO, transface_detector_load("/nonexistent.tfd", NULL, &bad));
        CHECK(bad == NULL, "no detector from failed loads");
    }

done:
    free(photo);
    free(dogs);
    transface_context_free(ctx);
    transface_detector_free(d);
    transface_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
