namespace Engine.Mining.Graph;

/// <summary>Options of <see cref="LabelPropagation"/>.</summary>
public sealed record LabelPropagationOptions
{
    /// <summary>Weight of propagated mass against the seed labels, in (0, 1) (Zhou et al.'s α; ZLaP uses ≈ 0.5–0.99).</summary>
    public double Alpha { get; init; } = 0.9;

    /// <summary>Iterations of F ← α·S·F + (1 − α)·Y, ≥ 1 (a few suffice).</summary>
    public int Iterations { get; init; } = 10;

    /// <summary>Edge weight exponent γ: w = max(s, 0)^γ for similarities (ZLaP's power), exp(−d / σ²) for L2 with σ² the
    /// mean k-th neighbour distance. Must be &gt; 0.</summary>
    public double Gamma { get; init; } = 3;
}

/// <summary>
/// Label propagation over a k-NN graph (ZLaP-style: symmetric normalised affinities of the graph edges, a few power
/// iterations): spreads the given labels to unlabelled points. An example use of <see cref="KnnGraph"/>.
/// </summary>
public static class LabelPropagation
{
    /// <summary>
    /// Propagates <paramref name="labels"/> (one per graph row: a class in 0..classes−1, or −1 for unlabelled) and
    /// returns the class scores (n × classes, row-major) and the predicted class per row (argmax; −1 when a row got no
    /// mass, i.e. it is not connected to any labelled point).
    /// </summary>
    /// <exception cref="ArgumentException">Labels length differs from the graph rows, a label is out of range, or no row is labelled.</exception>
    public static (float[] Scores, int[] Predicted) Run(KnnGraph graph, ReadOnlySpan<int> labels, int classes, LabelPropagationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        options ??= new LabelPropagationOptions();
        if (!(options.Alpha > 0 && options.Alpha < 1)) throw new ArgumentOutOfRangeException(nameof(options), options.Alpha, "Alpha must be in (0, 1).");
        if (options.Iterations < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Iterations, "Iterations must be >= 1.");
        if (!(options.Gamma > 0) || double.IsInfinity(options.Gamma)) throw new ArgumentOutOfRangeException(nameof(options), options.Gamma, "Gamma must be finite and > 0.");
        if (classes < 1) throw new ArgumentOutOfRangeException(nameof(classes), classes, "classes must be >= 1.");
        int n = graph.Count, k = graph.K;
        if (labels.Length != n) throw new ArgumentException($"labels holds {labels.Length} entries for {n} graph rows.", nameof(labels));
        int labelled = 0;
        for (int i = 0; i < n; i++)
        {
            if (labels[i] < -1 || labels[i] >= classes)
                throw new ArgumentException($"labels[{i}] = {labels[i]} is outside -1..{classes - 1}.", nameof(labels));
            if (labels[i] >= 0) labelled++;
        }
        if (labelled == 0) throw new ArgumentException("No row is labelled: give at least one label >= 0.", nameof(labels));

        // Symmetric affinity W = A + Aᵀ over the graph edges, stored as adjacency lists.
        double sigma2 = 0;
        if (graph.Metric == Metric.L2)
        {
            int m = 0;
            for (int i = 0; i < n; i++)
                if (graph.NeighborsOf(i)[k - 1] >= 0) { sigma2 += graph.DistancesOf(i)[k - 1]; m++; }
            sigma2 = m == 0 || sigma2 <= 0 ? 1 : sigma2 / m;
        }
        var adj = new List<(int Row, double W)>[n];
        for (int i = 0; i < n; i++) adj[i] = [];
        for (int i = 0; i < n; i++)
        {
            var nb = graph.NeighborsOf(i);
            var ds = graph.DistancesOf(i);
            for (int j = 0; j < k; j++)
            {
                int r = nb[j] < 0 ? -1 : graph.RowOf(nb[j]);
                if (r < 0 || r == i) continue;
                double w = graph.Metric == Metric.L2 ? Math.Exp(-ds[j] / sigma2) : Math.Pow(Math.Max(ds[j], 0), options.Gamma);
                if (w <= 0) continue;
                adj[i].Add((r, w));
                adj[r].Add((i, w));
            }
        }
        var degree = new double[n];
        for (int i = 0; i < n; i++) foreach (var (_, w) in adj[i]) degree[i] += w;

        var y = new double[n * classes];
        for (int i = 0; i < n; i++) if (labels[i] >= 0) y[i * classes + labels[i]] = 1;
        var f = (double[])y.Clone();
        var next = new double[f.Length];
        double alpha = options.Alpha;
        for (int it = 0; it < options.Iterations; it++)
        {
            Array.Clear(next);
            for (int i = 0; i < n; i++)
            {
                if (degree[i] == 0) continue;
                foreach (var (r, w) in adj[i])
                {
                    double s = w / Math.Sqrt(degree[i] * degree[r]);
                    for (int c = 0; c < classes; c++) next[i * classes + c] += s * f[r * classes + c];
                }
            }
            for (int t = 0; t < f.Length; t++) f[t] = alpha * next[t] + (1 - alpha) * y[t];
        }
        var scores = new float[f.Length];
        var predicted = new int[n];
        for (int i = 0; i < n; i++)
        {
            int best = -1;
            double top = 0;
            for (int c = 0; c < classes; c++)
            {
                scores[i * classes + c] = (float)f[i * classes + c];
                if (f[i * classes + c] > top) { top = f[i * classes + c]; best = c; }
            }
            predicted[i] = best;
        }
        return (scores, predicted);
    }
}
