namespace Engine.Tests.Data;

/// <summary>A unique temporary directory per test, deleted on dispose.</summary>
internal sealed class DataTempDir : IDisposable
{
    public DataTempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "engine-data-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }

    /// <summary>Deterministic pseudo-random floats (fixed seed) for round-trip tests.</summary>
    public static float[] RandomFloats(int count, int seed)
    {
        var rng = new Random(seed);
        var v = new float[count];
        for (int i = 0; i < count; i++) v[i] = (float)(rng.NextDouble() * 200 - 100);
        return v;
    }
}
