using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Engine.Native;

namespace Engine.Tests.Native;

/// <summary>
/// The C ABI's managed side (bindings/native): the automatic-id counter's answer for an empty add at the end of the
/// id range, and the per-thread error text (kept in a reusable managed buffer that dies with its thread instead of a
/// native allocation leaked at every thread exit). The C checks in bindings/native/examples/handles.c run the same
/// cases through libengine.so.
/// </summary>
public unsafe class NativeInternalsTests
{
    [Fact]
    public void EmptyAutomaticAdd_ReportsTheNextId()
    {
        var ids = new AutoIds(count: 5);
        Assert.Equal(5, ids.Next(0));
        ids.Note([long.MaxValue - 1]);
        Assert.Equal(long.MaxValue, ids.Next(0));
        Assert.Equal(long.MaxValue, ids.Next(1));
    }

    [Fact]
    public void EmptyAutomaticAdd_AfterTheLargestId_IsRefusedNotWrapped()
    {
        var ids = new AutoIds(count: 0);
        ids.Note([long.MaxValue]);
        // n = 0 used to return long.MaxValue + 1 = long.MinValue as first_id.
        var e = Assert.Throws<InvalidOperationException>(() => ids.Next(0));
        Assert.Contains("No automatic ids are left", e.Message);
        Assert.Contains("first_id", e.Message);
        Assert.Throws<InvalidOperationException>(() => ids.Next(1));
        // Status 5 (invalid state) at the C ABI, as for a non-empty add past the end.
        Assert.Equal((int)NativeStatus.InvalidState, NativeErrors.Fail(e));
    }

    [Fact]
    public void ErrorText_IsThisThreadsLastMessage_ReusedInPlace()
    {
        RunOnNewThread(() =>
        {
            Assert.Equal("", Read(NativeErrors.LastMessage));
            Assert.Equal((int)NativeStatus.InvalidArgument, NativeErrors.Fail(new ArgumentException("first problem\nsecond line")));
            byte* p = NativeErrors.LastMessage;
            Assert.Equal("first problem second line", Read(p));
            // A shorter message reuses the buffer: the old pointer now reads the new text (valid until the next failure).
            NativeErrors.Fail(NativeStatus.Io, "short");
            Assert.Equal((nint)p, (nint)NativeErrors.LastMessage);
            Assert.Equal("short", Read(p));
            // A much longer one gets a larger buffer; a short one after it a small one again (no 1 MB kept per thread).
            string big = new('x', 1 << 20);
            NativeErrors.Fail(NativeStatus.InvalidArgument, big);
            Assert.Equal(big, Read(NativeErrors.LastMessage));
            NativeErrors.Fail(NativeStatus.InvalidArgument, "é");
            Assert.Equal("é", Read(NativeErrors.LastMessage));
            Assert.Equal(NativeErrors.MinBuffer, NativeErrors.Buffer!.Length);
        });
    }

    [Fact]
    public void ErrorText_OfAnotherThread_IsNotSeen()
    {
        RunOnNewThread(() => NativeErrors.Fail(NativeStatus.Corrupt, "other thread"));
        RunOnNewThread(() => Assert.Equal("", Read(NativeErrors.LastMessage)));
    }

    [Fact]
    public void ErrorText_DiesWithItsThread()
    {
        // Native memory here was never freed at thread exit; the managed buffer is collected with the thread statics.
        WeakReference? buffer = null;
        RunOnNewThread(() => buffer = FailAndWatch());
        for (int i = 0; i < 10 && buffer!.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(buffer!.IsAlive);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference FailAndWatch()
    {
        NativeErrors.Fail(NativeStatus.InvalidArgument, new string('y', 10_000));
        return new WeakReference(NativeErrors.Buffer);
    }

    private static string Read(byte* p) => Marshal.PtrToStringUTF8((nint)p)!;

    private static void RunOnNewThread(Action action)
    {
        Exception? failure = null;
        var t = new Thread(() =>
        {
            try { action(); }
            catch (Exception e) { failure = e; }
        });
        t.Start();
        t.Join();
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
    }
}
