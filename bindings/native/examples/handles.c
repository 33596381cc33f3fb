/* C ABI misuse check: stale, double-freed and wrong-kind handles, frees racing with searches on other threads, strings
 * that are not UTF-8, automatic ids at the end of the id range (empty adds included), rejected multi-vector adds,
 * non-finite graph distances, empty graphs, settings given twice, an empty hubness query bank, and the per-thread
 * error text (its lifetime, and no leak when failing threads exit). Every misuse must return its documented status
 * with a message, never crash, reach another object or silently default.
 *   cc -std=c99 -Wall -pthread -I bindings/native bindings/native/examples/handles.c \
 *      -L bindings/python/minedex -lengine -Wl,-rpath,bindings/python/minedex -o /tmp/engine-handles
 *   /tmp/engine-handles /tmp/engine-handles.dir
 * Exits 0 when every check holds. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "engine.h"
#include "check.h"

#define EXPECT_STATUS(call, want)                                                                     \
    do {                                                                                              \
        int st_ = (call);                                                                             \
        if (st_ != (want)) {                                                                          \
            fprintf(stderr, "%s returned %d, expected %d (%s)\n", #call, st_, (want), engine_last_error()); \
            return 1;                                                                                 \
        }                                                                                             \
    } while (0)

enum { N = 2000, D = 16, NQ = 20, K = 5, THREADS = 3 };
static float x[N * D];

struct searcher {
    engine_index* index;
    int ok, invalid, other;
};

static void* search_loop(void* arg) {
    struct searcher* s = arg;
    float dist[NQ * K];
    int64_t lab[NQ * K];
    for (;;) { /* until the free makes the handle invalid */
        int rc = engine_index_search(s->index, x, NQ, D, K, dist, lab, 1, 0, 0.0f);
        if (rc == ENGINE_OK) {
            for (int i = 0; i < NQ * K; i++)
                if (lab[i] < 0 || lab[i] >= N) { __atomic_fetch_add(&s->other, 1, __ATOMIC_RELAXED); return NULL; }
            __atomic_fetch_add(&s->ok, 1, __ATOMIC_RELAXED);
        } else if (rc == ENGINE_INVALID_HANDLE) {
            __atomic_fetch_add(&s->invalid, 1, __ATOMIC_RELAXED);
            return NULL;
        } else {
            fprintf(stderr, "search during free: status %d (%s)\n", rc, engine_last_error());
            __atomic_fetch_add(&s->other, 1, __ATOMIC_RELAXED);
            return NULL;
        }
    }
}

/* Error text of threads that exit: each thread fails one call with a message of about 1 MiB and exits. The text used
 * to be native memory freed only by the thread's next failure, so every such thread leaked it. */
enum { BIG_KEY = 1 << 20, LEAK_THREADS = 300 };
static engine_index* leak_index;
static char* big_options;

