namespace Engine.Index.Ivf;

/// <summary>
/// One search worker's buffers (coarse distances, probes, candidate heap) and its list scanner, pooled by the index
/// (<see cref="Runtime.ScratchPool{T}"/>) and reused across calls so that the per-query path allocates nothing. Grows only when a call needs larger k
/// or more probes.
/// </summary>
internal sealed class IvfScratch
{
    public readonly IvfListScanner Scanner; // chosen once for the index's codec
    public readonly float[] Vector;      // d floats (decode / refine scratch)
    public readonly float[] Prepared;    // d floats: the query as the refine store's codec prepares it
    public readonly byte[] Code;         // one unpacked code (the layout's scratch)
    public float[] Coarse = [];          // chunk × nlist coarse distances
    public float[] ProbeKeys = [];       // chunk × probes
    public long[] ProbeLists = [];
    public float[] CandKeys = [];        // k × refine candidates
    public long[] CandLabels = [];
    public float[] QueryNorms = [];
    public float[] CoarseCandKeys = [];  // nlist: the coarse keys that pass the sampled cut (TopKHeap.SmallestSorted)
    public long[] CoarseCandIds = [];    // nlist: their ids, or their packed (key, index) pairs
    // List-major batch scan (IvfIndex.ScanChunkByList): one scanner and one candidate heap per query of a chunk, and
    // the chunk's (list, query·probe) pairs sorted by list.
    // Device scan (IvfIndex.ScanChunkOnDevice): one device scanner per query of a chunk, the same candidate buffers.
    private readonly Func<bool, IvfListScanner?> _newScanner;
    public IvfListScanner[] Scanners = [];
    public IvfListScanner[] DeviceScanners = [];
    public float[] BatchKeys = [];
    public long[] BatchLabels = [];
    public int[] BatchCounts = [];
    public long[] BatchScanned = [];
    public long[] Pairs = [];
    public long[] SortedPairs = [];      // Pairs ordered by (pass, list), when counted rather than sorted
    public int[] PairBuckets = [];       // 2 × nlist + 1 counters of that counting sort
    public readonly IdSet Seen = new();  // ids a query has already returned (SOAR: two copies per vector)
    // List join (IvfIndex.JoinList): a block of queries, their norms and the list rows' norms, and the GEMM tile.
    public float[] JoinQueries = [];
    public float[] JoinNorms = [];
    public float[] JoinDots = [];

    /// <summary>Buffers for d-dimensional queries; <paramref name="newScanner"/> makes the index's scanner (false) or
    /// device scanner (true).</summary>
    public IvfScratch(int dimension, int codeBytes, Func<bool, IvfListScanner?> newScanner)
    {
        Scanner = newScanner(false)!;
        _newScanner = newScanner;
        Vector = new float[dimension];
        Prepared = new float[dimension];
        Code = new byte[Math.Max(codeBytes, 4)];
    }

    public void Ensure(int chunk, int lists, int probes, int candidates)
    {
        if (Coarse.Length < (long)chunk * lists) Coarse = new float[checked(chunk * lists)];
        if (ProbeKeys.Length < (long)chunk * probes) { ProbeKeys = new float[checked(chunk * probes)]; ProbeLists = new long[chunk * probes]; }
        if (CandKeys.Length < candidates) { CandKeys = new float[candidates]; CandLabels = new long[candidates]; }
        if (QueryNorms.Length < chunk) QueryNorms = new float[chunk];
        if (CoarseCandKeys.Length < lists) { CoarseCandKeys = new float[lists]; CoarseCandIds = new long[lists]; }
    }

    /// <summary>Grows the list-major (or, with <paramref name="device"/>, the device) buffers for <paramref name="chunk"/>
    /// queries of <paramref name="candidates"/> candidates each.</summary>
    public void EnsureBatch(int chunk, int probes, int candidates, bool device = false)
    {
        ref var scanners = ref device ? ref DeviceScanners : ref Scanners;
        if (scanners.Length < chunk)
        {
            var grown = new IvfListScanner[chunk];
            scanners.CopyTo(grown, 0);
            for (int i = scanners.Length; i < chunk; i++) grown[i] = _newScanner(device)!;
            scanners = grown;
        }
        if (BatchKeys.Length < chunk * candidates) { BatchKeys = new float[chunk * candidates]; BatchLabels = new long[chunk * candidates]; }
        if (BatchCounts.Length < chunk) { BatchCounts = new int[chunk]; BatchScanned = new long[chunk]; }
        if (Pairs.Length < chunk * probes) { Pairs = new long[chunk * probes]; SortedPairs = new long[chunk * probes]; }
    }

    /// <summary>The counters of a counting sort over <paramref name="buckets"/> buckets, zeroed.</summary>
    public Span<int> Buckets(int buckets)
    {
        if (PairBuckets.Length < buckets + 1) PairBuckets = new int[buckets + 1];
        var b = PairBuckets.AsSpan(0, buckets + 1);
        b.Clear();
        return b;
    }
}

/// <summary>
/// A set of ids for one query at a time (open addressing, linear probing): <see cref="Start"/> empties it in O(1) by
/// moving to a new stamp, so a query pays only for the ids it adds.
/// </summary>
internal sealed class IdSet
{
    private long[] _ids = [];
    private int[] _stamps = [];
    private int _stamp, _mask;

    /// <summary>Empties the set and makes room for <paramref name="capacity"/> ids (a table at least twice as large).</summary>
    public void Start(int capacity)
    {
        int size = 16;
        while (size < 2L * capacity && size < 1 << 30) size <<= 1;
        if (_ids.Length < size)
        {
            _ids = new long[size];
            _stamps = new int[size];
            _stamp = 0;
        }
        if (++_stamp == int.MaxValue)
        {
            Array.Clear(_stamps);
            _stamp = 1;
        }
        _mask = _ids.Length - 1;
    }

    /// <summary>Adds <paramref name="id"/>; false when it was already there.</summary>
    public bool Add(long id)
    {
        int h = (int)((ulong)(id * -7046029254386353131L) >> 34) & _mask;
        while (_stamps[h] == _stamp)
        {
            if (_ids[h] == id) return false;
            h = (h + 1) & _mask;
        }
        _stamps[h] = _stamp;
        _ids[h] = id;
        return true;
    }
}
