namespace Engine;

/// <summary>
/// An index that can check itself in depth: every stored vector, code, posting block and table entry against the
/// others (see <see cref="Verify"/>). <c>Load</c>/<c>Open</c> already run the cheap structural part of the same checks
/// (sizes, offsets, counts, finite centroids and heads) and throw <see cref="CorruptIndexException"/>; the deep part
/// reads and decodes everything, so it costs a full pass over the index.
/// </summary>
public interface IVerifiableIndex
{
    /// <summary>
    /// Reads and checks every part of the index (on disk where it lives on disk, bypassing caches). Never throws for
    /// damage it finds: each problem is listed in the report (file, offset, what); <see cref="VerifyReport.ThrowIfCorrupt"/>
    /// turns a report with problems into a <see cref="CorruptIndexException"/>.
    /// </summary>
    VerifyReport Verify();
}

/// <summary>One problem found by <see cref="IVerifiableIndex.Verify"/>.</summary>
/// <param name="File">The file holding the damaged part (or the index's description for an index that lives in memory).</param>
/// <param name="Offset">Byte offset in <paramref name="File"/> of the damaged part (its start), or -1 when unknown.</param>
/// <param name="What">What is wrong.</param>
public sealed record IndexProblem(string File, long Offset, string What)
{
    /// <inheritdoc />
    public override string ToString() => Offset >= 0 ? $"{File} at offset {Offset}: {What}" : $"{File}: {What}";
}

/// <summary>The result of <see cref="IVerifiableIndex.Verify"/>: what was checked and the problems found.</summary>
public sealed class VerifyReport
{
    /// <summary>At most this many problems are listed; <see cref="ProblemCount"/> counts them all.</summary>
    public const int MaxListed = 100;

    private readonly List<IndexProblem> _problems = new();

    /// <summary>Creates an empty report for <paramref name="subject"/> (a file or directory).</summary>
    public VerifyReport(string subject) { Subject = subject; }

    /// <summary>The file or directory that was verified.</summary>
    public string Subject { get; }

    /// <summary>Problems found (the first <see cref="MaxListed"/>).</summary>
    public IReadOnlyList<IndexProblem> Problems => _problems;

    /// <summary>Number of problems found (may exceed the listed ones).</summary>
    public int ProblemCount { get; private set; }

    /// <summary>Vectors (stored copies) that were read and checked.</summary>
    public long VectorsChecked { get; set; }

    /// <summary>Lists, postings or blocks that were read and checked.</summary>
    public long PartsChecked { get; set; }

    /// <summary>True when no problem was found.</summary>
    public bool IsClean => ProblemCount == 0;

    /// <summary>Records a problem.</summary>
    public void Add(string file, long offset, string what)
    {
        ProblemCount++;
        if (_problems.Count < MaxListed) _problems.Add(new IndexProblem(file, offset, what));
    }

    /// <summary>Records a problem reported as an exception.</summary>
    public void Add(CorruptIndexException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        Add(e.FilePath, e.Offset, e.Problem);
    }

    /// <summary>Throws a <see cref="CorruptIndexException"/> for the first problem (saying how many there are) unless clean.</summary>
    /// <exception cref="CorruptIndexException">The report lists at least one problem.</exception>
    public void ThrowIfCorrupt()
    {
        if (IsClean) return;
        var p = _problems[0];
        string more = ProblemCount > 1 ? $" (and {ProblemCount - 1} more problem{(ProblemCount > 2 ? "s" : "")})" : "";
        throw new CorruptIndexException(p.File, p.Offset, p.What + more);
    }
}
