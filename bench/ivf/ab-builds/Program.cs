using System.Diagnostics;
using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.Loader;

// ab-builds DIR_A,DIR_B[,...] INDEX DATA PROBES REFINE THREADS ROUNDS SECONDS
// Loads INDEX (an IVF index file, heap-loaded; or a SPANN directory, a copy opened per build) once per build, then per round searches the first 2 000 queries of
// DATA (an `engine data fetch` directory) with each build for SECONDS, k = 10; prints each build's recall@10 and the
// median and 90th percentile of its batches' QPS over all rounds, and the ratio of medians to the first build.
if (args.Length != 8)
{
    Console.Error.WriteLine("usage: ab-builds DIR_A,DIR_B[,...] INDEX DATA PROBES REFINE THREADS ROUNDS SECONDS");
    return 2;
}
const int Nq = 2000, K = 10;
var dirs = args[0].Split(',');
int probes = int.Parse(args[3]), refine = int.Parse(args[4]), threads = int.Parse(args[5]), rounds = int.Parse(args[6]);
double seconds = double.Parse(args[7], System.Globalization.CultureInfo.InvariantCulture);
float[]? queries = null;
int[]? truth = null;
int truthK = 0;
var builds = new List<(string Dir, Action<float[], float[], long[]> Search)>();
foreach (var dir in dirs)
{
    var alc = new AssemblyLoadContext(dir);
    alc.Resolving += (ctx, name) => Path.Combine(dir, name.Name + ".dll") is var p && File.Exists(p) ? ctx.LoadFromAssemblyPath(p) : null;
    var asm = alc.LoadFromAssemblyPath(Path.GetFullPath(Path.Combine(dir, "Engine.dll")));
    if (queries is null)
    {
        var load = asm.GetType("Engine.Data.DataSet")!.GetMethods().First(m => m.Name == "Load" && m.GetParameters()[0].ParameterType == typeof(string));
        var data = Invoke(load, null, args[2]);
        int d = (int)Prop(data, "Dimension");
        queries = ((float[])Prop(data, "Queries")).AsSpan(0, Nq * d).ToArray();
        truth = (int[])Prop(data, "GroundTruth");
        truthK = (int)Prop(data, "GroundTruthK");
    }
    object index, parameters;
    if (Directory.Exists(args[1]))
    {
        // A SPANN directory: each build opens its own copy (an open takes the directory's lock and may write); REFINE
        // is the per-call rerank factor (0 = the index's own).
        string copy = Path.Combine(Path.GetTempPath(), $"ab-spann-{Environment.ProcessId}-{builds.Count}");
        if (Directory.Exists(copy)) Directory.Delete(copy, true);
        foreach (var f in Directory.GetFiles(args[1], "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(copy, Path.GetRelativePath(args[1], f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        var open = asm.GetType("Engine.Index.Spann.SpannIndex")!.GetMethods()
            .First(m => m.Name == "Open" && m.GetParameters()[0].ParameterType == typeof(string));
        index = Invoke(open, null, copy);
        var spannParameters = asm.GetType("Engine.Index.Spann.SpannSearchParameters")!;
        parameters = Activator.CreateInstance(spannParameters)!;
        spannParameters.GetProperty("Probes")!.SetValue(parameters, probes);
        if (refine > 0) spannParameters.GetProperty("Rerank")!.SetValue(parameters, refine);
        spannParameters.GetProperty("Threads")!.SetValue(parameters, threads);
    }
    else
    {
        var factory = asm.GetType("Engine.Index.IndexFactory")!.GetMethods()
            .First(m => m.Name == "Load" && m.GetParameters().Length >= 2 && m.GetParameters()[0].ParameterType == typeof(string) && m.GetParameters()[1].ParameterType == typeof(bool));
        index = Invoke(factory, null, args[1], false);
        var parametersType = asm.GetType("Engine.Index.Ivf.IvfSearchParameters")!;
        parameters = Activator.CreateInstance(parametersType)!;
        parametersType.GetProperty("Probes")!.SetValue(parameters, probes);
        parametersType.GetProperty("RefineFactor")!.SetValue(parameters, refine);
        parametersType.GetProperty("Threads")!.SetValue(parameters, threads);
    }
    builds.Add((dir, Bind(index, parameters)));
}
var distances = new float[Nq * K];
var labels = new long[Nq * K];
var qps = builds.Select(_ => new List<double>()).ToArray();
var recall = new double[builds.Count];
for (int r = 0; r < rounds; r++)
    for (int b = 0; b < builds.Count; b++)
    {
        builds[b].Search(queries!, distances, labels); // warm this build after the other one ran
        var total = Stopwatch.StartNew();
        do
        {
            var t = Stopwatch.StartNew();
            builds[b].Search(queries!, distances, labels);
            qps[b].Add(Nq / t.Elapsed.TotalSeconds);
        } while (total.Elapsed.TotalSeconds < seconds);
        int hits = 0;
        for (int i = 0; i < Nq; i++)
            for (int j = 0; j < K; j++)
                for (int t = 0; t < K; t++)
                    if (truth![i * truthK + t] == labels[i * K + j]) { hits++; break; }
        recall[b] = hits / (double)(Nq * K);
    }
double first = 0;
for (int b = 0; b < builds.Count; b++)
{
    var l = qps[b];
    l.Sort();
    double median = l[l.Count / 2];
    if (b == 0) first = median;
    Console.WriteLine($"{builds[b].Dir,-24} recall@10 {recall[b]:F4} median {median:F0} p90 {l[(int)(l.Count * 0.9)]:F0} batches {l.Count} ratio {median / first:F3}");
}
return 0;

static object Invoke(MethodInfo m, object? target, params object[] given)
{
    var ps = m.GetParameters();
    var all = new object?[ps.Length];
    for (int i = 0; i < ps.Length; i++) all[i] = i < given.Length ? given[i] : ps[i].DefaultValue;
    return m.Invoke(target, all)!;
}

static object Prop(object o, string name) => o.GetType().GetProperty(name)!.GetValue(o)!;

// index.Search(ReadOnlySpan<float>, int, Span<float>, Span<long>, SearchParameters) as a compiled delegate (spans
// cannot pass through MethodInfo.Invoke).
static Action<float[], float[], long[]> Bind(object index, object parameters)
{
    var search = index.GetType().GetMethods().First(m => m.Name == "Search" && m.GetParameters().Length == 5
        && m.GetParameters()[0].ParameterType == typeof(ReadOnlySpan<float>));
    var ps = search.GetParameters();
    var q = Expression.Parameter(typeof(float[]));
    var d = Expression.Parameter(typeof(float[]));
    var l = Expression.Parameter(typeof(long[]));
    var call = Expression.Call(Expression.Constant(index), search, Expression.Convert(q, ps[0].ParameterType), Expression.Constant(K),
        Expression.Convert(d, ps[2].ParameterType), Expression.Convert(l, ps[3].ParameterType), Expression.Constant(parameters, ps[4].ParameterType));
    return Expression.Lambda<Action<float[], float[], long[]>>(call, q, d, l).Compile();
}
