/*
 * engine.h - C ABI of libengine.so (the embedded vector index engine, NativeAOT build of engine/Engine).
 *
 * Build:  dotnet publish bindings/native -c Release -r linux-x64   ->  libengine.so
 * Link:   cc app.c -I bindings/native -L <dir of libengine.so> -lengine -Wl,-rpath,<dir>
 *
 * Conventions
 *  - Every function except engine_version / engine_last_error returns an engine_status; 0 is success.
 *    On failure the reason is in engine_last_error() on the SAME thread (UTF-8, valid until the next failing
 *    call on that thread or the thread's exit; the library frees it, also when the thread exits). No C++ or managed
 *    exception ever leaves the library.
 *  - Vectors are row-major float32: row i, column j is x[i * d + j]. Callers pass their own d, which must equal
 *    the index dimension (a mismatch is ENGINE_INVALID_ARGUMENT, not a silent misread).
 *  - Search outputs are caller-owned nq * k arrays; rows with fewer than k results are padded with label -1 and
 *    distance +inf (l2) or -inf (ip, cosine). l2 distances are SQUARED Euclidean (smaller is closer); ip and
 *    cosine are similarities (larger is closer).
 *  - Handles are opaque. A NULL, freed or foreign handle, or one of another kind (an engine_range_result* passed as
 *    an engine_index*), gives ENGINE_INVALID_HANDLE; a handle value is never reused, so a stale handle cannot reach
 *    a newer object, and a free of the wrong kind leaves the object alive. Searches may run concurrently from many
 *    threads on one handle. A free racing with a use on another thread is safe (the use completes or gets
 *    ENGINE_INVALID_HANDLE), but which one wins is up to the scheduler: free a handle after its last use.
 *  - Strings (specs, metrics, params, JSON, paths) are NUL-terminated UTF-8; malformed UTF-8 is
 *    ENGINE_INVALID_ARGUMENT naming the argument (never decoded with replacement characters: a path would name
 *    another file). A setting named twice - a JSON option key, a "NAME=V" knob, or one knob under two of its
 *    aliases ("probes=4,nprobe=8") - is ENGINE_INVALID_ARGUMENT naming it, never "last one wins".
 *  - Empty inputs: a count of 0 (n, nq, n_queries) is accepted wherever an empty input has a defined result, and
 *    every array that then holds no element, input or output, may be NULL (an offsets array still holds its one
 *    entry, 0). Where nothing can be computed from an empty input the call is ENGINE_INVALID_ARGUMENT and says why:
 *    engine_knn_graph (k >= n), engine_label_propagation (no labelled row), engine_hubness (no query, no corpus id),
 *    engine_cutoff_fit / engine_cutoff_evaluate (no labelled query).
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum engine_status {
    ENGINE_OK = 0,
    ENGINE_INVALID_ARGUMENT = 1, /* null pointer, negative size, wrong dimension, NaN, k <= 0, bad spec/option */
    ENGINE_INVALID_HANDLE = 2,   /* NULL, freed or foreign handle */
    ENGINE_IO = 3,               /* file missing, unreadable or unwritable */
    ENGINE_CORRUPT = 4,          /* truncated file, bad checksum, other index kind or format version */
    ENGINE_INVALID_STATE = 5,    /* e.g. add before train */
    ENGINE_OUT_OF_MEMORY = 6,
    ENGINE_INTERNAL = 99
} engine_status;

typedef enum engine_metric {
    ENGINE_METRIC_L2 = 0,
    ENGINE_METRIC_IP = 1,
    ENGINE_METRIC_COSINE = 2
} engine_metric;

typedef struct engine_index engine_index;

/* Library version, e.g. "0.1.0". Static string, never freed. */
const char* engine_version(void);

/* The calling thread's last error message ("" when none). Owned by the library: valid until the next failing call
 * on the same thread (successful calls leave it alone) or until that thread exits; never free it. */
const char* engine_last_error(void);

/* Creates an empty index from a composition string (e.g. "Flat") of dimension d.
 * metric: "l2", "ip" (inner product) or "cosine". *out is set to NULL on failure. */
