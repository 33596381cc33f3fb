namespace Engine.Index;

/// <summary>Parses search knobs written as <c>NAME=V,NAME=V</c> (the names of <c>engine bench --sweep</c>).</summary>
public static class SearchSettings
{
    /// <summary>"ef=64,probes=8" → {ef: 64, probes: 8} (names case-insensitive); empty parts are ignored.</summary>
    /// <exception cref="ArgumentException">A part is not NAME=VALUE or a name repeats.</exception>
    public static Dictionary<string, string> Parse(string text, string paramName = "params")
    {
        ArgumentNullException.ThrowIfNull(text);
        var settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0 || eq == part.Length - 1)
                throw new ArgumentException($"{paramName} part '{part}' must look like NAME=VALUE (e.g. \"ef=64\" or \"probes=8,refine=2\").", paramName);
            if (!settings.TryAdd(part[..eq].Trim(), part[(eq + 1)..].Trim()))
                throw new ArgumentException($"{paramName} names '{part[..eq].Trim()}' twice.", paramName);
        }
        return settings;
    }

    /// <summary>
    /// <paramref name="value"/> for a knob that is not set yet (<paramref name="current"/> null); a knob set a second
    /// time, under another of its names (<c>"probes=4,nprobe=8"</c>) or in a case-sensitive dictionary, is refused like
    /// a name given twice instead of the last one silently winning.
    /// </summary>
    /// <exception cref="ArgumentException">The knob is already set.</exception>
    internal static T Once<T>(T? current, string knob, string key, T value) where T : struct =>
        current is null ? value
            : throw new ArgumentException($"Search parameter '{key}' sets {knob}, which an earlier name already set: give each knob once (one of its names).", "settings");
}
