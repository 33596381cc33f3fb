using Spectre.Console;
using System.CommandLine;
using Engine.Mining.Hubness;

namespace Engine.Cli;

/// <summary><c>engine hubness</c>: k-occurrence statistics of a data set's base vectors.</summary>
internal static class HubnessCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Data-set directory holding base.fvecs.", Required = true };
        var k = new Option<int>("--k") { Description = "Neighbourhood size.", DefaultValueFactory = _ => 10 };
        var sample = new Option<int>("--sample") { Description = "Query-bank sample size (0 = every base vector).", DefaultValueFactory = _ => 0 };
        var metric = new Option<string>("--metric") { Description = "l2, ip or cosine.", DefaultValueFactory = _ => "l2" };
        var index = new Option<string>("--index") { Description = "Index spec.", DefaultValueFactory = _ => "Flat" };
        var seed = new Option<ulong>("--seed") { Description = "Sample seed.", DefaultValueFactory = _ => 42UL };
        var threads = new Option<int>("--threads") { Description = "Threads (0 = all).", DefaultValueFactory = _ => 0 };
        var json = new Option<string?>("--json") { Description = "Also write the report as JSON to this file." };
        var cmd = new Command("hubness", "Measures hubness (N_k skewness, Robin Hood, Gini, hubs, antihubs) of DIR/base.fvecs.");
        foreach (Option o in new Option[] { data, k, sample, metric, index, seed, threads, json }) cmd.Options.Add(o);
        cmd.SetAction(p =>
        {
            var options = new HubnessOptions { K = p.GetValue(k), SampleSize = p.GetValue(sample), Seed = p.GetValue(seed), Threads = p.GetValue(threads) };
            var m = MetricExtensions.ParseMetric(p.GetValue(metric)!);
            var (vectors, d) = VecsFile.ReadFvecs(Path.Combine(p.GetValue(data)!, "base.fvecs"), "--data base.fvecs");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var steps = Steps.ForConsole(Console.Error);
            using var idx = MineCommand.BuildIndex(p.GetValue(index)!, vectors, d, m, options.Threads, steps: steps);
            var report = steps.Run($"k-nearest-neighbour graph (k={options.K})",
                _ => HubnessAnalyzer.Analyze(idx, Enumerable.Range(0, vectors.Length / d).Select(i => (long)i).ToArray(), options));
            if (Terminal.IsInteractive) AnsiConsole.Write(Tables.Hubness(report));
            else Console.WriteLine(report.ToString());
            Console.WriteLine($"wall {clock.Elapsed.TotalSeconds:F2} s");
            if (p.GetValue(json) is string path) File.WriteAllText(path, report.ToJson());
            return 0;
        });
        return cmd;
    }
}
