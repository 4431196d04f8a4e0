using System.Buffers;
using System.Text;
using System.Text.Json;
using ProxyCore.Routing.Config;

namespace ProxyCore.Llm.Gateway;

/// <summary>
/// The prompt templates of a route (<c>llm.templates</c>), parsed once per snapshot. A request picks
/// one with its <c>template</c> field — <c>{"id":"support","version":"2","variables":{"name":"Ann"}}</c>,
/// the shape of the OpenAI Responses <c>prompt</c> object — or the <c>proxycore-template</c> header
/// (<c>id</c> or <c>id@version</c>; variables still come from the body). The version's messages, with
/// every <c>{{name}}</c> replaced by the variable's text (once: a value is never searched for
/// placeholders itself), go before the request's own messages; system and developer messages become
/// the system prompt (Anthropic Messages) or the instructions (Responses). The <c>template</c> field is
/// removed, so the provider sees an ordinary request, and the safety checks and the cache key see
/// the filled prompt.
/// </summary>
internal sealed class PromptTemplates
{
    public static ReadOnlySpan<byte> HeaderName => "proxycore-template"u8;

    private readonly Dictionary<string, Template> _templates = new(StringComparer.Ordinal);

    public PromptTemplates(IReadOnlyDictionary<string, LlmTemplateConfig> config)
    {
        foreach (var (id, template) in config)
        {
            var versions = new Dictionary<string, Version>(StringComparer.Ordinal);
            foreach (var (name, version) in template.Versions)
            {
                var messages = new Message[version.Messages.Count];
                for (int i = 0; i < messages.Length; i++)
                {
                    var parts = new List<LlmTemplateText.Part>();
                    _ = LlmTemplateText.TryParse(version.Messages[i].Content, parts); // validated with the config
                    messages[i] = new Message(version.Messages[i].Role, [.. parts]);
                }
                versions[name] = new Version(name, version.Model, messages);
            }
            string selected = template.Default ?? template.Versions.Keys.First();
            _templates[id] = new Template(id, versions, selected);
        }
    }

    private sealed record Template(string Id, Dictionary<string, Version> Versions, string Default);

    private sealed record Version(string Name, string? Model, Message[] Messages);

    private sealed record Message(string Role, LlmTemplateText.Part[] Parts)
    {
        public bool IsSystem => Role is "system" or "developer";
    }

    /// <summary>A request that cannot be filled: the status (400 or 404), the <c>proxycore-error</c> reason and what to tell the client.</summary>
    public readonly record struct Failure(int Status, string Reason, string Message);

    /// <summary>Fills the template the request names into its body; null on success (<paramref name="filled"/> set), else why not.</summary>
    public Failure? TryApply(ReadOnlySpan<byte> body, LlmApi api, ReadOnlySpan<byte> header, out byte[] filled)
    {
        filled = [];
        if (api is not (LlmApi.ChatCompletions or LlmApi.AnthropicMessages or LlmApi.Responses))
        {
            return new Failure(400, "template-not-applicable", "Prompt templates apply to chat/completions, responses and messages requests only.");
        }
        using var doc = JsonDocument.Parse(body.ToArray());
        var root = doc.RootElement;
        string? id = null, versionName = null;
        JsonElement variables = default;
        if (root.TryGetProperty("template"u8, out var field))
        {
            if (field.ValueKind != JsonValueKind.Object)
            {
                return new Failure(400, "invalid-template-field", "'template' must be an object: {\"id\": …, \"version\": …, \"variables\": {…}}.");
            }
            foreach (var property in field.EnumerateObject())
            {
                switch (property.Name)
                {
                    case "id" when property.Value.ValueKind == JsonValueKind.String:
                        id = property.Value.GetString();
                        break;
                    case "version" when property.Value.ValueKind is JsonValueKind.String or JsonValueKind.Number:
                        versionName = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : property.Value.GetRawText();
                        break;
                    case "variables" when property.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Null:
                        variables = property.Value;
                        break;
                    default:
                        return new Failure(400, "invalid-template-field", $"'template.{property.Name}' is not a field of a template reference (id: string, version: string, variables: object).");
                }
            }
        }
        if (!header.IsEmpty)
        {
            string selector = Encoding.UTF8.GetString(header).Trim();
            int at = selector.IndexOf('@');
            string headerId = at < 0 ? selector : selector[..at];
            string? headerVersion = at < 0 ? null : selector[(at + 1)..];
            if ((id is not null && id != headerId) || (versionName is not null && headerVersion is not null && versionName != headerVersion))
            {
                return new Failure(400, "template-conflict", "The proxycore-template header and the body's template field name different templates.");
            }
            id ??= headerId;
            versionName ??= headerVersion;
        }
        if (string.IsNullOrEmpty(id))
        {
            return new Failure(400, "invalid-template-field", "The template reference needs an 'id'.");
        }
        if (!_templates.TryGetValue(id, out var template))
        {
            return new Failure(404, "template-not-found", $"This route has no prompt template '{id}'.");
        }
        versionName ??= template.Default;
        if (!template.Versions.TryGetValue(versionName, out var version))
        {
            return new Failure(404, "template-version-not-found", $"Prompt template '{id}' has no version '{versionName}' (versions: {string.Join(", ", template.Versions.Keys)}).");
        }

        // Fill every message first: a missing variable is an answer, not half a body.
        var texts = new string[version.Messages.Length];
        var text = new StringBuilder();
        for (int i = 0; i < texts.Length; i++)
        {
            text.Clear();
            foreach (var part in version.Messages[i].Parts)
            {
                if (part.Variable is null)
                {
                    text.Append(part.Literal);
                    continue;
                }
                if (variables.ValueKind != JsonValueKind.Object || !variables.TryGetProperty(part.Variable, out var value))
                {
                    return new Failure(400, "template-variable-missing", $"Prompt template '{id}' version '{version.Name}' needs the variable '{part.Variable}', which template.variables does not give.");
                }
                switch (value.ValueKind)
                {
                    case JsonValueKind.String:
                        text.Append(value.GetString());
                        break;
                    case JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False:
                        text.Append(value.GetRawText());
                        break;
                    default:
                        return new Failure(400, "template-variable-invalid", $"Template variable '{part.Variable}' must be a string, number or boolean.");
                }
            }
            texts[i] = text.ToString();
        }
        filled = Write(root, api, version, texts);
        return null;
    }

