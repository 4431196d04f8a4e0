using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace ProxyCore.Llm.Sse;

/// <summary>
/// A growable byte buffer kept across events and reused: it grows by doubling and never shrinks, so
/// after the first few events of a stream appending allocates nothing. A mutable struct: keep it in a
/// field and call it through that field.
/// </summary>
internal struct SseByteBuffer
{
#if DEBUG
    // Buffer edges are the common case: tiny in DEBUG so every test runs the growth path.
    internal const int InitialSize = 16;
#else
    internal const int InitialSize = 256;
#endif

    private byte[]? _array;
    private int _length;

    public readonly int Length => _length;

    public readonly ReadOnlySpan<byte> Span => _array is null ? default : _array.AsSpan(0, _length);

    public void Clear() => _length = 0;

    public void Set(ReadOnlySpan<byte> value)
    {
        _length = 0;
        Append(value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Append(ReadOnlySpan<byte> value)
    {
        if (_array is null || _array.Length - _length < value.Length)
        {
            Grow(value.Length);
        }
        value.CopyTo(_array.AsSpan(_length));
        _length += value.Length;
    }

    public void Append(byte value)
    {
        if (_array is null || _array.Length == _length)
        {
            Grow(1);
        }
        _array[_length++] = value;
    }

    /// <summary>Room for at least <paramref name="sizeHint"/> more bytes at the end; commit them with <see cref="Advance"/>.</summary>
    public Span<byte> GetSpan(int sizeHint)
    {
        if (_array is null || _array.Length - _length < sizeHint)
        {
            Grow(sizeHint);
        }
        return _array.AsSpan(_length);
    }

    public void Advance(int count)
    {
        Debug.Assert(_array is not null && count <= _array.Length - _length);
        _length += count;
    }

    /// <summary>Drops the first <paramref name="count"/> bytes, keeping the rest at the start.</summary>
    public void RemovePrefix(int count)
    {
        Debug.Assert(count <= _length);
        if (_array is not null)
        {
            _array.AsSpan(count, _length - count).CopyTo(_array);
        }
        _length -= count;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    [MemberNotNull(nameof(_array))]
    private void Grow(int extra)
    {
        int needed = checked(_length + extra);
        int size = Math.Max(InitialSize, _array?.Length ?? 0);
        while (size < needed)
        {
            size = size > int.MaxValue / 2 ? needed : size * 2;
        }
        var bigger = new byte[size];
        if (_array is not null)
        {
            _array.AsSpan(0, _length).CopyTo(bigger);
        }
        _array = bigger;
        Debug.Assert(_array.Length - _length >= extra);
    }
}
