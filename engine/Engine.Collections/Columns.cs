using System.Numerics;

namespace Engine.Collections;

/// <summary>
/// In-memory state of the live records, by internal id: a live bitset and one column per indexed data field.
/// Filters are evaluated against it into an id bitset. Not thread-safe: the collection serialises writers against readers.
/// </summary>
internal sealed class Columns
{
    private readonly CollectionSchema _schema;
    private readonly Column?[] _columns;
    private ulong[] _live = new ulong[1];
    private int _capacity = 64;

    public Columns(CollectionSchema schema)
    {
        _schema = schema;
        _columns = schema.DataFields.Select(f => f.Indexed ? Column.Create(f, 64) : null).ToArray();
    }

    /// <summary>Live records.</summary>
    public long Count { get; private set; }

    /// <summary>Ids are dense: this is one past the largest id seen.</summary>
    public int Words => _live.Length;

    public bool IsLive(long id) => id >= 0 && id < _capacity && (_live[id >> 6] & (1UL << (int)id)) != 0;

    public void Set(long id, object?[] values)
    {
        if (id >= int.MaxValue) throw new InvalidOperationException("The collection has used 2^31 internal ids (inserts and replacements); it must be rebuilt.");
        Grow((int)id + 1);
        if (!IsLive(id)) Count++;
        _live[id >> 6] |= 1UL << (int)id;
        for (int i = 0; i < _columns.Length; i++) _columns[i]?.Set((int)id, values[i]);
    }

    public void Clear(long id)
    {
        if (!IsLive(id)) return;
        _live[id >> 6] &= ~(1UL << (int)id);
        Count--;
        foreach (var c in _columns) c?.Set((int)id, null);
    }

    private void Grow(int needed)
    {
        if (needed <= _capacity) return;
        int cap = _capacity;
        while (cap < needed) cap *= 2;
        Array.Resize(ref _live, cap / 64);
        foreach (var c in _columns) c?.Resize(cap);
        _capacity = cap;
    }

    /// <summary>The live ids in ascending order (those above <paramref name="after"/> when given).</summary>
    public IEnumerable<long> LiveIds(long after = -1) => Enumerate(_live, after);

    public static IEnumerable<long> Enumerate(ulong[] bits, long after = -1)
    {
        long first = after + 1;
        for (int w = (int)Math.Min(bits.Length, first >> 6); w < bits.Length; w++)
        {
            ulong word = bits[w];
            if (w == first >> 6 && (first & 63) != 0) word &= ~0UL << (int)(first & 63);
            while (word != 0)
            {
                int b = BitOperations.TrailingZeroCount(word);
                yield return ((long)w << 6) + b;
                word &= word - 1;
            }
        }
    }

    public static long PopCount(ulong[] bits)
    {
        long n = 0;
        foreach (var w in bits) n += BitOperations.PopCount(w);
        return n;
    }

    /// <summary>Evaluates <paramref name="filter"/> to the bitset of live ids it allows.</summary>
    /// <exception cref="ArgumentException">A field that is unknown or not indexed, or a constant or operation that does not fit its type.</exception>
    public ulong[] Evaluate(Filter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        switch (filter)
        {
            case AndFilter and:
            {
                var r = (ulong[])_live.Clone();
                foreach (var f in and.Operands)
                {
                    var x = Evaluate(f);
                    for (int i = 0; i < r.Length; i++) r[i] &= x[i];
                }
                return r;
            }
            case OrFilter or:
            {
                var r = new ulong[_live.Length];
                foreach (var f in or.Operands)
                {
                    var x = Evaluate(f);
                    for (int i = 0; i < r.Length; i++) r[i] |= x[i];
                }
                return r;
            }
            case NotFilter not:
            {
                var x = Evaluate(not.Operand);
                for (int i = 0; i < x.Length; i++) x[i] = _live[i] & ~x[i];
                return x;
            }
            case CompareFilter c:
            {
                var (col, field) = ColumnOf(c.Field);
                var r = new ulong[_live.Length];
                col.Compare(field, c.Op, c.Value, _live, r);
                return r;
            }
            case InFilter inf:
            {
                var (col, field) = ColumnOf(inf.Field);
                ArgumentNullException.ThrowIfNull(inf.Values, nameof(filter));
                var r = new ulong[_live.Length];
                col.In(field, inf.Values, _live, r);
                return r;
            }
            default:
                throw new NotSupportedException($"Filter node {filter.GetType().Name} is not supported.");
        }
    }

