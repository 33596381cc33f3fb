using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu;

/// <summary>Span copies between host and device views on the default stream.</summary>
internal static class DeviceCopy
{
    /// <summary>Copies <paramref name="source"/> into the start of <paramref name="target"/>.</summary>
    public static void Upload<T>(this GpuContext ctx, ArrayView<T> target, ReadOnlySpan<T> source) where T : unmanaged
    {
        if (source.IsEmpty) return;
        target.SubView(0, source.Length).AsDense().CopyFromCPU(ctx.Accelerator.DefaultStream, source);
    }

    /// <summary>Copies the first <c>target.Length</c> elements of <paramref name="source"/> to the host.</summary>
    public static void Download<T>(this GpuContext ctx, ArrayView<T> source, Span<T> target) where T : unmanaged
    {
        if (target.IsEmpty) return;
        ctx.Accelerator.DefaultStream.Synchronize();
        source.SubView(0, target.Length).AsDense().CopyToCPU(ctx.Accelerator.DefaultStream, target);
    }
}
