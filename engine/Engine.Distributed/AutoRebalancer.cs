using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Runtime;

namespace Engine.Distributed;

/// <summary>
/// Rebalances on membership changes (<see cref="DistributedEngineOptions.AutoRebalance"/>): once the set of active silos
/// changed and then held still for <see cref="DistributedEngineOptions.RebalanceDelay"/>, every silo asks the rebalance
/// coordinator of each collection it holds a replica of to move the replicas the placement rule now puts elsewhere. A
/// silo that joined gets its share; after a loss, the lost replicas were re-activated wherever Orleans placed them on
/// the next call (possibly beside a sibling of the same shard), and the rebalance puts every shard's replicas on
/// distinct silos again; a silo that returns gets its replicas back. With rendezvous placement only the shards whose
/// top-R silos changed move anything. The coordinator runs one rebalance per collection at a time, so several silos
/// asking is harmless.
/// </summary>
internal sealed class AutoRebalancer(
    IOptions<DistributedEngineOptions> options,
    IClusterMembershipService membership,
    IGrainFactory grains,
    ILogger<AutoRebalancer> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(AutoRebalancer), ServiceLifecycleStage.Active, OnStart, OnStop);

    private Task OnStart(CancellationToken cancellationToken)
    {
        if (options.Value.AutoRebalance) _loop = Task.Run(() => Watch(_stop.Token));
        return Task.CompletedTask;
    }

    private async Task OnStop(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync();
        if (_loop is not null)
            try { await _loop.WaitAsync(cancellationToken); }
            catch (OperationCanceledException) { }
    }

    private static HashSet<string> ActiveSet(ClusterMembershipSnapshot snapshot) =>
        snapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress.ToParsableString()).ToHashSet(StringComparer.Ordinal);

    private async Task Watch(CancellationToken stop)
    {
        HashSet<string>? done = null;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                // Wait until the active set differs from the one last rebalanced for, then until it holds still.
                var current = ActiveSet(membership.CurrentSnapshot);
                if (done is not null && current.SetEquals(done))
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(250), stop);
                    continue;
                }
                await Task.Delay(options.Value.RebalanceDelay, stop);
                if (!ActiveSet(membership.CurrentSnapshot).SetEquals(current)) continue;
                int moved = 0;
                foreach (var layout in LocalCollections())
                    moved += await grains.GetGrain<IRebalanceCoordinatorGrain>(layout.Name).Rebalance(layout).WaitAsync(stop);
                if (moved > 0) logger.LogInformation("Membership changed: moved {Moved} replicas to the silos the placement rule picks", moved);
                done = current;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { return; }
            catch (Exception e)
            {
                // A silo that is still joining or leaving: try again after the delay.
                logger.LogWarning("Automatic rebalancing failed, retrying: {Error}", e.Message);
                try { await Task.Delay(options.Value.RebalanceDelay + TimeSpan.FromSeconds(1), stop); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    // One stored layout per collection with a replica directory on this silo's disk.
    private List<ShardLayout> LocalCollections()
    {
        var layouts = new List<ShardLayout>();
        var root = options.Value.DataDirectory;
        if (!Directory.Exists(root)) return layouts;
        foreach (var collection in Directory.EnumerateDirectories(root))
        {
            var layout = Directory.EnumerateDirectories(collection, "shard-*")
                .SelectMany(shard => Directory.EnumerateDirectories(shard, "replica-*"))
                .Select(TryReadLayout).FirstOrDefault(l => l is not null);
            if (layout is not null) layouts.Add(layout);
        }
        return layouts;
    }

    private ShardLayout? TryReadLayout(string dir)
    {
        try { return ShardStore.ReadStoredLayout(dir); }
        catch (Exception e) when (e is IOException or CorruptIndexException or UnauthorizedAccessException)
        {
            logger.LogWarning("Skipping {Dir} while rebalancing: {Error}", dir, e.Message);
            return null;
        }
    }
}

/// <summary>Runs one rebalance of a collection at a time (key: the collection name), whoever asks.</summary>
[Alias("Engine.Distributed.IRebalanceCoordinatorGrain")]
public interface IRebalanceCoordinatorGrain : IGrainWithStringKey
{
    /// <summary>Moves the collection's misplaced replicas (<see cref="IRouterGrain.Rebalance"/>); returns how many moved.</summary>
    [Alias("Rebalance")]
    Task<int> Rebalance(ShardLayout layout);
}

/// <summary>The rebalance coordinator grain; see <see cref="IRebalanceCoordinatorGrain"/>.</summary>
internal sealed class RebalanceCoordinatorGrain : Grain, IRebalanceCoordinatorGrain
{
    public Task<int> Rebalance(ShardLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (layout.Name != this.GetPrimaryKeyString())
            throw new ArgumentException($"This coordinator serves collection '{this.GetPrimaryKeyString()}', not '{layout.Name}'.", nameof(layout));
        return GrainFactory.GetGrain<IRouterGrain>(layout.Name).Rebalance(layout);
    }
}
