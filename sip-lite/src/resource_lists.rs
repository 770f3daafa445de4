//! Resource lists (RFC 4826) as sent in an INVITE to a conference factory
//! for an ad-hoc group (RFC 5366), with the copy-control attributes of
//! RFC 5364.
//!
//! [`read()`] parses the document with quick-xml's namespace-aware reader and
//! returns the `<entry>` elements of every `<list>`, nested lists flattened,
//! in document order. `<entry-ref>`, `<external>` and elements of other
//! namespaces are skipped (RFC 5366 s.4: a conference factory "MAY discard
//! all the extra information"). [`write()`] produces a flat list in the
//! `urn:ietf:params:xml:ns:resource-lists` namespace, and
//! `read(write(x)) == x`. [`part()`] wraps the document into the body part of
//! RFC 5366 s.4 (`Content-Disposition: recipient-list`); the INVITE MUST also
//! carry `Require: recipient-list-invite` ([`OPTION_TAG`]).
//!
//! Values are owned `String`s: XML escapes (`&amp;`, `&#13;`) make slices of
//! the input impossible in general.

use bytes::Bytes;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;
use thiserror::Error;

use crate::multipart::Part;
use crate::sip::Uri;

/// The resource-lists namespace (RFC 4826 s.3.2).
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:resource-lists";
/// The copy-control namespace (RFC 5364 s.4).
pub const COPY_CONTROL_NAMESPACE: &str = "urn:ietf:params:xml:ns:copycontrol";
/// The media type of a resource-lists document (RFC 4826 s.3.1).
pub const CONTENT_TYPE: &str = "application/resource-lists+xml";
/// The Content-Disposition of the list part of an INVITE (RFC 5366 s.4).
pub const DISPOSITION: &str = "recipient-list";
/// The option tag the INVITE MUST carry in `Require` (RFC 5366 s.4).
pub const OPTION_TAG: &str = "recipient-list-invite";
/// Entries accepted by [`read()`] unless the caller says otherwise.
pub const DEFAULT_MAX_ENTRIES: usize = 100;

/// The role of a recipient (RFC 5364 s.4 `copyControl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum CopyControl {
    /// `to`: a primary recipient.
    To,
    /// `cc`: a carbon-copy recipient.
    Cc,
    /// `bcc`: a blind recipient, hidden from the others.
    Bcc,
}

impl CopyControl {
    /// The attribute value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::To => "to",
            Self::Cc => "cc",
            Self::Bcc => "bcc",
        }
    }
}

/// One `<entry>`: a recipient.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Entry {
    /// The `uri` attribute (RFC 4826 s.3.2: mandatory).
    pub uri: String,
    /// The `<display-name>` child, exactly as written (unescaped, untrimmed).
    pub display_name: Option<String>,
    /// The `cp:copyControl` attribute (RFC 5364), when present.
    pub copy_control: Option<CopyControl>,
    /// The `cp:anonymize` attribute (RFC 5364) is `true`.
    pub anonymize: bool,
}

impl Entry {
    /// An entry with only a URI.
    #[must_use]
    pub fn new(uri: impl Into<String>) -> Self {
        Self { uri: uri.into(), display_name: None, copy_control: None, anonymize: false }
    }
}

