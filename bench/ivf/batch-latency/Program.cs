using System.Diagnostics;
using Engine;
using Engine.Index;
using Engine.Index.Ivf;
// args: DATA (.fvecs, or raw float32 64-d rows) SPEC l2|ip PROBES K NQ...; the first min(n, 8192) rows are the
// queries, cut into batches of NQ; prints the best of five passes in microseconds per query, one thread.
string path = args[0]; string spec = args[1]; var metric = args[2] == "ip" ? Metric.InnerProduct : Metric.L2;
int probes = int.Parse(args[3]), k = int.Parse(args[4]);
float[] x; int d;
var raw = File.ReadAllBytes(path);
if (path.EndsWith(".fvecs")) { d = BitConverter.ToInt32(raw, 0); int n0 = raw.Length / (4 * (d + 1)); x = new float[n0 * d]; for (int i = 0; i < n0; i++) Buffer.BlockCopy(raw, i * 4 * (d + 1) + 4, x, i * d * 4, d * 4); }
else { d = 64; x = new float[raw.Length / 4]; Buffer.BlockCopy(raw, 0, x, 0, raw.Length); }
int n = x.Length / d;
var idx = IndexFactory.Create(spec, d, metric);
idx.Train(x); var ids = new long[n]; for (int i = 0; i < n; i++) ids[i] = i; idx.Add(x, ids);
foreach (var s in args.Skip(5))
{
    int nq = int.Parse(s);
    var dist = new float[nq * k]; var lab = new long[nq * k];
    var p = new IvfSearchParameters { Probes = probes, Threads = 1 };
    var sw = new Stopwatch(); double best = double.MaxValue;
    for (int rep = 0; rep < 5; rep++)
    {
        sw.Restart(); int reps = 0;
        for (int q0 = 0; q0 + nq <= Math.Min(n, 8192); q0 += nq, reps++) idx.Search(x.AsSpan(q0 * d, nq * d), k, dist, lab, p);
        best = Math.Min(best, sw.Elapsed.TotalMicroseconds / (reps * nq));
    }
    Console.WriteLine($"{spec} p{probes} k{k} nq {nq}: {best:F1} us/query");
}
