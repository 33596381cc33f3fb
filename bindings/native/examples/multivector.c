/* C ABI check of multi-vector (MUVERA) indexes: exact search equals a Chamfer brute force in C, MUVERA search with
 * every item as candidate equals exact search, removal and save/load round-trip, and an empty token set or a wrong
 * token dimension is status 1 with a message.
 *   cc -std=c99 -Wall -I bindings/native bindings/native/examples/multivector.c \
 *      -L bindings/python/minedex -lengine -Wl,-rpath,bindings/python/minedex -o /tmp/engine-mv
 *   /tmp/engine-mv /tmp/engine-mv.dir
 * Exits 0 when every check holds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "check.h"

enum { N = 60, D = 8, MAXT = 6, NQ = 3, K = 5 };

static float chamfer(const float* q, int64_t nq, const float* p, int64_t np) {
    float total = 0;
    for (int64_t i = 0; i < nq; i++) {
        float best = -INFINITY;
        for (int64_t j = 0; j < np; j++) {
            float s = 0;
            for (int c = 0; c < D; c++) s += q[i * D + c] * p[j * D + c];
            if (s > best) best = s;
        }
        total += best;
    }
    return total;
}

int main(int argc, char** argv) {
    const char* dir = argc > 1 ? argv[1] : "engine-mv.dir";
    static float tokens[N * MAXT * D], queries[NQ * MAXT * D];
    int64_t offsets[N + 1], qoffsets[NQ + 1];
    srand(11);
    offsets[0] = 0;
    for (int i = 0; i < N; i++) offsets[i + 1] = offsets[i] + 1 + rand() % MAXT;
    for (int64_t i = 0; i < offsets[N] * D; i++) tokens[i] = (float)(rand() % 17 - 8) / 8.0f;
    qoffsets[0] = 0;
    for (int i = 0; i < NQ; i++) qoffsets[i + 1] = qoffsets[i] + 1 + rand() % MAXT;
    for (int64_t i = 0; i < qoffsets[NQ] * D; i++) queries[i] = (float)(rand() % 17 - 8) / 8.0f;

    engine_mv_index* index = NULL;
    CHECK(engine_mv_create(D, "ksim=3,dproj=4,reps=6,seed=5", "Flat", "f32", &index));
    int64_t first = -1;
    CHECK(engine_mv_add(index, tokens, offsets, N, D, NULL, &first, 1));
    EXPECT(first == 0);
    int64_t items = 0, stored = 0;
    CHECK(engine_mv_count(index, &items, &stored));
    EXPECT(items == N && stored == offsets[N]);

    float s[NQ * K], se[NQ * K];
    int64_t l[NQ * K], le[NQ * K];
    CHECK(engine_mv_search_exact(index, queries, qoffsets, NQ, D, K, se, le, 1));
    for (int i = 0; i < NQ; i++) {
        const float* q = queries + qoffsets[i] * D;
        int64_t nq = qoffsets[i + 1] - qoffsets[i];
        for (int j = 0; j < K; j++) {
            int64_t id = le[i * K + j];
            float expected = chamfer(q, nq, tokens + offsets[id] * D, offsets[id + 1] - offsets[id]);
            EXPECT(fabsf(se[i * K + j] - expected) < 1e-4f);
            if (j > 0) EXPECT(se[i * K + j] <= se[i * K + j - 1]);
        }
        /* no item outside the top K scores higher than the K-th */
        for (int64_t r = 0; r < N; r++)
            EXPECT(chamfer(q, nq, tokens + offsets[r] * D, offsets[r + 1] - offsets[r]) <= se[i * K + K - 1] + 1e-4f
                   || r == le[i * K] || r == le[i * K + 1] || r == le[i * K + 2] || r == le[i * K + 3] || r == le[i * K + 4]);
    }
    CHECK(engine_mv_search(index, queries, qoffsets, NQ, D, K, s, l, 1, "candidates=60"));
    EXPECT(memcmp(l, le, sizeof l) == 0);

    int64_t gone[2] = {le[0], 59}, removed = 0;
    CHECK(engine_mv_remove(index, gone, 2, &removed));
    EXPECT(removed == (le[0] == 59 ? 1 : 2));
    CHECK(engine_mv_save(index, dir));
    CHECK(engine_mv_free(index));
    EXPECT(engine_mv_free(index) == ENGINE_INVALID_HANDLE);

    engine_mv_index* loaded = NULL;
    CHECK(engine_mv_load(dir, &loaded));
    CHECK(engine_mv_count(loaded, &items, NULL));
    EXPECT(items == N - removed);
    CHECK(engine_mv_search(loaded, queries, qoffsets, NQ, D, K, s, l, 0, NULL));
    for (int j = 0; j < NQ * K; j++) EXPECT(l[j] != gone[0] && l[j] != gone[1]);
    char desc[256];
    int64_t needed = 0;
    CHECK(engine_mv_description(loaded, desc, sizeof desc, &needed));
    EXPECT(strncmp(desc, "MUVERA(ksim=3,dproj=4,reps=6,", 29) == 0);

    /* bad inputs: an empty token set, a wrong token dimension, a knob the FDE index lacks */
    int64_t empty[3] = {0, 2, 2};
    EXPECT(engine_mv_add(loaded, tokens, empty, 2, D, NULL, NULL, 0) == ENGINE_INVALID_ARGUMENT);
    EXPECT(strstr(engine_last_error(), "item 1 has 0 tokens") != NULL);
    EXPECT(engine_mv_search(loaded, queries, qoffsets, NQ, D + 1, K, s, l, 0, NULL) == ENGINE_INVALID_ARGUMENT);
    EXPECT(strstr(engine_last_error(), "Mixed dimensions") != NULL);
    EXPECT(engine_mv_search(loaded, queries, qoffsets, NQ, D, K, s, l, 0, "ef=10") == ENGINE_INVALID_ARGUMENT);
    EXPECT(engine_mv_create(D, "ksim=99", NULL, NULL, &index) == ENGINE_INVALID_ARGUMENT && index == NULL);
    CHECK(engine_mv_free(loaded));
    printf("multivector: ok\n");
    return 0;
}
