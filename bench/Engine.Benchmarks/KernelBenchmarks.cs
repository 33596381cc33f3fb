using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Engine.Distance;

namespace Engine.Benchmarks;

/// <summary>One-to-one and one-to-many float kernels, with TensorPrimitives as the baseline.</summary>
[MemoryDiagnoser]
[Config(typeof(Cfg))]
public class KernelBenchmarks
{
    private const int Rows = 4096;
    private float[] _x = [], _y = [], _rows = [], _out = [];

    private sealed class Cfg : ManualConfig
    {
        // Bytes read per call: the one-to-many cases read Rows × D floats.
        public Cfg() => AddColumn(new RateColumn("GB/s", c =>
            c.Descriptor.WorkloadMethod.Name.Contains("OneToMany") ? (double)Rows * RateColumn.Param(c, nameof(D))!.Value * 4 : null));
    }

    [Params(128, 784)]
    public int D { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _x = Workloads.RandomFloats(1, D);
        _y = Workloads.RandomFloats(2, D);
        _rows = Workloads.RandomFloats(3, (long)Rows * D);
        _out = new float[Rows];
    }

    [Benchmark] public float SquaredL2() => Distances.SquaredL2(_x, _y);
    [Benchmark] public float TensorPrimitivesDistanceSquared() => TensorPrimitives.Distance(_x, _y);
    [Benchmark] public float Dot() => Distances.Dot(_x, _y);
    [Benchmark] public float TensorPrimitivesDot() => TensorPrimitives.Dot(_x, _y);
    [Benchmark] public void SquaredL2OneToMany() => Distances.SquaredL2OneToMany(_x, _rows, _out);
    [Benchmark] public void DotOneToMany() => Distances.DotOneToMany(_x, _rows, _out);
}

/// <summary>DotManyToMany as FlatIndex calls it (32 queries × 1024 rows), reported in GFLOP/s.</summary>
[MemoryDiagnoser]
[Config(typeof(Cfg))]
public class GemmBenchmarks
{
    private float[] _x = [], _y = [], _out = [];

    private sealed class Cfg : ManualConfig
    {
        public Cfg() => AddColumn(new RateColumn("GFLOP/s", c =>
            2.0 * RateColumn.Param(c, nameof(Nx))!.Value * RateColumn.Param(c, nameof(Ny))!.Value * RateColumn.Param(c, nameof(D))!.Value));
    }

    [Params(32)] public int Nx { get; set; }
    [Params(1024)] public int Ny { get; set; }
    [Params(128, 784, 1000)] public int D { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _x = Workloads.RandomFloats(4, (long)Nx * D);
        _y = Workloads.RandomFloats(5, (long)Ny * D);
        _out = new float[Nx * Ny];
    }

    [Benchmark] public void DotManyToMany() => Distances.DotManyToMany(_x, _y, D, _out);
}
