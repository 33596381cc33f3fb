namespace Engine.Data;

/// <summary>
/// A data file or data-set directory is well formed but cannot be used as asked: an unsupported element type
/// or layout (big-endian, Fortran order), or files of one data set that disagree with each other or with
/// <c>meta.json</c>. Truncated files and bad magic raise <see cref="CorruptIndexException"/> instead.
/// </summary>
public sealed class DataFormatException : IOException
{
    /// <summary>Creates the exception naming the file and the problem.</summary>
    public DataFormatException(string path, string problem, Exception? inner = null)
        : base($"Cannot use '{path}': {problem}", inner)
    {
        FilePath = path;
        Problem = problem;
    }

    /// <summary>The file (or directory) that was rejected.</summary>
    public string FilePath { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }
}
