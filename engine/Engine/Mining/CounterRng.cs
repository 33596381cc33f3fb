namespace Engine.Mining;

/// <summary>
/// Counter-based random numbers: every value is a pure hash of (seed, stream, counter), so results do not depend
/// on thread count or processing order. Uses the SplitMix64 finaliser (Steele et al. 2014) chained over the keys.
/// </summary>
public static class CounterRng
{
    /// <summary>A 64-bit hash of the three keys.</summary>
    public static ulong Hash(ulong seed, ulong stream, ulong counter)
    {
        ulong h = Mix(seed ^ 0x9E3779B97F4A7C15UL);
        h = Mix(h ^ stream);
        return Mix(h ^ (counter * 0xD1B54A32D192ED03UL + 0x8CB92BA72F3D8DD7UL));
    }

    /// <summary>A uniform double in the open interval (0, 1) for the three keys.</summary>
    public static double Uniform(ulong seed, ulong stream, ulong counter) =>
        ((Hash(seed, stream, counter) >> 11) + 0.5) * (1.0 / (1UL << 53));

    /// <summary>A standard Gumbel variate −ln(−ln u) for the three keys (Gumbel-top-k sampling).</summary>
    public static double Gumbel(ulong seed, ulong stream, ulong counter) =>
        -Math.Log(-Math.Log(Uniform(seed, stream, counter)));

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
