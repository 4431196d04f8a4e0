using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace ProxyCore.Llm.Safety;

/// <summary>Kinds of personal data the redactor finds (config names in <see cref="PiiRedactor.TryParseKind"/>).</summary>
[Flags]
public enum PiiKind : byte
{
    None = 0,
    Email = 1,
    Phone = 2,
    CreditCard = 4,
    Iban = 8,
    UsSsn = 16,
    IPv4 = 32,
    IPv6 = 64,
    All = Email | Phone | CreditCard | Iban | UsSsn | IPv4 | IPv6,
}

/// <summary>
/// Finds personal data in text and masks it (<c>[EMAIL]</c>, <c>[PHONE]</c>, <c>[CREDIT_CARD]</c>,
/// <c>[IBAN]</c>, <c>[SSN]</c>, <c>[IP_ADDRESS]</c>) or reports which kinds it found (block mode).
/// </summary>
/// <remarks>
/// <para>
/// Each kind is a source-generated regex for the candidate shape plus a check that the shape alone
/// cannot make, so numbers that merely look alike are left alone: card numbers must pass the Luhn
/// check (ISO/IEC 7812-1 Annex B), IBANs the ISO 13616 mod-97 check, SSNs the SSA's never-issued
/// ranges (area 000, 666, 900–999; group 00; serial 0000), IPv6 candidates <see cref="IPAddress.TryParse(string, out IPAddress)"/>,
/// phone numbers 10 to 15 digits (E.164's most is 15) or 8+ after a <c>+</c>, and never a date or a
/// dotted version string.
/// </para>
/// <para>
/// Order matters where shapes overlap: cards and IBANs, then SSNs, IP addresses, e-mail, phones last
/// (an IP or a card is also a run of digits). Every regex runs with a match timeout (1 s: the shapes are bounded, so only a starved CPU or a huge prompt comes near it): a timeout
/// is reported as <see cref="RegexMatchTimeoutException"/> to the caller, which fails closed.
/// </para>
/// </remarks>
public sealed partial class PiiRedactor
{
    private const int TimeoutMs = 1000;

    public PiiRedactor(PiiKind kinds) => Kinds = kinds;

    public PiiKind Kinds { get; }

    /// <summary>Config names: <c>email</c>, <c>phone</c>, <c>credit-card</c>, <c>iban</c>, <c>ssn</c>, <c>ip</c> (both families), <c>ipv4</c>, <c>ipv6</c>, <c>all</c>.</summary>
    public static bool TryParseKind(string name, out PiiKind kind)
    {
        kind = name switch
        {
            "email" => PiiKind.Email,
            "phone" => PiiKind.Phone,
            "credit-card" => PiiKind.CreditCard,
            "iban" => PiiKind.Iban,
            "ssn" => PiiKind.UsSsn,
            "ip" => PiiKind.IPv4 | PiiKind.IPv6,
            "ipv4" => PiiKind.IPv4,
            "ipv6" => PiiKind.IPv6,
            "all" => PiiKind.All,
            _ => PiiKind.None,
        };
        return kind != PiiKind.None;
    }

    /// <summary>The mask written in place of a finding.</summary>
    public static string Mask(PiiKind kind) => kind switch
    {
        PiiKind.Email => "[EMAIL]",
        PiiKind.Phone => "[PHONE]",
        PiiKind.CreditCard => "[CREDIT_CARD]",
        PiiKind.Iban => "[IBAN]",
        PiiKind.UsSsn => "[SSN]",
        PiiKind.IPv4 or PiiKind.IPv6 => "[IP_ADDRESS]",
        _ => "[PII]",
    };

    /// <summary>Which kinds occur in <paramref name="text"/> (block mode: nothing is changed).</summary>
    public PiiKind Scan(string text)
    {
        Redact(text, out var found, rewrite: false);
        return found;
    }

    /// <summary>The text with every finding masked; <paramref name="found"/> says which kinds were.</summary>
    public string Redact(string text, out PiiKind found) => Redact(text, out found, rewrite: true);

