using Engine.Mining.Output;
using Parquet;
using Parquet.Schema;

namespace Engine.Parquet;

/// <summary>
/// Writes rows of a sentence-transformers layout (<see cref="TrainingLayout"/>) as a Parquet file that pandas
/// (<c>pandas.read_parquet</c> with pyarrow), <c>datasets.load_dataset("parquet", …)</c>, polars and DuckDB read
/// directly: the same columns, names and row order as the JSONL writer and the Python function.
/// </summary>
/// <remarks>
/// <para>Column types: texts are UTF-8 <c>string</c>, ids and labels <c>int64</c>, scores <c>float</c> (float32, the
/// miner's own precision); documents of labeled-list, labels and score lists are Parquet <c>LIST</c> columns of
/// those (3-level, item <c>element</c>). No column is nullable. Rows are buffered and written in row groups of
/// <see cref="RowGroupRows"/> (memory: one row group), Snappy-compressed. Like every <see cref="TrainingRowWriter"/>
/// the file appears under its final name only when complete.</para>
/// </remarks>
public sealed class TrainingParquetWriter : TrainingRowWriter
{
    /// <summary>Rows per row group unless the constructor says otherwise.</summary>
    public const int DefaultRowGroupRows = 65_536;

    private readonly ParquetSchema _schema;
    private readonly DataField[] _fields;
    private readonly ColumnBuffer[] _buffers;
    private ParquetWriter? _writer;
    private int _buffered;

    /// <summary>Opens a temporary file beside <paramref name="path"/> for rows in <paramref name="layout"/>.</summary>
    /// <param name="path">The Parquet file to write.</param>
    /// <param name="layout">The row layout.</param>
    /// <param name="rowGroupRows">Rows per row group (at least 1).</param>
    /// <exception cref="ArgumentException">A bad layout (see <see cref="TrainingLayout.Validate"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rowGroupRows"/> is below 1.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    public TrainingParquetWriter(string path, TrainingLayout layout, int rowGroupRows = DefaultRowGroupRows) : base(path, layout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowGroupRows, 1);
        RowGroupRows = rowGroupRows;
        var fields = new List<Field>();
        _fields = new DataField[Columns.Count];
        _buffers = new ColumnBuffer[Columns.Count];
        for (int c = 0; c < Columns.Count; c++)
        {
            var column = Columns[c];
            var item = ItemField(column);
            _fields[c] = item;
            fields.Add(column.IsList ? new ListField(column.Name, item) : item);
            _buffers[c] = ColumnBuffer.For(column.Kind);
        }
        _schema = new ParquetSchema(fields);
    }

    /// <summary>Rows per row group.</summary>
    public int RowGroupRows { get; }

    /// <summary>The Parquet schema of the file (one field per column of the layout).</summary>
    public ParquetSchema Schema => _schema;

    private static DataField ItemField(TrainingColumn column)
    {
        string name = column.IsList ? "element" : column.Name;
        return column.Kind switch
        {
            TrainingColumnKind.Text or TrainingColumnKind.TextList => new DataField<string>(name, nullable: false),
            TrainingColumnKind.Id or TrainingColumnKind.IdList or TrainingColumnKind.Label or TrainingColumnKind.LabelList => new DataField<long>(name, nullable: false),
            _ => new DataField<float>(name, nullable: false),
        };
    }

    /// <inheritdoc />
    protected override void WriteRow(TrainingRow row)
    {
        if (row.Cells is null || row.Cells.Length != _buffers.Length)
            throw new ArgumentException($"The row has {row.Cells?.Length ?? 0} cells but the layout has {_buffers.Length} columns.", nameof(row));
        for (int c = 0; c < _buffers.Length; c++) _buffers[c].Add(row.Cells[c], Columns[c].Name);
        if (++_buffered >= RowGroupRows) FlushRowGroup();
    }

    private void FlushRowGroup()
    {
        if (_buffered == 0) return;
        _writer ??= ParquetWriter.CreateAsync(_schema, Output).GetAwaiter().GetResult();
        using (var group = _writer.CreateRowGroup())
        {
            for (int c = 0; c < _buffers.Length; c++) _buffers[c].WriteTo(group, _fields[c]);
            group.CompleteValidate();
        }
        foreach (var b in _buffers) b.Clear();
        _buffered = 0;
    }

    /// <inheritdoc />
    protected override void Finish()
    {
        FlushRowGroup();
        // A file with no rows still carries the schema (and so the columns) of the layout.
        _writer ??= ParquetWriter.CreateAsync(_schema, Output).GetAwaiter().GetResult();
        _writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _writer = null;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && _writer is not null)
        {
            try { _writer.DisposeAsync().AsTask().GetAwaiter().GetResult(); } catch (ObjectDisposedException) { }
            _writer = null;
        }
        base.Dispose(disposing);
    }

    // One column's values of the current row group; list columns keep repetition levels (0 starts a row's list,
    // 1 continues it). Lists are never empty in these layouts, so repetition levels alone describe them.
    private abstract class ColumnBuffer
    {
        public static ColumnBuffer For(TrainingColumnKind kind) => kind switch
        {
            TrainingColumnKind.Text or TrainingColumnKind.TextList => new StringBuffer(),
            TrainingColumnKind.Id or TrainingColumnKind.IdList or TrainingColumnKind.Label or TrainingColumnKind.LabelList => new ValueBuffer<long>(),
            _ => new ValueBuffer<float>(),
        };

        protected List<int>? Levels;

        public abstract void Add(object cell, string column);
        public abstract void WriteTo(ParquetRowGroupWriter group, DataField field);
        public abstract void Clear();

        protected void AddLevels(int count, string column)
        {
            if (count == 0) throw new ArgumentException($"Column '{column}': an empty list cannot be written (the layouts never produce one).");
            Levels ??= new List<int>();
            Levels.Add(0);
            for (int i = 1; i < count; i++) Levels.Add(1);
        }

        protected ReadOnlyMemory<int>? LevelMemory => Levels is null ? null : Levels.ToArray();

        protected static ArgumentException Mismatch(object cell, string column, string expected) =>
            new($"Column '{column}' holds {expected}, got {cell?.GetType().Name ?? "null"}.");
    }

    private sealed class ValueBuffer<T> : ColumnBuffer where T : struct
    {
        private readonly List<T> _values = new();

        public override void Add(object cell, string column)
        {
            switch (cell)
            {
                case T v: _values.Add(v); break;
                case T[] list: AddLevels(list.Length, column); _values.AddRange(list); break;
                default: throw Mismatch(cell, column, typeof(T).Name);
            }
        }

        public override void WriteTo(ParquetRowGroupWriter group, DataField field) =>
            group.WriteAsync<T>(field, _values.ToArray(), LevelMemory).GetAwaiter().GetResult();

        public override void Clear() { _values.Clear(); Levels?.Clear(); }
    }

    private sealed class StringBuffer : ColumnBuffer
    {
        private readonly List<string> _values = new();

        public override void Add(object cell, string column)
        {
            switch (cell)
            {
                case string s: _values.Add(s); break;
                case string[] list: AddLevels(list.Length, column); _values.AddRange(list); break;
                default: throw Mismatch(cell, column, "text");
            }
        }

        public override void WriteTo(ParquetRowGroupWriter group, DataField field) =>
            group.WriteAsync(field, _values, LevelMemory).GetAwaiter().GetResult();

        public override void Clear() { _values.Clear(); Levels?.Clear(); }
    }
}
