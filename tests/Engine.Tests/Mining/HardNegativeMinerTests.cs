using Engine.Mining;
using Engine.Mining.Hubness;
using Engine.Mining.Output;

namespace Engine.Tests.Mining;

public class HardNegativeMinerTests
{
    private static MiningInput Input(MiningTestData data) => MiningInput.FromVectors(data.Anchors, MiningTestData.D, data.Positives);

    [Fact]
    public void NearDuplicateGuard_RemovesPlantedDuplicates()
    {
        var data = MiningTestData.Create(seed: 1);
        using var index = data.BuildIndex(Metric.Cosine);
        var baseOptions = new MiningOptions { NumNegatives = 5, RangeMax = 30, Shortfall = ShortfallPolicy.KeepShort };

        // Without the guard the planted copies of the positive are the "hardest negatives".
        var unguarded = new HardNegativeMiner(index, baseOptions).MineAll(Input(data), out _);
        int leaked = unguarded.Sum(r => r.Negatives.Count(n => data.Duplicates[r.Anchor].Contains(n)));
        Assert.True(leaked >= data.Positives.Length, $"expected planted duplicates among unguarded negatives, got {leaked}");

        var guarded = new HardNegativeMiner(index, baseOptions with { DuplicateThreshold = 0.99f }).MineAll(Input(data), out var report);
        foreach (var row in guarded)
            Assert.DoesNotContain(row.Negatives, n => data.Duplicates[row.Anchor].Contains(n));
        Assert.Equal(data.Duplicates.Sum(d => d.Length), report.SkippedNearDuplicates);
        Assert.Equal(data.Positives.Length, report.SkippedPositives);
    }

    [Fact]
    public void RelativeMargin_IsSignSafeForNegativeScores()
    {
        var data = MiningTestData.Create(seed: 2, dupsPerPositive: 0);
        using var index = data.BuildIndex(Metric.L2); // L2 scores are negative squared distances
        var options = new MiningOptions { NumNegatives = 3, RangeMax = 50, RelativeMargin = 0.2f, CandidateDepth = 200, Shortfall = ShortfallPolicy.KeepShort };
        var miner = new HardNegativeMiner(index, options);
        // Far positives (a background point each), so many candidates score above the margin ceiling.
        var far = Enumerable.Range(0, data.Positives.Length).Select(a => new long[] { a }).ToArray();
        var rows = miner.MineAll(MiningInput.FromVectors(data.Anchors, MiningTestData.D, far), out var report);
        long expectedDropped = 0;
        foreach (var row in rows)
        {
            float pos = row.PositiveScores.Min();
            Assert.True(pos < 0);
            float ceiling = pos - MathF.Abs(pos) * 0.2f; // below the positive: negatives must be clearly farther
            Assert.True(ceiling < pos);
            Assert.Equal(ceiling, miner.MarginCeiling(pos));
            Assert.All(row.Scores, s => Assert.True(s <= ceiling, $"negative score {s} above ceiling {ceiling} (positive {pos})"));
            expectedDropped += CountAbove(index, data, (int)row.Anchor, row.Anchor, 200, ceiling);
        }
        Assert.Equal(expectedDropped, report.SkippedMargin);
        Assert.True(report.SkippedMargin > 0);
    }

    [Theory]
    [InlineData(0.2f)]   // far positives: the margin empties the shallow pass of most anchors, they go deeper
    [InlineData(null)]   // no score filter: the shallow pass is always enough
    public void ShallowFirstPass_GivesTheSameRowsAsAFullDepthSearch(float? margin)
    {
        var data = MiningTestData.Create(seed: 5, dupsPerPositive: 0);
        using var index = data.BuildIndex(Metric.L2);
        var far = Enumerable.Range(0, data.Positives.Length).Select(a => new long[] { a }).ToArray();
        var input = MiningInput.FromVectors(data.Anchors, MiningTestData.D, far);
        var options = new MiningOptions { NumNegatives = 4, RangeMin = 3, RangeMax = 60, RelativeMargin = margin, Shortfall = ShortfallPolicy.KeepShort };
        int fullDepth = 60 + 1 + (margin is null ? 0 : 60); // what the automatic depth fetches in one pass
        var adaptive = new HardNegativeMiner(index, options).MineAll(input, out var adaptiveReport);
        var full = new HardNegativeMiner(index, options with { CandidateDepth = fullDepth }).MineAll(input, out var fullReport);

        Assert.Equal(full.Count, adaptive.Count);
        for (int i = 0; i < full.Count; i++)
        {
            Assert.Equal(full[i].Anchor, adaptive[i].Anchor);
            Assert.Equal(full[i].Negatives, adaptive[i].Negatives);
            Assert.Equal(full[i].Scores, adaptive[i].Scores);
        }
        Assert.Equal(fullReport.RowsShort, adaptiveReport.RowsShort);
        Assert.Equal(0, fullReport.DeepenedAnchors);
        Assert.True(adaptiveReport.Candidates <= fullReport.Candidates);
        if (margin is null)
        {
            Assert.Equal(0, adaptiveReport.DeepenedAnchors);
            Assert.True(adaptiveReport.Candidates < fullReport.Candidates, "the shallow pass should fetch fewer candidates");
        }
        else Assert.InRange(adaptiveReport.DeepenedAnchors, 1, data.Positives.Length);
    }

