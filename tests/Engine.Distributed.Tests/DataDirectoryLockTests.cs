using Engine.Distributed;

namespace Engine.Distributed.Tests;

/// <summary>Two silos (or a silo and any other process) never open the same data or replica directory.</summary>
public class DataDirectoryLockTests : IDisposable
{
    private const int D = 8;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "engine-dist-lock-" + Guid.NewGuid().ToString("N")[..8]);
    private static readonly ShardLayout Layout = new() { Name = "lk", Dimension = D, Metric = Metric.L2, Spec = "Flat", Shards = 1, Replicas = 2 };

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void ReplicaDirectory_OpenTwice_IsRefusedUntilTheFirstCloses()
    {
        var first = ShardStore.Open(_dir, Layout, holder: "first");
        first.Append(new WriteOp { Sequence = 1, Epoch = 1, Kind = WriteKind.Upsert, Ids = TestData.Ids(10), Vectors = TestData.Gaussian(10, D, 1) });
        var e = Assert.Throws<InvalidOperationException>(() => ShardStore.Open(_dir, Layout, holder: "second"));
        Assert.Contains(Path.GetFullPath(_dir), e.Message);
        Assert.Contains("second", e.Message);
        Assert.Contains("already open", e.Message);
        // The refused open changed nothing: the first replica keeps writing, and once it closes the directory opens.
        first.Append(new WriteOp { Sequence = 2, Epoch = 1, PreviousEpoch = 1, Kind = WriteKind.Delete, Ids = [0], Vectors = [] });
        first.Dispose();
        using var again = ShardStore.Open(_dir, Layout, holder: "third");
        Assert.Equal((2L, 9), (again.Sequence, again.Count));
    }
}
