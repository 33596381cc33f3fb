using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Engine.Storage.Format;

/// <summary>CRC-32C (Castagnoli), hardware-accelerated through <see cref="BitOperations.Crc32C(uint, ulong)"/>.</summary>
public static class Crc32C
{
    /// <summary>Initial state to pass to <see cref="Append(uint, ReadOnlySpan{byte})"/>.</summary>
    public const uint Seed = 0xFFFFFFFFu;

    /// <summary>Continues a running CRC over <paramref name="data"/>; finish with <see cref="Finish"/>.</summary>
    public static uint Append(uint state, ReadOnlySpan<byte> data)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(data);
        // CRC-32C is defined over bytes in order; reading words little-endian keeps that order on every host.
        for (int i = 0; i < words.Length; i++) state = BitOperations.Crc32C(state, BinaryPrimitives.ReadUInt64LittleEndian(data.Slice(i * 8, 8)));
        for (int i = words.Length * 8; i < data.Length; i++) state = BitOperations.Crc32C(state, data[i]);
        return state;
    }

    /// <summary>Continues a running CRC over <paramref name="length"/> bytes at <paramref name="data"/> (any length).</summary>
    internal static unsafe uint Append(uint state, byte* data, long length)
    {
        const int Chunk = 1 << 30;
        for (long done = 0; done < length; done += Chunk)
            state = Append(state, new ReadOnlySpan<byte>(data + done, (int)Math.Min(Chunk, length - done)));
        return state;
    }

    /// <summary>Final xor of a running CRC.</summary>
    public static uint Finish(uint state) => state ^ 0xFFFFFFFFu;

    /// <summary>CRC-32C of a whole buffer.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(Seed, data));
}
