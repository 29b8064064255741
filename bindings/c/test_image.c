/*
 * C test of the image functions of include/transface.h: decoding (JPEG, PNG, PNM) and 5-point
 * alignment, their error paths, and parity with the official recipe's outputs on the reference
 * LFW photos (OpenCV imread, scikit-image similarity, cv2.warpAffine).
 *
 *   test_image [SHARED_DIR]     SHARED_DIR defaults to ../shared next to the repository; the
 *                               parity part is skipped when its reference/align folder is missing.
 * Prints one line per failure and "N passed, M failed"; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transface.h"

#include "check.h"

/* ------------------------------------------------------------------ files */

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return buf;
}

/* The data of a C-order .npy file (format 1.0) of `bytes` bytes: its last bytes. */
static unsigned char *read_npy(const char *dir, const char *name, size_t bytes) {
    char path[4096];
    size_t size = 0;
    unsigned char *all, *out;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    all = read_file(path, &size);
    if (!all || size < bytes + 10) {
        free(all);
        return NULL;
    }
    out = malloc(bytes);
    memcpy(out, all + size - bytes, bytes);
    free(all);
    return out;
}

/* ------------------------------------------------------------------ tests */

static void test_api_and_errors(void) {
    transface_decode_params p = transface_decode_default_params();
    transface_image_info info;
    const unsigned char pgm[] = "P5 4 3 255\n0123456789ab";
    const unsigned char gif[] = "GIF89a0000";
    uint8_t rgb[4 * 3 * 3];
    float t[10], lm[10] = {5, 4, 12, 4, 8, 6, 6, 8, 11, 8}, same[10];
    double m[6];
    int i;

    CHECK(p.struct_size == sizeof p && p.max_pixels == 100000000u && p.accept_damaged == 0, "default params");
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;

    /* Header only, then the pixels. */
    EXPECT(TRANSFACE_OK, transface_decode_image(pgm, sizeof pgm - 1, NULL, NULL, 0, &info));
    CHECK(info.width == 4 && info.height == 3 && info.format == TRANSFACE_IMAGE_PNM && info.channels == 1,
          "info %dx%d format %d channels %d", info.width, info.height, info.format, info.channels);
    EXPECT(TRANSFACE_OK, transface_decode_image(pgm, sizeof pgm - 1, &p, rgb, sizeof rgb, &info));
    CHECK(rgb[0] == '0' && rgb[1] == '0' && rgb[2] == '0' && rgb[35] == 'b', "grey expanded to RGB");

    /* Errors. */
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_decode_image(pgm, sizeof pgm - 1, &p, rgb, sizeof rgb - 1, &info));
    CHECK(info.width == 4, "info is filled when the capacity is too small");
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_decode_image(NULL, 10, &p, rgb, sizeof rgb, &info));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_decode_image(pgm, sizeof pgm - 1, &p, rgb, sizeof rgb, NULL));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_decode_image(pgm, sizeof pgm - 1, &p, NULL, 5, &info));
    EXPECT(TRANSFACE_FORMAT, transface_decode_image(pgm, sizeof pgm - 2, &p, rgb, sizeof rgb, &info));
    EXPECT(TRANSFACE_FORMAT, transface_decode_image(gif, sizeof gif - 1, &p, rgb, sizeof rgb, &info));
    CHECK(strstr(transface_last_error(), "GIF") != NULL, "names GIF: %s", transface_last_error());
    EXPECT(TRANSFACE_FORMAT, transface_decode_image(pgm, 0, &p, rgb, sizeof rgb, &info));
    p.max_pixels = 11;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_decode_image(pgm, sizeof pgm - 1, &p, NULL, 0, &info));
    p = transface_decode_default_params();
    p.accept_damaged = 2;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_decode_image(pgm, sizeof pgm - 1, &p, rgb, sizeof rgb, &info));
    p = transface_decode_default_params();
    p.struct_size = 4;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_decode_image(pgm, sizeof pgm - 1, &p, rgb, sizeof rgb, &info));
    p = transface_decode_default_params();
    info.struct_size = 8;
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_decode_image(pgm, sizeof pgm - 1, &p, rgb, sizeof rgb, &info));
    info.struct_size = sizeof info;
    EXPECT(TRANSFACE_IO, transface_decode_file("/nonexistent/face.jpg", NULL, NULL, 0, &info));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_decode_file(NULL, NULL, NULL, 0, &info));
    {
        const unsigned char huge[] = "P6 100000 100000 255\n";
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_decode_image(huge, sizeof huge - 1, NULL, NULL, 0, &info));
        CHECK(strstr(transface_last_error(), "max_pixels") != NULL, "names max_pixels");
    }

    /* Templates and similarity. */
    EXPECT(TRANSFACE_OK, transface_alignment_template(112, t));
    CHECK(t[0] == 38.2946f && t[9] == 92.2041f, "template 112");
    EXPECT(TRANSFACE_OK, transface_alignment_template(128, t));
    CHECK(t[0] == 38.2946f + 8 && t[1] == 51.6963f, "template 128: x + 8");
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_alignment_template(100, t));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_alignment_template(112, NULL));
    EXPECT(TRANSFACE_OK, transface_estimate_similarity(lm, lm, m));
    CHECK(fabs(m[0] - 1) < 1e-12 && fabs(m[1]) < 1e-12 && fabs(m[2]) < 1e-9 && fabs(m[4] - 1) < 1e-12, "identity");
    for (i = 0; i < 10; i++) same[i] = 3;
    EXPECT(TRANSFACE_NUMERIC, transface_estimate_similarity(same, lm, m));
    EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_estimate_similarity(lm, NULL, m));

    /* Warp and align arguments. */
    {
        uint8_t img[20 * 10 * 4], out[112 * 112 * 3];
        const double identity[6] = {1, 0, 0, 0, 1, 0}, singular[6] = {1, 2, 0, 2, 4, 0};
        for (i = 0; i < (int)sizeof img; i++) img[i] = (uint8_t)(i * 7);
        EXPECT(TRANSFACE_OK, transface_warp_affine(img, 20, 10, 0, TRANSFACE_PIXELS_RGB, identity, 20, 10, out, sizeof out));
        CHECK(memcmp(out, img, 20 * 10 * 3) == 0, "identity warp copies the image");
        EXPECT(TRANSFACE_OK, transface_warp_affine(img, 20, 10, 80, TRANSFACE_PIXELS_BGRA, identity, 20, 10, out, sizeof out));
        CHECK(out[0] == img[2] && out[2] == img[0] && out[3] == img[6], "BGRA to RGB");
        EXPECT(TRANSFACE_NUMERIC, transface_warp_affine(img, 20, 10, 0, TRANSFACE_PIXELS_RGB, singular, 8, 8, out, sizeof out));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_warp_affine(img, 20, 10, 59, TRANSFACE_PIXELS_RGB, identity, 8, 8, out, sizeof out));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_warp_affine(img, 20, 10, 0, (transface_pixel_format)9, identity, 8, 8, out, sizeof out));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_warp_affine(img, 20, 10, 0, TRANSFACE_PIXELS_RGB, identity, 8, 8, out, 8 * 8 * 3 - 1));
        EXPECT(TRANSFACE_OK, transface_align_face(img, 20, 10, 0, TRANSFACE_PIXELS_GRAY, lm, NULL, 112, out, sizeof out, m));
        EXPECT(TRANSFACE_OK, transface_align_face(img, 20, 10, 0, TRANSFACE_PIXELS_RGB, lm, NULL, 112, out, sizeof out, NULL));
        EXPECT(TRANSFACE_OK, transface_align_face(img, 20, 10, 0, TRANSFACE_PIXELS_RGB, lm, lm, 30, out, sizeof out, m));
        CHECK(fabs(m[0] - 1) < 1e-9 && fabs(m[2]) < 1e-6, "own landmarks as template: identity");
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_align_face(img, 20, 10, 0, TRANSFACE_PIXELS_RGB, lm, NULL, 100, out, sizeof out, m));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_align_face(img, 20, 10, 0, TRANSFACE_PIXELS_RGB, lm, NULL, 112, out, 100, m));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_align_face(NULL, 20, 10, 0, TRANSFACE_PIXELS_RGB, lm, NULL, 112, out, sizeof out, m));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_align_face(img, 0, 10, 0, TRANSFACE_PIXELS_RGB, lm, NULL, 112, out, sizeof out, m));
        EXPECT(TRANSFACE_INVALID_ARGUMENT, transface_align_face(img, 20, 10, 0, TRANSFACE_PIXELS_RGB, NULL, NULL, 112, out, sizeof out, m));
        EXPECT(TRANSFACE_NUMERIC, transface_align_face(img, 20, 10, 0, TRANSFACE_PIXELS_RGB, same, NULL, 112, out, sizeof out, m));
    }
}

