/* Smoke example of the C ABI: build an exact index, search, save/load, mine negatives, handle errors.
 *   cc -std=c99 -Wall -I bindings/native bindings/native/examples/example.c \
 *      -L bindings/python/engine -lengine -Wl,-rpath,bindings/python/engine -o /tmp/engine-example
 * Exits 0 when every check holds. */
#include <stdio.h>
#include <stdlib.h>
#include "engine.h"
#include "check.h"

int main(int argc, char** argv) {
    const char* path = argc > 1 ? argv[1] : "/tmp/engine-example.idx";
    enum { N = 1000, D = 16, K = 5 };
    static float x[N * D];
    srand(1);
    for (int i = 0; i < N * D; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;

    printf("libengine %s\n", engine_version());
    engine_index* index = NULL;
    CHECK(engine_index_create("Flat", D, "l2", &index));
    int64_t first = -1;
    CHECK(engine_index_add(index, x, N, D, NULL, &first)); /* ids 0..N-1 */

    float dist[2 * K];
    int64_t labels[2 * K];
    CHECK(engine_index_search(index, x, 2, D, K, dist, labels, 0, 0, 0.0f));
    printf("query 0 -> id %lld (distance %g)\n", (long long)labels[0], dist[0]);
    if (labels[0] != 0 || labels[K] != 1 || dist[0] != 0.0f) return 2;

    /* Errors come back as codes plus a thread-local message, never as crashes. */
    int rc = engine_index_search(index, x, 1, D + 1, K, dist, labels, 0, 0, 0.0f);
    printf("wrong dimension -> %d: %s\n", rc, engine_last_error());
    if (rc != ENGINE_INVALID_ARGUMENT) return 3;

    CHECK(engine_index_save(index, path));
    engine_index* loaded = NULL;
    CHECK(engine_index_load(path, &loaded));
    int64_t count = 0;
    CHECK(engine_index_count(loaded, &count));
    printf("loaded %lld vectors from %s\n", (long long)count, path);

    /* Three negatives for corpus items 0 and 1, whose positives are 2 and 3. */
    int64_t anchors[2] = {0, 1}, offsets[3] = {0, 1, 2}, positives[2] = {2, 3};
    int64_t negatives[2 * 3];
    float scores[2 * 3];
    char report[4096];
    CHECK(engine_mine(loaded, NULL, 2, D, anchors, offsets, positives, NULL, NULL,
                      "{\"num_negatives\": 3, \"range_max\": 50}", negatives, scores, 3, report, sizeof report, NULL));
    printf("anchor 0 negatives: %lld %lld %lld\n", (long long)negatives[0], (long long)negatives[1],
           (long long)negatives[2]);

    CHECK(engine_index_free(loaded));
    CHECK(engine_index_free(index));
    rc = engine_index_free(index); /* double free is detected */
    if (rc != ENGINE_INVALID_HANDLE) return 4;
    remove(path);
    puts("ok");
    return 0;
}
