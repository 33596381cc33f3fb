using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu.Kernels;

/// <summary>Per-launch constants of a tiled scan (one group per (query, tile) of the current chunk).</summary>
internal struct TileArgs
{
    /// <summary>Candidates per tile (a power of two; the group's shared memory holds one entry per candidate).</summary>
    public int TileSize;
    /// <summary>Tiles handled by this launch for each query.</summary>
    public int TilesInChunk;
    /// <summary>Index of the first tile of this launch.</summary>
    public int FirstTile;
    /// <summary>Entries kept per tile: min(k, TileSize).</summary>
    public int Kept;
    /// <summary>Vector dimension (flat scan).</summary>
    public int Dimension;
    /// <summary>Corpus rows (flat scan).</summary>
    public int Rows;
    /// <summary>1 when larger values are better (keys are then negated).</summary>
    public int Similarity;
}

/// <summary>Shape of the inverted lists and LUTs for the IVF-PQ scan.</summary>
internal struct AdcArgs
{
    /// <summary>m: sub-quantizers (bytes per code).</summary>
    public int SubQuantizers;
    /// <summary>Probes per query.</summary>
    public int Probes;
    /// <summary>1 when each (query, probe) has its own LUT, 0 for one LUT per query.</summary>
    public int LutPerProbe;
    /// <summary>1 when the codes carry factors (add, rescale, err).</summary>
    public int HasFactors;
}

/// <summary>Fused scan kernels: keys of one tile in shared memory, sorted, best entries written out.</summary>
internal static class ScanKernels
{
    /// <summary>
    /// Exact scan: group g handles query g / TilesInChunk and corpus tile FirstTile + g mod TilesInChunk.
    /// L2 keys are squared distances, inner-product keys negated dot products. Threads take rows
    /// round-robin; the query row is re-read by every thread (broadcast through the cache).
    /// </summary>
    public static void FlatTile(ArrayView<float> corpus, ArrayView<float> queries, ArrayView<ulong> parts, TileArgs a)
    {
        var tile = SharedMemory.GetDynamic<ulong>();
        int g = Grid.IdxX;
        int q = g / a.TilesInChunk, t = g - q * a.TilesInChunk;
        long rowStart = (long)(a.FirstTile + t) * a.TileSize;
        int d = a.Dimension;
        long qOff = (long)q * d;
        for (int r = Group.IdxX; r < a.TileSize; r += Group.DimX)
        {
            long row = rowStart + r;
            ulong entry = SelectKernels.Padding;
            if (row < a.Rows)
            {
                long off = row * d;
                float acc = 0;
                if (a.Similarity != 0)
                {
                    for (int j = 0; j < d; j++) acc += queries[qOff + j] * corpus[off + j];
                    acc = -acc;
                }
                else
                {
                    for (int j = 0; j < d; j++)
                    {
                        float diff = queries[qOff + j] - corpus[off + j];
                        acc += diff * diff;
                    }
                }
                entry = SelectKernels.Pack(acc, (int)row);
            }
            tile[r] = entry;
        }
        Group.Barrier();
        SelectKernels.BitonicSort(tile, a.TileSize);
        SelectKernels.EmitTile(tile, parts, (long)g * a.Kept, a.Kept);
    }

    /// <summary>
    /// IVF ADC scan: the candidates of a query are its probed lists laid end to end
    /// (<paramref name="candidateStarts"/>: (probes + 1) prefix sums per query). Candidate r of probe p is code
    /// <c>listOffsets[list] + r - start[p]</c>; with S = Σ_s LUT[s][code[s]] and t the probe's terms its key is
    /// t.Bias + (t.TableBias + S × t.TableScale), or, for codes with factors (add, rescale, err),
    /// t.Bias + add + rescale × (t.TableBias + S × t.TableScale) − t.ErrorScale × err − t.AbsScale × |rescale|, in that
    /// order (IIvfDeviceLists.Scan). The entry's index is the code's global position (the host maps it to an id).
    /// </summary>
    public static void AdcTile(ArrayView<byte> codes, ArrayView<int> listOffsets, ArrayView<int> probes,
        ArrayView<int> candidateStarts, ArrayView<float> luts, ArrayView<Engine.Index.Ivf.IvfProbeTerms> terms,
        ArrayView<float> factors, ArrayView<ulong> parts, TileArgs a, AdcArgs s)
    {
        var tile = SharedMemory.GetDynamic<ulong>();
        int g = Grid.IdxX;
        int q = g / a.TilesInChunk, t = g - q * a.TilesInChunk;
        int m = s.SubQuantizers, np = s.Probes;
        long startsBase = (long)q * (np + 1);
        int total = candidateStarts[startsBase + np];
        int rowStart = (a.FirstTile + t) * a.TileSize;
        for (int r = Group.IdxX; r < a.TileSize; r += Group.DimX)
        {
            int c = rowStart + r;
            ulong entry = SelectKernels.Padding;
            if (c < total)
            {
                // Last probe whose start is <= c (probes with empty lists share starts; take the last).
                int lo = 0, hi = np;
                while (hi - lo > 1)
                {
                    int mid = (lo + hi) >> 1;
                    if (candidateStarts[startsBase + mid] <= c) lo = mid; else hi = mid;
                }
                int p = lo;
                int list = probes[(long)q * np + p];
                int code = listOffsets[list] + (c - candidateStarts[startsBase + p]);
                long lutBase = (s.LutPerProbe != 0 ? (long)q * np + p : q) * m * 256L;
                long codeBase = (long)code * m;
                float sum = 0;
                for (int j = 0; j < m; j++) sum += luts[lutBase + j * 256L + codes[codeBase + j]];
                var pt = terms[(long)q * np + p];
                float table = pt.TableBias + sum * pt.TableScale;
                float key;
                if (s.HasFactors != 0)
                {
                    long f = (long)code * 3;
                    float add = factors[f], rescale = factors[f + 1], err = factors[f + 2];
                    float abs = rescale < 0 ? -rescale : rescale;
                    key = pt.Bias + add + rescale * table - pt.ErrorScale * err - pt.AbsScale * abs;
                }
                else key = pt.Bias + table;
                entry = SelectKernels.Pack(a.Similarity != 0 ? -key : key, code);
            }
            tile[r] = entry;
        }
        Group.Barrier();
        SelectKernels.BitonicSort(tile, a.TileSize);
        SelectKernels.EmitTile(tile, parts, (long)g * a.Kept, a.Kept);
    }
}
