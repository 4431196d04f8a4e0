using System.Text;
using ProxyCore.Llm.Cache;

namespace ProxyCore.Llm.Tests.Cache;

public class StreamBroadcastTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    /// <summary>What a follower copies until the share ends: the bytes and the final state.</summary>
    private static async Task<(string Text, StreamBroadcastState State)> FollowAsync(StreamBroadcast shared)
    {
        var copied = new StringBuilder();
        int seen = 0;
        while (true)
        {
            var (data, state) = shared.Read(seen);
            if (!data.IsEmpty)
            {
                copied.Append(Encoding.ASCII.GetString(data.Span));
                seen += data.Length;
                continue;
            }
            if (state is StreamBroadcastState.Completed or StreamBroadcastState.Failed)
            {
                return (copied.ToString(), state);
            }
            await shared.WaitAsync(seen).WaitAsync(Long);
        }
    }

    [Fact]
    public async Task Follow_LateAndEarlyFollowers_CopyEverythingAndEndCompleted()
    {
        var shared = new StreamBroadcast(1 << 20, includeUsage: false);
        var early = shared.WaitAttachAsync(Long, default);
        Assert.False(early.IsCompleted); // pending: waits for the leader's answer to start
        shared.Start();
        Assert.True(await early);
        var first = FollowAsync(shared);
        var all = new StringBuilder();
        for (int i = 0; i < 2000; i++) // past the initial buffer: grown while a follower reads
        {
            string piece = $"data: {i}\n\n";
            all.Append(piece);
            Assert.True(shared.Publish(Encoding.ASCII.GetBytes(piece)));
            if (i % 100 == 0)
            {
                await Task.Yield();
            }
        }
        Assert.True(await shared.WaitAttachAsync(Long, default)); // late: still gets all from the start
        var late = FollowAsync(shared);
        shared.Complete();

        Assert.Equal((all.ToString(), StreamBroadcastState.Completed), await first);
        Assert.Equal((all.ToString(), StreamBroadcastState.Completed), await late);
    }

    [Theory]
    [InlineData(false, false)] // failed before answering: followers go upstream
    [InlineData(true, true)]   // cut mid-stream: followers attach and end with the error event
    public async Task Fail_ByStage_AttachOnlyWhenSomethingWasShared(bool started, bool attaches)
    {
        var shared = new StreamBroadcast(1 << 20, includeUsage: true);
        var waiting = shared.WaitAttachAsync(Long, default);
        if (started)
        {
            shared.Start();
            shared.Publish("data: a\n\n"u8);
        }
        shared.Fail("event: error\n\n"u8);

        Assert.Equal(attaches, await shared.WaitAttachAsync(Long, default));
        Assert.Equal(attaches, await waiting);
        if (attaches)
        {
            Assert.Equal(("data: a\n\nevent: error\n\n", StreamBroadcastState.Failed), await FollowAsync(shared));
        }
    }

    [Fact]
    public async Task Publish_OverTheBound_RefusesNewFollowersAndAttachedOnesGetTheCut()
    {
        var shared = new StreamBroadcast(16, includeUsage: false);
        shared.Start();
        Assert.True(shared.Publish("data: 1234567\n\n"u8)); // 15 bytes
        var attached = FollowAsync(shared);
        Assert.False(shared.Publish("data: x\n\n"u8));
        shared.Fail("cut\n\n"u8);

        Assert.False(await shared.WaitAttachAsync(Long, default));
        Assert.Equal(("data: 1234567\n\ncut\n\n", StreamBroadcastState.Failed), await attached);
    }

    [Fact]
    public async Task WaitAttachAsync_SlowLeader_TimesOutFalse()
    {
        var shared = new StreamBroadcast(1024, includeUsage: false);
        Assert.False(await shared.WaitAttachAsync(TimeSpan.FromMilliseconds(20), default));
        shared.Complete(); // not live: no effect
        Assert.Equal(StreamBroadcastState.Pending, shared.State);
    }
}
