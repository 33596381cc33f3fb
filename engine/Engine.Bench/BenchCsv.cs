using System.Globalization;

namespace Engine.Bench;

/// <summary>Writes result rows as CSV (RFC 4180, invariant culture, one row per setting, empty cell = not measured).</summary>
public static class BenchCsv
{
    /// <summary>The header line's columns, in order.</summary>
    public static IReadOnlyList<string> Columns { get; } =
    [
        "system", "spec", "params", "k", "recall", "qps", "p50_ms", "p99_ms", "build_seconds", "memory_bytes", "disk_bytes", "reads_per_query",
    ];

    /// <summary>Writes the header and one line per row.</summary>
    /// <exception cref="ArgumentException">A row fails <see cref="BenchResult.Validate"/>.</exception>
    public static void Write(TextWriter writer, IEnumerable<BenchResult> rows)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(rows);
        writer.Write(string.Join(',', Columns));
        writer.Write("\r\n");
        foreach (var r in rows)
        {
            r.Validate();
            string[] cells =
            [
                r.System, r.Spec, r.ParamsText, r.K > 0 ? Num(r.K) : "", Num(r.Recall), Num(r.Qps), Num(r.P50Ms), Num(r.P99Ms),
                Num(r.BuildSeconds), Num(r.MemoryBytes), Num(r.DiskBytes), Num(r.ReadsPerQuery),
            ];
            writer.Write(string.Join(',', cells.Select(Quote)));
            writer.Write("\r\n");
        }
    }

    /// <summary>Writes the CSV to <paramref name="path"/> atomically (a temporary file renamed over it).</summary>
    public static void Write(string path, IEnumerable<BenchResult> rows)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var rowList = rows.ToList();
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false));
            Write(writer, rowList);
        });
    }

    private static string Num(double? v) => v is double d ? d.ToString("R", CultureInfo.InvariantCulture) : "";

    private static string Num(long? v) => v is long l ? l.ToString(CultureInfo.InvariantCulture) : "";

    private static string Quote(string cell) =>
        cell.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + cell.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : cell;
}

/// <summary>Writes a file through a temporary sibling renamed over the target, so a failure never leaves half a file.</summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (dir is not null && !Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Cannot write '{path}': directory '{dir}' does not exist.");
        string temp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
                write(stream);
            File.Move(temp, full, overwrite: true);
        }
        finally { File.Delete(temp); }
    }
}
