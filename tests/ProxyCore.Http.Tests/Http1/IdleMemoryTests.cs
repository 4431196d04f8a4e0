using System.Buffers;
using System.Diagnostics;
using System.Text;
using ProxyCore.Http.Http1;
using ProxyCore.Transport;

namespace ProxyCore.Http.Tests.Http1;

/// <summary>
/// A keep-alive connection gives its head buffers and relay state back (<see cref="IIdleAware.OnIdle"/>) once it has
/// waited <see cref="Http1ConnectionOptions.IdleMemoryDelay"/> for the next request, not before every wait; and the
/// keep-alive timeout still counts from the end of the last answer, whatever the first stage did.
/// </summary>
public class IdleMemoryTests
{
    private static readonly byte[] s_request = "GET / HTTP/1.1\r\nHost: t\r\n\r\n"u8.ToArray();

    [Fact]
    public async Task RequestsBackToBack_WithinTheDelay_NeverGiveMemoryBack()
    {
        var options = new Http1ConnectionOptions { IdleMemoryDelay = TimeSpan.FromSeconds(5) }; // far longer than the test's gaps
        await using var rig = await Rig.StartAsync(options);
        for (int i = 0; i < 20; i++)
        {
            await rig.RoundTripAsync();
        }
        Assert.Equal(0, rig.App.Idles);
    }

    [Fact]
    public async Task IdlePastTheDelay_GivesMemoryBackOnce_AndTheConnectionStillServes()
    {
        var options = new Http1ConnectionOptions { IdleMemoryDelay = TimeSpan.FromMilliseconds(50) };
        await using var rig = await Rig.StartAsync(options);
        await rig.RoundTripAsync();
        await WaitForAsync(() => rig.App.Idles == 1);
        await Task.Delay(300);
        Assert.Equal(1, rig.App.Idles); // once per wait, not once per timer tick

        await rig.RoundTripAsync(); // the second stage kept the connection open and reading
        await WaitForAsync(() => rig.App.Idles == 2);
    }

    [Fact]
    public async Task ZeroDelay_GivesMemoryBackBeforeEveryWait()
    {
        var options = new Http1ConnectionOptions { IdleMemoryDelay = TimeSpan.Zero };
        await using var rig = await Rig.StartAsync(options);
        for (int i = 0; i < 5; i++)
        {
            await rig.RoundTripAsync();
        }
        await WaitForAsync(() => rig.App.Idles >= 5);
    }

    [Fact]
    public async Task KeepAliveTimeout_CountsFromTheAnswer_NotFromTheFirstStage()
    {
        var keepAlive = TimeSpan.FromMilliseconds(600);
        var options = new Http1ConnectionOptions { KeepAliveTimeout = keepAlive, IdleMemoryDelay = TimeSpan.FromMilliseconds(200) };
        await using var rig = await Rig.StartAsync(options);
        await rig.RoundTripAsync();
        var clock = Stopwatch.StartNew();
        var input = rig.Client.Transport.Input;
        while (true)
        {
            var result = await input.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }
        clock.Stop();
        Assert.Equal(1, rig.App.Idles);
        Assert.True(clock.Elapsed >= keepAlive - TimeSpan.FromMilliseconds(20), $"closed after {clock.Elapsed.TotalMilliseconds} ms, before the keep-alive timeout");
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition never held");
            await Task.Delay(10);
        }
    }

    private sealed class Rig : IAsyncDisposable
    {
        private readonly InMemoryTransport _transport = new();
        private readonly CancellationTokenSource _stopping = new();
        private Task? _serving;

        public App App { get; } = new();

        public ConnectionContext Client { get; private set; } = null!;

        public static async Task<Rig> StartAsync(Http1ConnectionOptions options)
        {
            var rig = new Rig();
            var accept = rig._transport.AcceptAsync().AsTask();
            rig.Client = await rig._transport.ConnectAsync(rig._transport.EndPoint);
            var server = (await accept)!;
            var http1 = new Http1Connection(server, rig.App, options, rig._stopping.Token);
            rig._serving = Task.Run(async () =>
            {
                await http1.RunAsync();
                await server.DisposeAsync();
            });
            return rig;
        }

        /// <summary>One request, then its whole answer (a 2-byte body).</summary>
        public async Task RoundTripAsync()
        {
            await Client.Transport.Output.WriteAsync(s_request);
            var input = Client.Transport.Input;
            var seen = new StringBuilder();
            while (true)
            {
                var result = await input.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                seen.Append(Encoding.Latin1.GetString(result.Buffer.ToArray()));
                input.AdvanceTo(result.Buffer.End);
                if (seen.ToString().EndsWith("\r\n\r\nok", StringComparison.Ordinal))
                {
                    Assert.StartsWith("HTTP/1.1 200", seen.ToString(), StringComparison.Ordinal);
                    return;
                }
                Assert.False(result.IsCompleted, $"the connection closed: {seen}");
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            _stopping.Cancel();
            if (_serving is not null)
            {
                await _serving.WaitAsync(TimeSpan.FromSeconds(30));
            }
        }
    }

    private sealed class App : IHttpApplication, IIdleAware
    {
        private int _idles;

        public int Idles => Volatile.Read(ref _idles);

        public async ValueTask ProcessAsync(HttpExchange exchange)
        {
            exchange.ApplicationState = this;
            exchange.Response.StatusCode = 200;
            await exchange.StartResponseAsync(BodyFraming.ContentLength, 2);
            await exchange.WriteResponseBodyAsync(new ReadOnlySequence<byte>("ok"u8.ToArray()), flush: true);
            await exchange.CompleteResponseAsync();
        }

        public bool OnIdle()
        {
            Interlocked.Increment(ref _idles);
            return false; // stays the connection's state: OnIdle again at the next idle wait
        }

        public void OnConnectionClosed(HttpExchange exchange)
        {
        }
    }
}
