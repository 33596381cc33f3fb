using Engine.Index.Flat;

namespace Engine.Tests.Mining;

/// <summary>Seeded synthetic data with planted structure: anchors, their positives, near-duplicates and hubs.</summary>
internal sealed class MiningTestData
{
    public const int D = 16;
    public required float[] Corpus { get; init; }
    public required long[] CorpusIds { get; init; }
    public required float[] Anchors { get; init; }
    public required long[][] Positives { get; init; }
    /// <summary>Ids of planted near-duplicates of each anchor's positive.</summary>
    public required long[][] Duplicates { get; init; }
    public required long[] Hubs { get; init; }

    public static float Gaussian(Random r) =>
        (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));

    /// <summary>
    /// Corpus: <paramref name="background"/> Gaussian points; per anchor one positive (anchor + noise) and
    /// <paramref name="dupsPerPositive"/> near-copies of it; <paramref name="hubs"/> points near the origin
    /// (in Gaussian data the points closest to the centre are everyone's neighbours).
    /// </summary>
    public static MiningTestData Create(int seed, int anchors = 40, int background = 400, int dupsPerPositive = 2, int hubs = 0)
    {
        var r = new Random(seed);
        var corpus = new List<float>();
        var anchorVecs = new float[anchors * D];
        var positives = new long[anchors][];
        var dups = new long[anchors][];
        long next = 0;
        void Add(float[] v) { corpus.AddRange(v); next++; }
        for (int i = 0; i < background; i++) Add(Enumerable.Range(0, D).Select(_ => Gaussian(r)).ToArray());
        var hubIds = new long[hubs];
        for (int h = 0; h < hubs; h++) { hubIds[h] = next; Add(Enumerable.Range(0, D).Select(_ => 0.05f * Gaussian(r)).ToArray()); }
        for (int a = 0; a < anchors; a++)
        {
            var av = Enumerable.Range(0, D).Select(_ => Gaussian(r)).ToArray();
            av.CopyTo(anchorVecs, a * D);
            var pv = av.Select(x => x + 0.3f * Gaussian(r)).ToArray();
            positives[a] = [next];
            Add(pv);
            dups[a] = new long[dupsPerPositive];
            for (int k = 0; k < dupsPerPositive; k++) { dups[a][k] = next; Add(pv.Select(x => x + 0.01f * Gaussian(r)).ToArray()); }
        }
        return new MiningTestData
        {
            Corpus = corpus.ToArray(), CorpusIds = Enumerable.Range(0, (int)next).Select(i => (long)i).ToArray(),
            Anchors = anchorVecs, Positives = positives, Duplicates = dups, Hubs = hubIds,
        };
    }

    public FlatIndex BuildIndex(Metric metric = Metric.L2)
    {
        var index = new FlatIndex(D, metric);
        index.Add(Corpus, CorpusIds);
        return index;
    }
}

/// <summary>A temp directory per test, deleted afterwards.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mining-" + Guid.NewGuid().ToString("N")));
    public string Path { get; }
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}
