using System.Globalization;
using System.Runtime.Intrinsics;

namespace Engine.Tests.Support;

/// <summary>
/// What the golden-result tests share (<c>IvfGoldenTests</c>, <c>SpannSearchGoldenTests</c>): where fixtures live in
/// the source tree, the key of the vector width the results were recorded at, and the close comparison used on a
/// machine with another width (float results depend on it; bit identity is asserted only at the recorded width).
/// </summary>
internal static class GoldenFixture
{
    /// <summary>The fixture folder <c>tests/Engine.Tests/{area}/Golden</c> of the source tree.</summary>
    public static string Folder(string area) => Path.Combine(Root(), "tests", "Engine.Tests", area, "Golden");

    private static string Root()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Engine.sln"))) return d.FullName;
        throw new InvalidOperationException("Engine.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The vector width and kernel levels this machine runs at.</summary>
    public static string SimdKey =>
        $"{(Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 128)}/{Engine.Distance.Simd.Best}/{Engine.Distance.Simd.BestInt8}";

    /// <summary>Writes a fixture: the SIMD key line, then one "name value" line per result.</summary>
    public static void Write(string file, IEnumerable<(string Name, string Value)> results)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllLines(file, new[] { "simd " + SimdKey }.Concat(results.Select(c => c.Name + " " + c.Value)));
    }

    /// <summary>
    /// Asserts that <paramref name="got"/> holds exactly the fixture's configurations with its values: bit for bit when
    /// this machine's SIMD key is the recorded one, else by <see cref="AssertClose"/>.
    /// </summary>
    public static void AssertMatches(string file, IReadOnlyCollection<(string Name, string Value)> got)
    {
        var lines = File.ReadAllLines(file);
        string recordedKey = lines[0]["simd ".Length..];
        var golden = lines.Skip(1).Select(l => l.Split(' ', 2)).ToDictionary(a => a[0], a => a[1]);
        Assert.Equal(golden.Count, got.Count);
        foreach (var (name, value) in got)
        {
            Assert.True(golden.TryGetValue(name, out var want), $"configuration {name} is not in the fixture");
            if (recordedKey == SimdKey) Assert.True(want == value, $"configuration {name}: results differ from the recorded ones\nwant {want}\ngot  {value}");
            else AssertClose(name, want!, value);
        }
    }

    /// <summary>Floats as comma-separated hex bit patterns (exact).</summary>
    public static string Hex(IEnumerable<float> values) =>
        string.Join(',', values.Select(f => BitConverter.SingleToInt32Bits(f).ToString("x8", CultureInfo.InvariantCulture)));

    /// <summary>A float from its hex bit pattern.</summary>
    public static float Bits(string hex) => BitConverter.Int32BitsToSingle(int.Parse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture));

    /// <summary>
    /// On a machine with another vector width: of "labels|distances|…" records, ≥ 95 % of the ids equal position by
    /// position and the sorted distances within 1e-3 (relative).
    /// </summary>
    public static void AssertClose(string name, string want, string got)
    {
        var w = want.Split('|');
        var g = got.Split('|');
        var wl = w[0].Split(',');
        var gl = g[0].Split(',');
        int same = wl.Zip(gl).Count(p => p.First == p.Second);
        Assert.True(same >= 0.95 * wl.Length, $"configuration {name}: only {same}/{wl.Length} ids agree with the recorded results");
        var wd = w[1].Split(',').Select(Bits).ToArray();
        var gd = g[1].Split(',').Select(Bits).ToArray();
        Array.Sort(wd);
        Array.Sort(gd);
        for (int i = 0; i < wd.Length; i++)
            if (float.IsFinite(wd[i]))
                Assert.True(Math.Abs(wd[i] - gd[i]) <= 1e-3 * Math.Max(1, Math.Abs(wd[i])), $"configuration {name}: distance {gd[i]} vs recorded {wd[i]}");
    }
}
