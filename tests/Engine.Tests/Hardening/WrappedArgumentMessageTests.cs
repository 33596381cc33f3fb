using Engine.Collections;
using Engine.Index.Spann;
using Engine.MultiVector;
using Engine.Tests.Collections;
using Engine.Tests.Support;
using Engine.Tests.VectorData;
using Engine.VectorData;

namespace Engine.Tests.Hardening;

/// <summary>
/// An <see cref="ArgumentException"/> wrapped into another (to name the record, item or spec) names one parameter: the
/// inner message's " (Parameter 'x')" is left out, not followed by the outer one's (it used to read
/// "(Parameter 'tokens') (Parameter 'tokens')" and "(Parameter 'Embedding') (Parameter 'record')").
/// </summary>
public class WrappedArgumentMessageTests
{
    private static int Suffixes(string message) => message.Split("(Parameter '").Length - 1;

    private static void NamesOneParameter(ArgumentException e, string name)
    {
        Assert.True(Suffixes(e.Message) == 1, e.Message);
        Assert.EndsWith($"(Parameter '{name}')", e.Message);
        Assert.Equal(name, e.ParamName);
    }

    [Fact]
    public void MessageWithoutParameter_StripsOnlyTheSuffix()
    {
        Assert.Equal("bad value.", Guard.MessageWithoutParameter(new ArgumentException("bad value.", "x")));
        Assert.Equal("bad value.", Guard.MessageWithoutParameter(new ArgumentException("bad value.")));
        Assert.Equal("no parameter here", Guard.MessageWithoutParameter(new InvalidOperationException("no parameter here")));
        // ArgumentOutOfRangeException writes its actual value after the suffix: that stays.
        var range = Guard.MessageWithoutParameter(new ArgumentOutOfRangeException("n", 5, "too big."));
        Assert.StartsWith("too big.", range);
        Assert.Contains("5", range);
        Assert.DoesNotContain("(Parameter", range);
        Assert.Throws<ArgumentNullException>(() => Guard.MessageWithoutParameter(null!));
    }

    [Fact]
    public void MultiVectorSet_NonFiniteToken_NamesItsParameterOnce()
    {
        var e = Assert.Throws<ArgumentException>(() => MultiVectorSet.FromItems([[new float[4]], [[1, float.NaN, 0, 0]]]));
        Assert.Contains("Item 1", e.Message);
        NamesOneParameter(e, "tokens");
        e = Assert.Throws<ArgumentException>(() => new MultiVectorSet(2, [1, 2, float.PositiveInfinity, 0], [1, 1]));
        NamesOneParameter(e, "tokens");
    }

    [Fact]
    public async Task RecordCollection_NonFiniteVector_NamesRecordOnce()
    {
        using var dir = new TempDir();
        using var c = RecordCollection<string>.Open(dir.Path, CollectionTestData.Schema());
        var nan = CollectionTestData.Make("k1", 1);
        nan.Vectors["embedding"][2] = float.NaN;
        var e = await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertAsync(nan));
        Assert.Contains("Record 'k1': vector 'embedding'", e.Message);
        NamesOneParameter(e, "record");
        Assert.Equal(0, c.Count);
    }

    [Fact]
    public async Task VectorData_NonFiniteEmbedding_NamesRecordOnce()
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var docs = store.GetCollection<string, VdDoc>("docs");
        await docs.EnsureCollectionExistsAsync();
        var nan = VectorDataTestData.Doc(2);
        nan.Embedding = Enumerable.Repeat(float.NaN, VectorDataTestData.Dim).ToArray();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => docs.UpsertAsync(nan));
        Assert.Contains("Embedding", e.Message);
        Assert.True(Suffixes(e.Message) == 1, e.Message);
    }

    [Fact]
    public void SpecErrors_NameTheirParameterOnce()
    {
        var spann = Assert.ThrowsAny<ArgumentException>(() => SpannSpec.TryParse("SPANN(replicas=0)", out _));
        Assert.Contains("Replicas", spann.Message);
        Assert.True(Suffixes(spann.Message) == 1, spann.Message);
        var schema = Assert.Throws<ArgumentException>(() => new CollectionSchema(typeof(string), [], [new VectorField("v", 8, Metric.L2, "IVF0,Flat")]));
        Assert.Contains("Vector 'v'", schema.Message);
        NamesOneParameter(schema, "vectors");
    }
}
