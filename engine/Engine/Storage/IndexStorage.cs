using Engine.Storage.Devices;
using Engine.Storage.Format;
using Engine.Storage.Wal;

namespace Engine.Storage;

/// <summary>
/// The named files of one durable index: block devices (posting and refine files), checksummed
/// <see cref="IndexFileWriter">index files</see> (metadata) and write-ahead logs. An index that is handed one of these
/// reaches its storage only through it, so the same index code runs over a directory (<see cref="FileIndexStorage"/>),
/// memory (<see cref="MemoryIndexStorage"/>) or a caller's own storage, and every file-system call stays in
/// <c>Engine.Storage</c>.
/// </summary>
/// <remarks>Names are plain file names (no directory part) chosen by the index. Thread safety: an index serialises its
/// calls that create, delete or move names; devices and readers have their own rules.</remarks>
public interface IIndexStorage
{
    /// <summary>Where the storage lives, for messages and reports (the full directory path for files).</summary>
    string Location { get; }

    /// <summary>What messages call the file <paramref name="name"/> (for files: its full path).</summary>
    string PathOf(string name);

    /// <summary>True when a device or index file <paramref name="name"/> exists.</summary>
    bool Exists(string name);

    /// <summary>Names of the existing devices and index files that start with <paramref name="prefix"/> and end with
    /// <paramref name="suffix"/>.</summary>
    IReadOnlyList<string> List(string prefix, string suffix);

    /// <summary>Opens the device <paramref name="name"/>, creating it (empty) when missing.</summary>
    IStorageDevice OpenOrCreateDevice(string name);

    /// <summary>Opens the existing device <paramref name="name"/>.</summary>
    /// <exception cref="FileNotFoundException">There is no such device.</exception>
    IStorageDevice OpenDevice(string name);

    /// <summary>Deletes the device or index file <paramref name="name"/>; nothing happens when it does not exist.
    /// A device still open stays readable through its handle where the storage allows it (files on POSIX).</summary>
    void Delete(string name);

    /// <summary>Starts writing the index file <paramref name="name"/>; it replaces any earlier one atomically on
    /// <see cref="IndexFileWriter.Commit"/>, and a writer disposed without a commit changes nothing.</summary>
    IndexFileWriter CreateIndexFile(string name, IndexFileHeader header);

    /// <summary>Opens the index file <paramref name="name"/> and verifies its header.</summary>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="CorruptIndexException">A damaged header.</exception>
    /// <exception cref="IndexFormatException">Another kind or an unsupported version.</exception>
    IndexFileReader OpenIndexFile(string name, string? expectedKind);

    /// <summary>True when a log <paramref name="name"/> exists (of any kind).</summary>
    bool LogExists(string name);

    /// <summary>The file that holds the records of the log <paramref name="name"/> of kind <paramref name="provider"/> (for messages).</summary>
    string LogFile(IWriteAheadLogProvider provider, string name);

    /// <summary>Creates an empty log <paramref name="name"/> (replacing any log of that name).</summary>
    IWriteAheadLog CreateLog(IWriteAheadLogProvider provider, string name);

    /// <summary>Opens the existing log <paramref name="name"/>; see <see cref="IWriteAheadLogProvider.Open"/>.</summary>
    /// <exception cref="CorruptIndexException">The log is missing, empty or damaged; the message names its file.</exception>
    IWriteAheadLog OpenLog(IWriteAheadLogProvider provider, string name, bool acceptLoss);

    /// <summary>Deletes the log <paramref name="name"/>; nothing happens when there is none.</summary>
    void DeleteLog(string name);

    /// <summary>Moves the log <paramref name="name"/> aside to the first free <c>name.lost-N</c> (kept for inspection)
    /// and returns where it went (<see cref="PathOf"/> of the new name); null when there was no log.</summary>
    string? MoveLogAside(string name);
}

/// <summary>
/// <see cref="IIndexStorage"/> over one directory: devices are <see cref="FileDevice"/>s, index files are written to a
/// temporary sibling and renamed, a log <c>name</c> is the sub-directory <c>name/</c> handed to the log provider.
/// The directory is created by the first call that writes.
/// </summary>
public sealed class FileIndexStorage : IIndexStorage
{
    /// <summary>Storage in <paramref name="directory"/> (made absolute; nothing is created yet).</summary>
    /// <exception cref="ArgumentException"><paramref name="directory"/> is null or empty.</exception>
    /// <exception cref="IOException"><paramref name="directory"/> is an existing file.</exception>
    public FileIndexStorage(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = Path.GetFullPath(directory);
        if (File.Exists(Directory)) throw new IOException($"'{Directory}' is a file; an index's storage is a directory.");
    }