    [Fact]
    public void IncludePositives_KeepsThemRankedAmongTheCandidates()
    {
        var data = MiningTestData.Create(seed: 7, dupsPerPositive: 0);
        using var index = data.BuildIndex(Metric.Cosine);
        var options = new MiningOptions { NumNegatives = 5, RangeMax = 20, CandidateDepth = 21, Shortfall = ShortfallPolicy.KeepShort };
        var input = Input(data);
        var plain = new HardNegativeMiner(index, options).MineAll(input, out var plainReport);
        var with = new HardNegativeMiner(index, options with { IncludePositives = true }).MineAll(input, out var withReport);
        Assert.Equal(0, withReport.SkippedPositives);
        Assert.Equal(data.Positives.Length, plainReport.SkippedPositives);
        var dist = new float[5]; var ids = new long[5];
        for (int a = 0; a < with.Count; a++)
        {
            // The same first five candidates as the index's own ranking: the positive stays in its place.
            index.Search(data.Anchors.AsSpan(a * MiningTestData.D, MiningTestData.D), 5, dist, ids);
            Assert.Equal(ids, with[a].Negatives);
            Assert.DoesNotContain(plain[a].Negatives, n => data.Positives[a].Contains(n));
        }
        Assert.Contains(with, r => r.Negatives.Contains(data.Positives[(int)r.Anchor][0]));
    }

