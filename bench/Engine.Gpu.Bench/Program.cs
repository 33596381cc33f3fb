using Engine.Gpu;

// Usage: dotnet run -c Release --project bench/Engine.Gpu.Bench -- [auto|cuda|cpu] [corpus] [queries] [dim] [k] [clusters]
var device = args.Length > 0 ? Enum.Parse<GpuDeviceKind>(args[0], ignoreCase: true) : GpuDeviceKind.Auto;
int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
var options = new GpuBenchOptions
{
    Corpus = Arg(1, 100_000), Queries = Arg(2, 64), Dimension = Arg(3, 64), K = Arg(4, 10), Clusters = Arg(5, 256),
};
using var context = GpuContext.Create(device);
GpuBench.Run(context, options, Console.Out);