/// Why a resource-lists document cannot be read or written.
///
/// `at` is a byte offset in the document, at or after the offending markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResourceListsError {
    /// The document is not well-formed XML (as quick-xml reports it).
    #[error("malformed XML at byte {at}")]
    Xml {
        /// Offset where the reader stopped.
        at: usize,
    },
    /// The root is not `<resource-lists>` in the RFC 4826 namespace, or a second root follows.
    #[error("root element at byte {at} is not resource-lists (RFC 4826 s.3.2)")]
    Root {
        /// Offset after the element's tag.
        at: usize,
    },
    /// The document ends inside an element or has no root.
    #[error("document ends at byte {at} before its root element is closed")]
    Unclosed {
        /// The document length.
        at: usize,
    },
    /// An `<entry>` without a non-empty `uri` (RFC 4826 s.3.2: `use="required"`).
    #[error("entry at byte {at} has no uri (RFC 4826 s.3.2)")]
    MissingUri {
        /// Offset after the entry's tag.
        at: usize,
    },
    /// A `copyControl` other than `to`, `cc`, `bcc`, or an `anonymize` that is not an xs:boolean (RFC 5364 s.4).
    #[error("invalid copy-control attribute at byte {at} (RFC 5364 s.4)")]
    CopyControl {
        /// Offset after the entry's tag.
        at: usize,
    },
    /// A character XML 1.0 does not allow (a control character, U+FFFE, U+FFFF).
    #[error("character not allowed in XML at byte {at}")]
    Char {
        /// Offset after the markup holding it.
        at: usize,
    },
    /// More entries than the caller's limit.
    #[error("entry at byte {at} exceeds the limit of {limit} entries")]
    TooManyEntries {
        /// Offset after the first entry's tag past the limit.
        at: usize,
        /// The limit.
        limit: usize,
    },
    /// (Local) [`write()`] was given entry `index` with an empty URI or a character XML cannot carry.
    #[error("entry {index} cannot be written")]
    InvalidEntry {
        /// Index of the entry, from 0.
        index: usize,
    },
}

/// XML 1.0 s.2.2: `Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    List,
    Entry,
    DisplayName,
    Skip,
}

/// `entries` with every entry whose URI is the same resource as an earlier
/// one's removed (the first is kept). RFC 4826 s.3.2: uniqueness of `uri`
/// in a list "is determined by case-sensitive string comparisons. As such,
/// it is possible that two "uri" attributes will have the same URI when
/// compared using the functional equality rules defined for that URI
/// scheme"; this applies those rules ([`Uri::equivalent`], RFC 3261
/// s.19.1.4), and exact text for a URI that does not parse. Quadratic in
/// the entries, which [`read_with`] bounds.
#[must_use]
pub fn distinct(entries: Vec<Entry>) -> Vec<Entry> {
    let mut kept: Vec<Entry> = Vec::with_capacity(entries.len());
    for entry in entries {
        let uri = Uri::parse(&entry.uri);
        let seen = kept.iter().any(|k| match (&uri, Uri::parse(&k.uri)) {
            (Ok(a), Ok(b)) => a.equivalent(&b),
            _ => k.uri == entry.uri,
        });
        if !seen {
            kept.push(entry);
        }
    }
    kept
}

/// Reads a resource-lists document with at most [`DEFAULT_MAX_ENTRIES`] entries.
///
/// # Errors
/// See [`ResourceListsError`].
pub fn read(xml: &[u8]) -> Result<Vec<Entry>, ResourceListsError> {
    read_with(xml, DEFAULT_MAX_ENTRIES)
}

