using Engine.Cli;
using Engine.Data;
using Engine.Index;
using Engine.Mining;
using Engine.Mining.Training;

namespace Engine.Tests.Training;

public class TrainerTests
{
    private static IVectorIndex FlatIp(int d) => IndexFactory.Create("Flat", d, Metric.InnerProduct);
    private static IVectorIndex FlatL2(int d) => IndexFactory.Create("Flat", d, Metric.L2);

    private sealed record Setup(float[] X, int[] Y, float[] Xq, int[] Yq, long[] Positives, int D);

    private static Setup Data(long seed, int n = 2000, int nq = 300, int d = 32)
    {
        var gen = new DistractedClasses(d, classes: 8, distractors: 8, seed, distractorScale: 3f);
        var (x, y) = gen.Sample(SampleStream.Base, n, threads: 2);
        var (xq, yq) = gen.Sample(SampleStream.Query, nq, threads: 2);
        return new Setup(x, y, xq, yq, DesignatedPositives.NearestWithSameLabel(x, d, y, FlatL2, threads: 2), d);
    }

    private static double HeldOut(MlpEmbedder model, Setup s)
    {
        using var index = FlatIp(model.OutputDimension);
        index.Add(model.Embed(s.X, 2), Enumerable.Range(0, s.Y.Length).Select(i => (long)i).ToArray());
        return RetrievalQuality.PrecisionAtK(index, model.Embed(s.Xq, 2), s.Yq, s.Y, 10, threads: 2);
    }

    private static ContrastiveTrainingOptions Options(int threads) => new()
    {
        AnchorsPerEpoch = 1000, Seed = 9, Threads = threads, Mining = TrainDemoCommand.TrainDemoMining(new TrainDemoSettings(Negatives: 6, Seed: 9)),
    };

    [Fact]
    public void Training_on_mined_negatives_improves_held_out_precision()
    {
        var s = Data(seed: 21);
        var model = new MlpEmbedder(s.D, 32, 16, seed: 21);
        double before = HeldOut(model, s);
        var trainer = new ContrastiveTrainer(model, FlatIp, Options(2));
        EpochStats? last = null;
        for (int epoch = 0; epoch < 3; epoch++) last = trainer.TrainEpoch(s.X, s.Positives, epoch, s.Y);
        double after = HeldOut(model, s);
        // Measured 0.4173 → 0.5227 (seed 21); the floor leaves room for floating-point differences across CPUs.
        Assert.True(after >= 0.48 && after >= before + 0.08, $"held-out precision@10 {before:F4} → {after:F4}");
        Assert.InRange(last!.Tuples, 900, 1000);             // rows the guards leave without any negative are not trained on
        Assert.InRange(last.Negatives, 5 * last.Tuples, 6 * last.Tuples);
        Assert.InRange(last.FalseNegativeShare, 0, 1);
        Assert.True(last.Mining.SkippedMargin > 0, "the margin guard never fired");
    }

    [Fact]
    public void Training_is_deterministic_for_a_seed_at_any_thread_count()
    {
        var s = Data(seed: 22, n: 800, nq: 50, d: 16);
        float[] Run(int threads)
        {
            var model = new MlpEmbedder(s.D, 16, 8, seed: 5);
            var trainer = new ContrastiveTrainer(model, FlatIp, Options(threads) with { AnchorsPerEpoch = 300 });
            for (int epoch = 0; epoch < 2; epoch++) trainer.TrainEpoch(s.X, s.Positives, epoch);
            return model.Parameters;
        }
        var one = Run(1);
        Assert.Equal(one, Run(2));
        Assert.NotEqual(new MlpEmbedder(s.D, 16, 8, seed: 5).Parameters, one);
    }

    [Fact]
    public void Designated_positives_are_the_nearest_same_label_items()
    {
        var s = Data(seed: 23, n: 400, nq: 1, d: 8);
        for (int i = 0; i < s.Y.Length; i++)
        {
            long p = s.Positives[i];
            Assert.NotEqual(i, p);
            Assert.Equal(s.Y[i], s.Y[p]);
            double best = double.MaxValue;
            for (int j = 0; j < s.Y.Length; j++)
                if (j != i && s.Y[j] == s.Y[i]) best = Math.Min(best, L2(s.X, i, j, s.D));
            Assert.Equal(best, L2(s.X, i, (int)p, s.D), 3);
        }
    }

    private static double L2(float[] x, int a, int b, int d)
    {
        double s = 0;
        for (int j = 0; j < d; j++) { double t = x[a * d + j] - x[b * d + j]; s += t * t; }
        return s;
    }

    [Fact]
    public void Bad_training_input_is_rejected_with_a_clear_message()
    {
        var s = Data(seed: 24, n: 200, nq: 1, d: 8);
        var trainer = new ContrastiveTrainer(new MlpEmbedder(s.D, 8, 4, 1), FlatIp, Options(1));
        var bad = (long[])s.Positives.Clone();
        bad[3] = 3;
        var ex = Assert.Throws<ArgumentException>(() => trainer.TrainEpoch(s.X, bad, 0));
        Assert.Contains("positiveOf[3]", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => trainer.TrainEpoch(s.X, new long[5], 0));
        Assert.Contains("positiveOf has 5 entries", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => trainer.TrainEpoch(s.X, Enumerable.Repeat(-1L, 200).ToArray(), 0));
        Assert.Contains("No corpus row has a positive", ex.Message);
        ex = Assert.Throws<ArgumentOutOfRangeException>(() => new ContrastiveTrainer(new MlpEmbedder(4, 4, 4, 1), FlatIp, new ContrastiveTrainingOptions { Temperature = 0 }));
        Assert.Contains("Temperature", ex.Message);
        var wrongDim = new ContrastiveTrainer(new MlpEmbedder(s.D, 8, 4, 1), _ => FlatIp(3), Options(1));
        Assert.Throws<InvalidOperationException>(() => wrongDim.TrainEpoch(s.X, s.Positives, 0));
    }

    [Fact]
    public void Distracted_classes_are_reproducible_per_row()
    {
        var gen = new DistractedClasses(8, 4, 3, seed: 2);
        var (a, la) = gen.Sample(SampleStream.Base, 50, threads: 1);
        var (b, lb) = gen.Sample(SampleStream.Base, 80, threads: 2);
        Assert.Equal(a, b.AsSpan(0, a.Length).ToArray());
        Assert.Equal(la, lb[..50]);
        Assert.All(lb, l => Assert.InRange(l, 0, 3));
        Assert.NotEqual(a, new DistractedClasses(8, 4, 3, seed: 3).Sample(SampleStream.Base, 50, 1).Vectors);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DistractedClasses(8, 4, 3, 1, distractorScale: 0));
    }
}
