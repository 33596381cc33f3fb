/* C ABI check of range search: the Flat result equals a brute force in C, bad radii are status 1 with a message.
 *   cc -std=c99 -Wall -I bindings/native bindings/native/examples/range.c \
 *      -L bindings/python/minedex -lengine -Wl,-rpath,bindings/python/minedex -o /tmp/engine-range
 * Exits 0 when every check holds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "check.h"

int main(void) {
    enum { N = 800, D = 8, NQ = 3 };
    static float x[N * D], q[NQ * D];
    srand(7);
    /* coordinates on a grid of 1/8: squared distances are exact in float, no rounding near the radius */
    for (int i = 0; i < N * D; i++) x[i] = (float)(rand() % 17 - 8) / 8.0f;
    for (int i = 0; i < NQ * D; i++) q[i] = (float)(rand() % 17 - 8) / 8.0f;
    const float radius = 4.0f;

    engine_index* index = NULL;
    CHECK(engine_index_create("Flat", D, "l2", &index));
    CHECK(engine_index_add(index, x, N, D, NULL, NULL));
    engine_range_result* result = NULL;
    CHECK(engine_index_range_search(index, q, NQ, D, radius, 1, NULL, &result));
    int64_t nq = 0, total = 0;
    CHECK(engine_range_result_size(result, &nq, &total));
    EXPECT(nq == NQ);
    int64_t lims[NQ + 1];
    int64_t* ids = malloc(sizeof(int64_t) * (size_t)(total > 0 ? total : 1));
    float* dist = malloc(sizeof(float) * (size_t)(total > 0 ? total : 1));
    CHECK(engine_range_result_copy(result, lims, ids, dist));
    EXPECT(lims[0] == 0 && lims[NQ] == total);
    for (int i = 0; i < NQ; i++) {
        int64_t expected = 0;
        for (int r = 0; r < N; r++) {
            float s = 0;
            for (int j = 0; j < D; j++) { float t = q[i * D + j] - x[r * D + j]; s += t * t; }
            if (s <= radius) expected++;
        }
        EXPECT(lims[i + 1] - lims[i] == expected);
        for (int64_t e = lims[i]; e < lims[i + 1]; e++) {
            float s = 0;
            for (int j = 0; j < D; j++) { float t = q[i * D + j] - x[ids[e] * D + j]; s += t * t; }
            EXPECT(fabsf(s - dist[e]) < 1e-4f && dist[e] <= radius);
            EXPECT(e == lims[i] || dist[e] >= dist[e - 1]);
        }
    }
    printf("range search: %lld results for %d queries, equal to the brute force\n", (long long)total, NQ);
    CHECK(engine_range_result_free(result));
    EXPECT(engine_range_result_free(result) == ENGINE_INVALID_HANDLE);
    free(ids);
    free(dist);

    /* bad radii: status 1 and a message naming the radius; *out stays NULL */
    const float bad[] = {-1.0f, NAN, INFINITY};
    for (int b = 0; b < 3; b++) {
        engine_range_result* none = NULL;
        EXPECT(engine_index_range_search(index, q, NQ, D, bad[b], 0, NULL, &none) == ENGINE_INVALID_ARGUMENT);
        EXPECT(none == NULL && strstr(engine_last_error(), "radius") != NULL);
    }
    printf("bad radius: %s\n", engine_last_error());
    CHECK(engine_index_free(index));
    return 0;
}
