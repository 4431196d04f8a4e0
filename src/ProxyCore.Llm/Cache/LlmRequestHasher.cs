using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace ProxyCore.Llm.Cache;

/// <summary>The request shape a body is hashed as; part of the key, so the same JSON sent to two APIs never shares an entry.</summary>
public enum LlmRequestApi : byte
{
    /// <summary>OpenAI Chat Completions (<c>messages</c> with <c>role</c> and string or part-array <c>content</c>).</summary>
    OpenAIChat = 1,

    /// <summary>Anthropic Messages (top-level <c>system</c>, <c>messages</c> with string or block-array <c>content</c>).</summary>
    AnthropicMessages = 2,

    /// <summary>Any other JSON body (Responses, Embeddings): exact key only, no semantic partition.</summary>
    Other = 3,
}

/// <summary>The keys of one request, tenant-scoped.</summary>
/// <param name="Exact">The exact-cache key: the whole canonical request (every parameter, tools, response format, system prompt, all turns).</param>
/// <param name="Partition">The semantic partition: the same hash with the last user turn's text left out; equal only when everything else is.</param>
/// <param name="LastUserText">The last user turn's text (text parts joined by LF), what the semantic cache embeds; null when the last turn is not a user turn or carries non-text parts (images, tool results), so no semantic lookup applies.</param>
public readonly record struct LlmRequestKeys(UInt128 Exact, UInt128 Partition, string? LastUserText);

