using System.Buffers;
using System.Text;
using System.Text.Json;
using ProxyCore.Http.Http2;
using ProxyCore.Http.Tests.Http1;
using ProxyCore.Http.Tests.Http1.Corpus;
using static ProxyCore.Http.Tests.Http2.Frames.FrameTestHelpers;

namespace ProxyCore.Http.Tests.Http2.Frames;

/// <summary>
/// Every case of <c>http2-frame-test-case</c>: normal cases decode to every listed field and re-encode
/// to the same wire; error cases fail with one of the listed codes.
/// </summary>
/// <remarks>
/// One deliberate difference: the corpus pads with text ("Howdy!"), our writer with zeros, as RFC 9113
/// §6.1 requires of a sender. The re-encoding is compared with the wire whose padding is zeroed, and
/// the padding itself is compared on the decode side.
/// </remarks>
public class FrameCorpusTests
{
    private const string Folder = "http2-frame-test-case";

    public static TheoryData<string> NormalCases() => Cases(error: false);

    public static TheoryData<string> ErrorCases() => Cases(error: true);

    private static TheoryData<string> Cases(bool error)
    {
        var data = new TheoryData<string>();
        var root = CorpusFiles.PathOf(Folder);
        foreach (var file in Directory.EnumerateFiles(root, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            using var json = JsonDocument.Parse(File.ReadAllText(file));
            if ((json.RootElement.GetProperty("error").ValueKind != JsonValueKind.Null) == error)
            {
                data.Add(Path.GetRelativePath(root, file).Replace('\\', '/'));
            }
        }
        return data;
    }

    private static JsonDocument Load(string name) => JsonDocument.Parse(File.ReadAllText(CorpusFiles.PathOf(Path.Combine(Folder, name))));

    [Fact]
    public void Corpus_HasAllThirtyFourCases()
    {
        // 12 normal + 22 error cases (corpus README); a missing folder must not pass as "no cases".
        Assert.Equal(12, NormalCases().Count);
        Assert.Equal(22, ErrorCases().Count);
    }

    [Theory]
    [MemberData(nameof(NormalCases))]
    public void TryReadFrame_CorpusNormalCase_DecodesEveryField(string name)
    {
        using var json = Load(name);
        var expected = json.RootElement.GetProperty("frame");
        var wire = Hex(json.RootElement.GetProperty("wire").GetString()!);

        var result = Read(wire);

        Assert.Equal(Http2ReadStatus.Frame, result.Status);
        Assert.Equal(wire.Length, result.Consumed);
        var frame = result.Frame;
        Assert.Equal(expected.GetProperty("length").GetInt32(), frame.PayloadLength);
        Assert.Equal(expected.GetProperty("type").GetInt32(), (int)frame.Type);
        Assert.Equal(expected.GetProperty("flags").GetInt32(), (int)frame.Flags);
        Assert.Equal(expected.GetProperty("stream_identifier").GetInt32(), frame.StreamId);
        ComparePayload(expected.GetProperty("frame_payload"), frame);
    }

    [Theory]
    [MemberData(nameof(NormalCases))]
    public void WriteFrame_CorpusNormalCase_ReencodesTheWire(string name)
    {
        using var json = Load(name);
        var wire = Hex(json.RootElement.GetProperty("wire").GetString()!);
        var frame = Read(wire).Frame;

        var written = Reencode(frame);

        Assert.Equal(Convert.ToHexString(WithZeroPadding(wire, frame.PadLength)), Convert.ToHexString(written));
    }

    [Theory]
    [MemberData(nameof(ErrorCases))]
    public void TryReadFrame_CorpusErrorCase_FailsWithAListedCode(string name)
    {
        using var json = Load(name);
        var wire = Hex(json.RootElement.GetProperty("wire").GetString()!);
        var allowed = json.RootElement.GetProperty("error").EnumerateArray().Select(e => (Http2ErrorCode)e.GetUInt32()).ToArray();

        var result = Read(wire);

        Assert.Equal(Http2ReadStatus.Error, result.Status);
        Assert.Contains(result.Error.Code, allowed);
        // Split anywhere, the frame fails the same way: the error does not depend on segment edges.
        for (int cut = 0; cut <= wire.Length; cut++)
        {
            var split = Read(TestBuffers.Split(wire, cut));
            Assert.Equal(Http2ReadStatus.Error, split.Status);
            Assert.Equal(result.Error, split.Error);
        }
    }

    private static void ComparePayload(JsonElement p, Http2Frame frame)
    {
        switch (frame.Type)
        {
            case Http2FrameType.DATA:
                Assert.Equal(p.GetProperty("data").GetString(), Ascii(frame.Data));
                ComparePadding(p, frame);
                break;
            case Http2FrameType.HEADERS:
                Assert.Equal(p.GetProperty("header_block_fragment").GetString(), Ascii(frame.HeaderBlockFragment));
                ComparePadding(p, frame);
                ComparePriority(p, frame);
                break;
            case Http2FrameType.PRIORITY:
                ComparePriority(p, frame);
                break;
            case Http2FrameType.RST_STREAM:
                Assert.Equal(p.GetProperty("error_code").GetUInt32(), (uint)frame.ErrorCode);
                break;
            case Http2FrameType.SETTINGS:
                var expected = p.GetProperty("settings").EnumerateArray()
                    .Select(s => new Http2Setting((Http2SettingsParameter)s[0].GetUInt16(), s[1].GetUInt32())).ToList();
                var actual = new List<Http2Setting>();
                foreach (var setting in frame.Settings)
                {
                    actual.Add(setting);
                }
                Assert.Equal(expected, actual);
                Assert.Equal(expected.Count, frame.SettingsCount);
                break;
            case Http2FrameType.PUSH_PROMISE:
                Assert.Equal(p.GetProperty("header_block_fragment").GetString(), Ascii(frame.HeaderBlockFragment));
                Assert.Equal(p.GetProperty("promised_stream_id").GetInt32(), frame.PromisedStreamId);
                ComparePadding(p, frame);
                break;
            case Http2FrameType.PING:
                var opaque = new byte[8];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(opaque, frame.PingOpaqueData);
                Assert.Equal(p.GetProperty("opaque_data").GetString(), Encoding.ASCII.GetString(opaque));
                break;
            case Http2FrameType.GOAWAY:
                Assert.Equal(p.GetProperty("last_stream_id").GetInt32(), frame.LastStreamId);
                Assert.Equal(p.GetProperty("error_code").GetUInt32(), (uint)frame.ErrorCode);
                Assert.Equal(p.GetProperty("additional_debug_data").GetString(), Ascii(frame.DebugData));
                break;
            case Http2FrameType.WINDOW_UPDATE:
                Assert.Equal(p.GetProperty("window_size_increment").GetInt32(), frame.WindowSizeIncrement);
                break;
            case Http2FrameType.CONTINUATION:
                Assert.Equal(p.GetProperty("header_block_fragment").GetString(), Ascii(frame.HeaderBlockFragment));
                break;
            default:
                Assert.Fail($"unexpected type {frame.Type}");
                break;
        }
    }

    /// <summary><c>padding_length</c>/<c>padding</c> null (or absent) means not padded.</summary>
    private static void ComparePadding(JsonElement p, Http2Frame frame)
    {
        var length = p.GetProperty("padding_length");
        if (length.ValueKind == JsonValueKind.Null)
        {
            Assert.False(frame.IsPadded);
            Assert.Equal(0, frame.PadLength);
            return;
        }
        Assert.True(frame.IsPadded);
        Assert.Equal(length.GetInt32(), frame.PadLength);
        Assert.Equal(p.GetProperty("padding").GetString(), Ascii(frame.Padding));
    }

    private static void ComparePriority(JsonElement p, Http2Frame frame)
    {
        var dependency = p.GetProperty("stream_dependency");
        if (dependency.ValueKind == JsonValueKind.Null)
        {
            Assert.False(frame.HasPriority);
            return;
        }
        Assert.True(frame.HasPriority);
        // The corpus lists the weight as RFC 9113 reads it, 1..256 (the wire octet plus one).
        Assert.Equal(new Http2Priority(dependency.GetInt32(), p.GetProperty("exclusive").GetBoolean(), p.GetProperty("weight").GetInt32()),
            frame.Priority);
    }

    private static string Ascii(in ReadOnlySequence<byte> bytes) => Encoding.ASCII.GetString(bytes.ToArray());
}
