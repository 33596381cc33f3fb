using System.Runtime.Intrinsics;

namespace Engine.Distance;

/// <summary>
/// Horizontal reductions of one 16- or 8-lane vector (halving to 128 bits, then two in-register shuffles). For
/// finite lanes: they use the native min / max instructions (<c>MinNative</c>), which skip the NaN and signed-zero
/// fix-ups of <c>Vector256.Min</c> (eight instructions per call on AVX2); with a NaN lane the result is some lane.
/// </summary>
internal static class Lanes
{
    /// <summary>The largest of the 16 lanes.</summary>
    public static float MaxAcross(Vector512<float> v) => MaxAcross(Vector256.MaxNative(v.GetLower(), v.GetUpper()));

    /// <summary>The smallest of the 16 lanes.</summary>
    public static float MinAcross(Vector512<float> v) => MinAcross(Vector256.MinNative(v.GetLower(), v.GetUpper()));

    /// <summary>The largest of the 8 lanes.</summary>
    public static float MaxAcross(Vector256<float> v)
    {
        var q = Vector128.MaxNative(v.GetLower(), v.GetUpper());
        q = Vector128.MaxNative(q, Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1)));
        return Vector128.MaxNative(q, Vector128.Shuffle(q, Vector128.Create(1, 0, 3, 2))).ToScalar();
    }

    /// <summary>The smallest of the 8 lanes.</summary>
    public static float MinAcross(Vector256<float> v)
    {
        var q = Vector128.MinNative(v.GetLower(), v.GetUpper());
        q = Vector128.MinNative(q, Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1)));
        return Vector128.MinNative(q, Vector128.Shuffle(q, Vector128.Create(1, 0, 3, 2))).ToScalar();
    }
}