/// <summary>
/// Computes the canonical hash of an LLM request body: equal for bodies that differ only in JSON key
/// order, whitespace, string escapes (<c>"\u0041"</c> = <c>"A"</c>) or number spelling (<c>1</c> =
/// <c>1.0</c> = <c>1e0</c>), different for any other change of any value.
/// </summary>
/// <remarks>
/// <para>
/// One pass of a <see cref="Utf8JsonReader"/>, no document, no allocation (except the last user text
/// when asked for). Each value hashes to 128 bits with XxHash128 over a type tag and its content:
/// arrays fold their elements in order; objects add their members' hashes (a hash of the key's hash
/// and the value's hash) modulo 2^128, which makes them order-insensitive without sorting. Duplicate
/// keys count twice — a body with a duplicated key is a different body.
/// </para>
/// <para>
/// Left out of the key (top level only): <c>stream</c> and <c>stream_options</c>, so a streaming and a
/// non-streaming client share one entry and a stream can be served from a stored answer (see
/// <see cref="LlmStreamReplay"/>). The caller may add more (e.g. <c>user</c>) via <c>ignoredTopLevel</c>.
/// </para>
/// </remarks>
public static class LlmRequestHasher
{
    private const byte TagNull = 1, TagFalse = 2, TagTrue = 3, TagNumber = 4, TagString = 5, TagArray = 6, TagObject = 7, TagMember = 8, TagRawNumber = 9;

    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64, CommentHandling = JsonCommentHandling.Disallow };

    /// <summary>Top-level members never part of the key: how an answer is delivered is not what it is.</summary>
    public static ReadOnlySpan<byte> DefaultIgnored => "stream\0stream_options"u8;

    /// <summary>
    /// Hashes <paramref name="body"/> for <paramref name="tenant"/>. False when the body is not one
    /// JSON object (then it is not cacheable).
    /// </summary>
    /// <param name="tenant">Who may see the entry (the key name, consumer, or empty for an open route).</param>
    /// <param name="api">The request shape.</param>
    /// <param name="body">The request body as sent (UTF-8 JSON).</param>
    /// <param name="extractLastUserText">Whether to compute the partition and last user text (the semantic cache needs them).</param>
    /// <param name="keys">The keys.</param>
    /// <param name="ignoredTopLevel">Top-level member names to leave out, NUL-separated; default <see cref="DefaultIgnored"/>.</param>
    public static bool TryHash(ReadOnlySpan<byte> tenant, LlmRequestApi api, ReadOnlySpan<byte> body, bool extractLastUserText, out LlmRequestKeys keys, ReadOnlySpan<byte> ignoredTopLevel = default)
    {
        keys = default;
        if (ignoredTopLevel.IsEmpty)
        {
            ignoredTopLevel = DefaultIgnored;
        }
        var reader = new Utf8JsonReader(body, ReaderOptions);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            bool semantic = extractLastUserText && api != LlmRequestApi.Other;
            UInt128 sum = 0, partitionSum = 0;
            int members = 0;
            string? lastUserText = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                UInt128 keyHash = HashString(ref reader);
                bool ignored = IsIgnored(ref reader, ignoredTopLevel);
                bool isMessages = semantic && reader.ValueTextEquals("messages"u8);
                if (!reader.Read())
                {
                    return false;
                }
                if (ignored)
                {
                    reader.Skip();
                    continue;
                }
                UInt128 valueHash, partitionValueHash;
                if (isMessages && reader.TokenType == JsonTokenType.StartArray)
                {
                    valueHash = HashMessages(ref reader, out partitionValueHash, out lastUserText);
                }
                else
                {
                    valueHash = HashValue(ref reader);
                    partitionValueHash = valueHash;
                }
                sum += Combine(TagMember, keyHash, valueHash);
                partitionSum += Combine(TagMember, keyHash, partitionValueHash);
                members++;
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                return false; // trailing content after the object
            }
            UInt128 tenantHash = XxHash128.HashToUInt128(tenant);
            UInt128 exact = Finish(tenantHash, api, sum, members, 0);
            UInt128 partition = semantic && lastUserText is not null ? Finish(tenantHash, api, partitionSum, members, 1) : exact;
            keys = new LlmRequestKeys(exact, partition, lastUserText);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool IsIgnored(ref Utf8JsonReader reader, ReadOnlySpan<byte> ignored)
    {
        while (!ignored.IsEmpty)
        {
            int cut = ignored.IndexOf((byte)0);
            ReadOnlySpan<byte> name = cut < 0 ? ignored : ignored[..cut];
            if (reader.ValueTextEquals(name))
            {
                return true;
            }
            ignored = cut < 0 ? default : ignored[(cut + 1)..];
        }
        return false;
    }

    private static UInt128 Finish(UInt128 tenantHash, LlmRequestApi api, UInt128 sum, int members, byte kind)
    {
        Span<byte> buffer = stackalloc byte[38];
        BinaryPrimitives.WriteUInt128LittleEndian(buffer, tenantHash);
        BinaryPrimitives.WriteUInt128LittleEndian(buffer[16..], sum);
        BinaryPrimitives.WriteInt32LittleEndian(buffer[32..], members);
        buffer[36] = (byte)api;
        buffer[37] = kind;
        return XxHash128.HashToUInt128(buffer);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static UInt128 Combine(byte tag, UInt128 a, UInt128 b)
    {
        Span<byte> buffer = stackalloc byte[33];
        buffer[0] = tag;
        BinaryPrimitives.WriteUInt128LittleEndian(buffer[1..], a);
        BinaryPrimitives.WriteUInt128LittleEndian(buffer[17..], b);
        return XxHash128.HashToUInt128(buffer);
    }

    private static UInt128 Tag(byte tag) => XxHash128.HashToUInt128([tag]);

    /// <summary>Hashes the value the reader is on and leaves the reader on its last token.</summary>
    private static UInt128 HashValue(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                {
                    UInt128 sum = 0;
                    int count = 0;
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        UInt128 key = HashString(ref reader);
                        reader.Read();
                        sum += Combine(TagMember, key, HashValue(ref reader));
                        count++;
                    }
                    return Combine(TagObject, sum, (UInt128)count);
                }
            case JsonTokenType.StartArray:
                {
                    UInt128 acc = Tag(TagArray);
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        acc = Combine(TagArray, acc, HashValue(ref reader));
                    }
                    return acc;
                }
            case JsonTokenType.String:
                return HashString(ref reader);
            case JsonTokenType.Number:
                return HashNumber(ref reader);
            case JsonTokenType.True:
                return Tag(TagTrue);
            case JsonTokenType.False:
                return Tag(TagFalse);
            default:
                return Tag(TagNull);
        }
    }

    /// <summary>Numbers hash by value: <c>1</c>, <c>1.0</c> and <c>1e0</c> are one number; ones a double cannot hold exactly enough hash by their text.</summary>
    private static UInt128 HashNumber(ref Utf8JsonReader reader)
    {
        Span<byte> buffer = stackalloc byte[9];
        if (reader.TryGetDouble(out double value) && double.IsFinite(value) && reader.ValueSpan.Length <= 17)
        {
            buffer[0] = TagNumber;
            BinaryPrimitives.WriteDoubleLittleEndian(buffer[1..], value == 0 ? 0d : value); // -0 is 0
            return XxHash128.HashToUInt128(buffer);
        }
        // Long digit strings (ids, big integers): their spelling is their identity.
        var raw = reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan;
        return XxHash128.HashToUInt128(raw, TagRawNumber);
    }

    /// <summary>Strings (and property names) hash by their unescaped UTF-8.</summary>
    private static UInt128 HashString(ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped && !reader.HasValueSequence)
        {
            return XxHash128.HashToUInt128(reader.ValueSpan, TagString);
        }
        int max = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
        byte[]? rented = null;
        Span<byte> buffer = max <= 512 ? stackalloc byte[512] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            int written = reader.CopyString(buffer);
            return XxHash128.HashToUInt128(buffer[..written], TagString);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// Hashes the <c>messages</c> array twice at once: whole, and with the last message's
    /// <c>content</c> left out when that message is a user turn of text only (the semantic partition).
    /// </summary>
    private static UInt128 HashMessages(ref Utf8JsonReader reader, out UInt128 partition, out string? lastUserText)
    {
        UInt128 acc = Tag(TagArray);
        UInt128 accBeforeLast = acc;
        UInt128 lastWithoutContent = 0;
        lastUserText = null;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            accBeforeLast = acc;
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                acc = Combine(TagArray, acc, HashValue(ref reader));
                lastUserText = null;
                lastWithoutContent = 0;
                continue;
            }
            UInt128 sum = 0, sumWithoutContent = 0;
            int count = 0;
            bool isUser = false;
            string? text = null;
            bool textOnly = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                UInt128 key = HashString(ref reader);
                bool isRole = reader.ValueTextEquals("role"u8);
                bool isContent = reader.ValueTextEquals("content"u8);
                reader.Read();
                if (isRole && reader.TokenType == JsonTokenType.String)
                {
                    isUser = reader.ValueTextEquals("user"u8);
                }
                UInt128 value;
                if (isContent)
                {
                    // Reading the text needs a second look at the same tokens: copy the reader (a struct) first.
                    var probe = reader;
                    textOnly = TryReadText(ref probe, out text);
                    value = HashValue(ref reader);
                }
                else
                {
                    value = HashValue(ref reader);
                    sumWithoutContent += Combine(TagMember, key, value);
                }
                sum += Combine(TagMember, key, value);
                count++;
            }
            UInt128 message = Combine(TagObject, sum, (UInt128)count);
            acc = Combine(TagArray, acc, message);
            if (isUser && textOnly)
            {
                lastUserText = text;
                lastWithoutContent = Combine(TagObject, sumWithoutContent, (UInt128)(count - 1) | ((UInt128)1 << 64));
            }
            else
            {
                lastUserText = null;
                lastWithoutContent = 0;
            }
        }
        partition = lastUserText is null ? acc : Combine(TagArray, accBeforeLast, lastWithoutContent);
        return acc;
    }

    /// <summary>A string content, or an array of only text parts (<c>{"type":"text","text":…}</c>, both APIs), as one string.</summary>
    private static bool TryReadText(ref Utf8JsonReader reader, out string? text)
    {
        text = null;
        if (reader.TokenType == JsonTokenType.String)
        {
            text = reader.GetString();
            return true;
        }
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return false;
        }
        var builder = new StringBuilder();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            bool isText = false;
            string? partText = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("type"u8))
                {
                    reader.Read();
                    isText = reader.TokenType == JsonTokenType.String && reader.ValueTextEquals("text"u8);
                }
                else if (reader.ValueTextEquals("text"u8))
                {
                    reader.Read();
                    partText = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else
                {
                    reader.Read();
                    reader.Skip(); // cache_control and the like do not change the text
                }
            }
            if (!isText || partText is null)
            {
                return false;
            }
            if (builder.Length > 0)
            {
                builder.Append('\n');
            }
            builder.Append(partText);
        }
        text = builder.ToString();
        return true;
    }
}