int engine_index_create(const char* spec, int32_t d, const char* metric, engine_index** out);

/* Loads an index saved by engine_index_save (or by the C# engine / CLI). */
int engine_index_load(const char* path, engine_index** out);

/* Frees the index. NULL is a no-op; a second free of the same handle is ENGINE_INVALID_HANDLE. */
int engine_index_free(engine_index* index);

/* Trains on n vectors of dimension d (a no-op validation for exact indexes). */
int engine_index_train(engine_index* index, const float* x, int64_t n, int32_t d);

/* Adds n vectors with ids[0..n) (non-negative, unique). ids == NULL assigns consecutive ids after the largest
 * id added through this handle (starting at the count of a fresh or loaded index); *first_id (may be NULL)
 * then receives the first of them; ids that would pass INT64_MAX are ENGINE_INVALID_STATE. With n == 0 and
 * ids == NULL, *first_id receives the id the next automatic add would start at; once INT64_MAX has been added there
 * is none, and even this empty add is ENGINE_INVALID_STATE ("no automatic ids are left"). With ids given, *first_id
 * is not written. Rejected calls change nothing. */
int engine_index_add(engine_index* index, const float* x, int64_t n, int32_t d, const int64_t* ids,
                     int64_t* first_id);

/* k nearest neighbours of nq queries. distances and labels hold nq * k values each.
 * threads: 0 = all cores, > 0 at most that many. probes (IVF lists / SPANN postings) and refine (IVF re-rank
 * factor, a whole number up to 65536): 0 = the index default; an index without that knob rejects a positive
 * value. IVF probes must be <= the list count; SPANN probes above the posting count are clamped to it.
 * Negative threads or probes and a negative, NaN, infinite or fractional refine are ENGINE_INVALID_ARGUMENT
 * (the message names the argument and its range), never a silent default. */
int engine_index_search(engine_index* index, const float* queries, int64_t nq, int32_t d, int32_t k,
                        float* distances, int64_t* labels, int32_t threads, int32_t probes, float refine);

/* As engine_index_search, with the index's search knobs named in params: "NAME=V,NAME=V" using the names of
 * `engine bench --sweep` (ef for HNSW; probes, refine, maxcodes for IVF; probes, eps for SPANN). NULL or "" = the
 * index defaults; a name the index does not know is rejected with ENGINE_INVALID_ARGUMENT. IVF RaBitQ lists also take
 * eps, the error-bound confidence: a number in (0, 16] (otherwise ENGINE_INVALID_ARGUMENT, "must be a number greater
 * than 0 and at most 16"). */
int engine_index_search_with(engine_index* index, const float* queries, int64_t nq, int32_t d, int32_t k,
                             float* distances, int64_t* labels, int32_t threads, const char* params);

/* Removes ids (absent ids are ignored); *removed (may be NULL) receives how many were removed. */
int engine_index_remove(engine_index* index, const int64_t* ids, int64_t n, int64_t* removed);

int engine_index_count(engine_index* index, int64_t* out);     /* live vectors */
int engine_index_dimension(engine_index* index, int32_t* out);
int engine_index_metric(engine_index* index, int32_t* out);    /* an engine_metric value */
int engine_index_is_trained(engine_index* index, int32_t* out); /* 1 when add is accepted */

/* Copies the composition string into buffer (NUL-terminated, truncated to capacity); *needed (may be NULL)
 * receives the full size including the NUL. Pass buffer = NULL, capacity = 0 to ask for the size. */
int engine_index_description(engine_index* index, char* buffer, int64_t capacity, int64_t* needed);

/* Copies the stored vector of id into out (d floats); *found = 0 when the id is absent. */
int engine_index_reconstruct(engine_index* index, int64_t id, float* out, int32_t d, int32_t* found);

/* Writes the index to path atomically (temporary file, then rename). */
int engine_index_save(engine_index* index, const char* path);

/* ---- range search ------------------------------------------------------------------------------------- */

typedef struct engine_range_result engine_range_result;

