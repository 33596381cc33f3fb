using Engine.Storage.Wal;

namespace Engine.Tests.Spann;

/// <summary>
/// <see cref="SpannCrashTests"/> for coded postings (SQ8 codes, full vectors in the refine file): SIGKILL at random
/// points of add, delete, checkpoint, maintenance and open with the file log, 10 kills in CI, 200 with
/// ENGINE_LONG_TESTS=1. The outcome checks are the same and deterministic: every acknowledged write is back after each
/// kill, with its exact vector (read from the refine file), and recall stays within 0.02 of a clean build.
/// </summary>
public class SpannCodedCrashTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void Sigkill_AtRandomPoints_KeepsEveryAcknowledgedWrite_WithCodedPostings()
    {
        bool longRun = Environment.GetEnvironmentVariable("ENGINE_LONG_TESTS") == "1";
        new SpannCrashTests(output).RunKills(FileWriteAheadLogProvider.KindName, longRun ? 200 : 10, seed: 4048, codec: "SQ8");
    }
}
