using Engine.Index.Ivf;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu.Kernels;

/// <summary>The compiled kernels of one accelerator, loaded (compiled) on first use.</summary>
internal sealed class KernelSet
{
    private readonly Accelerator _acc;
    private Action<Index1D, ArrayView<ulong>>? _fill;
    private Action<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, MergeShape>? _merge;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<ulong>, TileArgs>? _flatTile;
    private Action<KernelConfig, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<IvfProbeTerms>, ArrayView<float>, ArrayView<ulong>, TileArgs, AdcArgs>? _adcTile;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, KMeansArgs>? _assign;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, KMeansArgs>? _partialSums;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>, KMeansArgs>? _reduce;

    public KernelSet(Accelerator accelerator) => _acc = accelerator;

    public Action<Index1D, ArrayView<ulong>> Fill =>
        _fill ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ulong>>(SelectKernels.Fill);

    public Action<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, MergeShape> Merge =>
        _merge ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ulong>, ArrayView<ulong>, ArrayView<ulong>, MergeShape>(SelectKernels.Merge);

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<ulong>, TileArgs> FlatTile =>
        _flatTile ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<ulong>, TileArgs>(ScanKernels.FlatTile);

    public Action<KernelConfig, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<IvfProbeTerms>, ArrayView<float>, ArrayView<ulong>, TileArgs, AdcArgs> AdcTile =>
        _adcTile ??= _acc.LoadStreamKernel<ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<IvfProbeTerms>, ArrayView<float>, ArrayView<ulong>, TileArgs, AdcArgs>(ScanKernels.AdcTile);

    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, KMeansArgs> Assign =>
        _assign ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, KMeansArgs>(KMeansKernels.Assign);

    public Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, KMeansArgs> PartialSums =>
        _partialSums ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, KMeansArgs>(KMeansKernels.PartialSums);

    public Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>, KMeansArgs> Reduce =>
        _reduce ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>, KMeansArgs>(KMeansKernels.Reduce);
}
