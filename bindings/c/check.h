/* Counting assertions shared by the C tests (one test program per translation unit):
 * CHECK(cond, fmt, ...), OK(call), ERR(status, call) and EXPECT(status, call), which also
 * requires a message from transface_last_error() when a call fails. Failures go to stderr;
 * each program ends by printing "N passed, M failed". */
#ifndef TRANSFACE_TEST_CHECK_H
#define TRANSFACE_TEST_CHECK_H

#include <stdio.h>

#include "transface.h"

static int passed, failed;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) {                                                           \
            passed++;                                                         \
        } else {                                                              \
            failed++;                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, " (last error: %s)\n", transface_last_error());   \
        }                                                                     \
    } while (0)
#define OK(call) CHECK((call) == TRANSFACE_OK, "%s failed", #call)
#define ERR(want, call) CHECK((call) == (want), "%s: expected status %d", #call, (int)(want))
#define EXPECT(status, call)                                                                   \
    do {                                                                                       \
        transface_status s_ = (call);                                                          \
        CHECK(s_ == (status), "%s -> %d (%s), expected %d", #call, (int)s_,                   \
              transface_status_string(s_), (int)(status));                                     \
        if ((status) != TRANSFACE_OK) CHECK(transface_last_error()[0] != '\0', "no message"); \
    } while (0)

#endif
