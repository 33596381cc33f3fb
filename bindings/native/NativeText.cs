using System.Text;

namespace Engine.Native;

/// <summary>Copies managed strings into caller-owned C buffers.</summary>
internal static unsafe class NativeText
{
    /// <summary>
    /// Writes <paramref name="text"/> as NUL-terminated UTF-8 into <paramref name="buffer"/> (at most
    /// <paramref name="capacity"/> bytes, truncated on a character boundary) and stores the full size, NUL
    /// included, in <paramref name="needed"/> when it is not null.
    /// </summary>
    public static int CopyOut(string text, byte* buffer, long capacity, long* needed)
    {
        if (capacity < 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "capacity must not be negative.");
        if (capacity > 0 && buffer == null) throw new ArgumentNullException(nameof(buffer), "buffer is a null pointer but capacity is positive.");
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        if (needed != null) *needed = bytes.Length + 1;
        if (capacity == 0) return (int)NativeStatus.Ok;
        int n = (int)Math.Min(bytes.Length, capacity - 1);
        while (n > 0 && n < bytes.Length && (bytes[n] & 0xC0) == 0x80) n--;
        bytes.AsSpan(0, n).CopyTo(new Span<byte>(buffer, n));
        buffer[n] = 0;
        return (int)NativeStatus.Ok;
    }
}
