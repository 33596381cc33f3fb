/* CHECK and EXPECT for the C ABI examples: print the failing call (with the engine's message) or condition, and
 * return 1 from main. */
#ifndef ENGINE_EXAMPLES_CHECK_H
#define ENGINE_EXAMPLES_CHECK_H

#include <stdio.h>
#include "engine.h"

#define CHECK(call)                                                                  \
    do {                                                                             \
        int rc_ = (call);                                                            \
        if (rc_ != ENGINE_OK) {                                                      \
            fprintf(stderr, "%s failed (%d): %s\n", #call, rc_, engine_last_error()); \
            return 1;                                                                \
        }                                                                            \
    } while (0)

#define EXPECT(cond)                                              \
    do {                                                          \
        if (!(cond)) {                                            \
            fprintf(stderr, "check failed: %s\n", #cond);         \
            return 1;                                             \
        }                                                         \
    } while (0)

#endif
