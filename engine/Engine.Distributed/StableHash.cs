namespace Engine.Distributed;

/// <summary>Hashes that every process computes alike (sharding, placement, layout identity): FNV-1a and the SplitMix64
/// finaliser. Never <c>string.GetHashCode</c>, which .NET randomises per process.</summary>
internal static class StableHash
{
    /// <summary>The FNV-1a offset basis (the hash of nothing).</summary>
    public const ulong Empty = 0xCBF29CE484222325UL;

    private const ulong Prime = 0x100000001B3UL;

    /// <summary>FNV-1a over bytes, continuing from <paramref name="h"/>.</summary>
    public static ulong Add(ulong h, ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) h = unchecked((h ^ b) * Prime);
        return h;
    }

    /// <summary>FNV-1a over UTF-16 code units, continuing from <paramref name="h"/>.</summary>
    public static ulong Add(ulong h, ReadOnlySpan<char> chars)
    {
        foreach (char c in chars) h = unchecked((h ^ c) * Prime);
        return h;
    }

    /// <summary>FNV-1a of one 32-bit value (as one step), continuing from <paramref name="h"/>.</summary>
    public static ulong Add(ulong h, uint value) => unchecked((h ^ value) * Prime);

    /// <summary>The SplitMix64 finaliser: every input bit reaches every output bit.</summary>
    public static ulong Mix(ulong z)
    {
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}
