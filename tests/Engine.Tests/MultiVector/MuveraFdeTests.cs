using Engine.MultiVector;

namespace Engine.Tests.MultiVector;

public class MuveraFdeTests
{
    private static double Inner(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    [Fact]
    public void Without_projections_the_fde_score_never_exceeds_chamfer()
    {
        // Each query token meets, in its bucket, the mean of document tokens (or one filled token): a convex
        // combination can never beat the best single token, so <F_q, F_d> / R <= Chamfer exactly (up to rounding).
        var (docs, queries) = MuveraTestData.Make(40, 40, 24, seed: 11);
        var enc = new FixedDimensionalEncoder(24, new MuveraOptions { SimHashBits = 3, ProjectionDimension = 0, Repetitions = 5, Seed = 9 });
        var fq = new float[enc.OutputDimension];
        var fd = new float[enc.OutputDimension];
        for (int i = 0; i < queries.Count; i++)
        {
            enc.EncodeQuery(queries.Item(i), fq);
            for (int j = 0; j < docs.Count; j++)
            {
                enc.EncodeDocument(docs.Item(j), fd);
                double estimate = Inner(fq, fd) / 5;
                double chamfer = MuveraTestData.Chamfer(queries.Item(i), docs.Item(j), 24);
                Assert.True(estimate <= chamfer + 1e-4, $"q{i} d{j}: FDE {estimate} > Chamfer {chamfer}");
            }
        }
    }

    /// <summary>Fraction of random (Q, P) pairs whose normalised FDE score is within eps of NChamfer, and the mean error.</summary>
    private static (double Within, double MeanError) PaperBound(MuveraOptions o, int d, int maxDocTokens, float noise, double eps, int pairs, int seed)
    {
        var rng = new Random(seed);
        var enc = new FixedDimensionalEncoder(d, o);
        var fq = new float[enc.OutputDimension];
        var fd = new float[enc.OutputDimension];
        int within = 0;
        double sumError = 0;
        for (int t = 0; t < pairs; t++)
        {
            int np = rng.Next(2, maxDocTokens + 1), nqTokens = rng.Next(2, 9);
            var p = new float[np * d];
            for (int j = 0; j < np; j++) MuveraTestData.Unit(rng, d).CopyTo(p, j * d);
            var q = new float[nqTokens * d];
            for (int i = 0; i < nqTokens; i++)
            {
                // Half of the query tokens lie near a document token, the others anywhere on the sphere.
                var noiseDir = MuveraTestData.Unit(rng, d);
                if (i % 2 == 1) { noiseDir.CopyTo(q, i * d); continue; }
                var src = p.AsSpan(rng.Next(np) * d, d);
                double s = 0;
                for (int c = 0; c < d; c++) { q[i * d + c] = src[c] + noise * noiseDir[c]; s += q[i * d + c] * q[i * d + c]; }
                for (int c = 0; c < d; c++) q[i * d + c] /= (float)Math.Sqrt(s);
            }
            enc.EncodeQuery(q, fq);
            enc.EncodeDocument(p, fd);
            double estimate = Inner(fq, fd) / o.Repetitions / nqTokens;
            double nChamfer = MuveraTestData.Chamfer(q, p, d) / nqTokens;
            double err = Math.Abs(estimate - nChamfer);
            sumError += err;
            if (err <= eps) within++;
        }
        return (within / (double)pairs, sumError / pairs);
    }

    [Fact]
    public void Fde_inner_product_approximates_chamfer_within_the_paper_bound_on_random_sets()
    {
        // Theorem 2.1 of the MUVERA paper: for unit vectors and m = |Q| + |P|, once k_sim = O(log(m/delta)/eps) and
        // d_proj = O(log(m/(eps delta))/eps^2), |(1/|Q|)<F_q(Q), F_doc(P)> - NChamfer(Q, P)| <= eps with probability
        // >= 1 - delta. Checked with eps = 0.15, delta = 0.1 on 300 random pairs of small sets (m <= 16, so the
        // theorem's k_sim is reachable): 2^8 buckets, the inner +-1 projection on (d_proj = 48 < d = 64), R = 32.
        var o = new MuveraOptions { SimHashBits = 8, ProjectionDimension = 48, Repetitions = 32, Seed = 5 };
        var (within, mean) = PaperBound(o, 64, maxDocTokens: 8, noise: 0.1f, eps: 0.15, pairs: 300, seed: 2024);
        Assert.True(within >= 0.9, $"only {within:P1} of pairs within eps=0.15 (mean error {mean:F3})");
        // The bound is not vacuous: with one bucket (k_sim = 0) the document collapses to its mean and the same
        // pairs break it.
        var (coarse, coarseMean) = PaperBound(o with { SimHashBits = 0 }, 64, 8, 0.1f, 0.15, 300, 2024);
        Assert.True(coarse < 0.5, $"k_sim=0 kept {coarse:P1} of pairs within eps (mean error {coarseMean:F3}); the check cannot fail");
    }

    [Fact]
    public void Fde_is_within_eps_0_1_of_chamfer_for_1_minus_delta_of_random_sets_with_parameters_from_eps_and_delta()
    {
        // Theorem 2.1 at eps = 0.1, delta = 0.1 with the parameters derived from eps, delta and m = |Q| + |P| <= 16
        // (the sets PaperBound draws: |Q| <= 8, |P| <= 8, d = 64):
        const double eps = 0.1, delta = 0.1;
        const int m = 16, d = 64;
        // d_proj = ln(m / (eps delta)) / eps^2 = 738 >= d: the Johnson-Lindenstrauss dimension the theorem asks for is
        // above d, so the inner projection may as well be the identity (d_proj = 0), which adds no error at all.
        int dProj = (int)Math.Ceiling(Math.Log(m / (eps * delta)) / (eps * eps));
        Assert.Equal(738, dProj);
        Assert.True(dProj >= d);
        // k_sim = O(log(m / delta) / eps): the paper leaves the constant open; 1/5 gives ceil(ln(160) / 0.5) = 11 bits
        // (a constant of 1/4 would already need 13, above MuveraOptions.MaxSimHashBits = 12).
        int kSim = (int)Math.Ceiling(Math.Log(m / delta) / (5 * eps));
        Assert.Equal(11, kSim);
        // The theorem bounds one repetition with probability >= 1 - delta; the index averages R of them, and
        // R = ceil(log2(1 / delta)) = 4 independent repetitions tighten the concentration.
        int reps = (int)Math.Ceiling(Math.Log2(1 / delta));
        var o = new MuveraOptions { SimHashBits = kSim, ProjectionDimension = 0, Repetitions = reps, Seed = 17 };
        var (within, mean) = PaperBound(o, d, maxDocTokens: 8, noise: 0.1f, eps: eps, pairs: 300, seed: 4242);
        Assert.True(within >= 1 - delta, $"only {within:P1} of pairs within eps={eps} (mean error {mean:F3}); the theorem promises {1 - delta:P0}");
        Assert.True(mean <= eps, $"mean error {mean:F3} above eps={eps}");
        // The parameters matter: a quarter of the bits (k_sim = 3, 8 buckets) breaks the bound on the same pairs.
        var (coarse, coarseMean) = PaperBound(o with { SimHashBits = 3 }, d, 8, 0.1f, eps, 300, 4242);
        Assert.True(coarse < 1 - delta, $"k_sim=3 kept {coarse:P1} of pairs within eps={eps} (mean error {coarseMean:F3}); the check cannot fail");
    }

    [Fact]
    public void Encodings_are_seeded_and_partial_repetitions_leave_zeros()
    {
        var (docs, queries) = MuveraTestData.Make(3, 3, 16, seed: 1);
        var o = new MuveraOptions { SimHashBits = 2, ProjectionDimension = 8, Repetitions = 4, Seed = 123 };
        var a = new FixedDimensionalEncoder(16, o);
        var b = new FixedDimensionalEncoder(16, o);
        var c = new FixedDimensionalEncoder(16, o with { Seed = 124 });
        var fa = new float[a.OutputDimension];
        var fb = new float[a.OutputDimension];
        var fc = new float[a.OutputDimension];
        a.EncodeDocument(docs.Item(0), fa);
        b.EncodeDocument(docs.Item(0), fb);
        c.EncodeDocument(docs.Item(0), fc);
        Assert.Equal(fa, fb);
        Assert.NotEqual(fa, fc);
        Assert.Equal(4 * 4 * 8, a.OutputDimension);
        a.EncodeQuery(queries.Item(0), fa, repetitions: 2);
        Assert.Contains(fa[..64], v => v != 0);
        Assert.All(fa[64..], v => Assert.Equal(0f, v));
        var final = new FixedDimensionalEncoder(16, o with { FinalDimension = 40 });
        Assert.Equal(40, final.OutputDimension);
    }

    [Fact]
    public void Bad_inputs_get_clear_errors()
    {
        var enc = new FixedDimensionalEncoder(8, new MuveraOptions { SimHashBits = 2, ProjectionDimension = 4, Repetitions = 2 });
        var fde = new float[enc.OutputDimension];
        var e = Assert.Throws<ArgumentException>(() => enc.EncodeQuery([], fde));
        Assert.Contains("empty", e.Message);
        Assert.Throws<ArgumentException>(() => enc.EncodeQuery(new float[12], fde));
        Assert.Throws<ArgumentOutOfRangeException>(() => enc.EncodeQuery(new float[8], fde, repetitions: 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FixedDimensionalEncoder(8, new MuveraOptions { SimHashBits = 13 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FixedDimensionalEncoder(8, new MuveraOptions { Repetitions = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FixedDimensionalEncoder(8, new MuveraOptions { ProjectionDimension = -1 }));

        var empty = Assert.Throws<ArgumentException>(() => MultiVectorSet.FromItems([[new float[3]], []]));
        Assert.Contains("Item 1 has no tokens", empty.Message);
        var mixed = Assert.Throws<ArgumentException>(() => MultiVectorSet.FromItems([[new float[3], new float[3]], [new float[3], new float[4]]]));
        Assert.Contains("item 1 token 1 has length 4", mixed.Message);
        Assert.Throws<ArgumentException>(() => new MultiVectorSet(3, new float[9], [1, 0, 2]));
        Assert.Throws<ArgumentException>(() => new MultiVectorSet(3, new float[9], [1, 1]));
        var nan = Assert.Throws<ArgumentException>(() => new MultiVectorSet(2, [1, 2, float.NaN, 0], [1, 1]));
        Assert.Contains("Item 1", nan.Message);
    }
}
