namespace Engine.Collections;

/// <summary>
/// The exclusive claim of one open collection on its directory: a <c>lock</c> file held open with no sharing, which
/// the runtime turns into an OS lock (<c>flock</c> on Linux and macOS, a share mode on Windows). A second
/// <see cref="RecordCollection{TKey}"/> on the same directory, in this process or another, is refused while the first
/// is open: two writers appending to one log and checkpointing one store lose acknowledged writes or leave a
/// collection that no longer opens. The OS drops the lock when the process dies, so a crash never leaves it behind.
/// </summary>
public sealed class CollectionDirectoryLock : IDisposable
{
    /// <summary>The lock file's name inside a collection directory.</summary>
    public const string FileName = "lock";

    private readonly FileStream _file;

    private CollectionDirectoryLock(FileStream file) => _file = file;

    /// <summary>The directory this lock holds.</summary>
    public string Directory => Path.GetDirectoryName(_file.Name)!;

    /// <summary>Takes the lock of <paramref name="directory"/> (which must exist).</summary>
    /// <exception cref="IOException">Another open collection (in this or another process) holds the directory; the
    /// message names it. Or the lock file cannot be opened for writing for another reason (a read-only file system, an
    /// I/O error): the message names the directory and the cause, and says that it is not in use.</exception>
    /// <exception cref="UnauthorizedAccessException">The lock file cannot be created or opened for writing (no write
    /// permission on the directory, or something that is not a file in its place); the message names the directory.</exception>
    public static CollectionDirectoryLock Acquire(string directory)
    {
        string path = Path.Combine(Path.GetFullPath(directory), FileName);
        string dir = Path.GetDirectoryName(path)!;
        try
        {
            return new CollectionDirectoryLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1));
        }
        catch (IOException e) when (IsHeldByAnother(e))
        {
            throw new IOException(
                $"The collection directory '{dir}' is in use: another open collection (in this process or another) "
                + "holds it. Open a collection once and share that object (one store per directory); dispose the other first.", e);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new IOException(
                $"The collection directory '{dir}' cannot be opened for writing: its lock file '{FileName}' cannot be created or opened " +
                $"read-write ({e.Message}). A collection needs a writable directory (a read-only file system or medium cannot hold an " +
                "open collection: copy it to a writable place); the directory is not in use by another collection.", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new UnauthorizedAccessException(
                $"The collection directory '{dir}' cannot be opened for writing: its lock file '{FileName}' cannot be created or opened " +
                $"read-write ({e.Message}). A collection needs write permission on its directory, and '{FileName}' must be a file; " +
                "the directory is not in use by another collection.", e);
        }
    }

    // The lock is held by another open file: FileShare.None fails with a sharing violation on Windows and, on Unix, with
    // EWOULDBLOCK from flock (the IOException's HResult is the errno there: 11 on Linux, 35 on macOS and the BSDs).
    // Everything else (EROFS, EIO, ...) is another problem and must not be reported as "in use".
    internal static bool IsHeldByAnother(IOException e)
    {
        if (e is FileNotFoundException or DirectoryNotFoundException) return false;
        if (OperatingSystem.IsWindows()) return e.HResult is unchecked((int)0x80070020) or unchecked((int)0x80070021);
        int wouldBlock = OperatingSystem.IsLinux() || OperatingSystem.IsAndroid() ? 11 : 35;
        return e.HResult == wouldBlock;
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose() => _file.Dispose();
}
