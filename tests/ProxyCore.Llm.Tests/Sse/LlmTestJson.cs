using System.Text.Json.Serialization;

namespace ProxyCore.Llm.Tests.Sse;

[JsonSerializable(typeof(Dictionary<string, object>))]
[JsonSerializable(typeof(Dictionary<string, object>[]))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class LlmTestJson : JsonSerializerContext;