    private string Redact(string text, out PiiKind found, bool rewrite)
    {
        found = PiiKind.None;
        if (text.Length < 3)
        {
            return text; // the shortest finding (::1) is 3 chars
        }
        if ((Kinds & PiiKind.CreditCard) != 0)
        {
            text = Apply(text, CardCandidate(), PiiKind.CreditCard, IsCard, ref found, rewrite);
        }
        if ((Kinds & PiiKind.Iban) != 0)
        {
            text = Apply(text, IbanCandidate(), PiiKind.Iban, IsIban, ref found, rewrite);
        }
        if ((Kinds & PiiKind.UsSsn) != 0)
        {
            text = Apply(text, SsnCandidate(), PiiKind.UsSsn, IsSsn, ref found, rewrite);
        }
        if ((Kinds & PiiKind.IPv4) != 0)
        {
            text = Apply(text, IPv4Candidate(), PiiKind.IPv4, static _ => true, ref found, rewrite);
        }
        if ((Kinds & PiiKind.IPv6) != 0)
        {
            text = Apply(text, IPv6Candidate(), PiiKind.IPv6, IsIPv6, ref found, rewrite);
        }
        if ((Kinds & PiiKind.Email) != 0)
        {
            text = Apply(text, EmailCandidate(), PiiKind.Email, static _ => true, ref found, rewrite);
        }
        if ((Kinds & PiiKind.Phone) != 0)
        {
            text = Apply(text, PhoneCandidate(), PiiKind.Phone, IsPhone, ref found, rewrite);
        }
        return text;
    }

    private static string Apply(string text, Regex candidate, PiiKind kind, Func<string, bool> check, ref PiiKind found, bool rewrite)
    {
        StringBuilder? output = null;
        int copied = 0;
        for (var m = candidate.Match(text); m.Success; m = m.NextMatch())
        {
            if (!check(m.Value))
            {
                continue;
            }
            found |= kind;
            if (!rewrite)
            {
                return text;
            }
            output ??= new StringBuilder(text.Length);
            output.Append(text, copied, m.Index - copied).Append(Mask(kind));
            copied = m.Index + m.Length;
        }
        return output is null ? text : output.Append(text, copied, text.Length - copied).ToString();
    }

    /// <summary>ISO/IEC 7812-1 Annex B: from the rightmost digit, double every second digit, sum the digits; valid when the sum is a multiple of 10.</summary>
    internal static bool Luhn(ReadOnlySpan<char> digits)
    {
        int sum = 0;
        bool doubleIt = false;
        for (int i = digits.Length - 1; i >= 0; i--)
        {
            int d = digits[i] - '0';
            if (doubleIt)
            {
                d *= 2;
                if (d > 9)
                {
                    d -= 9;
                }
            }
            sum += d;
            doubleIt = !doubleIt;
        }
        return sum % 10 == 0;
    }

    private static string DigitsOf(string value)
    {
        var sb = new StringBuilder(value.Length);
        foreach (char c in value)
        {
            if (char.IsAsciiDigit(c))
            {
                sb.Append(c);
            }
        }
        return sb.ToString();
    }

    private static bool IsCard(string value)
    {
        string digits = DigitsOf(value);
        // 13–19 digits (ISO/IEC 7812); all-same digits (0000 0000 0000 0000) pass Luhn but are placeholders.
        return digits.Length is >= 13 and <= 19 && digits.AsSpan().IndexOfAnyExcept(digits[0]) >= 0 && Luhn(digits);
    }

    /// <summary>ISO 13616-1: move the first four characters to the end, letters to numbers (A=10 … Z=35); the number mod 97 must be 1.</summary>
    internal static bool IsIban(string value)
    {
        Span<char> compact = stackalloc char[34];
        int n = 0;
        foreach (char c in value)
        {
            if (c == ' ')
            {
                continue;
            }
            if (n == compact.Length)
            {
                return false;
            }
            compact[n++] = char.ToUpperInvariant(c);
        }
        if (n < 15)
        {
            return false; // Norway's 15 is the shortest
        }
        int remainder = 0;
        for (int k = 0; k < n; k++)
        {
            char c = compact[(k + 4) % n];
            if (char.IsAsciiDigit(c))
            {
                remainder = (remainder * 10 + (c - '0')) % 97;
            }
            else if (char.IsAsciiLetterUpper(c))
            {
                remainder = (remainder * 100 + (c - 'A' + 10)) % 97;
            }
            else
            {
                return false;
            }
        }
        return remainder == 1;
    }

