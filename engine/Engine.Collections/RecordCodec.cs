using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Engine.Storage.Format;

namespace Engine.Collections;

/// <summary>A record in the collection's own terms: key bytes, field values in schema order, vectors in schema order.</summary>
internal sealed class StoredRecord(byte[] key, object?[] values, float[][] vectors)
{
    public readonly byte[] Key = key;
    public readonly object?[] Values = values;
    public readonly float[][] Vectors = vectors;
}

/// <summary>
/// Validates records against the schema and encodes them as the payload blob stored in FASTER KV and the log:
/// <c>version u8 = 1 | key (len i32, bytes) | per field: present u8, value | per vector: d × f32 | crc32c u32</c>.
/// </summary>
/// <remarks>Version 2 is the same without the vector section: a record sent between processes without its vectors
/// (search hits, reads that did not ask for them); the store and the log only hold version 1.</remarks>
internal sealed class RecordCodec(CollectionSchema schema)
{
    private const byte Version = 1, VersionWithoutVectors = 2;

    /// <summary>Checks a record and turns it into the stored form.</summary>
    /// <exception cref="ArgumentException">Unknown field, wrong value type, missing or bad vector (named).</exception>
    /// <param name="record">The record.</param>
    /// <param name="withVectors">False: vectors are neither required nor kept (a record read without them).</param>
    public StoredRecord Normalize<TKey>(Record<TKey> record, bool withVectors = true) where TKey : notnull
    {
        ArgumentNullException.ThrowIfNull(record);
        var values = new object?[schema.DataFields.Count];
        foreach (var (name, value) in record.Data)
        {
            int i = IndexOfField(name);
            if (i < 0) throw new ArgumentException($"Record '{record.Key}': data field '{name}' is not in the collection's schema.", nameof(record));
            values[i] = NormalizeValue(schema.DataFields[i], value, record.Key);
        }
        var vectors = new float[schema.Vectors.Count][];
        foreach (var name in record.Vectors.Keys)
            if (!schema.Vectors.Any(v => v.Name == name))
                throw new ArgumentException($"Record '{record.Key}': vector '{name}' is not in the collection's schema.", nameof(record));
        for (int i = 0; i < vectors.Length; i++)
        {
            var f = schema.Vectors[i];
            if (!withVectors)
            {
                vectors[i] = [];
                continue;
            }
            if (!record.Vectors.TryGetValue(f.Name, out var v) || v is null)
                throw new ArgumentException($"Record '{record.Key}': vector '{f.Name}' is missing.", nameof(record));
            if (v.Length != f.Dimension)
                throw new ArgumentException($"Record '{record.Key}': vector '{f.Name}' has {v.Length} values but the field's dimension is {f.Dimension}.", nameof(record));
            try { Guard.Finite(v, f.Dimension, f.Name); }
            catch (ArgumentException e) { throw new ArgumentException($"Record '{record.Key}': vector '{f.Name}': {Guard.MessageWithoutParameter(e)}", nameof(record), e); }
            vectors[i] = (float[])v.Clone();
        }
        return new StoredRecord(KeyCodec.Encode(record.Key), values, vectors);
    }

    private int IndexOfField(string name)
    {
        for (int i = 0; i < schema.DataFields.Count; i++) if (schema.DataFields[i].Name == name) return i;
        return -1;
    }

    private static object? NormalizeValue(DataField f, object? value, object key)
    {
        if (value is null) return null;
        object? v = (f.Type, value) switch
        {
            (FieldType.String, string s) => s,
            (FieldType.Bool, bool b) => b,
            (FieldType.Int32, int i) => i,
            (FieldType.Int64, long l) => l,
            (FieldType.Int64, int i) => (long)i,
            (FieldType.Single, float x) => x,
            (FieldType.Double, double x) => x,
            (FieldType.Double, float x) => (double)x,
            (FieldType.DateTime, DateTime t) => t,
            (FieldType.DateTimeOffset, DateTimeOffset t) => t,
            (FieldType.Tags, string) => null,
            (FieldType.Tags, IEnumerable<string?> tags) => tags.ToArray(),
            _ => null,
        };
        if (v is null) throw new ArgumentException($"Record '{key}': field '{f.Name}' is {f.Type} but got a {value.GetType().Name}.", "record");
        if (v is string[] arr && arr.Any(t => t is null)) throw new ArgumentException($"Record '{key}': field '{f.Name}' holds a null tag.", "record");
        return v;
    }

    /// <summary>The record's largest value, named (for the error of a record too large to store).</summary>
    public string LargestValue(StoredRecord r)
    {
        string name = "";
        long largest = -1;
        for (int i = 0; i < r.Values.Length; i++)
        {
            long size = r.Values[i] switch
            {
                string s => Encoding.UTF8.GetByteCount(s),
                string[] tags => tags.Sum(t => (long)Encoding.UTF8.GetByteCount(t)),
                null => 0,
                _ => 8,
            };
            if (size > largest) (largest, name) = (size, $"data field '{schema.DataFields[i].Name}'");
        }
        for (int i = 0; i < r.Vectors.Length; i++)
            if (4L * r.Vectors[i].Length > largest) (largest, name) = (4L * r.Vectors[i].Length, $"vector '{schema.Vectors[i].Name}'");
        return largest < 0 ? "none" : $"{name} ({largest} bytes)";
    }

