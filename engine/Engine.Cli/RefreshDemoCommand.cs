using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Engine.Data;
using Engine.Index;
using Engine.Mining;
using Engine.Mining.Refresh;
using Engine.Mining.Training;

namespace Engine.Cli;

/// <summary>Settings of <c>engine demo refresh</c>.</summary>
internal sealed record RefreshDemoSettings(int N = 6000, int HeldOut = 1000, int D = 64, int Classes = 16, int Distractors = 16,
    int Hidden = 64, int Dim = 32, int Steps = 400, int Batch = 64, int Negatives = 8, int RefreshEvery = 20, double Fraction = 0.25,
    int MaxStaleness = -1, string Index = "Flat", int ChunkSize = 32, long Seed = 7, int Threads = 0);

/// <summary>What <c>engine demo refresh</c> measured.</summary>
internal sealed record RefreshDemoResult(double Before, double After, int SnapshotsUsed, long MaxStaleness, double MeanStaleness,
    double TrainMsPerStep, double OverheadMsPerStep, double MiningWaitMsPerStep, double EmbedMsPerStep, double BackgroundMiningMsPerStep,
    double BackgroundRefreshMsPerStep);

/// <summary>
/// <c>engine demo refresh</c>: the <see cref="MiningRefresher"/> protocol in a training loop. A small MLP trains step by
/// step on negatives mined in the background (the next batch is mined while the current one trains); every
/// <c>--refresh-every</c> steps the oldest <c>--fraction</c> of the corpus is re-embedded, pushed, and swapped in by a
/// background refresh. Prints held-out precision@10 before and after, the snapshots and staleness the rows reported,
/// and the refresher's overhead on the training step.
/// </summary>
internal static class RefreshDemoCommand
{
    public static Command Create()
    {
        var s = new RefreshDemoSettings();
        var (n, heldOut, d, classes, distractors, hidden, dim) = DemoDataOptions.Create(s.N, s.HeldOut, s.D, s.Classes, s.Distractors, s.Hidden, s.Dim);
        var steps = new Option<int>("--steps") { Description = "Training steps (one batch each).", DefaultValueFactory = _ => s.Steps };
        var batch = new Option<int>("--batch") { Description = "Anchors per step.", DefaultValueFactory = _ => s.Batch };
        var negatives = new Option<int>("--negatives") { Description = "Mined negatives per anchor.", DefaultValueFactory = _ => s.Negatives };
        var every = new Option<int>("--refresh-every") { Description = "Re-embed and push every this many steps (0 = never: a frozen index).", DefaultValueFactory = _ => s.RefreshEvery };
        var fraction = new Option<double>("--fraction") { Description = "Share of the corpus re-embedded at each refresh (the oldest first).", DefaultValueFactory = _ => s.Fraction };
        var stale = new Option<int>("--max-staleness") { Description = "Staleness bound in steps (negative = unbounded).", DefaultValueFactory = _ => s.MaxStaleness };
        var index = new Option<string>("--index") { Description = "Index spec of both snapshot copies (inner product).", DefaultValueFactory = _ => s.Index };
        var chunk = new Option<int>("--chunk") { Description = "Anchors per mining chunk (a swap waits for at most one).", DefaultValueFactory = _ => s.ChunkSize };
        var seed = new Option<long>("--seed") { Description = "Seed of data, model, batches and mining.", DefaultValueFactory = _ => s.Seed };
        var threads = new Option<int>("--threads") { Description = "Threads (0 = all cores).", DefaultValueFactory = _ => s.Threads };
        var cmd = new Command("refresh", "Trains a small MLP step by step on negatives mined in the background by a MiningRefresher that re-embeds the oldest items every N steps; prints quality, staleness and the refresher's overhead per step.")
        {
            n, heldOut, d, classes, distractors, hidden, dim, steps, batch, negatives, every, fraction, stale, index, chunk, seed, threads,
        };
        cmd.SetAction(r => Run(new RefreshDemoSettings(r.GetValue(n), r.GetValue(heldOut), r.GetValue(d), r.GetValue(classes), r.GetValue(distractors),
            r.GetValue(hidden), r.GetValue(dim), r.GetValue(steps), r.GetValue(batch), r.GetValue(negatives), r.GetValue(every), r.GetValue(fraction),
            r.GetValue(stale), r.GetValue(index)!, r.GetValue(chunk), r.GetValue(seed), r.GetValue(threads)), Console.Out, out _));
        return cmd;
    }

    /// <summary>Runs the demo; returns the exit code.</summary>
    internal static int Run(RefreshDemoSettings s, TextWriter o, out RefreshDemoResult result)
    {
        DemoDataOptions.Check(s.N, s.HeldOut, s.D, s.Classes, s.Distractors, s.Hidden, s.Dim);
        DemoDataOptions.Check(s.Steps, 1, "--steps");
        DemoDataOptions.Check(s.Batch, 1, "--batch");
        DemoDataOptions.Check(s.Negatives, 1, "--negatives");
        DemoDataOptions.Check(s.RefreshEvery, 0, "--refresh-every");
        DemoDataOptions.Check(s.ChunkSize, 1, "--chunk");
        if (!(s.Fraction > 0 && s.Fraction <= 1)) throw new ArgumentException($"--fraction must be in (0, 1] (got {s.Fraction}).");
        if (s.Threads < 0) throw new ArgumentException($"--threads must be 0 (all cores) or positive (got {s.Threads}).");
        result = RunAsync(s, o).GetAwaiter().GetResult();
        return 0;
    }

