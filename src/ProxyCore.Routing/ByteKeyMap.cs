using System.Runtime.CompilerServices;
using System.Text;

namespace ProxyCore.Routing;

/// <summary>
/// A read-only hash map from ASCII keys to values, looked up by a byte span ignoring ASCII case,
/// without allocating. Built once per snapshot; open addressing at a load factor of at most 1/2.
/// </summary>
internal sealed class ByteKeyMap<T> where T : class
{
    private readonly byte[]?[] _keys;
    private readonly T?[] _values;
    private readonly int _mask;

    public ByteKeyMap(IReadOnlyCollection<KeyValuePair<string, T>> entries)
    {
        int capacity = 4;
        while (capacity < entries.Count * 2)
        {
            capacity *= 2;
        }
        _keys = new byte[capacity][];
        _values = new T[capacity];
        _mask = capacity - 1;
        foreach (var (key, value) in entries)
        {
            var bytes = Encoding.ASCII.GetBytes(key.ToLowerInvariant());
            int slot = (int)(Hash(bytes) & (uint)_mask);
            while (_keys[slot] is not null)
            {
                slot = (slot + 1) & _mask;
            }
            _keys[slot] = bytes;
            _values[slot] = value;
            Count++;
        }
    }

    public int Count { get; }

    public T? Find(ReadOnlySpan<byte> key)
    {
        int slot = (int)(Hash(key) & (uint)_mask);
        while (true)
        {
            var candidate = _keys[slot];
            if (candidate is null)
            {
                return null;
            }
            if (System.Text.Ascii.EqualsIgnoreCase(candidate, key))
            {
                return _values[slot];
            }
            slot = (slot + 1) & _mask;
        }
    }

    /// <summary>FNV-1a over ASCII-lower-cased bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(ReadOnlySpan<byte> key)
    {
        uint hash = 2166136261;
        foreach (byte b in key)
        {
            uint lower = (uint)(b - 'A') <= 'Z' - 'A' ? (uint)(b | 0x20) : b;
            hash = (hash ^ lower) * 16777619;
        }
        return hash;
    }
}
