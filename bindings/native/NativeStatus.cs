using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Engine.Native;

/// <summary>Status codes returned by every <c>engine_*</c> export (mirrors <c>engine_status</c> in engine.h).</summary>
public enum NativeStatus
{
    /// <summary>The call succeeded.</summary>
    Ok = 0,
    /// <summary>A bad argument: null pointer, negative size, wrong dimension, NaN, k &lt;= 0, unknown spec or option.</summary>
    InvalidArgument = 1,
    /// <summary>The handle is null, was already freed, or was never returned by this library.</summary>
    InvalidHandle = 2,
    /// <summary>A file could not be read or written (missing file, permissions, disk full).</summary>
    Io = 3,
    /// <summary>A file is truncated, fails its checksum, or was written by another index kind or format version.</summary>
    Corrupt = 4,
    /// <summary>The operation is not valid in the index's current state (e.g. add before train).</summary>
    InvalidState = 5,
    /// <summary>Memory could not be allocated.</summary>
    OutOfMemory = 6,
    /// <summary>An unexpected failure inside the engine; the message says what.</summary>
    Internal = 99,
}

/// <summary>Thread-local last-error text and the exception-to-status mapping used by every export.</summary>
/// <remarks>
/// Each thread's last message lives in a managed byte array on the pinned object heap (never moved, so the pointer
/// <c>engine_last_error</c> hands out stays put) that only the thread-static field references. A later failure on
/// the thread writes into the same array when the text fits (it is replaced when too small or far too large), and the
/// array is collected with the thread's statics when the thread exits (native memory here would leak one message per
/// thread that ever failed a call: nothing frees it at thread exit).
/// </remarks>
internal static unsafe class NativeErrors
{
    // Smallest buffer a thread gets; a kept buffer may be up to twice the message size (or this) before it is replaced.
    internal const int MinBuffer = 256;
    [ThreadStatic] private static byte[]? t_message;
    private static readonly byte* s_empty = AllocUtf8(string.Empty);

    /// <summary>Pointer to the calling thread's last error message (UTF-8, NUL-terminated, never null).</summary>
    public static byte* LastMessage => t_message is { } m ? (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(m)) : s_empty;

    /// <summary>The calling thread's message buffer (null before its first failure); for tests.</summary>
    internal static byte[]? Buffer => t_message;

    /// <summary>Records <paramref name="message"/> as this thread's last error and returns <paramref name="status"/>.</summary>
    public static int Fail(NativeStatus status, string message)
    {
        // One line: ArgumentOutOfRangeException appends "\nActual value was …".
        string text = message.ReplaceLineEndings(" ");
        int n = Encoding.UTF8.GetByteCount(text);
        byte[]? buffer = t_message;
        if (buffer is null || buffer.Length < n + 1 || buffer.Length > Math.Max(MinBuffer, 2 * (n + 1)))
            t_message = buffer = GC.AllocateUninitializedArray<byte>(Math.Max(MinBuffer, n + 1), pinned: true);
        Encoding.UTF8.GetBytes(text, buffer);
        buffer[n] = 0;
        return (int)status;
    }

    /// <summary>Maps an exception thrown by the engine to a status code and records its message.</summary>
    public static int Fail(Exception e) => e switch
    {
        CorruptIndexException or IndexFormatException => Fail(NativeStatus.Corrupt, e.Message),
        ArgumentException => Fail(NativeStatus.InvalidArgument, e.Message),
        FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or IOException
            => Fail(NativeStatus.Io, e.Message),
        InvalidHandleException => Fail(NativeStatus.InvalidHandle, e.Message),
        ObjectDisposedException => Fail(NativeStatus.InvalidHandle, e.Message),
        InvalidOperationException or NotSupportedException => Fail(NativeStatus.InvalidState, e.Message),
        OutOfMemoryException or InsufficientExecutionStackException => Fail(NativeStatus.OutOfMemory, e.Message),
        _ => Fail(NativeStatus.Internal, $"{e.GetType().Name}: {e.Message}"),
    };

    /// <summary>Copies <paramref name="text"/> into unmanaged memory as NUL-terminated UTF-8.</summary>
    public static byte* AllocUtf8(string text)
    {
        int n = Encoding.UTF8.GetByteCount(text);
        byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        Encoding.UTF8.GetBytes(text, new Span<byte>(p, n));
        p[n] = 0;
        return p;
    }
}
