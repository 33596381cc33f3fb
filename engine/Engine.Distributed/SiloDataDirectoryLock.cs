using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Runtime;

namespace Engine.Distributed;

/// <summary>
/// Holds the silo's <see cref="DistributedEngineOptions.DataDirectory"/> from the first silo lifecycle stage until the
/// silo stops, so a second silo pointed at the same directory fails to start with a clear message instead of two
/// silos writing the same replica files. (Each replica directory is locked on its own too, see <see cref="ShardStore"/>.)
/// </summary>
internal sealed class SiloDataDirectoryLock(IOptions<DistributedEngineOptions> options, ILocalSiloDetails silo) : ILifecycleParticipant<ISiloLifecycle>
{
    private DataDirectoryLock? _lock;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(SiloDataDirectoryLock), ServiceLifecycleStage.First, OnStart, OnStop);

    private Task OnStart(CancellationToken cancellationToken)
    {
        _lock = DataDirectoryLock.Acquire(options.Value.DataDirectory, $"silo {silo.Name} ({silo.SiloAddress})", DataDirectoryLock.SiloFileName);
        return Task.CompletedTask;
    }

    private Task OnStop(CancellationToken cancellationToken)
    {
        _lock?.Dispose();
        _lock = null;
        return Task.CompletedTask;
    }
}