/// Reads a resource-lists document: every entry, nested lists flattened.
///
/// # Errors
/// See [`ResourceListsError`]; [`ResourceListsError::TooManyEntries`] past `max_entries`.
pub fn read_with(xml: &[u8], max_entries: usize) -> Result<Vec<Entry>, ResourceListsError> {
    let mut reader = NsReader::from_reader(xml);
    reader.config_mut().trim_text(false);
    let pos = |r: &NsReader<&[u8]>| usize::try_from(r.buffer_position()).unwrap_or(usize::MAX);
    let mut stack: Vec<Ctx> = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    let mut current: Option<Entry> = None;
    let mut root_seen = false;
    loop {
        let step = reader
            .read_resolved_event()
            .map(|(ns, event)| (matches!(ns, ResolveResult::Bound(Namespace(n)) if n == NAMESPACE.as_bytes()), event));
        let (in_rl, event) = step.map_err(|_| ResourceListsError::Xml { at: pos(&reader) })?;
        let at = pos(&reader);
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.local_name();
                let name = name.as_ref();
                let ctx = match stack.last() {
                    None if root_seen => return Err(ResourceListsError::Root { at }),
                    // RFC 4826 s.3.2: <resource-lists> in the resource-lists namespace is the root.
                    None if in_rl && name == b"resource-lists" => Ctx::Root,
                    None => return Err(ResourceListsError::Root { at }),
                    Some(Ctx::Root | Ctx::List) if in_rl && name == b"list" => Ctx::List,
                    Some(Ctx::List) if in_rl && name == b"entry" => {
                        if entries.len() == max_entries {
                            return Err(ResourceListsError::TooManyEntries { at, limit: max_entries });
                        }
                        current = Some(entry(&reader, e, at)?);
                        Ctx::Entry
                    }
                    Some(Ctx::Entry) if in_rl && name == b"display-name" => {
                        if let Some(entry) = current.as_mut() {
                            entry.display_name = Some(String::new());
                        }
                        Ctx::DisplayName
                    }
                    // entry-ref, external, list-level display-name, extensions: not needed here.
                    _ => Ctx::Skip,
                };
                root_seen = true;
                if empty {
                    close(ctx, &mut current, &mut entries);
                } else {
                    stack.push(ctx);
                }
            }
            Event::End(_) => {
                if let Some(ctx) = stack.pop() {
                    close(ctx, &mut current, &mut entries);
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|_| ResourceListsError::Xml { at })?;
                match stack.last() {
                    Some(Ctx::DisplayName) => push_text(&mut current, &text, at)?,
                    None if !text.trim().is_empty() => return Err(ResourceListsError::Xml { at }),
                    _ => {}
                }
            }
            Event::CData(t) => {
                if stack.last() == Some(&Ctx::DisplayName) {
                    let text = std::str::from_utf8(&t).map_err(|_| ResourceListsError::Xml { at })?;
                    push_text(&mut current, text, at)?;
                }
            }
            Event::Eof => {
                if !stack.is_empty() || !root_seen {
                    return Err(ResourceListsError::Unclosed { at: xml.len() });
                }
                return Ok(entries);
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
}

fn close(ctx: Ctx, current: &mut Option<Entry>, entries: &mut Vec<Entry>) {
    if ctx == Ctx::Entry {
        entries.extend(current.take());
    }
}

fn push_text(current: &mut Option<Entry>, text: &str, at: usize) -> Result<(), ResourceListsError> {
    if !text.chars().all(is_xml_char) {
        return Err(ResourceListsError::Char { at });
    }
    if let Some(name) = current.as_mut().and_then(|e| e.display_name.as_mut()) {
        name.push_str(text);
    }
    Ok(())
}

/// Reads the attributes of an `<entry>` start tag.
fn entry(reader: &NsReader<&[u8]>, e: &BytesStart<'_>, at: usize) -> Result<Entry, ResourceListsError> {
    let mut out = Entry::new(String::new());
    for attr in e.attributes() {
        let attr = attr.map_err(|_| ResourceListsError::Xml { at })?;
        let (ns, local) = reader.resolve_attribute(attr.key);
        let value = attr.unescape_value().map_err(|_| ResourceListsError::Xml { at })?;
        if !value.chars().all(is_xml_char) {
            return Err(ResourceListsError::Char { at });
        }
        // RFC 5366 s.6 Figure 3 spells the namespace "copyControl": compare it case-insensitively.
        let copy_ns = matches!(ns, ResolveResult::Bound(Namespace(n)) if n.eq_ignore_ascii_case(COPY_CONTROL_NAMESPACE.as_bytes()));
        match (ns, local.as_ref()) {
            (ResolveResult::Unbound, b"uri") => out.uri = value.into_owned(),
            (_, b"copyControl") if copy_ns => {
                // RFC 5364 s.4: copyControl is one of "to", "cc", "bcc".
                out.copy_control = Some(match &*value {
                    "to" => CopyControl::To,
                    "cc" => CopyControl::Cc,
                    "bcc" => CopyControl::Bcc,
                    _ => return Err(ResourceListsError::CopyControl { at }),
                });
            }
            (_, b"anonymize") if copy_ns => {
                // RFC 5364 s.4: anonymize is an xs:boolean.
                out.anonymize = match value.trim() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(ResourceListsError::CopyControl { at }),
                };
            }
            _ => {}
        }
    }
    if out.uri.is_empty() {
        return Err(ResourceListsError::MissingUri { at });
    }
    Ok(out)
}

