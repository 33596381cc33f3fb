namespace Engine.Quantization;

/// <summary>
/// How the codes of consecutive rows are laid out in one contiguous storage area (an inverted list's code bytes):
/// one code after the other (<see cref="Rows"/>), or the interleaved 32-row blocks of 4-bit fast-scan
/// (<see cref="PQ4FastScanCodec"/>). Storage sized for a multiple of 32 rows suits every layout.
/// </summary>
internal abstract class CodeLayout
{
    /// <summary>Bytes of one row's unpacked code (what <see cref="Write"/> takes and <see cref="Read"/> gives).</summary>
    public abstract int CodeSize { get; }

    /// <summary>Storage bytes that hold <paramref name="rows"/> rows.</summary>
    public abstract long Bytes(long rows);

    /// <summary>Writes the code of row <paramref name="row"/>.</summary>
    public abstract void Write(Span<byte> storage, int row, ReadOnlySpan<byte> code);

    /// <summary>Reads the code of row <paramref name="row"/> into <paramref name="code"/> (<see cref="CodeSize"/> bytes).</summary>
    public abstract void Read(ReadOnlySpan<byte> storage, int row, Span<byte> code);

    /// <summary>Copies row <paramref name="from"/> over row <paramref name="to"/> (<paramref name="scratch"/> holds ≥ <see cref="ScratchBytes"/>).</summary>
    public abstract void Move(Span<byte> storage, int from, int to, Span<byte> scratch);

    /// <summary>Scratch bytes <see cref="Move"/> needs.</summary>
    public virtual int ScratchBytes => 0;

    /// <summary>Resets the slot of a row that was dropped from the end (blocks keep unused slots zero).</summary>
    public virtual void Clear(Span<byte> storage, int row) { }

    /// <summary>Codes of <paramref name="codeSize"/> bytes, one after the other.</summary>
    public static CodeLayout Rows(int codeSize) => new RowLayout(codeSize);

    private sealed class RowLayout(int codeSize) : CodeLayout
    {
        public override int CodeSize => codeSize;

        public override long Bytes(long rows) => checked(rows * codeSize);

        public override void Write(Span<byte> storage, int row, ReadOnlySpan<byte> code) => code[..codeSize].CopyTo(storage.Slice(row * codeSize, codeSize));

        public override void Read(ReadOnlySpan<byte> storage, int row, Span<byte> code) => storage.Slice(row * codeSize, codeSize).CopyTo(code);

        public override void Move(Span<byte> storage, int from, int to, Span<byte> scratch) =>
            storage.Slice(from * codeSize, codeSize).CopyTo(storage.Slice(to * codeSize));
    }
}

/// <summary>The 32-row blocks of <see cref="PQ4FastScan"/> for M 4-bit sub-codes.</summary>
internal sealed class FastScanBlockLayout(int m) : CodeLayout
{
    /// <summary>Sub-quantizers M.</summary>
    public int M { get; } = m;

    /// <summary>Bytes of one 32-row block.</summary>
    public int BlockBytes { get; } = PQ4FastScan.BlockBytes(m);

    public override int CodeSize => M;

    public override long Bytes(long rows) => checked((rows + 31) / 32 * BlockBytes);

    public override void Write(Span<byte> storage, int row, ReadOnlySpan<byte> code) => PQ4FastScan.SetCode(storage, M, row, code);

    public override void Read(ReadOnlySpan<byte> storage, int row, Span<byte> code) => PQ4FastScan.GetCode(storage, M, row, code);

    public override int ScratchBytes => PQ4FastScan.PaddedM(M);

    public override void Move(Span<byte> storage, int from, int to, Span<byte> scratch)
    {
        PQ4FastScan.GetCode(storage, M, from, scratch);
        PQ4FastScan.SetCode(storage, M, to, scratch);
    }

    public override void Clear(Span<byte> storage, int row) => PQ4FastScan.ClearCode(storage, M, row);
}

/// <summary>
/// 4-bit product quantisation whose codes an index stores in fast-scan blocks (faiss <c>PQ{m}x4fs</c>): the codec
/// is a 4-bit <see cref="ProductQuantizer"/> (one sub-code per byte of <see cref="CodeSize"/>); the block layout and
/// the quantised-table SIMD scan are what make it fast-scan.
/// </summary>
public sealed class PQ4FastScanCodec : IResidualCodec
{
    /// <summary>Creates the codec for d-dimensional vectors and M sub-quantizers (M must divide d).</summary>
    public PQ4FastScanCodec(int dimension, int subQuantizers)
    {
        Quantizer = new ProductQuantizer(dimension, subQuantizers, 4);
        Layout = new FastScanBlockLayout(subQuantizers);
    }

    /// <summary>The 4-bit product quantizer.</summary>
    public ProductQuantizer Quantizer { get; }

    /// <summary>The packed block layout of the codes.</summary>
    internal FastScanBlockLayout Layout { get; }

    /// <inheritdoc />
    public int Dimension => Quantizer.Dimension;

    /// <inheritdoc />
    public int CodeSize => Quantizer.M;

    /// <inheritdoc />
    public bool IsTrained => Quantizer.IsTrained;

    /// <inheritdoc />
    public void Train(ReadOnlySpan<float> vectors, int seed, int threads) => Quantizer.Train(vectors, seed, threads);

    /// <inheritdoc />
    public void Encode(ReadOnlySpan<float> vectors, Span<byte> codes) => Quantizer.Encode(vectors, codes);

    /// <inheritdoc />
    /// <remarks>The quantizer's <see cref="ProductQuantizer.EncodeResiduals"/> (score-aware when it has an anisotropic threshold).</remarks>
    public void EncodeResiduals(ReadOnlySpan<float> residuals, ReadOnlySpan<float> centers, Span<byte> codes) =>
        Quantizer.EncodeResiduals(residuals, centers, codes);

    /// <inheritdoc />
    public void Decode(ReadOnlySpan<byte> codes, Span<float> vectors) => Quantizer.Decode(codes, vectors);

    /// <inheritdoc />
    public IDistanceEstimator CreateEstimator(Metric metric) => Quantizer.CreateEstimator(metric);
}