/* Every stored vector within radius of each query: squared L2 distance <= radius (l2), similarity >= radius (ip,
 * cosine). Exact on Flat; approximate indexes return what their search reaches (IVF: probed lists, HNSW: ef >= k).
 * params as in engine_index_search_with (NULL or "" = defaults). NaN / infinite radius, a negative l2 radius or a
 * cosine threshold outside [-1, 1] are status 1. On success *out owns the result: read it with
 * engine_range_result_size and engine_range_result_copy, then engine_range_result_free it. */
int engine_index_range_search(engine_index* index, const float* queries, int64_t nq, int32_t d, float radius,
                              int32_t threads, const char* params, engine_range_result** out);

/* Query count and total number of results (either pointer may be NULL). */
int engine_range_result_size(engine_range_result* result, int64_t* nq, int64_t* total);

/* Copies lims (nq + 1 offsets: query i owns [lims[i], lims[i+1])), ids and distances (total entries each, best first
 * per query). ids / distances may be NULL when total is 0. */
int engine_range_result_copy(engine_range_result* result, int64_t* lims, int64_t* ids, float* distances);

/* Frees a range result; NULL is a no-op, a freed handle is status 2. */
int engine_range_result_free(engine_range_result* result);

/* ---- k-NN graph, near-duplicates, label propagation ------------------------------------------------------ */

/* The k nearest neighbours of each of the n points x (self excluded): neighbors / distances are n x k, best first,
 * padded with -1. With an index the points must be in it (ids: NULL = 0..n-1; metric NULL or equal to the index's;
 * params as in engine_index_search_with). With index == NULL an index over x is built and its setting chosen by a
 * sampled recall check (recall@k >= 0.95; Flat below 20000 points); ids and params must then be NULL and metric
 * names the metric. k >= n is status 1. The JSON report (index, search, auto, sampled_recall) is copied like
 * engine_index_description (may be NULL / 0). */
int engine_knn_graph(engine_index* index, const float* x, int64_t n, int32_t d, const int64_t* ids, const char* metric,
                     int32_t k, int32_t threads, const char* params, int64_t* neighbors, float* distances,
                     char* report_json, int64_t report_capacity, int64_t* report_needed);

/* Near-duplicate groups of a graph (n x k, as from engine_knn_graph): connected components of the edges inside the
 * threshold (squared l2 <= threshold, similarity >= threshold). representative[i] = the smallest id of point i's group;
 * *groups (may be NULL) = the number of groups. ids NULL = 0..n-1. n == 0 gives 0 groups, with NULL ids, neighbors,
 * distances and representative allowed. Here and in engine_label_propagation a neighbour
 * below -1, or an edge (neighbour >= 0) with a NaN or infinite distance, is ENGINE_INVALID_ARGUMENT; padding (-1) may
 * hold any distance. */
int engine_near_duplicates(const int64_t* ids, int64_t n, int32_t k, const int64_t* neighbors, const float* distances,
                           const char* metric, float threshold, int64_t* representative, int64_t* groups);

/* ZLaP-style label propagation over a graph: labels[i] in 0..classes-1 or -1 (unlabelled); F <- alpha S F +
 * (1 - alpha) Y for iterations steps, S the symmetric normalised affinity (similarity^gamma, or exp(-d / sigma^2) for
 * l2). scores (n x classes, may be NULL), predicted[i] = argmax class or -1 when unreached. At least one row must be
 * labelled, so n == 0 is ENGINE_INVALID_ARGUMENT ("No row is labelled"), whatever the (then unused) pointers. */
int engine_label_propagation(const int64_t* ids, int64_t n, int32_t k, const int64_t* neighbors, const float* distances,
                             const char* metric, const int32_t* labels, int32_t classes, double alpha, int32_t iterations,
                             double gamma, float* scores, int32_t* predicted);

/* ---- hard-negative mining and hubness ------------------------------------------------------------------ */

