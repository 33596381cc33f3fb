using Spectre.Console;
using System.Buffers.Binary;
using System.CommandLine;
using System.Globalization;
using Engine.Index;
using Engine.Mining;
using Engine.Mining.Hubness;
using Engine.Mining.Output;

namespace Engine.Cli;

/// <summary><c>engine mine</c>: hard-negative mining over an index built from a corpus file.</summary>
internal static class MineCommand
{
    public static Command Create()
    {
        var corpus = new Option<string>("--corpus") { Description = "Corpus vectors (.fvecs); ids are row numbers.", Required = true };
        var anchors = new Option<string>("--anchors") { Description = "Anchor vectors (.fvecs), or 'corpus' to mine for every corpus item.", Required = true };
        var positives = new Option<string>("--positives") { Description = "Positive corpus ids per anchor (.ivecs, one row per anchor).", Required = true };
        var positivesTake = new Option<int>("--positives-take") { Description = "Use only the first N ids of each positives row (0 = all).", DefaultValueFactory = _ => 0 };
        var index = new Option<string>("--index") { Description = "Index spec for IndexFactory.Create.", DefaultValueFactory = _ => "Flat" };
        var streamAbove = new Option<long>("--stream-above") { Description = "Read the corpus in blocks into the index (train on an even sample) instead of whole into memory when it holds more than N floats, and likewise mine anchor vectors block by block when they hold more than N floats; default: what one array holds (2^31 - 1). Streaming halves the peak memory (no second copy of the corpus) and is refused with --audit, repeated --corpus-texts and (for anchors) --query-texts.", DefaultValueFactory = _ => Array.MaxLength };
        var indexDir = new Option<string?>("--index-dir") { Description = "Mine over the index 'engine build --data ... --dir DIR' built from this corpus (instead of building one from --index)." };
        var metric = new Option<string>("--metric") { Description = "l2, ip or cosine.", DefaultValueFactory = _ => "l2" };
        var negatives = new Option<int>("--negatives", "--num-negatives") { Description = "Negatives per anchor (sentence-transformers: num_negatives).", DefaultValueFactory = _ => 3 };
        var range = new Option<string>("--range") { Description = "Rank window MIN:MAX over surviving candidates.", DefaultValueFactory = _ => "0:100" };
        var depth = new Option<int>("--depth") { Description = "Candidates fetched per anchor (0 = automatic).", DefaultValueFactory = _ => 0 };
        var relMargin = new Option<float?>("--relative-margin") { Description = "Drop neg > pos − |pos|·M." };
        var absMargin = new Option<float?>("--absolute-margin") { Description = "Drop neg + M > pos." };
        var maxScore = new Option<float?>("--max-score") { Description = "Drop candidates scoring above S." };
        var minScore = new Option<float?>("--min-score") { Description = "Drop candidates scoring below S." };
        var dup = new Option<float?>("--dup-threshold") { Description = "Drop candidates whose cosine to a positive exceeds T." };
        var sampling = new Option<string>("--sampling", "--sampling-strategy") { Description = "top, random (= uniform), simans or softmax (sentence-transformers: sampling_strategy).", DefaultValueFactory = _ => "top" };
        var temperature = new Option<double>("--temperature") { Description = "Softmax temperature.", DefaultValueFactory = _ => 0.05 };
        var gamma = new Option<double>("--hubness-gamma") { Description = "Weight candidates by N_k^−γ (needs a non-top sampling).", DefaultValueFactory = _ => 0 };
        var hubK = new Option<int>("--hub-k") { Description = "k of the k-occurrence used by --hubness-gamma.", DefaultValueFactory = _ => 10 };
        var maxHandOuts = new Option<int>("--max-handouts") { Description = "Cap hand-outs of one corpus item per pass (0 = none).", DefaultValueFactory = _ => 0 };
        var shortfall = new Option<string>("--shortfall") { Description = "drop, pad or keep.", DefaultValueFactory = _ => "drop" };
        var rescore = new Option<bool>("--rescore") { Description = "Re-score candidates exactly from reconstructed vectors." };
        var includePositives = new Option<bool>("--include-positives") { Description = "Keep each anchor's positives among the candidates (sentence-transformers include_positives)." };
        var batchSize = new Option<int>("--batch-size") { Description = "Anchors per batched index search (bounds memory: batch × depth candidates).", DefaultValueFactory = _ => 1024 };
        var seed = new Option<ulong>("--seed") { Description = "Seed.", DefaultValueFactory = _ => 42UL };
        var probes = new Option<int>("--probes") { Description = "Approximate indexes: lists/postings probed per anchor (0 = index default).", DefaultValueFactory = _ => 0 };
        var ef = new Option<int>("--ef") { Description = "HNSW: candidate list size of the search (0 = index default).", DefaultValueFactory = _ => 0 };
        var refine = new Option<int>("--refine") { Description = "IVF with a refine stage: refine factor (0 = index default).", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { Description = "cpu, gpu (ILGPU: CUDA when present, else its CPU accelerator) or cuda (CUDA or an error): Flat searches on the device, IVF/SPANN train their k-means on it, IVF lists of PQ or RaBitQ codes are scanned on it.", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "Threads (0 = all).", DefaultValueFactory = _ => 0 };
        var format = new Option<string>("--format") { Description = "jsonl, parquet (with --output-format) or binary.", DefaultValueFactory = _ => "jsonl" };
        var outputFormat = new Option<string?>("--output-format") { Description = "Write a sentence-transformers layout instead of the engine's rows: triplet, n-tuple, labeled-pair or labeled-list (as minedex.mine_hard_negatives; docs/mining.md)." };
        var outputScores = new Option<bool>("--output-scores") { Description = "With --output-format: add the score column(s) (sentence-transformers output_scores)." };
        var queryTexts = new Option<string?>("--query-texts") { Description = "With --output-format: anchor texts, one per line (line i = anchor i); the anchor column holds texts instead of ids." };
        var corpusTexts = new Option<string?>("--corpus-texts") { Description = "With --output-format: corpus texts, one per line (line i = corpus id i); document columns hold texts instead of ids." };
        var anchorColumn = new Option<string>("--anchor-column-name") { Description = "With --output-format: name of the anchor column.", DefaultValueFactory = _ => "anchor" };
        var positiveColumn = new Option<string>("--positive-column-name") { Description = "With --output-format: name of the positive column.", DefaultValueFactory = _ => "positive" };
        var acceptLoss = new Option<bool>(SearchCommand.AcceptLogLossOption) { Description = SearchCommand.AcceptLogLossDescription };
        var output = new Option<string>("--out") { Description = "Output file; the manifest and report are written beside it.", Required = true };
        var audit = new Option<bool>("--audit") { Description = "Also mine on an exact Flat index of the corpus and write OUT.audit.json: decision flips, flip rate, exact re-scoring of the ambiguous band (MiningAudit)." };
        var cluster = new Option<string?>("--cluster") { Description = "Mine against a cluster collection instead of a local index: its gateways, HOST:PORT,... (with --collection; docs/scale-out.md)." };
        var collection = new Option<string?>("--collection") { Description = "The cluster collection holding the corpus (ids = row numbers), with --cluster." };

        var cmd = new Command("mine", "Mines hard negatives for (anchor, positive) pairs; writes rows, a report and a provenance manifest.");
        foreach (Option o in new Option[] { corpus, anchors, positives, positivesTake, index, metric, negatives, range, depth, relMargin, absMargin,
                     maxScore, minScore, dup, sampling, temperature, gamma, hubK, maxHandOuts, shortfall, rescore, includePositives, batchSize, seed, threads, format, output, device, probes, refine, ef, indexDir, acceptLoss, audit, cluster, collection, streamAbove,
                     outputFormat, outputScores, queryTexts, corpusTexts, anchorColumn, positiveColumn })
            cmd.Options.Add(o);
        cmd.SetAction(p =>
        {
            var (rangeMin, rangeMax) = ParseRange(p.GetValue(range)!);
            var m = MetricExtensions.ParseMetric(p.GetValue(metric)!);
            var options = new MiningOptions
            {
                NumNegatives = p.GetValue(negatives), RangeMin = rangeMin, RangeMax = rangeMax, CandidateDepth = p.GetValue(depth),
                RelativeMargin = p.GetValue(relMargin), AbsoluteMargin = p.GetValue(absMargin),
                MaxScore = p.GetValue(maxScore), MinScore = p.GetValue(minScore), DuplicateThreshold = p.GetValue(dup),
                Sampling = ParseSampling(p.GetValue(sampling)!), Temperature = p.GetValue(temperature),
                HubnessGamma = p.GetValue(gamma), MaxHandOutsPerItem = p.GetValue(maxHandOuts),
                Shortfall = ParseShortfall(p.GetValue(shortfall)!), RescoreExact = p.GetValue(rescore),
                Seed = p.GetValue(seed), Threads = p.GetValue(threads),
                IncludePositives = p.GetValue(includePositives), ChunkSize = p.GetValue(batchSize),
                // Placeholder so option validation runs before any file is read; replaced below.
                KOccurrence = p.GetValue(gamma) > 0 ? new Dictionary<long, int>() : null,
            };
            options.Validate();
            var training = MineTrainingOutput.Parse(p.GetValue(format)!, p.GetValue(outputFormat), p.GetValue(outputScores), p.GetValue(queryTexts), p.GetValue(corpusTexts),
                options.IncludePositives, p.GetValue(anchors)!.Equals("corpus", StringComparison.OrdinalIgnoreCase), p.GetValue(anchorColumn)!, p.GetValue(positiveColumn)!);
            // A training layout counts short anchors itself (as the Python function, which keeps them): keep them unless told otherwise.
            if (training is not null && p.GetResult(shortfall) is null or { Implicit: true }) options = options with { Shortfall = ShortfallPolicy.KeepShort };
            string corpusPath = p.GetValue(corpus)!, anchorsArg = p.GetValue(anchors)!, positivesPath = p.GetValue(positives)!;
            string outPath = p.GetValue(output)!;
            var fmt = p.GetValue(format)!.Trim().ToLowerInvariant() is "binary" or "bin" ? MiningOutputFormat.Binary : MiningOutputFormat.Jsonl;

            var (n, d) = VecsFile.Shape(corpusPath, "--corpus");
            long limit = p.GetValue(streamAbove);
            if (limit < 1) throw new ArgumentException($"--stream-above must be at least 1, got {limit}.");
            bool streamed = (long)n * d > limit;
            if (streamed && p.GetValue(audit))
                throw new ArgumentException($"--audit builds an exact copy of the corpus in memory; the corpus holds {(long)n * d:N0} floats, more than --stream-above {limit:N0}: audit a sample of it instead.");
            float[]? data = streamed ? null : VecsFile.ReadFvecs(corpusPath, "--corpus").Data;
            var pos = VecsFile.ReadIvecsRows(positivesPath, p.GetValue(positivesTake));
            if (pos.Length == 0)
                throw new ArgumentException($"--positives file '{positivesPath}' holds no rows; it needs one row of positive ids per anchor.");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            string? prebuilt = p.GetValue(indexDir);
            if (prebuilt is not null && p.GetResult(index) is { Implicit: false })
                throw new ArgumentException("--index and --index-dir exclude each other: give the spec to 'engine build', or let 'engine mine' build it.");
            var steps = Steps.ForConsole(Console.Error);
            var searchSettings = new Dictionary<string, string>();
            if (p.GetValue(probes) > 0) searchSettings["probes"] = p.GetValue(probes).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (p.GetValue(refine) > 0) searchSettings["refine"] = p.GetValue(refine).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (p.GetValue(ef) > 0) searchSettings["ef"] = p.GetValue(ef).ToString(System.Globalization.CultureInfo.InvariantCulture);
            string? gateways = p.GetValue(cluster);
            if ((gateways is null) != (p.GetValue(collection) is null))
                throw new ArgumentException("--cluster and --collection go together: the gateways and the collection that holds the corpus.");
            if (gateways is not null && (prebuilt is not null || p.GetResult(index) is { Implicit: false }))
                throw new ArgumentException("--cluster mines against the cluster's collection: do not combine it with --index or --index-dir.");
            bool corpusAnchors = anchorsArg.Equals("corpus", StringComparison.OrdinalIgnoreCase);
            var inputs = new Dictionary<string, string> { ["corpus"] = MiningManifest.Sha256(corpusPath), ["positives"] = MiningManifest.Sha256(positivesPath) };
            float[]? anchorVectors = null;
            int anchorDim = 0, anchorFileRows = 0;
            bool streamAnchors = false;
            if (!corpusAnchors)
            {
                // Anchors beyond --stream-above floats are read and mined block by block, never whole.
                (anchorFileRows, anchorDim) = VecsFile.Shape(anchorsArg, "--anchors");
                streamAnchors = (long)anchorFileRows * anchorDim > limit;
                if (streamAnchors && p.GetValue(audit))
                    throw new ArgumentException($"--audit re-mines every anchor against an exact index; --anchors holds {(long)anchorFileRows * anchorDim:N0} floats, more than --stream-above {limit:N0}: audit a sample of the anchors instead.");
                if (!streamAnchors) anchorVectors = VecsFile.ReadFvecs(anchorsArg, "--anchors").Data;
                inputs["anchors"] = MiningManifest.Sha256(anchorsArg);
            }
            TrainingLayout? layout = training?.Layout(options.NumNegatives, corpusAnchors ? n : anchorFileRows, n, corpusAnchors);

            // sentence-transformers' text semantics: an index the command builds holds each corpus text once (copies
            // are the same document; positives map to the first row with their text), and anchors with the same text
            // are one anchor with their positives pooled.
            float[]? indexData = data;
            long[]? indexedIds = null;
            int anchorRows = corpusAnchors ? n : anchorFileRows;
            if (layout is not null && (layout.QueryTexts is not null || layout.CorpusTexts is not null) && pos.Length != anchorRows)
                throw new ArgumentException($"--positives '{positivesPath}' holds {pos.Length} rows but there are {anchorRows} anchors: give one row of positive ids per anchor.");
            if (layout?.CorpusTexts is { } cTexts && gateways is null && prebuilt is null)
            {
                var canonical = TextDeduplication.CanonicalRows(cTexts);
                if (canonical.Where((c, i) => c != i).Any())
                {
                    if (data is null)
                        throw new ArgumentException($"--corpus-texts repeats texts, and indexing each text once needs the corpus in memory; it holds {(long)n * d:N0} floats, more than --stream-above {limit:N0}. De-duplicate the corpus file first.");
                    indexedIds = Enumerable.Range(0, n).Where(i => canonical[i] == i).Select(i => (long)i).ToArray();
                    indexData = new float[(long)indexedIds.Length * d];
                    for (int i = 0; i < indexedIds.Length; i++) data.AsSpan((int)indexedIds[i] * d, d).CopyTo(indexData.AsSpan(i * d, d));
                    pos = pos.Select(row => row.Select(id => id >= 0 && id < n ? canonical[id] : id).Distinct().ToArray()).ToArray();
                    Console.WriteLine($"corpus texts: {n - indexedIds.Length:N0} rows repeat an earlier text and are not indexed (their first row stands for them)");
                }
            }
            long[]? anchorIds = corpusAnchors ? Enumerable.Range(0, n).Select(i => (long)i).ToArray() : null;
            var anchorPositives = pos;
            if (streamAnchors && pos.Length != anchorRows)
                throw new ArgumentException($"--positives '{positivesPath}' holds {pos.Length} rows but there are {anchorRows} anchors: give one row of positive ids per anchor.");
            if (layout?.QueryTexts is not null && streamAnchors)
                throw new ArgumentException($"--query-texts merges anchors with the same text, which needs the anchors in memory; --anchors holds {(long)anchorFileRows * anchorDim:N0} floats, more than --stream-above {limit:N0}. De-duplicate the anchors first, or raise --stream-above.");
            if (layout?.QueryTexts is { } qTexts)
            {
                // One anchor per text: the first row (for corpus anchors the row the index kept), positives pooled.
                var (rows, lists) = TextDeduplication.MergeByText(qTexts, pos);
                if (corpusAnchors || rows.Length < qTexts.Count) anchorPositives = lists[0];
                if (rows.Length < qTexts.Count && !(corpusAnchors && indexedIds is not null))
                    Console.WriteLine($"anchor texts: {qTexts.Count - rows.Length:N0} anchors repeat an earlier anchor's text and are merged into it (positives pooled)");
                if (corpusAnchors) anchorIds = Array.ConvertAll(rows, r => (long)r);
                else if (rows.Length < qTexts.Count)
                {
                    var merged = new float[(long)rows.Length * anchorDim];
                    for (int i = 0; i < rows.Length; i++) anchorVectors.AsSpan(rows[i] * anchorDim, anchorDim).CopyTo(merged.AsSpan(i * anchorDim, anchorDim));
                    anchorVectors = merged;
                    layout = layout with { QueryTexts = rows.Select(r => qTexts[r]).ToArray() };
                }
            }

            using var idx = gateways is not null ? ClusterMining.Open(gateways, p.GetValue(collection)!, d, m, n, searchSettings)
                : prebuilt is null
                ? (indexData is null
                    ? BuildIndexStreaming(p.GetValue(index)!, corpusPath, n, d, m, p.GetValue(device)!, steps, limit)
                    : BuildIndex(p.GetValue(index)!, indexData, d, m, p.GetValue(threads), p.GetValue(device)!, steps, indexedIds))
                : DeviceIndexes.Attach(OpenPrebuilt(prebuilt, d, m, n, p.GetValue(acceptLoss)), p.GetValue(device)!);
            Console.WriteLine($"index {idx.Description} on {DeviceIndexes.Describe(p.GetValue(device)!)} ({m.ToShortName()}, d={d}, n={idx.Count}) "
                + (prebuilt is null ? "built" : $"opened from '{prebuilt}'") + $" in {clock.Elapsed.TotalSeconds:F2} s");
            long[][]? exclusions = null;
            if (layout?.CorpusTexts is { } texts && indexedIds is null)
            {
                // An index that keeps repeated texts (opened, or a cluster's): copies of a positive's text are the
                // positive, so they are excluded.
                var sameText = TrainingLayout.SameTextExclusions(texts, anchorPositives);
                if (sameText.Any(e => e.Length > 0)) exclusions = sameText;
            }
            MiningInput? input = streamAnchors ? null
                : corpusAnchors ? MiningInput.FromCorpusIds(anchorIds!, anchorPositives, exclusions)
                : MiningInput.FromVectors(anchorVectors!, anchorDim, anchorPositives, exclusions);
            if (options.HubnessGamma > 0)
            {
                var hub = steps.Run($"hubness k-occurrence (k={p.GetValue(hubK)})", _ => HubnessAnalyzer.Analyze(idx, indexedIds ?? Enumerable.Range(0, n).Select(i => (long)i).ToArray(),
                    new HubnessOptions { K = p.GetValue(hubK), Threads = options.Threads }));
                Console.WriteLine($"hubness: {hub}");
                options = options with { KOccurrence = hub.Occurrence };
            }
            if (searchSettings.Count > 0 && gateways is null)
                options = options with { SearchParameters = IndexFactory.CreateParameters(idx, searchSettings, options.Threads > 0 ? options.Threads : Environment.ProcessorCount) };
            var miner = new HardNegativeMiner(idx, options);
            var manifest = new MiningManifest
            {
                IndexChecksum = inputs["corpus"], Inputs = inputs,
                Notes = "engine mine " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            };
            if (training is not null)
            {
                foreach (var (name, file) in new[] { ("query_texts", training.QueryTextsPath), ("corpus_texts", training.CorpusTextsPath) })
                    if (file is not null) inputs[name] = MiningManifest.Sha256(file);
                long rowsOut, missing;
                MiningReport mined;
                using (var writer = training.Open(outPath, layout!))
                {
                    mined = input is null
                        ? MineAnchorBlocks(idx, options, anchorsArg, anchorFileRows, anchorDim, anchorPositives, exclusions, writer, steps, limit)
                        : steps.Run($"mine {input.Count:N0} anchors", progress => miner.MineTo(input, writer, progress));
                    (rowsOut, missing) = (writer.RowsWritten, writer.MissingRows);
                }
                manifest.Write(outPath, training.Name, idx, options, mined);
                Console.WriteLine($"{rowsOut:N0} rows ({training.Name}); {missing:N0} rows missing for lack of negatives");
                FinishReport(mined, outPath);
                if (p.GetValue(audit)) WriteAudit(idx, indexData!, d, indexedIds, input!, options, outPath, steps);
                return 0;
            }
            MiningReport report;
            if (input is null)
            {
                using (IMiningSink sink = fmt == MiningOutputFormat.Binary ? new BinaryMiningWriter(outPath, idx) : new JsonlMiningWriter(outPath))
                    report = MineAnchorBlocks(idx, options, anchorsArg, anchorFileRows, anchorDim, anchorPositives, exclusions, sink, steps, limit);
                manifest.Write(outPath, fmt, idx, options, report);
            }
            else report = steps.Run($"mine {input.Count:N0} anchors", progress => miner.MineToFile(input, outPath, fmt, manifest, progress));
            FinishReport(report, outPath);
            if (p.GetValue(audit)) WriteAudit(idx, indexData!, d, indexedIds, input!, options, outPath, steps);
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// Mines vector anchors read from <paramref name="path"/> block by block (about min(2^24, maxFloats) floats of
    /// anchors in memory, rounded to a whole number of the miner's chunks and at least one), each block with <see cref="MiningOptions.AnchorIdOffset"/>
    /// = its first row, so the chunks, the rows and their random streams are those of one call over every anchor; one
    /// report (and hand-out count) spans the blocks.
    /// </summary>
    internal static MiningReport MineAnchorBlocks(IVectorIndex idx, MiningOptions options, string path, int rows, int dim,
        long[][] positives, long[][]? exclusions, IMiningSink sink, Steps steps, long maxFloats)
    {
        var report = new MiningReport(options.Seed);
        using var reader = Engine.Data.VectorFileReader.Open(path);
        int block = (int)Math.Max(1, Math.Min(StreamBlockFloats, maxFloats) / dim);
        // Whole chunks per block: a chunk's search depth follows its anchors' positives, so chunks must be the same
        // anchors as in one call (results of an approximate index depend on the depth).
        block = Math.Max(options.ChunkSize, block - block % options.ChunkSize);
        steps.Run($"mine {rows:N0} anchors in blocks of {block:N0}", progress =>
        {
            var buffer = new float[(long)Math.Min(block, rows) * dim];
            for (int r0 = 0; r0 < rows; r0 += block)
            {
                int m = Math.Min(block, rows - r0);
                reader.ReadRows(r0, m, buffer.AsSpan(0, m * dim));
                var input = MiningInput.FromVectors(m * dim == buffer.Length ? buffer : buffer[..(m * dim)], dim, positives[r0..(r0 + m)], exclusions?[r0..(r0 + m)]);
                foreach (var row in new HardNegativeMiner(idx, options with { AnchorIdOffset = r0 }).Mine(input, report)) sink.Write(row);
                progress.Report(new BuildProgress("mine", r0 + m, rows));
            }
        });
        sink.Complete(report);
        return report;
    }

    private static void FinishReport(MiningReport report, string outPath)
    {
        File.WriteAllText(outPath + ".report.json", report.ToJson());
        if (Terminal.IsInteractive) AnsiConsole.Write(Tables.Mining(report));
        else Console.WriteLine(report.ToString());
        Console.WriteLine($"wrote {outPath}, {MiningManifest.PathFor(outPath)}, {outPath}.report.json");
    }

    // Exact-versus-approximate audit (issue 16 §5): the same mining on a Flat index of the corpus, compared.
    private static void WriteAudit(IVectorIndex idx, float[] data, int d, long[]? ids, MiningInput input, MiningOptions options, string outPath, Steps steps)
    {
        using var exact = IndexFactory.Create("Flat", d, idx.Metric);
        exact.Add(data, ids ?? Enumerable.Range(0, data.Length / d).Select(i => (long)i).ToArray());
        var audit = steps.Run("audit against exact scores", _ => MiningAudit.Run(idx, exact, input, options));
        File.WriteAllText(outPath + ".audit.json", audit.ToJson());
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"audit: flip rate {audit.FlipRate:F4} ({audit.SetFlips} set flips, {audit.RowsChanged} rows changed), threshold flips {audit.ThresholdFlips}, band {audit.Band:G4} ({audit.InBand} in band) -> {outPath}.audit.json"));
    }

    // An index built by 'engine build' holds the corpus rows under their row numbers: it must match the corpus file.
    private static IVectorIndex OpenPrebuilt(string dir, int d, Metric metric, int n, bool acceptLogLoss)
    {
        var idx = IndexDirectory.Open(dir, acceptLogLoss);
        string? problem = idx.Dimension != d ? $"dimension {idx.Dimension}, the corpus has {d}"
            : idx.Metric != metric ? $"metric {idx.Metric.ToShortName()}, --metric is {metric.ToShortName()}"
            : idx.Count != n ? $"{idx.Count} vectors, the corpus has {n}"
            : null;
        if (problem is null) return idx;
        idx.Dispose();
        throw new ArgumentException($"--index-dir '{dir}' holds an index with {problem}; build it from this corpus with 'engine build'.");
    }

    internal static IVectorIndex BuildIndex(string spec, float[] data, int d, Metric metric, int threads, string device = "cpu", Steps? steps = null, long[]? ids = null)
    {
        var idx = DeviceIndexes.Create(spec, d, metric, device);
        try
        {
            steps ??= Steps.Plain(TextWriter.Null);
            if (!idx.IsTrained) steps.Run($"train {idx.Description}", progress => idx.Train(data, progress));
            ids ??= Enumerable.Range(0, data.Length / d).Select(i => (long)i).ToArray();
            steps.Run($"add {ids.Length:N0} vectors", progress => idx.Add(data, ids, progress));
            return idx;
        }
        catch
        {
            idx.Dispose();
            throw;
        }
    }

    // Rows per block read while streaming (about 64 MiB of floats), and the floats a streamed build trains on at most.
    private const int StreamBlockFloats = 1 << 24;
    private const long StreamTrainFloats = 1L << 28;

    /// <summary>
    /// Builds the index from the corpus file block by block: trains (when the spec needs training) on an even sample of
    /// at most min(2^28, <paramref name="maxFloats"/>) floats (every s-th row), then adds the rows in blocks of at most
    /// min(2^24, maxFloats) floats with ids = row numbers. The corpus is never held whole in memory, so it may hold
    /// more floats than one .NET array (2^31 − 1).
    /// </summary>
    internal static IVectorIndex BuildIndexStreaming(string spec, string path, int n, int d, Metric metric, string device, Steps steps, long maxFloats)
    {
        var idx = DeviceIndexes.Create(spec, d, metric, device);
        try
        {
            using var reader = Engine.Data.VectorFileReader.Open(path);
            int block = (int)Math.Max(1, Math.Min(StreamBlockFloats, maxFloats) / d);
            long trainFloats = Math.Min(StreamTrainFloats, maxFloats);
            var buffer = new float[(long)block * d];
            // Reads the file block by block into buffer and hands each block (first row, rows) to visit.
            void ForEachBlock(Action<long, int> visit)
            {
                for (long r0 = 0; r0 < n; r0 += block)
                {
                    int m = (int)Math.Min(block, n - r0);
                    reader.ReadRows(r0, m, buffer.AsSpan(0, m * d));
                    visit(r0, m);
                }
            }
            if (!idx.IsTrained)
            {
                long stride = Math.Max(1, ((long)n * d + trainFloats - 1) / trainFloats);
                int rows = (int)((n + stride - 1) / stride);
                var sample = new float[(long)rows * d];
                int taken = 0;
                steps.Run($"read a training sample ({rows:N0} rows, every {stride})", _ => ForEachBlock((r0, m) =>
                {
                    for (long r = (r0 + stride - 1) / stride * stride; r < r0 + m; r += stride)
                        buffer.AsSpan((int)(r - r0) * d, d).CopyTo(sample.AsSpan(taken++ * d, d));
                }));
                steps.Run($"train {idx.Description}", progress => idx.Train(sample.AsSpan(0, taken * d), progress));
            }
            var ids = new long[block];
            steps.Run($"add {n:N0} vectors in blocks of {block:N0}", progress => ForEachBlock((r0, m) =>
            {
                for (int i = 0; i < m; i++) ids[i] = r0 + i;
                idx.Add(buffer.AsSpan(0, m * d), ids.AsSpan(0, m));
                progress.Report(new BuildProgress("add", r0 + m, n));
            }));
            return idx;
        }
        catch
        {
            idx.Dispose();
            throw;
        }
    }

    internal static (int, int) ParseRange(string s)
    {
        var parts = s.Split(':');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int lo)
            || !int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int hi))
            throw new ArgumentException($"--range '{s}' is not MIN:MAX (two integers).");
        return (lo, hi);
    }

    private static SamplingStrategy ParseSampling(string s) => s.ToLowerInvariant() switch
    {
        "top" => SamplingStrategy.Top,
        "uniform" or "random" => SamplingStrategy.Uniform,
        "simans" => SamplingStrategy.SimAns,
        "softmax" => SamplingStrategy.Softmax,
        _ => throw new ArgumentException($"Unknown --sampling '{s}': expected top, random (uniform), simans or softmax."),
    };

    private static ShortfallPolicy ParseShortfall(string s) => s.ToLowerInvariant() switch
    {
        "drop" => ShortfallPolicy.Drop,
        "pad" => ShortfallPolicy.PadFromDeeper,
        "keep" => ShortfallPolicy.KeepShort,
        _ => throw new ArgumentException($"Unknown --shortfall '{s}': expected drop, pad or keep."),
    };
}

