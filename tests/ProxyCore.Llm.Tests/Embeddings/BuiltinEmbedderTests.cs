using System.Numerics.Tensors;
using ProxyCore.Llm.Embeddings;

namespace ProxyCore.Llm.Tests.Embeddings;

public class BuiltinEmbedderTests
{
    private static float[] Embed(string text, int dims = BuiltinEmbedder.DefaultDimensions)
    {
        var v = new float[dims];
        new BuiltinEmbedder(dims).Embed(text, v);
        return v;
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("How do I reset my password?")]
    [InlineData("Ahoj světe, jak se máš? 你好")]
    public void Embed_AnyText_UnitLengthAndDeterministic(string text)
    {
        var a = Embed(text);
        Assert.Equal(1f, TensorPrimitives.Norm(a), 3);
        Assert.Equal(a, Embed(text));
    }

    [Fact]
    public void Embed_Paraphrase_CloserThanUnrelated()
    {
        var q = Embed("How do I reset my password?");
        var paraphrase = Embed("How can I reset my password");
        var unrelated = Embed("What is the boiling point of water?");
        Assert.True(TensorPrimitives.CosineSimilarity(q, paraphrase) > 0.8f);
        Assert.True(TensorPrimitives.CosineSimilarity(q, unrelated) < 0.3f);
    }

    [Fact]
    public void Embed_LongText_NoOverflow()
    {
        var v = Embed(string.Join(' ', Enumerable.Repeat("supercalifragilisticexpialidociouswordthatisverylongindeedandkeepsgoingonandon", 100)));
        Assert.Equal(1f, TensorPrimitives.Norm(v), 3);
    }

    [Fact]
    public async Task EmbedAsync_WrongDestination_Throws() =>
        await Assert.ThrowsAsync<ArgumentException>(async () => await new BuiltinEmbedder().EmbedAsync("x", new float[3]));
}