/* Mines hard negatives from the index for n anchors.
 * Anchors: either external vectors (anchors, n x d; anchor_ids NULL) or corpus ids (anchor_ids, n; anchors NULL;
 * an anchor never gets itself as a negative). Positives per anchor as CSR: anchor i owns
 * positives[positive_offsets[i] .. positive_offsets[i+1]) (offsets has n + 1 entries, starting at 0; at least one
 * positive each). exclusion_offsets / exclusions: the same for ids never to return (both NULL = none).
 * options_json: JSON object, NULL or "{}" = defaults; keys: num_negatives (3), range_min (0), range_max (100),
 * candidate_depth (0 = auto), duplicate_threshold, absolute_margin, relative_margin, min_score, max_score (null =
 * off), positive_anchor ("min" | "mean" | "max"), sampling ("top" | "uniform" | "simans" | "softmax"), simans_a,
 * simans_b, temperature, hubness_gamma (0 = off; > 0 only with engine_mine_with_occurrence), max_hand_outs_per_item,
 * shortfall ("drop" | "pad" | "keep_short"), rescore_exact, seed, threads, chunk_size, include_positives (keep the
 * anchor's positives among the candidates), anchor_id_offset (id of the first vector anchor: mining a query set in
 * slices, each with the offset of its first row, gives the rows of one call), search (the candidate search's knobs
 * as "NAME=V,NAME=V", the names of engine_index_search_with: "probes=16,refine=4", "ef=128"). Unknown keys and keys
 * given twice are errors (ENGINE_INVALID_ARGUMENT naming the key).
 * Output: negatives and scores (scores may be NULL; both may be NULL when n == 0) are n x width (width >= num_negatives), row i = anchor i,
 * best first, padded with -1 / NaN (a dropped row is all padding). Scores are larger-is-closer (negative squared
 * distance for l2). The report JSON (counts, filters, score summaries) is copied to report_json like
 * engine_index_description (all three may be NULL / 0). Identical output for any thread count. */
int engine_mine(engine_index* index, const float* anchors, int64_t n, int32_t d, const int64_t* anchor_ids,
                const int64_t* positive_offsets, const int64_t* positives,
                const int64_t* exclusion_offsets, const int64_t* exclusions, const char* options_json,
                int64_t* negatives, float* scores, int32_t width,
                char* report_json, int64_t report_capacity, int64_t* report_needed);

/* engine_mine with hubness-aware sampling: occurrence[i] is the k-occurrence N_k of corpus id occurrence_ids[i]
 * (n_occurrence pairs, distinct ids, N_k >= 0; e.g. the output of engine_hubness). With option hubness_gamma = g > 0
 * and sampling "uniform", "simans" or "softmax", a candidate's sampling weight is multiplied by max(N_k, 1)^-g, so
 * hubs (items in many k-NN lists) are handed out less often. Ids absent from the table count as N_k <= 1. A table
 * with hubness_gamma 0, hubness_gamma > 0 without a table (engine_mine) or with sampling "top" are errors. */
int engine_mine_with_occurrence(engine_index* index, const float* anchors, int64_t n, int32_t d,
                                const int64_t* anchor_ids, const int64_t* positive_offsets, const int64_t* positives,
                                const int64_t* exclusion_offsets, const int64_t* exclusions,
                                const int64_t* occurrence_ids, const int32_t* occurrence, int64_t n_occurrence,
                                const char* options_json, int64_t* negatives, float* scores, int32_t width,
                                char* report_json, int64_t report_capacity, int64_t* report_needed);

/* Like engine_mine, but the rows go to a JSON-lines file at jsonl_path, one object per kept anchor:
 * {"anchor", "positives", "negatives", "scores", "positive_scores"}. The file appears only when complete
 * (temporary file, then rename). */
int engine_mine_to_file(engine_index* index, const float* anchors, int64_t n, int32_t d, const int64_t* anchor_ids,
                        const int64_t* positive_offsets, const int64_t* positives,
                        const int64_t* exclusion_offsets, const int64_t* exclusions, const char* options_json,
                        const char* jsonl_path, char* report_json, int64_t report_capacity, int64_t* report_needed);

/* engine_mine_to_file with the k-occurrence table of engine_mine_with_occurrence. */
int engine_mine_to_file_with_occurrence(engine_index* index, const float* anchors, int64_t n, int32_t d,
                                        const int64_t* anchor_ids, const int64_t* positive_offsets,
                                        const int64_t* positives, const int64_t* exclusion_offsets,
                                        const int64_t* exclusions, const int64_t* occurrence_ids,
                                        const int32_t* occurrence, int64_t n_occurrence, const char* options_json,
                                        const char* jsonl_path, char* report_json, int64_t report_capacity,
                                        int64_t* report_needed);

