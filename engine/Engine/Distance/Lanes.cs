using System.Runtime.Intrinsics;

namespace Engine.Distance;

/// <summary>Horizontal reductions of one 16- or 8-lane vector (halving to 128 bits, then four scalars).</summary>
internal static class Lanes
{
    /// <summary>The largest of the 16 lanes.</summary>
    public static float MaxAcross(Vector512<float> v)
    {
        var h = Vector256.Max(v.GetLower(), v.GetUpper());
        var q = Vector128.Max(h.GetLower(), h.GetUpper());
        return MathF.Max(MathF.Max(q[0], q[1]), MathF.Max(q[2], q[3]));
    }

    /// <summary>The smallest of the 16 lanes.</summary>
    public static float MinAcross(Vector512<float> v)
    {
        var h = Vector256.Min(v.GetLower(), v.GetUpper());
        var q = Vector128.Min(h.GetLower(), h.GetUpper());
        return MathF.Min(MathF.Min(q[0], q[1]), MathF.Min(q[2], q[3]));
    }

    /// <summary>The largest of the 8 lanes.</summary>
    public static float MaxAcross(Vector256<float> v)
    {
        var q = Vector128.Max(v.GetLower(), v.GetUpper());
        return MathF.Max(MathF.Max(q[0], q[1]), MathF.Max(q[2], q[3]));
    }

    /// <summary>The smallest of the 8 lanes.</summary>
    public static float MinAcross(Vector256<float> v)
    {
        var q = Vector128.Min(v.GetLower(), v.GetUpper());
        return MathF.Min(MathF.Min(q[0], q[1]), MathF.Min(q[2], q[3]));
    }
}
