using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Engine.Collections;
using Microsoft.Extensions.VectorData;
using Microsoft.Extensions.VectorData.ProviderServices;

namespace Engine.VectorData;

/// <summary>
/// A <see cref="VectorStore"/> over Engine record collections: one sub-directory of <see cref="Directory"/> per
/// collection, each a durable <see cref="RecordCollection{TKey}"/> (FASTER KV payloads, a write-ahead log, any engine
/// index per vector property). See docs/vectordata.md.
/// </summary>
/// <remarks>
/// The store owns the opened collections: collection objects from <see cref="GetCollection{TKey, TRecord}"/> share them,
/// and disposing the store closes them (a final checkpoint each). Every acknowledged write is durable without that.
/// Thread-safe.
/// </remarks>
public sealed partial class EngineVectorStore : VectorStore
{
    /// <summary>The value of <see cref="VectorStoreMetadata.VectorStoreSystemName"/> and of the exceptions' system name.</summary>
    public const string SystemName = "engine";

    private const string SchemaFile = "collection.json";
    private readonly Dictionary<string, StoredCollection> _open = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly VectorStoreMetadata _metadata;
    private bool _disposed;

    /// <summary>Opens (creating the directory if needed) a store whose collections live in sub-directories of <paramref name="directory"/>.</summary>
    /// <param name="directory">The store's directory.</param>
    /// <param name="options">Collection settings and a default embedding generator.</param>
    /// <exception cref="ArgumentException">An empty directory name, or invalid collection settings.</exception>
    public EngineVectorStore(string directory, EngineVectorStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Options = options ?? new EngineVectorStoreOptions();
        ArgumentNullException.ThrowIfNull(Options.Collection, "options.Collection");
        Options.Collection.Validate();
        Directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(Directory);
        _metadata = new VectorStoreMetadata { VectorStoreSystemName = SystemName, VectorStoreName = Directory };
    }

    /// <summary>The store's directory (full path).</summary>
    public string Directory { get; }

    /// <summary>The store's settings.</summary>
    public EngineVectorStoreOptions Options { get; }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">A collection name that is not a valid directory name (letters, digits, '_', '-', '.'; at most 128).</exception>
    /// <exception cref="NotSupportedException">A record type Engine cannot map (the message names the property), one the
    /// abstraction's model rules reject (no key, no vector, ...; the message names the collection and type), or Dictionary
    /// records (use <see cref="GetDynamicCollection"/>).</exception>
    public override EngineCollection<TKey, TRecord> GetCollection<TKey, TRecord>(string name, VectorStoreCollectionDefinition? definition = null)
    {
        ThrowIfDisposed();
        if (typeof(TRecord) == typeof(Dictionary<string, object?>)) throw new NotSupportedException(VectorDataStrings.GetCollectionWithDictionaryNotSupported);
        return new EngineCollection<TKey, TRecord>(this, CheckName(name), definition);
    }

    /// <inheritdoc />
    public override EngineCollection<object, Dictionary<string, object?>> GetDynamicCollection(string name, VectorStoreCollectionDefinition definition)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(definition);
        return new EngineCollection<object, Dictionary<string, object?>>(this, CheckName(name), definition);
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<string> ListCollectionNamesAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        await Task.Yield();
        foreach (var dir in System.IO.Directory.EnumerateDirectories(Directory).Order(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            string name = Path.GetFileName(dir);
            if (ValidName().IsMatch(name) && File.Exists(Path.Combine(dir, SchemaFile))) yield return name;
        }
    }

    /// <inheritdoc />
    public override Task<bool> CollectionExistsAsync(string name, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return Task.FromResult(Exists(CheckName(name)));
    }

