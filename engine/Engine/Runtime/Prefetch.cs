using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Engine.Runtime;

/// <summary>
/// Software prefetch of a byte range into the cache hierarchy. Used where the next rows to read are known but
/// scattered (refine candidates, posting entries): issuing the loads early hides most of the miss latency that the
/// hardware prefetcher cannot predict across rows. A no-op where the CPU has no prefetch instruction.
/// </summary>
internal static class Prefetch
{
    private const int Line = 64;

    /// <summary>Prefetches every cache line of <paramref name="bytes"/> (temporal, all levels).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Range(ReadOnlySpan<byte> bytes)
    {
        if (!Sse.IsSupported || bytes.IsEmpty) return;
        fixed (byte* p = &MemoryMarshal.GetReference(bytes)) Range(p, bytes.Length);
    }

    /// <summary>Prefetches every cache line of the <paramref name="length"/> bytes at <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Range(byte* p, int length)
    {
        if (!Sse.IsSupported || length <= 0) return;
        // Align down so a row that starts mid-line still has its first line fetched.
        byte* line = (byte*)((nuint)p & ~(nuint)(Line - 1));
        byte* end = p + length;
        for (; line < end; line += Line) Sse.Prefetch0(line);
    }

    /// <summary>Prefetches the cache line holding <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void At(void* p)
    {
        if (Sse.IsSupported) Sse.Prefetch0(p);
    }
}
