namespace Engine.Index;

/// <summary>Checks of the per-vector numeric attributes that indexes with an attribute window accept.</summary>
internal static class Attributes
{
    /// <summary>Exactly one finite attribute per vector.</summary>
    /// <exception cref="ArgumentException">Wrong count or a non-finite value (named by position).</exception>
    public static void Validate(ReadOnlySpan<double> attributes, int rows)
    {
        if (attributes.Length != rows)
            throw new ArgumentException($"Got {rows} vectors but {attributes.Length} attributes: there must be exactly one per vector.", nameof(attributes));
        for (int i = 0; i < rows; i++)
            if (!double.IsFinite(attributes[i]))
                throw new ArgumentException($"attributes[{i}] = {attributes[i]} is not a finite number.", nameof(attributes));
    }
}

/// <summary>
/// Attribute values sorted ascending with the location of each vector (an index-specific position), so that an
/// attribute window maps to one contiguous range.
/// </summary>
internal sealed class AttributeOrder<TLocation>(double[] values, TLocation[] locations)
{
    public readonly double[] Values = values;
    public readonly TLocation[] Locations = locations;

    /// <summary>
    /// The order cached in <paramref name="cache"/>, or one built (once, under <paramref name="gate"/>) from the
    /// (attribute, location) pairs <paramref name="collect"/> adds, skipping NaN attributes (vectors without one
    /// never match a window).
    /// </summary>
    public static AttributeOrder<TLocation> GetOrBuild(ref AttributeOrder<TLocation>? cache, object gate, Action<Action<double, TLocation>> collect)
    {
        var order = Volatile.Read(ref cache);
        if (order is not null) return order;
        lock (gate)
        {
            order = cache;
            if (order is not null) return order;
            var values = new List<double>();
            var locations = new List<TLocation>();
            collect((value, location) =>
            {
                if (double.IsNaN(value)) return;
                values.Add(value);
                locations.Add(location);
            });
            var v = values.ToArray();
            var l = locations.ToArray();
            Array.Sort(v, l);
            order = new AttributeOrder<TLocation>(v, l);
            Volatile.Write(ref cache, order);
            return order;
        }
    }

    /// <summary>The index range of values in [lo, hi].</summary>
    public (int Start, int End) Range(double lo, double hi)
    {
        int start = LowerBound(lo, strict: false), end = LowerBound(hi, strict: true);
        return (start, Math.Max(start, end));
    }

    // First index with value >= x (strict: > x).
    private int LowerBound(double x, bool strict)
    {
        int a = 0, b = Values.Length;
        while (a < b)
        {
            int mid = (a + b) >>> 1;
            if (strict ? Values[mid] <= x : Values[mid] < x) a = mid + 1; else b = mid;
        }
        return a;
    }
}

/// <summary>How many vectors a filtered search may return: the basis of the exact-fallback decision.</summary>
internal static class AllowedSet
{
    /// <summary>
    /// The smaller of the attribute window's size (when <paramref name="order"/> is given; its range in
    /// <paramref name="range"/>) and the filter's selectivity estimate; <see cref="long.MaxValue"/> for each part that
    /// is unknown.
    /// </summary>
    public static long Estimate<T>(AttributeOrder<T>? order, double lo, double hi, IIdFilter? filter, long total,
        out (int Start, int End) range, out long windowCount, out long filterCount)
    {
        windowCount = filterCount = long.MaxValue;
        range = default;
        if (order is not null)
        {
            range = order.Range(lo, hi);
            windowCount = range.End - range.Start;
        }
        if (filter is not null)
        {
            double sel = filter.EstimatedSelectivity(total);
            if (sel >= 0) filterCount = (long)Math.Ceiling(sel * total);
        }
        return Math.Min(windowCount, filterCount);
    }
}
