using System.Text.Json;
using Engine.Cli;
using Engine.Data;
using Engine.Mining.Output;
using MineCliTests = Engine.Tests.Mining.MineCliTests;
using Engine.Tests.Support;

namespace Engine.Tests.Cli;

/// <summary>
/// <c>--device gpu</c> end to end. Without a CUDA device the process-wide context is ILGPU's CPU accelerator, so
/// these run everywhere; on a CUDA machine they exercise the card.
/// </summary>
public class DeviceTests
{
    [Theory]
    [InlineData("Flat", "l2")]
    [InlineData("IVF16,Flat", "cosine")]
    public void Mine_on_gpu_gives_the_negatives_of_cpu(string spec, string metric)
    {
        const int n = 2000, d = 13, anchors = 30;
        using var tmp = new TempDir();
        MineCliTests.WriteVecs(tmp.File("base.fvecs"), SyntheticData.Clustered(n, d, 20, seed: 17), d);
        MineCliTests.WriteVecs(tmp.File("query.fvecs"), SyntheticData.ClusteredQueries(anchors, d, 20, seed: 17), d);
        MineCliTests.WriteIvecs(tmp.File("pos.ivecs"), Enumerable.Range(0, anchors).Select(a => new long[] { a * 11 }).ToArray());
        List<Engine.Mining.MinedRow> Mine(string device)
        {
            string outPath = tmp.File(device + ".jsonl");
            // probes = nlist: the candidate search is exhaustive, so GPU- and CPU-trained centroids give the same candidates.
            string[] args = ["mine", "--corpus", tmp.File("base.fvecs"), "--anchors", tmp.File("query.fvecs"), "--positives", tmp.File("pos.ivecs"),
                "--index", spec, "--metric", metric, "--negatives", "5", "--range", "1:40", "--seed", "3", "--threads", "2",
                "--device", device, "--out", outPath, .. spec == "Flat" ? Array.Empty<string>() : ["--probes", "16"]];
            Assert.Equal(0, Program.BuildRoot().Parse(args).Invoke());
            return JsonlMiningWriter.Read(outPath).ToList();
        }
        var cpu = Mine("cpu");
        var gpu = Mine("gpu");
        Assert.StartsWith("gpu:", DeviceIndexes.Describe("gpu"));
        Assert.Equal(anchors, cpu.Count);
        Assert.Equal(cpu.Select(r => r.Anchor), gpu.Select(r => r.Anchor));
        for (int r = 0; r < cpu.Count; r++)
        {
            Assert.Equal(cpu[r].Negatives.Length, gpu[r].Negatives.Length);
            for (int j = 0; j < cpu[r].Negatives.Length; j++)
            {
                float[] s = cpu[r].Scores;
                float tol = 1e-4f * Math.Max(1, Math.Abs(s[j]));
                Assert.True(Math.Abs(s[j] - gpu[r].Scores[j]) <= tol, $"row {r} negative {j}: {gpu[r].Scores[j]} vs {s[j]}");
                bool tied = (j > 0 && Math.Abs(s[j] - s[j - 1]) <= tol) || (j + 1 < s.Length && Math.Abs(s[j] - s[j + 1]) <= tol);
                if (!tied) Assert.Equal(cpu[r].Negatives[j], gpu[r].Negatives[j]);
            }
        }
    }

    [Theory]
    [InlineData("IVF16,Flat", "probes=2")]
    [InlineData("SPANN(size=32,probes=6)", null)]
    public void Bench_on_gpu_trains_ivf_and_spann_on_the_accelerator(string spec, string? sweep)
    {
        using var dir = new TempDir();
        SyntheticData.ClusteredDataSet("tiny", 3000, 50, 12, 16, seed: 8, Metric.L2, groundTruthK: 10).Save(dir.Path);
        var sweeps = sweep is null ? [] : BenchOptions.ParseSweeps([sweep]);
        var cpu = BenchRow(dir.Path, spec, sweeps, "cpu");
        var gpu = BenchRow(dir.Path, spec, sweeps, "gpu");
        Assert.Equal("cpu", cpu.GetProperty("device").GetString());
        Assert.Matches("^gpu:(cuda|ilgpu-cpu)$", gpu.GetProperty("device").GetString());
        Assert.Equal(cpu.GetProperty("spec").GetString(), gpu.GetProperty("spec").GetString());
        double cpuRecall = cpu.GetProperty("recall").GetDouble(), gpuRecall = gpu.GetProperty("recall").GetDouble();
        Assert.True(cpuRecall >= 0.6, $"CPU recall {cpuRecall}");
        Assert.True(Math.Abs(gpuRecall - cpuRecall) <= 0.03, $"{spec}: GPU-trained recall {gpuRecall} vs CPU-trained {cpuRecall}");
        if (spec.StartsWith("SPANN", StringComparison.Ordinal)) Assert.True(gpu.GetProperty("disk_bytes").GetInt64() > 0);
    }

