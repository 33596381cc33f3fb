using System.CommandLine;

namespace Engine.Cli;

internal static class BenchCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Data-set directory (base.fvecs, query.fvecs, gt.ivecs, meta.json).", Required = true };
        var index = new Option<string>("--index") { Description = "Index composition string, e.g. Flat or IVF1024,PQ32x4fs,RFlat.", DefaultValueFactory = _ => "Flat" };
        var k = new Option<int>("--k") { Description = "Neighbours per query.", DefaultValueFactory = _ => 10 };
        var threads = new Option<int>("--threads") { Description = "Search and build threads (0 = all cores).", DefaultValueFactory = _ => 0 };
        var sweep = new Option<string[]>("--sweep") { Description = "NAME=V1,V2,... search parameter values to sweep (repeatable; cartesian product).", AllowMultipleArgumentsPerToken = false };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per setting (same schema as peers.py)." };
        var repeats = new Option<int>("--repeats") { Description = "Timed repeats per setting; QPS is the best.", DefaultValueFactory = _ => 3 };
        var nq = new Option<int>("--nq") { Description = "Use only the first NQ queries (0 = all).", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { Description = "cpu, or gpu (ILGPU: CUDA when present, else its CPU accelerator; Flat searches on it, IVF/SPANN train their k-means on it).", DefaultValueFactory = _ => "cpu" };
        var cmd = new Command("bench", "Measures recall@k and QPS of an index spec on a data-set directory.")
        {
            data, index, k, threads, sweep, json, repeats, nq, device,
        };
        cmd.SetAction(r =>
        {
            var options = new BenchOptions(
                r.GetValue(data)!, r.GetValue(index)!, r.GetValue(k), r.GetValue(threads),
                BenchOptions.ParseSweeps(r.GetValue(sweep) ?? []), r.GetValue(json), r.GetValue(repeats), r.GetValue(nq), r.GetValue(device)!);
            return BenchRunner.Run(options, Console.Out);
        });
        return cmd;
    }
}

/// <summary>Options of one <c>engine bench</c> run.</summary>
internal sealed record BenchOptions(
    string DataDir, string Spec, int K, int Threads, IReadOnlyList<KeyValuePair<string, string[]>> Sweeps,
    bool Json, int Repeats, int QueryLimit, string Device = "cpu")
{
    public static IReadOnlyList<KeyValuePair<string, string[]>> ParseSweeps(IEnumerable<string> sweeps)
    {
        var list = new List<KeyValuePair<string, string[]>>();
        foreach (var s in sweeps)
        {
            int eq = s.IndexOf('=');
            if (eq <= 0 || eq == s.Length - 1)
                throw new ArgumentException($"--sweep '{s}' must look like NAME=V1,V2,...");
            var values = s[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            list.Add(new(s[..eq].Trim().ToLowerInvariant(), values));
        }
        return list;
    }

    /// <summary>Every combination of sweep values (one empty combination when there is no sweep).</summary>
    public IEnumerable<Dictionary<string, string>> Settings()
    {
        IEnumerable<Dictionary<string, string>> acc = [new Dictionary<string, string>()];
        foreach (var (name, values) in Sweeps)
            acc = acc.SelectMany(d => values.Select(v => new Dictionary<string, string>(d) { [name] = v })).ToList();
        return acc;
    }
}
