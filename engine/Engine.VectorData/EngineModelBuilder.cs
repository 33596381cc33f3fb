using Engine.Collections;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using Microsoft.Extensions.VectorData.ProviderServices;

namespace Engine.VectorData;

/// <summary>
/// Builds the abstraction's <see cref="CollectionModel"/> for Engine collections (which .NET types keys, data and vector
/// properties may have) and turns a model into the <see cref="CollectionSchema"/> of a <see cref="RecordCollection{TKey}"/>.
/// </summary>
internal sealed class EngineModelBuilder() : CollectionModelBuilder(BuildingOptions)
{
    private static readonly CollectionModelBuildingOptions BuildingOptions = new()
    {
        SupportsMultipleVectors = true,
        RequiresAtLeastOneVector = true,
        UsesExternalSerializer = false,
    };

    internal const string SupportedKeyTypes = "string, Guid, int, long";
    internal const string SupportedDataTypes = "string, bool, int, long, float, double, DateTime, DateTimeOffset (each also nullable), string[] / List<string> / IList<string> / IReadOnlyList<string> / ICollection<string> / IReadOnlyCollection<string> / IEnumerable<string> (tags)";
    internal const string SupportedVectorTypes = "ReadOnlyMemory<float>, ReadOnlyMemory<float>?, float[], Embedding<float>";

    private static readonly Type[] TagTypes =
        [typeof(string[]), typeof(List<string>), typeof(IList<string>), typeof(IReadOnlyList<string>), typeof(ICollection<string>), typeof(IReadOnlyCollection<string>), typeof(IEnumerable<string>)];

    /// <summary>Builds the model of <paramref name="recordType"/> (attributes, overridden by <paramref name="definition"/>).</summary>
    public static CollectionModel BuildModel(Type recordType, Type keyType, VectorStoreCollectionDefinition? definition, IEmbeddingGenerator? generator, string collection)
    {
        try
        {
            var model = recordType == typeof(Dictionary<string, object?>)
                ? new EngineModelBuilder().BuildDynamic(definition ?? throw new ArgumentException(
                    $"Collection '{collection}': records of type Dictionary<string, object?> need a VectorStoreCollectionDefinition.", nameof(definition)), generator)
                : new EngineModelBuilder().Build(recordType, keyType, definition, generator);
            CheckKeyType(model.KeyProperty, collection);
            return model;
        }
        // The abstraction's builder reports a bad model with NotSupportedException (no key or vector, an unsupported
        // type) or InvalidOperationException (TKey differs from the key property, a vector type with no generator);
        // the same kind is rethrown with the collection and record type named.
        catch (NotSupportedException e) when (!e.Message.StartsWith("Collection '", StringComparison.Ordinal))
        {
            throw new NotSupportedException($"Collection '{collection}', record type {recordType.Name}: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException($"Collection '{collection}', record type {recordType.Name}: {e.Message}", e);
        }
    }

    private static void CheckKeyType(KeyPropertyModel key, string collection)
    {
        if (!IsKeyType(key.Type))
            throw new NotSupportedException($"Collection '{collection}': key property '{key.ModelName}' is {key.Type.Name}; Engine collections support keys of type {SupportedKeyTypes}.");
    }

    internal static bool IsKeyType(Type t) => t == typeof(string) || t == typeof(Guid) || t == typeof(int) || t == typeof(long);

    /// <inheritdoc />
    protected override bool SupportsKeyAutoGeneration(Type keyPropertyType) => keyPropertyType == typeof(Guid);

    /// <inheritdoc />
    protected override bool IsDataPropertyTypeValid(Type type, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? supportedTypes)
    {
        supportedTypes = SupportedDataTypes;
        return FieldTypeOf(type) is not null;
    }

    /// <inheritdoc />
    protected override bool IsVectorPropertyTypeValid(Type type, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? supportedTypes)
    {
        supportedTypes = SupportedVectorTypes;
        return IsNativeVectorType(type);
    }

    /// <summary>True for the vector types stored as they are (no embedding generation).</summary>
    internal static bool IsNativeVectorType(Type type) =>
        type == typeof(ReadOnlyMemory<float>) || type == typeof(ReadOnlyMemory<float>?) || type == typeof(float[]) || type == typeof(Embedding<float>);

    /// <summary>The collection field type of a data property's .NET type, or null when unsupported.</summary>
    internal static FieldType? FieldTypeOf(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (t == typeof(string)) return FieldType.String;
        if (t == typeof(bool)) return FieldType.Bool;
        if (t == typeof(int)) return FieldType.Int32;
        if (t == typeof(long)) return FieldType.Int64;
        if (t == typeof(float)) return FieldType.Single;
        if (t == typeof(double)) return FieldType.Double;
        if (t == typeof(DateTime)) return FieldType.DateTime;
        if (t == typeof(DateTimeOffset)) return FieldType.DateTimeOffset;
        if (TagTypes.Contains(t)) return FieldType.Tags;
        return null;
    }

    /// <summary>The collection schema the model describes; every vector's distance function and index kind mapped.</summary>
    /// <exception cref="NotSupportedException">A distance function or index kind Engine does not offer (named).</exception>
    public static CollectionSchema ToSchema(CollectionModel model, string collection)
    {
        var data = model.DataProperties
            .Select(p => new DataField(p.StorageName, FieldTypeOf(p.Type) ?? throw new NotSupportedException(
                $"Collection '{collection}': data property '{p.ModelName}' has type {p.Type.Name}; supported: {SupportedDataTypes}."), p.IsIndexed))
            .ToArray();
        var vectors = model.VectorProperties.Select(v =>
        {
            var scoring = VectorScoring.For(v.DistanceFunction, v.ModelName, collection);
            string spec = IndexKinds.SpecFor(v.IndexKind, v.ModelName, collection, v.Dimensions, scoring.Metric);
            return new VectorField(v.StorageName, v.Dimensions, scoring.Metric, spec);
        }).ToArray();
        try { return new CollectionSchema(model.KeyProperty.Type, data, vectors); }
        catch (ArgumentException e) { throw new ArgumentException($"Collection '{collection}': {Guard.MessageWithoutParameter(e)}", "definition", e); }
    }
}
