using System.CommandLine;
using Engine.Data;

namespace Engine.Cli;

/// <summary>
/// The vector set of the beyond-negatives verbs (knn-graph, select, eval): <c>--data DIR</c> (a data set's base
/// vectors and metric) or <c>--vectors FILE</c> (fvecs, fbin, npy, ... with <c>--metric</c>); ids are row numbers.
/// </summary>
internal sealed class VectorInput
{
    private VectorInput(string name, float[] vectors, int dimension, Metric metric)
    {
        Name = name;
        Vectors = vectors;
        Dimension = dimension;
        Metric = metric;
    }

    /// <summary>Data set or file name.</summary>
    public string Name { get; }

    /// <summary>n × d row-major vectors.</summary>
    public float[] Vectors { get; }

    /// <summary>Vector dimension.</summary>
    public int Dimension { get; }

    /// <summary>Distance metric.</summary>
    public Metric Metric { get; }

    /// <summary>Number of vectors.</summary>
    public int Count => Vectors.Length / Dimension;

    /// <summary>Row ids 0..n−1.</summary>
    public long[] RowIds()
    {
        var ids = new long[Count];
        for (int i = 0; i < ids.Length; i++) ids[i] = i;
        return ids;
    }

    /// <summary>The three options, to add to a command.</summary>
    public sealed record Options(Option<string?> Data, Option<string?> Vectors, Option<string?> Metric)
    {
        /// <summary>Creates the options.</summary>
        public static Options Create() => new(
            new Option<string?>("--data") { Description = "Data-set directory (base.fvecs, meta.json): its base vectors and metric." },
            new Option<string?>("--vectors") { Description = "Vector file (fvecs, fbin, npy, idx...) instead of --data." },
            new Option<string?>("--metric") { Description = "l2, ip or cosine (with --vectors; default l2; with --data it must match the data set)." });

        /// <summary>Adds the options to <paramref name="command"/>.</summary>
        public void AddTo(Command command)
        {
            command.Options.Add(Data);
            command.Options.Add(Vectors);
            command.Options.Add(Metric);
        }

        /// <summary>Loads the chosen input.</summary>
        public VectorInput Load(ParseResult r) => VectorInput.Load(r.GetValue(Data), r.GetValue(Vectors), r.GetValue(Metric));
    }

    /// <summary>Loads exactly one of <paramref name="dataDir"/> and <paramref name="vectorFile"/>.</summary>
    /// <exception cref="ArgumentException">Neither or both given, or a metric that contradicts the data set.</exception>
    public static VectorInput Load(string? dataDir, string? vectorFile, string? metric)
    {
        if ((dataDir is null) == (vectorFile is null))
            throw new ArgumentException("Give exactly one of --data DIR and --vectors FILE.");
        Metric? m = metric is null ? null : MetricExtensions.ParseMetric(metric);
        if (dataDir is not null)
        {
            var set = DataSet.Load(dataDir, new DataSetLoadOptions { RequireGroundTruth = false });
            if (m is Metric given && given != set.Metric)
                throw new ArgumentException($"--metric {given.ToShortName()} contradicts the data set '{dataDir}', whose metric is {set.Metric.ToShortName()}.");
            return new VectorInput(set.Name, set.Base, set.Dimension, set.Metric);
        }
        var matrix = VectorFiles.ReadFloats(vectorFile!);
        if (matrix.Rows == 0) throw new ArgumentException($"--vectors '{vectorFile}' holds no vectors.");
        return new VectorInput(Path.GetFileName(vectorFile!), matrix.Data, matrix.Columns, m ?? Metric.L2);
    }
}
