using Engine.Quantization;

namespace Engine.Tests.Distance;

/// <summary>
/// <see cref="PQ4FastScan.QuantizeLut"/> against a double reference at every sub-quantizer count 1..40 and 98: the
/// bias is the sum of the tables' minima, the scale lets the widest pair of tables sharing a code byte (2p, 2p + 1) span
/// <see cref="PQ4FastScan.MaxPairSum"/> together (the kernels add such a pair's lookups as bytes: no two of their
/// bytes may sum above 255) and every total 65 535 − m, and
/// each byte is its entry's offset from the table minimum times the scale, rounded to the nearest step, in the
/// kernel layout. CI runs this class with AVX-512, AVX2 and all intrinsics disabled (.ci/run, Engine.Tests.Distance).
/// </summary>
public class FastScanLutTests
{
    [Fact]
    public void QuantisedTablesMatchADoubleReference()
    {
        var rng = new Random(77);
        foreach (int m in Enumerable.Range(1, 40).Append(98))
        {
            var lut = KernelReference.RandomFloats(rng, m * 16, 4f);
            if (m % 7 == 3) lut.AsSpan(0, 16).Fill(1.5f); // a flat table: span 0, all its bytes 0
            var qlut = new byte[PQ4FastScan.LutBytes(m)];
            rng.NextBytes(qlut); // the padding sub-quantizers must be cleared, not left as found
            float scale = PQ4FastScan.QuantizeLut(lut, m, qlut, out float bias);

            double wantBias = 0, maxPair = 0, sumSpan = 0;
            var mins = new double[m];
            var spans = new double[m + 1];
            for (int s = 0; s < m; s++)
            {
                var t = lut.AsSpan(s * 16, 16).ToArray();
                mins[s] = t.Min();
                wantBias += mins[s];
                spans[s] = t.Max() - t.Min();
                sumSpan += spans[s];
            }
            for (int s = 0; s < m; s += 2) maxPair = Math.Max(maxPair, spans[s] + spans[s + 1]);
            double wantScale = Math.Min(PQ4FastScan.MaxPairSum / maxPair, (65535.0 - m) / sumSpan);
            Assert.True(Math.Abs(bias - wantBias) <= 1e-5 * (1 + Math.Abs(wantBias)) * m, $"m={m} bias {bias} want {wantBias}");
            Assert.True(Math.Abs(scale - wantScale) <= 1e-5 * wantScale, $"m={m} scale {scale} want {wantScale}");
            for (int s = 0; s < PQ4FastScan.PaddedM(m); s++)
            {
                int g = s >> 2, r = s & 3, off = g * 128 + (r & 1) * 64 + (r >> 1) * 32;
                for (int j = 0; j < 16; j++)
                {
                    byte lo = qlut[off + j], hi = qlut[off + 16 + j];
                    Assert.True(lo == hi, $"m={m} s={s} j={j}: the two 128-bit lanes differ ({lo}, {hi})");
                    if (s >= m) { Assert.True(lo == 0, $"m={m} padding s={s} j={j} = {lo}"); continue; }
                    double exact = (lut[s * 16 + j] - mins[s]) * wantScale;
                    // nearest step; an exact half may go either way (the SIMD paths round it up, the scalar one to even)
                    Assert.True(Math.Abs(lo - exact) <= 0.5 + 1e-3, $"m={m} s={s} j={j}: {lo} for {exact:F4}");
                }
            }
            // the largest bytes of the two tables sharing a code byte add up to at most 255
            for (int s = 0; s < m; s += 2)
            {
                int Max(int sub) => sub >= PQ4FastScan.PaddedM(m) ? 0
                    : Enumerable.Range(0, 16).Max(j => qlut[(sub >> 2) * 128 + ((sub & 3) & 1) * 64 + ((sub & 3) >> 1) * 32 + j]);
                Assert.True(Max(s) + Max(s + 1) <= 255, $"m={m} pair {s}: {Max(s)} + {Max(s + 1)} overflows a byte");
            }
        }
    }
}
