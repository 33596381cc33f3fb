using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Distance;

/// <summary>
/// Vector width a kernel runs at. Public kernels use <see cref="Simd.Best"/>; the internal overloads that take a
/// level let tests run every level the machine supports in one process.
/// </summary>
internal enum SimdLevel
{
    /// <summary>Plain scalar code.</summary>
    Scalar = 0,
    /// <summary><see cref="Vector128{T}"/>.</summary>
    V128 = 1,
    /// <summary><see cref="Vector256{T}"/>.</summary>
    V256 = 2,
    /// <summary><see cref="Vector512{T}"/>.</summary>
    V512 = 3,
}

/// <summary>Levels chosen once per process from the JIT's view of the hardware (honours DOTNET_Enable* switches).</summary>
internal static class Simd
{
    /// <summary>Widest accelerated level for float kernels.</summary>
    internal static readonly SimdLevel Best =
        Vector512.IsHardwareAccelerated ? SimdLevel.V512 :
        Vector256.IsHardwareAccelerated ? SimdLevel.V256 :
        Vector128.IsHardwareAccelerated ? SimdLevel.V128 : SimdLevel.Scalar;

    /// <summary>
    /// Widest level for the int8 kernels: their 512/256 paths use x86 multiply-add instructions
    /// (AVX-512BW / AVX2); the 128 path is portable.
    /// </summary>
    internal static readonly SimdLevel BestInt8 =
        Best == SimdLevel.V512 && Avx512BW.IsSupported ? SimdLevel.V512 :
        Best >= SimdLevel.V256 && Avx2.IsSupported ? SimdLevel.V256 :
        Best >= SimdLevel.V128 ? SimdLevel.V128 : SimdLevel.Scalar;

    /// <summary>
    /// Widest level for the popcount kernels: their vector paths shuffle bytes with x86 instructions (AVX-512BW, AVX2,
    /// SSSE3); elsewhere they count with scalar POPCNT.
    /// </summary>
    internal static readonly SimdLevel BestPopCount =
        Best == SimdLevel.V512 && Avx512BW.IsSupported ? SimdLevel.V512 :
        Best >= SimdLevel.V256 && Avx2.IsSupported ? SimdLevel.V256 :
        Best >= SimdLevel.V128 && Ssse3.IsSupported ? SimdLevel.V128 : SimdLevel.Scalar;

    /// <summary>True when the CPU reports AVX-512 VPOPCNTDQ (CPUID leaf 7, ECX bit 14), detected at run time.</summary>
    internal static readonly bool HasVpopcntdq = X86Base.IsSupported && (X86Base.CpuId(7, 0).Ecx & (1 << 14)) != 0;

    /// <summary>Every level from scalar up to <paramref name="best"/>.</summary>
    internal static IEnumerable<SimdLevel> UpTo(SimdLevel best)
    {
        for (var l = SimdLevel.Scalar; l <= best; l++) yield return l;
    }
}
