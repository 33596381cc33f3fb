using System.Runtime.InteropServices;
using Engine.Distance;
using Engine.Index.Ivf;
using Engine.Index.Lists;
using Engine.Index.Spann;
using Engine.Quantization;
using Engine.Storage.Devices;
using Engine.Storage.Postings;
using Engine.Tests.Storage;

namespace Engine.Tests.Spann;

/// <summary>
/// The third inverted-list backing (<see cref="DeviceBlockInvertedList"/>, a list in one block of SPANN's posting
/// store): the same list content held on the heap, in a mapping and in a device block, read in place or copied (cache
/// or device), gives the IVF list scanners exactly the same candidates.
/// </summary>
public unsafe class SpannDeviceBlockListTests
{
    private const int D = 32, N = 77, K = 20; // 77 rows: two whole fast-scan blocks and a partial one

    private sealed record ListContent(long[] Ids, byte[] Versions, long[] Offsets, byte[] Codes, byte[] Payload, CodeLayout? Layout);

    // A posting as SPANN writes it: coded (codes in the layout's order) when a layout is given, else raw f32 rows.
    private static ListContent Content(float[] data, IVectorCodec? codec, CodeLayout? layout)
    {
        var ids = Enumerable.Range(0, N).Select(i => 1000L + 3 * i).ToArray();
        var versions = Enumerable.Range(0, N).Select(i => (byte)(i % 5)).ToArray();
        var offsets = Enumerable.Range(0, N).Select(i => 4096L * i).ToArray();
        if (codec is null)
        {
            var payload = PostingCodec.Encode(D, ids, versions, data.AsSpan(0, N * D));
            return new ListContent(ids, versions, [], MemoryMarshal.AsBytes(data.AsSpan(0, N * D)).ToArray(), payload, null);
        }
        var rows = new byte[N * codec.CodeSize];
        codec.Encode(data.AsSpan(0, N * D), rows);
        var coded = PostingCodec.EncodeCoded(D, layout!, ids, versions, offsets, rows);
        var placed = new byte[layout!.Bytes(N)];
        for (int i = 0; i < N; i++) layout.Write(placed, i, rows.AsSpan(i * codec.CodeSize, codec.CodeSize));
        return new ListContent(ids, versions, offsets, placed, coded, layout);
    }

    // Every row's (key, label) the scanner offers, best first (the heap holds them all).
    private static (float[] Keys, long[] Labels) Scan(IvfListScanner scanner, InvertedList list, float[] query, float coarseKey, IIdFilter? filter = null)
    {
        var keys = new float[K]; var labels = new long[K];
        var heap = new TopKHeap(keys, labels);
        scanner.SetQuery(query);
        scanner.SetList(0, coarseKey);
        scanner.ScanCodes(list, 3, ref heap, new ListFilter(filter, false, 0, 0));
        scanner.Drain(ref heap);
        heap.SortAndPad(float.PositiveInfinity);
        return (keys, labels);
    }

    public static TheoryData<string> Codecs() => new() { "none", "RaBitQfs4", "RaBitQfs1", "SQ8" };

