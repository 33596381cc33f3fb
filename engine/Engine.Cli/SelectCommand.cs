using System.CommandLine;
using System.Globalization;
using Engine.Data;
using Engine.Mining.Selection;

namespace Engine.Cli;

/// <summary>
/// <c>engine select</c>: data selection from embeddings (<see cref="DataSelector"/>): writes the selected ids to
/// <c>--out</c> (.npy int64, .ivecs one id per row, or .txt one per line; random-per-epoch: one row/line per epoch),
/// sensitivity weights beside them (<c>OUT.weights.npy</c> / <c>.txt</c>), and a JSON report (<c>--report</c>, default
/// <c>OUT.json</c>).
/// </summary>
internal static class SelectCommand
{
    public static Command Create()
    {
        var input = VectorInput.Options.Create();
        var method = new Option<string>("--method") { Description = "kcenter | stratified | coverage | sensitivity | random | random-per-epoch.", Required = true };
        var n = new Option<int>("--n") { Description = "Points to select (sensitivity: draws).", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Seed of every random choice.", DefaultValueFactory = _ => 1UL };
        var threads = new Option<int>("--threads") { Description = "Threads (0 = all).", DefaultValueFactory = _ => 0 };
        var clusters = new Option<int>("--clusters") { Description = "k-means clusters for stratified / sensitivity (0 = round(sqrt(N))).", DefaultValueFactory = _ => 0 };
        var quota = new Option<string>("--quota") { Description = "stratified: proportional | equal.", DefaultValueFactory = _ => "proportional" };
        var weights = new Option<string?>("--cluster-weights") { Description = "stratified: comma-separated weight per cluster (Diversify-and-Conquer rounds)." };
        var exclude = new Option<string?>("--exclude") { Description = "Ids never to select (a file written by an earlier select: .npy/.ivecs/.txt)." };
        var scores = new Option<string?>("--scores") { Description = "coverage: difficulty score per point (.txt one per line, or a one-column vector file)." };
        var strata = new Option<int>("--strata") { Description = "coverage: strata over the score range.", DefaultValueFactory = _ => 50 };
        var prune = new Option<double>("--prune-rate") { Description = "coverage: share of the hardest points pruned first (CCS beta).", DefaultValueFactory = _ => 0.0 };
        var epochs = new Option<int>("--epochs") { Description = "random-per-epoch: epochs.", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out") { Description = "Selected ids: FILE.npy, FILE.ivecs or FILE.txt.", Required = true };
        var reportPath = new Option<string?>("--report") { Description = "JSON report path (default: OUT.json)." };
        var cmd = new Command("select", "Selects a subset of a vector set: k-center, stratified, coverage (CCS), sensitivity, random, random-per-epoch.");
        input.AddTo(cmd);
        foreach (Option o in new Option[] { method, n, seed, threads, clusters, quota, weights, exclude, scores, strata, prune, epochs, output, reportPath }) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var data = input.Load(r);
            var options = new SelectionOptions
            {
                Method = SelectionOptions.ParseMethod(r.GetValue(method)!),
                N = r.GetValue(n),
                Seed = r.GetValue(seed),
                Threads = r.GetValue(threads),
                Clusters = r.GetValue(clusters),
                Quota = r.GetValue(quota)!.Trim().ToLowerInvariant() switch
                {
                    "proportional" => StratifiedQuota.Proportional,
                    "equal" => StratifiedQuota.Equal,
                    var q => throw new ArgumentException($"--quota '{q}' must be proportional or equal."),
                },
                ClusterWeights = r.GetValue(weights) is string w ? ParseWeights(w) : null,
                Exclude = r.GetValue(exclude) is string e ? ReadIds(e).ToHashSet() : null,
                Scores = r.GetValue(scores) is string s ? ReadScores(s) : null,
                Strata = r.GetValue(strata),
                PruneRate = r.GetValue(prune),
                Epochs = r.GetValue(epochs),
            };
            return Run(data, options, r.GetValue(output)!, r.GetValue(reportPath), Console.Out, Steps.ForConsole(Console.Error));
        });
        return cmd;
    }

    /// <summary>Selects and writes ids, weights and report; returns the exit code.</summary>
    public static int Run(VectorInput data, SelectionOptions options, string output, string? reportPath, TextWriter log, Steps steps)
    {
        options.Validate();
        string ext = Path.GetExtension(output).ToLowerInvariant();
        if (ext is not (".npy" or ".ivecs" or ".txt")) throw new ArgumentException($"--out '{output}' must end in .npy, .ivecs or .txt.");
        var result = steps.Run($"select {options.Method.ToString().ToLowerInvariant()} (n={options.N:N0})",
            p => DataSelector.Select(data.Vectors, data.Dimension, data.Metric, data.RowIds(), options, p));
        var rows = result.Epochs ?? [result.Ids];
        WriteIds(output, rows);
        if (result.Weights is { } weights)
        {
            string wPath = output[..^ext.Length] + ".weights" + (ext == ".npy" ? ".npy" : ".txt");
            if (ext == ".npy") VectorFiles.Write(wPath, weights, 1);
            else File.WriteAllLines(wPath, weights.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        }
        string json = result.ToJson();
        File.WriteAllText(reportPath ?? output + ".json", json);
        log.WriteLine(json);
        return 0;
    }

    private static void WriteIds(string path, long[][] rows)
    {
        if (path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
        {
            var lines = rows.Length == 1
                ? rows[0].Select(id => id.ToString(CultureInfo.InvariantCulture))
                : rows.Select(r => string.Join(' ', r.Select(id => id.ToString(CultureInfo.InvariantCulture))));
            string tmp = path + ".tmp";
            File.WriteAllLines(tmp, lines);
            File.Move(tmp, path, overwrite: true);
            return;
        }
        bool npy = path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase);
        // npy: one row of N per epoch (shape epochs × N); ivecs: one id per row for one subset, one row per epoch otherwise.
        int width = npy || rows.Length > 1 ? rows[0].Length : 1;
        using var w = VectorFileWriter.Create(path, Math.Max(1, width), elementType: npy ? VectorElementType.Int64 : null);
        foreach (var r in rows) w.WriteRows(Array.ConvertAll(r, id => checked((int)id)));
        w.Complete();
    }

    /// <summary>Ids from .txt (whitespace-separated) or an integer vector file (every value).</summary>
    internal static long[] ReadIds(string path)
    {
        if (path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
            return File.ReadAllText(path).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
                .Select(t => long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v
                    : throw new ArgumentException($"'{path}' holds '{t}', not an integer id.")).ToArray();
        return Array.ConvertAll(VectorFiles.ReadInts(path).Data, v => (long)v);
    }

    private static float[] ReadScores(string path)
    {
        if (path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
            return File.ReadAllLines(path).Where(l => l.Trim().Length > 0)
                .Select((t, i) => float.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out float v) ? v
                    : throw new ArgumentException($"--scores '{path}' line {i + 1} is '{t}', not a number.")).ToArray();
        var m = VectorFiles.ReadFloats(path);
        if (m.Columns != 1) throw new ArgumentException($"--scores '{path}' has {m.Columns} columns; one score per row is expected.");
        return m.Data;
    }

    private static double[] ParseWeights(string text) =>
        text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(t => double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
                : throw new ArgumentException($"--cluster-weights part '{t}' is not a number.")).ToArray();
}
