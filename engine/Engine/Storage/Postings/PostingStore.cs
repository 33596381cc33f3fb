using System.Buffers;
using System.Buffers.Binary;
using Engine.Storage.Devices;
using Engine.Storage.Format;
using K4os.Compression.LZ4;

namespace Engine.Storage.Postings;

/// <summary>
/// Stores posting payloads as page-aligned, LZ4-compressed (when that makes them smaller), CRC32C-checked blocks on a device.
/// </summary>
/// <remarks>
/// <para>Block layout (little-endian), starting at a page boundary and padded with zeros to whole pages:</para>
/// <code>
/// magic "PSTB" u32 | crc32c u32 (of bytes 8 .. 32+stored) | key i32 | raw length i32 | stored length i32 |
/// flags u32 (bit 0: payload stored uncompressed) | reserved u64 | payload (stored length bytes)
/// </code>
/// <para>The store only appends: a block is never overwritten, so a crash can only leave unreferenced
/// garbage after the last checkpoint, never damage a block a checkpoint points to, and cached payloads
/// (keyed by offset) never go stale. Rewriting a posting writes a new block; the owner tracks garbage and
/// compacts by copying live blocks into a new store.</para>
/// <para>Thread safety: any number of concurrent reads; writes are serialised internally.</para>
/// </remarks>
public sealed class PostingStore : IDisposable
{
    /// <summary>Block header size in bytes.</summary>
    public const int HeaderSize = 32;
    private const uint Magic = 0x42545350; // "PSTB"
    private const uint FlagRaw = 1;
    private const int MinSavingDivisor = 8; // compress only when it saves at least payload / 8 bytes

    private readonly IStorageDevice _device;
    private readonly object _writeGate = new();
    private readonly bool _ownsDevice;
    private long _appendOffset;
    private readonly CheckedOnceBits _verified = new(); // one bit per page: the block starting there passed its CRC32C once
    private DeviceMapping? _mapping; // MapForReads: the blocks written before it, for TryReadInPlace

    /// <summary>Opens a store over <paramref name="device"/>; new blocks go after the current end.</summary>
    public PostingStore(IStorageDevice device, PostingCache? cache = null, bool ownsDevice = true)
    {
        _device = device ?? throw new ArgumentNullException(nameof(device));
        _ownsDevice = ownsDevice;
        Cache = cache ?? new PostingCache(0);
        PageSize = device.SectorSize;
        _appendOffset = AlignUp(device.Length);
    }

    /// <summary>Page size (the device sector size): block offsets and lengths are multiples of it.</summary>
    public int PageSize { get; }

    /// <summary>The device holding the blocks.</summary>
    public IStorageDevice Device => _device;

    /// <summary>The read cache.</summary>
    public PostingCache Cache { get; }

    /// <summary>Bytes used by blocks, live or garbage (the append position).</summary>
    public long Length => Interlocked.Read(ref _appendOffset);

    private long AlignUp(long n) => (n + PageSize - 1) / PageSize * PageSize;