    /// <inheritdoc />
    public override Task EnsureCollectionDeletedAsync(string name, CancellationToken cancellationToken = default)
    {
        DeleteCollection(CheckName(name));
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is not null ? null
            : serviceType == typeof(VectorStoreMetadata) ? _metadata
            : serviceType.IsInstanceOfType(this) ? this
            : null;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            List<StoredCollection> open;
            lock (_lock)
            {
                if (_disposed) return;
                _disposed = true;
                open = [.. _open.Values];
                _open.Clear();
            }
            List<Exception> errors = [];
            foreach (var c in open)
            {
                try { c.Dispose(); }
                catch (Exception e) { errors.Add(e); }
            }
            if (errors.Count > 0) throw new AggregateException("Closing the store's collections failed.", errors);
        }
        base.Dispose(disposing);
    }

    // ---------------------------------------------------------------- collections (shared by the collection objects)

    internal string PathOf(string name) => Path.Combine(Directory, name);

    internal bool Exists(string name) => File.Exists(Path.Combine(PathOf(name), SchemaFile));

    /// <summary>The opened collection <paramref name="name"/>: opened on first use, created when <paramref name="create"/>.</summary>
    /// <exception cref="VectorStoreException">It does not exist (and is not to be created), it was created with another schema, or its files cannot be opened.</exception>
    internal StoredCollection Acquire(string name, CollectionSchema schema, bool create, string operation)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            if (_open.TryGetValue(name, out var open))
            {
                if (!open.Schema.SameAs(schema)) throw SchemaMismatch(name, operation);
                return open;
            }
            if (!Exists(name))
            {
                if (!create)
                    throw Failure(name, operation, $"Collection '{name}' does not exist in '{Directory}'; call EnsureCollectionExistsAsync first.", null);
            }
            StoredCollection opened;
            try { opened = StoredCollection.Open(PathOf(name), schema, Options.Collection, create); }
            catch (ArgumentException e) when (Exists(name)) { throw SchemaMismatch(name, operation, e); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw Failure(name, operation, $"Collection '{name}' cannot be opened: {e.Message}", e);
            }
            _open[name] = opened;
            // Opened for a read (no schema to create with): the stored schema is checked here, as it is when the
            // collection is already open or is created, so a record type that describes other vectors or distance
            // functions is refused whichever operation comes first.
            if (!opened.Schema.SameAs(schema)) throw SchemaMismatch(name, operation);
            return opened;
        }
    }

    internal void DeleteCollection(string name)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            if (_open.Remove(name, out var open)) open.Dispose();
            try
            {
                string path = PathOf(name);
                if (System.IO.Directory.Exists(path))
                {
                    // Not while another store (or process) has the collection open: its writes would go to deleted files.
                    using (Engine.Collections.CollectionDirectoryLock.Acquire(path))
                        foreach (var entry in new DirectoryInfo(path).EnumerateFileSystemInfos())
                            if (entry.Name != Engine.Collections.CollectionDirectoryLock.FileName)
                            {
                                if (entry is DirectoryInfo sub) sub.Delete(recursive: true);
                                else entry.Delete();
                            }
                    System.IO.Directory.Delete(path, recursive: true);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw Failure(name, "EnsureCollectionDeleted", $"Collection '{name}' cannot be deleted: {e.Message}", e);
            }
        }
    }

    private VectorStoreException SchemaMismatch(string name, string operation, Exception? inner = null) =>
        // The collection's own refusals of the schema (another schema, another key type) have the parameter name
        // "schema"; another log kind than the collection was created with is a setting, passed on as it is.
        Failure(name, operation, inner is null or ArgumentException { ParamName: "schema" }
            ? $"Collection '{name}' exists with a different schema (key type, data properties, vectors, distance functions or index kinds) than this record type or definition describes."
            : $"Collection '{name}' cannot be opened with these settings: {inner.Message}", inner);

    internal VectorStoreException Failure(string collection, string operation, string message, Exception? inner) =>
        new(message, inner!)
        {
            VectorStoreSystemName = SystemName,
            VectorStoreName = Directory,
            CollectionName = collection,
            OperationName = operation,
        };

    private static string CheckName(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (!ValidName().IsMatch(name))
            throw new ArgumentException($"Collection name '{name}' is not valid: use 1..128 letters, digits, '_', '-' or '.', starting with a letter or digit.", nameof(name));
        return name;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex ValidName();

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
