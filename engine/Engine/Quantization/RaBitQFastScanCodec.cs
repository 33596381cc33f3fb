namespace Engine.Quantization;

/// <summary>
/// RaBitQ codes stored in the 32-row fast-scan blocks of <see cref="PQ4FastScan"/> (faiss <c>RaBitQfs</c>): with 1 bit
/// per dimension every 4 dimensions form one 4-bit sub-code (M = ⌈d/4⌉), with 4 bits every dimension is one (M = d).
/// A query's 16-entry table per sub-code (the sum of the rotated query over the sub-code's set bits, or the query
/// coordinate times the value) is quantised to bytes once per query, and the block kernel sums 32 codes at a time with
/// byte shuffles; the per-vector factors follow each block. The codec itself is a <see cref="RaBitQCodec"/>: codes
/// enter and leave the layout in its row format.
/// </summary>
public sealed class RaBitQFastScanCodec : IResidualCodec
{
    /// <summary>Creates the codec for d-dimensional vectors at 1 or 4 bits per dimension.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Bits other than 1 or 4, or a bad dimension or metric.</exception>
    public RaBitQFastScanCodec(int dimension, int bits, Metric metric)
    {
        if (bits != 1 && bits != 4) throw new ArgumentOutOfRangeException(nameof(bits), bits, "RaBitQ fast-scan stores 1 or 4 bits per dimension.");
        Codec = new RaBitQCodec(dimension, bits, metric);
        Layout = new RaBitQFastScanLayout(Codec);
    }

    /// <summary>The RaBitQ codec whose codes are stored.</summary>
    public RaBitQCodec Codec { get; }

    /// <summary>The block layout.</summary>
    internal RaBitQFastScanLayout Layout { get; }

    /// <inheritdoc />
    public int Dimension => Codec.Dimension;

    /// <inheritdoc />
    public int CodeSize => Codec.CodeSize;

    /// <inheritdoc />
    public bool IsTrained => Codec.IsTrained;

    /// <inheritdoc />
    public void Train(ReadOnlySpan<float> vectors, int seed, int threads) => Codec.Train(vectors, seed, threads);

    /// <inheritdoc />
    public void Encode(ReadOnlySpan<float> vectors, Span<byte> codes) => Codec.Encode(vectors, codes);

    /// <inheritdoc />
    public void EncodeResiduals(ReadOnlySpan<float> residuals, ReadOnlySpan<float> centers, Span<byte> codes) => Codec.EncodeResiduals(residuals, centers, codes);

    /// <inheritdoc />
    public void Decode(ReadOnlySpan<byte> codes, Span<float> vectors) => Codec.Decode(codes, vectors);

    /// <inheritdoc />
    public IDistanceEstimator CreateEstimator(Metric metric) => Codec.CreateEstimator(metric);
}

/// <summary>
/// 32-row blocks of RaBitQ codes: the <see cref="PQ4FastScan"/> block of the M 4-bit sub-codes, then 32 × 12 bytes of
/// per-vector factors (row i at offset 12 i). Rows enter and leave in <see cref="RaBitQCodec"/>'s row format.
/// </summary>
internal sealed class RaBitQFastScanLayout : CodeLayout
{
    private readonly RaBitQCodec _codec;

    public RaBitQFastScanLayout(RaBitQCodec codec)
    {
        _codec = codec;
        M = codec.Bits == 1 ? (codec.Dimension + 3) / 4 : codec.Dimension;
        CodeBlockBytes = PQ4FastScan.BlockBytes(M);
        BlockBytes = CodeBlockBytes + PQ4FastScan.BlockSize * RaBitQCodec.FactorBytes;
    }

    /// <summary>4-bit sub-codes per vector.</summary>
    public int M { get; }

    /// <summary>Bytes of the sub-code part of a block.</summary>
    public int CodeBlockBytes { get; }

    /// <summary>Bytes of one 32-row block (sub-codes, then factors).</summary>
    public int BlockBytes { get; }

    public override int CodeSize => _codec.CodeSize;

    public override long Bytes(long rows) => checked((rows + 31) / 32 * BlockBytes);

    public override int ScratchBytes => _codec.CodeSize + PQ4FastScan.PaddedM(M);

    /// <summary>The sub-codes of a row code (<see cref="PQ4FastScan.PaddedM"/> bytes, one per byte).</summary>
    public void SubCodes(ReadOnlySpan<byte> code, Span<byte> sub)
    {
        var planes = code[RaBitQCodec.FactorBytes..];
        int pb = _codec.PlaneBytes, d = _codec.Dimension;
        sub[..PQ4FastScan.PaddedM(M)].Clear();
        if (_codec.Bits == 1)
            for (int m = 0; m < M; m++) sub[m] = (byte)((planes[m >> 1] >> ((m & 1) * 4)) & 0x0F);
        else
            for (int i = 0; i < d; i++)
            {
                int v = 0;
                for (int b = 0; b < 4; b++) v |= ((planes[b * pb + (i >> 3)] >> (i & 7)) & 1) << b;
                sub[i] = (byte)v;
            }
    }

    private void Planes(ReadOnlySpan<byte> sub, Span<byte> code)
    {
        var planes = code[RaBitQCodec.FactorBytes..];
        int pb = _codec.PlaneBytes, d = _codec.Dimension;
        planes[..(_codec.Bits * pb)].Clear();
        if (_codec.Bits == 1)
            for (int m = 0; m < M; m++) planes[m >> 1] |= (byte)((sub[m] & 0x0F) << ((m & 1) * 4));
        else
            for (int i = 0; i < d; i++)
                for (int b = 0; b < 4; b++)
                    if (((sub[i] >> b) & 1) != 0) planes[b * pb + (i >> 3)] |= (byte)(1 << (i & 7));
    }

    private (int Block, int Slot) Where(int row) => (row / PQ4FastScan.BlockSize * BlockBytes, row % PQ4FastScan.BlockSize);

    public override void Write(Span<byte> storage, int row, ReadOnlySpan<byte> code)
    {
        var (block, slot) = Where(row);
        Span<byte> sub = stackalloc byte[PQ4FastScan.PaddedM(M)];
        SubCodes(code, sub);
        PQ4FastScan.SetCode(storage.Slice(block, CodeBlockBytes), M, slot, sub);
        code[..RaBitQCodec.FactorBytes].CopyTo(storage.Slice(block + CodeBlockBytes + slot * RaBitQCodec.FactorBytes, RaBitQCodec.FactorBytes));
    }

    public override void Read(ReadOnlySpan<byte> storage, int row, Span<byte> code)
    {
        var (block, slot) = Where(row);
        Span<byte> sub = stackalloc byte[PQ4FastScan.PaddedM(M)];
        PQ4FastScan.GetCode(storage.Slice(block, CodeBlockBytes), M, slot, sub);
        Planes(sub, code);
        storage.Slice(block + CodeBlockBytes + slot * RaBitQCodec.FactorBytes, RaBitQCodec.FactorBytes).CopyTo(code);
    }

    public override void Move(Span<byte> storage, int from, int to, Span<byte> scratch)
    {
        var code = scratch[.._codec.CodeSize];
        Read(storage, from, code);
        Write(storage, to, code);
    }

    public override void Clear(Span<byte> storage, int row)
    {
        var (block, slot) = Where(row);
        PQ4FastScan.ClearCode(storage.Slice(block, CodeBlockBytes), M, slot);
        storage.Slice(block + CodeBlockBytes + slot * RaBitQCodec.FactorBytes, RaBitQCodec.FactorBytes).Clear();
    }
}