    private static async Task<RefreshDemoResult> RunAsync(RefreshDemoSettings s, TextWriter o)
    {
        int threads = s.Threads > 0 ? s.Threads : Environment.ProcessorCount;
        var gen = new DistractedClasses(s.D, s.Classes, s.Distractors, s.Seed, 3f);
        var (x, y) = gen.Sample(SampleStream.Base, s.N, threads);
        var (xq, yq) = gen.Sample(SampleStream.Query, s.HeldOut, threads);
        long[] positiveOf = DesignatedPositives.NearestWithSameLabel(x, s.D, y, dim => IndexFactory.Create("Flat", dim, Metric.L2), threads);
        long[] candidates = [.. Enumerable.Range(0, s.N).Where(i => positiveOf[i] >= 0).Select(i => (long)i)];
        if (candidates.Length < s.Batch) throw new ArgumentException($"--batch {s.Batch} is larger than the {candidates.Length} items that have a positive.");
        Func<int, IVectorIndex> createIndex = dim => IndexFactory.Create(s.Index, dim, Metric.InnerProduct);
        // The guards of `engine demo train`, at the automatic candidate depth, on half the threads: mining runs beside the
        // training step, not in place of it.
        var mining = TrainDemoCommand.TrainDemoMining(new TrainDemoSettings(Negatives: s.Negatives, Seed: s.Seed)) with
        {
            CandidateDepth = 0, Threads = Math.Max(1, threads / 2),
        };
        var model = new MlpEmbedder(s.D, s.Hidden, s.Dim, (ulong)s.Seed);
        var trainer = new ContrastiveTrainer(model, createIndex, new ContrastiveTrainingOptions { Seed = (ulong)s.Seed, Threads = threads, Mining = mining });
        double before = TrainDemoCommand.Quality(model, x, y, xq, yq, s.Dim, threads, Metric.InnerProduct);
        int perRefresh = Math.Max(1, (int)(s.Fraction * s.N));
        int? bound = s.MaxStaleness >= 0 ? s.MaxStaleness : null;
        o.WriteLine($"data     {s.N} training + {s.HeldOut} held-out items, d={s.D}, {s.Classes} classes + {s.Distractors} distractor clusters, seed {s.Seed}");
        o.WriteLine($"model    MLP {s.D} → {s.Hidden} → {s.Dim}, InfoNCE, {s.Steps} steps of {s.Batch} anchors, {s.Negatives} mined negatives each");
        o.WriteLine($"refresh  '{s.Index}' (two copies), " + (s.RefreshEvery == 0 ? "never refreshed (frozen index)" :
            $"every {s.RefreshEvery} steps re-embed the oldest {perRefresh} items ({s.Fraction.ToString(CultureInfo.InvariantCulture)} of the corpus)") +
            $", chunks of {s.ChunkSize} anchors, staleness bound {(bound is int b ? $"{b} steps" : "none")}");
        o.WriteLine($"before   held-out precision@10: {before:F4}");

        var total = Stopwatch.StartNew();
        var clock = new Stopwatch();
        double trainS = 0, waitS = 0, apiS = 0, embedS = 0, forcedS = 0, miningS = 0;
        var snapshots = new HashSet<long>();
        long staleMax = 0, staleSum = 0, rowsSeen = 0;
        var options = new MiningRefresherOptions { Mining = mining, ChunkSize = s.ChunkSize, MaxStaleness = bound };
        RefresherStatistics stats;
        await using (var refresher = new MiningRefresher(model.Embed(x, threads), s.Dim, createIndex, options))
        {
            var batch = Batch(s, candidates, 1);
            var pending = MineFor(refresher, model, x, s.D, positiveOf, batch, 0, threads);
            for (int step = 1; step <= s.Steps; step++)
            {
                if (s.RefreshEvery > 0 && step % s.RefreshEvery == 0)
                    Push(refresher, refresher.Due(perRefresh), step, model, x, s.D, threads, clock, ref apiS, ref embedS);
                clock.Restart();
                var mined = await pending; // mined in the background while the previous step trained
                waitS += clock.Elapsed.TotalSeconds;
                miningS += mined.Report.WallSeconds;
                var rows = new List<MinedRow>(mined.Rows.Count);
                foreach (var r in mined.Rows)
                {
                    rows.Add(r.Row with { Anchor = batch[r.Row.Anchor] });
                    snapshots.Add(r.Snapshot);
                    staleMax = Math.Max(staleMax, r.Staleness);
                    staleSum += r.Staleness;
                    rowsSeen++;
                }
                if (step < s.Steps)
                {
                    if (bound is int limit && step - refresher.Current.OldestStep > limit)
                    {
                        // The bound needs fresher vectors than the snapshot holds: push what is overdue and wait.
                        clock.Restart();
                        int overdue = refresher.Overdue(step);
                        if (overdue > 0) Push(refresher, refresher.Due(overdue), step, model, x, s.D, threads, clock, ref apiS, ref embedS);
                        await refresher.RefreshAsync();
                        forcedS += clock.Elapsed.TotalSeconds;
                    }
                    batch = Batch(s, candidates, step + 1);
                    clock.Restart();
                    pending = MineFor(refresher, model, x, s.D, positiveOf, batch, step, threads);
                    embedS += clock.Elapsed.TotalSeconds;
                }
                clock.Restart();
                trainer.TrainStep(rows, x);
                trainS += clock.Elapsed.TotalSeconds;
            }
            stats = refresher.Statistics;
        }
        double totalS = total.Elapsed.TotalSeconds;
        double after = TrainDemoCommand.Quality(model, x, y, xq, yq, s.Dim, threads, Metric.InnerProduct);
        double perStep(double seconds) => seconds * 1000 / s.Steps;
        double overhead = apiS + forcedS;
        o.WriteLine($"after    held-out precision@10: {after:F4} (before {before:F4})");
        o.WriteLine($"rows     from {snapshots.Count} snapshots; staleness mean {(rowsSeen == 0 ? 0 : (double)staleSum / rowsSeen):F1} steps, max {staleMax}");
        o.WriteLine($"per step train {perStep(trainS):F2} ms; encoder forward (anchors, re-embedding) {perStep(embedS):F2} ms; loop {perStep(totalS):F2} ms");
        o.WriteLine($"         mining {perStep(miningS):F2} ms in the background, of which the training thread waited {perStep(waitS):F2} ms (mining slower than the step)");
        o.WriteLine($"         refresher overhead on the training thread {perStep(overhead):F3} ms ({100 * overhead / trainS:F1} % of the train step) = due/push {perStep(apiS):F3} + forced refresh waits {perStep(forcedS):F3}; " +
            $"{stats.Refreshes} background refreshes upserted {stats.VectorsWritten} vectors in {stats.RefreshTime.TotalMilliseconds:F0} ms ({perStep(stats.RefreshTime.TotalSeconds):F2} ms/step off the training thread)");
        return new RefreshDemoResult(before, after, snapshots.Count, staleMax, rowsSeen == 0 ? 0 : (double)staleSum / rowsSeen,
            perStep(trainS), perStep(overhead), perStep(waitS), perStep(embedS), perStep(miningS), perStep(stats.RefreshTime.TotalSeconds));
    }

