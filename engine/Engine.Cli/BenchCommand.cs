using System.CommandLine;
using Engine.Bench;

namespace Engine.Cli;

internal static class BenchCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Data set: a directory (base/query as .fvecs|.bvecs|.npy|.fbin|.u8bin, gt as .ivecs|.npy|.ibin, meta.json) or an ann-benchmarks .hdf5 file.", Required = true };
        var index = new Option<string?>("--index") { Description = "Index composition string, e.g. Flat or IVF1024,PQ32x4fs,RFlat (default Flat; not with --specs)." };
        var specs = new Option<string?>("--specs") { Description = "JSON or YAML (.yaml/.yml) file of runs, {\"runs\": [{\"index\": SPEC, \"sweep\": {NAME: [V1, V2]}}]}: several specs with their sweeps, one combined plot." };
        var k = new Option<int>("--k") { Description = "Neighbours per query.", DefaultValueFactory = _ => 10 };
        var threads = new Option<int>("--threads") { Description = "Search and build threads (0 = all cores).", DefaultValueFactory = _ => 0 };
        var sweep = new Option<string[]>("--sweep") { Description = "NAME=V1,V2,... search parameter values to sweep (repeatable; cartesian product; not with --specs).", AllowMultipleArgumentsPerToken = false };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per setting (same schema as peers.py)." };
        var repeats = new Option<int>("--repeats") { Description = "Timed repeats per setting; QPS is the best.", DefaultValueFactory = _ => 3 };
        var minSeconds = new Option<double>("--min-seconds") { Description = "Keep timing a setting until at least this many seconds of timed passes have run (and --repeats passes), so the best pass is chosen from more than a few on a noisy machine; bench/peers/run_peers.py takes the same option. 0 = exactly --repeats passes.", DefaultValueFactory = _ => 0 };
        var nq = new Option<int>("--nq") { Description = "Use only the first NQ queries (0 = all).", DefaultValueFactory = _ => 0 };
        var device = new Option<string>("--device") { Description = "cpu, gpu (ILGPU: CUDA when present, else its CPU accelerator) or cuda (CUDA or an error): Flat searches on it, IVF/SPANN train their k-means on it, IVF lists of PQ or RaBitQ codes are scanned on it.", DefaultValueFactory = _ => "cpu" };
        var plot = new Option<string?>("--plot") { Description = "Write the recall-QPS plot (log QPS, Pareto fronts, labelled points) to FILE.png or FILE.svg." };
        var csv = new Option<string?>("--csv") { Description = "Write one CSV row per setting (and per peer row) to FILE." };
        var peers = new Option<string?>("--peers") { Description = "JSON-lines rows of other systems (bench/peers/run_peers.py or peers.py output) to overlay on the plot and add to the CSV." };
        var latency = new Option<int>("--latency-queries") { Description = "Queries searched one at a time, single-threaded, for p50/p99 latency (0 = skip).", DefaultValueFactory = _ => 1000 };
        var title = new Option<string?>("--title") { Description = "Plot title (default: data set, n, k, threads)." };
        var cmd = new Command("bench", "Measures recall@k, QPS and latency of index specs on a data set; plots recall against QPS with peers.")
        {
            data, index, specs, k, threads, sweep, json, repeats, minSeconds, nq, device, plot, csv, peers, latency, title,
        };
        cmd.SetAction(r =>
        {
            string? specsFile = r.GetValue(specs);
            string? spec = r.GetValue(index);
            var sweeps = r.GetValue(sweep) ?? [];
            if (specsFile is not null && (spec is not null || sweeps.Length > 0))
                throw new ArgumentException("--specs lists the index specs and their sweeps; do not combine it with --index or --sweep.");
            var options = new BenchOptions(
                r.GetValue(data)!, spec ?? "Flat", r.GetValue(k), r.GetValue(threads),
                BenchOptions.ParseSweeps(sweeps), r.GetValue(json), r.GetValue(repeats), r.GetValue(nq), r.GetValue(device)!)
            {
                SpecsFile = specsFile,
                PlotFile = r.GetValue(plot),
                CsvFile = r.GetValue(csv),
                PeersFile = r.GetValue(peers),
                LatencyQueries = r.GetValue(latency),
                MinSeconds = r.GetValue(minSeconds),
                Title = r.GetValue(title),
            };
            return BenchRunner.Run(options, Console.Out, Steps.ForConsole(options.Json ? TextWriter.Null : Console.Error));
        });
        return cmd;
    }
}

/// <summary>Options of one <c>engine bench</c> run.</summary>
internal sealed record BenchOptions(
    string DataDir, string Spec, int K, int Threads, IReadOnlyList<KeyValuePair<string, string[]>> Sweeps,
    bool Json, int Repeats, int QueryLimit, string Device = "cpu")
{
    /// <summary>JSON or YAML file of runs; replaces <see cref="Spec"/> and <see cref="Sweeps"/>.</summary>
    public string? SpecsFile { get; init; }

    /// <summary>PNG or SVG file for the recall–QPS plot.</summary>
    public string? PlotFile { get; init; }

    /// <summary>CSV file, one row per setting.</summary>
    public string? CsvFile { get; init; }

    /// <summary>JSON-lines file of peer rows to overlay.</summary>
    public string? PeersFile { get; init; }

    /// <summary>Queries timed one by one for p50/p99 (0 = none).</summary>
    public int LatencyQueries { get; init; } = 1000;

    /// <summary>Seconds of timed passes per setting at least (beyond <see cref="Repeats"/> passes); 0 = exactly Repeats.</summary>
    public double MinSeconds { get; init; }

    /// <summary>Plot title; null for the default.</summary>
    public string? Title { get; init; }

    public static IReadOnlyList<KeyValuePair<string, string[]>> ParseSweeps(IEnumerable<string> sweeps) => BenchRun.ParseSweeps(sweeps);

    /// <summary>The runs to do: those of <see cref="SpecsFile"/>, else <see cref="Spec"/> with <see cref="Sweeps"/>.</summary>
    public IReadOnlyList<BenchRun> Runs() => SpecsFile is null ? [new BenchRun(Spec, Sweeps)] : BenchRun.ReadSpecsFile(SpecsFile);

    /// <summary>Every combination of sweep values (one empty combination when there is no sweep).</summary>
    public IEnumerable<Dictionary<string, string>> Settings() => new BenchRun(Spec, Sweeps).Settings();
}
