using System.Buffers;
using System.Net;
using Xunit.Abstractions;

namespace ProxyCore.Transport.Tests;

[CollectionDefinition(nameof(AllocationTests), DisableParallelization = true)]
public sealed class AllocationCollection;

/// <summary>
/// Measures process-wide allocations, so it runs alone: other tests' allocations would count too.
/// </summary>
[Collection(nameof(AllocationTests))]
public class AllocationTests(ITestOutputHelper output)
{
    [Theory]
    // Measured on the dev box: 0 bytes with thread-pool completions, 84 with inline ones (not yet explained:
    // something in the nested inline path allocates once per round trip). The bounds guard against regressions.
    [InlineData(TransportKind.Socket, false, 16)]
    [InlineData(TransportKind.Socket, true, 128)]
    [InlineData(TransportKind.Epoll, true, 16)]
    public async Task RoundTrip_AfterWarmUp_AllocatesAlmostNothing(TransportKind kind, bool inlineCompletions, long maxBytesPerRoundTrip)
    {
        var options = Engines.With(kind, new SocketTransportOptions { InlineCompletions = inlineCompletions });
        await using var listener = ConnectionTransport.Bind(new IPEndPoint(IPAddress.Loopback, 0), options);
        var accept = listener.AcceptAsync().AsTask();
        await using var client = await ConnectionTransport.CreateFactory(options).ConnectAsync(listener.EndPoint).AsTask().WaitAsync(Timeouts.Default);
        await using var server = (await accept.WaitAsync(Timeouts.Default))!;
        var echo = EchoAsync(server);
        var message = new byte[256];

        await RoundTripsAsync(client, message, 2000).WaitAsync(Timeouts.Default);
        const int measured = 10_000;
        // Whole bytes per round trip, as before; the fewest of up to 3 windows (background work can land in one).
        long perRoundTrip = (long)await Allocations.PerCallAsync(() => RoundTripsAsync(client, message, measured).WaitAsync(Timeouts.Default), measured, bound: maxBytesPerRoundTrip + 1);

        output.WriteLine($"{kind} InlineCompletions={inlineCompletions}: {perRoundTrip} bytes allocated per round trip (both ends, all threads)");
        client.Transport.Output.Complete();
        await echo.WaitAsync(Timeouts.Default);
        // A round trip is 2 flushes, 2 sends, 2-4 receives and 2 wake-ups on each end.
        Assert.True(perRoundTrip <= maxBytesPerRoundTrip, $"{perRoundTrip} bytes per round trip");
    }

    private static async Task RoundTripsAsync(ConnectionContext client, byte[] message, int count)
    {
        var input = client.Transport.Input;
        for (int i = 0; i < count; i++)
        {
            await client.Transport.Output.WriteAsync(message);
            long got = 0;
            while (got < message.Length)
            {
                var result = await input.ReadAsync();
                got += result.Buffer.Length;
                input.AdvanceTo(result.Buffer.End);
            }
        }
    }

    private static async Task EchoAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        while (true)
        {
            var result = await input.ReadAsync();
            foreach (var segment in result.Buffer)
            {
                output.Write(segment.Span);
            }
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
            await output.FlushAsync();
        }
    }
}
