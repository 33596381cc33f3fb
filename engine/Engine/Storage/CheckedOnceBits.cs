namespace Engine.Storage;

/// <summary>
/// One bit per record or block of an append-only store: set once its checksum passed, so later reads skip summing it
/// again. Readers test and set bits without locks; growth copies the bits under a lock, and a bit set in the old array
/// during the copy is lost, which only repeats a check (never skips one).
/// </summary>
internal sealed class CheckedOnceBits
{
    private ulong[] _bits = [];
    private readonly object _gate = new();

    /// <summary>True when <paramref name="index"/> was marked (since the last <see cref="Clear"/>).</summary>
    public bool Contains(long index)
    {
        var bits = Volatile.Read(ref _bits);
        long word = index >> 6;
        return word < bits.Length && (Volatile.Read(ref bits[word]) & (1UL << (int)(index & 63))) != 0;
    }

    /// <summary>Marks <paramref name="index"/> (growing the set when needed; indexes past 2^37 are not kept).</summary>
    public void Add(long index)
    {
        long word = index >> 6;
        if (word >= Array.MaxLength) return;
        var bits = Volatile.Read(ref _bits);
        if (word >= bits.Length) bits = Grow(word + 1);
        Interlocked.Or(ref bits[word], 1UL << (int)(index & 63));
    }

    /// <summary>Makes room for indexes below <paramref name="count"/> (so later marks need not grow the set).</summary>
    public void Reserve(long count)
    {
        long words = Math.Min((count + 63) >> 6, Array.MaxLength);
        if (words > Volatile.Read(ref _bits).Length) Grow(words);
    }

    /// <summary>Forgets every mark (e.g. when the store is cut back and its offsets will be reused).</summary>
    public void Clear()
    {
        lock (_gate) Volatile.Write(ref _bits, []);
    }

    private ulong[] Grow(long words)
    {
        lock (_gate)
        {
            var bits = _bits;
            if (words <= bits.Length) return bits;
            var grown = new ulong[(int)Math.Min(Array.MaxLength, Math.Max(words, bits.Length * 2L))];
            for (int i = 0; i < bits.Length; i++) grown[i] = Interlocked.Read(ref bits[i]);
            Volatile.Write(ref _bits, grown);
            return grown;
        }
    }
}
