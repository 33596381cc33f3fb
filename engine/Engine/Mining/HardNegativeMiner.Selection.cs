namespace Engine.Mining;

public sealed partial class HardNegativeMiner
{
    // Sequential, in anchor order: the hand-out cap and the report are shared state.
    private MinedRow? Select(AnchorCandidates a, MiningReport report)
    {
        report.Anchors++;
        report.Candidates += a.Returned;
        report.SkippedPositives += a.Positive;
        report.SkippedExcluded += a.Excluded;
        report.SkippedNearDuplicates += a.NearDuplicate;
        report.SkippedMargin += a.Margin;
        report.SkippedScoreBounds += a.ScoreBounds;
        report.SkippedBelowRangeMin += a.BelowRangeMin;
        report.BeyondRangeMax += a.BeyondRangeMax;

        int n = _options.NumNegatives;
        int cap = _options.MaxHandOutsPerItem;
        // Sized by what can be chosen, not by NumNegatives (which may be up to int.MaxValue).
        var chosen = new List<(Candidate C, int Rank)>(Math.Min(n, a.Window.Length + a.Deeper.Length));
        foreach (int w in SelectionOrder(a))
        {
            if (chosen.Count == n) break;
            var c = a.Window[w];
            if (cap > 0 && report.HandOutCount(c.Id) >= cap) { report.SkippedHandOutCap++; continue; }
            chosen.Add((c, w));
        }

        if (chosen.Count < n)
        {
            report.ShortfallRows++;
            switch (_options.Shortfall)
            {
                case ShortfallPolicy.Drop:
                    report.RowsDropped++;
                    return null;
                case ShortfallPolicy.PadFromDeeper:
                    int before = chosen.Count;
                    for (int j = 0; j < a.Deeper.Length && chosen.Count < n; j++)
                    {
                        var c = a.Deeper[j];
                        if (cap > 0 && report.HandOutCount(c.Id) >= cap) { report.SkippedHandOutCap++; continue; }
                        chosen.Add((c, a.Window.Length + j));
                    }
                    if (chosen.Count > before) { report.RowsPadded++; report.NegativesPadded += chosen.Count - before; }
                    if (chosen.Count < n) report.RowsShort++;
                    break;
                default:
                    report.RowsShort++;
                    break;
            }
        }

        chosen.Sort(static (x, y) => x.Rank.CompareTo(y.Rank));
        var negatives = new long[chosen.Count];
        var scores = new float[chosen.Count];
        for (int i = 0; i < chosen.Count; i++)
        {
            negatives[i] = chosen[i].C.Id;
            scores[i] = chosen[i].C.Score;
            report.RecordHandOut(negatives[i]);
            report.NegativeScores.Add(scores[i]);
            report.Differences.Add(a.PositiveAnchorScore - scores[i]);
        }
        foreach (float p in a.PositiveScores) report.PositiveScores.Add(p);
        report.RowsWritten++;
        report.NegativesWritten += negatives.Length;
        return new MinedRow(a.AnchorId, a.Positives, a.PositiveScores, negatives, scores);
    }

    /// <summary>
    /// Window indices in the order they are offered. Top: rank order. Otherwise Gumbel-top-k (equivalent to
    /// weighted sampling without replacement): key = log w + Gumbel(seed, anchor, candidate), largest first.
    /// </summary>
    private int[] SelectionOrder(AnchorCandidates a)
    {
        int m = a.Window.Length;
        var order = new int[m];
        for (int i = 0; i < m; i++) order[i] = i;
        if (_options.Sampling == SamplingStrategy.Top || m == 0) return order;
        var keys = new double[m];
        for (int i = 0; i < m; i++)
        {
            var c = a.Window[i];
            keys[i] = LogWeight(c.Score, a.PositiveAnchorScore, c.Id)
                + CounterRng.Gumbel(_options.Seed, (ulong)a.AnchorId, (ulong)c.Id);
        }
        Array.Sort(order, (x, y) => keys[x] != keys[y] ? keys[y].CompareTo(keys[x]) : x.CompareTo(y));
        return order;
    }

    /// <summary>Log of the sampling weight of a candidate with score <paramref name="s"/>.</summary>
    internal double LogWeight(float s, float positive, long id)
    {
        double lw = _options.Sampling switch
        {
            SamplingStrategy.SimAns => -_options.SimAnsA * Math.Abs(s - positive - _options.SimAnsB),
            SamplingStrategy.Softmax => s / _options.Temperature,
            _ => 0,
        };
        if (_options.HubnessGamma > 0)
            lw -= _options.HubnessGamma * Math.Log(Math.Max(1, _options.KOccurrence!.GetValueOrDefault(id)));
        return lw;
    }
}
