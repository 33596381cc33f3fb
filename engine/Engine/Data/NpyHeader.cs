using System.Globalization;
using System.Text;

namespace Engine.Data;

/// <summary>
/// The dictionary at the start of a <c>.npy</c> file, e.g.
/// <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (60000, 784), }</c>.
/// </summary>
/// <param name="Descr">The dtype string (<c>&lt;f4</c>, <c>|u1</c>, ...).</param>
/// <param name="FortranOrder">True for column-major data.</param>
/// <param name="Shape">Axis sizes; empty for a scalar.</param>
public sealed record NpyHeader(string Descr, bool FortranOrder, long[] Shape)
{
    /// <summary>
    /// Parses the Python dict literal numpy writes: string keys; string, boolean, integer-tuple values.
    /// </summary>
    /// <exception cref="FormatException">Not such a literal, a key is missing, or <c>descr</c> is a structured dtype.</exception>
    public static NpyHeader Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var p = new Parser(text);
        string? descr = null;
        bool? fortran = null;
        long[]? shape = null;
        p.Expect('{');
        while (!p.TryConsume('}'))
        {
            string key = p.ReadString();
            p.Expect(':');
            switch (key)
            {
                case "descr":
                    if (p.Peek() is '[') throw new FormatException("structured dtypes (a list in 'descr') are not supported; store a plain numeric array.");
                    descr = p.ReadString();
                    break;
                case "fortran_order":
                    fortran = p.ReadBool();
                    break;
                case "shape":
                    shape = p.ReadTuple();
                    break;
                default:
                    throw new FormatException($"unexpected key '{key}'.");
            }
            if (!p.TryConsume(',')) { p.Expect('}'); break; }
        }
        if (descr is null) throw new FormatException("missing 'descr'.");
        if (fortran is null) throw new FormatException("missing 'fortran_order'.");
        if (shape is null) throw new FormatException("missing 'shape'.");
        return new NpyHeader(descr, fortran.Value, shape);
    }

    /// <summary>Formats the dict the way numpy does (without the padding and newline).</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("{'descr': '").Append(Descr).Append("', 'fortran_order': ").Append(FortranOrder ? "True" : "False").Append(", 'shape': (");
        for (int i = 0; i < Shape.Length; i++)
        {
            sb.Append(Shape[i].ToString(CultureInfo.InvariantCulture));
            if (Shape.Length == 1 || i < Shape.Length - 1) sb.Append(Shape.Length == 1 ? "," : ", ");
        }
        sb.Append("), }");
        return sb.ToString();
    }

    private ref struct Parser(string text)
    {
        private readonly string _s = text;
        private int _i;

        public char? Peek()
        {
            SkipSpace();
            return _i < _s.Length ? _s[_i] : null;
        }

        public bool TryConsume(char c)
        {
            if (Peek() != c) return false;
            _i++;
            return true;
        }

        public void Expect(char c)
        {
            if (!TryConsume(c)) throw new FormatException($"expected '{c}' at character {_i}.");
        }

        public string ReadString()
        {
            char? q = Peek();
            if (q is not ('\'' or '"')) throw new FormatException($"expected a quoted string at character {_i}.");
            int end = _s.IndexOf(q.Value, _i + 1);
            if (end < 0) throw new FormatException($"unterminated string at character {_i}.");
            string value = _s[(_i + 1)..end];
            _i = end + 1;
            return value;
        }

        public bool ReadBool()
        {
            SkipSpace();
            if (Matches("True")) return true;
            if (Matches("False")) return false;
            throw new FormatException($"expected True or False at character {_i}.");
        }

        public long[] ReadTuple()
        {
            Expect('(');
            var values = new List<long>();
            while (!TryConsume(')'))
            {
                SkipSpace();
                int start = _i;
                while (_i < _s.Length && char.IsAsciiDigit(_s[_i])) _i++;
                if (start == _i || !long.TryParse(_s.AsSpan(start, _i - start), NumberStyles.None, CultureInfo.InvariantCulture, out long v))
                    throw new FormatException($"expected a non-negative integer at character {start}.");
                values.Add(v);
                if (!TryConsume(',')) { Expect(')'); break; }
            }
            return [.. values];
        }

        private bool Matches(string word)
        {
            if (string.CompareOrdinal(_s, _i, word, 0, word.Length) != 0) return false;
            _i += word.Length;
            return true;
        }

        private void SkipSpace()
        {
            while (_i < _s.Length && char.IsWhiteSpace(_s[_i])) _i++;
        }
    }
}
