using Engine.Collections;
using Engine.Tests.Support;

namespace Engine.Tests.Collections;

/// <summary>
/// A collection directory that cannot be written used to be reported as "in use by another open collection": every
/// IOException of the lock file's open was taken for the lock being held. Only a held lock says so now; anything else
/// names the directory and the cause.
/// </summary>
public class CollectionDirectoryAccessTests
{
    /// <summary>Tests run as root, whom permission bits do not stop: the lock file's place is taken by a directory, which
    /// cannot be opened for writing either.</summary>
    [Fact]
    public async Task ADirectoryWhoseLockFileCannotBeOpenedForWriting_SaysSo_NotInUse()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("c");
        using (var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema()))
            await c.UpsertAsync(CollectionTestData.Make("k", 1));
        string lockPath = Path.Combine(dir, CollectionDirectoryLock.FileName);
        File.Delete(lockPath);
        Directory.CreateDirectory(lockPath);
        var e = Assert.ThrowsAny<Exception>(() => RecordCollection<string>.Open(dir));
        Assert.True(e is IOException or UnauthorizedAccessException, e.ToString());
        Assert.Contains(dir, e.Message);
        Assert.Contains("cannot be opened for writing", e.Message);
        Assert.DoesNotContain("in use:", e.Message);
        Assert.NotNull(e.InnerException);
        Directory.Delete(lockPath);
        using var again = RecordCollection<string>.Open(dir);
        Assert.Equal(1, again.Count);
    }

    /// <summary>What a read-only file system (EROFS, errno 30) gives on Linux, next to what a held lock gives: only the
    /// latter is "in use". (A real read-only mount needs privileges the tests do not assume; checked by hand, see
    /// docs/collections.md.)</summary>
    [Fact]
    public void OnlyAHeldLock_IsTakenForAnotherOpenCollection()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("c");
        Directory.CreateDirectory(dir);
        using (CollectionDirectoryLock.Acquire(dir))
        {
            var held = Assert.Throws<IOException>(() => CollectionDirectoryLock.Acquire(dir));
            Assert.Contains("is in use", held.Message);
            Assert.True(CollectionDirectoryLock.IsHeldByAnother((IOException)held.InnerException!));
        }
        Assert.False(CollectionDirectoryLock.IsHeldByAnother(new IOException("Read-only file system : 'lock'", OperatingSystem.IsWindows() ? unchecked((int)0x80070013) : 30)));
        Assert.False(CollectionDirectoryLock.IsHeldByAnother(new IOException("Input/output error", 5)));
    }
}
