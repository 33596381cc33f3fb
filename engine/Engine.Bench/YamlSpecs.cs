using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Engine.Bench;

/// <summary>
/// Turns a YAML specs file into the JSON document <see cref="BenchRun.ReadSpecsFile"/> reads, so both formats share one
/// reader and one set of error messages. Plain scalars that read as numbers become JSON numbers, <c>true</c> /
/// <c>false</c> booleans, <c>null</c> / <c>~</c> / empty null; quoted scalars stay strings.
/// </summary>
internal static class YamlSpecs
{
    /// <summary>The file's single YAML document as UTF-8 JSON.</summary>
    /// <exception cref="FormatException">Not YAML (a duplicate key included), or not exactly one document; the message names the file, line and column.</exception>
    public static byte[] ToJson(string path)
    {
        var stream = new YamlStream();
        try
        {
            using var reader = new StreamReader(path);
            stream.Load(reader);
        }
        catch (YamlException ex)
        {
            throw new FormatException($"Specs file '{path}' is not valid YAML (line {ex.Start.Line}, column {ex.Start.Column}): {Inner(ex)}", ex);
        }
        if (stream.Documents.Count != 1)
            throw new FormatException($"Specs file '{path}' must hold exactly one YAML document, found {stream.Documents.Count}.");
        JsonNode? node = Convert(stream.Documents[0].RootNode, path);
        return System.Text.Encoding.UTF8.GetBytes(node?.ToJsonString() ?? "null");
    }

    private static string Inner(Exception ex) => ex.InnerException is null ? ex.Message : ex.Message + " " + ex.InnerException.Message;

    private static JsonNode? Convert(YamlNode node, string path)
    {
        switch (node)
        {
            case YamlMappingNode map:
                var obj = new JsonObject();
                foreach (var (key, value) in map.Children)
                {
                    if (key is not YamlScalarNode { Value: { } name })
                        throw new FormatException($"Specs file '{path}' (line {key.Start.Line}, column {key.Start.Column}): mapping keys must be plain names.");
                    obj[name] = Convert(value, path);
                }
                return obj;
            case YamlSequenceNode seq:
                var arr = new JsonArray();
                foreach (var item in seq.Children) arr.Add(Convert(item, path));
                return arr;
            case YamlScalarNode scalar:
                return Scalar(scalar);
            default:
                throw new FormatException($"Specs file '{path}' (line {node.Start.Line}, column {node.Start.Column}): unsupported YAML node ({node.NodeType}).");
        }
    }

    private static JsonNode? Scalar(YamlScalarNode scalar)
    {
        string value = scalar.Value ?? "";
        if (scalar.Style != ScalarStyle.Plain) return JsonValue.Create(value);
        if (value is "" or "~" or "null" or "Null" or "NULL") return null;
        if (value is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (value is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)) return JsonValue.Create(l);
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d)) return JsonValue.Create(d);
        return JsonValue.Create(value);
    }
}
