using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace ProxyCore.Http.Http2;

/// <summary>
/// Walks the entries of a SETTINGS payload in wire order without allocating; use it with <c>foreach</c>.
/// Identifiers unknown to <see cref="Http2SettingsParameter"/> are yielded too: §6.5.2 says the
/// receiver "MUST ignore that setting", which is the consumer's switch falling through.
/// </summary>
/// <remarks>
/// RFC 9113 §6.5.1:
/// <code>
/// Setting {
///   Identifier (16),
///   Value (32),
/// }
/// </code>
/// </remarks>
public struct Http2SettingsEnumerator
{
    private readonly ReadOnlySequence<byte> _entries;
    private int _offset;
    private Http2Setting _current;

    internal Http2SettingsEnumerator(in ReadOnlySequence<byte> entries)
    {
        _entries = entries;
        _offset = -Http2FrameReader.SettingLength;
        _current = default;
    }

    public readonly Http2SettingsEnumerator GetEnumerator() => this;

    public readonly Http2Setting Current => _current;

    public bool MoveNext()
    {
        int next = _offset + Http2FrameReader.SettingLength;
        if (next + Http2FrameReader.SettingLength > _entries.Length)
        {
            return false;
        }
        _offset = next;
        var first = _entries.FirstSpan;
        _current = first.Length >= next + Http2FrameReader.SettingLength
            ? Decode(first.Slice(next, Http2FrameReader.SettingLength))
            : DecodeMultiSegment(_entries, next);
        return true;
    }

    internal static Http2Setting Decode(ReadOnlySpan<byte> entry) =>
        new((Http2SettingsParameter)BinaryPrimitives.ReadUInt16BigEndian(entry), BinaryPrimitives.ReadUInt32BigEndian(entry[2..]));

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static Http2Setting DecodeMultiSegment(in ReadOnlySequence<byte> entries, long offset)
    {
        Span<byte> entry = stackalloc byte[Http2FrameReader.SettingLength];
        entries.Slice(offset, Http2FrameReader.SettingLength).CopyTo(entry);
        return Decode(entry);
    }
}
