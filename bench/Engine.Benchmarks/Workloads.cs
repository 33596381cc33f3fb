using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Engine.Index.Flat;

namespace Engine.Benchmarks;

/// <summary>Seeded data and the shared measured operations, so BenchmarkDotNet and the scan report time the same code.</summary>
public static class Workloads
{
    /// <summary>Rows of the Flat scan workload (MNIST-sized).</summary>
    public const int FlatRows = 60_000;

    /// <summary>Dimension of the Flat scan workload.</summary>
    public const int FlatDim = 784;

    /// <summary>Size of the stream-read array: far larger than any cache.</summary>
    public const long StreamBytes = 256L << 20;

    public static float[] RandomFloats(int seed, long n)
    {
        var rng = new Random(seed);
        var a = GC.AllocateUninitializedArray<float>(checked((int)n));
        for (long i = 0; i < n; i++) a[i] = rng.NextSingle() * 2 - 1;
        return a;
    }

    /// <summary>A FlatIndex of <see cref="FlatRows"/> × <see cref="FlatDim"/> uniform random vectors (fixed seed).</summary>
    public static FlatIndex BuildFlat(int seed = 42)
    {
        var data = RandomFloats(seed, (long)FlatRows * FlatDim);
        var ids = new long[FlatRows];
        for (int i = 0; i < ids.Length; i++) ids[i] = i;
        var index = new FlatIndex(FlatDim);
        index.Add(data, ids);
        return index;
    }

    /// <summary>
    /// Sums an array with wide vector loads and eight independent accumulators, single thread: the read bandwidth
    /// ceiling that a bandwidth-bound scan is compared with.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static float StreamSum(float[] data)
    {
        ref float p = ref MemoryMarshal.GetArrayDataReference(data);
        nuint n = (nuint)data.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 64 <= n; i += 64)
            {
                a0 += Vector512.LoadUnsafe(ref p, i);
                a1 += Vector512.LoadUnsafe(ref p, i + 16);
                a2 += Vector512.LoadUnsafe(ref p, i + 32);
                a3 += Vector512.LoadUnsafe(ref p, i + 48);
            }
            float s = Vector512.Sum((a0 + a1) + (a2 + a3));
            for (; i < n; i++) s += Unsafe.Add(ref p, i);
            return s;
        }
        else
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 32 <= n; i += 32)
            {
                a0 += Vector256.LoadUnsafe(ref p, i);
                a1 += Vector256.LoadUnsafe(ref p, i + 8);
                a2 += Vector256.LoadUnsafe(ref p, i + 16);
                a3 += Vector256.LoadUnsafe(ref p, i + 24);
            }
            float s = Vector256.Sum((a0 + a1) + (a2 + a3));
            for (; i < n; i++) s += Unsafe.Add(ref p, i);
            return s;
        }
    }
}
