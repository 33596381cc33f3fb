using Engine.Quantization;

namespace Engine.Tests.Distance;

/// <summary>
/// ADC query tables of <see cref="ProductQuantizer"/> (transposed-codebook kernels) against a double reference, for
/// every sub-vector length 1..16 and both code sizes. The kernel picks its SIMD width from the hardware, so CI runs
/// this class again with AVX-512, AVX2 and all intrinsics disabled (.ci/run, Engine.Tests.Distance).
/// </summary>
public class PQTableKernelTests
{
    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void L2AndInnerProductTablesMatchADoubleReference(int bits)
    {
        var rng = new Random(2024 + bits);
        // m = 3, 5, 9: with 4-bit codes (one 16-centroid tile per sub-quantizer) the 512-bit kernel's groups of four
        // tiles, its tail, and both together
        foreach (int m in new[] { 3, 5, 9 })
        for (int dsub = 1; dsub <= 16; dsub++)
        {
            int d = m * dsub, ksub = 1 << bits;
            var pq = new ProductQuantizer(d, m, bits);
            var codebooks = KernelReference.RandomFloats(rng, m * ksub * dsub, 3f);
            pq.SetCodebooks(codebooks);
            var x = KernelReference.RandomFloats(rng, d, 3f);
            var l2 = new float[m * ksub];
            var ip = new float[m * ksub];
            pq.L2Table(x, l2);
            pq.InnerProductTable(x, ip);
            for (int s = 0; s < m; s++)
                for (int j = 0; j < ksub; j++)
                {
                    var c = codebooks.AsSpan((s * ksub + j) * dsub, dsub);
                    var xs = x.AsSpan(s * dsub, dsub);
                    var (l2Want, l2Mag) = KernelReference.SquaredL2(xs, c);
                    var (ipWant, ipMag) = KernelReference.Dot(xs, c);
                    KernelReference.Close(l2Want, l2Mag, l2[s * ksub + j], dsub, $"L2 table bits={bits} dsub={dsub} m={s} j={j}");
                    KernelReference.Close(ipWant, ipMag, ip[s * ksub + j], dsub, $"IP table bits={bits} dsub={dsub} m={s} j={j}");
                }
        }
    }
}
