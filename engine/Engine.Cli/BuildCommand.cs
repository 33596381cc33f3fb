using System.CommandLine;
using System.Diagnostics;
using Engine.Data;
using Engine.Index;
using Engine.Index.Spann;

namespace Engine.Cli;

/// <summary>
/// <c>engine build</c>: builds an index from a data set's base vectors into an index directory. A SPANN spec gives a
/// durable directory-backed index (<see cref="SpannIndex.Create(string, int, Metric, SpannOptions?, Engine.Storage.Wal.IWriteAheadLogProvider?)"/>: postings, metadata, log); any other spec is
/// saved as one file, <see cref="IndexDirectory.IndexFileName"/>, inside the directory.
/// </summary>
internal static class BuildCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Data-set directory (base.fvecs, meta.json); ids are row numbers.", Required = true };
        var index = new Option<string>("--index") { Description = "Index composition string, e.g. SPANN(size=64,replicas=8) or IVF1024,PQ32x4fs,RFlat.", Required = true };
        var dir = new Option<string>("--dir") { Description = "Index directory to create (must not hold an index yet).", Required = true };
        var cmd = new Command("build", "Builds an index from a data set's base vectors and stores it in an index directory.") { data, index, dir };
        cmd.SetAction(r => Run(r.GetValue(data)!, r.GetValue(index)!, r.GetValue(dir)!, Console.Out, Steps.ForConsole(Console.Error)));
        return cmd;
    }

    /// <summary>
    /// Builds and stores the index; returns the exit code. Never overwrites an existing index. The index is built in a
    /// temporary sibling directory (<c>DIR.building-PID-RANDOM</c>), made durable, and only then moved into place, so a
    /// build that is killed leaves either no index at all or the complete one (see <see cref="IndexPublisher"/>).
    /// </summary>
    public static int Run(string dataDir, string spec, string indexDir, TextWriter output) =>
        Run(dataDir, spec, indexDir, output, Steps.Plain(TextWriter.Null));

    /// <summary><see cref="Run(string, string, string, TextWriter)"/> with progress on the train, add and maintenance steps.</summary>
    public static int Run(string dataDir, string spec, string indexDir, TextWriter output, Steps steps)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(indexDir);
        string dir = Path.GetFullPath(indexDir).TrimEnd(Path.DirectorySeparatorChar);
        if (File.Exists(dir)) throw new ArgumentException($"--dir '{dir}' is a file; an index directory is expected.");
        IndexDirectory.ThrowIfHoldsIndex(dir);
        bool isSpann = SpannSpec.TryParse(spec, out var spannOptions);
        var set = DataSet.Load(dataDir, new DataSetLoadOptions { RequireGroundTruth = false });
        if (!isSpann) using (IndexFactory.Create(spec, set.Dimension, set.Metric)) { } // reject a bad spec before creating anything
        IndexPublisher.RemoveStaleBuilds(dir);
        string work = IndexPublisher.NewBuildDirectory(dir);
        try
        {
            var clock = Stopwatch.StartNew();
            double trainSeconds;
            long resident;
            int postings = -1;
            using (var idx = isSpann
                ? SpannIndex.Create(work, set.Dimension, set.Metric, spannOptions)
                : IndexFactory.Create(spec, set.Dimension, set.Metric))
            {
                output.WriteLine($"build: {idx.Description} on {set.Name}: n={set.Count} d={set.Dimension} metric={set.Metric.ToShortName()}");
                steps.Run($"train {idx.Description}", progress => idx.Train(set.Base, progress));
                trainSeconds = clock.Elapsed.TotalSeconds;
                if (AnisotropicNote(idx) is { } note) output.WriteLine($"build: {note}");
                var ids = new long[set.Count];
                for (int i = 0; i < ids.Length; i++) ids[i] = i;
                steps.Run($"add {set.Count:N0} vectors", progress => idx.Add(set.Base, ids, progress));
                if (idx is SpannIndex spann)
                {
                    steps.Run("maintain and checkpoint", progress =>
                    {
                        spann.Maintain(progress);
                        spann.Checkpoint();
                    });
                    postings = spann.PostingCount;
                }
                else idx.Save(Path.Combine(work, IndexDirectory.IndexFileName));
                resident = idx.MemoryBytes;
            }
            IndexPublisher.Publish(work, dir);
            double total = clock.Elapsed.TotalSeconds;
            long disk = IndexDirectory.Bytes(dir);
            output.WriteLine($"build: {total:F2} s (train {trainSeconds:F2} s, add {total - trainSeconds:F2} s); " +
                             $"resident {resident / 1048576.0:F1} MiB, on disk {disk / 1048576.0:F1} MiB in '{dir}'");
            if (postings >= 0) output.WriteLine($"build: {postings} postings");
        }
        catch
        {
            // Only the temporary build directory is removed; the target (and anything already in it) is untouched.
            IndexPublisher.TryDelete(work);
            throw;
        }
        return 0;
    }

    /// <summary>For an IVF-PQ index with score-aware codes, the threshold they use and whether training chose it.</summary>
    internal static string? AnisotropicNote(IVectorIndex index) =>
        index is Engine.Index.Ivf.IvfIndex { AnisotropicThreshold: > 0 } ivf
            ? $"score-aware PQ codes, anisotropic threshold {ivf.AnisotropicThreshold.ToString(System.Globalization.CultureInfo.InvariantCulture)}" +
              (ivf.Spec.AnisotropicThreshold is null ? " (chosen on the training data)" : " (from the spec)")
            : null;
}

