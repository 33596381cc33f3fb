namespace Engine.Mining;

public sealed partial class HardNegativeMiner
{
    /// <summary>A surviving candidate: id, raw (or exact) score and the key it is ranked by (larger first).</summary>
    internal readonly record struct Candidate(long Id, float Score, float RankKey);

    /// <summary>Everything selection needs about one anchor; a pure function of the anchor and the index.</summary>
    internal sealed class AnchorCandidates
    {
        public long AnchorId;
        public long[] Positives = [];
        public float[] PositiveScores = [];
        public float PositiveAnchorScore;
        public Candidate[] Window = [];
        public Candidate[] Deeper = [];
        public long Returned, Positive, Excluded, NearDuplicate, Margin, ScoreBounds, BelowRangeMin, BeyondRangeMax;
    }

    private AnchorCandidates Prepare(MiningInput input, int anchor, ReadOnlySpan<float> anchorVector,
        ReadOnlySpan<float> distances, ReadOnlySpan<long> labels, Scratch scratch)
    {
        int d = _index.Dimension;
        Metric metric = _index.Metric;
        var result = new AnchorCandidates { AnchorId = input.AnchorId(anchor, _options.AnchorIdOffset) };
        long[] positives = input.Positives[anchor];
        result.Positives = positives;
        result.PositiveScores = new float[positives.Length];
        for (int p = 0; p < positives.Length; p++)
        {
            var pv = scratch.Positives.AsSpan(p * d, d);
            if (!_index.TryReconstruct(positives[p], pv))
                throw new InvalidOperationException($"Positive id {positives[p]} disappeared from the index during mining.");
            result.PositiveScores[p] = ExactScore(metric, anchorVector, pv);
        }
        float pos = _options.PositiveAnchor switch
        {
            PositiveAnchor.Max => result.PositiveScores.Max(),
            PositiveAnchor.Mean => (float)result.PositiveScores.Average(),
            _ => result.PositiveScores.Min(),
        };
        result.PositiveAnchorScore = pos;
        float marginCeiling = MarginCeiling(pos);

        var excluded = new HashSet<long>(input.Exclusions?[anchor] ?? []);
        if (input.CorpusAnchorIds is not null) excluded.Add(result.AnchorId);

        // Raw scores of every returned candidate, in index rank order (exact when re-scoring).
        int returned = 0;
        EnsureScratch(scratch, labels.Length);
        for (int j = 0; j < labels.Length && labels[j] >= 0; j++)
        {
            float score = metric.ToScore(distances[j]);
            if (_options.RescoreExact)
            {
                if (!_index.TryReconstruct(labels[j], scratch.Candidate))
                    throw new InvalidOperationException($"The index returned id {labels[j]} but cannot reconstruct it.");
                score = ExactScore(metric, anchorVector, scratch.Candidate);
            }
            scratch.Ids[returned] = labels[j];
            scratch.Raw[returned] = score;
            returned++;
        }
        result.Returned = returned;
        var ids = scratch.Ids.AsSpan(0, returned);
        var raw = scratch.Raw.AsSpan(0, returned);
        var ranking = scratch.Ranking.AsSpan(0, returned);
        if (_options.Normalizer is not null) _options.Normalizer.Normalize(ids, raw, ranking);
        else raw.CopyTo(ranking);

        var survivors = new List<Candidate>(returned);
        for (int j = 0; j < returned; j++)
        {
            long id = ids[j];
            float s = raw[j];
            if (!_options.IncludePositives && Array.IndexOf(positives, id) >= 0) { result.Positive++; continue; }
            if (excluded.Contains(id)) { result.Excluded++; continue; }
            if (_options.DuplicateThreshold is float dup && IsNearDuplicate(id, positives.Length, dup, scratch)) { result.NearDuplicate++; continue; }
            if (s > marginCeiling) { result.Margin++; continue; }
            if ((_options.MinScore is float lo && s < lo) || (_options.MaxScore is float hi && s > hi)) { result.ScoreBounds++; continue; }
            survivors.Add(new Candidate(id, s, ranking[j]));
        }
        // Exact re-scores and normalised keys can reorder the index ranking; ties go to the smaller id.
        if (_options.RescoreExact || _options.Normalizer is not null)
            survivors.Sort(static (a, b) => a.RankKey != b.RankKey ? b.RankKey.CompareTo(a.RankKey) : a.Id.CompareTo(b.Id));

        int windowStart = Math.Min(_options.RangeMin, survivors.Count);
        int windowEnd = Math.Min(_options.RangeMax, survivors.Count);
        result.BelowRangeMin = windowStart;
        result.BeyondRangeMax = survivors.Count - windowEnd;
        result.Window = survivors.GetRange(windowStart, windowEnd - windowStart).ToArray();
        result.Deeper = _options.Shortfall == ShortfallPolicy.PadFromDeeper
            ? survivors.GetRange(windowEnd, survivors.Count - windowEnd).ToArray()
            : [];
        return result;
    }

    /// <summary>
    /// The highest negative score the margins allow: absolute <c>pos − m</c> (neg + m &gt; pos is dropped) and
    /// sign-safe relative <c>pos − |pos|·m</c>; +∞ when no margin is set.
    /// </summary>
    internal float MarginCeiling(float pos)
    {
        float ceiling = float.PositiveInfinity;
        if (_options.AbsoluteMargin is float abs) ceiling = MathF.Min(ceiling, pos - abs);
        if (_options.RelativeMargin is float rel) ceiling = MathF.Min(ceiling, pos - MathF.Abs(pos) * rel);
        return ceiling;
    }

    private bool IsNearDuplicate(long id, int positiveCount, float threshold, Scratch scratch)
    {
        int d = _index.Dimension;
        if (!_index.TryReconstruct(id, scratch.Candidate))
            throw new InvalidOperationException($"The index returned id {id} but cannot reconstruct it.");
        for (int p = 0; p < positiveCount; p++)
            if (Distance.Distances.Cosine(scratch.Candidate, scratch.Positives.AsSpan(p * d, d)) > threshold)
                return true;
        return false;
    }

    private static void EnsureScratch(Scratch scratch, int k)
    {
        if (scratch.Ids.Length >= k) return;
        scratch.Ids = new long[k];
        scratch.Raw = new float[k];
        scratch.Ranking = new float[k];
    }
}
