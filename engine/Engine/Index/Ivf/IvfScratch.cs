namespace Engine.Index.Ivf;

/// <summary>
/// Per-thread search buffers (tables, heaps, coarse distances), pooled by the index and reused across calls
/// so that the per-query path allocates nothing. Grows only when a call needs larger k or more probes.
/// </summary>
internal sealed class IvfScratch
{
    public readonly float[] Term3;       // M × Ksub query table (−2⟨q_m, c_mj⟩ for L2, −⟨q_m, c_mj⟩ for IP)
    public readonly float[] Lut;         // M × Ksub table of the current list
    public readonly float[] Term2;       // M × Ksub term-2 row when it is not precomputed
    public readonly byte[] QLut;         // quantised fast-scan table
    public readonly ushort[] Out32 = new ushort[32];
    public readonly float[] Vector;      // d floats (decode / refine scratch)
    public readonly byte[] Code;         // padded M code bytes
    public float[] Coarse = [];          // chunk × nlist coarse distances
    public float[] ProbeKeys = [];       // chunk × probes
    public long[] ProbeLists = [];
    public float[] CandKeys = [];        // k × refine candidates
    public long[] CandLabels = [];
    public float[] QueryNorms = [];

    public IvfScratch(int dimension, int m, int ksub, int lutBytes)
    {
        Term3 = new float[m * ksub];
        Lut = new float[m * ksub];
        Term2 = new float[m * ksub];
        QLut = GC.AllocateArray<byte>(lutBytes + 64, pinned: true);
        Vector = new float[dimension];
        Code = new byte[(m + 3) & ~3];
    }

    public void Ensure(int chunk, int lists, int probes, int candidates)
    {
        if (Coarse.Length < chunk * lists) Coarse = new float[chunk * lists];
        if (ProbeKeys.Length < chunk * probes) { ProbeKeys = new float[chunk * probes]; ProbeLists = new long[chunk * probes]; }
        if (CandKeys.Length < candidates) { CandKeys = new float[candidates]; CandLabels = new long[candidates]; }
        if (QueryNorms.Length < chunk) QueryNorms = new float[chunk];
    }
}
