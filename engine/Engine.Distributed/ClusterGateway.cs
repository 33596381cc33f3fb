using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Index;
using Engine.Mining;
using Microsoft.Extensions.Logging;
using Orleans;

namespace Engine.Distributed;

/// <summary>
/// An HTTP front end of a cluster for clients that cannot host an Orleans client (the Python package: its engine is a
/// NativeAOT library, and Orleans needs the JIT). A stateless process that is itself an Orleans client; it searches,
/// reads and mines plain-vector collections through their routers. Mining runs here, with the engine's own
/// <see cref="HardNegativeMiner"/> over a <see cref="DistributedIndex"/>, so its options, guards and report are exactly
/// those of <c>engine_mine</c>.
/// </summary>
/// <remarks>
/// <para>Endpoints (docs/scale-out.md, "Gateway"): <c>GET /v1/collections/{name}</c> (JSON: dimension, metric, spec,
/// shards, replicas, count, description); <c>PUT /v1/collections/{name}</c> (JSON body: dimension, metric, spec,
/// shards, replicas, training_size; creates the collection or opens it when it exists with that layout);
/// <c>POST /v1/collections/{name}/search</c>, <c>/get</c>, <c>/mine</c>, <c>/upsert</c> and <c>/delete</c>, whose
/// bodies are envelopes: <c>"MDX1" | u32 header length | header JSON | arrays</c>, the header listing the arrays in
/// order (<c>{"arrays": [{"name", "dtype": "f4"|"i8", "shape"}], ...}</c>), little-endian, row-major.</para>
/// <para>Errors answer 400 (bad input), 404 (no such collection) or 500 with <c>{"error", "kind"}</c>, kind one of
/// <c>invalid_argument</c>, <c>argument_type</c>, <c>not_found</c>, <c>state</c>, <c>internal</c> (the exception kinds
/// of the C ABI and the Python package).</para>
/// </remarks>
public sealed class ClusterGateway : IDisposable
{
    private const int MaxBodyBytes = 1 << 30;
    private static readonly byte[] Magic = "MDX1"u8.ToArray();
    private readonly IGrainFactory _grains;
    private readonly HttpListener _listener = new();
    private readonly ILogger? _logger;
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    /// <summary>A gateway for the cluster behind <paramref name="grains"/>, listening on <paramref name="prefix"/>
    /// (and on <c>localhost</c> too when the prefix names 127.0.0.1, so either host name reaches it).</summary>
    /// <param name="grains">The cluster client's grain factory.</param>
    /// <param name="prefix">An <see cref="HttpListener"/> prefix, e.g. <c>http://127.0.0.1:8080/</c>, or
    /// <c>http://+:8080/</c> for every interface (no authentication or TLS: keep it on a trusted network).</param>
    /// <param name="logger">Logs failed requests (null: none).</param>
    public ClusterGateway(IGrainFactory grains, string prefix, ILogger? logger = null)
    {
        _grains = grains ?? throw new ArgumentNullException(nameof(grains));
        ArgumentException.ThrowIfNullOrWhiteSpace(prefix);
        if (!prefix.EndsWith('/')) throw new ArgumentException($"The prefix '{prefix}' must end with '/'.", nameof(prefix));
        _listener.Prefixes.Add(prefix);
        if (prefix.Contains("://127.0.0.1:", StringComparison.Ordinal)) _listener.Prefixes.Add(prefix.Replace("://127.0.0.1:", "://localhost:", StringComparison.Ordinal));
        _logger = logger;
        Prefix = prefix;
    }

    /// <summary>Mining requests served at once (more wait): each runs the miner with all of its threads.</summary>
    private readonly SemaphoreSlim _mining = new(Math.Max(1, Environment.ProcessorCount / 2));

    /// <summary>The prefix the gateway listens on.</summary>
    public string Prefix { get; }

