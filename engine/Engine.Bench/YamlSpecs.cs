using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Engine.Bench;

/// <summary>
/// Turns a YAML specs file into the JSON the specs reader validates, so both formats share one schema and one set
/// of messages. Plain scalars follow the YAML 1.2 core schema (numbers, <c>true</c>/<c>false</c>, <c>null</c>/<c>~</c>);
/// quoted scalars stay strings. Syntax errors and duplicate keys (rejected by the parser) name the file, line and column.
/// </summary>
internal static partial class YamlSpecs
{
    /// <summary>Whether <paramref name="path"/> names a YAML file (<c>.yaml</c> or <c>.yml</c>).</summary>
    public static bool IsYaml(string path) =>
        Path.GetExtension(path).Equals(".yaml", StringComparison.OrdinalIgnoreCase)
        || Path.GetExtension(path).Equals(".yml", StringComparison.OrdinalIgnoreCase);

    /// <summary>The YAML file's single document as UTF-8 JSON.</summary>
    /// <exception cref="FormatException">Not YAML, no document or several, a duplicate key, or a tag the schema does not know.</exception>
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
            // YamlDotNet's own message repeats the position in its own form; keep its text after that.
            throw new FormatException($"Specs file '{path}' is not valid YAML at line {ex.Start.Line}, column {ex.Start.Column}: {Inner(ex)}", ex);
        }
        if (stream.Documents.Count != 1)
            throw new FormatException($"Specs file '{path}' must hold exactly one YAML document (found {stream.Documents.Count}).");
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
            Write(w, stream.Documents[0].RootNode, path);
        return buffer.ToArray();
    }

    private static string Inner(YamlException ex)
    {
        var e = (Exception)ex;
        while (e.InnerException is YamlException inner) e = inner;
        return e.Message.Length > 0 && e.Message.StartsWith('(') && e.Message.IndexOf(": ", StringComparison.Ordinal) is int c and > 0
            ? e.Message[(c + 2)..] : e.Message;
    }

    private static void Write(Utf8JsonWriter w, YamlNode node, string path)
    {
        switch (node)
        {
            case YamlMappingNode map:
                w.WriteStartObject();
                foreach (var (key, value) in map.Children)
                {
                    if (key is not YamlScalarNode { Value: { } name })
                        throw new FormatException($"Specs file '{path}', line {key.Start.Line}: keys must be plain names.");
                    w.WritePropertyName(name);
                    Write(w, value, path);
                }
                w.WriteEndObject();
                break;
            case YamlSequenceNode seq:
                w.WriteStartArray();
                foreach (var item in seq.Children) Write(w, item, path);
                w.WriteEndArray();
                break;
            case YamlScalarNode scalar:
                WriteScalar(w, scalar, path);
                break;
            default:
                throw new FormatException($"Specs file '{path}', line {node.Start.Line}: unsupported YAML node {node.NodeType}.");
        }
    }

    private static void WriteScalar(Utf8JsonWriter w, YamlScalarNode s, string path)
    {
        string text = s.Value ?? "";
        string? tag = s.Tag.IsEmpty || s.Tag.IsNonSpecific ? null : s.Tag.Value;
        if (tag is not null && tag != "tag:yaml.org,2002:str")
            throw new FormatException($"Specs file '{path}', line {s.Start.Line}: tag '{tag}' is not supported in specs files.");
        if (s.Style != ScalarStyle.Plain || tag is not null) { w.WriteStringValue(text); return; }
        switch (text)
        {
            case "" or "~" or "null" or "Null" or "NULL": w.WriteNullValue(); return;
            case "true" or "True" or "TRUE": w.WriteBooleanValue(true); return;
            case "false" or "False" or "FALSE": w.WriteBooleanValue(false); return;
        }
        if (JsonNumber().IsMatch(text)) w.WriteRawValue(text);
        else w.WriteStringValue(text);
    }

    [GeneratedRegex(@"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$")]
    private static partial Regex JsonNumber();
}
