using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Engine.Storage.Format;

/// <summary>CRC-32C (Castagnoli), hardware-accelerated through <see cref="BitOperations.Crc32C(uint, ulong)"/>.</summary>
public static class Crc32C
{
    /// <summary>Initial state to pass to <see cref="Append"/>.</summary>
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

    /// <summary>Final xor of a running CRC.</summary>
    public static uint Finish(uint state) => state ^ 0xFFFFFFFFu;

    /// <summary>CRC-32C of a whole buffer.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(Seed, data));
}
