using Engine.Collections;
using Microsoft.Extensions.AI;

namespace Engine.VectorData;

/// <summary>Settings of an <see cref="EngineVectorStore"/>.</summary>
public sealed record EngineVectorStoreOptions
{
    /// <summary>Settings of every collection the store opens: write-ahead log kind, checkpoint interval, store memory
    /// (default <see cref="CollectionOptions.Default"/>).</summary>
    public CollectionOptions Collection { get; init; } = CollectionOptions.Default;

    /// <summary>The embedding generator used by collections whose definition and vector properties name none: it
    /// embeds string-typed vector properties on upsert and non-vector search inputs (for example a string query).</summary>
    public IEmbeddingGenerator? EmbeddingGenerator { get; init; }
}
