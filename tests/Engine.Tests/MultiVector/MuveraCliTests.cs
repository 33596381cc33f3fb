using System.Text.Json;
using Engine.Cli;
using Engine.Data;
using Engine.Index.MultiVector;
using Engine.MultiVector;
using Engine.Tests.Support;

namespace Engine.Tests.MultiVector;

public class MuveraCliTests
{
    private static int Run(params string[] args) => Program.BuildRoot().Parse(args).Invoke();

    /// <summary>Seeded 28 × 28 "images": strokes of bright pixels on a dark background.</summary>
    private static float[] Images(Random rng, int n)
    {
        var x = new float[n * 784];
        for (int i = 0; i < n; i++)
            for (int s = 0; s < 6; s++)
            {
                int r = rng.Next(28), c = rng.Next(28), dr = rng.Next(-1, 2), dc = rng.Next(-1, 2);
                for (int t = 0; t < 8; t++, r = Math.Clamp(r + dr, 0, 27), c = Math.Clamp(c + dc, 0, 27)) x[i * 784 + r * 28 + c] = 255;
            }
        return x;
    }

    [Fact]
    public void Muvera_patches_make_sixteen_tokens_per_image_with_exact_chamfer_ground_truth()
    {
        var rng = new Random(8);
        var images = Images(rng, 3);
        var set = ImagePatches.FromImages(images, 28, 7);
        Assert.Equal((3, 51, 48), (set.Count, set.Dimension, set.TotalTokens));
        for (int t = 0; t < set.TotalTokens; t++)
            Assert.Equal(1.0, Engine.Distance.Distances.SquaredNorm(set.Tokens.Slice(t * 51, 51)), 4);
        // Token 5 of image 0 is patch row 1, column 1: pixels (7..13, 7..13) and position (-1/3, -1/3) before normalising.
        var token = set.Item(0).Slice(5 * 51, 51);
        Assert.Equal(token[49], token[50]);
        Assert.True(token[49] < 0);
        Assert.Equal(images[7 * 28 + 7] > 0, token[0] > 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => ImagePatches.FromImages(images, 28, 5));
        Assert.Throws<ArgumentException>(() => ImagePatches.FromImages(images.AsSpan(1), 28, 7));
    }

    [Fact]
    public void Muvera_cli_writes_a_patch_set_and_benches_it_against_brute_force_chamfer()
    {
        using var dir = new TempDir();
        var rng = new Random(21);
        new DataSet("tiny-images", Metric.L2, 784, Images(rng, 300), Images(rng, 12)).Save(dir.File("img"));
        Assert.Equal(0, Run("data", "mv-patches", "--from", dir.File("img"), "--out", dir.File("mv"), "--nq", "10", "--k", "20", "--threads", "1"));
        var mv = MultiVectorDataSet.Load(dir.File("mv"));
        Assert.Equal((300, 10, 20, 51), (mv.Base.Count, mv.Queries.Count, mv.GroundTruthK, mv.Base.Dimension));
        for (int q = 0; q < mv.Queries.Count; q++)
            Assert.Equal(MuveraTestData.ExactTopK(mv.Base, mv.Queries.Item(q), 1)[0], mv.GroundTruth![q * 20]);

        var output = new StringWriter();
        var options = new MuveraOptions { SimHashBits = 3, ProjectionDimension = 8, Repetitions = 8 };
        MultiVectorCommands.Bench(dir.File("mv"), 10, "Flat", options, TokenEncoding.F32,
            Engine.Bench.BenchRun.ParseSweeps(["candidates=10,300"]), 0, 1, 1, exact: true, output, TextWriter.Null);
        var rows = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(3, rows.Length);
        Assert.Equal(10, rows[0].GetProperty("chamfer_evals_per_query").GetDouble());
        Assert.Equal(300, rows[1].GetProperty("chamfer_evals_per_query").GetDouble());
        Assert.Equal(1.0, rows[1].GetProperty("recall").GetDouble(), 3); // every item re-ranked = exact
        Assert.True(rows[0].GetProperty("recall").GetDouble() < rows[1].GetProperty("recall").GetDouble());
        Assert.Equal("exact-chamfer", rows[2].GetProperty("spec").GetString());
        Assert.Equal(1.0, rows[2].GetProperty("recall").GetDouble(), 3);
        Assert.All(rows, r => Assert.True(r.GetProperty("qps").GetDouble() > 0 && r.GetProperty("build_seconds").GetDouble() >= 0));
    }

    [Fact]
    public void Muvera_cli_rejects_bad_arguments_with_exit_code_2()
    {
        using var dir = new TempDir();
        var rng = new Random(4);
        new DataSet("tiny", Metric.L2, 10, new float[50], new float[20]).Save(dir.File("notimages"));
        Assert.Equal(2, Run("data", "mv-patches", "--from", dir.File("notimages"), "--out", dir.File("x")));
        Assert.Equal(2, Run("data", "mv-patches", "--from", dir.File("missing"), "--out", dir.File("x")));
        new DataSet("img", Metric.L2, 784, Images(rng, 20), Images(rng, 3)).Save(dir.File("img"));
        Assert.Equal(0, Run("data", "mv-patches", "--from", dir.File("img"), "--out", dir.File("mv"), "--k", "5", "--threads", "1"));
        Assert.Equal(2, Run("mv", "bench", "--data", dir.File("mv"), "--k", "10")); // ground truth holds 5
        Assert.Equal(2, Run("mv", "bench", "--data", dir.File("mv"), "--k", "2", "--sweep", "candidates=0"));
        Assert.Equal(2, Run("mv", "bench", "--data", dir.File("mv"), "--k", "2", "--tokens", "q8"));
        Assert.Equal(2, Run("mv", "bench", "--data", dir.File("mv"), "--k", "2", "--ksim", "40"));
        Assert.Equal(2, Run("mv", "bench", "--data", dir.File("mv"), "--k", "2", "--sweep", "bogus=3"));
        Assert.False(Directory.Exists(dir.File("x")));
    }
}