    // RaBitQ lists scan on the device under --device gpu (IvfIndex.DeviceScan): the bench row reports recall and the
    // candidates re-scored per query by the error-bound re-ranking, as on the CPU.
    [Theory]
    [InlineData("IVF16,RaBitQ4,RFlat")]
    [InlineData("IVF16,RaBitQfs1,RFlat")]
    [InlineData("IVF16,RaBitQfs4")]
    public void Bench_on_gpu_scans_rabitq_lists_on_the_accelerator(string spec)
    {
        using var dir = new TempDir();
        SyntheticData.ClusteredDataSet("tiny", 3000, 50, 24, 16, seed: 8, Metric.L2, groundTruthK: 10).Save(dir.Path);
        var sweeps = BenchOptions.ParseSweeps(["probes=4", "refine=" + (spec.Contains("RFlat", StringComparison.Ordinal) ? "4" : "1")]);
        var cpu = BenchRow(dir.Path, spec, sweeps, "cpu");
        var gpu = BenchRow(dir.Path, spec, sweeps, "gpu");
        Assert.Matches("^gpu:(cuda|ilgpu-cpu)$", gpu.GetProperty("device").GetString());
        double cpuRecall = cpu.GetProperty("recall").GetDouble(), gpuRecall = gpu.GetProperty("recall").GetDouble();
        Assert.True(cpuRecall >= 0.6, $"CPU recall {cpuRecall}");
        // The GPU row's centroids come from the device k-means: recall agrees to training noise, not exactly.
        Assert.True(Math.Abs(gpuRecall - cpuRecall) <= 0.03, $"{spec}: GPU recall {gpuRecall} vs CPU {cpuRecall}");
        bool refined = spec.Contains("RFlat", StringComparison.Ordinal);
        Assert.Equal(refined, gpu.TryGetProperty("rescored_per_query", out var rescored));
        if (refined) Assert.InRange(rescored.GetDouble(), 1, 40);
    }

    // The one JSON row of `engine bench` over the data set in dir.
    private static JsonElement BenchRow(string dir, string spec, IReadOnlyList<KeyValuePair<string, string[]>> sweeps, string device)
    {
        var sw = new StringWriter();
        Assert.Equal(0, BenchRunner.Run(new BenchOptions(dir, spec, 10, 2, sweeps, Json: true, Repeats: 1, QueryLimit: 0, device), sw));
        using var doc = JsonDocument.Parse(sw.ToString().Trim());
        return doc.RootElement.Clone();
    }

    // An index the device never touches (HNSW: no k-means, no device scan) is labelled cpu under --device gpu, so
    // its rows are not mistaken for accelerator measurements.
    [Fact]
    public void Bench_on_gpu_labels_an_index_the_device_never_touches_cpu()
    {
        using var dir = new TempDir();
        SyntheticData.ClusteredDataSet("tiny", 1000, 20, 8, 8, seed: 9, Metric.L2, groundTruthK: 10).Save(dir.Path);
        var sw = new StringWriter();
        Assert.Equal(0, BenchRunner.Run(new BenchOptions(dir.Path, "HNSW8", 10, 1, BenchOptions.ParseSweeps(["ef=16"]), Json: true, Repeats: 1, QueryLimit: 0, "gpu"), sw));
        using var doc = JsonDocument.Parse(sw.ToString().Trim());
        Assert.Equal("cpu", doc.RootElement.GetProperty("device").GetString());
    }

    [Fact]
    public void Unknown_device_is_a_clear_error()
    {
        var ex = Assert.Throws<ArgumentException>(() => DeviceIndexes.Create("Flat", 4, Metric.L2, "tpu"));
        Assert.Contains("tpu", ex.Message);
    }
}
