using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Engine.Data;
using Engine.Index;
using Engine.Mining;
using Engine.Mining.Training;

namespace Engine.Cli;

/// <summary>Settings of <c>engine demo train</c>.</summary>
internal sealed record TrainDemoSettings(int N = 6000, int HeldOut = 1000, int D = 64, int Classes = 16, int Distractors = 16,
    int Hidden = 64, int Dim = 32, int Epochs = 5, int Anchors = 3000, int Negatives = 8, long Seed = 7, int Threads = 0, float DistractorScale = 3f,
    float RelativeMargin = 0.1f, float DuplicateThreshold = 0.98f, int RangeMin = 0);

/// <summary>
/// <c>engine demo train</c>: trains a small MLP in process on seeded synthetic labelled data, re-mining hard
/// negatives with <see cref="HardNegativeMiner"/> every epoch; prints held-out precision@10 before and after.
/// </summary>
internal static class TrainDemoCommand
{
    public static Command Create()
    {
        var s = new TrainDemoSettings();
        var (n, heldOut, d, classes, distractors, hidden, dim) = DemoDataOptions.Create(s.N, s.HeldOut, s.D, s.Classes, s.Distractors, s.Hidden, s.Dim);
        var epochs = new Option<int>("--epochs") { Description = "Epochs (each re-embeds, re-indexes and re-mines).", DefaultValueFactory = _ => s.Epochs };
        var anchors = new Option<int>("--anchors") { Description = "Anchors per epoch.", DefaultValueFactory = _ => s.Anchors };
        var negatives = new Option<int>("--negatives") { Description = "Mined negatives per anchor.", DefaultValueFactory = _ => s.Negatives };
        var seed = new Option<long>("--seed") { Description = "Seed of data, model, anchors and mining.", DefaultValueFactory = _ => s.Seed };
        var threads = new Option<int>("--threads") { Description = "Threads (0 = all cores).", DefaultValueFactory = _ => s.Threads };
        var scale = new Option<float>("--distractor-scale") { Description = "Factor on the distractor draw (larger = harder input space).", DefaultValueFactory = _ => s.DistractorScale };
        var margin = new Option<float>("--relative-margin") { Description = "Guard: drop candidates scoring above pos − |pos|·m (negative = off).", DefaultValueFactory = _ => s.RelativeMargin };
        var dup = new Option<float>("--dup-threshold") { Description = "Guard: drop candidates with cosine to the positive above t (negative = off).", DefaultValueFactory = _ => s.DuplicateThreshold };
        var rangeMin = new Option<int>("--range-min") { Description = "Guard: skip this many best surviving candidates.", DefaultValueFactory = _ => s.RangeMin };
        var cmd = new Command("train", "Trains a small MLP in process with InfoNCE on negatives mined by the engine every epoch; prints held-out precision@10 before and after.")
        {
            n, heldOut, d, classes, distractors, hidden, dim, epochs, anchors, negatives, seed, threads, scale, margin, dup, rangeMin,
        };
        cmd.SetAction(r => Run(new TrainDemoSettings(r.GetValue(n), r.GetValue(heldOut), r.GetValue(d), r.GetValue(classes), r.GetValue(distractors),
            r.GetValue(hidden), r.GetValue(dim), r.GetValue(epochs), r.GetValue(anchors), r.GetValue(negatives), r.GetValue(seed), r.GetValue(threads), r.GetValue(scale),
            r.GetValue(margin), r.GetValue(dup), r.GetValue(rangeMin)), Console.Out));
        return cmd;
    }

    /// <summary>Runs the demo; returns the exit code.</summary>
    internal static int Run(TrainDemoSettings s, TextWriter o) => Run(s, o, out _);

