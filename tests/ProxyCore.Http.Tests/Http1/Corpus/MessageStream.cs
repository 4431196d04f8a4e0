using System.Buffers;
using System.Text;
using ProxyCore.Http.Http1;
using static ProxyCore.Http.Tests.Http1.TestBuffers;

namespace ProxyCore.Http.Tests.Http1.Corpus;

/// <summary>How a run over a byte stream of messages ended.</summary>
internal enum StreamOutcome
{
    /// <summary>Every byte belonged to complete messages.</summary>
    Complete,
    /// <summary>The input ended inside a message (or inside a close-delimited body with no EOF).</summary>
    Incomplete,
    /// <summary>A head or chunked body was rejected.</summary>
    Error,
    /// <summary>A message said Connection: close (or was HTTP/1.0 without keep-alive) and bytes followed it.</summary>
    DataAfterClose,
    /// <summary>An upgrade or CONNECT: the rest of the bytes belong to another protocol.</summary>
    Upgrade,
}

internal sealed class ParsedMessage
{
    public string Method = "";
    public string Target = "";
    public int Status;
    public HttpVersion Version;
    public readonly List<(string Name, string Value)> Headers = [];
    public long ContentLength = -1;
    public BodyFraming Framing;
    public bool KeepAlive;
    public bool IsUpgrade;
    public readonly StringBuilder Body = new();
    public readonly List<int> ChunkLengths = [];
    public readonly List<(string Name, string Value)> Trailers = [];
    public bool Complete;
    /// <summary>The test added a Host field because the message had none (see <see cref="MessageStream"/>).</summary>
    public bool HostInjected;
}

internal sealed record StreamResult(StreamOutcome Outcome, HttpParseError Error, List<ParsedMessage> Messages);

/// <summary>
/// Plays the connection loop over a recorded byte stream: head, body by its framing, next message.
/// </summary>
internal static class MessageStream
{
    public const string InjectedHost = "Host: corpus.test\r\n";

