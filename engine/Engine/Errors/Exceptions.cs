namespace Engine;

/// <summary>A file (index, data set, WAL) is truncated, has a bad checksum or an impossible field.</summary>
public sealed class CorruptIndexException : IOException
{
    /// <summary>Creates the exception naming the file and byte offset of the problem.</summary>
    public CorruptIndexException(string path, long offset, string problem, Exception? inner = null)
        : base($"Corrupt file '{path}' at offset {offset}: {problem}", inner)
    {
        FilePath = path;
        Offset = offset;
        Problem = problem;
    }

    /// <summary>The file that failed to read.</summary>
    public string FilePath { get; }

    /// <summary>Byte offset where the problem was detected (the start of the bad block or field).</summary>
    public long Offset { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }
}

/// <summary>A file was written by another index kind, spec or format version than the reader expects.</summary>
public sealed class IndexFormatException : IOException
{
    /// <summary>Creates the exception.</summary>
    public IndexFormatException(string path, string problem)
        : base($"Cannot load '{path}': {problem}")
    {
        FilePath = path;
    }

    /// <summary>The file that was rejected.</summary>
    public string FilePath { get; }
}
