using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// The device scanner of PQ lists (<see cref="IDeviceKeyScanner"/>): the float ADC tables of <see cref="PQTableScanner"/>
/// padded to 256 entries per sub-quantizer, the list's coarse key as the probe bias, so the device keys equal
/// <see cref="PQListScanner"/>'s up to float summation order (<paramref name="fastScan"/>: the lists hold fast-scan
/// blocks, unpacked on upload; their device keys are the exact ADC, not the CPU fast-scan's 8-bit tables).
/// <see cref="ScanCodes"/> scores on the CPU the same way.
/// </summary>
internal sealed class DeviceTableScanner(ProductQuantizer pq, ResidualTables? tables, Metric metric, bool fastScan)
    : PQTableScanner(pq, tables, metric), IDeviceKeyScanner
{
    public override int CandidatesFor(int k, int candidates, bool hasRefine) => hasRefine ? candidates : k;

    public int DeviceCodeBytes => Pq.M;

    public bool HasRowFactors => false;

    public bool TablePerList => TableVariesPerList;

    public void WriteRows(InvertedList list, Span<byte> codes, Span<float> factors)
    {
        int m = Pq.M, count = list.Count;
        if (!fastScan) { list.Codes[..(count * m)].CopyTo(codes); return; }
        for (int r = 0; r < count; r++) PQ4FastScan.GetCode(list.Codes, m, r, codes.Slice(r * m, m));
    }

    public void WriteTable(Span<float> table)
    {
        int m = Pq.M, ksub = Pq.Ksub;
        var src = Table;
        for (int j = 0; j < m; j++)
        {
            var row = table.Slice(j * 256, 256);
            src.AsSpan(j * ksub, ksub).CopyTo(row);
            row[ksub..].Clear(); // 4-bit codes use 16 of the 256 entries
        }
    }

    public IvfProbeTerms ProbeTerms(int probe) => IvfProbeTerms.Plain(CoarseKey);

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
