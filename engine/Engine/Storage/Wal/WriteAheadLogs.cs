using System.Diagnostics.CodeAnalysis;

namespace Engine.Storage.Wal;

/// <summary>
/// The write-ahead log kinds this process can use, and the default one. The core knows only the file log; FASTER's
/// <c>FasterLog</c> (assembly <c>Engine.Faster</c>) is found at run time when that assembly is deployed next to the
/// engine (or registered with <see cref="Register"/>), so the core never references FASTER.
/// </summary>
/// <remarks>The default is FASTER when it is available and the file log otherwise; the environment variable
/// <c>ENGINE_WAL</c> (<c>file</c> or <c>faster</c>) overrides it. Thread safe.</remarks>
public static class WriteAheadLogs
{
    /// <summary>Kind name of the FASTER log.</summary>
    public const string FasterKind = "faster";

    /// <summary>Assembly-qualified name of the FASTER provider looked up at run time.</summary>
    public const string FasterProviderType = "Engine.Faster.FasterWriteAheadLogProvider, Engine.Faster";

    private static readonly Dictionary<string, IWriteAheadLogProvider> Registered = new(StringComparer.Ordinal);
    private static readonly Lazy<IWriteAheadLogProvider?> Discovered = new(DiscoverFaster);

    /// <summary>Makes <paramref name="provider"/> available under its <see cref="IWriteAheadLogProvider.Kind"/>
    /// (replacing one of the same kind).</summary>
    public static void Register(IWriteAheadLogProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        lock (Registered) Registered[provider.Kind] = provider;
    }

    /// <summary>The provider of <paramref name="kind"/>, or null when this process has none.</summary>
    public static IWriteAheadLogProvider? Find(string kind)
    {
        ArgumentNullException.ThrowIfNull(kind);
        lock (Registered) if (Registered.TryGetValue(kind, out var p)) return p;
        if (kind == FileWriteAheadLogProvider.KindName) return FileWriteAheadLogProvider.Instance;
        return kind == FasterKind ? Discovered.Value : null;
    }

    /// <summary>The log new indexes get: <c>ENGINE_WAL</c> when set, else FASTER when available, else the file log.</summary>
    /// <exception cref="NotSupportedException"><c>ENGINE_WAL</c> names a kind this process does not have.</exception>
    public static IWriteAheadLogProvider Default
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("ENGINE_WAL");
            if (!string.IsNullOrEmpty(env))
                return Find(env) ?? throw new NotSupportedException($"ENGINE_WAL='{env}' names a write-ahead log this process does not have (available: {string.Join(", ", Available)}).");
            return Find(FasterKind) ?? FileWriteAheadLogProvider.Instance;
        }
    }

    /// <summary>Kinds available in this process.</summary>
    public static IReadOnlyList<string> Available =>
        new[] { FileWriteAheadLogProvider.KindName, FasterKind }.Where(k => Find(k) is not null).ToArray();

    [UnconditionalSuppressMessage("Trimming", "IL2057", Justification = "Optional assembly: when it is trimmed away or absent the file log is used.")]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "Optional assembly: when it is trimmed away or absent the file log is used.")]
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Optional assembly: when it is trimmed away or absent the file log is used.")]
    private static IWriteAheadLogProvider? DiscoverFaster()
    {
        try
        {
            var type = Type.GetType(FasterProviderType, throwOnError: false);
            return type is null ? null : Activator.CreateInstance(type) as IWriteAheadLogProvider;
        }
        catch (Exception e) when (e is FileLoadException or BadImageFormatException or TypeLoadException or MissingMethodException
                                      or System.Reflection.TargetInvocationException or NotSupportedException)
        {
            return null;
        }
    }
}
