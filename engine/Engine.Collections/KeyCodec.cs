using System.Buffers.Binary;
using System.Text;

namespace Engine.Collections;

/// <summary>Key types of collections and their byte encodings (UTF-8, 16-byte Guid, little-endian integers).</summary>
internal static class KeyCodec
{
    public static string NameOf(Type t) =>
        t == typeof(string) ? "string" : t == typeof(Guid) ? "guid" : t == typeof(int) ? "int32" : t == typeof(long) ? "int64"
        : throw new ArgumentException($"Key type {t.Name} is not supported: use string, Guid, int or long.", "keyType");

    public static Type TypeOf(string name) => name switch
    {
        "string" => typeof(string),
        "guid" => typeof(Guid),
        "int32" => typeof(int),
        "int64" => typeof(long),
        _ => throw new ArgumentException($"Key type '{name}' is not supported: use string, Guid, int or long.", "keyType"),
    };

    public static byte[] Encode<TKey>(TKey key) where TKey : notnull
    {
        switch (key)
        {
            case string s:
                return Encoding.UTF8.GetBytes(s);
            case Guid g:
                return g.ToByteArray();
            case int i:
            {
                var b = new byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(b, i);
                return b;
            }
            case long l:
            {
                var b = new byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(b, l);
                return b;
            }
            default:
                throw new ArgumentException($"Key type {key.GetType().Name} is not supported.", nameof(key));
        }
    }

    public static TKey Decode<TKey>(ReadOnlySpan<byte> bytes) where TKey : notnull
    {
        object k;
        if (typeof(TKey) == typeof(string)) k = Encoding.UTF8.GetString(bytes);
        else if (typeof(TKey) == typeof(Guid)) k = new Guid(bytes);
        else if (typeof(TKey) == typeof(int)) k = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        else k = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        return (TKey)k;
    }
}
