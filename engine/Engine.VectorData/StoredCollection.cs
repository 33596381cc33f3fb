using Engine.Collections;

namespace Engine.VectorData;

/// <summary>A record as the connector sees it, whatever the collection's key type.</summary>
internal sealed record NeutralRecord(object Key, IReadOnlyDictionary<string, object?> Data, IReadOnlyDictionary<string, float[]> Vectors);

/// <summary>
/// An opened <see cref="RecordCollection{TKey}"/> behind an untyped face (keys as <see cref="object"/>), so one connector
/// type serves every key type, including dynamic collections whose key type is known only at run time.
/// </summary>
internal abstract class StoredCollection : IDisposable
{
    public abstract CollectionSchema Schema { get; }

    /// <summary>The typed collection (for <c>GetService</c>).</summary>
    public abstract object Inner { get; }

    public abstract Task UpsertAsync(IReadOnlyList<NeutralRecord> records, CancellationToken ct);

    public abstract Task DeleteAsync(IReadOnlyList<object> keys, CancellationToken ct);

    public abstract Task<IReadOnlyList<NeutralRecord?>> GetAsync(IReadOnlyList<object> keys, bool includeVectors, CancellationToken ct);

    public abstract Task<IReadOnlyList<NeutralRecord>> GetWhereAsync(Filter filter, int top, int skip, bool includeVectors, CancellationToken ct);

    public abstract Task<IReadOnlyList<(NeutralRecord Record, float Distance)>> SearchAsync(float[] query, int k, CollectionSearchOptions options, CancellationToken ct);

    public abstract void Dispose();

    /// <summary>Opens (or creates, when <paramref name="create"/>) the collection in <paramref name="directory"/>.</summary>
    public static StoredCollection Open(string directory, CollectionSchema schema, CollectionOptions options, bool create)
    {
        var keyType = schema.KeyClrType;
        if (keyType == typeof(string)) return new Typed<string>(directory, schema, options, create);
        if (keyType == typeof(Guid)) return new Typed<Guid>(directory, schema, options, create);
        if (keyType == typeof(int)) return new Typed<int>(directory, schema, options, create);
        if (keyType == typeof(long)) return new Typed<long>(directory, schema, options, create);
        throw new NotSupportedException($"Key type {keyType.Name} is not supported.");
    }

    private sealed class Typed<TKey> : StoredCollection where TKey : notnull
    {
        private readonly RecordCollection<TKey> _inner;

        public Typed(string directory, CollectionSchema schema, CollectionOptions options, bool create) =>
            _inner = RecordCollection<TKey>.Open(directory, create ? schema : null, options);

        public override CollectionSchema Schema => _inner.Schema;

        public override object Inner => _inner;

        private static TKey Key(object key) => key is TKey k ? k
            : throw new ArgumentException($"The key {key} is a {key.GetType().Name}; the collection's keys are {typeof(TKey).Name}.", nameof(key));

        private static NeutralRecord ToNeutral(Record<TKey> r) => new(r.Key, r.Data, r.Vectors);

        public override Task UpsertAsync(IReadOnlyList<NeutralRecord> records, CancellationToken ct) =>
            _inner.UpsertBatchAsync(records.Select(r =>
            {
                var rec = new Record<TKey>(Key(r.Key));
                foreach (var (name, value) in r.Data) rec.Data[name] = value;
                foreach (var (name, value) in r.Vectors) rec.Vectors[name] = value;
                return rec;
            }).ToArray(), ct);

        public override Task DeleteAsync(IReadOnlyList<object> keys, CancellationToken ct) => _inner.DeleteBatchAsync(keys.Select(Key).ToArray(), ct);

        public override async Task<IReadOnlyList<NeutralRecord?>> GetAsync(IReadOnlyList<object> keys, bool includeVectors, CancellationToken ct)
        {
            var found = await _inner.GetBatchAsync(keys.Select(Key).ToArray(), includeVectors, ct).ConfigureAwait(false);
            return found.Select(r => r is null ? null : ToNeutral(r)).ToArray();
        }

        public override async Task<IReadOnlyList<NeutralRecord>> GetWhereAsync(Filter filter, int top, int skip, bool includeVectors, CancellationToken ct) =>
            (await _inner.GetWhereAsync(filter, top, skip, includeVectors, ct).ConfigureAwait(false)).Select(ToNeutral).ToArray();

        public override async Task<IReadOnlyList<(NeutralRecord Record, float Distance)>> SearchAsync(float[] query, int k, CollectionSearchOptions options, CancellationToken ct) =>
            (await _inner.SearchAsync(query, k, options, ct).ConfigureAwait(false)).Select(h => (ToNeutral(h.Record), h.Distance)).ToArray();

        public override void Dispose() => _inner.Dispose();
    }
}