    /// <summary>
    /// Cuts the device back to <paramref name="length"/> bytes (page aligned) and appends from there. For blocks no
    /// table references any more, e.g. written after the last checkpoint by a session that crashed or never
    /// checkpointed. Not thread-safe: call before the store is shared.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative, unaligned, or beyond the current end.</exception>
    public void TruncateTo(long length)
    {
        if (length < 0 || length % PageSize != 0 || length > Length)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"Must be a page-aligned length within the store's {Length} bytes.");
        _verified.Clear(); // new blocks will be appended over the cut ones
        _mapping?.Dispose(); // mapped pages past the new end would fault
        _mapping = null;
        if (length == Length) return;
        _device.SetLength(length);
        Interlocked.Exchange(ref _appendOffset, length);
    }

    /// <summary>Writes <paramref name="payload"/> as a new block tagged with <paramref name="key"/>.</summary>
    /// <param name="key">The posting the block belongs to.</param>
    /// <param name="payload">The bytes to store.</param>
    /// <param name="compression">When LZ4 compression is kept (default: whenever it makes the block smaller at all).</param>
    /// <returns>The location to pass to <see cref="Read"/>; empty for an empty payload.</returns>
    public PostingLocation Write(int key, ReadOnlySpan<byte> payload, BlockCompression compression = BlockCompression.WhenSmaller)
    {
        if (payload.IsEmpty) return default;
        int max = LZ4Codec.MaximumOutputSize(payload.Length);
        long blockBytes = AlignUp(HeaderSize + (long)Math.Max(max, payload.Length));
        if (blockBytes > int.MaxValue) throw new ArgumentException($"Posting payload of {payload.Length} bytes is too large for one block.", nameof(payload));
        byte[] block = ArrayPool<byte>.Shared.Rent((int)blockBytes);
        try
        {
            var body = block.AsSpan(HeaderSize, (int)blockBytes - HeaderSize);
            int stored = compression == BlockCompression.Never ? 0 : LZ4Codec.Encode(payload, body, LZ4Level.L00_FAST);
            uint flags = 0;
            if (stored <= 0 || stored >= payload.Length || (compression == BlockCompression.WhenWorthIt && stored > payload.Length - payload.Length / MinSavingDivisor))
            {
                payload.CopyTo(body);
                stored = payload.Length;
                flags = FlagRaw;
            }
            int used = (int)AlignUp(HeaderSize + stored);
            block.AsSpan(HeaderSize + stored, used - HeaderSize - stored).Clear();
            var h = block.AsSpan(0, HeaderSize);
            BinaryPrimitives.WriteUInt32LittleEndian(h, Magic);
            BinaryPrimitives.WriteInt32LittleEndian(h[8..], key);
            BinaryPrimitives.WriteInt32LittleEndian(h[12..], payload.Length);
            BinaryPrimitives.WriteInt32LittleEndian(h[16..], stored);
            BinaryPrimitives.WriteUInt32LittleEndian(h[20..], flags);
            BinaryPrimitives.WriteUInt64LittleEndian(h[24..], 0);
            uint crc = Crc32C.Compute(block.AsSpan(8, HeaderSize - 8 + stored));
            BinaryPrimitives.WriteUInt32LittleEndian(h[4..], crc);
            lock (_writeGate)
            {
                long offset = _appendOffset;
                _device.Write(offset, block.AsSpan(0, used));
                Interlocked.Exchange(ref _appendOffset, offset + used);
                return new PostingLocation(offset, used / PageSize) { Checksum = crc };
            }
        }
        finally { ArrayPool<byte>.Shared.Return(block); }
    }

    /// <summary>Makes every written block durable.</summary>
    public void Flush() => _device.Flush();

    /// <summary>
    /// Reads and verifies the block at <paramref name="location"/>, which must carry <paramref name="key"/>.
    /// Served from the cache when present.
    /// </summary>
    /// <param name="location">Block location.</param>
    /// <param name="key">Expected key (detects a table pointing at the wrong block).</param>
    /// <param name="fromCache">True when the cache answered.</param>
    /// <exception cref="CorruptIndexException">Bad magic, key, length, checksum or compressed stream; names the device and offset.</exception>
    public byte[] Read(PostingLocation location, int key, out bool fromCache)
    {
        if (location.IsEmpty) { fromCache = true; return []; }
        if (Cache.TryGet(location.Offset, out var hit)) { fromCache = true; return hit; }
        fromCache = false;
        int bytes = CheckedLength(location);
        byte[] block = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            _device.Read(location.Offset, block.AsSpan(0, bytes));
            return DecodeAndCache(location, key, block.AsSpan(0, bytes));
        }
        finally { ArrayPool<byte>.Shared.Return(block); }
    }

    /// <summary>Bytes of blocks <see cref="TryReadInPlace"/> can serve (the length mapped by <see cref="MapForReads"/>).</summary>
    public long MappedLength => _mapping?.Length ?? 0;

    /// <summary>
    /// Maps every block written so far read-only, so that <see cref="TryReadInPlace"/> serves them without a system
    /// call, a copy or an allocation; blocks written later are read by <see cref="Read"/> until the next call. Does
    /// nothing on a device that cannot be mapped. Not safe while any span from <see cref="TryReadInPlace"/> is in use
    /// (the previous mapping is released): the owner calls it where it excludes its readers (SPANN: under its write lock).
    /// </summary>
    public void MapForReads()
    {
        if (_device is not IMappableDevice mappable) return;
        long length = Math.Min(mappable.Length, Length);
        if (length == (_mapping?.Length ?? 0)) return;
        var next = length > 0 ? mappable.Map(length) : null;
        _mapping?.Dispose();
        _mapping = next;
    }

    /// <summary>
    /// Serves the payload of an uncompressed block from the mapping of <see cref="MapForReads"/>, with the checks of
    /// <see cref="Read"/> (the block's CRC32C on its first read). False when the block was not mapped or is stored
    /// compressed: read it with <see cref="Read"/> instead. The span stays valid until the next
    /// <see cref="MapForReads"/>, <see cref="TruncateTo"/> or <see cref="Dispose"/>.
    /// </summary>
    /// <exception cref="CorruptIndexException">As <see cref="Read"/>.</exception>
    public bool TryReadInPlace(PostingLocation location, int key, out ReadOnlySpan<byte> payload)
    {
        payload = default;
        if (location.IsEmpty) return true;
        var mapping = _mapping;
        if (mapping is null) return false;
        int bytes = CheckedLength(location);
        if (location.Offset + bytes > mapping.Length) return false;
        var block = mapping.Read(location.Offset, bytes);
        if (block.Length < HeaderSize || (BinaryPrimitives.ReadUInt32LittleEndian(block[20..]) & FlagRaw) == 0) return false;
        long page = location.Offset / PageSize;
        bool known = _verified.Contains(page);
        var (raw, _, _) = CheckBlock(_device.Name, location.Offset, key, block, location.Checksum, skipChecksum: known);
        if (!known) _verified.Add(page);
        payload = block.Slice(HeaderSize, raw);
        return true;
    }

    /// <summary>
    /// Reads several blocks, issuing every cache miss to the device at once (asynchronous reads overlap on
    /// a device with many queues). <paramref name="results"/>[i] receives the payload of block i.
    /// </summary>
    /// <returns>Number of blocks served from the cache and bytes read from the device.</returns>
    public async ValueTask<(int CacheHits, long BytesRead)> ReadManyAsync(IReadOnlyList<PostingLocation> locations,
        IReadOnlyList<int> keys, byte[][] results, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(locations);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(results);
        if (keys.Count != locations.Count || results.Length < locations.Count)
            throw new ArgumentException("locations, keys and results must have matching lengths.");
        int hits = 0;
        long bytesRead = 0;
        var pending = new List<(int Index, byte[] Block, int Bytes, Task Read)>();
        try
        {
            for (int i = 0; i < locations.Count; i++)
            {
                var loc = locations[i];
                if (loc.IsEmpty) { results[i] = []; hits++; continue; }
                if (Cache.TryGet(loc.Offset, out var hit)) { results[i] = hit; hits++; continue; }
                int bytes = CheckedLength(loc);
                byte[] block = ArrayPool<byte>.Shared.Rent(bytes);
                pending.Add((i, block, bytes, _device.ReadAsync(loc.Offset, block.AsMemory(0, bytes), cancellationToken).AsTask()));
                bytesRead += bytes;
            }
            foreach (var p in pending) await p.Read.ConfigureAwait(false);
            foreach (var p in pending) results[p.Index] = DecodeAndCache(locations[p.Index], keys[p.Index], p.Block.AsSpan(0, p.Bytes));
        }
        finally
        {
            foreach (var p in pending)
            {
                if (!p.Read.IsCompleted) { try { await p.Read.ConfigureAwait(false); } catch (IOException) { } }
                ArrayPool<byte>.Shared.Return(p.Block);
            }
        }
        return (hits, bytesRead);
    }

    private int CheckedLength(PostingLocation location)
    {
        long bytes = (long)location.Pages * PageSize;
        if (location.Offset < 0 || location.Offset % PageSize != 0 || location.Pages < 0 || bytes > int.MaxValue
            || (location.Offset + bytes > Length && location.Offset + bytes > _device.Length)) // (a file's length is a system call: asked only past the store's end)
            throw new CorruptIndexException(_device.Name, location.Offset, $"posting location ({location.Offset}, {location.Pages} pages) lies outside the file");
        return (int)bytes;
    }

    /// <summary>
    /// Reads and verifies the block at <paramref name="location"/> from the device, bypassing (and not filling) the
    /// cache: for deep verification of what is on disk.
    /// </summary>
    /// <exception cref="CorruptIndexException">As <see cref="Read"/>.</exception>
    internal byte[] ReadFromDevice(PostingLocation location, int key)
    {
        if (location.IsEmpty) return [];
        int bytes = CheckedLength(location);
        byte[] block = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            _device.Read(location.Offset, block.AsSpan(0, bytes));
            return Decode(_device.Name, location.Offset, key, block.AsSpan(0, bytes), location.Checksum);
        }
        finally { ArrayPool<byte>.Shared.Return(block); }
    }

    // Blocks are never overwritten, so a block whose CRC32C passed once is not summed again on later reads (the
    // header fields, the key and the posting table's checksum are still checked on every read); VectorRecordStore
    // treats its mapped records the same way. Verify() reads with ReadFromDevice, which always sums.
    private byte[] DecodeAndCache(PostingLocation location, int key, ReadOnlySpan<byte> block)
    {
        long page = location.Offset / PageSize;
        bool known = _verified.Contains(page);
        var payload = Decode(_device.Name, location.Offset, key, block, location.Checksum, skipChecksum: known);
        if (!known) _verified.Add(page);
        Cache.Add(location.Offset, payload);
        return payload;
    }

    /// <summary>
    /// Verifies and decodes one block image (header + payload + padding); when <paramref name="expectedChecksum"/> is
    /// given, the block must be the one with that checksum (see <see cref="PostingLocation.Checksum"/>).
    /// </summary>
    internal static byte[] Decode(string name, long offset, int key, ReadOnlySpan<byte> block, uint? expectedChecksum = null, bool skipChecksum = false)
    {
        var (raw, stored, flags) = CheckBlock(name, offset, key, block, expectedChecksum, skipChecksum);
        var payload = GC.AllocateUninitializedArray<byte>(raw);
        var body = block.Slice(HeaderSize, stored);
        if ((flags & FlagRaw) != 0) body.CopyTo(payload);
        else if (LZ4Codec.Decode(body, payload) != raw)
            throw new CorruptIndexException(name, offset, "posting block payload does not decompress to its recorded length");
        return payload;
    }

    // Checks a block image's header, key, lengths and (unless skipChecksum) CRC32C; returns its raw and stored lengths and flags.
    private static (int Raw, int Stored, uint Flags) CheckBlock(string name, long offset, int key, ReadOnlySpan<byte> block, uint? expectedChecksum, bool skipChecksum)
    {
        if (block.Length < HeaderSize) throw new CorruptIndexException(name, offset, "posting block is shorter than its header");
        if (BinaryPrimitives.ReadUInt32LittleEndian(block) != Magic)
            throw new CorruptIndexException(name, offset, "posting block has a bad magic number");
        int raw = BinaryPrimitives.ReadInt32LittleEndian(block[12..]);
        int stored = BinaryPrimitives.ReadInt32LittleEndian(block[16..]);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(block[20..]);
        if (stored <= 0 || raw <= 0 || stored > block.Length - HeaderSize || (flags & ~FlagRaw) != 0
            || ((flags & FlagRaw) != 0 && raw != stored) || raw > 255 * stored + 16)
            throw new CorruptIndexException(name, offset, $"posting block has impossible lengths (raw {raw}, stored {stored})");
        if (!skipChecksum && Crc32C.Compute(block.Slice(8, HeaderSize - 8 + stored)) != BinaryPrimitives.ReadUInt32LittleEndian(block[4..]))
            throw new CorruptIndexException(name, offset, "posting block checksum mismatch");
        int gotKey = BinaryPrimitives.ReadInt32LittleEndian(block[8..]);
        if (gotKey != key) throw new CorruptIndexException(name, offset, $"posting block belongs to posting {gotKey}, expected {key}");
        uint gotCrc = BinaryPrimitives.ReadUInt32LittleEndian(block[4..]);
        if (expectedChecksum is { } want && gotCrc != want)
            throw new CorruptIndexException(name, offset, $"posting block of posting {key} has checksum {gotCrc:x8} but the posting table expects {want:x8}: the table points at a stale or foreign block");
        return (raw, stored, flags);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _mapping?.Dispose();
        _mapping = null;
        if (_ownsDevice) _device.Dispose();
    }
}

/// <summary>When <see cref="PostingStore.Write"/> keeps a block LZ4-compressed (an uncompressed block can be read in place,
/// <see cref="PostingStore.TryReadInPlace"/>, with no copy or decompression).</summary>
public enum BlockCompression
{
    /// <summary>Whenever LZ4 makes the payload smaller at all.</summary>
    WhenSmaller,

    /// <summary>Only when LZ4 saves at least an eighth of the payload (RocksDB's rule): for payloads that compress
    /// little, such as f32 vectors of real-valued embeddings, whose reads would otherwise pay a decompression for a
    /// few percent of I/O.</summary>
    WhenWorthIt,

    /// <summary>Never: for payloads of near-random bytes such as quantisation codes.</summary>
    Never,
}
