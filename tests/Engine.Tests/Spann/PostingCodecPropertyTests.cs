using Engine.Index.Spann;
using Engine.Quantization;
using FsCheck.Xunit;

namespace Engine.Tests.Spann;

/// <summary>
/// Coded SPANN posting payloads round-trip in both code layouts (rows and RaBitQ fast-scan blocks): ids, versions,
/// refine offsets and every entry's code come back as written, whatever the count (empty, partial and full 32-entry
/// blocks); a payload one byte short is corruption; and a buffer filled from a decoded view re-encodes byte for byte
/// (what splits and merges rely on to move codes without re-encoding).
/// </summary>
public class PostingCodecPropertyTests
{
    [Property(MaxTest = 200, Replay = "(20261205,7)")]
    public bool CodedPayloads_RoundTrip_InRowsAndFastScanBlocks(int seed)
    {
        var rng = new Random(seed);
        int d = 1 + rng.Next(70), bits = rng.Next(2) == 0 ? 1 : 4, n = rng.Next(0, 100);
        var codec = new RaBitQFastScanCodec(d, bits, Metric.L2);
        CodeLayout layout = rng.Next(2) == 0 ? codec.Layout : CodeLayout.Rows(codec.CodeSize);
        int cs = codec.CodeSize;
        var ids = Enumerable.Range(0, n).Select(_ => rng.NextInt64(0, long.MaxValue)).ToArray();
        var versions = Enumerable.Range(0, n).Select(_ => (byte)rng.Next(256)).ToArray();
        var offsets = Enumerable.Range(0, n).Select(_ => rng.NextInt64(0, 1L << 40)).ToArray();
        // Valid row codes: 3 factors then the bit planes, with the padding bits of the last plane byte clear (the
        // fast-scan layout keeps d dimensions only).
        var codes = new byte[n * cs];
        rng.NextBytes(codes);
        int pb = (d + 7) / 8;
        for (int i = 0; i < n; i++)
            for (int b = 0; b < bits; b++)
                if (d % 8 != 0) codes[i * cs + RaBitQCodec.FactorBytes + b * pb + pb - 1] &= (byte)((1 << (d % 8)) - 1);
        var payload = PostingCodec.EncodeCoded(d, layout, ids, versions, offsets, codes);
        if (payload.Length != PostingCodec.Size(n, d, layout)) return false;
        var view = PostingCodec.Decode(payload, d, layout, "test", 0);
        var code = new byte[cs];
        for (int i = 0; i < n; i++)
        {
            view.ReadCode(i, code);
            if (view.Ids[i] != ids[i] || view.Versions[i] != versions[i] || view.Offsets[i] != offsets[i]
                || !code.AsSpan().SequenceEqual(codes.AsSpan(i * cs, cs))) return false;
        }
        if (view.Count != n) return false;
        var copy = new PostingBuffer(d, layout, withVectors: false, capacity: 1);
        for (int i = 0; i < n; i++) copy.AddFrom(view, i);
        if (!copy.Encode().AsSpan().SequenceEqual(payload)) return false;
        try
        {
            PostingCodec.Decode(payload.AsSpan(0, payload.Length - 1), d, layout, "test", 0);
            return false;
        }
        catch (CorruptIndexException) { return true; }
    }
}
