using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Engine.Collections;

/// <summary>
/// Filters as JSON, for sending them between processes (the distributed collections evaluate a filter on every shard).
/// Constants keep their exact type: <c>{"int64": "42"}</c>, <c>{"datetime": "2026-12-05T01:00:00.0000000Z"}</c>, ...
/// </summary>
/// <remarks>Shapes: <c>{"cmp": "Less", "field": f, "value": v}</c>, <c>{"in": f, "values": [v, ...]}</c>,
/// <c>{"and": [...]}</c>, <c>{"or": [...]}</c>, <c>{"not": filter}</c>; a value is <c>null</c> or a one-member object
/// naming its type (<c>string</c>, <c>bool</c>, <c>int32</c>, <c>int64</c>, <c>single</c>, <c>double</c>, <c>datetime</c>,
/// <c>datetimeoffset</c>).</remarks>
public static class FilterSerializer
{
    /// <summary>The filter as JSON.</summary>
    /// <exception cref="ArgumentException">A constant of a type filters cannot hold (named).</exception>
    public static string ToJson(Filter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return Node(filter).ToJsonString();
    }

    /// <summary>Reads a filter written by <see cref="ToJson"/>.</summary>
    /// <exception cref="ArgumentException">Not such JSON (the message says where).</exception>
    public static Filter FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            return Parse(JsonNode.Parse(json) ?? throw new FormatException("null filter"));
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or OverflowException)
        {
            throw new ArgumentException($"Not a serialized filter: {e.Message}", nameof(json), e);
        }
    }

    private static JsonNode Node(Filter f) => f switch
    {
        CompareFilter c => new JsonObject { ["cmp"] = c.Op.ToString(), ["field"] = c.Field, ["value"] = Value(c.Value) },
        InFilter i => new JsonObject { ["in"] = i.Field, ["values"] = new JsonArray(i.Values.Select(Value).ToArray()) },
        AndFilter a => new JsonObject { ["and"] = new JsonArray(a.Operands.Select(Node).ToArray()) },
        OrFilter o => new JsonObject { ["or"] = new JsonArray(o.Operands.Select(Node).ToArray()) },
        NotFilter n => new JsonObject { ["not"] = Node(n.Operand) },
        _ => throw new ArgumentException($"Filter kind {f.GetType().Name} cannot be serialized.", nameof(f)),
    };

    private static JsonNode? Value(object? v) => v switch
    {
        null => null,
        string s => new JsonObject { ["string"] = s },
        bool b => new JsonObject { ["bool"] = b },
        int i => new JsonObject { ["int32"] = i },
        long l => new JsonObject { ["int64"] = l.ToString(CultureInfo.InvariantCulture) },
        float x => new JsonObject { ["single"] = x.ToString("R", CultureInfo.InvariantCulture) },
        double x => new JsonObject { ["double"] = x.ToString("R", CultureInfo.InvariantCulture) },
        DateTime t => new JsonObject { ["datetime"] = t.ToString("O", CultureInfo.InvariantCulture) },
        DateTimeOffset t => new JsonObject { ["datetimeoffset"] = t.ToString("O", CultureInfo.InvariantCulture) },
        _ => throw new ArgumentException($"A filter constant of type {v.GetType().Name} cannot be serialized (string, bool, int, long, float, double, DateTime, DateTimeOffset).", nameof(v)),
    };

    private static Filter Parse(JsonNode node)
    {
        var o = node as JsonObject ?? throw new FormatException($"a filter must be an object, got {node.ToJsonString()}");
        if (o.Count != (o.ContainsKey("cmp") ? 3 : o.ContainsKey("in") ? 2 : 1))
            throw new FormatException($"unexpected members in {o.ToJsonString()}");
        if (o["cmp"] is { } cmp)
            return new CompareFilter(Field(o["field"]), Op(cmp.GetValue<string>()), ParseValue(o["value"]));
        if (o["in"] is { } field)
            return new InFilter(Field(field), Array(o["values"]).Select(v => ParseValue(v) ?? throw new FormatException("an 'in' value is null")).ToArray());
        if (o["and"] is { } and) return new AndFilter(Array(and).Select(n => Parse(n ?? throw new FormatException("a null operand"))).ToArray());
        if (o["or"] is { } or) return new OrFilter(Array(or).Select(n => Parse(n ?? throw new FormatException("a null operand"))).ToArray());
        if (o["not"] is { } not) return new NotFilter(Parse(not));
        throw new FormatException($"no filter kind in {o.ToJsonString()}");
    }

    private static CompareOp Op(string name) =>
        Enum.GetNames<CompareOp>().Contains(name, StringComparer.Ordinal) ? Enum.Parse<CompareOp>(name)
            : throw new FormatException($"unknown comparison '{name}' ({string.Join(", ", Enum.GetNames<CompareOp>())})");

    private static string Field(JsonNode? n) => n?.GetValue<string>() ?? throw new FormatException("a filter names no field");

    private static JsonArray Array(JsonNode? n) => n as JsonArray ?? throw new FormatException("expected an array");

    private static object? ParseValue(JsonNode? n)
    {
        if (n is null) return null;
        var o = n as JsonObject ?? throw new FormatException($"a filter constant must be null or a typed object, got {n.ToJsonString()}");
        if (o.Count != 1) throw new FormatException($"a filter constant names one type, got {o.ToJsonString()}");
        var (type, v) = o.First();
        if (v is null) throw new FormatException($"constant of type '{type}' is null");
        var inv = CultureInfo.InvariantCulture;
        return type switch
        {
            "string" => v.GetValue<string>(),
            "bool" => v.GetValue<bool>(),
            "int32" => v.GetValue<int>(),
            "int64" => long.Parse(v.GetValue<string>(), NumberStyles.Integer, inv),
            "single" => float.Parse(v.GetValue<string>(), NumberStyles.Float, inv),
            "double" => double.Parse(v.GetValue<string>(), NumberStyles.Float, inv),
            "datetime" => DateTime.Parse(v.GetValue<string>(), inv, DateTimeStyles.RoundtripKind),
            "datetimeoffset" => DateTimeOffset.Parse(v.GetValue<string>(), inv, DateTimeStyles.RoundtripKind),
            _ => throw new FormatException($"unknown constant type '{type}'"),
        };
    }
}
