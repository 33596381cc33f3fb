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
    /// message names it.</exception>
    public static CollectionDirectoryLock Acquire(string directory)
    {
        string path = Path.Combine(Path.GetFullPath(directory), FileName);
        try
        {
            return new CollectionDirectoryLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1));
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new IOException(
                $"The collection directory '{Path.GetDirectoryName(path)}' is in use: another open collection (in this process or another) "
                + "holds it. Open a collection once and share that object (one store per directory); dispose the other first.", e);
        }
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose() => _file.Dispose();
}
