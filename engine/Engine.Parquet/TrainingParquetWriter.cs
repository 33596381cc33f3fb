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
    public TrainingParquetWriter(string path, TrainingLayout layout, int rowGroupRows = DefaultRowGroupRows) : base(path, CheckRowGroup(layout, rowGroupRows))
    {
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

    // Checked before the base class opens the temporary file.
    private static TrainingLayout CheckRowGroup(TrainingLayout layout, int rowGroupRows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowGroupRows, 1);
        return layout;
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

    // One column's values of the current row group. List columns keep repetition levels (0 starts a row's list, 1
    // continues it) and definition levels (every element present: the item's maximum level); the layouts never
    // produce an empty list, so no other levels occur.
    private abstract class ColumnBuffer
    {
        public static ColumnBuffer For(TrainingColumnKind kind) => kind switch
        {
            TrainingColumnKind.Text or TrainingColumnKind.TextList => new ValueBuffer<ReadOnlyMemory<char>, string>(static s => s.AsMemory(), "text"),
            TrainingColumnKind.Id or TrainingColumnKind.IdList or TrainingColumnKind.Label or TrainingColumnKind.LabelList => new ValueBuffer<long, long>(static v => v, "int64"),
            _ => new ValueBuffer<float, float>(static v => v, "float"),
        };

        public abstract void Add(object cell, string column);
        public abstract void WriteTo(ParquetRowGroupWriter group, DataField field);
        public abstract void Clear();
    }

    private sealed class ValueBuffer<T, TCell>(Func<TCell, T> convert, string expected) : ColumnBuffer where T : struct
    {
        private readonly List<T> _values = new();
        private readonly List<int> _repetition = new();

        public override void Add(object cell, string column)
        {
            switch (cell)
            {
                case TCell v:
                    _values.Add(convert(v));
                    break;
                case TCell[] list:
                    if (list.Length == 0) throw new ArgumentException($"Column '{column}': an empty list cannot be written (the layouts never produce one).");
                    _repetition.Add(0);
                    for (int i = 0; i < list.Length; i++)
                    {
                        if (i > 0) _repetition.Add(1);
                        _values.Add(convert(list[i]));
                    }
                    break;
                default:
                    throw new ArgumentException($"Column '{column}' holds {expected} values, got {cell?.GetType().Name ?? "null"}.");
            }
        }

        public override void WriteTo(ParquetRowGroupWriter group, DataField field)
        {
            var values = _values.ToArray();
            if (_repetition.Count == 0)
            {
                group.WriteAsync<T>(field, values, null).GetAwaiter().GetResult();
                return;
            }
            var definition = new int[values.Length];
            Array.Fill(definition, field.MaxDefinitionLevel);
            group.WriteAllPartsAsync<T>(field, values, definition, _repetition.ToArray(), CancellationToken.None).GetAwaiter().GetResult();
        }

        public override void Clear()
        {
            _values.Clear();
            _repetition.Clear();
        }
    }
}
