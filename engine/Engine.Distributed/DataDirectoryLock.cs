using System.Text;

namespace Engine.Distributed;

/// <summary>
/// An exclusive hold on a directory: a <c>LOCK</c> file in it opened with <see cref="FileShare.None"/> (an
/// <c>flock</c> on Unix, a share-mode lock on Windows) and kept open until disposed. The operating system drops it
/// when the process dies, so a crashed silo never leaves a stale lock behind. The file records who holds it
/// (process, machine, purpose) for people reading the directory; the lock itself is the open handle.
/// </summary>
internal sealed class DataDirectoryLock : IDisposable
{
    /// <summary>The lock file's name inside a held replica directory.</summary>
    public const string FileName = "LOCK";

    /// <summary>The lock file's name at the root of a silo's data directory (<c>~</c> is not allowed in collection
    /// names, so it never clashes with a collection's directory).</summary>
    public const string SiloFileName = "~LOCK";

    private FileStream? _stream;

    private DataDirectoryLock(FileStream stream) => _stream = stream;

    /// <summary>Takes the lock on <paramref name="dir"/> (creating the directory when absent).</summary>
    /// <param name="dir">The directory to hold.</param>
    /// <param name="holder">What holds it, e.g. <c>replica c/0/1 on silo S</c> (written into the file).</param>
    /// <param name="fileName">The lock file's name in <paramref name="dir"/>.</param>
    /// <exception cref="InvalidOperationException">Another silo or process holds it; the message names the directory.</exception>
    public static DataDirectoryLock Acquire(string dir, string holder, string fileName = FileName)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, fileName);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException and not PathTooLongException)
        {
            throw new InvalidOperationException(
                $"'{Path.GetFullPath(dir)}' is already open by another silo or process (its {fileName} file is held), so {holder} cannot open it: " +
                "two silos must never share a data directory; give each silo its own --data-dir (DistributedEngineOptions.DataDirectory).", e);
        }
        try
        {
            var text = Encoding.UTF8.GetBytes($"pid {Environment.ProcessId} on {Environment.MachineName}: {holder}\n");
            stream.SetLength(0);
            stream.Write(text);
            stream.Flush();
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        return new DataDirectoryLock(stream);
    }

    /// <summary>Releases the lock (the file stays; its presence alone means nothing).</summary>
    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
    }
}