static void test_reference(const char *shared) {
    enum { N = 24, W = 250, CROP = 112 * 112 * 3 };
    char dir[4096], line[4096], path[8192];
    FILE *list;
    unsigned char *decoded, *aligned, *lms, *mats;
    int i = 0, exact_warps = 0;
    double worst_matrix = 0, worst_mean = 0;

    snprintf(dir, sizeof dir, "%s/reference/align", shared);
    snprintf(path, sizeof path, "%s/paths.txt", dir);
    list = fopen(path, "r");
    if (!list) {
        printf("SKIP parity: no %s\n", path);
        return;
    }
    decoded = read_npy(dir, "decoded_rgb.npy", (size_t)N * W * W * 3);
    aligned = read_npy(dir, "aligned_rgb.npy", (size_t)N * CROP);
    lms = read_npy(dir, "landmarks.npy", (size_t)N * 10 * sizeof(float));
    mats = read_npy(dir, "matrix.npy", (size_t)N * 6 * sizeof(double));
    CHECK(decoded && aligned && lms && mats, "reference arrays readable");
    while (decoded && aligned && lms && mats && i < N && fgets(line, sizeof line, list)) {
        transface_image_info info;
        size_t size = 0, k;
        unsigned char *file, *rgb = NULL;
        uint8_t crop[CROP];
        float lm[10];
        double m[6], ref[6], mean = 0;
        line[strcspn(line, "\r\n")] = '\0';
        snprintf(path, sizeof path, "%s/data/%s", shared, line);
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        /* From the file: header, then pixels. */
        EXPECT(TRANSFACE_OK, transface_decode_file(path, NULL, NULL, 0, &info));
        CHECK(info.width == W && info.height == W && info.format == TRANSFACE_IMAGE_JPEG && info.channels == 3, "%s: info", line);
        rgb = malloc((size_t)W * W * 3);
        EXPECT(TRANSFACE_OK, transface_decode_file(path, NULL, rgb, (size_t)W * W * 3, &info));
        CHECK(memcmp(rgb, decoded + (size_t)i * W * W * 3, (size_t)W * W * 3) == 0, "%s: decoded pixels", line);
        /* From memory. */
        file = read_file(path, &size);
        if (file) {
            memset(rgb, 0, (size_t)W * W * 3);
            EXPECT(TRANSFACE_OK, transface_decode_image(file, size, NULL, rgb, (size_t)W * W * 3, &info));
            CHECK(memcmp(rgb, decoded + (size_t)i * W * W * 3, (size_t)W * W * 3) == 0, "%s: decoded from memory", line);
            EXPECT(TRANSFACE_FORMAT, transface_decode_image(file, size / 2, NULL, rgb, (size_t)W * W * 3, &info));
            free(file);
        }
        memcpy(lm, lms + (size_t)i * 10 * sizeof(float), sizeof lm);
        memcpy(ref, mats + (size_t)i * 6 * sizeof(double), sizeof ref);
        EXPECT(TRANSFACE_OK, transface_align_face(rgb, W, W, 0, TRANSFACE_PIXELS_RGB, lm, NULL, 112, crop, sizeof crop, m));
        for (k = 0; k < 6; k++) worst_matrix = fmax(worst_matrix, fabs(m[k] - ref[k]));
        for (k = 0; k < CROP; k++) mean += abs((int)crop[k] - (int)aligned[(size_t)i * CROP + k]);
        worst_mean = fmax(worst_mean, mean / CROP);
        EXPECT(TRANSFACE_OK, transface_warp_affine(rgb, W, W, 0, TRANSFACE_PIXELS_RGB, ref, 112, 112, crop, sizeof crop));
        if (memcmp(crop, aligned + (size_t)i * CROP, CROP) == 0) exact_warps++;
        free(rgb);
        i++;
    }
    fclose(list);
    CHECK(i == N, "read %d reference images", i);
    CHECK(worst_matrix < 1e-4, "matrix max |diff| %g", worst_matrix);
    CHECK(worst_mean < 0.5, "aligned mean |diff| %g", worst_mean);
    CHECK(exact_warps == N, "warps with the reference matrix equal to OpenCV's: %d of %d", exact_warps, N);
    printf("parity: %d photos, matrix max |diff| %.3g, aligned mean |diff| per image max %.3g, "
           "%d/%d warps bit-exact\n", i, worst_matrix, worst_mean, exact_warps, N);
    free(decoded);
    free(aligned);
    free(lms);
    free(mats);
}

int main(int argc, char **argv) {
    char shared[4096];
    if (argc > 1) {
        snprintf(shared, sizeof shared, "%s", argv[1]);
    } else {
        snprintf(shared, sizeof shared, "%s", "../shared");
    }
    test_api_and_errors();
    test_reference(shared);
    printf("test_image: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