    /// <summary>Starts listening and serving requests (each on the thread pool).</summary>
    /// <exception cref="InvalidOperationException">The prefix cannot be listened on (port in use, an address this host
    /// does not have, or no permission); the message says which.</exception>
    public void Start()
    {
        try { _listener.Start(); }
        catch (HttpListenerException e)
        {
            throw new InvalidOperationException($"Cannot listen on {Prefix}: {e.Message} (is the port in use? use 127.0.0.1, localhost or '+' as the address).", e);
        }
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                HttpListenerContext context;
                try { context = await _listener.GetContextAsync(); }
                catch (Exception) when (_stop.IsCancellationRequested || !_listener.IsListening) { return; }
                _ = Task.Run(() => Serve(context));
            }
        });
    }

    /// <summary>Stops listening.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        if (_listener.IsListening) _listener.Stop();
        _listener.Close();
    }

    private async Task Serve(HttpListenerContext context)
    {
        var response = context.Response;
        try
        {
            var (status, contentType, body) = await Handle(context.Request);
            response.StatusCode = status;
            response.ContentType = contentType;
            response.ContentLength64 = body.Length;
            await response.OutputStream.WriteAsync(body);
        }
        catch (Exception e)
        {
            (int status, string kind) = e switch
            {
                KeyNotFoundException => (404, "not_found"),
                ArgumentException or FormatException or JsonException or InvalidDataException or OverflowException => (400, "invalid_argument"),
                InvalidCastException => (400, "argument_type"),
                InvalidOperationException or NotSupportedException => (400, "state"),
                _ => (500, "internal"),
            };
            if (status == 500) _logger?.LogWarning(e, "Gateway request {Url} failed", context.Request.Url);
            var body = Encoding.UTF8.GetBytes(new JsonObject { ["error"] = e.Message, ["kind"] = kind }.ToJsonString());
            try
            {
                response.StatusCode = status;
                response.ContentType = "application/json";
                response.ContentLength64 = body.Length;
                await response.OutputStream.WriteAsync(body);
            }
            catch (Exception) { }   // the client went away
        }
        finally
        {
            try { response.Close(); } catch (Exception) { }
        }
    }

    private async Task<(int Status, string ContentType, byte[] Body)> Handle(HttpListenerRequest request)
    {
        var path = request.Url?.AbsolutePath.Trim('/').Split('/') ?? [];
        if (path.Length < 3 || path[0] != "v1" || path[1] != "collections")
            throw new KeyNotFoundException($"No endpoint {request.HttpMethod} {request.Url?.AbsolutePath}: use /v1/collections/NAME[/search|/get|/mine].");
        string name = Uri.UnescapeDataString(path[2]);
        if (path.Length == 3 && request.HttpMethod == "PUT") return await Create(name, await ReadBody(request));
        if (path.Length == 4 && path[3] == "mine" && request.HttpMethod == "POST")
        {
            // Mining blocks on cluster calls and uses all of its threads: on a thread of its own, a few at a time.
            var mineCollection = await Open(name);
            var mineInput = Envelope.Read(await ReadBody(request));
            await _mining.WaitAsync();
            try
            {
                var mined = await Task.Factory.StartNew(() => Mine(mineCollection, mineInput), CancellationToken.None,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default);
                return (200, "application/octet-stream", mined.ToBytes());
            }
            finally { _mining.Release(); }
        }
        var collection = await Open(name);
        if (path.Length == 3 && request.HttpMethod == "GET")
        {
            var l = collection.Layout;
            var info = new JsonObject
            {
                ["name"] = l.Name, ["dimension"] = l.Dimension, ["metric"] = MetricName(l.Metric), ["spec"] = l.Spec,
                ["shards"] = l.Shards, ["replicas"] = l.Replicas, ["count"] = await collection.CountAsync(),
                ["description"] = $"Distributed({l.Spec},shards={l.Shards},replicas={l.Replicas})",
            };
            return (200, "application/json", Encoding.UTF8.GetBytes(info.ToJsonString()));
        }
        if (path.Length != 4 || request.HttpMethod != "POST")
            throw new KeyNotFoundException($"No endpoint {request.HttpMethod} {request.Url?.AbsolutePath}: use GET /v1/collections/NAME or POST …/search, …/get, …/mine.");
        var input = Envelope.Read(await ReadBody(request));
        var output = path[3] switch
        {
            "search" => await Search(collection, input),
            "get" => await Get(collection, input),
            "upsert" => await Upsert(collection, input),
            "delete" => await Delete(collection, input),
            _ => throw new KeyNotFoundException($"No endpoint POST {request.Url?.AbsolutePath}: use …/search, …/get or …/mine."),
        };
        return (200, "application/octet-stream", output.ToBytes());
    }

    // Opened collections by name (a layout never changes, so a handle stays valid; opening costs a call per replica).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DistributedCollection> _open = new(StringComparer.Ordinal);

    private async Task<DistributedCollection> Open(string name)
    {
        if (_open.TryGetValue(name, out var known)) return known;
        try { return _open.GetOrAdd(name, await DistributedCollection.OpenExistingAsync(_grains, name)); }
        catch (ArgumentException e) when (e.Message.Contains("holds no collection", StringComparison.Ordinal) || e.ParamName == "name")
        {
            throw new KeyNotFoundException(e.Message);
        }
    }

    private Task<(int, string, byte[])> Create(string name, byte[] body)
    {
        JsonObject spec;
        ShardLayout layout;
        try
        {
            spec = JsonNode.Parse(body) as JsonObject ?? throw new ArgumentException("The body must be a JSON object: dimension, metric, spec, shards, replicas, training_size.");
            layout = LayoutFrom(name, spec);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException)
        {
            throw new ArgumentException($"The layout is not valid JSON of the right types (dimension, shards, replicas, training_size: integers; metric, spec: strings): {e.Message}");
        }
        return Create(name, layout);
    }

    private async Task<(int, string, byte[])> Create(string name, ShardLayout layout)
    {
        var collection = await DistributedCollection.OpenAsync(_grains, layout);
        _open.TryAdd(name, collection);
        return (200, "application/json", Encoding.UTF8.GetBytes(new JsonObject { ["name"] = name, ["count"] = await collection.CountAsync() }.ToJsonString()));
    }

    private static ShardLayout LayoutFrom(string name, JsonObject spec)
    {
        foreach (var key in spec.Select(p => p.Key))
            if (key is not ("dimension" or "metric" or "spec" or "shards" or "replicas" or "training_size"))
                throw new ArgumentException($"Unknown field '{key}'; a layout has dimension, metric, spec, shards, replicas, training_size.");
        int Int(string key, int fallback) => spec[key] is null ? fallback
            : spec[key] is JsonValue v && v.TryGetValue(out int x) ? x : throw new ArgumentException($"'{key}' must be an integer.");
        return new ShardLayout
        {
            Name = name,
            Dimension = Int("dimension", 0),
            Metric = (spec["metric"]?.GetValue<string>() ?? "l2") switch
            {
                "l2" => Metric.L2, "ip" => Metric.InnerProduct, "cosine" => Metric.Cosine,
                var m => throw new ArgumentException($"metric must be 'l2', 'ip' or 'cosine', not '{m}'."),
            },
            Spec = spec["spec"]?.GetValue<string>() ?? "Flat",
            Shards = Int("shards", 2),
            Replicas = Int("replicas", 2),
            TrainingSize = Int("training_size", 1000),
        };
    }

    private static async Task<Envelope> Upsert(DistributedCollection collection, Envelope input)
    {
        var vectors = input.Floats("vectors", collection.Layout.Dimension, out int n);
        var ids = input.Longs("ids");
        if (ids.Length != n) throw new ArgumentException($"ids holds {ids.Length} entries for {n} vectors.", "ids");
        await collection.UpsertAsync(vectors, ids);
        return new Envelope(new JsonObject { ["upserted"] = n });
    }

    private static async Task<Envelope> Delete(DistributedCollection collection, Envelope input)
    {
        var ids = input.Longs("ids");
        await collection.DeleteAsync(ids);
        return new Envelope(new JsonObject { ["deleted"] = ids.Length });
    }

    private static string MetricName(Metric m) => m switch { Metric.InnerProduct => "ip", Metric.Cosine => "cosine", _ => "l2" };

    private static async Task<byte[]> ReadBody(HttpListenerRequest request)
    {
        if (request.ContentLength64 > MaxBodyBytes) throw new ArgumentException($"A request body of {request.ContentLength64} bytes exceeds the gateway's limit of {MaxBodyBytes}; send smaller batches.");
        using var ms = new MemoryStream();
        var chunk = new byte[1 << 16];
        int read;
        while ((read = await request.InputStream.ReadAsync(chunk)) > 0)
        {
            if (ms.Length + read > MaxBodyBytes) throw new ArgumentException($"A request body over {MaxBodyBytes} bytes exceeds the gateway's limit; send smaller batches.");
            ms.Write(chunk, 0, read);
        }
        return ms.ToArray();
    }

    private static async Task<Envelope> Search(DistributedCollection collection, Envelope input)
    {
        int d = collection.Layout.Dimension;
        var queries = input.Floats("queries", d, out int nq);
        int k = input.Int("k");
        var response = await collection.SearchAsync(queries, k, input.Settings());
        return new Envelope(new JsonObject())
            .Add("distances", response.Distances, [nq, k])
            .Add("labels", response.Labels, [nq, k]);
    }

    private static async Task<Envelope> Get(DistributedCollection collection, Envelope input)
    {
        var ids = input.Longs("ids");
        var rows = await collection.GetAsync(ids);
        return new Envelope(new JsonObject())
            .Add("ids", rows.Ids, [rows.Ids.Length])
            .Add("vectors", rows.Vectors, [rows.Ids.Length, collection.Layout.Dimension]);
    }

    // The engine_mine call, against the cluster: the same option JSON, CSR positives and exclusions, padded rows.
    private static Envelope Mine(DistributedCollection collection, Envelope input)
    {
        int d = collection.Layout.Dimension;
        var options = input.Header["options"] as JsonObject ?? new JsonObject();
        // The candidate search's knobs go to the index over the cluster (its shards' parameters), not to the miner.
        IReadOnlyDictionary<string, string>? settings = null;
        if (options["search"] is { } search)
        {
            if (search is not JsonValue sv || !sv.TryGetValue(out string? text))
                throw new ArgumentException($"Option 'search' must be a string like \"probes=16,refine=4\", got {search.ToJsonString()}.", "search");
            settings = SearchSettings.Parse(text, "search");
            options = (JsonObject)options.DeepClone();
            options.Remove("search");
        }
        using var index = new DistributedIndex(collection, settings);
        var occurrence = input.Has("occurrence_ids") ? Occurrence(input) : null;
        var mining = MiningOptionsJson.Mining(options.ToJsonString(), occurrence, index);
        int width = input.Int("width");
        if (width != mining.NumNegatives) throw new ArgumentException($"width ({width}) must equal num_negatives ({mining.NumNegatives}).", "width");
        bool byVectors = input.Has("anchors");
        if (byVectors == input.Has("anchor_ids")) throw new ArgumentException("Give exactly one of anchors (vectors) and anchor_ids (corpus ids).", "anchors");
        int n;
        float[]? anchors = null;
        long[]? anchorIds = null;
        if (byVectors) anchors = input.Floats("anchors", d, out n);
        else n = (anchorIds = input.Longs("anchor_ids")).Length;
        var positives = input.Csr("positive_offsets", "positives", n) ?? throw new ArgumentException("positives are required (positive_offsets, positives).", "positives");
        var exclusions = input.Csr("exclusion_offsets", "exclusions", n);
        var mineInput = byVectors ? MiningInput.FromVectors(anchors!, d, positives, exclusions) : MiningInput.FromCorpusIds(anchorIds!, positives, exclusions);
        var negatives = new long[(long)n * width];
        var scores = new float[(long)n * width];
        var report = new MiningReport(mining.Seed);
        new HardNegativeMiner(index, mining).MineToRows(mineInput, report, width, negatives, scores);
        return new Envelope(new JsonObject { ["report"] = JsonNode.Parse(report.ToJson(indented: false)) })
            .Add("negatives", negatives, [n, width])
            .Add("scores", scores, [n, width]);
    }

    private static Dictionary<long, int> Occurrence(Envelope input)
    {
        var ids = input.Longs("occurrence_ids");
        var counts = input.Longs("occurrence");
        if (counts.Length != ids.Length) throw new ArgumentException($"occurrence holds {counts.Length} counts for {ids.Length} ids.", "occurrence");
        var table = new Dictionary<long, int>(ids.Length);
        for (int i = 0; i < ids.Length; i++)
        {
            if (counts[i] is < 0 or > int.MaxValue) throw new ArgumentException($"occurrence[{i}] = {counts[i]} is outside 0..{int.MaxValue}.", "occurrence");
            if (!table.TryAdd(ids[i], (int)counts[i])) throw new ArgumentException($"occurrence_ids[{i}] = {ids[i]} repeats.", "occurrence_ids");
        }
        return table;
    }

    /// <summary>The envelope of request and response bodies: a JSON header and typed little-endian arrays.</summary>
    private sealed class Envelope(JsonObject header)
    {
        private readonly List<(string Name, string Dtype, long[] Shape, byte[] Bytes)> _arrays = [];

        public JsonObject Header { get; } = header;

        public static Envelope Read(byte[] body)
        {
            if (body.Length < 8 || !body.AsSpan(0, 4).SequenceEqual(Magic))
                throw new InvalidDataException("The body is not an MDX1 envelope ('MDX1', u32 header length, header JSON, arrays).");
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(4));
            if (len > body.Length - 8) throw new InvalidDataException($"The envelope's header length {len} runs past its {body.Length} bytes.");
            try { return Parse(body, len); }
            catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException or OverflowException or NullReferenceException or KeyNotFoundException)
            {
                throw new InvalidDataException($"The envelope's header is malformed: {e.Message}");
            }
        }

        private static Envelope Parse(byte[] body, uint len)
        {
            var header = JsonNode.Parse(body.AsSpan(8, (int)len)) as JsonObject ?? throw new InvalidDataException("The envelope's header is not a JSON object.");
            var env = new Envelope(header);
            long at = 8 + len;
            foreach (var node in header["arrays"] as JsonArray ?? [])
            {
                var a = node as JsonObject ?? throw new InvalidDataException("An array entry is not an object.");
                string name = a["name"]?.GetValue<string>() ?? throw new InvalidDataException("An array has no name.");
                string dtype = a["dtype"]?.GetValue<string>() ?? throw new InvalidDataException($"Array '{name}' has no dtype.");
                if (dtype is not ("f4" or "i8")) throw new InvalidCastException($"Array '{name}' has dtype '{dtype}'; the gateway takes f4 (float32) and i8 (int64).");
                var shape = (a["shape"] as JsonArray ?? throw new InvalidDataException($"Array '{name}' has no shape."))
                    .Select(x => x is JsonValue v && v.TryGetValue(out long e) ? e : throw new InvalidDataException($"Array '{name}' has a shape entry that is not an integer.")).ToArray();
                long count = shape.Aggregate(1L, (p, x) => x < 0 ? throw new InvalidDataException($"Array '{name}' has a negative extent.") : checked(p * x));
                long bytes = checked(count * (dtype == "f4" ? 4 : 8));
                if (at + bytes > body.Length) throw new InvalidDataException($"Array '{name}' ({bytes} bytes) runs past the body.");
                env._arrays.Add((name, dtype, shape, body.AsSpan((int)at, (int)bytes).ToArray()));
                at += bytes;
            }
            if (at != body.Length) throw new InvalidDataException($"The body has {body.Length - at} bytes after its arrays.");
            return env;
        }

        public bool Has(string name) => _arrays.Any(a => a.Name == name);

        private (string Name, string Dtype, long[] Shape, byte[] Bytes) Array(string name, string dtype) =>
            _arrays.FirstOrDefault(a => a.Name == name) is { Name: not null } a
                ? a.Dtype == dtype ? a : throw new InvalidCastException($"Array '{name}' must have dtype {dtype}, got {a.Dtype}.")
                : throw new ArgumentException($"The request has no array '{name}'.", name);

        public float[] Floats(string name, int d, out int rows)
        {
            var a = Array(name, "f4");
            if (a.Shape.Length != 2 || a.Shape[1] != d) throw new ArgumentException($"'{name}' must be (n, {d}), got ({string.Join(", ", a.Shape)}).", name);
            rows = checked((int)a.Shape[0]);
            var v = MemoryMarshal.Cast<byte, float>(a.Bytes).ToArray();
            Guard.Finite(v, d, name);
            return v;
        }

        public long[] Longs(string name)
        {
            var a = Array(name, "i8");
            if (a.Shape.Length != 1) throw new ArgumentException($"'{name}' must be one-dimensional, got ({string.Join(", ", a.Shape)}).", name);
            return MemoryMarshal.Cast<byte, long>(a.Bytes).ToArray();
        }

        public IReadOnlyList<long[]>? Csr(string offsetsName, string valuesName, int n)
        {
            if (!Has(offsetsName)) return null;
            var offsets = Longs(offsetsName);
            var values = Longs(valuesName);
            if (offsets.Length != n + 1 || offsets[0] != 0 || offsets[^1] != values.Length)
                throw new ArgumentException($"{offsetsName} must hold n + 1 = {n + 1} offsets from 0 to {values.Length}.", offsetsName);
            var lists = new long[n][];
            for (int i = 0; i < n; i++)
            {
                if (offsets[i + 1] < offsets[i] || offsets[i + 1] > values.Length)
                    throw new ArgumentException($"{offsetsName} must rise from 0 to {values.Length}; it goes from {offsets[i]} to {offsets[i + 1]} at {i}.", offsetsName);
                lists[i] = values[(int)offsets[i]..(int)offsets[i + 1]];
            }
            return lists;
        }

        public int Int(string name) =>
            Header[name] is JsonValue v && v.TryGetValue(out int x) ? x : throw new ArgumentException($"The header needs an integer '{name}'.", name);

        public Dictionary<string, string>? Settings() =>
            Header["settings"] is JsonObject s ? s.ToDictionary(p => p.Key, p => p.Value?.ToString() ?? "", StringComparer.OrdinalIgnoreCase) : null;

        public Envelope Add<T>(string name, T[] values, long[] shape) where T : unmanaged
        {
            _arrays.Add((name, typeof(T) == typeof(float) ? "f4" : "i8", shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
            return this;
        }

        public byte[] ToBytes()
        {
            var header = (JsonObject)Header.DeepClone();
            header["arrays"] = new JsonArray(_arrays.Select(a => (JsonNode)new JsonObject
            {
                ["name"] = a.Name, ["dtype"] = a.Dtype, ["shape"] = new JsonArray(a.Shape.Select(x => (JsonNode)x).ToArray()),
            }).ToArray());
            var h = Encoding.UTF8.GetBytes(header.ToJsonString());
            using var ms = new MemoryStream();
            ms.Write(Magic);
            Span<byte> len = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)h.Length);
            ms.Write(len);
            ms.Write(h);
            foreach (var a in _arrays) ms.Write(a.Bytes);
            return ms.ToArray();
        }
    }
}