    private static bool IsSsn(string value)
    {
        int area = int.Parse(value.AsSpan(0, 3));
        int group = int.Parse(value.AsSpan(4, 2));
        int serial = int.Parse(value.AsSpan(7, 4));
        return area is not (0 or 666) && area < 900 && group != 0 && serial != 0;
    }

    private static bool IsIPv6(string value) =>
        value.Contains("::", StringComparison.Ordinal) || value.Count(c => c == ':') == 7
            // A digit is required: "a::b" (C++ scope) and "dead::beef" parse, but are never what a prompt means.
            ? value.AsSpan().IndexOfAnyInRange('0', '9') >= 0 && IPAddress.TryParse(value, out var address) && address.AddressFamily == AddressFamily.InterNetworkV6
            : false;

    private static bool IsPhone(string value)
    {
        string digits = DigitsOf(value);
        bool plus = value.StartsWith('+');
        if (digits.Length > 15 || digits.Length < (plus ? 8 : 10))
        {
            return false;
        }
        int groups = value.Split([' ', '-', '.', '(', ')'], StringSplitOptions.RemoveEmptyEntries).Length;
        if (!plus && !value.Contains('(') && groups > 3)
        {
            return false; // national numbers print in at most three groups (555 123 4567); 1234 5678 9012 34 is an account number
        }
        if (!plus && !value.Contains('(') && !value.Contains(' ') && !value.Contains('-'))
        {
            // Dots only (or no separators at all): 555.123.4567 is a phone; 10.0.19041.1 and 20240115 are not.
            var dotted = value.Split('.');
            return dotted.Length == 3 && dotted[0].Length == 3 && dotted[1].Length == 3 && dotted[2].Length == 4;
        }
        // yyyy-mm-dd and dd-mm-yyyy dates have 8 digits and are already out; a time stamp with a date
        // (2024-01-15 10:30) has spaces and dashes but only 12 digits in 2-4-2 groups: reject that shape.
        if (DateLike().IsMatch(value))
        {
            return false;
        }
        return true;
    }

    [GeneratedRegex(@"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])", RegexOptions.CultureInvariant, TimeoutMs)]
    private static partial Regex CardCandidate();

    // ISO 13616: country code, two check digits, then the BBAN, printed in groups of four.
    [GeneratedRegex(@"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b", RegexOptions.CultureInvariant, TimeoutMs)]
    private static partial Regex IbanCandidate();

    [GeneratedRegex(@"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])", RegexOptions.CultureInvariant, TimeoutMs)]
    private static partial Regex SsnCandidate();

    [GeneratedRegex(@"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)", RegexOptions.CultureInvariant, TimeoutMs)]
    private static partial Regex IPv4Candidate();

    [GeneratedRegex(@"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:|:){1,7}(?::|[0-9A-Fa-f]{1,4})(?:%\w+)?(?![\w:])", RegexOptions.CultureInvariant, TimeoutMs)]
    private static partial Regex IPv6Candidate();

    [GeneratedRegex(@"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.){1,8}[A-Za-z]{2,24}(?![\w-])", RegexOptions.CultureInvariant, TimeoutMs)]
    private static partial Regex EmailCandidate();

    [GeneratedRegex(@"(?<![\w+.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,5}(?![\w-]|\.\d)", RegexOptions.CultureInvariant, TimeoutMs)]
    private static partial Regex PhoneCandidate();

    [GeneratedRegex(@"^(?:\d{4}-\d{2}-\d{2}|\d{2}-\d{2}-\d{4})(?:\D|$)", RegexOptions.CultureInvariant, TimeoutMs)]
    private static partial Regex DateLike();
}
