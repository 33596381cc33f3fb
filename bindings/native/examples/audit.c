/* C ABI check of the mining audit and the calibrated cutoff: Flat audited against itself flips nothing, IVF-PQ at one
 * probe flips some decisions; a cutoff fits, applies and evaluates consistently; bad inputs are status 1 (invalid
 * argument) or 2 (invalid handle) with a message.
 *   cc -std=c99 -Wall -I bindings/native bindings/native/examples/audit.c \
 *      -L bindings/python/minedex -lengine -Wl,-rpath,bindings/python/minedex -o /tmp/engine-audit
 * Exits 0 when every check holds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "check.h"

/* The number after "key": in a JSON report (-1 when absent). */
static double field(const char* json, const char* key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char* at = strstr(json, pattern);
    return at ? atof(at + strlen(pattern)) : -1;
}

int main(void) {
    enum { N = 2000, D = 8, NQ = 40 };
    static float x[N * D], q[NQ * D];
    static int64_t pos_off[NQ + 1], pos[NQ];
    srand(11);
    for (int i = 0; i < N * D; i++) x[i] = (float)(rand() % 1000) / 500.0f - 1.0f;
    for (int i = 0; i < NQ * D; i++) q[i] = (float)(rand() % 1000) / 500.0f - 1.0f;
    for (int i = 0; i < NQ; i++) { pos_off[i + 1] = i + 1; pos[i] = (int64_t)(i * 37 % N); }

    engine_index *flat = NULL, *ivf = NULL;
    CHECK(engine_index_create("Flat", D, "l2", &flat));
    CHECK(engine_index_add(flat, x, N, D, NULL, NULL));
    CHECK(engine_index_create("IVF16,PQ2x4fs", D, "l2", &ivf));
    CHECK(engine_index_train(ivf, x, N, D));
    CHECK(engine_index_add(ivf, x, N, D, NULL, NULL));
    const char* options = "{\"num_negatives\": 4, \"range_max\": 30, \"absolute_margin\": 0.2, \"seed\": 3, \"threads\": 1}";
    const char* probe1 = "{\"num_negatives\": 4, \"range_max\": 30, \"absolute_margin\": 0.2, \"seed\": 3, \"threads\": 1, \"search\": \"probes=1\"}";
    char report[4096];
    int64_t needed = 0;

    CHECK(engine_mine_audit(flat, flat, q, NQ, D, NULL, pos_off, pos, NULL, NULL, options, report, sizeof report, &needed));
    EXPECT(needed > 1 && needed <= (int64_t)sizeof report);
    EXPECT(field(report, "anchors") == NQ && field(report, "set_flips") == 0 && field(report, "rows_changed") == 0);
    EXPECT(field(report, "approximate_negatives") > 0 && field(report, "approximate_negatives") == field(report, "exact_negatives"));
    CHECK(engine_mine_audit(ivf, flat, q, NQ, D, NULL, pos_off, pos, NULL, NULL, probe1, report, sizeof report, NULL));
    EXPECT(field(report, "set_flips") > 0 && field(report, "band") > 0);

    /* bad inputs: a freed/NULL handle, another dimension, no positives */
    EXPECT(engine_mine_audit(ivf, NULL, q, NQ, D, NULL, pos_off, pos, NULL, NULL, options, NULL, 0, NULL) == ENGINE_INVALID_HANDLE);
    engine_index* small = NULL;
    CHECK(engine_index_create("Flat", D, "l2", &small));
    CHECK(engine_index_add(small, x, 10, D, NULL, NULL));
    EXPECT(engine_mine_audit(ivf, small, q, NQ, D, NULL, pos_off, pos, NULL, NULL, options, NULL, 0, NULL) == ENGINE_INVALID_ARGUMENT);
    EXPECT(strstr(engine_last_error(), "same vectors") != NULL);
    EXPECT(engine_mine_audit(ivf, flat, q, NQ, D, NULL, NULL, NULL, NULL, NULL, options, NULL, 0, NULL) == ENGINE_INVALID_ARGUMENT);

    /* calibrated cutoff: 100 queries of 20 candidates, 3 relevant each at offset + 1, offsets per query */
    enum { CQ = 100, CN = 20 };
    static float s[CQ * CN];
    static uint8_t rel[CQ * CN], keep[CQ * CN];
    static int64_t off[CQ + 1];
    for (int i = 0; i < CQ; i++) {
        float offset = (float)(rand() % 1000) / 333.0f - 1.5f;
        off[i + 1] = off[i] + CN;
        for (int j = 0; j < CN; j++) {
            rel[i * CN + j] = j < 3;
            s[i * CN + j] = offset + (j < 3 ? 1.0f : 0.0f) + (float)(rand() % 1000) / 4000.0f;
        }
    }
    engine_cutoff* cutoff = NULL;
    CHECK(engine_cutoff_fit(s, rel, off, CQ, 5, 300, &cutoff));
    int32_t top_k = 0;
    double threshold = 0, plain = 0, quality[6];
    CHECK(engine_cutoff_info(cutoff, &top_k, &threshold, &plain));
    EXPECT(top_k == 5 && threshold > 0 && threshold < 1);
    CHECK(engine_cutoff_apply(cutoff, s, off, CQ, keep));
    CHECK(engine_cutoff_evaluate(cutoff, s, rel, off, CQ, quality));
    int64_t tp = 0, kept = 0;
    for (int i = 0; i < CQ * CN; i++) { kept += keep[i]; tp += keep[i] && rel[i]; }
    EXPECT(kept > 0 && quality[0] == (double)tp / (double)kept && quality[1] == (double)tp / (CQ * 3));
    EXPECT(quality[2] > quality[5]); /* calibrated F1 beats the plain threshold under per-query offsets */

    s[5] = NAN;
    EXPECT(engine_cutoff_apply(cutoff, s, off, CQ, keep) == ENGINE_INVALID_ARGUMENT);
    engine_cutoff* failed = NULL;
    s[5] = 0.5f;
    rel[0] = 2;
    EXPECT(engine_cutoff_fit(s, rel, off, CQ, 5, 300, &failed) == ENGINE_INVALID_ARGUMENT && failed == NULL);
    rel[0] = 1;
    EXPECT(engine_cutoff_fit(s, rel, off, CQ, 0, 300, &failed) == ENGINE_INVALID_ARGUMENT && failed == NULL);
    off[3] = off[2] - 1;
    EXPECT(engine_cutoff_fit(s, rel, off, CQ, 5, 300, &failed) == ENGINE_INVALID_ARGUMENT && failed == NULL);
    EXPECT(strstr(engine_last_error(), "decrease") != NULL);
    CHECK(engine_cutoff_free(cutoff));
    EXPECT(engine_cutoff_free(cutoff) == ENGINE_INVALID_HANDLE);
    EXPECT(engine_cutoff_info((engine_cutoff*)(void*)flat, &top_k, NULL, NULL) == ENGINE_INVALID_HANDLE);
    CHECK(engine_cutoff_free(NULL));

    CHECK(engine_index_free(small));
    CHECK(engine_index_free(ivf));
    CHECK(engine_index_free(flat));
    puts("audit: ok");
    return 0;
}
