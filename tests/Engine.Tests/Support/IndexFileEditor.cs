using System.Buffers.Binary;
using Engine.Storage.Format;

namespace Engine.Tests.Support;

/// <summary>
/// Edits sections of a version-2 index file in place and re-seals it (section and trailer checksums), so tests can
/// plant damage that checksums cannot see: the kind of inconsistency only structural and deep checks find.
/// </summary>
internal static class IndexFileEditor
{
    public sealed record Section(string Tag, long Start, long Payload, long Length);

    public static int HeaderLength(byte[] b)
    {
        int kind = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(12));
        int desc = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(14 + kind));
        return 16 + kind + desc + 1 + 4 + 8 + 4;
    }

    public static List<Section> Sections(byte[] b)
    {
        var list = new List<Section>();
        long pos = HeaderLength(b);
        while (true)
        {
            string tag = System.Text.Encoding.ASCII.GetString(b, (int)pos, 4);
            if (tag == "END\0") return list;
            long len = (long)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan((int)pos + 4));
            long payload = (pos + 12 + IndexFile.PayloadAlignment - 1) / IndexFile.PayloadAlignment * IndexFile.PayloadAlignment;
            list.Add(new Section(tag, pos, payload, len));
            pos = payload + len + 4;
        }
    }

    /// <summary>The payload of section <paramref name="tag"/>.</summary>
    public static byte[] Read(string path, string tag)
    {
        var b = File.ReadAllBytes(path);
        var s = Sections(b).Single(x => x.Tag == tag);
        return b.AsSpan((int)s.Payload, (int)s.Length).ToArray();
    }

    /// <summary>Lets <paramref name="edit"/> change the payload of section <paramref name="tag"/> (same length), then re-seals the file.</summary>
    public static void Edit(string path, string tag, Action<Span<byte>> edit)
    {
        var b = File.ReadAllBytes(path);
        var sections = Sections(b);
        var s = sections.Single(x => x.Tag == tag);
        edit(b.AsSpan((int)s.Payload, (int)s.Length));
        uint all = Crc32C.Seed;
        foreach (var x in sections)
        {
            long crcAt = x.Payload + x.Length;
            if (x == s) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan((int)crcAt), Crc32C.Compute(b.AsSpan((int)(x.Start + 12), (int)(crcAt - x.Start - 12))));
            all = Crc32C.Append(all, b.AsSpan((int)crcAt, 4));
        }
        long end = sections[^1].Payload + sections[^1].Length + 4;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan((int)end + 12), Crc32C.Finish(all));
        File.WriteAllBytes(path, b);
    }

    /// <summary>Drops the last section (as files written before it was added lack it) and re-seals the trailer.</summary>
    public static void RemoveLastSection(string path, string tag)
    {
        var b = File.ReadAllBytes(path);
        var sections = Sections(b);
        Assert.Equal(tag, sections[^1].Tag);
        uint all = Crc32C.Seed;
        foreach (var x in sections.SkipLast(1)) all = Crc32C.Append(all, b.AsSpan((int)(x.Payload + x.Length), 4));
        long end = sections[^2].Payload + sections[^2].Length + 4;
        var trailer = b.AsSpan((int)(sections[^1].Payload + sections[^1].Length + 4), 16).ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(trailer.AsSpan(12), Crc32C.Finish(all));
        File.WriteAllBytes(path, [.. b.AsSpan(0, (int)end), .. trailer]);
    }

    /// <summary>
    /// Rewrites the file with section <paramref name="tag"/>'s payload replaced by <paramref name="payload"/> (any
    /// length, as a file written by another layout would hold), every later payload re-aligned and every checksum re-sealed.
    /// </summary>
    public static void Replace(string path, string tag, byte[] payload)
    {
        var b = File.ReadAllBytes(path);
        var sections = Sections(b);
        var o = new MemoryStream();
        o.Write(b, 0, (int)sections[0].Start);
        uint all = Crc32C.Seed;
        foreach (var x in sections)
        {
            var body = x.Tag == tag ? payload : b.AsSpan((int)x.Payload, (int)x.Length).ToArray();
            var head = new byte[12];
            System.Text.Encoding.ASCII.GetBytes(x.Tag, head);
            BinaryPrimitives.WriteUInt64LittleEndian(head.AsSpan(4), (ulong)body.Length);
            o.Write(head);
            int pad = IndexFile.Padding(o.Position, IndexFile.FormatVersion);
            var padded = new byte[pad + body.Length];
            body.CopyTo(padded, pad);
            o.Write(padded);
            var crc = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(crc, Crc32C.Compute(padded));
            o.Write(crc);
            all = Crc32C.Append(all, crc);
        }
        var trailer = new byte[16];
        System.Text.Encoding.ASCII.GetBytes("END\0", trailer);
        BinaryPrimitives.WriteUInt32LittleEndian(trailer.AsSpan(12), Crc32C.Finish(all));
        o.Write(trailer);
        File.WriteAllBytes(path, o.ToArray());
    }

    /// <summary>Edits one element of an array section.</summary>
    public static void Set<T>(string path, string tag, int index, T value) where T : unmanaged =>
        Edit(path, tag, span => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(span)[index] = value);

    /// <summary>Element <paramref name="index"/> of an array section.</summary>
    public static T Get<T>(string path, string tag, int index) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(Read(path, tag))[index];
}