    // Re-embeds `ids` with the current model and pushes them (refresh in the background). The encoder forward counts as
    // embedding time, the refresher calls as API time.
    private static void Push(MiningRefresher refresher, long[] ids, long step, MlpEmbedder model, float[] x, int d, int threads,
        Stopwatch clock, ref double apiS, ref double embedS)
    {
        clock.Restart();
        var vectors = model.Embed(Gather(x, d, ids), threads);
        embedS += clock.Elapsed.TotalSeconds;
        clock.Restart();
        refresher.Push(ids, vectors, step, refresh: true);
        apiS += clock.Elapsed.TotalSeconds;
    }

    // Starts mining a batch in the background: anchors embedded by the current model, the designated positive, the
    // anchor itself excluded.
    private static Task<RefreshedMining> MineFor(MiningRefresher refresher, MlpEmbedder model, float[] x, int d, long[] positiveOf, long[] batch,
        long step, int threads)
    {
        var anchors = model.Embed(Gather(x, d, batch), threads);
        var positives = new long[batch.Length][];
        var exclusions = new long[batch.Length][];
        for (int i = 0; i < batch.Length; i++)
        {
            positives[i] = [positiveOf[batch[i]]];
            exclusions[i] = [batch[i]];
        }
        return refresher.MineAsync(MiningInput.FromVectors(anchors, model.OutputDimension, positives, exclusions), step);
    }

    // The batch of a step: the Batch candidates with the smallest hash of (seed, step, id).
    private static long[] Batch(RefreshDemoSettings s, long[] candidates, int step)
    {
        var keys = new ulong[candidates.Length];
        for (int i = 0; i < keys.Length; i++) keys[i] = CounterRng.Hash((ulong)s.Seed, 0xBA7C_0000UL + (ulong)step, (ulong)candidates[i]);
        var order = (long[])candidates.Clone();
        Array.Sort(keys, order);
        return order[..s.Batch];
    }

    private static float[] Gather(float[] x, int d, long[] ids)
    {
        var rows = new float[ids.Length * d];
        for (int i = 0; i < ids.Length; i++) x.AsSpan(checked((int)ids[i] * d), d).CopyTo(rows.AsSpan(i * d, d));
        return rows;
    }
}
