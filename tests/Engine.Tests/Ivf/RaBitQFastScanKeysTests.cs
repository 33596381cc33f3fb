using System.Runtime.Intrinsics.X86;
using Engine.Index.Ivf;
using Engine.Quantization;

namespace Engine.Tests.Ivf;

/// <summary>
/// The AVX-512 and AVX2 key steps of the RaBitQ fast-scan scanner equal its scalar loop bit for bit (same operations,
/// same order, no fused multiply-add), and their masks are exactly the keys at or below the threshold. On machines
/// without AVX2 the scanner runs the scalar loop, which RaBitQIvfTests cover (CI runs them with AVX2 switched off).
/// </summary>
public class RaBitQFastScanKeysTests
{
    [Theory]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    public unsafe void SimdKeysEqualTheScalarLoop(bool l2, int seed)
    {
        if (!Avx2.IsSupported) return; // no SIMD path to compare on this machine (the scalar loop is all there is)
        var rng = new Random(seed);
        for (int trial = 0; trial < 200; trial++)
        {
            var sums = new ushort[16];
            var factors = new float[48];
            for (int i = 0; i < 16; i++) sums[i] = (ushort)rng.Next(0, 65536);
            for (int i = 0; i < 48; i++) factors[i] = (float)(rng.NextDouble() * 4 - 2);
            float bias = (float)rng.NextDouble() * 3, tableBias = (float)(rng.NextDouble() - 0.5), inv = (float)rng.NextDouble() / 100;
            float bound = (float)rng.NextDouble(), rounding = (float)rng.NextDouble() / 10;
            var keys = new float[16];
            var scalar = new float[16];
            for (int i = 0; i < 16; i++)
            {
                float add = factors[3 * i], f = factors[3 * i + 1], err = factors[3 * i + 2];
                float ip = f * (tableBias + sums[i] * inv);
                scalar[i] = (l2 ? bias + add - 2 * ip : bias - add - ip) - bound * err - rounding * MathF.Abs(f);
                float shared = RaBitQFastScanTables.Key(sums[i], add, f, err, bias, tableBias, inv, bound, rounding, l2); // the scalar fallback
                Assert.Equal(BitConverter.SingleToInt32Bits(scalar[i]), BitConverter.SingleToInt32Bits(shared));
            }
            float threshold = scalar[rng.Next(16)];
            uint mask;
            if (Avx512F.IsSupported)
            {
                fixed (ushort* s = sums)
                fixed (float* fa = factors)
                fixed (float* k = keys)
                    mask = RaBitQFastScanTables.Keys16(s, fa, k, bias, tableBias, inv, bound, rounding, l2, threshold);
                AssertKeys(scalar, keys, mask, threshold);
            }
            keys.AsSpan().Clear();
            fixed (ushort* s = sums)
            fixed (float* fa = factors)
            fixed (float* k = keys)
                mask = RaBitQFastScanTables.Keys8(s, fa, k, bias, tableBias, inv, bound, rounding, l2, threshold)
                    | RaBitQFastScanTables.Keys8(s + 8, fa + 24, k + 8, bias, tableBias, inv, bound, rounding, l2, threshold) << 8;
            AssertKeys(scalar, keys, mask, threshold);
        }
    }

    private static void AssertKeys(float[] scalar, float[] keys, uint mask, float threshold)
    {
        for (int i = 0; i < scalar.Length; i++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(scalar[i]), BitConverter.SingleToInt32Bits(keys[i]));
            Assert.Equal(scalar[i] <= threshold, (mask >> i & 1) == 1);
        }
    }
}
