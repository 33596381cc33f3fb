using System.Runtime.InteropServices;
using System.Text;

namespace Engine.Native;

/// <summary>Validation of raw C arguments; each check throws <see cref="ArgumentException"/> naming the problem.</summary>
internal static unsafe class NativeArgs
{
    // Throws on malformed input instead of substituting U+FFFD (which would, e.g., save to another path than asked).
    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Reads a required NUL-terminated UTF-8 string. Malformed UTF-8 is an <see cref="ArgumentException"/> naming the
    /// argument and the first bad byte, never decoded with replacement characters: a path such as <c>"aÿ.idx"</c>
    /// would otherwise silently become <c>"a�.idx"</c>, another file (.NET file names are Unicode, so a file name
    /// that is not UTF-8 cannot be reached through the library at all).
    /// </summary>
    public static string Utf8(byte* text, string name)
    {
        if (text == null) throw new ArgumentNullException(name, $"{name} is a null pointer.");
        var bytes = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(text);
        try
        {
            return s_strictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            string bad = e.BytesUnknown is { Length: > 0 } b ? $"0x{b[0]:X2}" : "a byte";
            throw new ArgumentException(
                $"{name} is not valid UTF-8: {bad} at byte offset {Math.Max(e.Index, 0)} does not form a character (strings, paths included, must be UTF-8).",
                name);
        }
    }

    /// <summary>Checks a row batch against the index dimension and returns it as a span of n × d floats.</summary>
    public static ReadOnlySpan<float> Rows(float* data, long n, int d, IVectorIndex index, string name)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(name, n, $"The number of rows in {name} must not be negative.");
        if (d != index.Dimension)
            throw new ArgumentException($"Dimension mismatch: {name} has {d} columns but the index dimension is {index.Dimension}.", name);
        if (n == 0) return ReadOnlySpan<float>.Empty;
        if (data == null) throw new ArgumentNullException(name, $"{name} is a null pointer.");
        return new ReadOnlySpan<float>(data, Length(n, d, name));
    }

    /// <summary>Checks and returns a span of <paramref name="n"/> ids (a null pointer is allowed when n is 0).</summary>
    public static ReadOnlySpan<long> Ids(long* ids, long n, string name)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(name, n, $"The number of ids in {name} must not be negative.");
        if (n == 0) return ReadOnlySpan<long>.Empty;
        if (ids == null) throw new ArgumentNullException(name, $"{name} is a null pointer.");
        return new ReadOnlySpan<long>(ids, Length(n, 1, name));
    }

    /// <summary>n × width as an int span length, or an error telling the caller to split the batch.</summary>
    public static int Length(long n, int width, string name)
    {
        long total = n * (long)width;
        if (n > int.MaxValue || total > Array.MaxLength)
            throw new ArgumentOutOfRangeException(name, n, $"{name} has {n} rows of {width} values, more than one call accepts ({Array.MaxLength} values); split the batch.");
        return (int)total;
    }

    /// <summary>Checks an output pointer.</summary>
    public static void Out(void* p, string name)
    {
        if (p == null) throw new ArgumentNullException(name, $"{name} is a null pointer.");
    }

    /// <summary>
    /// Reads CSR lists: list i is <c>values[offsets[i] .. offsets[i+1])</c>. Returns null when both pointers are
    /// null; offsets must start at 0 and never decrease.
    /// </summary>
    public static long[][]? Csr(long* offsets, long* values, int rows, string name)
    {
        if (offsets == null && values == null) return null;
        if (offsets == null) throw new ArgumentNullException(name, $"{name} is given but its offsets are a null pointer.");
        var off = new ReadOnlySpan<long>(offsets, rows + 1);
        if (off[0] != 0) throw new ArgumentException($"{name} offsets must start at 0 (got {off[0]}).", name);
        for (int i = 0; i < rows; i++)
            if (off[i + 1] < off[i])
                throw new ArgumentException($"{name} offsets decrease at anchor {i} ({off[i]} > {off[i + 1]}).", name);
        var all = Ids(values, off[rows], name);
        var lists = new long[rows][];
        for (int i = 0; i < rows; i++) lists[i] = all[(int)off[i]..(int)off[i + 1]].ToArray();
        return lists;
    }
}