/// <summary>
/// Minimal private .fvecs/.ivecs reader for the mining commands (each row: int32 dimension, then the values).
/// To be swapped for the data helper's readers once they are on main.
/// </summary>
internal static class VecsFile
{
    /// <summary>Any vector file the data layer reads (fvecs, bvecs, fbin, u8bin, npy, idx) as row-major floats.</summary>
    /// <param name="path">The file.</param>
    /// <param name="what">The option that named it (e.g. <c>--corpus</c>), for the error message.</param>
    /// <exception cref="ArgumentException">The file holds no rows or rows of dimension 0: there is nothing to mine with.</exception>
    public static (float[] Data, int Dimension) ReadFvecs(string path, string what)
    {
        var m = Engine.Data.VectorFiles.ReadFloats(path);
        if (m.Rows == 0 || m.Columns <= 0)
            throw new ArgumentException($"{what} file '{path}' holds no vectors ({m.Rows} rows of dimension {m.Columns}); it needs at least one row of dimension >= 1.");
        return (m.Data, m.Columns);
    }

    /// <summary>Rows and dimension of any vector file the data layer reads, without reading its rows.</summary>
    /// <exception cref="ArgumentException">No rows or rows of dimension 0, or more rows than an int counts.</exception>
    public static (int Rows, int Dimension) Shape(string path, string what)
    {
        using var reader = Engine.Data.VectorFileReader.Open(path);
        if (reader.Count == 0 || reader.Dimension <= 0)
            throw new ArgumentException($"{what} file '{path}' holds no vectors ({reader.Count} rows of dimension {reader.Dimension}); it needs at least one row of dimension >= 1.");
        if (reader.Count > int.MaxValue)
            throw new ArgumentException($"{what} file '{path}' holds {reader.Count} rows; at most {int.MaxValue} are supported.");
        return ((int)reader.Count, reader.Dimension);
    }

    /// <summary>Rows of an .ivecs file as id arrays (rows may differ in length); keeps the first <paramref name="take"/> when positive.</summary>
    public static long[][] ReadIvecsRows(string path, int take)
    {
        byte[] bytes = ReadAll(path);
        var rows = new List<long[]>();
        int off = 0;
        while (off < bytes.Length)
        {
            if (off + 4 > bytes.Length) throw new FormatException($"'{path}' is truncated at byte {off}.");
            int len = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(off));
            if (len < 0 || off + 4 + 4L * len > bytes.Length) throw new FormatException($"'{path}' row {rows.Count} has an impossible length {len}.");
            int keep = take > 0 ? Math.Min(take, len) : len;
            var row = new long[keep];
            for (int j = 0; j < keep; j++) row[j] = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(off + 4 + 4 * j));
            rows.Add(row);
            off += 4 + 4 * len;
        }
        return rows.ToArray();
    }

    private static byte[] ReadAll(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"File '{path}' does not exist.", path);
        return File.ReadAllBytes(path);
    }
}
