using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// The float ADC tables of <see cref="PQTableScanner"/> exposed for a device scan (<see cref="IvfIndex.DeviceScan"/>):
/// after <see cref="IvfListScanner.SetQuery"/> and <see cref="IvfListScanner.SetList"/>, <see cref="CurrentTable"/> and
/// <see cref="Bias"/> give the key of any code of that list exactly as <see cref="PQListScanner"/> computes it, so the
/// device keys equal the CPU's up to float summation order (<paramref name="fastScan"/>: the lists hold fast-scan blocks). <see cref="ScanCodes"/> scores on the CPU the same way.
/// </summary>
internal sealed class DeviceTableScanner(ProductQuantizer pq, ResidualTables? tables, Metric metric, bool fastScan) : PQTableScanner(pq, tables, metric)
{
    /// <summary>The current list's table (M × Ksub floats).</summary>
    public float[] CurrentTable => Table;

    /// <summary>The current list's bias (its coarse key for residual codes, 0 for raw codes).</summary>
    public float Bias => CoarseKey;

    public override int CandidatesFor(int k, int candidates, bool hasRefine) => hasRefine ? candidates : k;

    public override void ScanCodes(InvertedList list, int probe, ref TopKHeap heap, in ListFilter filter) =>
        Scan(list, probe, ref heap, filter);

    protected override void Scan<TSink>(InvertedList list, int probe, ref TSink heap, in ListFilter filter)
    {
        int m = Pq.M, count = list.Count;
        Span<byte> code = stackalloc byte[m];
        for (int off = 0; off < count; off++)
        {
            if (fastScan) PQ4FastScan.GetCode(list.Codes, m, off, code);
            else list.Codes.Slice(off * m, m).CopyTo(code);
            float key = Adc(code);
            if (key > heap.Threshold || (filter.Active && !filter.Allows(list, off))) continue;
            heap.Push(key, Label(probe, off));
        }
    }
}
