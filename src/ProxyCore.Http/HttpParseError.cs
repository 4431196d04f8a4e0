namespace ProxyCore.Http;

// Protocol-neutral on purpose (HTTP/2 maps its malformed-message cases onto the same reasons), so
// it lives in ProxyCore.Http; the file sits in Http1/ because that is where it was born.

/// <summary>Why a head or body framing was rejected. Each value has a stable reason token (<see cref="HttpParseErrors.Reason"/>).</summary>
public enum HttpParseError : byte
{
    None,
    InvalidRequestLine,
    InvalidMethod,
    InvalidTarget,
    UnsupportedVersion,
    RequestLineTooLong,
    HeadersTooLarge,
    TooManyHeaders,
    InvalidHeaderName,
    InvalidHeaderValue,
    WhitespaceBeforeColon,
    ObsFold,
    BareCR,
    BareLF,
    MissingHost,
    MultipleHost,
    InvalidHost,
    InvalidContentLength,
    MultipleContentLength,
    ContentLengthWithTransferEncoding,
    UnsupportedTransferEncoding,
    TransferEncodingInHttp10,
    InvalidChunkSize,
    InvalidChunkExtension,
    InvalidChunkTerminator,
    ChunkLineTooLong,
    TrailersTooLarge,
    InvalidStatusLine,
    InvalidStatusCode,
    StatusLineTooLong,
}

/// <summary>Maps a parse error to what the proxy answers (DESIGN.md, "Errors the proxy itself produces").</summary>
public static class HttpParseErrors
{
    /// <summary>The status for a request-side error: 414, 431 or 400. (Response-side errors are always 502.)</summary>
    public static int StatusCode(HttpParseError e) => e switch
    {
        HttpParseError.RequestLineTooLong => 414,
        HttpParseError.HeadersTooLarge or HttpParseError.TooManyHeaders or HttpParseError.TrailersTooLarge => 431,
        _ => 400,
    };

    /// <summary>Stable kebab-case token for the <c>proxycore-error</c> header.</summary>
    public static ReadOnlySpan<byte> Reason(HttpParseError e) => e switch
    {
        HttpParseError.None => "none"u8,
        HttpParseError.InvalidRequestLine => "invalid-request-line"u8,
        HttpParseError.InvalidMethod => "invalid-method"u8,
        HttpParseError.InvalidTarget => "invalid-target"u8,
        HttpParseError.UnsupportedVersion => "unsupported-version"u8,
        HttpParseError.RequestLineTooLong => "request-line-too-long"u8,
        HttpParseError.HeadersTooLarge => "headers-too-large"u8,
        HttpParseError.TooManyHeaders => "too-many-headers"u8,
        HttpParseError.InvalidHeaderName => "invalid-header-name"u8,
        HttpParseError.InvalidHeaderValue => "invalid-header-value"u8,
        HttpParseError.WhitespaceBeforeColon => "whitespace-before-colon"u8,
        HttpParseError.ObsFold => "obs-fold"u8,
        HttpParseError.BareCR => "bare-cr"u8,
        HttpParseError.BareLF => "bare-lf"u8,
        HttpParseError.MissingHost => "missing-host"u8,
        HttpParseError.MultipleHost => "multiple-host"u8,
        HttpParseError.InvalidHost => "invalid-host"u8,
        HttpParseError.InvalidContentLength => "invalid-content-length"u8,
        HttpParseError.MultipleContentLength => "multiple-content-length"u8,
        HttpParseError.ContentLengthWithTransferEncoding => "content-length-with-transfer-encoding"u8,
        HttpParseError.UnsupportedTransferEncoding => "unsupported-transfer-encoding"u8,
        HttpParseError.TransferEncodingInHttp10 => "transfer-encoding-in-http10"u8,
        HttpParseError.InvalidChunkSize => "invalid-chunk-size"u8,
        HttpParseError.InvalidChunkExtension => "invalid-chunk-extension"u8,
        HttpParseError.InvalidChunkTerminator => "invalid-chunk-terminator"u8,
        HttpParseError.ChunkLineTooLong => "chunk-line-too-long"u8,
        HttpParseError.TrailersTooLarge => "trailers-too-large"u8,
        HttpParseError.InvalidStatusLine => "invalid-status-line"u8,
        HttpParseError.InvalidStatusCode => "invalid-status-code"u8,
        HttpParseError.StatusLineTooLong => "status-line-too-long"u8,
        _ => "bad-request"u8,
    };
}