    private static byte[] Write(JsonElement root, LlmApi api, Version version, string[] texts)
    {
        string? system = null;
        for (int i = 0; i < texts.Length; i++)
        {
            if (version.Messages[i].IsSystem && api != LlmApi.ChatCompletions)
            {
                system = system is null ? texts[i] : system + "\n\n" + texts[i];
            }
        }
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            bool wroteModel = false, wroteTurns = false, wroteSystem = false;
            string turns = api == LlmApi.Responses ? "input" : "messages";
            string systemName = api == LlmApi.Responses ? "instructions" : "system";
            foreach (var property in root.EnumerateObject())
            {
                if (property.NameEquals("template"u8))
                {
                    continue;
                }
                if (property.NameEquals("model"u8))
                {
                    wroteModel = true;
                }
                if (property.NameEquals(turns))
                {
                    json.WritePropertyName(turns);
                    WriteTurns(json, api, version, texts, property.Value);
                    wroteTurns = true;
                    continue;
                }
                if (system is not null && property.NameEquals(systemName))
                {
                    json.WritePropertyName(systemName);
                    WriteSystem(json, system, property.Value);
                    wroteSystem = true;
                    continue;
                }
                property.WriteTo(json);
            }
            if (!wroteModel && version.Model is not null)
            {
                json.WriteString("model"u8, version.Model);
            }
            if (!wroteTurns)
            {
                json.WritePropertyName(turns);
                WriteTurns(json, api, version, texts, default);
            }
            if (!wroteSystem && system is not null)
            {
                json.WriteString(systemName, system);
            }
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The template's turns, then the request's (a Responses <c>input</c> string becomes a user turn).</summary>
    private static void WriteTurns(Utf8JsonWriter json, LlmApi api, Version version, string[] texts, JsonElement own)
    {
        json.WriteStartArray();
        for (int i = 0; i < texts.Length; i++)
        {
            if (version.Messages[i].IsSystem && api != LlmApi.ChatCompletions)
            {
                continue;
            }
            json.WriteStartObject();
            json.WriteString("role"u8, version.Messages[i].Role);
            json.WriteString("content"u8, texts[i]);
            json.WriteEndObject();
        }
        if (own.ValueKind == JsonValueKind.Array)
        {
            foreach (var turn in own.EnumerateArray())
            {
                turn.WriteTo(json);
            }
        }
        else if (own.ValueKind == JsonValueKind.String)
        {
            json.WriteStartObject();
            json.WriteString("role"u8, "user"u8);
            json.WriteString("content"u8, own.GetString());
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }

    /// <summary>The template's system text before the request's own (a string, or Anthropic's list of text blocks).</summary>
    private static void WriteSystem(Utf8JsonWriter json, string system, JsonElement own)
    {
        switch (own.ValueKind)
        {
            case JsonValueKind.String:
                json.WriteStringValue(system + "\n\n" + own.GetString());
                break;
            case JsonValueKind.Array:
                json.WriteStartArray();
                json.WriteStartObject();
                json.WriteString("type"u8, "text"u8);
                json.WriteString("text"u8, system);
                json.WriteEndObject();
                foreach (var block in own.EnumerateArray())
                {
                    block.WriteTo(json);
                }
                json.WriteEndArray();
                break;
            default:
                json.WriteStringValue(system);
                break;
        }
    }
}
