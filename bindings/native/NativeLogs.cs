using System.Runtime.CompilerServices;

namespace Engine.Native;

/// <summary>Registers FASTER's log when the library loads, so SPANN indexes made through the C ABI log with FasterLog.</summary>
internal static class NativeLogs
{
#pragma warning disable CA2255 // a NativeAOT library has no Main: the module initializer is its start-up hook
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() =>
        Engine.Storage.Wal.WriteAheadLogs.Register(Engine.Faster.FasterWriteAheadLogProvider.Instance);
}