/* Hubness of the index: k-occurrence N_k of each of the n_ids corpus ids (written to occurrence[n_ids], may be
 * NULL) and a JSON summary (skewness, robin_hood, gini, hub_share, antihub_share, top_hubs).
 * queries == NULL and nq == 0: the corpus (or a seeded sample of it) is the query bank and each query's own id is
 * excluded; otherwise the nq x d queries are the bank, and it must not be empty: queries given with nq == 0 are
 * ENGINE_INVALID_ARGUMENT naming nq (an empty bank puts nothing in any list; C# refuses it too), as is an empty
 * corpus_ids. options_json keys: k (10), sample_size (0 = all), hub_factor (2), top_hubs (10), seed, threads,
 * chunk_size; unknown keys and keys given twice are errors. */
int engine_hubness(engine_index* index, const int64_t* corpus_ids, int64_t n_ids,
                   const float* queries, int64_t nq, int32_t d, const char* options_json, int32_t* occurrence,
                   char* report_json, int64_t report_capacity, int64_t* report_needed);

/* ---- exact-versus-approximate mining audit, calibrated relevance cutoff --------------------------------- */

/* Audit of a mining run (MiningAudit): mines the input (the arguments of engine_mine: anchors or anchor_ids,
 * positives, exclusions, options_json) on approximate and on exact (an exact index, e.g. "Flat", holding the same ids
 * and vectors) with the same options and seed, compares the handed-out negatives anchor by anchor and re-scores the
 * approximate run's negatives exactly. The report JSON is copied to report_json like engine_index_description:
 * anchors, approximate_negatives, exact_negatives, set_flips, flip_rate, rows_changed, threshold_flips, band, in_band,
 * mean_score_error. Indexes of different dimension, metric or count are status 1. */
int engine_mine_audit(engine_index* approximate, engine_index* exact, const float* anchors, int64_t n, int32_t d,
                      const int64_t* anchor_ids, const int64_t* positive_offsets, const int64_t* positives,
                      const int64_t* exclusion_offsets, const int64_t* exclusions, const char* options_json,
                      char* report_json, int64_t report_capacity, int64_t* report_needed);

/* A per-query calibrated relevance cutoff (CalibratedCutoff): a logistic model on each candidate's score, the score
 * standardised by its query's top_k statistics and its gap to the query's best score, and one global threshold on
 * the model's probability. Labelled queries are CSR lists: query i owns scores[offsets[i] .. offsets[i+1]) (larger is
 * closer, finite) and the aligned relevant flags (0 or 1); offsets has n_queries + 1 entries starting at 0. Fitting
 * needs at least one relevant and one non-relevant candidate, top_k >= 1, iterations >= 1 (deterministic). */
typedef struct engine_cutoff engine_cutoff;
int engine_cutoff_fit(const float* scores, const uint8_t* relevant, const int64_t* offsets, int64_t n_queries,
                      int32_t top_k, int32_t iterations, engine_cutoff** out);
/* The fitted top_k, the threshold on the calibrated probability and the best plain threshold on raw scores (the
 * baseline); any pointer may be NULL. */
int engine_cutoff_info(engine_cutoff* cutoff, int32_t* top_k, double* threshold, double* plain_threshold);
/* keep[j] = 1 for each candidate (offsets[n_queries] of them, CSR as above) the calibrated cutoff keeps, else 0. */
int engine_cutoff_apply(engine_cutoff* cutoff, const float* scores, const int64_t* offsets, int64_t n_queries,
                        uint8_t* keep);
/* quality[0..5] = precision, recall, F1 of the calibrated cutoff, then of the plain threshold, micro-averaged over
 * the labelled queries. */
int engine_cutoff_evaluate(engine_cutoff* cutoff, const float* scores, const uint8_t* relevant, const int64_t* offsets,
                           int64_t n_queries, double* quality);
