namespace Engine.Mining.Output;

/// <summary>
/// Base of the files that hold mined rows in a sentence-transformers layout (<see cref="TrainingLayout"/>): a
/// <see cref="IMiningSink"/> that expands each <see cref="MinedRow"/> into output rows, counts rows written and
/// missing, and writes atomically: the file appears under its final name only on <see cref="Complete()"/>
/// (temporary file, then rename); disposing without completing leaves no file.
/// </summary>
/// <remarks>Subclasses encode rows (<see cref="WriteRow"/>) into <see cref="Output"/> and finish the file in
/// <see cref="Finish"/>. Not thread-safe: one writer per mining pass.</remarks>
public abstract class TrainingRowWriter : IMiningSink
{
    private readonly string _temp;
    private readonly List<TrainingRow> _expanded = new();
    private FileStream? _stream;
    private bool _completed;

    /// <summary>Validates <paramref name="layout"/> and opens a temporary file beside <paramref name="path"/>.</summary>
    /// <exception cref="ArgumentException">A bad layout (see <see cref="TrainingLayout.Validate"/>) or an empty path.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    protected TrainingRowWriter(string path, TrainingLayout layout)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(layout);
        layout.Validate();
        Layout = layout;
        Columns = layout.Columns;
        Path = System.IO.Path.GetFullPath(path);
        string? dir = System.IO.Path.GetDirectoryName(Path);
        if (dir is not null && !Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Cannot write '{Path}': directory '{dir}' does not exist.");
        _temp = Path + ".tmp-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        _stream = new FileStream(_temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20);
    }

    /// <summary>The layout the rows follow.</summary>
    public TrainingLayout Layout { get; }

    /// <summary>The columns of <see cref="Layout"/>, in order.</summary>
    public IReadOnlyList<TrainingColumn> Columns { get; }

    /// <summary>The final path.</summary>
    public string Path { get; }

    /// <summary>Output rows written so far.</summary>
    public long RowsWritten { get; private set; }

    /// <summary>Rows missing for lack of negatives (Python's <c>missing_rows</c>; see <see cref="TrainingLayout"/>).</summary>
    public long MissingRows { get; private set; }

    /// <summary>The temporary file being written (seekable); valid until <see cref="Complete()"/>.</summary>
    protected Stream Output => _stream ?? throw new InvalidOperationException("The writer is completed or disposed.");

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The row does not fit the layout (see <see cref="TrainingLayout.Expand"/>).</exception>
    public void Write(MinedRow row)
    {
        _ = Output;
        _expanded.Clear();
        MissingRows += Layout.Expand(row, _expanded);
        foreach (var r in _expanded) WriteRow(r);
        RowsWritten += _expanded.Count;
    }

    /// <summary>Encodes one output row (cells typed as <see cref="TrainingRow"/> says).</summary>
    protected abstract void WriteRow(TrainingRow row);

    /// <summary>Writes what the format keeps until the end (buffered rows, footer) into <see cref="Output"/>.</summary>
    protected abstract void Finish();

    /// <inheritdoc />
    public void Complete(MiningReport report) => Complete();

    /// <summary>Finishes the file, flushes it to disk and renames it to <see cref="Path"/>. Rows written after this are an error.</summary>
    public void Complete()
    {
        var s = _stream ?? throw new InvalidOperationException("The writer is already completed or disposed.");
        Finish();
        s.Flush(flushToDisk: true);
        s.Dispose();
        _stream = null;
        File.Move(_temp, Path, overwrite: true);
        _completed = true;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the temporary file (deleted unless completed); subclasses release their encoders first.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing) return;
        _stream?.Dispose();
        _stream = null;
        if (!_completed) { try { File.Delete(_temp); } catch (IOException) { } }
    }
}
