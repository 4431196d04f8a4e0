using ProxyCore.Proxy.Relay;
using static ProxyCore.Proxy.Tests.Relay.RelayHarness;

namespace ProxyCore.Proxy.Tests.Relay;

public sealed class HttpForwarderTests
{
    private static string HeadOf(string message) => message[..(message.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)];

    [Fact]
    public async Task RequestHead_HopByHopRemoved_ForwardingHeadersAdded_OthersKeptInOrder()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET /a/b?c=d HTTP/1.1\r\nHost: example.test\r\nX-One: 1\r\nConnection: keep-alive, x-hop\r\n" +
                                "X-Hop: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n" +
                                "Upgrade: h2c\r\nX-Forwarded-For: 198.51.100.1\r\nVia: 1.0 edge\r\nX-Two: 2\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        string head = await ReadUntilAsync(upstream, "\r\n\r\n");
        Assert.Equal(
            "GET /a/b?c=d HTTP/1.1\r\nhost: example.test\r\nX-One: 1\r\nX-Two: 2\r\n" +
            "x-forwarded-for: 198.51.100.1, 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: example.test\r\n" +
            "via: 1.0 edge, 1.1 proxycore\r\nte: trailers\r\n\r\n", head);
        await SendAsync(upstream, "HTTP/1.1 204 No Content\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 204 No Content\r\n", await ReadUntilAsync(client, "\r\n\r\n"));
    }

    [Fact]
    public async Task ResponseHead_HopByHopRemoved_ViaAdded_ContentLengthKept()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        await ReadUntilAsync(upstream, "\r\n\r\n");
        await SendAsync(upstream, "HTTP/1.1 200 Fine\r\nConnection: x-internal\r\nX-Internal: 1\r\nKeep-Alive: timeout=4\r\nContent-Length: 3\r\nX-App: y\r\n\r\nabc");
        string response = await ReadUntilAsync(client, "abc");
        Assert.Equal("HTTP/1.1 200 Fine\r\nX-App: y\r\nvia: 1.1 proxycore\r\ncontent-length: 3\r\n\r\nabc", response);
    }

    [Fact]
    public async Task CloseDelimitedUpstreamBody_ReachesAnHttp11ClientChunked_AndTheClientConnectionStaysOpen()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        await ReadUntilAsync(upstream, "\r\n\r\n");
        await SendAsync(upstream, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello ");
        await SendAsync(upstream, "world");
        await upstream.Transport.Output.CompleteAsync();
        string response = await ReadUntilAsync(client, "0\r\n\r\n");
        Assert.Contains("transfer-encoding: chunked\r\n", response);
        Assert.EndsWith("\r\n0\r\n\r\n", response);
        Assert.Contains("hello ", response);
        Assert.Contains("world", response);

        // Same client connection, next request: served on a fresh upstream connection.
        await SendAsync(client, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        var upstream2 = await relay.AcceptUpstreamAsync();
        Assert.StartsWith("GET /next ", await ReadUntilAsync(upstream2, "\r\n\r\n"));
    }

    [Fact]
    public async Task ChunkedUpstreamBody_WithTrailers_IsRelayedWithTrailers_ForbiddenTrailersDropped()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        await ReadUntilAsync(upstream, "\r\n\r\n");
        await SendAsync(upstream, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\ngrpc-status: 0\r\nContent-Length: 9\r\n\r\n");
        string response = await ReadUntilAsync(client, "0\r\ngrpc-status: 0\r\n\r\n");
        Assert.EndsWith("5\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n", response);
        // The upstream connection ended cleanly: it went back to the pool.
        Assert.Equal(1, await relay.UpstreamIdleAsync(1));
    }

    [Fact]
    public async Task Http10Client_GetsAStreamedBodyCloseDelimited()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET / HTTP/1.0\r\nHost: a\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        await ReadUntilAsync(upstream, "\r\n\r\n");
        await SendAsync(upstream, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        string response = await ReadToEndAsync(client);
        Assert.DoesNotContain("transfer-encoding", response, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("connection: close\r\n", response);
        Assert.EndsWith("\r\n\r\nabc<<eof>>", response);
    }

    [Fact]
    public async Task UpstreamCutsTheBody_ClientConnectionIsAbortedNotEndedCleanly()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        await ReadUntilAsync(upstream, "\r\n\r\n");
        await SendAsync(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part");
        await upstream.Transport.Output.CompleteAsync();
        // An abort, not a clean end: the client must never take a cut body for a whole one.
        string response = await ReadToEndAsync(client);
        Assert.EndsWith("<<reset>>", response);
        Assert.Equal(0, relay.UpstreamIdle);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n")]
    [InlineData("HTTP/1.1 2x0 OK\r\n\r\n")]
    [InlineData("garbage\r\n\r\n")]
    public async Task MalformedUpstreamHead_Returns502(string upstreamHead)
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        await ReadUntilAsync(upstream, "\r\n\r\n");
        await SendAsync(upstream, upstreamHead);
        string response = await ReadUntilAsync(client, "\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\n", response);
        Assert.Contains("proxycore-error: upstream-protocol-error\r\n", response);
    }

    [Fact]
    public async Task UpstreamClosesWithoutAnswer_OnAFreshConnection_Returns502()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        await ReadUntilAsync(upstream, "\r\n\r\n");
        await upstream.Transport.Output.CompleteAsync();
        string response = await ReadUntilAsync(client, "\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\n", response);
        Assert.Contains("proxycore-error: upstream-closed\r\n", response);
    }

    [Fact]
    public async Task StalePooledConnection_RequestIsRetriedOnAFreshOne()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
        var first = await relay.AcceptUpstreamAsync();
        await ReadUntilAsync(first, "\r\n\r\n");
        await SendAsync(first, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
        await ReadUntilAsync(client, "\r\n\r\n1");
        Assert.Equal(1, await relay.UpstreamIdleAsync(1));

        // The upstream drops the idle connection after reading our next request (the keep-alive race).
        await SendAsync(client, "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
        await ReadUntilAsync(first, "\r\n\r\n");
        first.Abort();
        var second = await relay.AcceptUpstreamAsync();
        Assert.StartsWith("GET /2 HTTP/1.1\r\n", await ReadUntilAsync(second, "\r\n\r\n"));
        await SendAsync(second, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2");
        Assert.StartsWith("HTTP/1.1 200 OK", await ReadUntilAsync(client, "\r\n\r\n2"));
    }

    [Fact]
    public async Task ChunkedRequestBody_IsReframedAndTrailersForwarded()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        string received = await ReadUntilAsync(upstream, "abc\r\n");
        Assert.Contains("transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n", received);
        await SendAsync(client, "2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n");
        received = await ReadUntilAsync(upstream, "0\r\nx-sum: 5\r\n\r\n");
        Assert.Equal("2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n", received);
        await SendAsync(upstream, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 201 Created", await ReadUntilAsync(client, "\r\n\r\n"));
    }

    [Fact]
    public async Task UpstreamAnswersBeforeReadingTheBody_ClientGetsTheAnswerAndTheConnectionCloses()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nfirst-bytes");
        var upstream = await relay.AcceptUpstreamAsync();
        await ReadUntilAsync(upstream, "first-bytes");
        await SendAsync(upstream, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!");
        await upstream.Transport.Output.CompleteAsync();
        // The client is still "uploading" (it never sends the rest): it gets the answer, then a close.
        string response = await ReadToEndAsync(client);
        Assert.StartsWith("HTTP/1.1 413 Content Too Large\r\n", response);
        Assert.EndsWith("\r\n\r\nbig!<<eof>>", response);
    }

    [Fact]
    public async Task Interim103_IsRelayed_Then200()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        await ReadUntilAsync(upstream, "\r\n\r\n");
        await SendAsync(upstream, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        string response = await ReadUntilAsync(client, "\r\n\r\nok");
        Assert.StartsWith("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n", response);
    }

    [Fact]
    public async Task SlowUpstream_Returns504AfterTheRouteTimeout()
    {
        await using var relay = new RelayHarness(routeTimeout: TimeSpan.FromMilliseconds(200));
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        await ReadUntilAsync(upstream, "\r\n\r\n");
        string response = await ReadUntilAsync(client, "\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 504 Gateway Timeout\r\n", response);
        // The exchange is counted just after its answer is written: the client may read it first.
        for (int i = 0; i < 2000 && relay.Metrics.RequestCount("r", 504) == 0; i++)
        {
            await Task.Delay(10);
        }
        Assert.Equal(1, relay.Metrics.RequestCount("r", 504));
    }

    [Fact]
    public async Task Connect_AuthorityForm_BecomesATunnelOnlyAfterThe2xx()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        Assert.StartsWith("CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\n", await ReadUntilAsync(upstream, "\r\n\r\n"));
        await SendAsync(upstream, "HTTP/1.1 200 Connection Established\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 Connection Established\r\n", await ReadUntilAsync(client, "\r\n\r\n"));

        // From here on, opaque bytes both ways: not HTTP, never parsed.
        await SendAsync(client, "\u0001binary-from-client");
        Assert.Equal("\u0001binary-from-client", await ReadUntilAsync(upstream, "client"));
        await SendAsync(upstream, "GET / HTTP/1.1 (not a request, just bytes)");
        Assert.Equal("GET / HTTP/1.1 (not a request, just bytes)", await ReadUntilAsync(client, "bytes)"));
        await upstream.Transport.Output.CompleteAsync();
        Assert.EndsWith("<<eof>>", await ReadToEndAsync(client));
    }

    [Fact]
    public async Task UpgradeRequest_UpstreamDeclines_IsAnOrdinaryResponse_AndNoTunnel()
    {
        await using var relay = new RelayHarness();
        var client = await relay.ConnectClientAsync();
        await SendAsync(client, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
        var upstream = await relay.AcceptUpstreamAsync();
        string head = await ReadUntilAsync(upstream, "\r\n\r\n");
        Assert.Contains("connection: upgrade\r\nupgrade: websocket\r\n", head);
        await SendAsync(upstream, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno");
        Assert.EndsWith("\r\n\r\nno", await ReadUntilAsync(client, "\r\n\r\nno"));
        // The connection is still HTTP: a next request is parsed and forwarded as one.
        await SendAsync(client, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
        Assert.StartsWith("GET /next HTTP/1.1", await ReadUntilAsync(upstream, "\r\n\r\n"));
    }

    [Theory]
    [InlineData(ForwarderError.NoRoute, 404, "no-route")]
    [InlineData(ForwarderError.NoDestination, 503, "no-healthy-destination")]
    [InlineData(ForwarderError.ConnectFailed, 502, "upstream-connect-failed")]
    [InlineData(ForwarderError.ConnectTimeout, 504, "upstream-connect-timeout")]
    [InlineData(ForwarderError.UpstreamTimeout, 504, "upstream-timeout")]
    [InlineData(ForwarderError.UpstreamProtocol, 502, "upstream-protocol-error")]
    [InlineData(ForwarderError.RequestBody, 400, "invalid-request-body")]
    [InlineData(ForwarderError.RequestBodyTooLarge, 413, "request-body-too-large")]
    public void ErrorContract_MapsEachErrorToItsStatusAndReason(ForwarderError error, int status, string reason)
    {
        Assert.Equal(status, ForwarderErrors.StatusCode(error));
        Assert.Equal(reason, ForwarderErrors.Reason(error));
    }
}
