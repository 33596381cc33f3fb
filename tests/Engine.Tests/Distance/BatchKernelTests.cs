using Engine.Distance;

namespace Engine.Tests.Distance;

public class BatchKernelTests
{
    public static IEnumerable<object[]> Levels() => KernelReference.FloatLevels();

    private static readonly int[] Dims = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 129, 300];

    [Theory]
    [MemberData(nameof(Levels))]
    internal void OneToMany_matches_reference_for_tails_in_rows_and_dimension(SimdLevel level)
    {
        var rng = new Random(42);
        foreach (int d in Dims)
            for (int n = 0; n <= 9; n++)
                CheckOneToMany(rng, d, n, level);
    }

    // Every dimension 0..256 (the four-row blocked kernels cover d ≤ 256, with tails of every width) and row counts
    // with every remainder modulo four, at every SIMD level.
    [Theory]
    [MemberData(nameof(Levels))]
    internal void OneToMany_matches_reference_at_every_length_up_to_256(SimdLevel level)
    {
        var rng = new Random(7);
        for (int d = 0; d <= 256; d++)
            foreach (int n in (int[])[0, 1, 3, 4, 5, 8, 11])
                CheckOneToMany(rng, d, n, level);
    }

    // n random rows of d floats against a random query: both kernels against the double reference, and the result
    // slot past n untouched.
    private static void CheckOneToMany(Random rng, int d, int n, SimdLevel level)
    {
        var q = KernelReference.RandomFloats(rng, d);
        var rows = KernelReference.RandomFloats(rng, n * d);
        var l2 = new float[n + 1];
        var dot = new float[n + 1];
        l2[n] = dot[n] = 12345f;
        Distances.SquaredL2OneToManyAt(q, rows, l2, level);
        Distances.DotOneToManyAt(q, rows, dot, level);
        for (int i = 0; i < n; i++)
        {
            var row = rows.AsSpan(i * d, d);
            var (e, m) = KernelReference.SquaredL2(q, row);
            KernelReference.Close(e, m, l2[i], d, $"L2 d={d} n={n} row={i} {level}");
            (e, m) = KernelReference.Dot(q, row);
            KernelReference.Close(e, m, dot[i], d, $"Dot d={d} n={n} row={i} {level}");
        }
        Assert.Equal(12345f, l2[n]);
        Assert.Equal(12345f, dot[n]);
    }

    public static IEnumerable<object[]> Shapes()
    {
        int[][] shapes =
        [
            [1, 1, 1], [1, 5, 3], [5, 1, 3], [2, 3, 17], [7, 13, 33], [8, 8, 8], [9, 7, 16], [15, 6, 5],
            [16, 12, 64], [17, 25, 31], [31, 9, 100], [32, 16, 128], [33, 35, 65], [40, 50, 7], [64, 70, 12],
            [65, 8, 1], [3, 100, 300], [32, 41, 784], [129, 17, 33], [130, 9, 5], [300, 13, 3],
            [32, 8, 1], [96, 27, 64], [64, 24, 100], // whole 32 × 8 and 16 × 6 tiles (the 512- and 256-bit kernels store them transposed in registers)
        ];
        foreach (var level in Simd.UpTo(Simd.Best))
            foreach (var s in shapes)
                yield return [level, s[0], s[1], s[2]];
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    internal void ManyToMany_matches_reference(SimdLevel level, int nx, int ny, int d)
    {
        var rng = new Random(nx * 1_000_003 + ny * 1009 + d);
        var x = KernelReference.RandomFloats(rng, nx * d);
        var y = KernelReference.RandomFloats(rng, ny * d);
        var dots = new float[nx * ny + 1];
        dots[^1] = -7f;
        Distances.DotManyToManyAt(x, y, d, dots, level);
        var xn = new float[nx];
        var yn = new float[ny];
        Distances.SquaredNormsAt(x, d, xn, level);
        Distances.SquaredNormsAt(y, d, yn, level);
        var l2 = new float[nx * ny];
        Distances.SquaredL2ManyToManyAt(x, y, d, xn, yn, l2, level);
        for (int i = 0; i < nx; i++)
        {
            var xi = x.AsSpan(i * d, d);
            for (int j = 0; j < ny; j++)
            {
                var yj = y.AsSpan(j * d, d);
                var (e, m) = KernelReference.Dot(xi, yj);
                KernelReference.Close(e, m, dots[i * ny + j], d, $"dot[{i},{j}] {level}");
                // Via norms the error scales with ‖x‖² + ‖y‖², not with the distance itself.
                var (l, _) = KernelReference.SquaredL2(xi, yj);
                double mag = KernelReference.Dot(xi, xi).Value + KernelReference.Dot(yj, yj).Value;
                KernelReference.Close(l, 2 * mag, l2[i * ny + j], d, $"l2[{i},{j}] {level}");
                Assert.True(l2[i * ny + j] >= 0);
            }
        }
        Assert.Equal(-7f, dots[^1]);
    }

    [Fact]
    public void ManyToMany_of_a_row_with_itself_clamps_at_zero()
    {
        var rng = new Random(3);
        var x = KernelReference.RandomFloats(rng, 3 * 50, 100f);
        var norms = new float[3];
        Distances.SquaredNorms(x, 50, norms);
        var result = new float[9];
        Distances.SquaredL2ManyToMany(x, x, 50, norms, norms, result);
        for (int i = 0; i < 3; i++) Assert.True(result[i * 3 + i] >= 0 && result[i * 3 + i] < 1e-1f);
    }

    [Fact]
    public void Bad_shapes_throw_with_the_argument_named()
    {
        Assert.Throws<ArgumentException>("rows", () => Distances.DotOneToMany(new float[3], new float[7], new float[3]));
        Assert.Throws<ArgumentException>("result", () => Distances.SquaredL2OneToMany(new float[3], new float[9], new float[2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Distances.DotManyToMany(new float[3], new float[3], 0, new float[1]));
        Assert.Throws<ArgumentException>("x", () => Distances.DotManyToMany(new float[4], new float[3], 3, new float[1]));
        Assert.Throws<ArgumentException>("y", () => Distances.DotManyToMany(new float[3], new float[4], 3, new float[1]));
        Assert.Throws<ArgumentException>("result", () => Distances.DotManyToMany(new float[6], new float[6], 3, new float[3]));
        Assert.Throws<ArgumentException>(() => Distances.SquaredL2ManyToMany(new float[6], new float[6], 3, new float[1], new float[2], new float[4]));
        Assert.Throws<ArgumentException>("rows", () => Distances.SquaredNorms(new float[5], 2, new float[3]));
        Assert.Throws<ArgumentException>("norms", () => Distances.SquaredNorms(new float[6], 2, new float[2]));
    }
}
