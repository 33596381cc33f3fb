using System.Globalization;
using Engine.MultiVector;
using Engine.Storage;
using Engine.Storage.Format;

namespace Engine.Index.MultiVector;

public sealed partial class MultiVectorIndex
{
    internal const string FileKind = "muvera";

    /// <summary>File holding the tokens, ids and FDE parameters inside a saved index directory.</summary>
    public const string TokensFileName = "muvera.idx";

    /// <summary>File (or SPANN directory) holding the FDE index inside a saved index directory.</summary>
    public const string FdeFileName = "fde.idx";

    /// <summary>
    /// Saves the index into <paramref name="directory"/> (created when missing): the FDE index as
    /// <see cref="FdeFileName"/>, then tokens, ids and the encoder's options and random parameters as
    /// <see cref="TokensFileName"/>. Each file is written atomically; the item count in both is checked on load.
    /// </summary>
    public void Save(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var storage = new FileIndexStorage(directory);
        storage.EnsureCreated();
        _lock.EnterRead();
        try
        {
            _fdeIndex.Save(storage.PathOf(FdeFileName));
            var o = Encoder.Options;
            using var w = storage.CreateIndexFile(TokensFileName,
                new IndexFileHeader(FileKind, Description, Metric.InnerProduct, Dimension, _count, IndexFile.FormatVersion));
            w.WriteArray<int>("OPTS", [o.SimHashBits, o.ProjectionDimension, o.Repetitions, o.FinalDimension, o.FillEmptyBuckets ? 1 : 0, o.Seed, (int)TokenStorage]);
            var (h, p, fi, fs) = Encoder.Parameters;
            w.WriteArray<float>("SIMH", h);
            w.WriteArray<float>("PROJ", p);
            w.WriteArray<int>("FSKI", fi);
            w.WriteArray<float>("FSKS", fs);
            w.WriteArray<long>("IDS ", _ids.AsSpan(0, _count));
            w.WriteArray<int>("OFFS", _offsets.AsSpan(0, _count + 1));
            int values = _offsets[_count] * Dimension;
            if (TokenStorage == TokenEncoding.F32) w.WriteArray<float>("TOKS", _f32.AsSpan(0, values));
            else w.WriteArray<Half>("TOKS", _f16.AsSpan(0, values));
            w.Commit();
        }
        finally { _lock.ExitRead(); }
    }

    /// <summary>Loads an index saved with <see cref="Save"/>, verifying checksums, shapes, ids and the FDE index's item count.</summary>
    /// <param name="directory">The saved directory.</param>
    /// <param name="mapped">Passed to <see cref="IndexFactory.Load"/> for the FDE index.</param>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="CorruptIndexException">Truncated, corrupted or inconsistent files (names the file and offset).</exception>
    /// <exception cref="IndexFormatException">The file holds another index kind or version.</exception>
    public static MultiVectorIndex Load(string directory, bool mapped = true)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var files = new FileIndexStorage(directory);
        if (!files.Exists(TokensFileName)) throw new FileNotFoundException($"'{directory}' holds no multi-vector index ({TokensFileName} is missing).", files.PathOf(TokensFileName));
        using var r = files.OpenIndexFile(TokensFileName, FileKind);
        var hd = r.Header;
        var opts = r.ReadArray<int>("OPTS", 7);
        MuveraOptions options;
        FixedDimensionalEncoder encoder;
        var storage = (TokenEncoding)opts[6];
        try
        {
            options = new MuveraOptions
            {
                SimHashBits = opts[0], ProjectionDimension = opts[1], Repetitions = opts[2], FinalDimension = opts[3],
                FillEmptyBuckets = opts[4] != 0, Seed = opts[5],
            };
            if (storage is not (TokenEncoding.F32 or TokenEncoding.F16)) throw new ArgumentException($"unknown token encoding {opts[6]}");
            encoder = FixedDimensionalEncoder.FromParameters(hd.Dimension, options,
                r.ReadArray<float>("SIMH"), r.ReadArray<float>("PROJ"), r.ReadArray<int>("FSKI"), r.ReadArray<float>("FSKS"));
        }
        catch (ArgumentException e)
        {
            throw new CorruptIndexException(r.Path, r.Position, $"bad MUVERA parameters: {e.Message}", e);
        }
        if (hd.Count < 0 || hd.Count >= int.MaxValue) throw new CorruptIndexException(r.Path, 0, $"impossible item count {hd.Count}");
        int count = (int)hd.Count;
        var ids = r.ReadArray<long>("IDS ", count);
        long offsetsAt = r.Position;
        var offsets = r.ReadArray<int>("OFFS", count + 1);
        if (offsets[0] != 0) throw new CorruptIndexException(r.Path, offsetsAt, "the first token offset is not 0");
        for (int i = 0; i < count; i++)
            if (offsets[i + 1] <= offsets[i]) throw new CorruptIndexException(r.Path, offsetsAt, $"item {i} has no tokens or a decreasing offset");
        long values = (long)offsets[count] * hd.Dimension;
        if (values > Array.MaxLength) throw new CorruptIndexException(r.Path, offsetsAt, $"impossible token count {offsets[count]}");
        float[] f32 = [];
        Half[] f16 = [];
        long tokensAt = r.Position;
        if (storage == TokenEncoding.F32) f32 = r.ReadArray<float>("TOKS", values);
        else f16 = r.ReadArray<Half>("TOKS", values);
        r.VerifyEnd();
        CheckTokens(r.Path, tokensAt, f32, f16);
        var fde = IndexFactory.Load(Path.Combine(directory, FdeFileName), mapped);
        try
        {
            if (fde.Dimension != encoder.OutputDimension || fde.Metric != Metric.InnerProduct)
                throw new CorruptIndexException(Path.Combine(directory, FdeFileName), 0, $"the FDE index has d={fde.Dimension} / {fde.Metric}, expected d={encoder.OutputDimension} / InnerProduct");
            if (fde.Count != count)
                throw new CorruptIndexException(Path.Combine(directory, FdeFileName), 0, $"the FDE index holds {fde.Count.ToString(CultureInfo.InvariantCulture)} items, the token file {count}");
            var index = new MultiVectorIndex(encoder, storage, fde) { _f32 = f32, _f16 = f16, _offsets = offsets, _ids = ids, _count = count };
            for (int i = 0; i < count; i++)
                if (ids[i] < 0 || !index._rowOf.TryAdd(ids[i], i))
                    throw new CorruptIndexException(r.Path, r.PayloadOffset("IDS ") + (long)i * sizeof(long), $"id {ids[i]} at row {i} is negative or duplicated");
            return index;
        }
        catch
        {
            fde.Dispose();
            throw;
        }
    }

    private static void CheckTokens(string path, long offset, float[] f32, Half[] f16)
    {
        for (int i = 0; i < f32.Length; i++)
            if (!float.IsFinite(f32[i])) throw new CorruptIndexException(path, offset, $"token value {i} is not finite");
        for (int i = 0; i < f16.Length; i++)
            if (!Half.IsFinite(f16[i])) throw new CorruptIndexException(path, offset, $"token value {i} is not finite");
    }
}
