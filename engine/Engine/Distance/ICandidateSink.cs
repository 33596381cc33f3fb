namespace Engine.Distance;

/// <summary>
/// Where a scoring loop offers (key, id) candidates, keys "smaller is better": a bounded <see cref="TopKHeap"/> (the
/// threshold follows the k-th key) or a range collector (a fixed threshold, every candidate at or below it kept). The
/// loops are written once, generic over the sink, so k-NN and range scans share the same arithmetic.
/// </summary>
internal interface ICandidateSink
{
    /// <summary>Keys above this value cannot be kept (+∞ while a heap is not full).</summary>
    float Threshold { get; }

    /// <summary>Offers a candidate whose key is at most <see cref="Threshold"/>.</summary>
    void Push(float key, long id);
}
