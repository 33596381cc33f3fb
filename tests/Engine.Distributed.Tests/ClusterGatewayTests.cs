using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Engine.Distributed;
using Engine.Index.Flat;
using Engine.Mining;

namespace Engine.Distributed.Tests;

/// <summary>
/// The HTTP gateway (what the Python package's ClusterIndex talks to): create, upsert, search, get and mining through
/// HTTP give the answers of a local index and miner; bad requests get 400/404 with the error kind.
/// </summary>
public class ClusterGatewayTests
{
    private const int D = 12;

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static byte[] Envelope(JsonObject header, params (string Name, Array Values, long[] Shape)[] arrays)
    {
        header["arrays"] = new JsonArray(arrays.Select(a => (JsonNode)new JsonObject
        {
            ["name"] = a.Name, ["dtype"] = a.Values is float[] ? "f4" : "i8", ["shape"] = new JsonArray(a.Shape.Select(x => (JsonNode)x).ToArray()),
        }).ToArray());
        var h = Encoding.UTF8.GetBytes(header.ToJsonString());
        var body = new List<byte>("MDX1"u8.ToArray());
        var len = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)h.Length);
        body.AddRange(len);
        body.AddRange(h);
        foreach (var a in arrays)
            body.AddRange(a.Values is float[] f ? MemoryMarshal.AsBytes(f.AsSpan()).ToArray() : MemoryMarshal.AsBytes(((long[])a.Values).AsSpan()).ToArray());
        return [.. body];
    }

    private static (JsonObject Header, Dictionary<string, byte[]> Arrays) Read(byte[] body)
    {
        Assert.Equal("MDX1"u8.ToArray(), body[..4]);
        int n = (int)BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(4));
        var header = (JsonObject)JsonNode.Parse(body.AsSpan(8, n))!;
        var arrays = new Dictionary<string, byte[]>();
        int at = 8 + n;
        foreach (var a in (JsonArray)header["arrays"]!)
        {
            long count = ((JsonArray)a!["shape"]!).Aggregate(1L, (p, x) => p * x!.GetValue<long>());
            int bytes = (int)count * (a["dtype"]!.GetValue<string>() == "f4" ? 4 : 8);
            arrays[a["name"]!.GetValue<string>()] = body[at..(at + bytes)];
            at += bytes;
        }
        return (header, arrays);
    }

    [Fact]
    public async Task Http_CreateUpsertSearchGetMine_EqualLocal_AndBadRequestsAreNamed()
    {
        await using var c = await DistributedTestCluster.StartAsync(2, nameof(Http_CreateUpsertSearchGetMine_EqualLocal_AndBadRequestsAreNamed));
        string prefix = $"http://127.0.0.1:{FreePort()}/";
        using var gateway = new ClusterGateway(c.Client, prefix);
        gateway.Start();
        using var http = new HttpClient { BaseAddress = new Uri(prefix) };
        var vectors = TestData.Gaussian(1500, D, 31);
        var ids = TestData.Ids(1500);
        var queries = TestData.Gaussian(20, D, 32);

        var created = await http.PutAsync("v1/collections/g", new StringContent("""{"dimension": 12, "metric": "l2", "spec": "Flat", "shards": 3, "replicas": 2}"""));
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var up = await http.PostAsync("v1/collections/g/upsert", new ByteArrayContent(Envelope(new JsonObject(), ("vectors", vectors, [1500, D]), ("ids", ids, [1500]))));
        Assert.Equal(HttpStatusCode.OK, up.StatusCode);
        var info = JsonNode.Parse(await http.GetStringAsync("v1/collections/g"))!;
        Assert.Equal(1500, info["count"]!.GetValue<long>());
        Assert.Equal("l2", info["metric"]!.GetValue<string>());

        using var single = TestData.Reference(vectors, ids, D, Metric.L2);
        var (want, wantD) = (TestData.Search(single, queries, 10).Labels, TestData.Search(single, queries, 10).Distances);
        var search = Read(await (await http.PostAsync("v1/collections/g/search", new ByteArrayContent(Envelope(new JsonObject { ["k"] = 10 }, ("queries", queries, [20, D]))))).Content.ReadAsByteArrayAsync());
        Assert.Equal(want, MemoryMarshal.Cast<byte, long>(search.Arrays["labels"]).ToArray());
        var gotD = MemoryMarshal.Cast<byte, float>(search.Arrays["distances"]).ToArray();
        for (int i = 0; i < gotD.Length; i++) Assert.Equal(wantD[i], gotD[i], 1e-4f);

        var get = Read(await (await http.PostAsync("v1/collections/g/get", new ByteArrayContent(Envelope(new JsonObject(), ("ids", new long[] { 7, 99999 }, [2]))))).Content.ReadAsByteArrayAsync());
        Assert.Equal([7L], MemoryMarshal.Cast<byte, long>(get.Arrays["ids"]).ToArray());
        Assert.Equal(vectors[(7 * D)..(8 * D)], MemoryMarshal.Cast<byte, float>(get.Arrays["vectors"]).ToArray());

        // Mining through the gateway = the engine's miner on a local index with the same options.
        var positives = Enumerable.Range(0, 20).Select(i => new long[] { i * 3 }).ToArray();
        long[] offsets = [.. Enumerable.Range(0, 21).Select(i => (long)i)];
        var options = new JsonObject { ["num_negatives"] = 4, ["range_max"] = 30, ["sampling"] = "random", ["seed"] = 5 };
        var mined = Read(await (await http.PostAsync("v1/collections/g/mine", new ByteArrayContent(Envelope(new JsonObject { ["options"] = options, ["width"] = 4 },
            ("anchors", queries, [20, D]), ("positive_offsets", offsets, [21]), ("positives", positives.SelectMany(p => p).ToArray(), [20]))))).Content.ReadAsByteArrayAsync());
        var local = new HardNegativeMiner(single, MiningOptionsJson.Mining(options.ToJsonString())).Mine(MiningInput.FromVectors(queries, D, positives, null), new MiningReport(5)).ToArray();
        var got = MemoryMarshal.Cast<byte, long>(mined.Arrays["negatives"]).ToArray();
        for (int i = 0; i < 20; i++) Assert.Equal(local[i].Negatives, got[(i * 4)..(i * 4 + 4)]);
        Assert.Equal(20, mined.Header["report"]!["anchors"]!.GetValue<long>());

        // Bad requests: the status and the error kind, with the engine's message.
        async Task<(HttpStatusCode, string, string)> Fail(Task<HttpResponseMessage> call)
        {
            var r = await call;
            var e = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
            return (r.StatusCode, e["kind"]!.GetValue<string>(), e["error"]!.GetValue<string>());
        }
        var (s1, k1, _) = await Fail(http.GetAsync("v1/collections/nope"));
        Assert.Equal((HttpStatusCode.NotFound, "not_found"), (s1, k1));
        var (s2, k2, m2) = await Fail(http.PostAsync("v1/collections/g/search", new ByteArrayContent(Envelope(new JsonObject { ["k"] = 10 }, ("queries", new float[D - 1], [1, D - 1])))));
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_argument"), (s2, k2));
        Assert.Contains("queries", m2);
        var nan = new float[D];
        nan[3] = float.NaN;
        var (_, k3, m3) = await Fail(http.PostAsync("v1/collections/g/upsert", new ByteArrayContent(Envelope(new JsonObject(), ("vectors", nan, [1, D]), ("ids", new long[] { 1 }, [1])))));
        Assert.Equal("invalid_argument", k3);
        Assert.Contains("non-finite", m3);
        var (_, k4, m4) = await Fail(http.PostAsync("v1/collections/g/mine", new ByteArrayContent(Envelope(new JsonObject { ["options"] = new JsonObject { ["bogus"] = 1 }, ["width"] = 3 },
            ("anchors", queries, [20, D]), ("positive_offsets", offsets, [21]), ("positives", positives.SelectMany(p => p).ToArray(), [20])))));
        Assert.Equal("invalid_argument", k4);
        Assert.Contains("bogus", m4);
        var (s5, k5, _) = await Fail(http.PostAsync("v1/collections/g/search", new ByteArrayContent("not an envelope"u8.ToArray())));
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_argument"), (s5, k5));
        var (_, k6, _) = await Fail(http.PostAsync("v1/collections/g/search", new ByteArrayContent(Envelope(new JsonObject { ["k"] = 10 }, ("queries", new long[D], [1, D])))));
        Assert.Equal("argument_type", k6);
        var (s7, _, _) = await Fail(http.PostAsync("v1/collections/g/nothing", new ByteArrayContent(Envelope(new JsonObject()))));
        Assert.Equal(HttpStatusCode.NotFound, s7);
        var (_, k8, _) = await Fail(http.PutAsync("v1/collections/g2", new StringContent("""{"dimension": 12, "metric": "hamming"}""")));
        Assert.Equal("invalid_argument", k8);
        // Malformed input of every kind is a 400 that names it, never a 500.
        var (s9, k9, _) = await Fail(http.PutAsync("v1/collections/g3", new StringContent("""{"dimension": 12, "metric": 3}""")));
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_argument"), (s9, k9));
        byte[] Raw(string header)
        {
            var h = Encoding.UTF8.GetBytes(header);
            var b = new byte[8 + h.Length];
            "MDX1"u8.CopyTo(b);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), (uint)h.Length);
            h.CopyTo(b, 8);
            return b;
        }
        foreach (var header in new[] { """{"k":10,"arrays":[{"name":"queries","dtype":"f4","shape":[4611686018427387904,4]}]}""",
                     """{"k":10,"arrays":[{"name":"queries","dtype":"f4","shape":[null,4]}]}""", """{"k":10,"arrays":[{"name":7,"dtype":"f4","shape":[1]}]}""" })
        {
            var (sh, kh, _) = await Fail(http.PostAsync("v1/collections/g/search", new ByteArrayContent(Raw(header))));
            Assert.Equal((HttpStatusCode.BadRequest, "invalid_argument"), (sh, kh));
        }
        var (_, k10, m10) = await Fail(http.PostAsync("v1/collections/g/mine", new ByteArrayContent(Envelope(new JsonObject { ["options"] = options.DeepClone(), ["width"] = 1 << 30 },
            ("anchors", queries, [20, D]), ("positive_offsets", offsets, [21]), ("positives", positives.SelectMany(p => p).ToArray(), [20])))));
        Assert.Equal("invalid_argument", k10);
        Assert.Contains("width", m10);
        long[] badOffsets = [.. offsets];
        badOffsets[5] = 99;
        var (_, k11, m11) = await Fail(http.PostAsync("v1/collections/g/mine", new ByteArrayContent(Envelope(new JsonObject { ["options"] = options.DeepClone(), ["width"] = 4 },
            ("anchors", queries, [20, D]), ("positive_offsets", badOffsets, [21]), ("positives", positives.SelectMany(p => p).ToArray(), [20])))));
        Assert.Equal("invalid_argument", k11);
        Assert.Contains("positive_offsets", m11);
        // localhost reaches a gateway on 127.0.0.1.
        using var byName = new HttpClient { BaseAddress = new Uri(prefix.Replace("127.0.0.1", "localhost")) };
        Assert.Equal(1500, JsonNode.Parse(await byName.GetStringAsync("v1/collections/g"))!["count"]!.GetValue<long>());
    }
}
