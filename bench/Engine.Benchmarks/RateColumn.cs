using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Engine.Benchmarks;

/// <summary>
/// A BenchmarkDotNet column that turns the mean time into a rate: <c>amount(case) / mean</c>, in units of 1e9
/// per second (GB/s for bytes, GFLOP/s for flops). Cases for which <c>amount</c> returns null show "-".
/// </summary>
public sealed class RateColumn(string name, Func<BenchmarkCase, double?> amount) : IColumn
{
    public string Id => "Rate." + name;
    public string ColumnName => name;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => $"{name}: work per operation divided by the mean time (1e9 units per second)";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        double? work = amount(benchmarkCase);
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (work is null || stats is null || stats.Mean <= 0) return "-";
        return (work.Value / stats.Mean).ToString("F1"); // per ns == 1e9 per s
    }

    public override string ToString() => ColumnName;

    /// <summary>Reads a benchmark parameter by name (null when the case has none).</summary>
    public static int? Param(BenchmarkCase c, string name) =>
        c.Parameters.Items.FirstOrDefault(p => p.Name == name)?.Value is int v ? v : null;
}
