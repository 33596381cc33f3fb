using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Engine.Storage.Format;
using FASTER.core;

namespace Engine.Faster;

/// <summary>
/// CRC-32C of every 4 MiB page of FASTER KV's hybrid log (<c>kv.log.N</c>) that a checkpoint covers, of the last few
/// bytes of that range, and of the checkpoint's own files (FASTER's <c>info.dat</c> metadata and <c>ht.dat</c> hash
/// table), kept beside the checkpoint in <c>checksums/&lt;token&gt;.crc</c> and checked before FASTER recovers it.
/// FASTER's recovery and reads walk records with unchecked lengths and follow hash-table addresses unchecked: 8 KiB of
/// zeros inside <c>kv.log.0</c> crashed the process with an <see cref="AccessViolationException"/>, which nothing can catch.
/// </summary>
/// <remarks>
/// <para>Covered range: the log addresses [<c>beginAddress</c>, <c>tail</c>) of the checkpoint's metadata, where
/// <c>tail</c> = <c>min(startLogicalAddress, finalLogicalAddress)</c>: whole pages up to <c>end</c> = <c>tail</c> rounded
/// down to 4 KiB, and the tail [<c>end</c>, <c>tail</c>) as one more checksum. FASTER never rewrites bytes below
/// <c>end</c>; a later flush restarts at the sector holding the checkpoint's tail and writes that sector again from the
/// in-memory page, whose records below <c>tail</c> are read-only since the fold-over but whose header flags a recovery
/// changes (it clears their Dirty bit). The tail's checksum therefore leaves out the top two bytes of every 8-byte word
/// (a record header's lock and flag bits; records are 8-byte aligned) and covers the rest: previous addresses and the
/// key and value lengths FASTER trusts (<c>FasterKeyValueStoreTests</c> and <c>CollectionManifestRecoveryTests</c>
/// check it across updates, deletes, reopens and later checkpoints). Recovery
/// writes back only pages of the checkpoint's fuzzy region [start, final), which holds records of the next version
/// (empty for a collection, whose writers wait during a checkpoint).</para>
/// <para>Format (little-endian): <c>"EKVP" u32 | version u32 = 2 | page bits u32 = 22 | page count n u32 | token 16 B |
/// begin i64 | end i64 | n × crc32c u32 | tail i64 | crc32c u32 of [end, tail) with the bytes at addresses ≡ 6, 7 (mod 8) zeroed | file count u32 | per file: path length
/// u16 | path (UTF-8, relative to the store's directory, '/'-separated) | length i64 | crc32c u32 | crc32c u32 of
/// everything before</c>. Entry i covers page <c>(begin &gt;&gt; 22) + i</c>, the part of it inside [begin, end).
/// Version 1 files (page checksums only: no tail, no files) are still read and checked as far as they go.</para>
/// </remarks>
internal sealed class KvPageChecksums
{
    internal const int PageBits = 22;
    private const uint Magic = 0x50564B45; // "EKVP"
    private const int HeaderSize = 48;
    private const long EndAlignment = 4096;
    private const int MaxCheckpointFiles = 64;

    /// <summary>One file of a checkpoint's FASTER directories, as it was when the checkpoint completed.</summary>
    internal readonly record struct CheckpointFile(string Path, long Length, uint Crc);

    internal Guid Token { get; }
    internal long Begin { get; }
    internal long End { get; }
    internal uint[] Pages { get; }

    /// <summary>End of the tail [End, Tail) checked by <see cref="TailCrc"/>; equal to <see cref="End"/> in a version 1 file.</summary>
    internal long Tail { get; }

    internal uint TailCrc { get; }

    /// <summary>The checkpoint's files; empty in a version 1 file.</summary>
    internal IReadOnlyList<CheckpointFile> Files { get; }

    /// <summary>Version of the file read (2 for one computed here).</summary>
    internal int Version { get; }

    private KvPageChecksums(Guid token, long begin, long end, uint[] pages, long tail, uint tailCrc, IReadOnlyList<CheckpointFile> files, int version) =>
        (Token, Begin, End, Pages, Tail, TailCrc, Files, Version) = (token, begin, end, pages, tail, tailCrc, files, version);

