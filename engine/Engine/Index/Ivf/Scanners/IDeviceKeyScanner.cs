using Engine.Index.Lists;

namespace Engine.Index.Ivf;

/// <summary>
/// A list scanner whose keys a device batch scan computes (<see cref="IvfIndex.DeviceScan"/>): the device scanner of a
/// codec. Its rows (<see cref="WriteRows"/>, uploaded once), tables (<see cref="WriteTable"/>) and per-probe terms
/// (<see cref="ProbeTerms"/>) give every row the key <see cref="IIvfDeviceLists.Scan"/> defines, which equals the key
/// <see cref="IvfListScanner.ScanCodes"/> offers for the same row up to float summation order — the same estimator
/// contract (an estimate of the distance, smaller is better, error-bounded where the CPU scanner's is), so the device's
/// candidates go through the same refine and error-bound re-ranking (<see cref="IvfListScanner.HasErrorBounds"/>,
/// <see cref="IvfListScanner.LowerBound"/>) as the CPU's. Implemented by the CPU scanner itself where its keys are
/// table-driven (RaBitQ) and by <see cref="DeviceTableScanner"/> for PQ (float ADC tables, also for fast-scan codes).
/// </summary>
/// <remarks>Call order per query: <see cref="IvfListScanner.SetQuery"/>, then (when not <see cref="TablePerList"/>)
/// <see cref="WriteTable"/>; per probed list <see cref="IvfListScanner.SetList"/>, <see cref="ProbeTerms"/> and (when
/// <see cref="TablePerList"/>) <see cref="WriteTable"/>.</remarks>
internal interface IDeviceKeyScanner
{
    /// <summary>Byte sub-codes per device row; each indexes a 256-float row of the table.</summary>
    int DeviceCodeBytes { get; }

    /// <summary>True when device rows carry factors (add, rescale, err: <see cref="IvfDeviceRows.Factors"/>).</summary>
    bool HasRowFactors { get; }

    /// <summary>True when the table depends on the list (written after each <see cref="IvfListScanner.SetList"/>),
    /// false when on the query only (written once after <see cref="IvfListScanner.SetQuery"/>).</summary>
    bool TablePerList { get; }

    /// <summary>The device rows of <paramref name="list"/>: count × <see cref="DeviceCodeBytes"/> sub-codes into
    /// <paramref name="codes"/> and, with <see cref="HasRowFactors"/>, count × 3 factors into <paramref name="factors"/>.</summary>
    void WriteRows(InvertedList list, Span<byte> codes, Span<float> factors);

    /// <summary>The table of the current query (and list, when <see cref="TablePerList"/>): all
    /// <see cref="DeviceCodeBytes"/> × 256 floats are written (entries no sub-code reaches are 0).</summary>
    void WriteTable(Span<float> table);

    /// <summary>The terms of the current list as the <paramref name="probe"/>-th probe of the query (recorded for
    /// <see cref="IvfListScanner.LowerBound"/>, as a CPU scan of the list records them).</summary>
    IvfProbeTerms ProbeTerms(int probe);
}
