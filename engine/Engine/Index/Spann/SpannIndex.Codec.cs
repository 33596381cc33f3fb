using Engine.Storage;
using Engine.Storage.Format;
using Engine.Storage.Postings;

namespace Engine.Index.Spann;

public sealed partial class SpannIndex
{
    /// <summary>
    /// Metadata sections of coded postings, after <c>PCRC</c> (absent for raw postings with the default rerank, so those
    /// files are byte for byte what earlier builds wrote): <c>CODC</c> i64[5] = rerank, refine file generation, refine
    /// file committed length, RaBitQ rotation seed, RaBitQ rotation rounds; <c>CODN</c> = the codec's canonical spelling
    /// (<c>none</c> for raw postings); <c>CODP</c> f32[] = the trained parameters (SQ8: per-dimension min then step; PQ:
    /// the codebooks; BIN: the means then the stage scales; RaBitQ: none; <c>OPQ{m},…</c>: the rotation R, d × d
    /// row-major, then the inner codec's).
    /// </summary>
    private void WriteCodecSections(IndexFileWriter w, int refineGeneration, long refineLength)
    {
        if (_codec is null && Options.Rerank == SpannOptions.DefaultRerank) return;
        var (seed, rounds) = _codec is null ? (0L, 0L) : SpannCodecSpec.Rotation(_codec);
        w.WriteArray<long>("CODC", [Options.Rerank, refineGeneration, refineLength, seed, rounds]);
        w.WriteString("CODN", Options.CodecSpec()?.ToString() ?? "none");
        w.WriteArray<float>("CODP", _codec is null || !_codec.IsTrained ? [] : SpannCodecSpec.Parameters(_codec));
    }

    private static (long[] Info, string? Codec, float[] Parameters)? ReadCodecSections(IndexFileReader r)
    {
        if (r.PeekTag() != "CODC") return null;
        var info = r.ReadArray<long>("CODC", 5);
        string name = r.ReadString("CODN");
        var parameters = r.ReadArray<float>("CODP");
        return (info, name == "none" ? null : name, parameters);
    }

    /// <summary>Opens the refine file at the committed length the metadata records (cutting any later records).</summary>
    private static VectorRecordStore OpenRefine(string meta, IIndexStorage storage, int dimension, long[] info)
    {
        if (info[1] is < 0 or > int.MaxValue || info[2] < 0)
            throw new CorruptIndexException(meta, 0, $"refine file generation {info[1]} or committed length {info[2]} is impossible");
        string name = RefineFile((int)info[1]);
        if (!storage.Exists(name)) throw new CorruptIndexException(meta, 0, $"refine file '{storage.PathOf(name)}' of the coded postings is missing");
        return new VectorRecordStore(storage.OpenDevice(name), dimension, info[2]);
    }

    /// <summary>Installs the codec parameters read from the metadata (an untrained index has none).</summary>
    private void InstallCodec(string meta, long[] info, float[] parameters)
    {
        _refineGeneration = (int)info[1];
        if (!IsTrained && parameters.Length == 0 && info[4] == 0) return;
        if (SpannCodecSpec.Install(_codec!, parameters, info[3], info[4]) is { } problem)
            throw new CorruptIndexException(meta, 0, $"the stored parameters of codec {Options.CodecSpec()} are damaged: {problem}");
        _codecBytes = SpannCodecSpec.MemoryBytes(_codec!);
    }
}
