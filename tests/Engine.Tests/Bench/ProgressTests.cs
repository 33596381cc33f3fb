using Engine.Data;
using Engine.Index;
using Engine.Mining;

namespace Engine.Tests.Bench;

/// <summary>The library's IProgress&lt;BuildProgress&gt; overloads: what they report, and that they change nothing else.</summary>
public class ProgressTests
{
    private sealed class Recorder : IProgress<BuildProgress>
    {
        public List<BuildProgress> Reports { get; } = [];
        public void Report(BuildProgress value) => Reports.Add(value);
    }

    private static float[] Data(int n, int d, int seed) => SyntheticData.Clustered(n, d, 16, seed, threads: 1);

    [Fact]
    public void Ivf_train_reports_every_kmeans_iteration_and_trains_the_same_index()
    {
        const int n = 6000, d = 16;
        var data = Data(n, d, 21);
        var recorder = new Recorder();
        using var withProgress = IndexFactory.Create("IVF32,PQ8x4fs,RFlat", d, Metric.L2);
        using var plain = IndexFactory.Create("IVF32,PQ8x4fs,RFlat", d, Metric.L2);
        withProgress.Train(data, recorder);
        plain.Train(data);

        var kmeans = recorder.Reports.Where(r => r.Stage == "k-means").ToList();
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), kmeans.Select(r => r.Done));
        Assert.All(kmeans, r => Assert.Equal(10, r.Total));
        Assert.Contains(recorder.Reports, r => r.Stage == "pq codebooks");
        Assert.Equal(new BuildProgress("train", 1, 1), recorder.Reports[^1]);

        // Same seed, same index: searches agree exactly.
        var ids = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        withProgress.Add(data, ids);
        plain.Add(data, ids);
        var (l1, l2) = (new long[10 * 20], new long[10 * 20]);
        withProgress.Search(data.AsSpan(0, 20 * d), 10, new float[200], l1);
        plain.Search(data.AsSpan(0, 20 * d), 10, new float[200], l2);
        Assert.Equal(l2, l1);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Spann_train_and_maintain_report_monotone_progress_and_build_the_same_index(bool background)
    {
        const int n = 4000, d = 8;
        var data = Data(n, d, 24);
        var ids = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        // Train on a tenth of the rows with small postings, so adding the rest splits many postings.
        var options = new Engine.Index.Spann.SpannOptions { PostingSize = 8, MaxPostingSize = 24 };
        var recorder = new Recorder();
        using var withProgress = new Engine.Index.Spann.SpannIndex(d, Metric.L2, options) { BackgroundMaintenance = background };
        using var plain = new Engine.Index.Spann.SpannIndex(d, Metric.L2, options) { BackgroundMaintenance = background };
        withProgress.Train(data.AsSpan(0, n / 10 * d), recorder);
        plain.Train(data.AsSpan(0, n / 10 * d));
        withProgress.Add(data, ids);
        plain.Add(data, ids);
        withProgress.Maintain(recorder);
        plain.Maintain();

        var clustering = recorder.Reports.Where(r => r.Stage == "balanced clustering").ToList();
        Assert.Equal(0, clustering[0].Done);
        Assert.Equal(new BuildProgress("balanced clustering", n / 10, n / 10), clustering[^1]);
        Assert.Equal(clustering.Select(r => r.Done).Order(), clustering.Select(r => r.Done));
        Assert.InRange(clustering.Count, 2, 102); // every 1 % at most, plus the start
        Assert.Contains(new BuildProgress("train", 1, 1), recorder.Reports);

        var maintain = recorder.Reports.Where(r => r.Stage == "maintain").ToList();
        Assert.True(maintain.Count >= 2, $"{maintain.Count} maintain reports");
        Assert.Equal(maintain.Select(r => r.Done).Order(), maintain.Select(r => r.Done));
        Assert.All(maintain, r => Assert.True(r.Done <= r.Total, $"{r.Done} > {r.Total}"));
        Assert.True(maintain[^1].Done > 0 && maintain[^1].Done == maintain[^1].Total, $"last report {maintain[^1]}");
        Assert.Equal(0, withProgress.PendingMaintenance);

        // Progress changes nothing: the same postings and the same answers (with foreground maintenance, whose order
        // is deterministic; background maintenance interleaves with the adds differently from run to run).
        if (background) return;
        Assert.Equal(plain.PostingCount, withProgress.PostingCount);
        var (l1, l2) = (new long[10 * 20], new long[10 * 20]);
        withProgress.Search(data.AsSpan(0, 20 * d), 10, new float[200], l1);
        plain.Search(data.AsSpan(0, 20 * d), 10, new float[200], l2);
        Assert.Equal(l2, l1);
    }

    [Fact]
    public void Add_with_progress_goes_in_batches_up_to_every_row()
    {
        const int n = 10_000, d = 8;
        var data = Data(n, d, 22);
        var ids = Enumerable.Range(0, n).Select(i => (long)i * 3).ToArray();
        var recorder = new Recorder();
        using IVectorIndex index = IndexFactory.Create("Flat", d, Metric.L2);
        index.Add(data, ids, recorder);
        Assert.Equal(n, index.Count);
        Assert.All(recorder.Reports, r => Assert.Equal(("add", (long)n), (r.Stage, r.Total)));
        var done = recorder.Reports.Select(r => r.Done).ToList();
        Assert.Equal(0, done[0]);
        Assert.Equal(n, done[^1]);
        Assert.Equal(done.OrderBy(x => x), done);
        Assert.Equal(1 + (n + BuildProgress.AddBatch(n) - 1) / BuildProgress.AddBatch(n), done.Count);
        var row = new float[d];
        Assert.True(index.TryReconstruct(3L * (n - 1), row));
        Assert.Equal(data.AsSpan((n - 1) * d, d).ToArray(), row);
    }

    [Theory]
    [InlineData("IVF16,PQ4x4fs,RFlat")]
    [InlineData("IVF16,Flat")]
    [InlineData("IVF16,RaBitQfs1,Refine(SQ8)")]
    public void Ivf_add_with_progress_leaves_no_more_list_capacity_than_one_bulk_add(string spec)
    {
        // A progress add loads in ~50 batches; lists grown by doubling batch after batch used to keep up to half of
        // their capacity unused (the bench's bytes per vector 1.5× what the rows need). The trim at its end gives it back.
        const int n = 30_000, d = 8;
        var data = Data(n, d, 24);
        var ids = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        using var bulk = (Engine.Index.Ivf.IvfIndex)IndexFactory.Create(spec, d, Metric.L2);
        using var batched = (Engine.Index.Ivf.IvfIndex)IndexFactory.Create(spec, d, Metric.L2);
        bulk.Train(data);
        batched.Train(data);
        bulk.Add(data, ids);
        ((IVectorIndex)batched).Add(data, ids, new Recorder());
        Assert.Equal(bulk.MemoryBytes, batched.MemoryBytes);
        Assert.Equal(0, batched.TrimExcess());
        var p = new Engine.Index.Ivf.IvfSearchParameters { Probes = 4, RefineFactor = spec.Contains('R') ? 4 : null };
        var (l1, l2) = (new long[20 * 10], new long[20 * 10]);
        bulk.Search(data.AsSpan(0, 20 * d), 10, new float[200], l1, p);
        batched.Search(data.AsSpan(0, 20 * d), 10, new float[200], l2, p);
        Assert.Equal(l1, l2);
    }

    [Fact]
    public void Add_with_progress_checks_every_row_before_adding_any()
    {
        const int n = 9000, d = 4;
        var data = Data(n, d, 23);
        data[(n - 1) * d] = float.NaN; // in the last batch
        var ids = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        using IVectorIndex index = IndexFactory.Create("Flat", d, Metric.L2);
        Assert.Throws<ArgumentException>(() => index.Add(data, ids, new Recorder()));
        Assert.Equal(0, index.Count);
        data[(n - 1) * d] = 0;
        ids[n - 1] = -5;
        Assert.Contains("negative", Assert.Throws<ArgumentException>(() => index.Add(data, ids, new Recorder())).Message);
        Assert.Throws<ArgumentException>(() => index.Add(data, ids.AsSpan(1), new Recorder()));
        Assert.Equal(0, index.Count);
    }

    [Fact]
    public void Build_trains_adds_and_reports_each_stage()
    {
        const int n = 5000, d = 8;
        var data = Data(n, d, 24);
        var recorder = new Recorder();
        using var index = IndexFactory.Create("IVF16,Flat", d, Metric.L2);
        IndexBuild.Build(index, data, recorder);
        Assert.Equal(n, index.Count);
        var stages = recorder.Reports.Select(r => r.Stage).Distinct().ToList();
        Assert.Equal(["k-means", "train", "add"], stages);
        Assert.Throws<InvalidOperationException>(() => IndexBuild.Build(index, data));
    }

    [Fact]
    public void Mining_reports_anchors_done_per_chunk()
    {
        const int n = 3000, d = 8, anchors = 250;
        var data = Data(n, d, 25);
        using var index = IndexFactory.Create("Flat", d, Metric.L2);
        IndexBuild.Build(index, data);
        var anchorIds = Enumerable.Range(0, anchors).Select(i => (long)i).ToArray();
        var positives = anchorIds.Select(a => new[] { (a + 1) % n }).ToArray();
        var miner = new HardNegativeMiner(index, new MiningOptions { NumNegatives = 3, RangeMax = 30, ChunkSize = 100, Threads = 1 });
        var recorder = new Recorder();
        var report = new MiningReport(1);
        var rows = miner.Mine(MiningInput.FromCorpusIds(anchorIds, positives), report, recorder).ToList();
        Assert.Equal([100L, 200L, 250L], recorder.Reports.Select(r => r.Done));
        Assert.All(recorder.Reports, r => Assert.Equal(("mine", (long)anchors), (r.Stage, r.Total)));
        Assert.Equal(new HardNegativeMiner(index, miner.Options).MineAll(MiningInput.FromCorpusIds(anchorIds, positives), out _).Count, rows.Count);
    }

    [Fact]
    public void Usage_line_names_the_command_engine()
    {
        var saved = Console.Out;
        var sw = new StringWriter();
        Console.SetOut(sw);
        try { Assert.Equal(0, Engine.Cli.Program.Main(["--help"])); }
        finally { Console.SetOut(saved); }
        Assert.Contains("engine [command] [options]", sw.ToString());
        Assert.DoesNotContain("Engine.Cli [command]", sw.ToString());
    }
}