    [Theory]
    [MemberData(nameof(Codecs))]
    public void HeapMappedAndDeviceBlockBackings_GiveTheScannersIdenticalOutput(string codecName)
    {
        var data = SpannTestData.Clustered(N + 200, D, seed: 91);
        var query = SpannTestData.Clustered(1, D, seed: 92);
        IVectorCodec? codec = codecName == "none" ? null : SpannCodecSpec.TryParse(codecName, out _)!.Create(D, Metric.L2);
        codec?.Train(data, 7, 1);
        var layout = codec switch { null => null, RaBitQFastScanCodec fs => fs.Layout, _ => CodeLayout.Rows(codec.CodeSize) };
        var content = Content(data, codec, layout);
        // Whole-vector codes (SPANN's): the coarse centre is the origin, so the list's coarse key is ‖q‖².
        float coarseKey = Distances.SquaredNorm(query);
        var quantizer = new FlatCoarseQuantizer(1, D, Metric.L2);
        IvfListScanner NewScanner() => codec switch
        {
            RaBitQFastScanCodec fs => new RaBitQFastScanListScanner(fs, quantizer, hasRefine: true),
            RaBitQCodec rq => new RaBitQListScanner(rq, quantizer, hasRefine: true),
            null => new FlatListScanner(D, Metric.L2),
            _ => new EstimatorListScanner(codec, Metric.L2),
        };

        // Heap backing.
        var heapLists = new InvertedLists(1, layout ?? CodeLayout.Rows(D * sizeof(float)), 0);
        var heapList = heapLists.Writable(0, N);
        content.Ids.CopyTo(heapList.OwnedIds, 0);
        content.Codes.CopyTo(heapList.OwnedCodes, 0);
        heapList.OwnedAttributes.AsSpan(0, N).Fill(double.NaN);
        heapList.Count = N;
        var expected = Scan(NewScanner(), heapLists[0], query, coarseKey);
        Assert.Equal(K, expected.Labels.Count(l => l >= 0));

        // Mapped backing (views into memory the caller keeps alive).
        var idsPinned = GC.AllocateArray<long>(N, pinned: true);
        var attrsPinned = GC.AllocateArray<double>(N, pinned: true);
        var codesPinned = GC.AllocateArray<byte>(content.Codes.Length, pinned: true);
        content.Ids.CopyTo(idsPinned, 0);
        content.Codes.CopyTo(codesPinned, 0);
        var mappedLists = new InvertedLists(1, heapLists.Layout, 0);
        fixed (long* ids = idsPinned) fixed (double* attrs = attrsPinned) fixed (byte* codes = codesPinned)
            mappedLists.Map(0, N, ids, attrs, codes, codesPinned.Length, null, 0);
        Same(expected, Scan(NewScanner(), mappedLists[0], query, coarseKey));

        // Device-block backing: the posting written to a store, read copied (device, then cache) and in place.
        BlockSectionLocator locate = (payload, offset) => PostingCodec.Sections(payload, D, layout, "test-postings", offset);
        using var dir = new TestDirectory();
        using var store = new PostingStore(new FileDevice(dir.File("postings-0.dat")), new PostingCache(1 << 20));
        var location = store.Write(5, content.Payload, BlockCompression.Never);
        var block = new DeviceBlockInvertedList();
        block.Acquire(store, location, 5, locate);
        Assert.False(block.InPlace);
        Assert.False(block.FromCache);
        AssertContent(content, block);
        Same(expected, Scan(NewScanner(), block, query, coarseKey));
        block.Acquire(store, location, 5, locate);
        Assert.True(block.FromCache);
        Same(expected, Scan(NewScanner(), block, query, coarseKey));
        store.MapForReads();
        block.Acquire(store, location, 5, locate);
        Assert.True(block.InPlace);
        Assert.Equal(0, block.MemoryBytes);
        Assert.Equal(content.Payload.Length, block.MappedBytes);
        AssertContent(content, block);
        Same(expected, Scan(NewScanner(), block, query, coarseKey));
        // On a device that cannot be mapped (memory), and with an id filter that reads the block's ids.
        using var memory = new PostingStore(new MemoryDevice("postings"));
        var at = memory.Write(5, content.Payload, BlockCompression.WhenSmaller);
        block.Acquire(memory, at, 5, locate);
        Same(expected, Scan(NewScanner(), block, query, coarseKey));
        var allowed = new IdAllowListFilter(content.Ids.Where((_, i) => i % 3 == 0));
        Same(Scan(NewScanner(), heapLists[0], query, coarseKey, allowed), Scan(NewScanner(), block, query, coarseKey, allowed));
        block.Release();
        Assert.Equal(0, block.Count);
        Assert.True(block.Ids.IsEmpty);
    }

    private static void AssertContent(ListContent content, DeviceBlockInvertedList block)
    {
        Assert.Equal(N, block.Count);
        Assert.Equal(content.Ids, block.Ids.ToArray());
        Assert.Equal(content.Versions, block.Versions.ToArray());
        Assert.Equal(content.Offsets, block.RefineOffsets.ToArray());
        Assert.Equal(content.Codes, block.Codes.ToArray());
        Assert.All(block.Attributes.ToArray(), a => Assert.True(double.IsNaN(a)));
        var rows = block.Locate();
        Assert.Equal(content.Ids[^1], rows.Ids[N - 1]);
        Assert.Equal(content.Codes[^1], rows.Codes[content.Codes.Length - 1]);
    }

    private static void Same((float[] Keys, long[] Labels) expected, (float[] Keys, long[] Labels) got)
    {
        Assert.Equal(expected.Labels, got.Labels);
        Assert.Equal(expected.Keys, got.Keys); // bit for bit
    }

    [Fact]
    public void ABlockOfAnotherKey_OrADamagedPayload_IsCorruptNamingTheDevice()
    {
        var data = SpannTestData.Clustered(N, D, seed: 93);
        var payload = PostingCodec.Encode(D, Enumerable.Range(0, N).Select(i => (long)i).ToArray(), new byte[N], data);
        using var store = new PostingStore(new MemoryDevice("postings-x"));
        var location = store.Write(2, payload, BlockCompression.Never);
        var block = new DeviceBlockInvertedList();
        BlockSectionLocator locate = (p, offset) => PostingCodec.Sections(p, D, null, "postings-x", offset);
        var wrongKey = Assert.Throws<CorruptIndexException>(() => block.Acquire(store, location, 3, locate));
        Assert.Contains("postings-x", wrongKey.Message);
        BlockSectionLocator wrongDimension = (p, offset) => PostingCodec.Sections(p, D + 1, null, "postings-x", offset);
        var bad = Assert.Throws<CorruptIndexException>(() => block.Acquire(store, location, 2, wrongDimension));
        Assert.Equal("postings-x", bad.FilePath);
        Assert.Equal(0, block.Count);
    }
}