/// Escapes for an attribute value or text: markup characters and the
/// whitespace an XML parser would normalize, as character references.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes a flat resource-lists document (RFC 4826, RFC 5364 attributes).
///
/// # Errors
/// [`ResourceListsError::InvalidEntry`] for an entry with an empty URI or a
/// character XML 1.0 cannot carry.
pub fn write(entries: &[Entry]) -> Result<Bytes, ResourceListsError> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
    out.push_str(&format!("<resource-lists xmlns=\"{NAMESPACE}\" xmlns:cp=\"{COPY_CONTROL_NAMESPACE}\">\r\n"));
    out.push_str("  <list>\r\n");
    for (index, e) in entries.iter().enumerate() {
        let chars_ok = e.uri.chars().chain(e.display_name.iter().flat_map(|d| d.chars())).all(is_xml_char);
        if e.uri.is_empty() || !chars_ok {
            return Err(ResourceListsError::InvalidEntry { index });
        }
        out.push_str(&format!("    <entry uri=\"{}\"", escape(&e.uri)));
        if let Some(cc) = e.copy_control {
            out.push_str(&format!(" cp:copyControl=\"{}\"", cc.as_str()));
        }
        if e.anonymize {
            out.push_str(" cp:anonymize=\"true\"");
        }
        match &e.display_name {
            Some(name) => {
                out.push_str(&format!(">\r\n      <display-name>{}</display-name>\r\n    </entry>\r\n", escape(name)))
            }
            None => out.push_str("/>\r\n"),
        }
    }
    out.push_str("  </list>\r\n</resource-lists>\r\n");
    Ok(Bytes::from(out))
}