static void* fail_with_big_message(void* arg) {
    int* bad = arg;
    int rc = engine_hubness(leak_index, NULL, 0, NULL, 0, D, big_options, NULL, NULL, 0, NULL);
    const char* m = engine_last_error();
    if (rc != ENGINE_INVALID_ARGUMENT || strncmp(m, "Unknown option 'kk", 18) != 0 || strlen(m) < BIG_KEY)
        __atomic_store_n(bad, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void* fail_once(void* arg) {
    (void)arg;
    engine_index* none = NULL;
    engine_index_create("NoSuchSpec", D, "l2", &none);
    return NULL;
}

static long rss_mib(void) {
    long pages = 0, resident = 0;
    FILE* f = fopen("/proc/self/statm", "r");
    if (f == NULL) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024) / 1024;
}

static int run_failing_threads(int count, int* bad) {
    for (int i = 0; i < count; i++) {
        pthread_t th;
        if (pthread_create(&th, NULL, fail_with_big_message, bad) != 0) return 1;
        pthread_join(th, NULL);
    }
    return 0;
}

static void pause_ms(long ms) {
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
}

static int exists(const char* path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int main(int argc, char** argv) {
    const char* dir = argc > 1 ? argv[1] : "/tmp/engine-handles.dir";
    char path[512];
    mkdir(dir, 0755);
    srand(5);
    for (int i = 0; i < N * D; i++) x[i] = (float)(rand() % 2000) / 1000.0f - 1.0f;
    int64_t count = -1;

    /* 1. A freed handle stays invalid after new objects are created (handle values are never reused): a double free
     *    must not free the newer index, a use must not reach it. */
    engine_index *a = NULL, *b = NULL;
    CHECK(engine_index_create("Flat", D, "l2", &a));
    engine_index* stale = a;
    CHECK(engine_index_free(a));
    for (int i = 0; i < 8; i++) {
        CHECK(engine_index_create("Flat", D, "l2", &b));
        EXPECT(b != stale);
        CHECK(engine_index_free(b));
    }
    CHECK(engine_index_create("Flat", D, "l2", &b));
    CHECK(engine_index_add(b, x, 10, D, NULL, NULL));
    EXPECT_STATUS(engine_index_count(stale, &count), ENGINE_INVALID_HANDLE);
    EXPECT_STATUS(engine_index_free(stale), ENGINE_INVALID_HANDLE);
    CHECK(engine_index_count(b, &count));
    EXPECT(count == 10);

    /* 2. A handle of another kind is refused by every function, free included, and stays alive. */
    engine_range_result* rr = NULL;
    CHECK(engine_index_range_search(b, x, 2, D, 1.0f, 1, NULL, &rr));
    EXPECT_STATUS(engine_index_count((engine_index*)rr, &count), ENGINE_INVALID_HANDLE);
    EXPECT(strstr(engine_last_error(), "engine_range_result") != NULL);
    EXPECT_STATUS(engine_index_free((engine_index*)rr), ENGINE_INVALID_HANDLE);
    EXPECT_STATUS(engine_mv_free((engine_mv_index*)rr), ENGINE_INVALID_HANDLE);
    EXPECT_STATUS(engine_cutoff_free((engine_cutoff*)rr), ENGINE_INVALID_HANDLE);
    int64_t nq = -1, total = -1;
    CHECK(engine_range_result_size(rr, &nq, &total));
    EXPECT(nq == 2);
    EXPECT_STATUS(engine_range_result_free((engine_range_result*)b), ENGINE_INVALID_HANDLE);
    EXPECT(strstr(engine_last_error(), "engine_index") != NULL);
    EXPECT_STATUS(engine_mv_free((engine_mv_index*)b), ENGINE_INVALID_HANDLE);
    CHECK(engine_index_count(b, &count));
    EXPECT(count == 10);
    CHECK(engine_range_result_free(rr));
    EXPECT_STATUS(engine_range_result_free(rr), ENGINE_INVALID_HANDLE);

    /* 3. Strings that are not UTF-8 are status 1 naming the argument, not decoded with U+FFFD (which saved to
     *    another file name). */
    snprintf(path, sizeof path, "%s/bad\xff.idx", dir);
    EXPECT_STATUS(engine_index_save(b, path), ENGINE_INVALID_ARGUMENT);
    EXPECT(strstr(engine_last_error(), "path is not valid UTF-8") != NULL);
    snprintf(path, sizeof path, "%s/bad\xef\xbf\xbd.idx", dir); /* what the bad name used to become */
    EXPECT(!exists(path));
    engine_index* none = NULL;
    EXPECT_STATUS(engine_index_load("\xc3(", &none), ENGINE_INVALID_ARGUMENT);
    EXPECT_STATUS(engine_index_create("Fl\xe0" "at", D, "l2", &none), ENGINE_INVALID_ARGUMENT);
    EXPECT(strstr(engine_last_error(), "spec is not valid UTF-8") != NULL);
    float dist[NQ * K];
    int64_t lab[NQ * K];
    EXPECT_STATUS(engine_index_search_with(b, x, 1, D, K, dist, lab, 0, "ef=\xff"), ENGINE_INVALID_ARGUMENT);
    snprintf(path, sizeof path, "%s/\xe2\x82\xac.idx", dir); /* valid multi-byte UTF-8 still works */
    CHECK(engine_index_save(b, path));
    EXPECT(exists(path));

    /* 4. Automatic ids continue after the largest id; after 2^63 - 1 they are refused (status 5), not restarted. */
    int64_t big = INT64_MAX, first = -1;
    CHECK(engine_index_add(b, x, 1, D, &big, NULL));
    EXPECT_STATUS(engine_index_add(b, x, 1, D, NULL, &first), ENGINE_INVALID_STATE);
    EXPECT(strstr(engine_last_error(), "automatic ids") != NULL);
    engine_index* c = NULL;
    CHECK(engine_index_create("Flat", D, "l2", &c));
    int64_t near_end = INT64_MAX - 2;
    CHECK(engine_index_add(c, x, 1, D, &near_end, NULL));
    EXPECT_STATUS(engine_index_add(c, x, 3, D, NULL, &first), ENGINE_INVALID_STATE);
    CHECK(engine_index_add(c, x, 2, D, NULL, &first));
    EXPECT(first == INT64_MAX - 1);
    CHECK(engine_index_free(c));

    /* 5. A rejected multi-vector add leaves the automatic ids where they were (as engine_index_add does). */
    enum { ITEMS = 6, TOK = 3 };
    int64_t offsets[ITEMS + 1];
    for (int i = 0; i <= ITEMS; i++) offsets[i] = (int64_t)i * TOK;
    engine_mv_index* mv = NULL;
    CHECK(engine_mv_create(D, "ksim=2,dproj=4,reps=2", "IVF2,Flat", "f32", &mv));
    EXPECT_STATUS(engine_mv_add(mv, x, offsets, ITEMS, D, NULL, &first, 1), ENGINE_INVALID_STATE);
    CHECK(engine_mv_train(mv, x, offsets, ITEMS, D, 1));
    CHECK(engine_mv_add(mv, x, offsets, ITEMS, D, NULL, &first, 1));
    EXPECT(first == 0);
    EXPECT_STATUS(engine_index_count((engine_index*)mv, &count), ENGINE_INVALID_HANDLE);
    EXPECT(strstr(engine_last_error(), "engine_mv_index") != NULL);
    CHECK(engine_mv_free(mv));

    /* 6. A graph edge with a NaN or infinite distance is status 1 (it used to turn every propagated score into NaN). */
    enum { GN = 40, GK = 3 };
    int64_t nb[GN * GK];
    float nd[GN * GK], scores[GN * 2];
    int32_t labels[GN], predicted[GN];
    int64_t rep[GN], groups = 0;
    CHECK(engine_knn_graph(NULL, x, GN, D, NULL, "cosine", GK, 1, NULL, nb, nd, NULL, 0, NULL));
    for (int i = 0; i < GN; i++) labels[i] = i < 4 ? i % 2 : -1;
    CHECK(engine_label_propagation(NULL, GN, GK, nb, nd, "cosine", labels, 2, 0.9, 10, 3.0, scores, predicted));
    for (int i = 0; i < GN * 2; i++) EXPECT(!isnan(scores[i]));
    nd[4] = NAN;
    EXPECT_STATUS(engine_label_propagation(NULL, GN, GK, nb, nd, "cosine", labels, 2, 0.9, 10, 3.0, scores, predicted),
                  ENGINE_INVALID_ARGUMENT);
    EXPECT(strstr(engine_last_error(), "distances[4]") != NULL);
    nd[4] = INFINITY;
    EXPECT_STATUS(engine_near_duplicates(NULL, GN, GK, nb, nd, "cosine", 0.5f, rep, &groups), ENGINE_INVALID_ARGUMENT);

    /* 6b. An empty graph: near-duplicates are 0 groups with every pointer NULL (the representative output used to be
     *     required even for n = 0); label propagation of it is refused by its own check (no labelled row). */
    groups = -1;
    CHECK(engine_near_duplicates(NULL, 0, GK, NULL, NULL, "l2", 0.5f, NULL, &groups));
    EXPECT(groups == 0);
    EXPECT_STATUS(engine_label_propagation(NULL, 0, GK, NULL, NULL, "l2", NULL, 2, 0.9, 10, 3.0, NULL, NULL),
                  ENGINE_INVALID_ARGUMENT);
    EXPECT(strstr(engine_last_error(), "No row is labelled") != NULL);

    /* 8. An empty automatic add reports the next id; after INT64_MAX there is none and it is refused (status 5), not
     *    answered with INT64_MIN. */
    engine_index* e = NULL;
    CHECK(engine_index_create("Flat", D, "l2", &e));
    CHECK(engine_index_add(e, x, 3, D, NULL, &first));
    first = -1;
    CHECK(engine_index_add(e, NULL, 0, D, NULL, &first));
    EXPECT(first == 3);
    CHECK(engine_index_add(e, x, 1, D, NULL, &first));
    EXPECT(first == 3);
    CHECK(engine_index_add(e, x, 1, D, &big, NULL));
    first = 42;
    EXPECT_STATUS(engine_index_add(e, NULL, 0, D, NULL, &first), ENGINE_INVALID_STATE);
    EXPECT(strstr(engine_last_error(), "No automatic ids are left") != NULL);
    EXPECT(first == 42);
    CHECK(engine_index_add(e, NULL, 0, D, &big, NULL)); /* explicit ids: an empty add stays fine */
    CHECK(engine_index_count(e, &count));
    EXPECT(count == 5);
    {
        int64_t one_set[2] = { 0, 2 }, empty_set[1] = { 0 };
        engine_mv_index* mve = NULL;
        CHECK(engine_mv_create(D, "ksim=2,dproj=4,reps=2", NULL, "f32", &mve));
        CHECK(engine_mv_add(mve, NULL, empty_set, 0, D, NULL, &first, 1));
        EXPECT(first == 0);
        CHECK(engine_mv_add(mve, x, one_set, 1, D, &big, NULL, 1));
        first = 42;
        EXPECT_STATUS(engine_mv_add(mve, NULL, empty_set, 0, D, NULL, &first, 1), ENGINE_INVALID_STATE);
        EXPECT(strstr(engine_last_error(), "No automatic ids are left") != NULL);
        EXPECT(first == 42);
        CHECK(engine_mv_free(mve));
    }

    /* 9. A setting given twice is status 1 naming it: a JSON option key (it used to be "last one wins"), or one
     *    search knob under two of its aliases. */
    int64_t corpus_ids[5] = { 0, 1, 2, 3, big };
    int32_t occ[5];
    char report[4096];
    CHECK(engine_hubness(e, corpus_ids, 5, NULL, 0, D, "{\"k\": 2}", occ, report, sizeof report, NULL));
    EXPECT_STATUS(engine_hubness(e, corpus_ids, 5, NULL, 0, D, "{\"k\": 2, \"seed\": 1, \"k\": 3}", occ, NULL, 0, NULL),
                  ENGINE_INVALID_ARGUMENT);
    EXPECT(strstr(engine_last_error(), "Option 'k' is given twice") != NULL);
    {
        int64_t pos_off[2] = { 0, 1 }, pos[1] = { 1 }, neg[3];
        EXPECT_STATUS(engine_mine(e, x, 1, D, NULL, pos_off, pos, NULL, NULL, "{\"seed\": 1, \"seed\": 2}", neg, NULL, 3,
                                  NULL, 0, NULL), ENGINE_INVALID_ARGUMENT);
        EXPECT(strstr(engine_last_error(), "Option 'seed' is given twice") != NULL);
    }
    engine_index* ivf = NULL;
    CHECK(engine_index_create("IVF4,Flat", D, "l2", &ivf));
    CHECK(engine_index_train(ivf, x, 200, D));
    CHECK(engine_index_add(ivf, x, 200, D, NULL, NULL));
    CHECK(engine_index_search_with(ivf, x, 1, D, K, dist, lab, 1, "nprobe=3"));
    EXPECT_STATUS(engine_index_search_with(ivf, x, 1, D, K, dist, lab, 1, "probes=2,nprobe=3"), ENGINE_INVALID_ARGUMENT);
    EXPECT(strstr(engine_last_error(), "'nprobe' sets probes") != NULL);
    EXPECT_STATUS(engine_index_search_with(ivf, x, 1, D, K, dist, lab, 1, "probes=2,PROBES=3"), ENGINE_INVALID_ARGUMENT);

    /* 10. Hubness over given queries needs at least one (an empty bank used to run and report nothing); NULL queries
     *     with nq = 0 still mean the corpus bank. */
    EXPECT_STATUS(engine_hubness(ivf, corpus_ids, 4, x, 0, D, NULL, occ, NULL, 0, NULL), ENGINE_INVALID_ARGUMENT);
    EXPECT(strstr(engine_last_error(), "nq is 0") != NULL);
    CHECK(engine_hubness(ivf, corpus_ids, 4, x, 3, D, "{\"k\": 2}", occ, NULL, 0, NULL));
    CHECK(engine_hubness(ivf, corpus_ids, 4, NULL, 0, D, "{\"k\": 2}", occ, NULL, 0, NULL));
    CHECK(engine_index_free(ivf));

    /* 11. The error text: valid until the next failing call on the same thread (successful calls and other threads'
     *     failures leave it alone), and released when a thread exits. */
    EXPECT_STATUS(engine_index_count(stale, &count), ENGINE_INVALID_HANDLE);
    const char* text = engine_last_error();
    char kept[256];
    snprintf(kept, sizeof kept, "%s", text);
    CHECK(engine_index_count(e, &count));
    {
        pthread_t other;
        pthread_create(&other, NULL, fail_once, NULL);
        pthread_join(other, NULL);
    }
    EXPECT(strcmp(engine_last_error(), kept) == 0);
    EXPECT(strcmp(text, kept) == 0);
    leak_index = e;
    big_options = malloc(BIG_KEY + 16);
    EXPECT(big_options != NULL);
    memset(big_options, 'k', BIG_KEY + 16);
    memcpy(big_options, "{\"", 2);
    memcpy(big_options + 2 + BIG_KEY, "\": 1}", 6);
    big_options[2 + BIG_KEY + 6] = '\0';
    int bad = 0;
    EXPECT(run_failing_threads(20, &bad) == 0); /* warm-up: heaps, arenas */
    long before = rss_mib();
    EXPECT(run_failing_threads(LEAK_THREADS, &bad) == 0);
    long after = rss_mib();
    EXPECT(bad == 0);
    if (before >= 0 && after >= 0) {
        /* a leak keeps about LEAK_THREADS MiB resident */
        if (after - before >= LEAK_THREADS / 2)
            fprintf(stderr, "resident memory grew by %ld MiB over %d failing threads (%ld -> %ld)\n", after - before,
                    LEAK_THREADS, before, after);
        EXPECT(after - before < LEAK_THREADS / 2);
    }
    free(big_options);
    CHECK(engine_index_free(e));

    /* 7. Freeing an index while other threads search it: each search either completes with valid results or gets
     *    ENGINE_INVALID_HANDLE; later handles never answer for the freed one. */
    const char* specs[] = { "Flat", "HNSW16", "IVF8,Flat", "BIN2,RFlat" };
    for (int s = 0; s < 4; s++) {
        struct searcher state = { NULL, 0, 0, 0 };
        CHECK(engine_index_create(specs[s], D, "l2", &state.index));
        CHECK(engine_index_train(state.index, x, N, D));
        CHECK(engine_index_add(state.index, x, N, D, NULL, NULL));
        pthread_t th[THREADS];
        for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, search_loop, &state);
        pause_ms(30);
        engine_index* freed = state.index;
        CHECK(engine_index_free(freed));
        engine_index* fresh[4];
        for (int i = 0; i < 4; i++) CHECK(engine_index_create("Flat", D, "l2", &fresh[i]));
        for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
        for (int i = 0; i < 4; i++) CHECK(engine_index_free(fresh[i]));
        EXPECT(state.other == 0);
        EXPECT(state.invalid == THREADS);
        EXPECT_STATUS(engine_index_search(freed, x, 1, D, K, dist, lab, 1, 0, 0.0f), ENGINE_INVALID_HANDLE);
    }

    CHECK(engine_index_free(b));
    remove(path);
    rmdir(dir);
    printf("handles ok\n");
    return 0;
}