    private (Column, DataField) ColumnOf(string name)
    {
        for (int i = 0; i < _schema.DataFields.Count; i++)
        {
            var f = _schema.DataFields[i];
            if (f.Name != name) continue;
            if (_columns[i] is not { } col)
                throw new ArgumentException($"Filter names data field '{name}', which is not indexed (declare it with Indexed = true).", "filter");
            return (col, f);
        }
        throw new ArgumentException($"Filter names '{name}', which is not a data field of the collection.", "filter");
    }

    /// <summary>Approximate bytes held by the columns and the live bitset.</summary>
    public long MemoryBytes => _live.Length * 8L + _columns.Sum(c => c?.MemoryBytes ?? 0);

    /// <summary>Writes the live bitset and every indexed column (for an index snapshot; see <see cref="Read"/>).</summary>
    public void Write(BinaryWriter w)
    {
        w.Write(_capacity);
        WriteArray<ulong>(w, _live);
        foreach (var c in _columns) c?.Write(w);
    }

    /// <summary>Columns written by <see cref="Write"/> for <paramref name="schema"/>.</summary>
    /// <exception cref="CorruptIndexException">Lengths or codes that cannot be right (named with <paramref name="source"/>).</exception>
    public static Columns Read(CollectionSchema schema, BinaryReader r, string source)
    {
        var columns = new Columns(schema);
        int capacity = r.ReadInt32();
        if (capacity < 64 || capacity % 64 != 0 || !System.Numerics.BitOperations.IsPow2(capacity))
            throw new CorruptIndexException(source, 0, $"the snapshot's column capacity {capacity} is not a power of two ≥ 64.");
        columns._live = ReadArray<ulong>(r, capacity / 64, source, "live bitset");
        columns._capacity = capacity;
        foreach (var c in columns._columns) c?.Read(r, capacity, source);
        columns.Count = PopCount(columns._live);
        return columns;
    }

    internal static void WriteArray<T>(BinaryWriter w, ReadOnlySpan<T> values) where T : unmanaged
    {
        w.Write(values.Length);
        w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
    }

    internal static T[] ReadArray<T>(BinaryReader r, int expected, string source, string what) where T : unmanaged
    {
        int n = r.ReadInt32();
        if (n != expected) throw new CorruptIndexException(source, 0, $"the snapshot's {what} holds {n} entries, expected {expected}.");
        var a = new T[n];
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan());
        if (r.Read(bytes) != bytes.Length) throw new CorruptIndexException(source, 0, $"the snapshot's {what} is truncated.");
        return a;
    }
}

internal abstract class Column
{
    public static Column Create(DataField f, int capacity) => f.Type switch
    {
        FieldType.String => new StringColumn(capacity),
        FieldType.Tags => new TagsColumn(capacity),
        FieldType.Single or FieldType.Double => new RealColumn(capacity),
        _ => new IntegerColumn(capacity),
    };

    public abstract void Resize(int capacity);
    public abstract void Set(int id, object? value);
    public abstract long MemoryBytes { get; }
    public abstract void Compare(DataField f, CompareOp op, object? value, ulong[] live, ulong[] result);

    /// <summary>Writes the column's state (snapshot).</summary>
    public abstract void Write(BinaryWriter w);

    /// <summary>Replaces the column's state with one written by <see cref="Write"/> for <paramref name="capacity"/> ids.</summary>
    public abstract void Read(BinaryReader r, int capacity, string source);

    protected static void WriteCodes(BinaryWriter w, Dictionary<string, int> codes)
    {
        var byCode = new string[codes.Count];
        foreach (var (s, c) in codes) byCode[c] = s;
        w.Write(byCode.Length);
        foreach (var s in byCode) w.Write(s);
    }

    protected static void ReadCodes(BinaryReader r, Dictionary<string, int> codes, string source)
    {
        codes.Clear();
        int n = r.ReadInt32();
        if (n < 0) throw new CorruptIndexException(source, 0, $"the snapshot holds a dictionary of {n} strings.");
        for (int i = 0; i < n; i++)
            if (!codes.TryAdd(r.ReadString(), i)) throw new CorruptIndexException(source, 0, "the snapshot holds a string dictionary with a repeated entry.");
    }

    protected static void CheckCode(int code, int count, string source)
    {
        if (code < -1 || code >= count) throw new CorruptIndexException(source, 0, $"the snapshot holds string code {code} outside its dictionary of {count}.");
    }

    public virtual void In(DataField f, IReadOnlyList<object> values, ulong[] live, ulong[] result)
    {
        var one = new ulong[result.Length];
        foreach (var v in values)
        {
            Array.Clear(one);
            Compare(f, CompareOp.Equal, v, live, one);
            for (int i = 0; i < result.Length; i++) result[i] |= one[i];
        }
    }