/// The body part of RFC 5366 s.4 carrying `entries`: Content-Type
/// [`CONTENT_TYPE`] and `Content-Disposition: recipient-list`.
///
/// # Errors
/// As [`write()`].
pub fn part(entries: &[Entry]) -> Result<Part, ResourceListsError> {
    let body = write(entries)?;
    // The header names and values are constants: Part::new cannot refuse them.
    Part::new(&[("Content-Type", CONTENT_TYPE), ("Content-Disposition", DISPOSITION)], body)
        .map_err(|_| ResourceListsError::InvalidEntry { index: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC5366_FIG3: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"
          xmlns:cp="urn:ietf:params:xml:ns:copyControl">
  <list>
    <entry uri="sip:bill@example.com" cp:copyControl="to" />
    <entry uri="sip:randy@example.net" cp:copyControl="to"
                                       cp:anonymize="true"/>
    <entry uri="sip:joe@example.org" cp:copyControl="cc" />
    <entry uri="sip:ted@example.net" cp:copyControl="bcc" />
  </list>
</resource-lists>
"#;

    fn e(uri: &str, cc: Option<CopyControl>, anonymize: bool, name: Option<&str>) -> Entry {
        Entry { uri: uri.into(), display_name: name.map(String::from), copy_control: cc, anonymize }
    }

    #[test]
    fn reads_rfc5366_figure_3() {
        use CopyControl::{Bcc, Cc, To};
        let got = read(RFC5366_FIG3.as_bytes()).unwrap();
        assert_eq!(
            got,
            [
                e("sip:bill@example.com", Some(To), false, None),
                e("sip:randy@example.net", Some(To), true, None),
                e("sip:joe@example.org", Some(Cc), false, None),
                e("sip:ted@example.net", Some(Bcc), false, None),
            ]
        );
        assert_eq!(read(&write(&got).unwrap()), Ok(got));
    }

    #[test]
    fn reads() {
        let ns = r#"xmlns="urn:ietf:params:xml:ns:resource-lists""#;
        let cases: Vec<(String, Result<Vec<Entry>, ResourceListsError>)> = vec![
            // Nested lists are flattened; entry-ref, external and foreign elements skipped.
            (
                format!(
                    r#"<resource-lists {ns} xmlns:x="urn:x"><list name="a"><display-name>L</display-name>
                    <entry uri="sip:a@x"><display-name xml:lang="en"> A &amp; B </display-name><x:y/></entry>
                    <list><entry uri="sip:b@x"/><entry-ref ref="r"/><external anchor="h"/></list>
                    <x:entry uri="sip:no@x"/></list><list><entry uri="sip:c&#13;@x"><display-name><![CDATA[<c>]]></display-name></entry></list></resource-lists>"#
                ),
                Ok(vec![
                    e("sip:a@x", None, false, Some(" A & B ")),
                    e("sip:b@x", None, false, None),
                    e("sip:c\r@x", None, false, Some("<c>")),
                ]),
            ),
            (format!("<resource-lists {ns}/>"), Ok(vec![])),
            (
                format!("<resource-lists {ns}><list><entry uri=''><display-name/></entry></list></resource-lists>"),
                Err(ResourceListsError::MissingUri { at: 82 }),
            ),
            (
                format!("<resource-lists {ns}><list><entry/></list></resource-lists>"),
                Err(ResourceListsError::MissingUri { at: 76 }),
            ),
            (
                format!(
                    r#"<resource-lists {ns} xmlns:cp="urn:ietf:params:xml:ns:copycontrol"><list><entry uri="u" cp:copyControl="To"/></list></resource-lists>"#
                ),
                Err(ResourceListsError::CopyControl { at: 150 }),
            ),
            ("<resource-lists><list/></resource-lists>".into(), Err(ResourceListsError::Root { at: 16 })),
            (format!("<resource-lists {ns}/><resource-lists {ns}/>"), Err(ResourceListsError::Root { at: 126 })),
            (format!("<resource-lists {ns}><list>"), Err(ResourceListsError::Unclosed { at: 68 })),
            ("".into(), Err(ResourceListsError::Unclosed { at: 0 })),
            (format!("<resource-lists {ns}><list></resource-lists>"), Err(ResourceListsError::Xml { at: 85 })),
            (
                format!("<resource-lists {ns}><list><entry uri='&#1;'/></list></resource-lists>"),
                Err(ResourceListsError::Char { at: 87 }),
            ),
        ];
        let mut wrong = Vec::new();
        for (xml, want) in &cases {
            let got = read(xml.as_bytes());
            if got != *want {
                wrong.push((xml, got));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn entries_limit() {
        let entries: Vec<Entry> = (0..5).map(|i| Entry::new(format!("sip:{i}@x"))).collect();
        let xml = write(&entries).unwrap();
        assert_eq!(read_with(&xml, 5).map(|v| v.len()), Ok(5));
        assert!(matches!(read_with(&xml, 4), Err(ResourceListsError::TooManyEntries { limit: 4, .. })));
        assert_eq!(read_with(&xml, 0).map_err(|e| matches!(e, ResourceListsError::TooManyEntries { .. })), Err(true));
    }

    #[test]
    fn write_round_trips_and_refuses_what_xml_cannot_carry() {
        let entries = vec![
            e("sip:a@x;p=\"1\"&q=<2>", Some(CopyControl::Bcc), true, Some(" tab\there\r\nnew ' \" ")),
            e("sip:b@x", None, false, Some("")),
            e("tel:+1", Some(CopyControl::Cc), false, None),
        ];
        let xml = write(&entries).unwrap();
        let text = std::str::from_utf8(&xml).unwrap();
        assert!(text.contains(r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists""#), "{text}");
        assert_eq!(read(&xml), Ok(entries));
        assert_eq!(write(&[Entry::new("")]), Err(ResourceListsError::InvalidEntry { index: 0 }));
        assert_eq!(write(&[Entry::new("a"), Entry::new("\u{1}")]), Err(ResourceListsError::InvalidEntry { index: 1 }));
        assert_eq!(write(&[]).map(|x| read(&x)), Ok(Ok(vec![])));
    }

    #[test]
    fn invite_part() {
        let p = part(&[Entry::new("sip:a@x")]).unwrap();
        assert_eq!(p.media_type().as_deref(), Some(CONTENT_TYPE));
        assert_eq!(p.disposition().as_deref(), Some(DISPOSITION));
        assert_eq!(read(p.body()), Ok(vec![Entry::new("sip:a@x")]));
    }

    #[test]
    fn distinct_keeps_the_first_of_each_resource() {
        let entries =
            ["sip:%61lice@a.example.com", "sip:bob@b.example.com", "sip:alice@A.EXAMPLE.COM", "not a uri", "not a uri"];
        let kept = distinct(entries.into_iter().map(Entry::new).collect());
        let uris: Vec<&str> = kept.iter().map(|e| e.uri.as_str()).collect();
        assert_eq!(uris, ["sip:%61lice@a.example.com", "sip:bob@b.example.com", "not a uri"]);
    }
}
