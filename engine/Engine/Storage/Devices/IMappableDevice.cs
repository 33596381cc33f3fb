using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;

namespace Engine.Storage.Devices;

/// <summary>
/// A device whose bytes can also be read in place through a read-only memory mapping (a file): readers of
/// immutable, scattered records (a refine file) then skip a system call and a copy per record.
/// </summary>
public interface IMappableDevice : IStorageDevice
{
    /// <summary>
    /// Maps the first <paramref name="length"/> bytes read-only. The mapping stays valid until disposed, also while
    /// the device grows; bytes written into the mapped range afterwards are visible through it (shared page cache).
    /// The device must not shrink below <paramref name="length"/> while the mapping is alive.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is not in 1 .. <see cref="IStorageDevice.Length"/>.</exception>
    DeviceMapping Map(long length);
}

/// <summary>A read-only memory mapping of a device's first <see cref="Length"/> bytes (<see cref="IMappableDevice.Map"/>).</summary>
public sealed unsafe class DeviceMapping : IDisposable
{
    private MemoryMappedFile? _file;
    private MemoryMappedViewAccessor? _view;
    private byte* _pointer;

    /// <summary>Maps the first <paramref name="length"/> (≥ 1) bytes of the file behind <paramref name="handle"/>;
    /// <paramref name="ownsHandle"/> closes the handle with the mapping.</summary>
    internal DeviceMapping(SafeFileHandle handle, long length, bool ownsHandle = false)
    {
        Length = length;
        try
        {
            _file = MemoryMappedFile.CreateFromFile(handle, null, length, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: !ownsHandle);
            _view = _file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _pointer = p + _view.PointerOffset;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Bytes mapped.</summary>
    public long Length { get; }

    /// <summary>The first mapped byte (null once disposed).</summary>
    internal byte* Pointer => _pointer;

    /// <summary>The mapped bytes [offset, offset + count).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the mapping.</exception>
    /// <exception cref="ObjectDisposedException">The mapping was disposed.</exception>
    public ReadOnlySpan<byte> Read(long offset, int count)
    {
        ObjectDisposedException.ThrowIf(_pointer is null, this);
        if (offset < 0 || count < 0 || offset > Length - count)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"[{offset}, {offset}+{count}) is not inside the {Length}-byte mapping.");
        return new ReadOnlySpan<byte>(_pointer + offset, count);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_pointer is not null) { _view!.SafeMemoryMappedViewHandle.ReleasePointer(); _pointer = null; }
        _view?.Dispose();
        _view = null;
        _file?.Dispose();
        _file = null;
    }
}