    /// <summary>Creates the directory when it is missing (the first write does that too).</summary>
    public void EnsureCreated() => System.IO.Directory.CreateDirectory(Directory);

    /// <summary>The directory (full path).</summary>
    public string Directory { get; }

    /// <inheritdoc />
    public string Location => Directory;

    /// <inheritdoc />
    public string PathOf(string name) => Path.Combine(Directory, CheckName(name));

    /// <summary>True when <paramref name="path"/> names this storage's directory.</summary>
    public bool IsAt(string path) =>
        !string.IsNullOrEmpty(path) && Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar) == Directory.TrimEnd(Path.DirectorySeparatorChar);

    /// <inheritdoc />
    public bool Exists(string name) => File.Exists(PathOf(name));

    /// <inheritdoc />
    public IReadOnlyList<string> List(string prefix, string suffix)
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        return System.IO.Directory.GetFiles(Directory, CheckName(prefix + "*" + suffix)).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray();
    }

    /// <inheritdoc />
    public IStorageDevice OpenOrCreateDevice(string name)
    {
        System.IO.Directory.CreateDirectory(Directory);
        return new FileDevice(PathOf(name));
    }

    /// <inheritdoc />
    public IStorageDevice OpenDevice(string name) => new FileDevice(PathOf(name), create: false);

    /// <inheritdoc />
    public void Delete(string name)
    {
        string path = PathOf(name);
        if (System.IO.Directory.Exists(Directory)) File.Delete(path); // File.Delete throws for a missing directory
    }

    /// <inheritdoc />
    public IndexFileWriter CreateIndexFile(string name, IndexFileHeader header)
    {
        System.IO.Directory.CreateDirectory(Directory);
        return new IndexFileWriter(PathOf(name), header);
    }

    /// <inheritdoc />
    public IndexFileReader OpenIndexFile(string name, string? expectedKind) => new(PathOf(name), expectedKind);

    /// <inheritdoc />
    public bool LogExists(string name) => System.IO.Directory.Exists(PathOf(name));

    /// <inheritdoc />
    public string LogFile(IWriteAheadLogProvider provider, string name) => provider.LogFile(PathOf(name));

    /// <inheritdoc />
    public IWriteAheadLog CreateLog(IWriteAheadLogProvider provider, string name) => provider.Create(PathOf(name));

    /// <inheritdoc />
    public IWriteAheadLog OpenLog(IWriteAheadLogProvider provider, string name, bool acceptLoss) => provider.Open(PathOf(name), acceptLoss);

    /// <inheritdoc />
    public void DeleteLog(string name)
    {
        string dir = PathOf(name);
        if (System.IO.Directory.Exists(dir)) System.IO.Directory.Delete(dir, recursive: true);
    }

    /// <inheritdoc />
    public string? MoveLogAside(string name)
    {
        string dir = PathOf(name);
        if (!System.IO.Directory.Exists(dir)) return null;
        for (int n = 1; ; n++)
        {
            string target = $"{dir}.lost-{n}";
            if (System.IO.Directory.Exists(target) || File.Exists(target)) continue;
            System.IO.Directory.Move(dir, target);
            return target;
        }
    }

    private static string CheckName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains('/') || name.Contains('\\') || name is "." or "..")
            throw new ArgumentException($"'{name}' is not a plain file name.", nameof(name));
        return name;
    }
}

/// <summary>
/// <see cref="IIndexStorage"/> held in memory: devices are <see cref="MemoryDevice"/>s, index files byte arrays
/// replaced whole on commit, logs in-memory logs that keep their committed records. Whatever an index wrote survives
/// its <c>Dispose</c> for as long as this object lives, so an index can be closed and opened again over it (tests,
/// and indexes whose durability is someone else's concern). Every log kind is kept the same way, in memory.
/// </summary>
/// <remarks>Thread safe.</remarks>
public sealed class MemoryIndexStorage : IIndexStorage
{
    private readonly object _gate = new();
    private readonly Dictionary<string, MemoryDevice> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MemoryWriteAheadLog.State> _logs = new(StringComparer.Ordinal);

