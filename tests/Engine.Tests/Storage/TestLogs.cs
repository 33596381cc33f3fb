using Engine.Faster;
using Engine.Storage.Wal;

namespace Engine.Tests.Storage;

/// <summary>The write-ahead log matrix: durability tests run against every log kind.</summary>
public static class TestLogs
{
    /// <summary>Kinds for <c>[MemberData]</c>.</summary>
    public static TheoryData<string> Kinds => new() { FileWriteAheadLogProvider.KindName, WriteAheadLogs.FasterKind };

    /// <summary>The provider of <paramref name="kind"/>.</summary>
    public static IWriteAheadLogProvider Provider(string kind) => kind switch
    {
        FileWriteAheadLogProvider.KindName => FileWriteAheadLogProvider.Instance,
        WriteAheadLogs.FasterKind => FasterWriteAheadLogProvider.Instance,
        _ => throw new ArgumentException($"unknown log kind {kind}", nameof(kind)),
    };
}