    /// <summary>The page-checked range of a checkpoint, from its FASTER metadata.</summary>
    internal static (long Begin, long End) RangeOf(in HybridLogRecoveryInfo info) =>
        (info.beginAddress, Math.Max(info.beginAddress, TailOf(info) & ~(EndAlignment - 1)));

    /// <summary>The end of the log a checkpoint covers (its page-checked range plus the tail).</summary>
    internal static long TailOf(in HybridLogRecoveryInfo info) => Math.Max(info.beginAddress, Math.Min(info.startLogicalAddress, info.finalLogicalAddress));

    internal static string FileOf(string storeDirectory, Guid token) => Path.Combine(storeDirectory, "checksums", token.ToString("N") + ".crc");

    // FASTER's folders of one checkpoint (DefaultCheckpointNamingScheme under the store's "checkpoints"): the log
    // checkpoint's metadata and the index checkpoint's metadata and hash table (a full checkpoint shares the token).
    private static IEnumerable<string> CheckpointFolders(Guid token) =>
        [$"checkpoints/cpr-checkpoints/{token}", $"checkpoints/index-checkpoints/{token}"];

    // True when `name` is a file directly inside `folder` (not "." or "..", no further separators).
    private static bool IsFileOf(string folder, string name) =>
        name.Length > folder.Length + 1 && name.StartsWith(folder + "/", StringComparison.Ordinal)
        && name.IndexOfAny(['/', '\\'], folder.Length + 1) < 0 && name[(folder.Length + 1)..] is not ("." or "..")
        && !name.Any(char.IsControl);

