namespace Engine.Storage.Wal;

/// <summary>
/// Makes and opens one kind of <see cref="IWriteAheadLog"/> in a directory. Creating and opening are distinct on
/// purpose: an index that has a log must find it, so <see cref="Open"/> never creates one.
/// </summary>
public interface IWriteAheadLogProvider
{
    /// <summary>Short name of the log kind (<c>file</c>, <c>faster</c>); indexes record it in their metadata.</summary>
    string Kind { get; }

    /// <summary>The file that holds the log's records in <paramref name="directory"/> (for messages).</summary>
    string LogFile(string directory);

    /// <summary>Creates an empty log in <paramref name="directory"/> (created if missing), replacing any log there.</summary>
    IWriteAheadLog Create(string directory);

    /// <summary>Opens the existing log in <paramref name="directory"/>, recovering it to its last commit.</summary>
    /// <param name="directory">The log directory.</param>
    /// <param name="acceptLoss">When true, a log that ends before its last commit opens with the records it still holds
    /// (the gap is reported in <see cref="IWriteAheadLog.Recovery"/>); when false it is refused.</param>
    /// <exception cref="CorruptIndexException">The log is missing, empty, damaged, or (unless
    /// <paramref name="acceptLoss"/>) shorter than its last commit; the message names the file.</exception>
    IWriteAheadLog Open(string directory, bool acceptLoss = false);
}

/// <summary>The built-in <see cref="FileWriteAheadLog"/> in <c>wal.log</c> inside the log directory.</summary>
public sealed class FileWriteAheadLogProvider : IWriteAheadLogProvider
{
    /// <summary>The kind name, <c>file</c>.</summary>
    public const string KindName = "file";

    /// <summary>The shared instance.</summary>
    public static FileWriteAheadLogProvider Instance { get; } = new();

    /// <inheritdoc />
    public string Kind => KindName;

    /// <inheritdoc />
    public string LogFile(string directory) => Path.Combine(Path.GetFullPath(directory), "wal.log");

    /// <inheritdoc />
    public IWriteAheadLog Create(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        return FileWriteAheadLog.Create(LogFile(directory));
    }

    /// <inheritdoc />
    public IWriteAheadLog Open(string directory, bool acceptLoss = false) => FileWriteAheadLog.Open(LogFile(directory), acceptLoss);
}
