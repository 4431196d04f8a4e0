using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace ProxyCore.Llm.Sse;

/// <summary>
/// Watches one streamed LLM answer pass through the proxy and meters it: the provider's usage
/// (prompt, completion and cached tokens), the model, the finish reason, and how the stream ended.
/// Hand it every chunk of the response body as it is forwarded (<see cref="Observe(ReadOnlySpan{byte})"/>),
/// then call <see cref="Complete"/> when the body ends. It never holds the stream: events are read by
/// an <see cref="SseReader"/> as they pass, and each event's data is read once by a
/// <see cref="Utf8JsonReader"/> for the few fields needed (no document, no string per event).
/// </summary>
/// <remarks>
/// <para>
/// Usage absent: the streamed text (content, refusals, reasoning and tool-call arguments) is kept in
/// a bounded window and counted by an <see cref="ITokenEstimator"/> — the one given, or the model's
/// tiktoken vocabulary. The window is counted and emptied whenever it fills, at a point where the
/// tiktoken pre-tokenizers of o200k_base and cl100k_base are known to split anyway (a space between
/// two ASCII letters: the word before ends at the letter, the word after begins with the space), so
/// the running total equals the count of the whole text. Streams whose usage arrives with a modest
/// answer never reach the tokenizer at all.
/// </para>
/// <para>One meter per stream at a time; <see cref="Reset"/> readies it for the next (pool it).</para>
/// </remarks>
public sealed partial class LlmStreamMeter
{
#if DEBUG
    // Buffer edges are the common case: a small window so the long-text tests count across dozens
    // of cuts. Not smaller: the recorded answers (under 64 bytes, usage at the end) must stay off the
    // tokenizer, whose every call allocates (~100 B: Microsoft.ML.Tokenizers' pre-token enumerator).
    internal const int TextWindowBytes = 128;
#else
    // Streams of up to this much text with usage at the end never tokenize. Larger answers are
    // counted 16 KB at a time, a few hundred microseconds of BPE each.
    internal const int TextWindowBytes = 16 * 1024;
#endif

    /// <summary>A window with no safe cut in it (CJK text, one huge word) is counted whole past this, at the cost of a token or two per cut.</summary>
    internal const int TextWindowHardLimit = TextWindowBytes * 4;

    private const int MaxNameBytes = 256;

    private readonly SseReader _reader;
    private LlmStreamFormat _format;
    private ITokenEstimator? _estimator;

    private long _promptTokens;
    private long _completionTokens;
    private long _cachedTokens;
    private bool _completionReported;
    private SseByteBuffer _model;
    private SseByteBuffer _finishReason;
    private SseByteBuffer _errorType;
    private bool _terminal;
    private bool _error;
    private bool _hasOutput;
    private LlmStreamOutcome _outcome;
    private int _events;
    private int _malformedEvents;

    private int _choice;              // the choice whose text is being read (IStreamTextObserver.OnText)
    private SseByteBuffer _text;      // streamed text not yet counted
    private long _textTokens;         // tokens of the streamed text counted so far

    /// <summary>Creates a meter for a stream of <paramref name="format"/>.</summary>
    /// <param name="format">The provider API the stream comes from.</param>
    /// <param name="estimator">Counts the streamed text when usage is absent; null: <see cref="TiktokenEstimator.ForModel"/> of the streamed model.</param>
    /// <param name="maxEventBytes">The most one SSE event may take (<see cref="SseReader.MaxEventBytes"/>).</param>
    public LlmStreamMeter(LlmStreamFormat format, ITokenEstimator? estimator = null, int maxEventBytes = SseReader.DefaultMaxEventBytes)
    {
        _reader = new SseReader(maxEventBytes);
        Reset(format, estimator);
    }

    /// <summary>The format being read.</summary>
    public LlmStreamFormat Format => _format;

    /// <summary>How the stream ended; <see cref="LlmStreamOutcome.InProgress"/> until <see cref="Complete"/> (or <see cref="LlmStreamOutcome.Error"/> as soon as an error event passed).</summary>
    public LlmStreamOutcome Outcome => _outcome;