    /// <summary>Encodes a record; <paramref name="withVectors"/> false writes version 2 (no vector section).</summary>
    public byte[] Encode(StoredRecord r, bool withVectors = true)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(withVectors ? Version : VersionWithoutVectors);
            w.Write(r.Key.Length);
            w.Write(r.Key);
            for (int i = 0; i < r.Values.Length; i++)
            {
                var value = r.Values[i];
                w.Write(value is null ? (byte)0 : (byte)1);
                switch (value)
                {
                    case null: break;
                    case string s: w.Write(s); break;
                    case bool b: w.Write(b); break;
                    case int x: w.Write(x); break;
                    case long x: w.Write(x); break;
                    case float x: w.Write(x); break;
                    case double x: w.Write(x); break;
                    case DateTime t: w.Write(t.ToBinary()); break;
                    case DateTimeOffset t: w.Write(t.UtcTicks); w.Write((short)t.Offset.TotalMinutes); break;
                    case string[] tags:
                        w.Write(tags.Length);
                        foreach (var t in tags) w.Write(t);
                        break;
                }
            }
            if (withVectors) foreach (var v in r.Vectors) w.Write(MemoryMarshal.AsBytes(v.AsSpan()));
        }
        var body = ms.GetBuffer().AsSpan(0, (int)ms.Length);
        var blob = new byte[body.Length + 4];
        body.CopyTo(blob);
        BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(body.Length), Crc32C.Compute(body));
        return blob;
    }

    /// <summary>Checks a blob's length and CRC-32C without decoding it.</summary>
    /// <exception cref="CorruptIndexException">Too short or a bad checksum (named by <paramref name="source"/>).</exception>
    public static void CheckChecksum(ReadOnlySpan<byte> blob, string source)
    {
        if (blob.Length < 9) throw new CorruptIndexException(source, 0, $"a record payload of {blob.Length} bytes is too short.");
        if (Crc32C.Compute(blob[..^4]) != BinaryPrimitives.ReadUInt32LittleEndian(blob[^4..]))
            throw new CorruptIndexException(source, 0, "a record payload fails its checksum.");
    }

    /// <summary>Decodes a blob; <paramref name="withVectors"/> false skips copying vectors (empty arrays, as for a
    /// version-2 blob, which has none). Version 2 is accepted only with <paramref name="wire"/> (the store and the log
    /// never hold it).</summary>
    /// <exception cref="CorruptIndexException">Bad checksum, version or layout (named by <paramref name="source"/>).</exception>
    public StoredRecord Decode(ReadOnlySpan<byte> blob, string source, bool withVectors = true, bool wire = false)
    {
        CheckChecksum(blob, source);
        var body = blob[..^4];
        try
        {
            var bytes = body.ToArray();
            using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
            byte version = r.ReadByte();
            if (version != Version && !(wire && version == VersionWithoutVectors)) throw new CorruptIndexException(source, 0, "a record payload has an unknown version.");
            if (version == VersionWithoutVectors) withVectors = false;
            var key = r.ReadBytes(r.ReadInt32());
            var values = new object?[schema.DataFields.Count];
            for (int i = 0; i < values.Length; i++)
            {
                if (r.ReadByte() == 0) continue;
                values[i] = schema.DataFields[i].Type switch
                {
                    FieldType.String => r.ReadString(),
                    FieldType.Bool => r.ReadBoolean(),
                    FieldType.Int32 => r.ReadInt32(),
                    FieldType.Int64 => r.ReadInt64(),
                    FieldType.Single => r.ReadSingle(),
                    FieldType.Double => r.ReadDouble(),
                    FieldType.DateTime => DateTime.FromBinary(r.ReadInt64()),
                    FieldType.DateTimeOffset => ReadOffset(r),
                    _ => ReadTags(r),
                };
            }
            var vectors = new float[schema.Vectors.Count][];
            int pos = (int)r.BaseStream.Position;
            for (int i = 0; i < vectors.Length; i++)
            {
                if (version == VersionWithoutVectors)
                {
                    vectors[i] = [];
                    continue;
                }
                int n = schema.Vectors[i].Dimension * 4;
                if (pos + n > bytes.Length) throw new EndOfStreamException();
                vectors[i] = withVectors ? MemoryMarshal.Cast<byte, float>(bytes.AsSpan(pos, n)).ToArray() : [];
                pos += n;
            }
            if (pos != bytes.Length) throw new CorruptIndexException(source, pos, "a record payload has trailing bytes.");
            return new StoredRecord(key, values, vectors);
        }
        catch (Exception e) when (e is EndOfStreamException or IOException and not CorruptIndexException or ArgumentException or FormatException)
        {
            throw new CorruptIndexException(source, 0, $"a record payload does not match the schema: {e.Message}", e);
        }
    }

    private static DateTimeOffset ReadOffset(BinaryReader r)
    {
        long utc = r.ReadInt64();
        var offset = TimeSpan.FromMinutes(r.ReadInt16());
        return new DateTimeOffset(utc + offset.Ticks, offset);
    }

    private static string[] ReadTags(BinaryReader r)
    {
        int n = r.ReadInt32();
        if (n < 0 || n > 1 << 20) throw new FormatException($"tag count {n}");
        var tags = new string[n];
        for (int i = 0; i < n; i++) tags[i] = r.ReadString();
        return tags;
    }

    public Record<TKey> ToRecord<TKey>(StoredRecord s, bool includeVectors) where TKey : notnull
    {
        var rec = new Record<TKey>(KeyCodec.Decode<TKey>(s.Key));
        for (int i = 0; i < s.Values.Length; i++)
            if (s.Values[i] is not null) rec.Data[schema.DataFields[i].Name] = s.Values[i] is string[] t ? (string[])t.Clone() : s.Values[i];
        if (includeVectors)
            for (int i = 0; i < s.Vectors.Length; i++)
                if (s.Vectors[i].Length > 0) rec.Vectors[schema.Vectors[i].Name] = s.Vectors[i];
        return rec;
    }
}
