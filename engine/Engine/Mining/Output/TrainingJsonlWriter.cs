using System.Globalization;
using System.Text;

namespace Engine.Mining.Output;

/// <summary>
/// Writes rows of a sentence-transformers layout as JSON lines, byte for byte as the Python function writes them
/// (<c>HardNegatives.write_jsonl</c>: <c>json.dumps(row, ensure_ascii=False)</c> per line), so files from C#, the CLI
/// and Python can be compared with <c>cmp</c>; <c>pandas.read_json(path, lines=True)</c> and
/// <c>datasets.load_dataset("json", …)</c> read them.
/// </summary>
/// <remarks>
/// Python's formatting: <c>", "</c> and <c>": "</c> separators; texts in UTF-8 with only <c>"</c>, <c>\</c> and
/// control characters escaped; ids and labels as integers; scores as Python writes a float32 widened to a double
/// (the shortest text that reads back to that double, e.g. <c>0.8999999761581421</c>, <c>1.0</c>, <c>1e-05</c>),
/// non-finite values as <c>NaN</c> / <c>Infinity</c>.
/// </remarks>
public sealed class TrainingJsonlWriter : TrainingRowWriter
{
    private readonly StreamWriter _text;
    private readonly StringBuilder _line = new();

    /// <summary>Opens a temporary file beside <paramref name="path"/> for rows in <paramref name="layout"/>.</summary>
    /// <exception cref="ArgumentException">A bad layout (see <see cref="TrainingLayout.Validate"/>).</exception>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    public TrainingJsonlWriter(string path, TrainingLayout layout) : base(path, layout)
    {
        _text = new StreamWriter(Output, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true), 1 << 16, leaveOpen: true);
    }

    /// <inheritdoc />
    protected override void WriteRow(TrainingRow row)
    {
        _line.Clear();
        AppendRow(_line, Columns, row);
        _line.Append('\n');
        _text.Write(_line);
    }

    /// <summary>One row as Python's <c>json.dumps(row, ensure_ascii=False)</c> writes it (no newline).</summary>
    public static string Format(IReadOnlyList<TrainingColumn> columns, TrainingRow row)
    {
        ArgumentNullException.ThrowIfNull(columns);
        var sb = new StringBuilder();
        AppendRow(sb, columns, row);
        return sb.ToString();
    }

    private static void AppendRow(StringBuilder sb, IReadOnlyList<TrainingColumn> columns, TrainingRow row)
    {
        if (row.Cells is null || row.Cells.Length != columns.Count)
            throw new ArgumentException($"The row has {row.Cells?.Length ?? 0} cells but the layout has {columns.Count} columns.", nameof(row));
        sb.Append('{');
        for (int c = 0; c < columns.Count; c++)
        {
            if (c > 0) sb.Append(", ");
            AppendString(sb, columns[c].Name);
            sb.Append(": ");
            AppendCell(sb, row.Cells[c]);
        }
        sb.Append('}');
    }

    private static void AppendCell(StringBuilder sb, object cell)
    {
        switch (cell)
        {
            case string s: AppendString(sb, s); break;
            case long v: sb.Append(v.ToString(CultureInfo.InvariantCulture)); break;
            case float f: sb.Append(PythonFloat(f)); break;
            case string[] a: AppendList(sb, a, AppendString); break;
            case long[] a: AppendList(sb, a, static (b, v) => b.Append(v.ToString(CultureInfo.InvariantCulture))); break;
            case float[] a: AppendList(sb, a, static (b, v) => b.Append(PythonFloat(v))); break;
            default: throw new ArgumentException($"A training cell of type {cell?.GetType().Name ?? "null"} cannot be written.", nameof(cell));
        }
    }

    private static void AppendList<T>(StringBuilder sb, T[] values, Action<StringBuilder, T> append)
    {
        sb.Append('[');
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            append(sb, values[i]);
        }
        sb.Append(']');
    }

    private static void AppendString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char ch in s)
        {
            switch (ch)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (ch < ' ') sb.Append("\\u").Append(((int)ch).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(ch);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>
    /// Python's <c>repr(float(x))</c> of a float32 widened to a double: the shortest digits that read back to the
    /// double, positional for decimal exponents −4 ≤ e &lt; 16 (with <c>.0</c> on integers), else <c>1.5e-05</c> /
    /// <c>1e+16</c>; <c>NaN</c>, <c>Infinity</c>, <c>-Infinity</c> as <c>json.dumps</c> writes them.
    /// </summary>
    public static string PythonFloat(float value)
    {
        double d = value;
        if (double.IsNaN(d)) return "NaN";
        if (double.IsPositiveInfinity(d)) return "Infinity";
        if (double.IsNegativeInfinity(d)) return "-Infinity";
        // "E16" is not shortest; "R" on .NET Core 3.0+ is the shortest round-trip form, which Python's repr also uses.
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        bool negative = r[0] == '-';
        if (negative) r = r[1..];
        int exponent = 0;
        int e = r.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            r = r[..e];
        }
        int dot = r.IndexOf('.');
        string digits = dot < 0 ? r : r.Remove(dot, 1);
        int point = (dot < 0 ? r.Length : dot) + exponent; // value = 0.digits × 10^point
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') { lead++; point--; }
        digits = digits[lead..].TrimEnd('0');
        if (digits.Length == 0) { digits = "0"; point = 1; }
        var sb = new StringBuilder(negative ? "-" : "");
        if (point <= -4 || point > 16)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits, 1, digits.Length - 1);
            int exp = point - 1;
            sb.Append('e').Append(exp < 0 ? '-' : '+').Append(Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (point <= 0) sb.Append("0.").Append('0', -point).Append(digits);
        else if (point >= digits.Length) sb.Append(digits).Append('0', point - digits.Length).Append(".0");
        else sb.Append(digits, 0, point).Append('.').Append(digits, point, digits.Length - point);
        return sb.ToString();
    }

    /// <inheritdoc />
    protected override void Finish() => _text.Flush();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            try { _text.Dispose(); } catch (ObjectDisposedException) { }
        }
        base.Dispose(disposing);
    }
}
