using Engine.Mining.Evaluation;

namespace Engine.Tests.Beyond;

public class RangeCalibratedCutoffTests(Xunit.Abstractions.ITestOutputHelper output)
{
    // Per query: 50 candidates, 5 relevant scoring ~ offset + 1, the rest ~ offset (σ 0.25); the offset varies by query
    // (queries live in denser or sparser regions), which a single raw threshold cannot follow.
    private static List<LabelledQuery> Queries(int count, int seed, double offsetSpread)
    {
        var rng = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var list = new List<LabelledQuery>();
        for (int q = 0; q < count; q++)
        {
            double offset = (rng.NextDouble() * 2 - 1) * offsetSpread;
            var scores = new float[50];
            var relevant = new bool[50];
            for (int i = 0; i < 50; i++)
            {
                relevant[i] = i < 5;
                scores[i] = (float)(offset + (relevant[i] ? 1 : 0) + 0.25 * Normal());
            }
            list.Add(new LabelledQuery(scores, relevant));
        }
        return list;
    }

    [Fact]
    public void Calibrated_cutoff_beats_the_global_threshold_when_queries_shift()
    {
        var cutoff = CalibratedCutoff.Fit(Queries(300, 1, 1.5));
        var (calibrated, plain) = cutoff.Evaluate(Queries(300, 2, 1.5));
        output.WriteLine($"shifted queries: calibrated {calibrated} vs plain {plain}");
        Assert.True(calibrated.F1 > plain.F1 + 0.1, $"calibrated {calibrated} vs plain {plain}");
        Assert.InRange(calibrated.Precision, 0, 1);
        Assert.InRange(calibrated.Recall, 0, 1);
    }

    [Fact]
    public void Without_shifts_it_is_as_good_as_the_global_threshold()
    {
        var cutoff = CalibratedCutoff.Fit(Queries(300, 3, 0));
        var (calibrated, plain) = cutoff.Evaluate(Queries(300, 4, 0));
        output.WriteLine($"unshifted queries: calibrated {calibrated} vs plain {plain}");
        Assert.True(calibrated.F1 >= plain.F1 - 0.03, $"calibrated {calibrated} vs plain {plain}");
        Assert.True(plain.F1 > 0.8);
    }

    [Fact]
    public void Bad_inputs_are_clear_errors()
    {
        Assert.Throws<ArgumentException>(() => CalibratedCutoff.Fit([]));
        Assert.Throws<ArgumentException>(() => CalibratedCutoff.Fit([new LabelledQuery([1f, 2f], [true, true])]));
        Assert.Throws<ArgumentException>(() => CalibratedCutoff.Fit([new LabelledQuery([1f, float.NaN], [true, false])]));
        Assert.Throws<ArgumentException>(() => CalibratedCutoff.Fit([new LabelledQuery([1f, 2f], [true])]));
        Assert.Throws<ArgumentOutOfRangeException>(() => CalibratedCutoff.Fit(Queries(5, 1, 1), topK: 0));
    }
}