    /// <summary>Hashes the pages of [begin, end) from the log files, reusing the whole pages of <paramref name="previous"/>
    /// (whose bytes FASTER no longer changes) and reading only the rest: the previous checkpoint's last, partial page and
    /// the pages written since; then the tail [end, tail) and the checkpoint's files under <paramref name="storeDirectory"/>.</summary>
    internal static KvPageChecksums Compute(Guid token, long begin, long end, long tail, KvPageChecksums? previous, string storeDirectory, string logPrefix, long segmentSize)
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
        uint tailCrc = HashTail(end, tail, logPrefix, segmentSize).Crc;
        var files = new List<CheckpointFile>();
        foreach (var folder in CheckpointFolders(token))
        {
            string abs = Path.Combine(storeDirectory, folder);
            if (!Directory.Exists(abs)) continue;
            foreach (var f in Directory.GetFiles(abs).Order(StringComparer.Ordinal))
            {
                var bytes = File.ReadAllBytes(f);
                files.Add(new CheckpointFile($"{folder}/{Path.GetFileName(f)}", bytes.Length, Crc32C.Compute(bytes)));
            }
        }
        if (files.Count > MaxCheckpointFiles)
            throw new IOException($"FASTER checkpoint {token} has {files.Count} files; at most {MaxCheckpointFiles} are expected.");
        return new KvPageChecksums(token, begin, end, pages, tail, tailCrc, files, 2);
    }

    private const string Restore = "restore the directory from a backup or a copy (FASTER would read the damaged bytes unchecked, so the store is not opened)";

    /// <summary>Checks the log files and the checkpoint's files under <paramref name="storeDirectory"/> against these checksums.</summary>
    /// <exception cref="CorruptIndexException">A page, the tail or a checkpoint file differs, or a file is missing or ends
    /// early: names the file, the offset and what differs.</exception>
    internal void Verify(string storeDirectory, string logPrefix, long segmentSize)
    {
        VerifyFiles(storeDirectory);
        VerifyLog(logPrefix, segmentSize);
    }

    /// <summary>Checks the log's pages and tail against these checksums (the part of <see cref="Verify"/> after the
    /// checkpoint's files).</summary>
    /// <exception cref="CorruptIndexException">A page or the tail differs, or a segment is missing or ends early.</exception>
    internal void VerifyLog(string logPrefix, long segmentSize)
    {
        ForEachPage(Begin, End, 0, logPrefix, segmentSize, (i, crc, file, offset) =>
        {
            if (crc != Pages[i])
                throw new CorruptIndexException(file, offset,
                    $"FASTER KV log page {(Begin >> PageBits) + i} (4 MiB at log address {((Begin >> PageBits) + i) << PageBits}) fails its CRC-32C " +
                    $"(stored {Pages[i]:x8}, computed {crc:x8}; the checkpoint's page checksums are in checksums/{Token:N}.crc): the store's log is damaged; " + Restore);
        });
        if (Version < 2) return;
        var (tailCrc, tailFile, tailOffset) = HashTail(End, Tail, logPrefix, segmentSize);
        if (tailCrc != TailCrc)
            throw new CorruptIndexException(tailFile, tailOffset,
                $"the last {Tail - End} bytes of FASTER KV log the checkpoint covers (log addresses {End}..{Tail}) fail their CRC-32C " +
                $"(stored {TailCrc:x8}, computed {tailCrc:x8}): the store's log is damaged; " + Restore);
    }

    /// <summary>Checks the checkpoint's own files (FASTER's metadata and hash table) against their checksums; nothing for
    /// a version 1 file.</summary>
    /// <exception cref="CorruptIndexException">A file differs, is missing or cannot be read.</exception>
    internal void VerifyFiles(string storeDirectory)
    {
        foreach (var f in Files)
        {
            string path = Path.Combine(storeDirectory, f.Path);
            byte[] bytes;
            try { bytes = File.ReadAllBytes(path); }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                throw new CorruptIndexException(path, 0, $"FASTER checkpoint file {f.Path} of checkpoint {Token} is missing; " + Restore, e);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CorruptIndexException(path, 0, $"FASTER checkpoint file {f.Path} of checkpoint {Token} cannot be read ({e.Message}); " + Restore, e);
            }
            if (bytes.Length != f.Length)
                throw new CorruptIndexException(path, Math.Min(bytes.Length, f.Length),
                    $"FASTER checkpoint file {f.Path} holds {bytes.Length} bytes, its checkpoint wrote {f.Length}; " + Restore);
            uint crc = Crc32C.Compute(bytes);
            if (crc != f.Crc)
                throw new CorruptIndexException(path, 0,
                    $"FASTER checkpoint file {f.Path} fails its CRC-32C (stored {f.Crc:x8}, computed {crc:x8}): the checkpoint is damaged; " + Restore);
        }
    }

    // CRC-32C of the log bytes [from, until) (less than 4 KiB, inside one segment), with the file and offset they lie at.
    private static (uint Crc, string File, long Offset) HashTail(long from, long until, string logPrefix, long segmentSize)
    {
        long segment = from / segmentSize, offset = from % segmentSize;
        string file = $"{logPrefix}.{segment}";
        int length = (int)(until - from);
        if (length <= 0) return (Crc32C.Compute([]), file, offset);
        if ((until - 1) / segmentSize != segment)
            throw new InvalidOperationException($"A checkpoint tail [{from}, {until}) crosses a log segment boundary (internal error: the tail is less than 4 KiB and segments are 4 KiB-aligned).");
        var buffer = new byte[length];
        try
        {
            using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
            fs.Position = offset;
            int read = fs.ReadAtLeast(buffer, length, throwOnEndOfStream: false);
            if (read < length)
                throw new CorruptIndexException(file, offset + read,
                    $"the FASTER KV log segment ends at byte {offset + read}, but the checkpoint covers log addresses up to {until}: the file was cut short");
        }
        catch (FileNotFoundException e)
        {
            throw new CorruptIndexException(file, 0, $"the FASTER KV log segment is missing, but the checkpoint covers log addresses up to {until}", e);
        }
        // FASTER rewrites the sector holding the tail from its in-memory page, whose record headers its recovery changed
        // (it clears the Dirty bit of the records it loaded): leave out the flag and lock bits of every possible header,
        // the top two bytes of each 8-byte word (records are 8-byte aligned). Record lengths (the key's and value's i32
        // at 8-byte boundaries) and previous addresses (the low 48 bits) stay covered.
        for (int i = 0; i < length; i++)
            if (((from + i) & 7) >= 6) buffer[i] = 0;
        return (Crc32C.Compute(buffer), file, offset);
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

    /// <summary>Writes the file (version 2) atomically (temp file, fsync, rename).</summary>
    internal void Write(string storeDirectory)
    {
        int filesBytes = 0;
        foreach (var f in Files) filesBytes += 2 + Encoding.UTF8.GetByteCount(f.Path) + 8 + 4;
        var bytes = new byte[HeaderSize + 4 * Pages.Length + 8 + 4 + 4 + filesBytes + 4];
        var s = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], 2);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], PageBits);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], (uint)Pages.Length);
        Token.TryWriteBytes(s[16..]);
        BinaryPrimitives.WriteInt64LittleEndian(s[32..], Begin);
        BinaryPrimitives.WriteInt64LittleEndian(s[40..], End);
        int at = HeaderSize;
        for (int i = 0; i < Pages.Length; i++, at += 4) BinaryPrimitives.WriteUInt32LittleEndian(s[at..], Pages[i]);
        BinaryPrimitives.WriteInt64LittleEndian(s[at..], Tail); at += 8;
        BinaryPrimitives.WriteUInt32LittleEndian(s[at..], TailCrc); at += 4;
        BinaryPrimitives.WriteUInt32LittleEndian(s[at..], (uint)Files.Count); at += 4;
        foreach (var f in Files)
        {
            int n = Encoding.UTF8.GetBytes(f.Path, s[(at + 2)..]);
            BinaryPrimitives.WriteUInt16LittleEndian(s[at..], (ushort)n); at += 2 + n;
            BinaryPrimitives.WriteInt64LittleEndian(s[at..], f.Length); at += 8;
            BinaryPrimitives.WriteUInt32LittleEndian(s[at..], f.Crc); at += 4;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(s[at..], Crc32C.Compute(s[..at]));
        string path = FileOf(storeDirectory, Token);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        DurableFile.Write(path, bytes);
    }

    /// <summary>Reads the file of <paramref name="token"/> and checks it names the range of the checkpoint's metadata;
    /// null when there is none (a store from before these files, or a checkpoint whose file was never written).</summary>
    /// <param name="storeDirectory">The store's directory.</param>
    /// <param name="token">The checkpoint.</param>
    /// <param name="begin">The checkpoint's begin address (<see cref="RangeOf"/>).</param>
    /// <param name="end">The end of its page-checked range (<see cref="RangeOf"/>).</param>
    /// <param name="tail">The end of the log it covers (<see cref="TailOf"/>); a version 2 file must name the same.</param>
    /// <exception cref="CorruptIndexException">The file is damaged, or belongs to another checkpoint or range.</exception>
    internal static KvPageChecksums? Read(string storeDirectory, Guid token, long begin, long end, long tail) =>
        Read(storeDirectory, token)?.CheckRange(begin, end, tail, FileOf(storeDirectory, token));

    /// <summary>This file's range is the checkpoint's: [<paramref name="begin"/>, <paramref name="end"/>) and, in a
    /// version 2 file, the tail up to <paramref name="tail"/>.</summary>
    /// <exception cref="CorruptIndexException">The ranges differ (names <paramref name="path"/>, the file).</exception>
    internal KvPageChecksums CheckRange(long begin, long end, long tail, string path)
    {
        if (Begin != begin || End != end)
            throw new CorruptIndexException(path, 16,
                $"the FASTER KV page checksum file is for checkpoint {Token} and log addresses {Begin}..{End}, not {begin}..{end}");
        if (Version >= 2 && Tail != tail)
            throw new CorruptIndexException(path, HeaderSize + 4L * Pages.Length, $"the FASTER KV page checksum file covers the log up to {Tail}, its checkpoint up to {tail}");
        return this;
    }

    /// <summary>Reads the file of <paramref name="token"/> as it stands (its own range, not yet compared with the
    /// checkpoint's metadata: <see cref="CheckRange"/>); null when there is none.</summary>
    /// <exception cref="CorruptIndexException">The file is damaged or belongs to another checkpoint.</exception>
    internal static KvPageChecksums? Read(string storeDirectory, Guid token)
    {
        string path = FileOf(storeDirectory, token);
        byte[] b;
        try { b = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
        ReadOnlySpan<byte> s = b;
        uint version = s.Length >= 8 ? BinaryPrimitives.ReadUInt32LittleEndian(s[4..]) : 0;
        if (s.Length < HeaderSize + 4 || BinaryPrimitives.ReadUInt32LittleEndian(s) != Magic || version is not (1 or 2)
            || BinaryPrimitives.ReadUInt32LittleEndian(s[8..]) != PageBits)
            throw new CorruptIndexException(path, 0, "the FASTER KV page checksum file is damaged (header)");
        long count = BinaryPrimitives.ReadUInt32LittleEndian(s[12..]);
        long pagesEnd = HeaderSize + 4 * count;
        if ((version == 1 ? s.Length != pagesEnd + 4 : s.Length < pagesEnd + 8 + 4 + 4 + 4) || BinaryPrimitives.ReadUInt32LittleEndian(s[^4..]) != Crc32C.Compute(s[..^4]))
            throw new CorruptIndexException(path, 0, "the FASTER KV page checksum file is damaged (its length or checksum)");
        var fileToken = new Guid(s.Slice(16, 16));
        long fileBegin = BinaryPrimitives.ReadInt64LittleEndian(s[32..]), fileEnd = BinaryPrimitives.ReadInt64LittleEndian(s[40..]);
        if (fileToken != token)
            throw new CorruptIndexException(path, 16, $"the FASTER KV page checksum file is for checkpoint {fileToken}, not {token}");
        long begin = fileBegin, end = fileEnd;
        long expected = end > begin ? ((end - 1) >> PageBits) - (begin >> PageBits) + 1 : 0;
        if (begin < 0 || end < begin) throw new CorruptIndexException(path, 32, $"the FASTER KV page checksum file names log addresses {begin}..{end}");
        if (count != expected) throw new CorruptIndexException(path, 12, $"the FASTER KV page checksum file lists {count} pages, its range needs {expected}");
        var pages = new uint[count];
        for (int i = 0; i < count; i++) pages[i] = BinaryPrimitives.ReadUInt32LittleEndian(s[(HeaderSize + 4 * i)..]);
        if (version == 1) return new KvPageChecksums(token, begin, end, pages, end, 0, [], 1);
        int at = (int)pagesEnd;
        long tail = BinaryPrimitives.ReadInt64LittleEndian(s[at..]); at += 8;
        uint tailCrc = BinaryPrimitives.ReadUInt32LittleEndian(s[at..]); at += 4;
        uint fileCount = BinaryPrimitives.ReadUInt32LittleEndian(s[at..]); at += 4;
        if (tail < end || tail - end >= EndAlignment)
            throw new CorruptIndexException(path, pagesEnd, $"the FASTER KV page checksum file's tail {end}..{tail} is not the under-4-KiB rest of its range");
        if (fileCount > MaxCheckpointFiles)
            throw new CorruptIndexException(path, pagesEnd + 12, $"the FASTER KV page checksum file lists {fileCount} checkpoint files (at most {MaxCheckpointFiles})");
        var files = new List<CheckpointFile>((int)fileCount);
        var body = s[..^4];
        for (int i = 0; i < fileCount; i++)
        {
            if (at + 2 > body.Length) throw new CorruptIndexException(path, at, "the FASTER KV page checksum file ends inside its file list");
            int n = BinaryPrimitives.ReadUInt16LittleEndian(body[at..]); at += 2;
            if (at + n + 12 > body.Length) throw new CorruptIndexException(path, at, "the FASTER KV page checksum file ends inside its file list");
            string name = Encoding.UTF8.GetString(body.Slice(at, n)); at += n;
            long length = BinaryPrimitives.ReadInt64LittleEndian(body[at..]); at += 8;
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(body[at..]); at += 4;
            // only files inside the checkpoint's own folders: a damaged name must not point elsewhere
            if (length < 0 || !CheckpointFolders(token).Any(f => IsFileOf(f, name)))
                throw new CorruptIndexException(path, at, $"the FASTER KV page checksum file lists a checkpoint file '{name}' of {length} bytes outside checkpoint {token}'s folders");
            files.Add(new CheckpointFile(name, length, crc));
        }
        if (at != body.Length) throw new CorruptIndexException(path, at, "the FASTER KV page checksum file has bytes after its file list");
        return new KvPageChecksums(token, begin, end, pages, tail, tailCrc, files, 2);
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