    internal static int Run(TrainDemoSettings s, TextWriter o, out (double Before, double After) result)
    {
        DemoDataOptions.Check(s.N, s.HeldOut, s.D, s.Classes, s.Distractors, s.Hidden, s.Dim);
        DemoDataOptions.Check(s.Epochs, 1, "--epochs");
        DemoDataOptions.Check(s.Anchors, 1, "--anchors");
        DemoDataOptions.Check(s.Negatives, 1, "--negatives");
        if (s.Threads < 0) throw new ArgumentException($"--threads must be 0 (all cores) or positive (got {s.Threads}).");
        int threads = s.Threads > 0 ? s.Threads : Environment.ProcessorCount;
        var total = Stopwatch.StartNew();
        var gen = new DistractedClasses(s.D, s.Classes, s.Distractors, s.Seed, s.DistractorScale);
        var (x, y) = gen.Sample(SampleStream.Base, s.N, threads);
        var (xq, yq) = gen.Sample(SampleStream.Query, s.HeldOut, threads);
        Func<int, IVectorIndex> flatIp = dim => IndexFactory.Create("Flat", dim, Metric.InnerProduct);
        long[] positiveOf = DesignatedPositives.NearestWithSameLabel(x, s.D, y, dim => IndexFactory.Create("Flat", dim, Metric.L2), threads);
        o.WriteLine($"data     {s.N} training + {s.HeldOut} held-out items, d={s.D}, {s.Classes} classes + {s.Distractors} distractor clusters (×{gen.DistractorScale}), seed {s.Seed}");
        o.WriteLine($"         positive of each item: its nearest same-class item in the input space (a designated pair)");
        o.WriteLine($"raw      held-out precision@10 in the input space (L2): {Quality(null, x, y, xq, yq, s.D, threads, Metric.L2):F4}");

        var model = new MlpEmbedder(s.D, s.Hidden, s.Dim, (ulong)s.Seed);
        var options = new ContrastiveTrainingOptions
        {
            AnchorsPerEpoch = s.Anchors, Seed = (ulong)s.Seed, Threads = threads,
            Mining = TrainDemoMining(s),
        };
        var trainer = new ContrastiveTrainer(model, flatIp, options);
        double before = Quality(model, x, y, xq, yq, s.Dim, threads, Metric.InnerProduct);
        o.WriteLine($"model    MLP {s.D} → {s.Hidden} → {s.Dim} (ReLU, unit output), InfoNCE τ={options.Temperature.ToString(CultureInfo.InvariantCulture)}, Adam lr={options.LearningRate.ToString(CultureInfo.InvariantCulture)}, batch {options.BatchSize}");
        o.WriteLine($"mining   Flat (ip) rebuilt every epoch; {s.Negatives} negatives from survivors [{options.Mining.RangeMin}, {options.Mining.RangeMax}), relative margin {Fmt(options.Mining.RelativeMargin)}, near-duplicate threshold {Fmt(options.Mining.DuplicateThreshold)}, {options.Mining.Sampling} sampling");
        o.WriteLine($"before   held-out precision@10: {before:F4}");
        for (int epoch = 0; epoch < s.Epochs; epoch++)
        {
            var e = trainer.TrainEpoch(x, positiveOf, epoch, y);
            double q = Quality(model, x, y, xq, yq, s.Dim, threads, Metric.InnerProduct);
            o.WriteLine($"epoch {epoch + 1,2}  loss {e.Loss:F4}  tuples {e.Tuples}  false negatives {e.FalseNegativeShare:P1}  skipped margin {e.Mining.SkippedMargin} dup {e.Mining.SkippedNearDuplicates}  " +
                $"held-out precision@10 {q:F4}  time embed {e.EmbedSeconds:F2}s index {e.IndexSeconds:F2}s mine {e.MineSeconds:F2}s train {e.TrainSeconds:F2}s");
        }
        double after = Quality(model, x, y, xq, yq, s.Dim, threads, Metric.InnerProduct);
        o.WriteLine($"after    held-out precision@10: {after:F4} (before {before:F4}); total {total.Elapsed.TotalSeconds:F1} s");
        result = (before, after);
        return 0;
    }

    /// <summary>
    /// The demo's mining options: uniform sampling from a window of survivors after the false-negative guards,
    /// padded from deeper candidates when the guards leave a row short (see docs/training.md).
    /// </summary>
    internal static MiningOptions TrainDemoMining(TrainDemoSettings s)
    {
        if (s.RangeMin < 0) throw new ArgumentException($"--range-min must be at least 0 (got {s.RangeMin}).");
        int rangeMax = s.RangeMin + Math.Max(50, 2 * s.Negatives);
        return new MiningOptions
        {
            NumNegatives = s.Negatives, RangeMin = s.RangeMin, RangeMax = rangeMax, CandidateDepth = rangeMax + 450,
            RelativeMargin = s.RelativeMargin >= 0 ? s.RelativeMargin : null,
            DuplicateThreshold = s.DuplicateThreshold >= 0 ? s.DuplicateThreshold : null,
            Sampling = SamplingStrategy.Uniform, Shortfall = ShortfallPolicy.PadFromDeeper, Seed = (ulong)s.Seed,
        };
    }

    internal static double Quality(MlpEmbedder? model, float[] x, int[] y, float[] xq, int[] yq, int dim, int threads, Metric metric)
    {
        float[] corpus = model?.Embed(x, threads) ?? x;
        float[] queries = model?.Embed(xq, threads) ?? xq;
        using var index = IndexFactory.Create("Flat", dim, metric);
        var ids = new long[y.Length];
        for (int i = 0; i < ids.Length; i++) ids[i] = i;
        index.Add(corpus, ids);
        return RetrievalQuality.PrecisionAtK(index, queries, yq, y, 10, threads);
    }

    private static string Fmt(float? v) => v?.ToString(CultureInfo.InvariantCulture) ?? "off";
}
