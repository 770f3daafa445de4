//! Sender and recipient identities (SIP, tel, im, mailto URIs) read as a
//! telephone number or a `user@host` name.

/// What an identity names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Identity {
    /// A global number (RFC 3966 s.5.1.4): E.164 digits, without the `+`.
    Global(String),
    /// A local number (RFC 3966 s.5.1.5): its digits.
    Local(String),
    /// A user at a host (SIP AOR, `im:`, `mailto:`): the user part
    /// percent-decoded, the host lower-cased.
    Named {
        /// The user part.
        user: String,
        /// The host.
        host: String,
    },
}

/// E.164: "the maximum number of digits ... is 15" (ITU-T E.164 s.6).
const E164_MAX_DIGITS: usize = 15;

/// Reads `uri` (optionally in `<...>`). `None` when it names neither a
/// number nor a user at a host.
pub(crate) fn parse(uri: &str) -> Option<Identity> {
    let uri = uri.trim();
    let uri = match (uri.find('<'), uri.rfind('>')) {
        (Some(open), Some(close)) if open < close => uri.get(open + 1..close)?,
        _ => uri,
    };
    let (scheme, rest) = uri.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        // RFC 3966 s.3: telephone-uri = "tel:" telephone-subscriber
        "tel" => number(rest),
        "sip" | "sips" => sip(rest),
        // RFC 3860 s.3 (im:), RFC 6068 s.2 (mailto:): a mailbox, then optional headers.
        "im" | "pres" | "mailto" => {
            let mailbox = rest.split('?').next().unwrap_or("");
            let (user, host) = mailbox.rsplit_once('@')?;
            named(user, host)
        }
        _ => None,
    }
}

/// `telephone-subscriber` (RFC 3966 s.3), its parameters ignored.
fn number(subscriber: &str) -> Option<Identity> {
    let digits_part = subscriber.split(';').next().unwrap_or("");
    // RFC 3966 s.5.1.1: visual-separator = "-" / "." / "(" / ")" carry no meaning.
    let strip = |s: &str| -> Option<String> {
        let digits: String = s.chars().filter(|c| !matches!(c, '-' | '.' | '(' | ')')).collect();
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
    };
    if let Some(global) = digits_part.strip_prefix('+') {
        let digits = strip(global)?;
        // RFC 3966 s.5.1.4: "Globally unique numbers are identified by the leading '+'
        // character" and are E.164 numbers.
        (digits.len() <= E164_MAX_DIGITS).then_some(Identity::Global(digits))
    } else {
        // An SMPP address is at most 20 digits (C-Octet String of 21, SMPP v3.4 s.4.4.1).
        strip(digits_part).filter(|d| d.len() <= 20).map(Identity::Local)
    }
}

/// `sip:` / `sips:` (RFC 3261 s.19.1.1): `userinfo "@" hostport *uri-parameter [headers]`.
fn sip(rest: &str) -> Option<Identity> {
    let rest = rest.split('?').next().unwrap_or("");
    let (userinfo, hostport) = rest.split_once('@')?;
    // userinfo = ( user / telephone-subscriber ) [ ":" password ]
    let user = userinfo.split(':').next().unwrap_or("");
    let mut params = hostport.split(';');
    let host_port = params.next().unwrap_or("");
    let user_phone = params.any(|p| p.eq_ignore_ascii_case("user=phone"));
    // RFC 3261 s.19.1.6: with user=phone the user part is a telephone-subscriber; a
    // leading '+' with digits is read that way too (what IMS uses for tel-style SIP URIs).
    if user_phone || user.starts_with('+') {
        if let Some(n) = number(user) {
            return Some(n);
        }
    }
    let host = if host_port.starts_with('[') {
        host_port.get(..=host_port.find(']')?)?
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    named(user.split(';').next().unwrap_or(""), host)
}

fn named(user: &str, host: &str) -> Option<Identity> {
    let user = percent_decode(user)?;
    if user.is_empty() || host.is_empty() {
        return None;
    }
    Some(Identity::Named { user, host: host.to_ascii_lowercase() })
}

/// RFC 3986 s.2.1 percent-decoding; `None` for a bad escape or non-UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = |b: Option<u8>| char::from(b?).to_digit(16);
            let value = hex(bytes.next())? * 16 + hex(bytes.next())?;
            out.push(u8::try_from(value).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(d: &str) -> Option<Identity> {
        Some(Identity::Global(d.into()))
    }

    #[test]
    fn reads_identities() {
        assert_eq!(parse("tel:+44-7700-900001"), g("447700900001"));
        assert_eq!(parse("<tel:+447700900001;phone-context=x>"), g("447700900001"));
        assert_eq!(parse("sip:+447700900002@ims.example.com;user=phone"), g("447700900002"));
        assert_eq!(parse("sips:+447700900002@ims.example.com"), g("447700900002"));
        assert_eq!(parse("tel:1234;phone-context=example.com"), Some(Identity::Local("1234".into())));
        assert_eq!(
            parse("\"Alice\" <sip:alice%2eb@Example.COM:5061;transport=tcp>"),
            Some(Identity::Named { user: "alice.b".into(), host: "example.com".into() })
        );
        assert_eq!(
            parse("im:bob@example.net"),
            Some(Identity::Named { user: "bob".into(), host: "example.net".into() })
        );
        for bad in ["", "tel:", "tel:+", "tel:+1234567890123456", "sip:example.com", "http://x", "sip:%zz@h"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
