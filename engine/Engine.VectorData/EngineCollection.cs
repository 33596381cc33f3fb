using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Engine.Collections;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using Microsoft.Extensions.VectorData.ProviderServices;
using Filter = Engine.Collections.Filter;

namespace Engine.VectorData;

/// <summary>
/// A <see cref="VectorStoreCollection{TKey, TRecord}"/> over an Engine <see cref="RecordCollection{TKey}"/>: records
/// mapped by attributes or a <see cref="VectorStoreCollectionDefinition"/>, durable writes, LINQ filters translated to
/// the collection's id pre-filters, one engine index per vector property. Obtain it from
/// <see cref="EngineVectorStore.GetCollection{TKey, TRecord}"/> or <see cref="EngineVectorStore.GetDynamicCollection"/>.
/// </summary>
/// <remarks>
/// Keys: string, Guid (auto-generated when <see cref="Guid.Empty"/> and the key is auto-generated), int, long; dynamic
/// collections take the definition's key type. Thread-safe. Disposing this object does not close the collection; the
/// store owns it.
/// </remarks>
/// <typeparam name="TKey">The key type (object for dynamic collections).</typeparam>
/// <typeparam name="TRecord">The record type (<c>Dictionary&lt;string, object?&gt;</c> for dynamic collections).</typeparam>
public sealed class EngineCollection<TKey, TRecord> : VectorStoreCollection<TKey, TRecord>
    where TKey : notnull
    where TRecord : class
{
    private readonly EngineVectorStore _store;
    private readonly CollectionModel _model;
    private readonly CollectionSchema _schema;
    private readonly Dictionary<VectorPropertyModel, VectorScoring> _scoring;
    private readonly VectorStoreCollectionMetadata _metadata;
    private readonly bool _dynamic;
    private readonly HashSet<string> _propertyNames; // a dynamic record's entries must be among these

    internal EngineCollection(EngineVectorStore store, string name, VectorStoreCollectionDefinition? definition)
    {
        _store = store;
        Name = name;
        _dynamic = typeof(TRecord) == typeof(Dictionary<string, object?>);
        _model = EngineModelBuilder.BuildModel(typeof(TRecord), typeof(TKey), definition, store.Options.EmbeddingGenerator, name);
        _propertyNames = _model.Properties.Select(p => p.ModelName).ToHashSet(StringComparer.Ordinal);
        _schema = EngineModelBuilder.ToSchema(_model, name);
        _scoring = _model.VectorProperties.ToDictionary(v => v, v => VectorScoring.For(v.DistanceFunction, v.ModelName, name));
        _metadata = new VectorStoreCollectionMetadata { VectorStoreSystemName = EngineVectorStore.SystemName, VectorStoreName = store.Directory, CollectionName = name };
    }

    /// <inheritdoc />
    public override string Name { get; }

    /// <summary>The collection schema the record type maps to (field and vector names are the properties' storage names).</summary>
    public CollectionSchema Schema => _schema;

    /// <inheritdoc />
    /// <exception cref="ObjectDisposedException">The store was disposed.</exception>
    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) => _store.CollectionExistsAsync(Name, cancellationToken);

    /// <inheritdoc />
    /// <exception cref="VectorStoreException">The collection exists with a different schema, or its files cannot be opened or created.</exception>
    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default) =>
        Task.Run(() => { _store.Acquire(Name, _schema, create: true, "EnsureCollectionExists"); }, cancellationToken);

    /// <inheritdoc />
    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default) =>
        Task.Run(() => _store.DeleteCollection(Name), cancellationToken);

    // ---------------------------------------------------------------- writes

    /// <inheritdoc />
    /// <exception cref="ArgumentException">A record that does not fit (missing key, wrong vector length, NaN, wrong value type; the message names the property); nothing is written.</exception>
    /// <exception cref="VectorStoreException">The collection does not exist or the write failed in storage.</exception>
    public override Task UpsertAsync(TRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        return UpsertAsync([record], cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>The batch is validated as a whole and committed with one log fsync: all of it or nothing is written.</remarks>
    public override async Task UpsertAsync(IEnumerable<TRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var list = records.ToList();
        if (list.Count == 0) return;
        for (int i = 0; i < list.Count; i++)
            if (list[i] is null) throw new ArgumentException($"Record {i} of the batch is null.", nameof(records));
        var generated = await GenerateEmbeddingsAsync(list, cancellationToken).ConfigureAwait(false);
        var neutral = new NeutralRecord[list.Count];
        for (int i = 0; i < list.Count; i++) neutral[i] = ToNeutral(list[i], generated, i);
        var stored = Open("Upsert");
        await Guarded("Upsert", () => stored.UpsertAsync(neutral, cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override Task DeleteAsync(TKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return DeleteAsync([key], cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>Absent keys are ignored; the batch is committed with one log fsync.</remarks>
    public override async Task DeleteAsync(IEnumerable<TKey> keys, CancellationToken cancellationToken = default)
    {
        var list = CheckKeys(keys);
        if (list.Count == 0) return;
        var stored = Open("Delete");
        await Guarded("Delete", () => stored.DeleteAsync(list, cancellationToken)).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- reads

    /// <inheritdoc />
    public override async Task<TRecord?> GetAsync(TKey key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        bool vectors = IncludeVectors(options?.IncludeVectors ?? false);
        var stored = Open("Get");
        var found = await Guarded("Get", () => stored.GetAsync([key], vectors, cancellationToken)).ConfigureAwait(false);
        return found[0] is { } r ? ToRecord(r, vectors) : null;
    }

    /// <inheritdoc />
    /// <remarks>Records are returned in the order of the keys; absent keys are skipped.</remarks>
    public override async IAsyncEnumerable<TRecord> GetAsync(IEnumerable<TKey> keys, RecordRetrievalOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = CheckKeys(keys);
        bool vectors = IncludeVectors(options?.IncludeVectors ?? false);
        if (list.Count == 0) yield break;
        var stored = Open("Get");
        var found = await Guarded("Get", () => stored.GetAsync(list, vectors, cancellationToken)).ConfigureAwait(false);
        foreach (var r in found)
            if (r is not null) yield return ToRecord(r, vectors);
    }

    /// <inheritdoc />
    /// <remarks>Without <c>OrderBy</c> records come in insertion order. With it, every matching record is read and sorted
    /// before <c>Skip</c> and <paramref name="top"/> apply (nulls first when ascending).</remarks>
    /// <exception cref="NotSupportedException">A filter construct Engine cannot translate (named).</exception>
    /// <exception cref="ArgumentException">A filter on a data property that is not indexed, or a constant of the wrong type.</exception>
    public override async IAsyncEnumerable<TRecord> GetAsync(Expression<Func<TRecord, bool>> filter, int top, FilteredRecordRetrievalOptions<TRecord>? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        options ??= new FilteredRecordRetrievalOptions<TRecord>();
        ArgumentOutOfRangeException.ThrowIfNegative(options.Skip, "options.Skip");
        bool vectors = IncludeVectors(options.IncludeVectors);
        var translated = new EngineFilterTranslator().Translate(filter, _model) ?? Filter.And();
        var sorts = options.OrderBy is null ? [] : options.OrderBy(new FilteredRecordRetrievalOptions<TRecord>.OrderByDefinition()).Values
            .Select(s => (Property: _model.GetDataOrKeyProperty(s.PropertySelector), s.Ascending)).ToArray();
        var stored = Open("Get");
        IEnumerable<NeutralRecord> rows;
        if (sorts.Length == 0)
            rows = await Guarded("Get", () => stored.GetWhereAsync(translated, top, options.Skip, vectors, cancellationToken)).ConfigureAwait(false);
        else
        {
            var all = await Guarded("Get", () => stored.GetWhereAsync(translated, int.MaxValue, 0, vectors, cancellationToken)).ConfigureAwait(false);
            rows = Sort(all, sorts).Skip(options.Skip).Take(top);
        }
        foreach (var r in rows) yield return ToRecord(r, vectors);
    }

    private static IOrderedEnumerable<NeutralRecord> Sort(IEnumerable<NeutralRecord> rows, (PropertyModel Property, bool Ascending)[] sorts)
    {
        object? ValueOf(NeutralRecord r, PropertyModel p) => p is KeyPropertyModel ? r.Key : r.Data.GetValueOrDefault(p.StorageName);
        var comparer = Comparer<object?>.Create((a, b) => a is null ? (b is null ? 0 : -1) : b is null ? 1 : ((IComparable)a).CompareTo(b));
        foreach (var (p, _) in sorts)
            if (p.Type != typeof(string) && EngineModelBuilder.FieldTypeOf(p.Type) == FieldType.Tags)
                throw new NotSupportedException($"OrderBy on the tags property '{p.ModelName}' is not supported.");
        var ordered = sorts[0].Ascending ? rows.OrderBy(r => ValueOf(r, sorts[0].Property), comparer) : rows.OrderByDescending(r => ValueOf(r, sorts[0].Property), comparer);
        foreach (var (p, asc) in sorts.Skip(1))
            ordered = asc ? ordered.ThenBy(r => ValueOf(r, p), comparer) : ordered.ThenByDescending(r => ValueOf(r, p), comparer);
        return ordered;
    }

    /// <inheritdoc />
    /// <remarks>
    /// <para><paramref name="searchValue"/>: <c>ReadOnlyMemory&lt;float&gt;</c>, <c>float[]</c>, <c>Embedding&lt;float&gt;</c>, or any input the
    /// property's embedding generator accepts (a string, typically).</para>
    /// <para>Scores follow the property's distance function: CosineSimilarity and DotProductSimilarity larger-is-closer;
    /// CosineDistance (1 − cos), NegativeDotProductSimilarity (−dot), EuclideanDistance and EuclideanSquaredDistance
    /// smaller-is-closer. Results come closest first; <c>ScoreThreshold</c> drops those on the wrong side of it.</para>
    /// </remarks>
    /// <exception cref="NotSupportedException">A filter construct Engine cannot translate, or a search input with no generator for it.</exception>
    /// <exception cref="ArgumentException">A query of the wrong length or with NaN, an unknown vector property, a bad filter.</exception>
    public override async IAsyncEnumerable<VectorSearchResult<TRecord>> SearchAsync<TInput>(TInput searchValue, int top, VectorSearchOptions<TRecord>? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(searchValue);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        options ??= new VectorSearchOptions<TRecord>();
        ArgumentOutOfRangeException.ThrowIfNegative(options.Skip, "options.Skip");
        bool vectors = IncludeVectors(options.IncludeVectors);
        VectorPropertyModel property;
        try { property = _model.GetVectorPropertyOrSingle(options); }
        catch (InvalidOperationException e) // VectorProperty = r => r.Text: not a vector property of the model
        {
            throw new ArgumentException($"VectorSearchOptions.VectorProperty does not name a vector property of '{typeof(TRecord).Name}': {e.Message}", nameof(options), e);
        }
        var scoring = _scoring[property];
        var filter = options.Filter is null ? null : new EngineFilterTranslator().Translate(options.Filter, _model);
        float[] query = await QueryVectorAsync(searchValue, property, cancellationToken).ConfigureAwait(false);
        int k = (int)Math.Min(int.MaxValue, (long)top + options.Skip);
        var stored = Open("Search");
        var hits = await Guarded("Search", () => stored.SearchAsync(query, k, new CollectionSearchOptions
        {
            VectorName = property.StorageName,
            Filter = filter,
            IncludeVectors = vectors,
        }, cancellationToken)).ConfigureAwait(false);
        foreach (var (record, distance) in hits.Skip(options.Skip))
        {
            double score = scoring.Score(distance);
            if (scoring.Passes(score, options.ScoreThreshold)) yield return new VectorSearchResult<TRecord>(ToRecord(record, vectors), score);
        }
    }

    /// <inheritdoc />
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(VectorStoreCollectionMetadata)) return _metadata;
        if (serviceType == typeof(CollectionSchema)) return _schema;
        if (serviceType.IsInstanceOfType(this)) return this;
        // The underlying RecordCollection<TKey> (for its checkpoint, consistency check, index description...).
        if (serviceType.IsGenericType && serviceType.GetGenericTypeDefinition() == typeof(RecordCollection<>) && _store.Exists(Name))
        {
            var inner = _store.Acquire(Name, _schema, create: false, "GetService").Inner;
            return serviceType.IsInstanceOfType(inner) ? inner : null;
        }
        return null;
    }

    // ---------------------------------------------------------------- mapping

    private StoredCollection Open(string operation) => _store.Acquire(Name, _schema, create: false, operation);

    private async Task<T> Guarded<T>(string operation, Func<Task<T>> action)
    {
        try { return await action().ConfigureAwait(false); }
        catch (Exception e) when (IsStorageFailure(e)) { throw _store.Failure(Name, operation, $"Collection '{Name}': {operation} failed in storage: {e.Message}", e); }
    }

    private async Task Guarded(string operation, Func<Task> action)
    {
        await Guarded<bool>(operation, async () => { await action().ConfigureAwait(false); return true; }).ConfigureAwait(false);
    }

    // Files that cannot be read or written, a collection that refuses writes after a failed one, or one closed under us.
    private static bool IsStorageFailure(Exception e) => e is IOException or UnauthorizedAccessException or ObjectDisposedException
        || (e is InvalidOperationException && e is not NotSupportedException);

    private bool IncludeVectors(bool requested)
    {
        if (requested && _model.EmbeddingGenerationRequired) throw new NotSupportedException(VectorDataStrings.IncludeVectorsNotSupportedWithEmbeddingGeneration);
        return requested;
    }

    private List<object> CheckKeys(IEnumerable<TKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var list = new List<object>();
        foreach (var k in keys) list.Add(k ?? throw new ArgumentException("A key in the batch is null.", nameof(keys)));
        return list;
    }

    private async Task<IReadOnlyList<Embedding>?[]> GenerateEmbeddingsAsync(List<TRecord> records, CancellationToken ct)
    {
        var generated = new IReadOnlyList<Embedding>?[_model.VectorProperties.Count];
        for (int v = 0; v < generated.Length; v++)
        {
            var property = _model.VectorProperties[v];
            if (EngineModelBuilder.IsNativeVectorType(property.Type)) continue;
            var inputs = new object[records.Count];
            for (int i = 0; i < records.Count; i++)
                inputs[i] = property.GetValueAsObject(records[i])
                    ?? throw new ArgumentException($"Record {i} of the batch: vector property '{property.ModelName}' is null; it needs a value to embed.", "records");
            var embeddings = await property.GenerateEmbeddingsAsync(inputs, ct).ConfigureAwait(false);
            if (embeddings.Count != records.Count)
                throw new InvalidOperationException($"The embedding generator of vector property '{property.ModelName}' returned {embeddings.Count} embeddings for {records.Count} inputs.");
            generated[v] = embeddings;
        }
        return generated;
    }

    private async Task<float[]> QueryVectorAsync<TInput>(TInput value, VectorPropertyModel property, CancellationToken ct) where TInput : notnull
    {
        switch (value)
        {
            case ReadOnlyMemory<float> m: return m.ToArray();
            case float[] a: return a;
            case Embedding<float> e: return e.Vector.ToArray();
        }
        if (property.EmbeddingGenerator is null)
            throw new NotSupportedException(VectorDataStrings.InvalidSearchInputAndNoEmbeddingGeneratorWasConfigured(value.GetType(), EngineModelBuilder.SupportedVectorTypes));
        var embedding = await property.GenerateEmbeddingAsync(value, ct).ConfigureAwait(false);
        return embedding is Embedding<float> f ? f.Vector.ToArray()
            : throw new NotSupportedException($"The embedding generator of vector property '{property.ModelName}' produced {embedding.GetType().Name}; Engine stores Embedding<float>.");
    }

    private NeutralRecord ToNeutral(TRecord record, IReadOnlyList<Embedding>?[] generated, int index)
    {
        var keyProperty = _model.KeyProperty;
        object? key = keyProperty.GetValueAsObject(record);
        if (key is Guid g && g == Guid.Empty && keyProperty.IsAutoGenerated)
        {
            key = Guid.NewGuid();
            keyProperty.SetValueAsObject(record, key);
        }
        if (key is null) throw new ArgumentException($"Record {index} of the batch has no key: key property '{keyProperty.ModelName}' is null.", "records");
        // A dynamic record is a dictionary: an entry the definition does not declare would be dropped without a word.
        if (_dynamic && record is IDictionary<string, object?> entries)
            foreach (var name in entries.Keys)
                if (!_propertyNames.Contains(name))
                    throw new ArgumentException($"Record '{key}': '{name}' is not a property of collection '{Name}' (declared: {string.Join(", ", _propertyNames)}).", "records");
        var data = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var p in _model.DataProperties)
        {
            var value = ValueOf(p, record, key);
            if (value is not null && EngineModelBuilder.FieldTypeOf(value.GetType()) is null && value is not IEnumerable<string>)
                throw new ArgumentException($"Record '{key}': data property '{p.ModelName}' holds a {value.GetType().Name}; supported: {EngineModelBuilder.SupportedDataTypes}.", "records");
            data[p.StorageName] = value;
        }
        var vectors = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (int v = 0; v < _model.VectorProperties.Count; v++)
        {
            var p = _model.VectorProperties[v];
            vectors[p.StorageName] = generated[v] is { } embeddings
                ? ((Embedding<float>)embeddings[index]).Vector.ToArray()
                : ValueOf(p, record, key) switch
                {
                    ReadOnlyMemory<float> m => m.ToArray(),
                    float[] a => a,
                    Embedding<float> e => e.Vector.ToArray(),
                    null => throw new ArgumentException($"Record '{key}': vector property '{p.ModelName}' is null; every record needs every vector.", "records"),
                    var other => throw new ArgumentException($"Record '{key}': vector property '{p.ModelName}' holds a {other.GetType().Name}; supported: {EngineModelBuilder.SupportedVectorTypes}.", "records"),
                };
        }
        return new NeutralRecord(key, data, vectors);
    }

    // A property's value; a dynamic record's value of another type than declared (the abstraction's cast fails) is an
    // ArgumentException naming the record, like every other bad record.
    private static object? ValueOf(PropertyModel p, TRecord record, object key)
    {
        try { return p.GetValueAsObject(record); }
        catch (InvalidCastException e)
        {
            throw new ArgumentException($"Record '{key}': {e.Message}", "records", e);
        }
    }

    private TRecord ToRecord(NeutralRecord stored, bool includeVectors)
    {
        var record = _model.CreateRecord<TRecord>()!;
        _model.KeyProperty.SetValueAsObject(record, stored.Key);
        foreach (var p in _model.DataProperties)
        {
            var value = stored.Data.GetValueOrDefault(p.StorageName);
            if (value is null && !_dynamic) continue;
            p.SetValueAsObject(record, value is string[] tags ? TagsAs(tags, p.Type) : value);
        }
        foreach (var p in _model.VectorProperties)
        {
            if (!includeVectors || !stored.Vectors.TryGetValue(p.StorageName, out var v)) continue;
            var t = Nullable.GetUnderlyingType(p.Type) ?? p.Type;
            p.SetValueAsObject(record, t == typeof(float[]) ? v : t == typeof(Embedding<float>) ? new Embedding<float>(v) : new ReadOnlyMemory<float>(v));
        }
        return record;
    }

    private static object TagsAs(string[] tags, Type type) => type == typeof(List<string>) ? new List<string>(tags) : tags;
}
