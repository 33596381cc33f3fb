using System.Buffers;
using System.Buffers.Binary;
using Engine.Storage.Format;
using FASTER.core;

namespace Engine.Faster;

/// <summary>
/// CRC-32C of every 4 MiB page of FASTER KV's hybrid log (<c>kv.log.N</c>) that a checkpoint covers, kept beside the
/// checkpoint in <c>checksums/&lt;token&gt;.crc</c> and checked before FASTER recovers it. FASTER's recovery walks the
/// records of the pages it reads with unchecked lengths: 8 KiB of zeros inside <c>kv.log.0</c> crashed the process with an
/// <see cref="AccessViolationException"/>, which nothing can catch.
/// </summary>
/// <remarks>
/// <para>Covered range: the log addresses [<c>beginAddress</c>, <c>end</c>) of the checkpoint's metadata, where
/// <c>end</c> is <c>min(startLogicalAddress, finalLogicalAddress)</c> rounded down to 4 KiB. FASTER never rewrites bytes
/// below it: a later flush restarts at the sector holding the checkpoint's end (bytes below that sector are read-only),
/// and recovery writes back only pages of the checkpoint's fuzzy region [start, final), which holds records of the next
/// version (empty for a collection, whose writers wait during a checkpoint).</para>
/// <para>Format (little-endian): <c>"EKVP" u32 | version u32 = 1 | page bits u32 = 22 | page count n u32 | token 16 B |
/// begin i64 | end i64 | n × crc32c u32 | crc32c u32 of everything before</c>. Entry i covers page
/// <c>(begin &gt;&gt; 22) + i</c>, the part of it inside [begin, end).</para>
/// </remarks>
internal sealed class KvPageChecksums
{
    internal const int PageBits = 22;
    private const uint Magic = 0x50564B45; // "EKVP"
    private const int HeaderSize = 48;
    private const long EndAlignment = 4096;

    internal Guid Token { get; }
    internal long Begin { get; }
    internal long End { get; }
    internal uint[] Pages { get; }

    private KvPageChecksums(Guid token, long begin, long end, uint[] pages) => (Token, Begin, End, Pages) = (token, begin, end, pages);

    /// <summary>The covered range of a checkpoint, from its FASTER metadata.</summary>
    internal static (long Begin, long End) RangeOf(in HybridLogRecoveryInfo info) =>
        (info.beginAddress, Math.Max(info.beginAddress, Math.Min(info.startLogicalAddress, info.finalLogicalAddress) & ~(EndAlignment - 1)));

    internal static string FileOf(string storeDirectory, Guid token) => Path.Combine(storeDirectory, "checksums", token.ToString("N") + ".crc");

    /// <summary>Hashes the pages of [begin, end) from the log files, reusing the whole pages of <paramref name="previous"/>
    /// (whose bytes FASTER no longer changes) and reading only the rest: the previous checkpoint's last, partial page and
    /// the pages written since.</summary>
    internal static KvPageChecksums Compute(Guid token, long begin, long end, KvPageChecksums? previous, string logPrefix, long segmentSize)
    {
        long firstPage = begin >> PageBits;
        int count = end > begin ? (int)(((end - 1) >> PageBits) - firstPage + 1) : 0;
        var pages = new uint[count];
        int reuse = 0;
        if (previous is not null && previous.Begin == begin)
        {
            // pages wholly below the previous end: unchanged since they were hashed
            reuse = (int)Math.Min(count, Math.Max(0, (previous.End >> PageBits) - firstPage));
            reuse = Math.Min(reuse, previous.Pages.Length);
            Array.Copy(previous.Pages, pages, reuse);
        }
        ForEachPage(begin, end, reuse, logPrefix, segmentSize, (i, crc, _, _) => pages[i] = crc);
        return new KvPageChecksums(token, begin, end, pages);
    }

    /// <summary>Checks the log files against these checksums.</summary>
    /// <exception cref="CorruptIndexException">A page differs or a file ends early: names the file, the offset and the page.</exception>
    internal void Verify(string logPrefix, long segmentSize)
    {
        ForEachPage(Begin, End, 0, logPrefix, segmentSize, (i, crc, file, offset) =>
        {
            if (crc != Pages[i])
                throw new CorruptIndexException(file, offset,
                    $"FASTER KV log page {(Begin >> PageBits) + i} (4 MiB at log address {((Begin >> PageBits) + i) << PageBits}) fails its CRC-32C " +
                    $"(stored {Pages[i]:x8}, computed {crc:x8}; the checkpoint's page checksums are in checksums/{Token:N}.crc): the store's log is damaged; restore the directory " +
                    "from a backup or a copy (FASTER's recovery would read the damaged records unchecked, so the store is not opened)");
        });
    }

