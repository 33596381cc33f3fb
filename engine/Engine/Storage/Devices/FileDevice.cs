using Microsoft.Win32.SafeHandles;

namespace Engine.Storage.Devices;

/// <summary>
/// A device over one file, using positional I/O (<see cref="RandomAccess"/> on a <see cref="SafeFileHandle"/>):
/// no shared file position, so concurrent reads need no lock.
/// </summary>
public sealed class FileDevice : IMappableDevice
{
    private readonly SafeFileHandle _handle;

    /// <summary>Opens (or creates when <paramref name="create"/>) the file at <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist and <paramref name="create"/> is false.</exception>
    public FileDevice(string path, bool create = true, int sectorSize = 4096)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (sectorSize <= 0 || (sectorSize & (sectorSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(sectorSize), sectorSize, "Sector size must be a positive power of two.");
        Name = Path.GetFullPath(path);
        if (!create && !File.Exists(Name)) throw new FileNotFoundException($"Storage file '{Name}' does not exist.", Name);
        _handle = File.OpenHandle(Name, create ? FileMode.OpenOrCreate : FileMode.Open, FileAccess.ReadWrite,
            FileShare.Read, FileOptions.RandomAccess);
        SectorSize = sectorSize;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public int SectorSize { get; }

    /// <inheritdoc />
    public long Length => RandomAccess.GetLength(_handle);

    /// <inheritdoc />
    public void Read(long offset, Span<byte> destination)
    {
        int total = 0;
        while (total < destination.Length)
        {
            int n = RandomAccess.Read(_handle, destination[total..], offset + total);
            if (n == 0) throw new CorruptIndexException(Name, offset + total, $"file is truncated: needed {destination.Length} bytes at offset {offset}");
            total += n;
        }
    }

    /// <inheritdoc />
    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        int total = 0;
        while (total < destination.Length)
        {
            int n = await RandomAccess.ReadAsync(_handle, destination[total..], offset + total, cancellationToken).ConfigureAwait(false);
            if (n == 0) throw new CorruptIndexException(Name, offset + total, $"file is truncated: needed {destination.Length} bytes at offset {offset}");
            total += n;
        }
    }

    /// <inheritdoc />
    public void Write(long offset, ReadOnlySpan<byte> source) => RandomAccess.Write(_handle, source, offset);

    /// <inheritdoc />
    public void Flush() => RandomAccess.FlushToDisk(_handle);

    /// <inheritdoc />
    public void SetLength(long length) => RandomAccess.SetLength(_handle, length);

    /// <inheritdoc />
    public DeviceMapping Map(long length)
    {
        long have = Length;
        if (length < 1 || length > have)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"Can map 1 .. {have} bytes of '{Name}'.");
        return new DeviceMapping(_handle, length);
    }

    /// <inheritdoc />
    public void Dispose() => _handle.Dispose();
}
