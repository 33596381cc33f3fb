namespace Engine.Index.Ivf;

/// <summary>
/// Per-thread search buffers (coarse distances, probes, candidate heap) and the thread's list scanner, pooled by the
/// index and reused across calls so that the per-query path allocates nothing. Grows only when a call needs larger k
/// or more probes.
/// </summary>
internal sealed class IvfScratch
{
    public readonly IvfListScanner Scanner; // chosen once for the index's codec
    public readonly float[] Vector;      // d floats (decode / refine scratch)
    public readonly byte[] Code;         // one unpacked code (the layout's scratch)
    public float[] Coarse = [];          // chunk × nlist coarse distances
    public float[] ProbeKeys = [];       // chunk × probes
    public long[] ProbeLists = [];
    public float[] CandKeys = [];        // k × refine candidates
    public long[] CandLabels = [];
    public float[] QueryNorms = [];

    public IvfScratch(int dimension, int codeBytes, IvfListScanner scanner)
    {
        Scanner = scanner;
        Vector = new float[dimension];
        Code = new byte[Math.Max(codeBytes, 4)];
    }

    public void Ensure(int chunk, int lists, int probes, int candidates)
    {
        if (Coarse.Length < chunk * lists) Coarse = new float[chunk * lists];
        if (ProbeKeys.Length < chunk * probes) { ProbeKeys = new float[chunk * probes]; ProbeLists = new long[chunk * probes]; }
        if (CandKeys.Length < candidates) { CandKeys = new float[candidates]; CandLabels = new long[candidates]; }
        if (QueryNorms.Length < chunk) QueryNorms = new float[chunk];
    }
}
