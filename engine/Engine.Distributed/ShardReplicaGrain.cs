using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Engine.Distributed;

/// <summary>The shard replica grain; see <see cref="IShardReplicaGrain"/> and docs/scale-out.md.</summary>
[ShardPlacement]
internal sealed class ShardReplicaGrain(
    IOptions<DistributedEngineOptions> options,
    ILocalSiloDetails silo,
    IClusterMembershipService membership,
    ILogger<ShardReplicaGrain> logger) : Grain, IShardReplicaGrain
{
    private ShardStore? _store;
    private bool _ready;
    private long _epoch;
    private string _name = "";
    private int _shard, _replica;

    private string Directory(ShardLayout layout) => Directory(layout.Name);

    private string Directory(string name) => Path.Combine(options.Value.DataDirectory, name, $"shard-{_shard}", $"replica-{_replica}");

    public Task<ShardLayout?> StoredLayout() =>
        Task.FromResult(_store?.Layout ?? ShardStore.ReadStoredLayout(Directory(_name)));

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        (_name, _shard, _replica) = ShardPlacementDirector.ParseKey(this.GetPrimaryKeyString());
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        var store = _store;
        _store = null;
        _opening = null;
        if (store is null) return;
        string dir = Directory(store.Layout);
        if (reason.ReasonCode == DeactivationReasonCode.Migrating)
        {
            // The replica moves to another silo and rebuilds there from a peer: this copy is superseded.
            if (store.Layout.IsRecords) await BlockingWork.Run(() => { store.Dispose(); return true; });
            else store.Dispose();
            try { System.IO.Directory.Delete(dir, recursive: true); }
            catch (IOException e) { logger.LogWarning(e, "Could not delete the moved replica {Dir}", dir); }
            return;
        }
        try { if (_ready) await store.CheckpointAsync(); }
        finally
        {
            // A record replica's close checkpoints FASTER (blocking): off the turn.
            if (store.Layout.IsRecords) await BlockingWork.Run(() => { store.Dispose(); return true; });
            else store.Dispose();
        }
        // A directory this activation made and never filled (it refused: no durable peer, or the only copy is on a
        // silo that is away) goes: left behind, its layout file would make the next activation here take it for a
        // durable copy and serve it empty.
        if (!_durable && !store.ExistedBefore)
        {
            try { System.IO.Directory.Delete(dir, recursive: true); }
            catch (IOException e) { logger.LogWarning(e, "Could not delete the unused replica directory {Dir}", dir); }
        }
    }

    private ShardStore Local(ShardLayout layout)
    {
        CheckBelongs(layout);
        if (_store is not null)
        {
            // Shards and replicas too: a handle with another shard count misroutes ids, one with fewer replicas
            // acknowledges writes that not every replica holds.
            if (layout.DifferenceFrom(_store.Layout) is { } difference) throw layout.Mismatch(_store.Layout, difference);
            return _store;
        }
        return _store = OpenStore(layout);
    }

    private Task<ShardStore>? _opening;

    /// <summary><see cref="Local"/>, opening a record replica (FASTER recovery blocks) on a <see cref="BlockingWork"/> thread.</summary>
    private async Task<ShardStore> LocalAsync(ShardLayout layout)
    {
        if (_store is not null || !layout.IsRecords) return Local(layout);
        if (layout.Name != _name || _shard >= layout.Shards || _replica >= layout.Replicas) return Local(layout);   // throws
        var opening = _opening ??= BlockingWork.Run(() => OpenStore(layout));
        try
        {
            var opened = await opening;
            if (_store is null) _store = opened;
            else if (!ReferenceEquals(_store, opened)) opened.Dispose();
        }
        catch
        {
            if (ReferenceEquals(_opening, opening)) _opening = null;
            throw;
        }
        return Local(layout);
    }

    private ShardStore OpenStore(ShardLayout layout)
    {
        var store = ShardStore.Open(Directory(layout), layout, options.Value.CheckpointLogBytes, options.Value.CatchUpTailBytes,
            holder: $"replica {this.GetPrimaryKeyString()} on silo {silo.SiloAddress}",
            recordOptions: layout.IsRecords
                ? new Engine.Collections.CollectionOptions { StoreMemoryBytes = options.Value.RecordStoreMemoryBytes, ReadScheduler = BlockingWork.Reads }
                : null);
        if (!layout.IsRecords)
            logger.LogInformation("Replica {Key} opened at write {Sequence} with {Count} vectors; index {Recovery}",
                this.GetPrimaryKeyString(), store.Sequence, store.Count, store.IndexRecovery);
        return store;
    }

    private IShardReplicaGrain Peer(ShardLayout layout, int replica) =>
        GrainFactory.GetGrain<IShardReplicaGrain>(layout.ReplicaKey(_shard, replica));

    private Task? _readying;
    private bool _durable;

    private async Task<ShardStore> EnsureReady(ShardLayout layout, bool create = false)
    {
        var store = await LocalAsync(layout);
        if (_ready) return store;
        // Reads interleave with other calls: every caller waits for the one catch-up.
        _readying ??= CatchUpOnActivation(store, layout, create);
        try { await _readying; }
        catch
        {
            _readying = null;   // the next call tries again
            throw;
        }
        return store;
    }

    private async Task CatchUpOnActivation(ShardStore store, ShardLayout layout, bool create)
    {
        bool anyDurablePeer = false, peerCreated = false;
        // Catch up from the most advanced peer that answers (a replica activated on a new silo starts empty).
        IShardReplicaGrain? best = null;
        long bestSequence = store.Sequence;
        for (int r = 0; r < layout.Replicas; r++)
        {
            if (r == _replica) continue;
            try
            {
                var peer = Peer(layout, r);
                var st = await peer.Peek(layout).WaitAsync(options.Value.PeerTimeout);
                // Only a durable peer is a source: a fresh activation elsewhere may know nothing yet.
                if (!st.Durable) continue;
                anyDurablePeer = true;
                peerCreated |= st.Created;
                if (st.Sequence > bestSequence || (st.Sequence == bestSequence && st.Epoch != store.Epoch && _replica != 0 && r == 0))
                {
                    best = peer;
                    bestSequence = st.Sequence;
                }
            }
            catch (Exception e) when (e is not ArgumentException)
            {
                logger.LogWarning("Replica {Key}: peer {Peer} unavailable while catching up: {Error}", this.GetPrimaryKeyString(), r, e.Message);
            }
        }
        bool durableHere = store.ExistedBefore || _durable;
        if (!durableHere && !anyDurablePeer && !create)
        {
            // Refuse, and leave: the next call places the replica again (on its own silo once that is back), and
            // the directory made here for nothing goes with this activation (OnDeactivateAsync).
            this.DeactivateOnIdle();
            throw new IOException(layout.Replicas > 1
                ? $"Shard {_shard} of collection '{layout.Name}': replica {_replica} was just activated on {silo.SiloAddress.Endpoint}, which does not hold it, and no durable peer answered: it has nothing to serve yet (another replica may; retry)."
                : $"Shard {_shard} of collection '{layout.Name}' is unavailable: its only copy (R = 1) is on a silo that is not in the cluster now, not on {silo.SiloAddress.Endpoint} where it was just activated. It serves again when that silo returns (an empty replica here would hide the shard's data).");
        }
        if (best is not null) await CatchUp(store, best);
        // A copy made from a replica of a created collection records the creation too (a move, a silo lost).
        if (peerCreated && !store.Created) store.MarkCreated();
        if (layout.ByCentroid && store.Centroids is null) await FetchCentroids(store, layout);
        _durable = true;
        if (_replica == 0) _epoch = Random.Shared.NextInt64(1, long.MaxValue);
        _ready = true;
    }

    private string _lastCatchUp = "";

    // A replica activated where its directory has no centroid table (a new silo) copies it from a peer that has it.
    private async Task FetchCentroids(ShardStore store, ShardLayout layout)
    {
        for (int r = 0; r < layout.Replicas && store.Centroids is null; r++)
        {
            if (r == _replica) continue;
            try
            {
                if (await Peer(layout, r).Centroids(layout).WaitAsync(options.Value.PeerTimeout) is { } table) store.SaveCentroids(table);
            }
            catch (Exception e) when (e is not ArgumentException)
            {
                logger.LogWarning("Replica {Key}: peer {Peer} could not give the centroid table: {Error}", this.GetPrimaryKeyString(), r, e.Message);
            }
        }
    }

    private async Task CatchUp(ShardStore store, IShardReplicaGrain from)
    {
        var layout = store.Layout;
        string how = "ops";
        int peer = ShardPlacementDirector.ParseKey(from.GetPrimaryKeyString()).Replica;
        var answer = await from.CatchUpFrom(layout, store.Sequence, store.Epoch);
        if (answer.RecordSnapshot)
        {
            // Record snapshot copy: the peer's records scanned in pages of about 16 MiB, streamed into the new
            // generation; then the writes after the sequence the scan began at (which repair what the scan saw of
            // records written meanwhile).
            long cursor = -1, generation = -1;
            bool done = false;
            long copied = await store.InstallRecordsAsync(async () =>
            {
                if (done) return null;
                var page = await from.ScanLocalRecords(layout, cursor, 16 << 20, generation);
                (cursor, generation, done) = (page.Next, page.Generation, page.Next < 0);
                return page.Records;
            }, answer.SnapshotSequence, answer.SnapshotEpoch);
            how = $"snapshot {copied}, then ops";
            answer = await from.CatchUpFrom(layout, store.Sequence, store.Epoch);
            if (answer.Ops is null)
                throw new InvalidOperationException($"Replica '{this.GetPrimaryKeyString()}' could not catch up: its peer moved on while the snapshot was copied; retry.");
        }
        else if (answer.Ops is null)
        {
            // Snapshot copy: every live id at the peer's sequence, fetched in slices; then the writes after it.
            // Streamed into a new vector file (one slice in memory); then the peer's index file as it saved it at the
            // snapshot's sequence (built from the copied vectors instead when it has none to ship, e.g. SPANN).
            var ids = answer.SnapshotIds!;
            int slice = Math.Max(1, (16 << 20) / (layout.Dimension * 4 + 8));
            int start = 0;
            var shipped = answer;
            Func<Stream, Task>? fetchIndex = answer.IndexGeneration <= 0 ? null : async target =>
            {
                for (long at = 0; at < shipped.IndexBytes;)
                {
                    var chunk = await from.ReadIndexChunk(layout, shipped.IndexGeneration, at, (int)Math.Min(16 << 20, shipped.IndexBytes - at));
                    if (chunk.Length == 0) throw new IOException($"Replica {peer} of shard {_shard} returned no bytes of its index at offset {at} of {shipped.IndexBytes}.");
                    await target.WriteAsync(chunk);
                    at += chunk.Length;
                }
            };
            long copied = await store.InstallAsync(async () =>
            {
                if (start >= ids.Length) return null;
                var part = ids[start..Math.Min(ids.Length, start + slice)];
                start += part.Length;
                return await from.GetLocal(layout, part);
            }, answer.SnapshotSequence, answer.SnapshotEpoch, fetchIndex);
            how = $"snapshot {copied}{(store.IndexShipped ? $" + index {answer.IndexBytes} B" : "")}, then ops";
            answer = await from.CatchUpFrom(layout, store.Sequence, store.Epoch);
            if (answer.Ops is null)
                throw new InvalidOperationException($"Replica '{this.GetPrimaryKeyString()}' could not catch up: its peer moved on while the snapshot was copied; retry.");
        }
        int applied = 0;
        while (true)
        {
            foreach (var op in answer.Ops!)
                if (op.Sequence == store.Sequence + 1)
                {
                    await Append(store, op);
                    applied++;
                }
            if (!answer.More) break;
            // A long history comes in parts of at most 32 MiB of writes.
            answer = await from.CatchUpFrom(layout, store.Sequence, store.Epoch);
            if (answer.Ops is null)
                throw new InvalidOperationException($"Replica '{this.GetPrimaryKeyString()}' could not catch up: its peer's history no longer follows write {store.Sequence}; retry.");
        }
        _lastCatchUp = $"{how} {applied} from replica {peer}";
        logger.LogInformation("Replica {Key} caught up to write {Sequence} ({Count} vectors)", this.GetPrimaryKeyString(), store.Sequence, store.Count);
    }

    public async Task<long> Write(ShardLayout layout, WriteKind kind, long[] ids, float[] vectors)
    {
        if (layout.IsRecords) throw new InvalidOperationException($"Collection '{layout.Name}' holds records: write through DistributedRecordCollection.");
        return await Sequence(layout, store => Task.FromResult(new WriteOp
        {
            Sequence = store.Sequence + 1, Epoch = _epoch, PreviousEpoch = store.Epoch,
            Kind = kind, Ids = ids, Vectors = kind == WriteKind.Upsert ? vectors : [],
        }));
    }

    public async Task<long> WriteRecords(ShardLayout layout, WriteKind kind, byte[][] items)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (!layout.IsRecords) throw new InvalidOperationException($"Collection '{layout.Name}' holds plain vectors: write through DistributedCollection.");
        if (kind is not (WriteKind.Upsert or WriteKind.Delete)) throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown write kind.");
        return await Sequence(layout, async store =>
        {
            await store.ReadRecords(s => { s.Validate(kind, items); return Task.FromResult(true); });
            return new WriteOp
            {
                Sequence = store.Sequence + 1, Epoch = _epoch, PreviousEpoch = store.Epoch,
                Kind = kind, Ids = [], Vectors = [], Records = items,
            };
        });
    }

    // Logs and applies a write; a write logged but not applied leaves the replica faulted: it deactivates, and the next
    // activation reopens it from disk, replaying the log.
    private async Task Append(ShardStore store, WriteOp op)
    {
        try { await store.AppendAsync(op); }
        catch when (store.Fault is not null)
        {
            logger.LogError(store.Fault, "Replica {Key} could not apply logged write {Sequence}; reopening it", this.GetPrimaryKeyString(), op.Sequence);
            _ready = false;
            this.DeactivateOnIdle();
            throw new IOException($"Replica '{this.GetPrimaryKeyString()}' could not apply write {op.Sequence} after logging it ({store.Fault.Message}); it reopens from its log.");
        }
    }

    // Primary: logs the write made from the caught-up store, applies it, replicates it to every follower.
    private async Task<long> Sequence(ShardLayout layout, Func<ShardStore, Task<WriteOp>> make)
    {
        if (_replica != 0) throw new InvalidOperationException($"Writes go to replica 0 of a shard, not '{this.GetPrimaryKeyString()}'.");
        var store = await EnsureReady(layout);
        var op = await make(store);
        await Append(store, op);
        await Task.WhenAll(Enumerable.Range(1, layout.Replicas - 1).Select(r => Replicate(layout, r, op)));
        return op.Sequence;
    }

    private async Task Replicate(ShardLayout layout, int replica, WriteOp op)
    {
        var deadline = DateTime.UtcNow + options.Value.ReplicationTimeout;
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await Peer(layout, replica).Apply(layout, [op]).WaitAsync(options.Value.PeerTimeout);
                return;
            }
            catch (Exception e) when (e is not ArgumentException && DateTime.UtcNow < deadline)
            {
                // The follower's silo failed or is leaving: Orleans activates it elsewhere on a later call, where it
                // catches up from this primary before applying.
                logger.LogWarning("Replicating write {Sequence} to replica {Replica} failed (attempt {Attempt}): {Error}", op.Sequence, replica, attempt + 1, e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 50 << Math.Min(attempt, 5))));
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"Write {op.Sequence} of shard {_shard} of collection '{layout.Name}' did not reach replica {replica} within "
                    + $"{options.Value.ReplicationTimeout.TotalSeconds:0.###} s ({attempt + 1} attempt(s)): {e.Message}", e);
            }
        }
    }

    public async Task Apply(ShardLayout layout, WriteOp[] ops)
    {
        var store = await EnsureReady(layout);
        foreach (var op in ops)
        {
            if (op.Sequence == store.Sequence + 1 && op.PreviousEpoch == store.Epoch) await Append(store, op);
            else if (op.Sequence == store.Sequence && op.Epoch == store.Epoch) continue;   // caught up past it already
            else await CatchUp(store, Peer(layout, 0));   // a gap or a diverged tail: take the primary's state, which includes op
        }
    }

    public async Task<SearchResponse> Search(ShardLayout layout, SearchRequest request) => (await EnsureReady(layout)).Search(request);

    public async Task<VectorRows> Get(ShardLayout layout, long[] ids) => (await EnsureReady(layout)).Get(ids, asIndexed: true);

    public async Task<ReplicaStatus> Ready(ShardLayout layout) => StatusOf(await EnsureReady(layout));

    public async Task<ReplicaStatus> Create(ShardLayout layout, CentroidTable? centroids)
    {
        if (centroids is not null) (await LocalAsync(layout)).SaveCentroids(centroids);
        return StatusOf(await EnsureReady(layout, create: true));
    }

    public Task<bool> WasCreated(ShardLayout layout)
    {
        CheckBelongs(layout);
        // Without opening the store: the router asks every replica before it opens or creates anything.
        string dir = Directory(layout);
        var created = _store?.Layout ?? ShardStore.ReadStoredLayout(dir);
        if (created is not null && layout.DifferenceFrom(created) is { } difference) throw layout.Mismatch(created, difference);
        return Task.FromResult(created is not null && ShardStore.IsCreated(dir));
    }

    public async Task MarkCreated(ShardLayout layout) => (await EnsureReady(layout)).MarkCreated();

    private void CheckBelongs(ShardLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (layout.Name != _name || _shard >= layout.Shards || _replica >= layout.Replicas)
            throw new ArgumentException($"Replica '{this.GetPrimaryKeyString()}' does not belong to collection '{layout.Name}' with {layout.Shards} shards × {layout.Replicas} replicas.", nameof(layout));
    }

    public Task<CentroidTable?> Centroids(ShardLayout layout)
    {
        CheckBelongs(layout);
        // Without opening the store: a router asks every replica until one answers, and must not create directories.
        return Task.FromResult(_store is not null ? _store.Centroids : ShardStore.ReadCentroids(Directory(layout), layout));
    }

    public async Task<long[]> Holding(ShardLayout layout, long[] ids) => (await EnsureReady(layout)).Holding(ids);

    public async Task<ReplicaStatus> Peek(ShardLayout layout) => StatusOf(await LocalAsync(layout));

    public async Task<CatchUp> CatchUpFrom(ShardLayout layout, long sequence, long epoch) => await (await LocalAsync(layout)).CatchUpFromAsync(sequence, epoch);

    public Task<VectorRows> GetLocal(ShardLayout layout, long[] ids) => Task.FromResult(Local(layout).Get(ids));

    public Task<byte[]> ReadIndexChunk(ShardLayout layout, long generation, long offset, int count) =>
        Task.FromResult(Local(layout).ReadIndexChunk(generation, offset, count));

    public async Task<RecordHits> SearchRecords(ShardLayout layout, RecordSearchRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return await (await EnsureReady(layout)).ReadRecords(s => s.SearchAsync(request));
    }

    public async Task<byte[][]> GetWhereRecords(ShardLayout layout, string filterJson, int top, bool includeVectors)
    {
        ArgumentNullException.ThrowIfNull(filterJson);
        if (top is < 1 or > 100_000) throw new ArgumentOutOfRangeException(nameof(top), top, "top must be in 1..100000.");
        return await (await EnsureReady(layout)).ReadRecords(s => s.GetWhereAsync(filterJson, top, includeVectors));
    }

    public async Task<byte[]?[]> GetRecords(ShardLayout layout, byte[][] keys, bool includeVectors)
    {
        ArgumentNullException.ThrowIfNull(keys);
        return await (await EnsureReady(layout)).ReadRecords(s => s.GetAsync(keys, includeVectors));
    }

    public async Task<RecordScanPage> ScanLocalRecords(ShardLayout layout, long after, int maxBytes, long generation)
    {
        if (after < -1) throw new ArgumentOutOfRangeException(nameof(after), after, "The cursor must be >= -1.");
        if (maxBytes < 1) throw new ArgumentOutOfRangeException(nameof(maxBytes), maxBytes, "maxBytes must be positive.");
        return await (await LocalAsync(layout)).ScanRecordsAsync(after, maxBytes, generation);
    }

    // With R = 1 a replica never moves: the move hands off by catch-up from a peer, and it has none (shipping the
    // files is future work), so it stays on the silo that holds its data.
    public Task<bool> Misplaced(ShardLayout layout)
    {
        if (layout.Name != _name) throw new ArgumentException($"Replica '{this.GetPrimaryKeyString()}' does not belong to collection '{layout.Name}'.", nameof(layout));
        return Task.FromResult(layout.Replicas > 1 && Target() is { } target && !target.Equals(silo.SiloAddress));
    }

    private SiloAddress? Target()
    {
        var active = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress).ToArray();
        return ShardPlacementDirector.Pick(active, _name, _shard, _replica);
    }

    public async Task<bool> Rebalance(ShardLayout layout)
    {
        await EnsureReady(layout);
        if (layout.Replicas < 2) return false;   // the only copy: see Misplaced
        var target = Target();
        if (target is null || target.Equals(silo.SiloAddress)) return false;
        // The move hands this replica's data off by catch-up from a peer: with no durable peer (its sibling was
        // re-created empty after a silo loss and has not caught up yet) the new activation would find no source, and
        // neither would the sibling: the shard would serve nothing. Not now, then; the rebalancer tries again.
        if (!await HasDurablePeer(layout))
        {
            logger.LogInformation("Replica {Key}: not moved yet, no peer holds a durable copy", this.GetPrimaryKeyString());
            return false;
        }
        RequestContext.Set(IPlacementDirector.PlacementHintKey, target);
        this.MigrateOnIdle();
        return true;
    }

    // A peer that is a durable copy now, or becomes one when asked to get ready (an empty one catches up, from this
    // replica among others: Peek and CatchUpFrom interleave with this call).
    private async Task<bool> HasDurablePeer(ShardLayout layout)
    {
        for (int r = 0; r < layout.Replicas; r++)
        {
            if (r == _replica) continue;
            try
            {
                var peer = Peer(layout, r);
                if ((await peer.Peek(layout).WaitAsync(options.Value.PeerTimeout)).Durable) return true;
                if ((await peer.Ready(layout).WaitAsync(options.Value.PeerTimeout)).Durable) return true;
            }
            catch (Exception e) when (e is not ArgumentException)
            {
                logger.LogInformation("Replica {Key}: peer {Peer} not ready to take over: {Error}", this.GetPrimaryKeyString(), r, e.Message);
            }
        }
        return false;
    }

    private ReplicaStatus StatusOf(ShardStore store) => new()
    {
        Sequence = store.Sequence, Epoch = store.Epoch, Count = store.Count, Trained = store.Trained,
        Silo = silo.SiloAddress.Endpoint.ToString(), LastCatchUp = _lastCatchUp, Durable = _durable || store.ExistedBefore,
        Created = store.Created,
    };
}
