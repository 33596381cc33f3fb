using System.Buffers.Binary;
using System.Security.Cryptography;
using Engine.Index;
using Engine.Index.Ivf;
using Engine.Storage.Format;

namespace Engine.Tests.Ivf;

public class IvfMappedLoadTests
{
    private const int N = 2000, D = 16, NQ = 40, K = 5;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 20, seed: 41);
    private static readonly float[] Queries = IvfTestData.Clustered(NQ, D, 20, seed: 42);
    private static readonly long[] Ids = IvfTestData.Ids(N, 3);
    private static readonly double[] Attrs = Ids.Select(i => (double)(i % 100)).ToArray();

    public static TheoryData<string> Specs => new()
    {
        "IVF16,Flat",
        "IVF16,PQ4",
        "IVF16,PQ8x4fs",
        "IVF16,PQ8x4fs,RFlat",
        "OPQ4,IVF16,PQ4x4fs,Refine(SQ8)",
        "IVF16,PQ8x4,Refine(F16)",
        "IVF16,PQ8x4fsnr,RFlat",
        "IVF16,PQ8nr",
        "OPQ4,IVF16,Flat",
        "OPQ4,IVF16,BIN2,RFlat",
    };

    private static string SaveIndex(IvfTestData.TempDir dir, string spec, Metric metric = Metric.L2)
    {
        using var index = new IvfIndex(spec, D, metric);
        index.Train(Data);
        index.Add(Data, Ids, Attrs);
        index.Remove([5, 6, 7]);
        string path = dir.File("a.idx");
        index.Save(path);
        return path;
    }

    private static readonly IvfSearchParameters[] Params =
    [
        new() { Probes = 4, RefineFactor = 3 },
        new() { Probes = 16, RefineFactor = 2, AttributeMin = 10, AttributeMax = 40 },
        new() { Probes = 3, Filter = new IdAllowListFilter(Ids.Where(i => i % 7 == 0)) },
    ];

    private static (float[] Dist, long[] Labels) Run(IVectorIndex index, IvfSearchParameters p)
    {
        var d = new float[NQ * K];
        var l = new long[NQ * K];
        // the shared knobs' refine factor where it means something for this spec (the index rejects it elsewhere)
        if (p.RefineFactor > 1 && index is IvfIndex ivf && !IvfIndex.UsesRefineFactor(ivf.Spec))
            p = new IvfSearchParameters { Probes = p.Probes, AttributeMin = p.AttributeMin, AttributeMax = p.AttributeMax, Filter = p.Filter };
        index.Search(Queries, K, d, l, p);
        return (d, l);
    }

    private static void AssertSameResults(IVectorIndex expected, IVectorIndex actual)
    {
        foreach (var p in Params)
        {
            var (d1, l1) = Run(expected, p);
            var (d2, l2) = Run(actual, p);
            Assert.Equal(l1, l2);
            Assert.Equal(d1, d2);
        }
    }

    private static byte[] Hash(string path) => SHA256.HashData(File.ReadAllBytes(path));

    [Theory]
    [MemberData(nameof(Specs))]
    public void MappedLoadGivesIdenticalResults(string spec)
    {
        using var dir = new IvfTestData.TempDir();
        string path = SaveIndex(dir, spec, spec.StartsWith("IVF16,PQ8x4,", StringComparison.Ordinal) ? Metric.InnerProduct : Metric.L2);
        using var heap = IvfIndex.Load(path);
        using var mapped = IvfIndex.Load(path, mapped: true);
        Assert.False(heap.IsMapped);
        Assert.True(mapped.IsMapped);
        Assert.Equal(0, heap.MappedBytes);
        Assert.True(mapped.MappedBytes >= (N - 3) * 16L, $"mapped bytes {mapped.MappedBytes}");
        // Mapped list bytes are not heap: the heap-loaded index reports at least the mapped bytes more.
        Assert.True(heap.MemoryBytes - mapped.MemoryBytes >= mapped.MappedBytes, $"heap {heap.MemoryBytes}, mapped {mapped.MemoryBytes} + {mapped.MappedBytes}");
        Assert.Equal(heap.Count, mapped.Count);
        Assert.Equal(heap.ListSizes(), mapped.ListSizes());
        AssertSameResults(heap, mapped);
        var v1 = new float[D];
        var v2 = new float[D];
        foreach (long id in new long[] { 3, 500, 1999 })
        {
            Assert.True(heap.TryReconstruct(id, v1));
            Assert.True(mapped.TryReconstruct(id, v2));
            Assert.Equal(v1, v2);
        }
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void MutationAfterMappedLoadCopiesListsAndLeavesTheFileUnchanged(string spec)
    {
        using var dir = new IvfTestData.TempDir();
        string path = SaveIndex(dir, spec);
        var before = Hash(path);
        long length = new FileInfo(path).Length;
        using var heap = IvfIndex.Load(path);
        using var mapped = IvfIndex.Load(path, mapped: true);
        long mappedBytes = mapped.MappedBytes;
        foreach (var index in new[] { heap, mapped })
        {
            // Remove from many lists (moves the last row of each into the hole), re-add, upsert over stored ids.
            Assert.Equal(100, index.Remove(Ids.Where(i => i % 20 == 0).ToArray()));
            index.Add(Data.AsSpan(0, 10 * D), [5, 6, 7, 100_000, 100_001, 100_002, 100_003, 100_004, 100_005, 100_006], Attrs.AsSpan(0, 10));
            index.Upsert(Data.AsSpan(20 * D, 4 * D), [40, 41, 42, 100_000], [50, 51, 52, 53]);
            Assert.False(index.Contains(60));
            Assert.True(index.Contains(40));
        }
        Assert.True(mapped.MappedBytes < mappedBytes, "mutated lists moved to the heap");
        Assert.Equal(heap.Count, mapped.Count);
        Assert.Equal(heap.ListSizes(), mapped.ListSizes());
        AssertSameResults(heap, mapped);
        Assert.Equal(length, new FileInfo(path).Length);
        Assert.Equal(before, Hash(path));

        // The mutated mapped index saves and reloads to the same state.
        string copy = dir.File("b.idx");
        mapped.Save(copy);
        using var reloaded = IvfIndex.Load(copy, mapped: true);
        AssertSameResults(heap, reloaded);
        Assert.Equal(before, Hash(path));
    }

    [Fact]
    public void SavingOverTheMappedFileKeepsTheOldMappingValid()
    {
        using var dir = new IvfTestData.TempDir();
        string path = SaveIndex(dir, "IVF16,PQ8x4fs,RFlat");
        using var reference = IvfIndex.Load(path);
        using var mapped = IvfIndex.Load(path, mapped: true);
        mapped.Remove([10, 11, 12]);
        reference.Remove([10, 11, 12]);
        mapped.Save(path); // temp file + rename over the mapped file
        Assert.True(mapped.IsMapped);
        if (OperatingSystem.IsLinux())
            Assert.Contains(File.ReadAllLines("/proc/self/maps"), l => l.Contains(path, StringComparison.Ordinal) && l.EndsWith("(deleted)", StringComparison.Ordinal));
        // Unmutated lists still read the replaced file's pages; mutating afterwards still works.
        AssertSameResults(reference, mapped);
        mapped.Remove([13]);
        reference.Remove([13]);
        AssertSameResults(reference, mapped);
        using var reloaded = IvfIndex.Load(path, mapped: true);
        Assert.False(reloaded.Contains(12));
        Assert.True(reloaded.Contains(13));
        Assert.Equal(reference.Count + 1, reloaded.Count);
    }

    // Disposing a mapped index while other threads search it: searches in flight finish before the mapping goes,
    // later ones (also those waiting for the lock) fail with ObjectDisposedException; Dispose itself never throws.
    [Fact]
    public void DisposeDuringSearches_EndsThemWithObjectDisposedException()
    {
        using var dir = new IvfTestData.TempDir();
        string path = SaveIndex(dir, "IVF16,PQ4x4fs,RFlat");
        for (int round = 0; round < 5; round++)
        {
            var index = (IvfIndex)IndexFactory.Load(path);
            Assert.True(index.IsMapped);
            Hardening.DisposeDuringSearchTests.SearchWhileDisposing(index, () => () => Run(index, Params[0]), 5 + 7 * round);
        }
    }

    [Fact]
    public void DisposeReleasesTheMapping()
    {
        using var dir = new IvfTestData.TempDir();
        string path = SaveIndex(dir, "IVF16,PQ4");
        bool Mapped() => OperatingSystem.IsLinux() && File.ReadAllLines("/proc/self/maps").Any(l => l.Contains(path, StringComparison.Ordinal));
        var index = (IvfIndex)IndexFactory.Load(path); // the factory maps IVF files by default
        Assert.True(index.IsMapped);
        Assert.Equal(OperatingSystem.IsLinux(), Mapped());
        index.Dispose();
        index.Dispose(); // idempotent
        Assert.False(index.IsMapped);
        Assert.False(Mapped());
        Assert.Throws<ObjectDisposedException>(() => Run(index, Params[0]));
        File.WriteAllBytes(path, [1, 2, 3]); // overwrite in place, then delete
        File.Delete(path);
        Assert.False(File.Exists(path));
        using var heap = (IvfIndex)IndexFactory.Load(SaveIndex(dir, "IVF16,PQ4"), mapped: false);
        Assert.False(heap.IsMapped);
    }

    [Fact]
    public void CorruptedMappedFilesAreRejectedWithTheOffset()
    {
        using var dir = new IvfTestData.TempDir();
        string path = SaveIndex(dir, "IVF16,PQ8x4fs,RFlat");
        var bytes = File.ReadAllBytes(path);
        var sections = Sections(bytes);
        var rng = new Random(5);
        foreach (string tag in new[] { "IDS ", "ATTR", "CODE", "RFNE", "LCNT" })
        {
            var s = sections.Single(x => x.Tag == tag);
            var targets = new List<long> { s.Payload, s.Payload + rng.NextInt64(s.Length), s.Payload + s.Length - 1 };
            if (s.Payload > s.Start + 12) targets.Add(s.Payload - 1); // a padding byte
            foreach (long at in targets)
            {
                var bad = (byte[])bytes.Clone();
                bad[at] ^= (byte)(1 << rng.Next(8));
                string file = dir.File($"flip-{tag.Trim()}-{at}.idx");
                File.WriteAllBytes(file, bad);
                var e = Assert.Throws<CorruptIndexException>(() => IvfIndex.Load(file, mapped: true));
                Assert.Equal(s.Start, e.Offset);
                Assert.Contains($"offset {s.Start}", e.Message);
                Assert.Contains(file, e.Message);
                Assert.Contains("checksum", e.Message);
            }
        }
        foreach (int cut in new[] { 0, 7, 40, (int)sections[^1].Payload, bytes.Length - 1 })
        {
            string file = dir.File($"trunc-{cut}.idx");
            File.WriteAllBytes(file, bytes.AsSpan(0, cut).ToArray());
            var e = Assert.Throws<CorruptIndexException>(() => IvfIndex.Load(file, mapped: true));
            Assert.InRange(e.Offset, 0, cut);
        }
        // The rejected loads left the original intact and readable.
        using var ok = IvfIndex.Load(path, mapped: true);
        Assert.Equal(N - 3, ok.Count);
    }

    [Fact]
    public void PayloadsAreAlignedAndVersion1FilesStillLoad()
    {
        using var dir = new IvfTestData.TempDir();
        string path = SaveIndex(dir, "IVF16,PQ8x4fs,RFlat");
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(IndexFile.FormatVersion, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        var sections = Sections(bytes);
        Assert.Equal(11, sections.Count); // layout 2: LCRC (per-list id checksums) after RFNE
        Assert.All(sections, s => Assert.Equal(0, s.Payload % IndexFile.PayloadAlignment));

        string old = dir.File("v1.idx");
        File.WriteAllBytes(old, ToVersion1(bytes));
        using var expected = IvfIndex.Load(path);
        using var fromV1 = IvfIndex.Load(old, mapped: true); // unaligned: copied to the heap
        Assert.False(fromV1.IsMapped);
        AssertSameResults(expected, fromV1);

        // A future container version is a format error naming both versions.
        var future = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(future.AsSpan(8), 3);
        int headerLength = HeaderLength(future);
        BinaryPrimitives.WriteUInt32LittleEndian(future.AsSpan(headerLength - 4), Crc32C.Compute(future.AsSpan(0, headerLength - 4)));
        File.WriteAllBytes(dir.File("v3.idx"), future);
        var e = Assert.Throws<IndexFormatException>(() => IvfIndex.Load(dir.File("v3.idx"), mapped: true));
        Assert.Contains("format version 3", e.Message);
    }

    [Fact]
    public void SectionWritesMustMatchTheirDeclaredLength()
    {
        using var dir = new IvfTestData.TempDir();
        using var w = new IndexFileWriter(dir.File("w.idx"), new IndexFileHeader("ivf", "IVF16,Flat", Metric.L2, D, 0, IndexFile.FormatVersion));
        w.BeginSection("ABCD", 8);
        Assert.Throws<InvalidOperationException>(() => w.BeginSection("EFGH", 1));
        w.WritePayload(new byte[5]);
        Assert.Throws<InvalidOperationException>(() => w.WritePayload(new byte[4]));
        Assert.Throws<InvalidOperationException>(() => w.EndSection());
        Assert.Throws<InvalidOperationException>(() => w.Commit());
        w.WritePayload(new byte[3]);
        w.EndSection();
        w.Commit();
        using var r = new IndexFileReader(dir.File("w.idx"), "ivf", mapped: true);
        Assert.Equal(new byte[8], r.ReadSection("ABCD"));
        r.VerifyEnd();
    }

    private static int HeaderLength(byte[] b) => Support.IndexFileEditor.HeaderLength(b);

    // Section heads of a version-2 file, parsed independently of IndexFileReader.
    private static List<Support.IndexFileEditor.Section> Sections(byte[] b) => Support.IndexFileEditor.Sections(b);

    // Rewrites a version-2 file in the version-1 layout (no padding, CRCs over the payload only).
    private static byte[] ToVersion1(byte[] b)
    {
        var o = new MemoryStream();
        int h = HeaderLength(b);
        var header = b.AsSpan(0, h).ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(h - 4), Crc32C.Compute(header.AsSpan(0, h - 4)));
        o.Write(header);
        uint all = Crc32C.Seed;
        var crc = new byte[4];
        foreach (var s in Sections(b))
        {
            o.Write(b.AsSpan((int)s.Start, 12));
            var payload = b.AsSpan((int)s.Payload, (int)s.Length);
            o.Write(payload);
            BinaryPrimitives.WriteUInt32LittleEndian(crc, Crc32C.Compute(payload));
            o.Write(crc);
            all = Crc32C.Append(all, crc);
        }
        var end = new byte[16];
        "END\0"u8.CopyTo(end);
        BinaryPrimitives.WriteUInt32LittleEndian(end.AsSpan(12), Crc32C.Finish(all));
        o.Write(end);
        return o.ToArray();
    }
}