    protected static void Scan(ulong[] live, ulong[] result, Func<int, bool> match)
    {
        for (int w = 0; w < live.Length; w++)
        {
            ulong word = live[w], hits = 0;
            while (word != 0)
            {
                int b = BitOperations.TrailingZeroCount(word);
                if (match((w << 6) + b)) hits |= 1UL << b;
                word &= word - 1;
            }
            result[w] = hits;
        }
    }

    protected static bool Test(CompareOp op, int cmp) => op switch
    {
        CompareOp.Equal => cmp == 0,
        CompareOp.Less => cmp < 0,
        CompareOp.LessOrEqual => cmp <= 0,
        CompareOp.Greater => cmp > 0,
        _ => cmp >= 0,
    };

    protected static ArgumentException Mismatch(DataField f, object? value) =>
        new($"Filter compares {f.Type} field '{f.Name}' with {(value is null ? "null" : $"a {value.GetType().Name}")}.", "filter");
}

/// <summary>Ordered values (with a null flag): integers and instants as <see cref="long"/>, reals as <see cref="double"/>.</summary>
internal abstract class OrderedColumn<T>(int capacity) : Column where T : unmanaged, IComparable<T>
{
    private T[] _values = new T[capacity];
    private bool[] _has = new bool[capacity];

    public override void Resize(int capacity)
    {
        Array.Resize(ref _values, capacity);
        Array.Resize(ref _has, capacity);
    }

    public override long MemoryBytes => _values.Length * (long)(System.Runtime.CompilerServices.Unsafe.SizeOf<T>() + 1);

    /// <summary>The stored form of a record's value.</summary>
    protected abstract T FromStored(object value);

    /// <summary>The stored form of a filter constant, or null when it does not fit the field.</summary>
    protected abstract T? FromConstant(DataField f, object value);

    public override void Write(BinaryWriter w)
    {
        Columns.WriteArray<T>(w, _values);
        Columns.WriteArray<bool>(w, _has);
    }

    public override void Read(BinaryReader r, int capacity, string source)
    {
        _values = Columns.ReadArray<T>(r, capacity, source, "column values");
        _has = Columns.ReadArray<bool>(r, capacity, source, "column null flags");
    }

    public override void Set(int id, object? value)
    {
        _has[id] = value is not null;
        _values[id] = value is null ? default : FromStored(value);
    }

    public override void Compare(DataField f, CompareOp op, object? value, ulong[] live, ulong[] result)
    {
        var has = _has;
        if (value is null)
        {
            if (op != CompareOp.Equal) throw Mismatch(f, value);
            Scan(live, result, id => !has[id]);
            return;
        }
        if (f.Type == FieldType.Bool && op != CompareOp.Equal) throw new ArgumentException($"Filter orders bool field '{f.Name}'; only equality applies.", "filter");
        T c = FromConstant(f, value) ?? throw Mismatch(f, value);
        var values = _values;
        Scan(live, result, id => has[id] && Test(op, values[id].CompareTo(c)));
    }
}

/// <summary>bool, int, long, DateTime and DateTimeOffset as 64-bit integers (UTC ticks for instants).</summary>
internal sealed class IntegerColumn(int capacity) : OrderedColumn<long>(capacity)
{
    private static long? ToInteger(object? v) => v switch
    {
        bool b => b ? 1 : 0,
        int i => i,
        long l => l,
        short s => s,
        byte b => b,
        DateTime t => (t.Kind == DateTimeKind.Local ? t.ToUniversalTime() : t).Ticks,
        DateTimeOffset t => t.UtcTicks,
        _ => null,
    };

    protected override long FromStored(object value) => ToInteger(value)!.Value;

    protected override long? FromConstant(DataField f, object value)
    {
        bool fits = f.Type switch
        {
            FieldType.Bool => value is bool,
            FieldType.DateTime => value is DateTime,
            FieldType.DateTimeOffset => value is DateTimeOffset or DateTime,
            _ => value is int or long or short or byte,
        };
        return fits ? ToInteger(value) : null;
    }
}

/// <summary>float and double as double.</summary>
internal sealed class RealColumn(int capacity) : OrderedColumn<double>(capacity)
{
    protected override double FromStored(object value) => value switch { float x => x, double x => x, _ => 0 };

    protected override double? FromConstant(DataField f, object value)
    {
        double? c = value switch { float x => x, double x => x, int x => x, long x => x, _ => null };
        if (c is double d && double.IsNaN(d)) throw new ArgumentException($"Filter compares field '{f.Name}' with NaN.", "filter");
        return c;
    }
}

