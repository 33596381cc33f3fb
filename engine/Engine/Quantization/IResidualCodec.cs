namespace Engine.Quantization;

/// <summary>
/// A codec that encodes a residual r = x − c better when it knows the center c it was taken from (RaBitQ stores
/// ⟨rotated c, code⟩ so the per-list query residual q − c never has to be formed at search time). Indexes that encode
/// residuals (IVF) use this instead of <see cref="IVectorCodec.Encode"/>, which encodes with the center at the origin.
/// </summary>
public interface IResidualCodec : IVectorCodec
{
    /// <summary>Encodes n × d residuals, row i taken from the center in row i of <paramref name="centers"/> (n × d).</summary>
    void EncodeResiduals(ReadOnlySpan<float> residuals, ReadOnlySpan<float> centers, Span<byte> codes);
}
