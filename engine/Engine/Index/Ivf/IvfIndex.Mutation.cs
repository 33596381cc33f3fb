using Engine.Distance;
using Engine.Quantization;

namespace Engine.Index.Ivf;

public sealed partial class IvfIndex
{
    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The index is not trained.</exception>
    /// <exception cref="ArgumentException">Wrong dimension, non-finite values, negative or duplicate ids.</exception>
    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids) => AddCore(vectors, ids, default, hasAttributes: false, upsert: false);

    /// <summary>
    /// Adds n vectors with ids and one numeric attribute each (e.g. a timestamp) that searches can restrict to a
    /// window with <see cref="IvfSearchParameters.AttributeMin"/> / <see cref="IvfSearchParameters.AttributeMax"/>.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="Add(ReadOnlySpan{float}, ReadOnlySpan{long})"/>, or attributes not one finite value per vector.</exception>
    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, ReadOnlySpan<double> attributes) =>
        AddCore(vectors, ids, attributes, hasAttributes: true, upsert: false);

    /// <summary>Adds or replaces vectors by id (one atomic step for the whole batch).</summary>
    public void Upsert(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids) => AddCore(vectors, ids, default, hasAttributes: false, upsert: true);

    /// <summary>Adds or replaces vectors by id, with attributes.</summary>
    public void Upsert(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, ReadOnlySpan<double> attributes) =>
        AddCore(vectors, ids, attributes, hasAttributes: true, upsert: true);

    private void AddCore(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, ReadOnlySpan<double> attributes, bool hasAttributes, bool upsert)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        Guard.Ids(ids, n);
        Guard.Finite(vectors, Dimension, nameof(vectors));
        if (hasAttributes) Attributes.Validate(attributes, n);
        EnsureTrained();
        if (n == 0) return;
        var seen = new HashSet<long>();
        for (int i = 0; i < n; i++)
            if (!seen.Add(ids[i])) throw new ArgumentException($"Id {ids[i]} appears twice in one batch.", nameof(ids));

        // Expensive part outside the lock: working space (a copy only when vectors are normalised or rotated),
        // assignment and PQ encoding. Residuals are formed a block at a time, so the only batch-sized temporaries
        // are the assignments and the PQ codes; refine rows are written straight into the lists under the lock.
        int d = Dimension;
        ReadOnlySpan<float> x = Metric == Metric.Cosine || _transform is not null ? ToWorkingSpace(vectors.ToArray(), n) : vectors;
        var assign = _quantizer.Assign(x, TrainingThreads);
        // SOAR's second lists (one list has none: nothing spills); a row whose second list is its first is not spilled.
        int[]? spill = _spillMap is null || ListCount == 1 ? null : SpillAssign(x, assign);
        byte[]? codes = null, spillCodes = null;
        if (!FlatLists)
        {
            codes = new byte[(long)n * _codec.CodeSize];
            EncodeResiduals(x, assign, n, codes);
            if (spill is not null)
            {
                // Residual codes of the second copy are of x − its own list's centroid (an unspilled row's code unused).
                spillCodes = new byte[(long)n * _codec.CodeSize];
                EncodeResiduals(x, spill, n, spillCodes);
            }
        }
        _lock.EnterWrite();
        Interlocked.Increment(ref _deviceStamp);
        try
        {
            if (!upsert)
                for (int i = 0; i < n; i++)
                    if (_directMap.ContainsKey(ids[i]))
                        throw new ArgumentException($"Id {ids[i]} is already present; ids must be unique (use Upsert to replace).", nameof(ids));
            if (upsert) RemoveLocked(ids);
            // Make every touched list writable (copy-on-write of a mapped list) and grow it once to its final size
            // (no repeated doubling: a first bulk add leaves no slack).
            var added = new int[ListCount];
            foreach (int a in assign) added[a]++;
            if (spill is not null) for (int i = 0; i < n; i++) if (spill[i] != assign[i]) added[spill[i]]++;
            for (int li = 0; li < ListCount; li++)
                if (added[li] > 0) _lists.Writable(li, _lists[li].Count + added[li]);
            for (int i = 0; i < n; i++)
            {
                double attribute = hasAttributes ? attributes[i] : double.NaN;
                var row = x.Slice(i * d, d);
                _directMap[ids[i]] = AppendRow(assign[i], ids[i], attribute, row, CodeOf(codes, i, row));
                if (spill is not null && spill[i] != assign[i])
                    _spillMap![ids[i]] = AppendRow(spill[i], ids[i], attribute, row, CodeOf(spillCodes, i, row));
            }
            Interlocked.Exchange(ref _count, _directMap.Count);
            _attributeOrder = null;
        }
        finally { _lock.ExitWrite(); }
    }

    // What a list stores for row i: Flat lists the row itself, coded lists row i of the codes computed for it.
    private ReadOnlySpan<byte> CodeOf(byte[]? codes, int i, ReadOnlySpan<float> row) => codes is null
        ? System.Runtime.InteropServices.MemoryMarshal.AsBytes(row)
        : codes.AsSpan(i * _codec.CodeSize, _codec.CodeSize);

    // Appends one row to list li (made writable with room for it beforehand): id, attribute, code and refine code.
    // Returns its location.
    private long AppendRow(int li, long id, double attribute, ReadOnlySpan<float> row, ReadOnlySpan<byte> code)
    {
        var list = _lists.Owned(li);
        int off = list.Count;
        list.OwnedIds[off] = id;
        list.OwnedAttributes[off] = attribute;
        _lists.Layout.Write(list.OwnedCodes, off, code);
        if (_refine is not null)
            _refine.Encode(row, list.OwnedRefine.AsSpan(off * _refine.CodeSize, _refine.CodeSize));
        list.Count = off + 1;
        return Pack(li, off);
    }

    /// <summary>Candidate lists per vector among which SOAR picks the second list (the nearest ones by the coarse key).</summary>
    internal const int SpillCandidates = 32;

    /// <summary>
    /// The second list of each row for SOAR (<see cref="IvfSpec.SpillLambda"/>): among the <see cref="SpillCandidates"/>
    /// lists nearest to x other than its own list c, the one minimising ‖x − c′‖² + λ ⟨r, x − c′⟩² / ‖r‖² with r = x − c;
    /// c itself where the quantizer offered no other list.
    /// </summary>
    private unsafe int[] SpillAssign(ReadOnlySpan<float> x, int[] primary)
    {
        int n = primary.Length, d = Dimension, t = Math.Min(ListCount, SpillCandidates);
        var second = new int[n];
        float lambda = (float)Spec.SpillLambda!.Value;
        const int Chunk = 64;
        int chunks = (n + Chunk - 1) / Chunk;
        fixed (float* px = x)
        {
            nint basePtr = (nint)px;
            ParallelWork.For(0, chunks, TrainingThreads > 0 ? TrainingThreads : Environment.ProcessorCount,
                () => (Scratch: _scratchPool.Rent(), Keys: new float[Chunk * t], Lists: new long[Chunk * t], R: new float[d], Diff: new float[d]),
                (c, _, w) =>
                {
                    var rows = new ReadOnlySpan<float>((float*)basePtr, n * d);
                    int s0 = c * Chunk, qb = Math.Min(Chunk, n - s0);
                    w.Scratch.Ensure(Chunk, ListCount, t, 1);
                    _quantizer.Search(rows.Slice(s0 * d, qb * d), qb, t, w.Keys, w.Lists, w.Scratch);
                    for (int i = 0; i < qb; i++)
                    {
                        var xi = rows.Slice((s0 + i) * d, d);
                        int own = primary[s0 + i];
                        System.Numerics.Tensors.TensorPrimitives.Subtract(xi, _quantizer.Centroid(own), w.R);
                        float rr = Distances.Dot(w.R, w.R), weight = rr > 0 ? lambda / rr : 0;
                        int best = own;
                        float bestLoss = float.PositiveInfinity;
                        for (int j = 0; j < t; j++)
                        {
                            long li = w.Lists[i * t + j];
                            if (li < 0 || li == own) continue;
                            System.Numerics.Tensors.TensorPrimitives.Subtract(xi, _quantizer.Centroid((int)li), w.Diff);
                            float along = Distances.Dot(w.R, w.Diff);
                            float loss = Distances.Dot(w.Diff, w.Diff) + weight * along * along;
                            if (loss < bestLoss || (loss == bestLoss && li < best)) { bestLoss = loss; best = (int)li; }
                        }
                        second[s0 + i] = best;
                    }
                    return w;
                },
                w => _scratchPool.Return(w.Scratch));
        }
        return second;
    }

    // Codes of the residuals x − centroid[assign] (or of x itself for raw "nr" codes), formed and encoded in blocks of 256
    // rows per worker.
    private unsafe void EncodeResiduals(ReadOnlySpan<float> x, int[] assign, int n, byte[] codes)
    {
        var codec = _codec;
        var residualCodec = codec as IResidualCodec;
        int d = Dimension, cs = codec.CodeSize;
        const int Chunk = 256;
        int chunks = (n + Chunk - 1) / Chunk;
        fixed (float* px = x)
        {
            nint basePtr = (nint)px;
            ParallelWork.For(0, chunks, TrainingThreads > 0 ? TrainingThreads : Environment.ProcessorCount,
                () => new float[(residualCodec is null ? 1 : 2) * Chunk * d],
                (c, _, residuals) =>
                {
                    var rows = new ReadOnlySpan<float>((float*)basePtr, n * d);
                    int s = c * Chunk, e = Math.Min(n, s + Chunk);
                    if (!_residual) // raw codes (PQ{m}x4fs): the rows themselves
                    {
                        codec.Encode(rows.Slice(s * d, (e - s) * d), codes.AsSpan(s * cs, (e - s) * cs));
                        return residuals;
                    }
                    for (int i = s; i < e; i++)
                        System.Numerics.Tensors.TensorPrimitives.Subtract(rows.Slice(i * d, d), _quantizer.Centroid(assign[i]), residuals.AsSpan((i - s) * d, d));
                    if (residualCodec is null) codec.Encode(residuals.AsSpan(0, (e - s) * d), codes.AsSpan(s * cs, (e - s) * cs));
                    else
                    {
                        // Codecs that use the center (RaBitQ) get each row's centroid beside its residual.
                        var centers = residuals.AsSpan(Chunk * d, (e - s) * d);
                        for (int i = s; i < e; i++) _quantizer.Centroid(assign[i]).CopyTo(centers.Slice((i - s) * d, d));
                        residualCodec.EncodeResiduals(residuals.AsSpan(0, (e - s) * d), centers, codes.AsSpan(s * cs, (e - s) * cs));
                    }
                    return residuals;
                },
                _ => { });
        }
    }

    /// <summary>
    /// Releases list capacity beyond the rows held (appends grow a list by doubling, so a load in many batches leaves up
    /// to half of each list unused; a single bulk <c>Add</c> already sizes lists exactly). A progress-reporting
    /// <c>Add</c>, which loads in batches, calls it at its end. Returns the bytes released.
    /// </summary>
    public long TrimExcess()
    {
        _lock.EnterWrite();
        try
        {
            long released = _lists.TrimExcess();
            if (released > 0) Interlocked.Increment(ref _deviceStamp); // list addresses moved: the device copy is rebuilt
            return released;
        }
        finally { _lock.ExitWrite(); }
    }

    /// <inheritdoc />
    public int Remove(ReadOnlySpan<long> ids)
    {
        _lock.EnterWrite();
        Interlocked.Increment(ref _deviceStamp);
        try
        {
            int removed = RemoveLocked(ids);
            if (removed > 0) _attributeOrder = null;
            return removed;
        }
        finally { _lock.ExitWrite(); }
    }

    // O(1) per id: the list's last vector moves into the hole and its direct-map entry is updated (both copies of a
    // SOAR index's vector go).
    private int RemoveLocked(ReadOnlySpan<long> ids)
    {
        int removed = 0;
        Span<byte> code = stackalloc byte[_lists.Layout.ScratchBytes];
        foreach (long id in ids)
        {
            if (!_directMap.Remove(id, out long loc)) continue;
            RemoveSlot(loc, code);
            if (_spillMap is not null && _spillMap.Remove(id, out long second)) RemoveSlot(second, code);
            removed++;
        }
        Interlocked.Exchange(ref _count, _directMap.Count);
        return removed;
    }

    // Empties one slot: the list's last row moves into it, and the map entry that pointed at the last row follows.
    private void RemoveSlot(long loc, Span<byte> code)
    {
        var layout = _lists.Layout;
        (int li, int off) = Unpack(loc);
        var list = _lists.Writable(li, _lists[li].Count); // copy-on-write of a mapped list: never write into the file mapping
        int last = list.Count - 1;
        var listIds = list.OwnedIds;
        var codes = list.OwnedCodes;
        if (off != last)
        {
            long moved = listIds[last];
            listIds[off] = moved;
            list.OwnedAttributes[off] = list.OwnedAttributes[last];
            layout.Move(codes, last, off, code);
            if (_refine is not null)
                list.OwnedRefine.AsSpan(last * _refine.CodeSize, _refine.CodeSize).CopyTo(list.OwnedRefine.AsSpan(off * _refine.CodeSize));
            // The moved row is its id's first or (SOAR) second copy: whichever map points at the last slot follows it.
            ref long at = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrNullRef(_directMap, moved);
            if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref at) && at == Pack(li, last)) at = Pack(li, off);
            else _spillMap![moved] = Pack(li, off);
        }
        layout.Clear(codes, last);
        list.Count = last;
    }

    /// <inheritdoc />
    /// <remarks>Returns the refine-store vector when there is one, the stored vector for Flat lists, otherwise
    /// the PQ reconstruction (centroid + decoded residual, or the decoded vector for raw codes). Cosine vectors come back normalised.</remarks>
    public bool TryReconstruct(long id, Span<float> destination)
    {
        if (destination.Length < Dimension)
            throw new ArgumentException($"destination holds {destination.Length} floats; the index dimension is {Dimension}.", nameof(destination));
        _lock.EnterRead();
        try
        {
            if (!_directMap.TryGetValue(id, out long loc)) return false;
            (int li, int off) = Unpack(loc);
            var work = new float[Dimension];
            var code = new byte[Math.Max(_codec.CodeSize, _pq is null ? 0 : PQ4FastScan.PaddedM(_pq.M))];
            ExactVector(li, off, work, code);
            if (_transform is not null) _transform.Revert(work, destination[..Dimension]);
            else work.CopyTo(destination);
            return true;
        }
        finally { _lock.ExitRead(); }
    }

    /// <summary>True when <paramref name="id"/> is stored.</summary>
    public bool Contains(long id)
    {
        _lock.EnterRead();
        try { return _directMap.ContainsKey(id); }
        finally { _lock.ExitRead(); }
    }

    /// <summary>The lists holding <paramref name="id"/>: its own and (SOAR) its second, −1 where there is none (tests).</summary>
    internal (int First, int Second) ListsOf(long id)
    {
        _lock.EnterRead();
        try
        {
            int first = _directMap.TryGetValue(id, out long a) ? Unpack(a).List : -1;
            int second = _spillMap is not null && _spillMap.TryGetValue(id, out long b) ? Unpack(b).List : -1;
            return (first, second);
        }
        finally { _lock.ExitRead(); }
    }

    /// <summary>The best vector the index holds for (list, offset), in the working space, into <paramref name="x"/>.</summary>
    private void ExactVector(int li, int off, Span<float> x, Span<byte> codeScratch)
    {
        var list = _lists[li];
        int d = Dimension;
        if (_refine is not null) { _refine.Decode(list.Refine.Slice(off * _refine.CodeSize, _refine.CodeSize), x); return; }
        if (FlatLists) // Flat lists hold the row itself
        {
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(list.Codes.Slice(off * _codec.CodeSize, _codec.CodeSize)).CopyTo(x);
            return;
        }
        var code = codeScratch[.._codec.CodeSize];
        _lists.Layout.Read(list.Codes, off, code);
        _codec.Decode(code, x);
        if (_residual) System.Numerics.Tensors.TensorPrimitives.Add(x[..d], _quantizer.Centroid(li), x[..d]); // residual + centroid
    }

    private static long Pack(int list, int offset) => ((long)list << 32) | (uint)offset;

    private static (int List, int Offset) Unpack(long loc) => ((int)(loc >> 32), (int)(uint)loc);
}