/// <summary>Strings as dictionary codes (equality and IN only).</summary>
internal sealed class StringColumn(int capacity) : Column
{
    private readonly Dictionary<string, int> _codes = new(StringComparer.Ordinal);
    private int[] _values = Filled(capacity);

    private static int[] Filled(int n)
    {
        var a = new int[n];
        Array.Fill(a, -1);
        return a;
    }

    public override void Resize(int capacity)
    {
        int old = _values.Length;
        Array.Resize(ref _values, capacity);
        _values.AsSpan(old).Fill(-1);
    }

    public override long MemoryBytes => _values.Length * 4L + _codes.Sum(kv => 40L + kv.Key.Length * 2);

    public override void Write(BinaryWriter w)
    {
        WriteCodes(w, _codes);
        Columns.WriteArray<int>(w, _values);
    }

    public override void Read(BinaryReader r, int capacity, string source)
    {
        ReadCodes(r, _codes, source);
        _values = Columns.ReadArray<int>(r, capacity, source, "string codes");
        foreach (int c in _values) CheckCode(c, _codes.Count, source);
    }

    public override void Set(int id, object? value)
    {
        if (value is not string s) { _values[id] = -1; return; }
        if (!_codes.TryGetValue(s, out int code)) _codes[s] = code = _codes.Count;
        _values[id] = code;
    }

    public override void Compare(DataField f, CompareOp op, object? value, ulong[] live, ulong[] result)
    {
        if (op != CompareOp.Equal) throw new ArgumentException($"Filter orders string field '{f.Name}'; only equality and IN apply to strings.", "filter");
        int code;
        if (value is null) code = -1;
        else if (value is string s) { if (!_codes.TryGetValue(s, out code)) return; }
        else throw Mismatch(f, value);
        var values = _values;
        Scan(live, result, id => values[id] == code);
    }
}

/// <summary>Tag lists as arrays of dictionary codes (containment only).</summary>
internal sealed class TagsColumn(int capacity) : Column
{
    private readonly Dictionary<string, int> _codes = new(StringComparer.Ordinal);
    private int[]?[] _values = new int[capacity][];

    public override void Resize(int capacity) => Array.Resize(ref _values, capacity);

    public override long MemoryBytes => _values.Length * 8L + _values.Sum(v => v is null ? 0 : 24L + v.Length * 4);

    public override void Write(BinaryWriter w)
    {
        WriteCodes(w, _codes);
        w.Write(_values.Length);
        foreach (var v in _values)
        {
            if (v is null) { w.Write(-1); continue; }
            Columns.WriteArray<int>(w, v);
        }
    }

    public override void Read(BinaryReader r, int capacity, string source)
    {
        ReadCodes(r, _codes, source);
        int n = r.ReadInt32();
        if (n != capacity) throw new CorruptIndexException(source, 0, $"the snapshot's tags column holds {n} entries, expected {capacity}.");
        var values = new int[]?[n];
        for (int i = 0; i < n; i++)
        {
            int len = r.ReadInt32();
            if (len == -1) continue;
            if (len < 0 || len > 1 << 24) throw new CorruptIndexException(source, 0, $"the snapshot holds a tag list of {len} entries.");
            var codes = new int[len];
            for (int j = 0; j < len; j++) CheckCode(codes[j] = r.ReadInt32(), _codes.Count, source);
            values[i] = codes;
        }
        _values = values;
    }

    public override void Set(int id, object? value)
    {
        if (value is not string[] tags) { _values[id] = null; return; }
        var codes = new int[tags.Length];
        for (int i = 0; i < tags.Length; i++)
        {
            if (!_codes.TryGetValue(tags[i], out int code)) _codes[tags[i]] = code = _codes.Count;
            codes[i] = code;
        }
        _values[id] = codes;
    }

    public override void Compare(DataField f, CompareOp op, object? value, ulong[] live, ulong[] result) =>
        throw new ArgumentException($"Filter compares tags field '{f.Name}'; use ContainsTag / In on tags.", "filter");

    public override void In(DataField f, IReadOnlyList<object> values, ulong[] live, ulong[] result)
    {
        var wanted = new HashSet<int>();
        foreach (var v in values)
        {
            if (v is not string s) throw Mismatch(f, v);
            if (_codes.TryGetValue(s, out int code)) wanted.Add(code);
        }
        if (wanted.Count == 0) return;
        var all = _values;
        Scan(live, result, id => all[id] is { } codes && codes.Any(wanted.Contains));
    }
}