    /// <summary>
    /// The token counts. Before <see cref="Complete"/> only what the provider reported so far; after it,
    /// a completion figure estimated from the streamed text when the provider's was absent.
    /// </summary>
    public LlmUsage Usage => new(
        _promptTokens,
        _completionTokens,
        _cachedTokens,
        _promptTokens >= 0 ? LlmTokenSource.Provider : LlmTokenSource.None,
        _completionReported ? LlmTokenSource.Provider : _completionTokens >= 0 ? LlmTokenSource.Estimated : LlmTokenSource.None);

    /// <summary>The model as the stream names it (UTF-8), empty until seen.</summary>
    public ReadOnlySpan<byte> Model => _model.Span;

    /// <summary>The last finish reason (<c>stop</c>, <c>tool_calls</c>, <c>end_turn</c>, <c>STOP</c>, a Responses status…), empty until seen.</summary>
    public ReadOnlySpan<byte> FinishReason => _finishReason.Span;

    /// <summary>The provider's error type (<c>overloaded_error</c>, <c>insufficient_quota</c>, <c>server_error</c>…) when <see cref="Outcome"/> is <see cref="LlmStreamOutcome.Error"/>.</summary>
    public ReadOnlySpan<byte> ErrorType => _errorType.Span;

    /// <summary>True once any answer text or tool call passed: from then on a failure cannot fall back to another provider unseen.</summary>
    public bool HasOutput => _hasOutput;

    /// <summary>
    /// Sees each piece of answer text as the meter reads it (unescaped UTF-8, in stream order; the span
    /// is valid only during the call) — the output deny check rides on the meter's one JSON read per
    /// event instead of parsing the stream again. Kept across <see cref="Reset"/>; null: none.
    /// </summary>
    public IStreamTextObserver? TextObserver { get; set; }

    /// <summary>Events read.</summary>
    public int EventCount => _events;

    /// <summary>Events whose data was not the JSON the format promises (they are forwarded, and skipped here).</summary>
    public int MalformedEventCount => _malformedEvents;

    /// <summary>The reader's state: <see cref="SseReadStatus.EventTooLarge"/> means metering stopped (the stream will end as <see cref="LlmStreamOutcome.Cut"/> unless an error came first).</summary>
    public SseReadStatus ReadStatus { get; private set; }

    /// <summary>Readies the meter for another stream, keeping its buffers.</summary>
    public void Reset(LlmStreamFormat format, ITokenEstimator? estimator = null)
    {
        _reader.Reset();
        _format = format;
        _estimator = estimator;
        _promptTokens = -1;
        _completionTokens = -1;
        _cachedTokens = -1;
        _completionReported = false;
        _model.Clear();
        _finishReason.Clear();
        _errorType.Clear();
        _terminal = false;
        _error = false;
        _hasOutput = false;
        _outcome = LlmStreamOutcome.InProgress;
        _events = 0;
        _malformedEvents = 0;
        _text.Clear();
        _textTokens = 0;
        ReadStatus = SseReadStatus.Ok;
    }

    /// <summary>Observes the next chunk of the response body (the bytes stay the caller's, to forward unchanged).</summary>
    public SseReadStatus Observe(in ReadOnlySequence<byte> chunk)
    {
        var sink = new Sink(this);
        return ReadStatus = _reader.Read(chunk, ref sink);
    }

    /// <summary>Observes the next chunk of the response body (the bytes stay the caller's, to forward unchanged).</summary>
    public SseReadStatus Observe(ReadOnlySpan<byte> chunk)
    {
        var sink = new Sink(this);
        return ReadStatus = _reader.Read(chunk, ref sink);
    }

    /// <summary>
    /// The body ended (the upstream finished, failed or the client went away): settles the outcome and,
    /// when the provider reported no final completion count, estimates it from the streamed text.
    /// </summary>
    public LlmStreamOutcome Complete()
    {
        // §9.2.6: "If the file ends in the middle of an event, before the final empty line, the
        // incomplete event is not dispatched." Nothing to do for it: only dispatched events count.
        _outcome = _error ? LlmStreamOutcome.Error : _terminal ? LlmStreamOutcome.Completed : LlmStreamOutcome.Cut;
        if (!_completionReported)
        {
            CountText(final: true);
            _completionTokens = _textTokens;
        }
        return _outcome;
    }

    /// <summary>The model as a string, for logs and metrics labels (allocates).</summary>
    public string GetModel() => Encoding.UTF8.GetString(_model.Span);

    /// <summary>The error type as a string, for logs and metrics labels (allocates).</summary>
    public string GetErrorType() => Encoding.UTF8.GetString(_errorType.Span);