    /// <summary>Empty storage called <paramref name="name"/> in messages (<c>memory:name/file</c>).</summary>
    public MemoryIndexStorage(string name = "index")
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Location = "memory:" + name;
    }

    /// <inheritdoc />
    public string Location { get; }

    /// <inheritdoc />
    public string PathOf(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return Location + "/" + name;
    }

    /// <inheritdoc />
    public bool Exists(string name)
    {
        lock (_gate) return _devices.ContainsKey(name) || _files.ContainsKey(name);
    }

    /// <inheritdoc />
    public IReadOnlyList<string> List(string prefix, string suffix)
    {
        lock (_gate)
            return _devices.Keys.Concat(_files.Keys)
                .Where(n => n.Length >= prefix.Length + suffix.Length && n.StartsWith(prefix, StringComparison.Ordinal) && n.EndsWith(suffix, StringComparison.Ordinal))
                .Order(StringComparer.Ordinal).ToArray();
    }

    /// <inheritdoc />
    public IStorageDevice OpenOrCreateDevice(string name)
    {
        string path = PathOf(name);
        lock (_gate)
        {
            if (!_devices.TryGetValue(name, out var device)) _devices[name] = device = new MemoryDevice(path);
            return device;
        }
    }

    /// <inheritdoc />
    public IStorageDevice OpenDevice(string name)
    {
        string path = PathOf(name);
        lock (_gate)
            return _devices.TryGetValue(name, out var device) ? device : throw new FileNotFoundException($"Storage file '{path}' does not exist.", path);
    }

    /// <inheritdoc />
    public void Delete(string name)
    {
        lock (_gate)
        {
            _devices.Remove(name);
            _files.Remove(name);
        }
    }

    /// <inheritdoc />
    public IndexFileWriter CreateIndexFile(string name, IndexFileHeader header) =>
        new(PathOf(name), header, bytes => { lock (_gate) _files[name] = bytes; });

    /// <inheritdoc />
    public IndexFileReader OpenIndexFile(string name, string? expectedKind)
    {
        string path = PathOf(name);
        byte[]? bytes;
        lock (_gate) _files.TryGetValue(name, out bytes);
        return bytes is null ? throw new FileNotFoundException($"Index file '{path}' does not exist.", path) : new IndexFileReader(path, bytes, expectedKind);
    }

    /// <summary>A copy of the index file <paramref name="name"/> (tests corrupt it with <see cref="Replace"/>).</summary>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    public byte[] ReadFile(string name)
    {
        lock (_gate)
            return _files.TryGetValue(name, out var bytes) ? bytes.ToArray() : throw new FileNotFoundException($"Index file '{PathOf(name)}' does not exist.", PathOf(name));
    }

    /// <summary>Replaces the index file <paramref name="name"/> with <paramref name="bytes"/> (a copy is kept).</summary>
    public void Replace(string name, ReadOnlySpan<byte> bytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var copy = bytes.ToArray();
        lock (_gate) _files[name] = copy;
    }

    /// <inheritdoc />
    public bool LogExists(string name)
    {
        lock (_gate) return _logs.ContainsKey(name);
    }

    /// <inheritdoc />
    public string LogFile(IWriteAheadLogProvider provider, string name) => PathOf(name);

    /// <inheritdoc />
    public IWriteAheadLog CreateLog(IWriteAheadLogProvider provider, string name)
    {
        var state = new MemoryWriteAheadLog.State(PathOf(name));
        lock (_gate) _logs[name] = state;
        return new MemoryWriteAheadLog(state);
    }

    /// <inheritdoc />
    public IWriteAheadLog OpenLog(IWriteAheadLogProvider provider, string name, bool acceptLoss)
    {
        MemoryWriteAheadLog.State? state;
        lock (_gate) _logs.TryGetValue(name, out state);
        return state is null ? throw new CorruptIndexException(PathOf(name), 0, "the log is missing") : MemoryWriteAheadLog.Open(state);
    }

    /// <inheritdoc />
    public void DeleteLog(string name)
    {
        lock (_gate) _logs.Remove(name);
    }

    /// <inheritdoc />
    public string? MoveLogAside(string name)
    {
        lock (_gate)
        {
            if (!_logs.Remove(name, out var state)) return null;
            for (int n = 1; ; n++)
            {
                string target = $"{name}.lost-{n}";
                if (_logs.ContainsKey(target)) continue;
                _logs[target] = state;
                return PathOf(target);
            }
        }
    }
}