/// <summary>Where <c>engine build</c> puts an index inside its directory, and how <c>engine search</c> finds it.</summary>
internal static class IndexDirectory
{
    /// <summary>File name of a non-SPANN index inside an index directory.</summary>
    public const string IndexFileName = "index.bin";

    /// <summary>Throws when <paramref name="dir"/> already holds an index (SPANN metadata or an index file).</summary>
    public static void ThrowIfHoldsIndex(string dir)
    {
        if (File.Exists(Path.Combine(dir, SpannIndex.MetaFileName)) || File.Exists(Path.Combine(dir, IndexFileName)))
            throw new ArgumentException($"--dir '{dir}' already holds an index; choose an empty directory (nothing was changed).");
    }

    /// <summary>Opens the index in <paramref name="indexDir"/>, with a clear error when there is none. A SPANN index's
    /// log recovery (records replayed, torn tail dropped, loss accepted) is printed to standard error.</summary>
    /// <param name="indexDir">The index directory.</param>
    /// <param name="acceptLogLoss">SPANN: open even when the log lost acknowledged writes (<c>--accept-log-loss</c>,
    /// <see cref="SpannOpenOptions.AcceptLogLoss"/>).</param>
    public static IVectorIndex Open(string indexDir, bool acceptLogLoss = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(indexDir);
        string dir = Path.GetFullPath(indexDir);
        if (!Directory.Exists(dir)) throw new ArgumentException($"--dir '{dir}' does not exist; build an index there with 'engine build'.");
        if (File.Exists(Path.Combine(dir, SpannIndex.MetaFileName)))
        {
            var spann = SpannIndex.Open(dir, new SpannOpenOptions { AcceptLogLoss = acceptLogLoss });
            Console.Error.WriteLine($"open: {spann.Recovery}");
            return spann;
        }
        string file = Path.Combine(dir, IndexFileName);
        if (File.Exists(file)) return IndexFactory.Load(file);
        throw new ArgumentException($"--dir '{dir}' holds no index (neither {SpannIndex.MetaFileName} nor {IndexFileName}); build one with 'engine build'.");
    }

    /// <summary>Total size of the files under <paramref name="dir"/>.</summary>
    public static long Bytes(string dir) =>
        Engine.Storage.FileLengths.OfDirectory(dir);
}