    [Fact]
    public void AnchorIdOffset_SlicesGiveTheRowsOfOneCall()
    {
        var data = MiningTestData.Create(seed: 8, dupsPerPositive: 0);
        using var index = data.BuildIndex(Metric.Cosine);
        var options = new MiningOptions { NumNegatives = 4, RangeMax = 30, Sampling = SamplingStrategy.Uniform, Seed = 3, Shortfall = ShortfallPolicy.KeepShort };
        var whole = new HardNegativeMiner(index, options).MineAll(Input(data), out _);
        int n = data.Positives.Length, cut = n / 3, d = MiningTestData.D;
        var sliced = new List<MinedRow>();
        foreach (var (first, count) in new[] { (0, cut), (cut, n - cut) })
        {
            var part = MiningInput.FromVectors(data.Anchors.AsSpan(first * d, count * d).ToArray(), d, data.Positives.Skip(first).Take(count).ToArray());
            sliced.AddRange(new HardNegativeMiner(index, options with { AnchorIdOffset = first }).MineAll(part, out _));
        }
        Assert.Equal(whole.Select(r => r.Anchor), sliced.Select(r => r.Anchor));
        for (int i = 0; i < whole.Count; i++) Assert.Equal(whole[i].Negatives, sliced[i].Negatives);
        // without the offset the second slice draws other random negatives
        var unshifted = new HardNegativeMiner(index, options).MineAll(
            MiningInput.FromVectors(data.Anchors.AsSpan(cut * d).ToArray(), d, data.Positives.Skip(cut).ToArray()), out _);
        Assert.Contains(unshifted, r => !r.Negatives.SequenceEqual(whole[cut + (int)r.Anchor].Negatives));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HardNegativeMiner(index, options with { AnchorIdOffset = -1 }));
    }

    private static long CountAbove(IVectorIndex index, MiningTestData data, int anchor, long positive, int depth, float ceiling)
    {
        var dist = new float[depth]; var ids = new long[depth];
        index.Search(data.Anchors.AsSpan(anchor * MiningTestData.D, MiningTestData.D), depth, dist, ids);
        long n = 0;
        for (int j = 0; j < depth; j++)
            if (ids[j] >= 0 && ids[j] != positive && index.Metric.ToScore(dist[j]) > ceiling) n++;
        return n;
    }

    [Theory]
    [InlineData(ShortfallPolicy.Drop)]
    [InlineData(ShortfallPolicy.KeepShort)]
    [InlineData(ShortfallPolicy.PadFromDeeper)]
    public void Shortfall_CountsMatchBruteForceReference(ShortfallPolicy policy)
    {
        var data = MiningTestData.Create(seed: 3, anchors: 30, background: 120, dupsPerPositive: 1);
        using var index = data.BuildIndex(Metric.InnerProduct);
        int n = (int)index.Count;
        var options = new MiningOptions
        {
            NumNegatives = 4, RangeMin = 2, RangeMax = 8, CandidateDepth = n, MinScore = 6f,
            Shortfall = policy, ChunkSize = 7,
        };
        var rows = new HardNegativeMiner(index, options).MineAll(Input(data), out var report);

        // Reference: full exact ranking, same rules, computed here independently.
        long shortRows = 0, padded = 0;
        var expected = new List<(long Anchor, long[] Negs)>();
        for (int a = 0; a < data.Positives.Length; a++)
        {
            var dist = new float[n]; var ids = new long[n];
            index.Search(data.Anchors.AsSpan(a * MiningTestData.D, MiningTestData.D), n, dist, ids);
            var survivors = Enumerable.Range(0, n).Where(j => ids[j] != data.Positives[a][0] && dist[j] >= 6f).Select(j => ids[j]).ToList();
            var window = survivors.Skip(2).Take(6).ToList();
            var deeper = survivors.Skip(8).ToList();
            var chosen = window.Take(4).ToList();
            if (chosen.Count < 4)
            {
                shortRows++;
                if (policy == ShortfallPolicy.Drop) continue;
                if (policy == ShortfallPolicy.PadFromDeeper) { int before = chosen.Count; chosen.AddRange(deeper.Take(4 - chosen.Count)); padded += chosen.Count - before; }
            }
            expected.Add((a, chosen.ToArray()));
        }
        Assert.True(shortRows > 0 && shortRows < data.Positives.Length, $"test data should make some rows short (got {shortRows})");
        Assert.Equal(shortRows, report.ShortfallRows);
        Assert.Equal(policy == ShortfallPolicy.Drop ? shortRows : 0, report.RowsDropped);
        Assert.Equal(padded, report.NegativesPadded);
        Assert.Equal(expected.Count, rows.Count);
        Assert.Equal(expected.Count, report.RowsWritten);
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(expected[i].Anchor, rows[i].Anchor);
            Assert.Equal(expected[i].Negs, rows[i].Negatives);
        }
        Assert.Equal(rows.Count(r => r.Negatives.Length < 4), report.RowsShort);
    }

    [Theory]
    [InlineData(SamplingStrategy.Top)]
    [InlineData(SamplingStrategy.Uniform)]
    [InlineData(SamplingStrategy.SimAns)]
    [InlineData(SamplingStrategy.Softmax)]
    public void Output_IsIdenticalForOneAndTwoThreads(SamplingStrategy sampling)
    {
        var data = MiningTestData.Create(seed: 4, anchors: 60, hubs: 3);
        using var index = data.BuildIndex(Metric.L2);
        var hub = HubnessAnalyzer.Analyze(index, data.CorpusIds, new HubnessOptions { K = 5 });
        var options = new MiningOptions
        {
            NumNegatives = 5, RangeMin = 1, RangeMax = 40, Sampling = sampling, Seed = 7, ChunkSize = 16,
            MaxHandOutsPerItem = 6, Temperature = 1, SimAnsA = 0.5,
            HubnessGamma = sampling == SamplingStrategy.Top ? 0 : 1, KOccurrence = hub.Occurrence,
        };
        using var tmp = new TempDir();
        var corpusAnchors = MiningInput.FromCorpusIds(data.Positives.Select(p => p[0]).ToArray(),
            data.Positives.Select(p => new[] { p[0] + 1 }).ToArray());
        foreach (var (input, name) in new[] { (Input(data), "vec"), (corpusAnchors, "corpus") })
        {
            new HardNegativeMiner(index, options with { Threads = 1 }).MineToFile(input, tmp.File(name + "1.jsonl"), MiningOutputFormat.Jsonl);
            new HardNegativeMiner(index, options with { Threads = 2 }).MineToFile(input, tmp.File(name + "2.jsonl"), MiningOutputFormat.Jsonl);
            var one = File.ReadAllBytes(tmp.File(name + "1.jsonl"));
            Assert.NotEmpty(one);
            Assert.Equal(one, File.ReadAllBytes(tmp.File(name + "2.jsonl")));
        }
        // Another seed changes stochastic selections (so the comparison above can fail).
        if (sampling != SamplingStrategy.Top)
        {
            new HardNegativeMiner(index, options with { Seed = 8 }).MineToFile(Input(data), tmp.File("seed8.jsonl"), MiningOutputFormat.Jsonl);
            Assert.NotEqual(File.ReadAllBytes(tmp.File("vec1.jsonl")), File.ReadAllBytes(tmp.File("seed8.jsonl")));
        }
    }

    [Fact]
    public void CorpusAnchors_ExcludeThemselves_AndHandOutCapHolds()
    {
        var data = MiningTestData.Create(seed: 5, anchors: 50, hubs: 2);
        using var index = data.BuildIndex();
        var anchors = data.Positives.Select(p => p[0]).ToArray();
        var input = MiningInput.FromCorpusIds(anchors, data.Duplicates, exclusions: data.Positives.Select(_ => new long[] { 0 }).ToArray());
        var rows = new HardNegativeMiner(index, new MiningOptions { NumNegatives = 3, RangeMax = 20, MaxHandOutsPerItem = 2, Shortfall = ShortfallPolicy.KeepShort })
            .MineAll(input, out var report);
        Assert.Equal(anchors.Length, rows.Count);
        foreach (var row in rows)
        {
            Assert.DoesNotContain(row.Anchor, row.Negatives);
            Assert.DoesNotContain(0L, row.Negatives);
            Assert.All(row.PositiveScores, s => Assert.True(s > -1f)); // duplicates are very close
        }
        Assert.True(report.MaxHandOuts <= 2);
        Assert.True(report.SkippedExcluded >= anchors.Length); // at least the anchor itself each time
        Assert.InRange(report.DistinctNegativeRatio, 0.5, 1.0);
    }

    [Fact]
    public void RescoreExact_GivesExactScores()
    {
        var data = MiningTestData.Create(seed: 6);
        using var index = data.BuildIndex(Metric.L2);
        var rows = new HardNegativeMiner(index, new MiningOptions { NumNegatives = 3, RangeMax = 10, RescoreExact = true }).MineAll(Input(data), out _);
        var v = new float[MiningTestData.D];
        foreach (var row in rows.Take(5))
            for (int j = 0; j < row.Negatives.Length; j++)
            {
                Assert.True(index.TryReconstruct(row.Negatives[j], v));
                float exact = -Engine.Distance.Distances.SquaredL2(data.Anchors.AsSpan((int)row.Anchor * MiningTestData.D, MiningTestData.D), v);
                Assert.Equal(exact, row.Scores[j]);
            }
    }

    [Fact]
    public void JsonlBinaryAndManifest_RoundTrip()
    {
        var data = MiningTestData.Create(seed: 7);
        using var index = data.BuildIndex(Metric.Cosine);
        using var tmp = new TempDir();
        var options = new MiningOptions { NumNegatives = 4, RangeMax = 25, Sampling = SamplingStrategy.Uniform, Seed = 3 };
        var miner = new HardNegativeMiner(index, options);
        var report = miner.MineToFile(Input(data), tmp.File("out.jsonl"), MiningOutputFormat.Jsonl,
            new MiningManifest { IndexChecksum = "sha256:test", Inputs = new Dictionary<string, string> { ["corpus"] = "synthetic seed 7" } });
        miner.MineToFile(Input(data), tmp.File("out.bin"), MiningOutputFormat.Binary);
        var fromJson = JsonlMiningWriter.Read(tmp.File("out.jsonl")).ToList();
        string? rep = null;
        var fromBin = BinaryMiningWriter.Read(tmp.File("out.bin"), s => rep = s).ToList();
        Assert.Equal(report.RowsWritten, fromJson.Count);
        Assert.Equal(fromJson.Count, fromBin.Count);
        for (int i = 0; i < fromJson.Count; i++)
        {
            Assert.Equal(fromJson[i].Negatives, fromBin[i].Negatives);
            Assert.Equal(fromJson[i].Scores, fromBin[i].Scores);
            Assert.Equal(fromJson[i].PositiveScores, fromBin[i].PositiveScores);
        }
        Assert.Contains("\"rows_written\"", rep);
        using var manifest = MiningManifest.Read(tmp.File("out.jsonl"));
        var root = manifest.RootElement;
        Assert.Equal("Flat", root.GetProperty("index").GetProperty("description").GetString());
        Assert.Equal(MiningManifest.Sha256(tmp.File("out.jsonl")), root.GetProperty("output").GetProperty("checksum").GetString());
        Assert.Equal(3UL, root.GetProperty("seed").GetUInt64());
        Assert.Equal("uniform", root.GetProperty("options").GetProperty("sampling").GetString());
        Assert.Equal(report.RowsWritten, root.GetProperty("report").GetProperty("rows_written").GetInt64());

        // A flipped byte in the binary file is a clear error.
        var bytes = File.ReadAllBytes(tmp.File("out.bin"));
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(tmp.File("bad.bin"), bytes);
        Assert.Throws<CorruptIndexException>(() => BinaryMiningWriter.Read(tmp.File("bad.bin")).ToList());
    }
}
