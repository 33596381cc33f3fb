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
                int misplaced = 0;
                foreach (var layout in LocalCollections())
                {
                    // The coordinator moves replicas in the background (a move copies a shard: longer than a call may
                    // take); this silo waits for it, then checks that nothing is left misplaced, and starts it again
                    // if something is (a move that timed out, a replica that failed to catch up).
                    var coordinator = grains.GetGrain<IRebalanceCoordinatorGrain>(layout.Name);
                    for (int attempt = 0; attempt < 3; attempt++)
                    {
                        await coordinator.Start(layout).WaitAsync(stop);
                        while (await coordinator.Running().WaitAsync(stop)) await Task.Delay(TimeSpan.FromSeconds(1), stop);
                        int left = await grains.GetGrain<IRouterGrain>(layout.Name).Misplaced(layout).WaitAsync(stop);
                        if (left == 0) break;
                        logger.LogWarning("Collection {Name}: {Left} replicas still misplaced after a rebalance; starting again", layout.Name, left);
                        if (attempt == 2) misplaced += left;
                    }
                }
                // Replicas still misplaced (moves that keep failing under load, a replica not yet re-created after a
                // silo loss): this membership is not done; try again after the delay instead of waiting for the next
                // membership change, which may never come.
                if (misplaced == 0) done = current;
                else await Task.Delay(options.Value.RebalanceDelay + TimeSpan.FromSeconds(1), stop);
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

/// <summary>Runs one rebalance of a collection at a time (key: the collection name), whoever asks, in the background.</summary>
[Alias("Engine.Distributed.IRebalanceCoordinatorGrain")]
public interface IRebalanceCoordinatorGrain : IGrainWithStringKey
{
    /// <summary>Starts moving the collection's misplaced replicas one at a time, each caught up at its new silo before
    /// the next moves, unless a run is already going; returns true when this call started one.</summary>
    [Alias("Start")]
    Task<bool> Start(ShardLayout layout);

    /// <summary>True while a run is going.</summary>
    [Alias("Running")]
    Task<bool> Running();

    /// <summary>Replicas the last finished run moved (0 before any).</summary>
    [Alias("LastMoved")]
    Task<int> LastMoved();
}

/// <summary>The rebalance coordinator grain; see <see cref="IRebalanceCoordinatorGrain"/>.</summary>
internal sealed class RebalanceCoordinatorGrain(IOptions<DistributedEngineOptions> options, ILogger<RebalanceCoordinatorGrain> logger)
    : Grain, IRebalanceCoordinatorGrain
{
    private Task? _run;
    private int _lastMoved;

    public Task<bool> Start(ShardLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (layout.Name != this.GetPrimaryKeyString())
            throw new ArgumentException($"This coordinator serves collection '{this.GetPrimaryKeyString()}', not '{layout.Name}'.", nameof(layout));
        if (_run is { IsCompleted: false }) return Task.FromResult(false);
        _run = Run(layout);
        return Task.FromResult(true);
    }

    public Task<bool> Running() => Task.FromResult(_run is { IsCompleted: false });

    public Task<int> LastMoved() => Task.FromResult(_lastMoved);

    // Each replica's move is a short call (it starts the migration); waiting for the new activation to catch up is a
    // series of short status calls, so no single call has to outlast a shard copy.
    private async Task Run(ShardLayout layout)
    {
        int moved = 0;
        try
        {
            for (int s = 0; s < layout.Shards; s++)
                for (int r = 0; r < layout.Replicas; r++)
                {
                    this.DelayDeactivation(TimeSpan.FromMinutes(10));
                    var replica = GrainFactory.GetGrain<IShardReplicaGrain>(layout.ReplicaKey(s, r));
                    if (!await replica.Misplaced(layout)) continue;
                    string before = (await replica.Ready(layout)).Silo;
                    if (!await replica.Rebalance(layout)) continue;
                    moved++;
                    var deadline = DateTime.UtcNow + options.Value.ReplicationTimeout + TimeSpan.FromMinutes(30);
                    while (DateTime.UtcNow < deadline)
                    {
                        await Task.Delay(100);
                        try
                        {
                            if ((await replica.Ready(layout).WaitAsync(options.Value.PeerTimeout)).Silo != before) break;
                        }
                        catch (Exception e) when (e is TimeoutException or OrleansException or IOException)
                        {
                            this.DelayDeactivation(TimeSpan.FromMinutes(10));   // still copying: keep waiting
                        }
                    }
                }
            if (moved > 0) logger.LogInformation("Collection {Name}: moved {Moved} replicas to the silos the placement rule picks", layout.Name, moved);
        }
        catch (Exception e)
        {
            logger.LogWarning("Collection {Name}: rebalancing stopped after {Moved} moves: {Error}", layout.Name, moved, e.Message);
        }
        finally { _lastMoved = moved; }
    }
}
