namespace Engine.Index.Ivf;

/// <summary>
/// One inverted list: ids, numeric attributes, codes and (optionally) refine codes of its vectors, kept
/// dense (offsets 0..Count-1). Codes are <c>CodeSize</c> bytes per vector, or packed 32-vector blocks for
/// fast-scan. Not thread-safe by itself: the owning index serialises writers.
/// </summary>
internal sealed class IvfList
{
    public long[] Ids = [];
    public double[] Attributes = [];
    public byte[] Codes = [];
    public byte[] Refine = [];
    public int Count;

    public long MemoryBytes => (long)Ids.Length * 8 + (long)Attributes.Length * 8 + Codes.Length + Refine.Length;

    /// <summary>Grows the arrays so that <paramref name="rows"/> vectors fit.</summary>
    public void EnsureCapacity(int rows, int codeBytesPerRow, int blockBytes, int refineBytes)
    {
        if (Ids.Length >= rows) return;
        int cap = Math.Max(rows, Math.Max(32, Ids.Length * 2));
        cap = (cap + 31) & ~31; // whole fast-scan blocks
        Array.Resize(ref Ids, cap);
        Array.Resize(ref Attributes, cap);
        long codeBytes = blockBytes > 0 ? (long)cap / 32 * blockBytes : (long)cap * codeBytesPerRow;
        Array.Resize(ref Codes, checked((int)codeBytes));
        if (refineBytes > 0) Array.Resize(ref Refine, checked(cap * refineBytes));
    }
}
