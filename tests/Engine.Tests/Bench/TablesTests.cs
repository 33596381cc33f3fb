using Engine.Cli;
using Engine.Data;
using Engine.Index;
using Engine.Mining;
using Engine.Mining.Hubness;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Engine.Tests.Bench;

/// <summary>The terminal tables of search, mine and hubness, rendered into a plain (no colour, no ANSI) console.</summary>
public class TablesTests
{
    private static string Render(IRenderable table)
    {
        var sw = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Out = new AnsiConsoleOutput(sw),
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 160;
        console.Write(table);
        return sw.ToString();
    }

    [Fact]
    public void Mining_and_hubness_tables_show_the_report_values()
    {
        const int n = 1500, d = 8;
        var data = SyntheticData.Clustered(n, d, 10, seed: 31, threads: 1);
        using var index = IndexFactory.Create("Flat", d, Metric.L2);
        IndexBuild.Build(index, data);
        var ids = Enumerable.Range(0, 100).Select(i => (long)i).ToArray();
        var miner = new HardNegativeMiner(index, new MiningOptions { NumNegatives = 2, RangeMax = 20, Threads = 1 });
        var report = new MiningReport(1);
        _ = miner.Mine(MiningInput.FromCorpusIds(ids, ids.Select(a => new[] { (a + 1) % n }).ToArray()), report).ToList();
        string mining = Render(Tables.Mining(report));
        Assert.Contains("anchors", mining);
        Assert.Contains("100", mining);
        Assert.Contains("negative", mining);
        Assert.Contains("p50", mining);

        var hub = HubnessAnalyzer.Analyze(index, Enumerable.Range(0, n).Select(i => (long)i).ToArray(), new HubnessOptions { K = 5, Threads = 1 });
        string hubness = Render(Tables.Hubness(hub));
        Assert.Contains("hubness (k=5)", hubness);
        Assert.Contains(hub.Skewness.ToString("F3", System.Globalization.CultureInfo.InvariantCulture), hubness);
    }

    [Fact]
    public void Search_table_shows_recall_qps_and_disk_counters()
    {
        var result = new SearchResult("SPANN", "tiny", 1000, 50, 10, 2, new Dictionary<string, string> { ["probes"] = "8" },
            0.9512, 1234.5, 0.25, 1.5, 7.5, 1.0, 4096, 10, 8.0, 1 << 20, 1 << 24, DiskIndex: true);
        string text = Render(Tables.Search(result));
        foreach (var s in new[] { "recall@10", "0.9512", "1234.5", "probes=8", "0.250 / 1.500 ms", "8.0 / 7.5 / 1.0" })
            Assert.Contains(s, text);
        Assert.DoesNotContain("\u001b[", text);
    }
}