/* NULL is a no-op; a freed or foreign handle is status 2. */
int engine_cutoff_free(engine_cutoff* cutoff);

/* ---- Multi-vector (MUVERA) indexes: each item is a set of token vectors, scored by Chamfer (MaxSim) similarity.
 * Token sets travel as tokens (row-major float32, offsets[n] rows of d floats) and offsets (n + 1 int64 entries,
 * offsets[0] == 0): set i is rows offsets[i] .. offsets[i+1]. A set without tokens, a d other than the index's
 * token dimension ("Mixed dimensions") and non-finite tokens are ENGINE_INVALID_ARGUMENT naming the item. */
typedef struct engine_mv_index engine_mv_index;

/* An empty multi-vector index of token dimension d. options: "ksim=4,dproj=16,reps=20,final=0,fill=1,seed=42"
 * (NULL or "" = these defaults; a missing name keeps its default); fde_spec: the single-vector index over the
 * fixed-dimensional encodings, any composition string (NULL = "Flat"); tokens: "f16" or "f32" (NULL = "f16"). */
int engine_mv_create(int32_t d, const char* options, const char* fde_spec, const char* tokens, engine_mv_index** out);

/* Loads a directory written by engine_mv_save (or by the C# MultiVectorIndex.Save). */
int engine_mv_load(const char* path, engine_mv_index** out);

/* Frees the index. NULL is a no-op; a second free is ENGINE_INVALID_HANDLE. */
int engine_mv_free(engine_mv_index* index);

/* Trains the FDE index (IVF centroids, codebooks) on n token sets; nothing to do for Flat / HNSW.
 * threads: 0 = all cores. */
int engine_mv_train(engine_mv_index* index, const float* tokens, const int64_t* offsets, int64_t n, int32_t d,
                    int32_t threads);

/* Adds n token sets with ids[0..n) (non-negative, unique); ids == NULL assigns consecutive ids as engine_index_add
 * does and writes the first to *first_id (may be NULL). Rejected calls change nothing, automatic ids included. */
int engine_mv_add(engine_mv_index* index, const float* tokens, const int64_t* offsets, int64_t n, int32_t d,
                  const int64_t* ids, int64_t* first_id, int32_t threads);

/* MUVERA search of nq query token sets: the FDE index's candidates re-ranked by exact Chamfer. scores / labels
 * hold nq * k values (Chamfer similarities, larger is closer; padding -inf / -1). params: "candidates=N,reps=R"
 * and the FDE index's own knobs ("probes=8", "ef=64"); NULL or "" = defaults (N = max(10 k, 100)). */
int engine_mv_search(engine_mv_index* index, const float* tokens, const int64_t* offsets, int64_t nq, int32_t d,
                     int32_t k, float* scores, int64_t* labels, int32_t threads, const char* params);

/* Brute-force Chamfer search over every item (the ground truth of engine_mv_search). */
int engine_mv_search_exact(engine_mv_index* index, const float* tokens, const int64_t* offsets, int64_t nq,
                           int32_t d, int32_t k, float* scores, int64_t* labels, int32_t threads);

/* Removes ids (absent ids are ignored): their FDEs leave the FDE index and their tokens are dropped.
 * *removed (may be NULL) receives how many were removed. */
int engine_mv_remove(engine_mv_index* index, const int64_t* ids, int64_t n, int64_t* removed);

/* Items and stored tokens (either pointer may be NULL). */
int engine_mv_count(engine_mv_index* index, int64_t* items, int64_t* tokens);

/* Token dimension d. */
int engine_mv_dimension(engine_mv_index* index, int32_t* out);

/* The description, e.g. "MUVERA(ksim=4,dproj=16,reps=20,final=0,fill=1,seed=42),F16|Flat"; buffer rules of
 * engine_index_description. */
int engine_mv_description(engine_mv_index* index, char* buffer, int64_t capacity, int64_t* needed);

/* Saves into the directory path (created when missing): the FDE index and the token file, each atomically. */
int engine_mv_save(engine_mv_index* index, const char* path);

#ifdef __cplusplus
}
#endif

#endif /* ENGINE_H */