    // Calls visit(entry index, crc32c, file, offset in file) for pages from entry `fromEntry` on.
    private static void ForEachPage(long begin, long end, int fromEntry, string logPrefix, long segmentSize, Action<int, uint, string, long> visit)
    {
        if (end <= begin) return;
        long firstPage = begin >> PageBits;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << PageBits);
        try
        {
            FileStream? fs = null;
            long openSegment = -1;
            try
            {
                for (long page = firstPage + fromEntry; page <= (end - 1) >> PageBits; page++)
                {
                    long from = Math.Max(page << PageBits, begin), until = Math.Min((page + 1) << PageBits, end);
                    long segment = from / segmentSize, offset = from % segmentSize;
                    string file = $"{logPrefix}.{segment}";
                    if (segment != openSegment)
                    {
                        fs?.Dispose();
                        fs = null;
                        try { fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan); }
                        catch (FileNotFoundException e)
                        {
                            throw new CorruptIndexException(file, 0, $"the FASTER KV log segment is missing, but the checkpoint covers log addresses up to {end}", e);
                        }
                        openSegment = segment;
                    }
                    int length = (int)(until - from);
                    fs!.Position = offset;
                    int read = fs.ReadAtLeast(buffer.AsSpan(0, length), length, throwOnEndOfStream: false);
                    if (read < length)
                        throw new CorruptIndexException(file, offset + read,
                            $"the FASTER KV log segment ends at byte {offset + read}, but the checkpoint covers log addresses up to {end}: the file was cut short");
                    visit((int)(page - firstPage), Crc32C.Compute(buffer.AsSpan(0, length)), file, offset);
                }
            }
            finally { fs?.Dispose(); }
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    /// <summary>Writes the file atomically (temp file, fsync, rename).</summary>
    internal void Write(string storeDirectory)
    {
        var bytes = new byte[HeaderSize + 4 * Pages.Length + 4];
        var s = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], PageBits);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], (uint)Pages.Length);
        Token.TryWriteBytes(s[16..]);
        BinaryPrimitives.WriteInt64LittleEndian(s[32..], Begin);
        BinaryPrimitives.WriteInt64LittleEndian(s[40..], End);
        for (int i = 0; i < Pages.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(s[(HeaderSize + 4 * i)..], Pages[i]);
        BinaryPrimitives.WriteUInt32LittleEndian(s[^4..], Crc32C.Compute(s[..^4]));
        string path = FileOf(storeDirectory, Token);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        DurableFile.Write(path, bytes);
    }

    /// <summary>Reads the file of <paramref name="token"/>; null when there is none (a store from before these files,
    /// or a checkpoint whose file was never written).</summary>
    /// <exception cref="CorruptIndexException">The file is damaged, or belongs to another checkpoint or range.</exception>
    internal static KvPageChecksums? Read(string storeDirectory, Guid token, long begin, long end)
    {
        string path = FileOf(storeDirectory, token);
        byte[] b;
        try { b = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
        ReadOnlySpan<byte> s = b;
        if (s.Length < HeaderSize + 4 || BinaryPrimitives.ReadUInt32LittleEndian(s) != Magic || BinaryPrimitives.ReadUInt32LittleEndian(s[4..]) != 1
            || BinaryPrimitives.ReadUInt32LittleEndian(s[8..]) != PageBits)
            throw new CorruptIndexException(path, 0, "the FASTER KV page checksum file is damaged (header)");
        long count = BinaryPrimitives.ReadUInt32LittleEndian(s[12..]);
        if (s.Length != HeaderSize + 4 * count + 4 || BinaryPrimitives.ReadUInt32LittleEndian(s[^4..]) != Crc32C.Compute(s[..^4]))
            throw new CorruptIndexException(path, 0, "the FASTER KV page checksum file is damaged (its length or checksum)");
        var fileToken = new Guid(s.Slice(16, 16));
        long fileBegin = BinaryPrimitives.ReadInt64LittleEndian(s[32..]), fileEnd = BinaryPrimitives.ReadInt64LittleEndian(s[40..]);
        if (fileToken != token || fileBegin != begin || fileEnd != end)
            throw new CorruptIndexException(path, 16,
                $"the FASTER KV page checksum file is for checkpoint {fileToken} and log addresses {fileBegin}..{fileEnd}, not {token} and {begin}..{end}");
        long expected = end > begin ? ((end - 1) >> PageBits) - (begin >> PageBits) + 1 : 0;
        if (count != expected) throw new CorruptIndexException(path, 12, $"the FASTER KV page checksum file lists {count} pages, its range needs {expected}");
        var pages = new uint[count];
        for (int i = 0; i < count; i++) pages[i] = BinaryPrimitives.ReadUInt32LittleEndian(s[(HeaderSize + 4 * i)..]);
        return new KvPageChecksums(token, begin, end, pages);
    }
}

/// <summary>Small files written atomically: a temp file beside the target, fsync, rename over it.</summary>
internal static class DurableFile
{
    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically. Writes through
    /// <see cref="WriteFaults"/> (the test hook) fail like a full disk once the path is marked failing.</summary>
    internal static void Write(string path, ReadOnlySpan<byte> bytes)
    {
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            if (WriteFaults.ShouldFailFile(path))
            {
                fs.Write(bytes[..(bytes.Length / 2)]); // a full disk: the temp file is left torn
                throw new IOException($"No space left on device : '{tmp}' (injected fault)", 28);
            }
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }
}