    private readonly struct Sink(LlmStreamMeter meter) : ISseEventHandler
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void OnEvent(in SseEvent sseEvent) => meter.OnEvent(sseEvent);
    }

    private void OnEvent(in SseEvent sseEvent)
    {
        _events++;
        _choice = 0;
        try
        {
            switch (_format)
            {
                case LlmStreamFormat.OpenAIChat:
                    OnOpenAIChatEvent(sseEvent);
                    break;
                case LlmStreamFormat.OpenAIResponses:
                    OnOpenAIResponsesEvent(sseEvent);
                    break;
                case LlmStreamFormat.AnthropicMessages:
                    OnAnthropicEvent(sseEvent);
                    break;
                case LlmStreamFormat.Gemini:
                    OnGeminiEvent(sseEvent);
                    break;
            }
        }
        catch (JsonException)
        {
            // Not JSON, or not the shape promised: the client still gets the bytes; we skip the event.
            _malformedEvents++;
        }
    }

    private void SetError()
    {
        _error = true;
        _outcome = LlmStreamOutcome.Error;
    }

    // ---- streamed text --------------------------------------------------------------------------

    /// <summary>Appends a JSON string value (the reader is on it) to the streamed text.</summary>
    private void AppendText(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            return;
        }
        int start = _text.Length;
        int added = CopyString(ref reader, ref _text);
        if (added > 0)
        {
            TextObserver?.OnText(_choice, _text.Span.Slice(start, added));
            OnTextAdded();
        }
    }

    /// <summary>Appends raw UTF-8 (a JSON value written by the model) to the streamed text.</summary>
    private void AppendText(ReadOnlySpan<byte> utf8)
    {
        if (!utf8.IsEmpty)
        {
            _text.Append(utf8);
            TextObserver?.OnText(_choice, utf8);
            OnTextAdded();
        }
    }

    private void OnTextAdded()
    {
        _hasOutput = true;
        if (_text.Length >= TextWindowBytes)
        {
            CountText(final: false);
        }
    }

    /// <summary>
    /// Counts the window up to its last safe cut (all of it when <paramref name="final"/>, or when
    /// it holds no safe cut and is past <see cref="TextWindowHardLimit"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CountText(bool final)
    {
        var text = _text.Span;
        int cut = final ? text.Length : FindSafeCut(text);
        if (cut <= 0)
        {
            if (text.Length < TextWindowHardLimit)
            {
                return;
            }
            cut = Utf8CharStart(text, text.Length);
        }
        if (cut == 0)
        {
            return;
        }
        var estimator = _estimator ??= TiktokenEstimator.ForModel(_model.Span);
        _textTokens += estimator.CountTokens(text.Slice(0, cut));
        _text.RemovePrefix(cut);
    }

    /// <summary>
    /// The last index i with text[i-1] an ASCII letter, text[i] a space and text[i+1] an ASCII letter:
    /// in o200k_base and cl100k_base a pre-token never spans it (the letter run before stops at the
    /// space; the alternative <c>[^\r\n\p{L}\p{N}]?\p{L}+</c> starts a new one at the space, and a match
    /// starting there does not depend on what precedes it). 0 when there is none.
    /// </summary>
    private static int FindSafeCut(ReadOnlySpan<byte> text)
    {
        for (int i = text.LastIndexOf((byte)' '); i > 0; i = text.Slice(0, i).LastIndexOf((byte)' '))
        {
            if (i + 1 < text.Length && char.IsAsciiLetter((char)text[i - 1]) && char.IsAsciiLetter((char)text[i + 1]))
            {
                return i;
            }
        }
        return 0;
    }

    /// <summary>The start of the UTF-8 sequence at or before <paramref name="end"/>, so a forced cut never splits a character.</summary>
    private static int Utf8CharStart(ReadOnlySpan<byte> text, int end)
    {
        int i = Math.Min(end, text.Length - 1);
        while (i > 0 && (text[i] & 0xC0) == 0x80)
        {
            i--;
        }
        return i;
    }

    // ---- JSON helpers -------------------------------------------------------------------------------

    /// <summary>Copies the string the reader is on into <paramref name="into"/>, unescaped, without allocating; returns the bytes added.</summary>
    private static int CopyString(ref Utf8JsonReader reader, ref SseByteBuffer into)
    {
        // An unescaped value is at most as long as its escaped form.
        var raw = reader.ValueSpan;
        if (!reader.ValueIsEscaped)
        {
            into.Append(raw);
            return raw.Length;
        }
        int written = reader.CopyString(into.GetSpan(raw.Length));
        into.Advance(written);
        return written;
    }

    /// <summary>Reads the value of the property the reader is on into <paramref name="into"/> (replacing it) when it is a string.</summary>
    private static void ReadName(ref Utf8JsonReader reader, ref SseByteBuffer into)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length <= MaxNameBytes)
        {
            into.Clear();
            CopyString(ref reader, ref into);
        }
        else
        {
            reader.Skip();
        }
    }

    /// <summary>
    /// The <c>index</c> of the choice (Chat) or candidate (Gemini) object the reader is on (its StartObject),
    /// read ahead on a copy of the reader so the caller's position is kept: OpenAI writes it first (two
    /// reads), Gemini after the content (one extra pass over the candidate). Absent: 0 (servers that
    /// stream one choice, and Gemini's candidate 0, leave it out); not a non-negative integer: -1.
    /// </summary>
    private static int ChoiceIndex(Utf8JsonReader reader)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("index"u8))
            {
                reader.Read();
                return reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int index) && index >= 0 ? index : -1;
            }
            reader.Skip();
        }
        return 0;
    }

    /// <summary>Reads the value of the property the reader is on as a count; -1 when it is not a non-negative integer.</summary>
    private static long ReadCount(ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long value) && value >= 0)
        {
            return value;
        }
        reader.Skip();
        return -1;
    }

    /// <summary>
    /// Reads an error object (the reader is on its StartObject): <c>type</c> (OpenAI, Anthropic), else
    /// <c>status</c> (Gemini), else a string <c>code</c>, is the error type.
    /// </summary>
    private void ReadErrorObject(ref Utf8JsonReader reader)
    {
        SetError();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        int rank = 0; // 3 type, 2 status, 1 code: the best name seen so far
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            int candidate = reader.ValueTextEquals("type"u8) ? 3 : reader.ValueTextEquals("status"u8) ? 2 : reader.ValueTextEquals("code"u8) ? 1 : 0;
            if (candidate > rank)
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length <= MaxNameBytes)
                {
                    _errorType.Clear();
                    CopyString(ref reader, ref _errorType);
                    rank = candidate;
                }
                else
                {
                    reader.Skip();
                }
            }
            else
            {
                reader.Skip();
            }
        }
    }

    /// <summary>
    /// Reads an OpenAI usage object (the reader is on its StartObject): Chat's <c>prompt_tokens</c>,
    /// <c>completion_tokens</c>, <c>prompt_tokens_details.cached_tokens</c>, or Responses'
    /// <c>input_tokens</c>, <c>output_tokens</c>, <c>input_tokens_details.cached_tokens</c>.
    /// </summary>
    private void ReadOpenAIUsage(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("prompt_tokens"u8) || reader.ValueTextEquals("input_tokens"u8))
            {
                SetIfKnown(ref _promptTokens, ReadCount(ref reader));
            }
            else if (reader.ValueTextEquals("completion_tokens"u8) || reader.ValueTextEquals("output_tokens"u8))
            {
                long completion = ReadCount(ref reader);
                if (completion >= 0)
                {
                    _completionTokens = completion;
                    _completionReported = true;
                }
            }
            else if (reader.ValueTextEquals("prompt_tokens_details"u8) || reader.ValueTextEquals("input_tokens_details"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("cached_tokens"u8))
                    {
                        SetIfKnown(ref _cachedTokens, ReadCount(ref reader));
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            else
            {
                reader.Skip();
            }
        }
    }

    private static void SetIfKnown(ref long field, long value)
    {
        if (value >= 0)
        {
            field = value;
        }
    }

    /// <summary>The event's name, or when it has none, the top-level <c>"type"</c> of its JSON data (a second, cheap pass).</summary>
    private static ReadOnlySpan<byte> EventKind(in SseEvent sseEvent)
    {
        if (!sseEvent.EventType.IsEmpty)
        {
            return sseEvent.EventType;
        }
        var reader = new Utf8JsonReader(sseEvent.Data);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return default;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                // Names of event types carry no escapes; an escaped one is not one we know.
                return reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped ? reader.ValueSpan : default;
            }
            reader.Skip();
        }
        return default;
    }
}
