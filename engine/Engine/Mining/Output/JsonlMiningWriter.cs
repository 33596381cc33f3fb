using System.Text.Json;

namespace Engine.Mining.Output;

/// <summary>
/// Writes rows as JSON lines: <c>{"anchor":…,"positives":[…],"negatives":[…],"scores":[…],"positive_scores":[…]}</c>.
/// Floats use the shortest round-trip form. The file appears under its final name only on
/// <see cref="Complete"/> (temp file, then rename); disposing without completing leaves no file.
/// </summary>
public sealed class JsonlMiningWriter : IMiningSink
{
    private readonly string _path;
    private readonly string _temp;
    private FileStream? _stream;
    private readonly Utf8JsonWriter _json;
    private bool _completed;

    /// <summary>Opens a temporary file beside <paramref name="path"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    public JsonlMiningWriter(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _path = System.IO.Path.GetFullPath(path);
        string? dir = System.IO.Path.GetDirectoryName(_path);
        if (dir is not null && !Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Cannot write '{_path}': directory '{dir}' does not exist.");
        _temp = _path + ".tmp-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        _stream = new FileStream(_temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        _json = new Utf8JsonWriter(_stream);
    }

    /// <summary>The final path.</summary>
    public string Path => _path;

    /// <inheritdoc />
    public void Write(MinedRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        var s = _stream ?? throw new InvalidOperationException("The writer is completed or disposed.");
        _json.Reset(s);
        _json.WriteStartObject();
        _json.WriteNumber("anchor", row.Anchor);
        WriteArray("positives", row.Positives);
        WriteArray("negatives", row.Negatives);
        WriteArray("scores", row.Scores);
        WriteArray("positive_scores", row.PositiveScores);
        _json.WriteEndObject();
        _json.Flush();
        s.WriteByte((byte)'\n');
    }

    private void WriteArray(string name, long[] values)
    {
        _json.WriteStartArray(name);
        foreach (long v in values) _json.WriteNumberValue(v);
        _json.WriteEndArray();
    }

    private void WriteArray(string name, float[] values)
    {
        _json.WriteStartArray(name);
        foreach (float v in values) _json.WriteNumberValue(v);
        _json.WriteEndArray();
    }

    /// <inheritdoc />
    public void Complete(MiningReport report)
    {
        var s = _stream ?? throw new InvalidOperationException("The writer is already completed or disposed.");
        _json.Dispose();
        s.Flush(flushToDisk: true);
        s.Dispose();
        _stream = null;
        File.Move(_temp, _path, overwrite: true);
        _completed = true;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_stream is not null) _json.Dispose();
        _stream?.Dispose();
        _stream = null;
        if (!_completed) { try { File.Delete(_temp); } catch (IOException) { } }
    }

    /// <summary>Reads a JSONL file written by this writer (for comparisons and tests).</summary>
    /// <exception cref="FormatException">A line is not a mined row (names the line number).</exception>
    public static IEnumerable<MinedRow> Read(string path)
    {
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (line.Length == 0) continue;
            MinedRow row;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var r = doc.RootElement;
                row = new MinedRow(r.GetProperty("anchor").GetInt64(),
                    r.GetProperty("positives").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                    r.TryGetProperty("positive_scores", out var ps) ? ps.EnumerateArray().Select(e => e.GetSingle()).ToArray() : [],
                    r.GetProperty("negatives").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                    r.TryGetProperty("scores", out var sc) ? sc.EnumerateArray().Select(e => e.GetSingle()).ToArray() : []);
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new FormatException($"'{path}' line {lineNo} is not a mined row: {ex.Message}", ex);
            }
            yield return row;
        }
    }
}