    /// <param name="injectMissingHost">
    /// Corpora written for general parsers send HTTP/1.1 requests without Host, which RFC 9112 §3.2
    /// makes a 400. When set, a request rejected only for <see cref="HttpParseError.MissingHost"/>
    /// is parsed again with a Host line added after its request line, so the rest of the case still
    /// tests us; the message is marked <see cref="ParsedMessage.HostInjected"/>.
    /// </param>
    /// <param name="skipBody">Ignore body framing (llhttp's "skip body" callback result).</param>
    public static StreamResult Run(byte[] input, bool isRequest, HttpMethod requestMethod = HttpMethod.Get,
        bool eofEndsBody = true, bool injectMissingHost = true, bool skipBody = false)
    {
        var messages = new List<ParsedMessage>();
        int pos = 0;
        while (pos < input.Length)
        {
            var msg = new ParsedMessage();
            var rest = input.AsSpan(pos).ToArray();
            HttpHead head;
            Http1ParseResult result;
            HttpParseError error;
            long consumed;
            if (isRequest)
            {
                var r = ParseRequest(Single(rest));
                if (r.Result == Http1ParseResult.Error && r.Error == HttpParseError.MissingHost && injectMissingHost)
                {
                    int skipped = 0;
                    while (rest.AsSpan(skipped).StartsWith("\r\n"u8))
                    {
                        skipped += 2;
                    }
                    int lineEnd = skipped + rest.AsSpan(skipped).IndexOf("\r\n"u8) + 2;
                    var patched = rest[..lineEnd].Concat(Encoding.ASCII.GetBytes(InjectedHost)).Concat(rest[lineEnd..]).ToArray();
                    r = ParseRequest(Single(patched));
                    if (r.Result == Http1ParseResult.Complete)
                    {
                        r.Consumed -= InjectedHost.Length;
                        msg.HostInjected = true;
                    }
                }
                (result, error, consumed, head) = (r.Result, r.Error, r.Consumed, r.Head);
                if (result == Http1ParseResult.Complete)
                {
                    var req = (RequestHead)head;
                    msg.Method = Text(req.MethodSpan);
                    var line = req.ArenaSpan[..req.ArenaSpan.IndexOf("\r\n"u8)];
                    int sp1 = line.IndexOf((byte)' ');
                    int sp2 = line.LastIndexOf((byte)' ');
                    msg.Target = Text(line[(sp1 + 1)..sp2]);
                    msg.IsUpgrade = req.IsUpgrade || req.Method == HttpMethod.Connect;
                }
            }
            else
            {
                var r = ParseResponse(Single(rest), requestMethod);
                (result, error, consumed, head) = (r.Result, r.Error, r.Consumed, r.Head);
                if (result == Http1ParseResult.Complete)
                {
                    msg.Status = r.Head.StatusCode;
                    msg.IsUpgrade = r.Head.StatusCode == 101;
                }
            }

            if (result == Http1ParseResult.Incomplete)
            {
                if (rest.All(b => b is (byte)'\r' or (byte)'\n'))
                {
                    // Only empty lines left: they are skipped before a next request, not a message.
                    return new StreamResult(StreamOutcome.Complete, HttpParseError.None, messages);
                }
                return new StreamResult(StreamOutcome.Incomplete, HttpParseError.None, messages);
            }
            if (result == Http1ParseResult.Error)
            {
                return new StreamResult(StreamOutcome.Error, error, messages);
            }

            messages.Add(msg);
            msg.Version = head.Version;
            msg.ContentLength = head.ContentLength;
            msg.Framing = head.Framing;
            msg.KeepAlive = head.KeepAlive;
            for (int i = 0; i < head.HeaderCount; i++)
            {
                var name = Text(head.GetName(i));
                if (!(msg.HostInjected && i == 0))
                {
                    msg.Headers.Add((name, Text(head.GetValue(i))));
                }
            }
            pos += (int)consumed;

            switch (skipBody ? BodyFraming.None : head.Framing)
            {
                case BodyFraming.ContentLength:
                    if (input.Length - pos < head.ContentLength)
                    {
                        msg.Body.Append(Text(input.AsSpan(pos)));
                        return new StreamResult(StreamOutcome.Incomplete, HttpParseError.None, messages);
                    }
                    msg.Body.Append(Text(input.AsSpan(pos, (int)head.ContentLength)));
                    pos += (int)head.ContentLength;
                    break;
                case BodyFraming.Chunked:
                {
                    var decoder = new ChunkedDecoder();
                    var trailers = new ResponseHead();
                    trailers.Reset();
                    var buffer = new ReadOnlySequence<byte>(input, pos, input.Length - pos);
                    while (true)
                    {
                        var r = decoder.Read(buffer, trailers, Http1Limits.Default, out var data, out var used, out var chunkError);
                        pos += (int)buffer.Slice(buffer.Start, used).Length;
                        buffer = buffer.Slice(used);
                        if (r == ChunkedReadResult.Data)
                        {
                            msg.Body.Append(Text(data.ToArray()));
                            msg.ChunkLengths.Add((int)data.Length);
                            continue;
                        }
                        if (r == ChunkedReadResult.Error)
                        {
                            return new StreamResult(StreamOutcome.Error, chunkError, messages);
                        }
                        if (r == ChunkedReadResult.Incomplete)
                        {
                            return new StreamResult(StreamOutcome.Incomplete, HttpParseError.None, messages);
                        }
                        for (int i = 0; i < trailers.HeaderCount; i++)
                        {
                            msg.Trailers.Add((Text(trailers.GetName(i)), Text(trailers.GetValue(i))));
                        }
                        break;
                    }
                    break;
                }
                case BodyFraming.CloseDelimited:
                    msg.Body.Append(Text(input.AsSpan(pos)));
                    pos = input.Length;
                    if (!eofEndsBody)
                    {
                        return new StreamResult(StreamOutcome.Incomplete, HttpParseError.None, messages);
                    }
                    break;
            }
            msg.Complete = true;

            if (msg.IsUpgrade)
            {
                return new StreamResult(StreamOutcome.Upgrade, HttpParseError.None, messages);
            }
            if (!head.KeepAlive && pos < input.Length)
            {
                return new StreamResult(StreamOutcome.DataAfterClose, HttpParseError.None, messages);
            }
        }
        return new StreamResult(StreamOutcome.Complete, HttpParseError.None, messages);
    }
}
