//! IMDN payloads (RFC 5438 s.11, `message/imdn+xml`): the delivery, display
//! and processing notifications a CPM controlling function sends back, one
//! per group member, each wrapped in its own CPIM message.
//!
//! [`read()`] parses a notification with quick-xml's namespace-aware reader;
//! [`write()`] produces the canonical document of RFC 5438 s.7.2.1.1, and
//! `read(&write(&x)?) == Ok(x)`. [`Imdn::answering`] fills a notification from
//! the CPIM message it answers (if the sender asked for that kind);
//! [`wrap`] puts a notification into a [`cpim::Builder`] with the headers of
//! RFC 5438 s.7.2.1; [`from_message`] takes one out again.
//!
//! Decisions where the RFC leaves room:
//! - `<recipient-uri>`, `<original-recipient-uri>` and `<subject>` are each
//!   optional, as RFC 5438 s.11.1.3 to s.11.1.5 say (the s.11.1.9 schema
//!   groups them).
//! - Exactly one of the three notification elements, with a `<status>`
//!   holding one status element of its kind (RFC 5438 s.11.1.6, s.11.1.7).
//!   Elements of other namespaces (the schema's extension points) are
//!   skipped; so are unknown elements of the IMDN namespace.
//! - `<message-id>` (`xs:token`) and the URIs (`xs:anyURI`) are trimmed;
//!   `<datetime>` and `<subject>` (`xs:string`) are kept as written.
//!
//! Values are owned `String`s: XML escapes make slices of the input
//! impossible in general.

use bytes::Bytes;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;
use thiserror::Error;

use crate::cpim::{self, Address, BuildError, Builder, Message};

/// The IMDN XML namespace (RFC 5438 s.11.1).
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:imdn";
/// The media type of an IMDN payload (RFC 5438 s.11.1.8).
pub const CONTENT_TYPE: &str = "message/imdn+xml";
/// The Content-Disposition of an IMDN (RFC 5438 s.7.2.1).
pub const DISPOSITION: &str = "notification";

/// A `<delivery-notification>` status (RFC 5438 s.11.1.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum DeliveryStatus {
    /// `<delivered/>`.
    Delivered,
    /// `<failed/>`.
    Failed,
    /// `<forbidden/>`: the disposition was denied.
    Forbidden,
    /// `<error/>`: internal server error.
    Error,
}

/// A `<display-notification>` status (RFC 5438 s.11.1.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum DisplayStatus {
    /// `<displayed/>`.
    Displayed,
    /// `<forbidden/>`.
    Forbidden,
    /// `<error/>`.
    Error,
}

/// A `<processing-notification>` status (RFC 5438 s.11.1.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ProcessingStatus {
    /// `<processed/>`.
    Processed,
    /// `<stored/>`.
    Stored,
    /// `<forbidden/>`.
    Forbidden,
    /// `<error/>`.
    Error,
}

/// The disposition reported, with its status (RFC 5438 s.11.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Notification {
    /// `<delivery-notification>`.
    Delivery(DeliveryStatus),
    /// `<display-notification>`.
    Display(DisplayStatus),
    /// `<processing-notification>`.
    Processing(ProcessingStatus),
}

impl Notification {
    const fn element(self) -> &'static str {
        match self {
            Self::Delivery(_) => "delivery-notification",
            Self::Display(_) => "display-notification",
            Self::Processing(_) => "processing-notification",
        }
    }

    const fn status(self) -> &'static str {
        match self {
            Self::Delivery(DeliveryStatus::Delivered) => "delivered",
            Self::Delivery(DeliveryStatus::Failed) => "failed",
            Self::Display(DisplayStatus::Displayed) => "displayed",
            Self::Processing(ProcessingStatus::Processed) => "processed",
            Self::Processing(ProcessingStatus::Stored) => "stored",
            Self::Delivery(DeliveryStatus::Forbidden)
            | Self::Display(DisplayStatus::Forbidden)
            | Self::Processing(ProcessingStatus::Forbidden) => "forbidden",
            Self::Delivery(DeliveryStatus::Error)
            | Self::Display(DisplayStatus::Error)
            | Self::Processing(ProcessingStatus::Error) => "error",
        }
    }

    /// Whether `asked` requests this notification: a `<delivered/>` answers
    /// `positive-delivery`, any other delivery status `negative-delivery`.
    #[must_use]
    pub const fn is_requested(self, asked: cpim::DispositionNotification) -> bool {
        match self {
            Self::Delivery(DeliveryStatus::Delivered) => asked.positive_delivery,
            Self::Delivery(_) => asked.negative_delivery,
            Self::Display(_) => asked.display,
            Self::Processing(_) => asked.processing,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Delivery,
    Display,
    Processing,
}

impl Kind {
    fn status(self, name: &[u8]) -> Option<Notification> {
        use Notification as N;
        Some(match (self, name) {
            (Self::Delivery, b"delivered") => N::Delivery(DeliveryStatus::Delivered),
            (Self::Delivery, b"failed") => N::Delivery(DeliveryStatus::Failed),
            (Self::Delivery, b"forbidden") => N::Delivery(DeliveryStatus::Forbidden),
            (Self::Delivery, b"error") => N::Delivery(DeliveryStatus::Error),
            (Self::Display, b"displayed") => N::Display(DisplayStatus::Displayed),
            (Self::Display, b"forbidden") => N::Display(DisplayStatus::Forbidden),
            (Self::Display, b"error") => N::Display(DisplayStatus::Error),
            (Self::Processing, b"processed") => N::Processing(ProcessingStatus::Processed),
            (Self::Processing, b"stored") => N::Processing(ProcessingStatus::Stored),
            (Self::Processing, b"forbidden") => N::Processing(ProcessingStatus::Forbidden),
            (Self::Processing, b"error") => N::Processing(ProcessingStatus::Error),
            _ => return None,
        })
    }
}

/// One IMDN payload (RFC 5438 s.11.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Imdn {
    /// `<message-id>`: the `imdn.Message-ID` of the IM answered (RFC 5438 s.11.1.1).
    pub message_id: String,
    /// `<datetime>`: the `DateTime` of the IM answered (RFC 5438 s.11.1.2).
    pub datetime: String,
    /// `<recipient-uri>`: the final recipient (RFC 5438 s.11.1.3).
    pub recipient_uri: Option<String>,
    /// `<original-recipient-uri>`: from the IM's `Original-To` (RFC 5438 s.11.1.4).
    pub original_recipient_uri: Option<String>,
    /// `<subject>` (RFC 5438 s.11.1.5).
    pub subject: Option<String>,
    /// The disposition and its status.
    pub notification: Notification,
}

impl Imdn {
    /// The notification `recipient_uri` sends for `im`, or `None` when `im`
    /// did not ask for it (or is itself a notification, or lacks the
    /// `imdn.Message-ID` or `DateTime` to answer with).
    #[must_use]
    pub fn answering(im: &Message, recipient_uri: Option<String>, notification: Notification) -> Option<Self> {
        // RFC 5438 s.7.2.1: "An IM Sender MUST ignore a delivery notification request in an IMDN
        // if present. The IM Sender MUST NOT send an IMDN for an IMDN."
        if im.is_notification() {
            return None;
        }
        // RFC 5438 s.7.2.1: "If the IM Sender requested only failure notifications and the IM
        // was successfully delivered, then no IMDNs will be generated."
        if !notification.is_requested(im.disposition_notification()?) {
            return None;
        }
        Some(Self {
            message_id: im.imdn_message_id()?.to_owned(),
            datetime: im.date_time()?.to_owned(),
            recipient_uri,
            // RFC 5438 s.11.1.4: "It MUST be present if the IM carried the Original-To header
            // field."
            original_recipient_uri: im.original_to().map(|a| a.uri),
            subject: None,
            notification,
        })
    }
}

/// Why an IMDN payload cannot be read or written.
///
/// `at` is a byte offset in the document, at or after the offending markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ImdnError {
    /// The document is not well-formed XML (as quick-xml reports it).
    #[error("malformed XML at byte {at}")]
    Xml {
        /// Offset where the reader stopped.
        at: usize,
    },
    /// The root is not `<imdn>` in the IMDN namespace, or a second root follows.
    #[error("root element at byte {at} is not imdn (RFC 5438 s.11.1)")]
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
    /// A mandatory element is absent or empty.
    #[error("no <{name}> in the imdn element ending at byte {at} ({rule})")]
    Missing {
        /// Offset of the end of the document.
        at: usize,
        /// The element.
        name: &'static str,
        /// The rule requiring it.
        rule: &'static str,
    },
    /// An element that appears once appears again, or a second notification.
    #[error("<{name}> at byte {at} repeated (RFC 5438 s.11.1.9)")]
    Repeated {
        /// Offset after the element's tag.
        at: usize,
        /// The element.
        name: &'static str,
    },
    /// A `<status>` without exactly one status element of its notification kind.
    #[error("<status> ending at byte {at} holds no single status of its kind (RFC 5438 s.11.1.7)")]
    Status {
        /// Offset after the offending tag.
        at: usize,
    },
    /// A character XML 1.0 does not allow.
    #[error("character not allowed in XML at byte {at}")]
    Char {
        /// Offset after the markup holding it.
        at: usize,
    },
    /// (Local) [`write()`] was given a field it cannot write.
    #[error("cannot write {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// (Local) the CPIM wrapper cannot be built.
    #[error("CPIM wrapper: {0}")]
    Cpim(#[from] BuildError),
}

/// XML 1.0 s.2.2 `Char`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    MessageId,
    Datetime,
    RecipientUri,
    OriginalRecipientUri,
    Subject,
}

impl Field {
    fn of(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"message-id" => Self::MessageId,
            b"datetime" => Self::Datetime,
            b"recipient-uri" => Self::RecipientUri,
            b"original-recipient-uri" => Self::OriginalRecipientUri,
            b"subject" => Self::Subject,
            _ => return None,
        })
    }

    const fn name(self) -> &'static str {
        match self {
            Self::MessageId => "message-id",
            Self::Datetime => "datetime",
            Self::RecipientUri => "recipient-uri",
            Self::OriginalRecipientUri => "original-recipient-uri",
            Self::Subject => "subject",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    Field(Field),
    Notification(Kind),
    Status(Kind),
    Skip,
}

#[derive(Default)]
struct Fields {
    message_id: Option<String>,
    datetime: Option<String>,
    recipient_uri: Option<String>,
    original_recipient_uri: Option<String>,
    subject: Option<String>,
    notification: Option<Notification>,
    kind_seen: bool,
}

impl Fields {
    fn slot(&mut self, f: Field) -> &mut Option<String> {
        match f {
            Field::MessageId => &mut self.message_id,
            Field::Datetime => &mut self.datetime,
            Field::RecipientUri => &mut self.recipient_uri,
            Field::OriginalRecipientUri => &mut self.original_recipient_uri,
            Field::Subject => &mut self.subject,
        }
    }
}

/// Reads an IMDN payload.
///
/// # Errors
/// See [`ImdnError`].
pub fn read(xml: &[u8]) -> Result<Imdn, ImdnError> {
    let mut reader = NsReader::from_reader(xml);
    reader.config_mut().trim_text(false);
    let pos = |r: &NsReader<&[u8]>| usize::try_from(r.buffer_position()).unwrap_or(usize::MAX);
    let mut stack: Vec<Ctx> = Vec::new();
    let mut fields = Fields::default();
    let mut root_seen = false;
    loop {
        let step = reader
            .read_resolved_event()
            .map(|(ns, event)| (matches!(ns, ResolveResult::Bound(Namespace(n)) if n == NAMESPACE.as_bytes()), event));
        let (in_imdn, event) = step.map_err(|_| ImdnError::Xml { at: pos(&reader) })?;
        let at = pos(&reader);
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                let local = local.as_ref();
                let ctx = match stack.last() {
                    None if root_seen => return Err(ImdnError::Root { at }),
                    // RFC 5438 s.11.1: "The root element is <imdn>."
                    None if in_imdn && local == b"imdn" => Ctx::Root,
                    None => return Err(ImdnError::Root { at }),
                    Some(Ctx::Root) if in_imdn => {
                        let kind = match local {
                            b"delivery-notification" => Some(Kind::Delivery),
                            b"display-notification" => Some(Kind::Display),
                            b"processing-notification" => Some(Kind::Processing),
                            _ => None,
                        };
                        if let Some(kind) = kind {
                            // RFC 5438 s.11.1.6: "The appearance of one of the
                            // <delivery-notification>, <processing-notification>, and
                            // <display-notification> elements is mandatory".
                            if fields.kind_seen {
                                return Err(ImdnError::Repeated { at, name: "notification" });
                            }
                            fields.kind_seen = true;
                            if empty {
                                return Err(ImdnError::Status { at });
                            }
                            Ctx::Notification(kind)
                        } else if let Some(field) = Field::of(local) {
                            let slot = fields.slot(field);
                            if slot.is_some() {
                                return Err(ImdnError::Repeated { at, name: field.name() });
                            }
                            *slot = Some(String::new());
                            Ctx::Field(field)
                        } else {
                            Ctx::Skip
                        }
                    }
                    Some(Ctx::Notification(kind)) if in_imdn && local == b"status" => {
                        if empty {
                            return Err(ImdnError::Status { at });
                        }
                        Ctx::Status(*kind)
                    }
                    Some(Ctx::Status(kind)) if in_imdn => {
                        match kind.status(local) {
                            // RFC 5438 s.11.1.7: the status "can carry one of the sub-elements".
                            Some(_) if fields.notification.is_some() => return Err(ImdnError::Status { at }),
                            Some(n) => fields.notification = Some(n),
                            None => {}
                        }
                        Ctx::Skip
                    }
                    // Extension points (other namespaces) and anything below a skipped element.
                    _ => Ctx::Skip,
                };
                root_seen = true;
                if !empty {
                    stack.push(ctx);
                }
            }
            Event::End(_) => {
                if let Some(Ctx::Notification(_)) = stack.pop() {
                    if fields.notification.is_none() {
                        return Err(ImdnError::Status { at });
                    }
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|_| ImdnError::Xml { at })?;
                push_text(&mut fields, stack.last(), &text, at)?;
            }
            Event::CData(t) => {
                let text = std::str::from_utf8(&t).map_err(|_| ImdnError::Xml { at })?;
                push_text(&mut fields, stack.last(), text, at)?;
            }
            Event::Eof => {
                if !stack.is_empty() || !root_seen {
                    return Err(ImdnError::Unclosed { at: xml.len() });
                }
                return finish(fields, xml.len());
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
}

fn push_text(fields: &mut Fields, ctx: Option<&Ctx>, text: &str, at: usize) -> Result<(), ImdnError> {
    match ctx {
        Some(Ctx::Field(f)) => {
            if !text.chars().all(is_xml_char) {
                return Err(ImdnError::Char { at });
            }
            if let Some(value) = fields.slot(*f).as_mut() {
                value.push_str(text);
            }
            Ok(())
        }
        None if !text.trim().is_empty() => Err(ImdnError::Xml { at }),
        _ => Ok(()),
    }
}

fn finish(fields: Fields, end: usize) -> Result<Imdn, ImdnError> {
    let trimmed = |v: Option<String>| v.map(|s| s.trim().to_owned());
    let message_id = trimmed(fields.message_id).filter(|s| !s.is_empty());
    // RFC 5438 s.11.1.1: "The <message-id> element is mandatory".
    let message_id = message_id.ok_or(ImdnError::Missing { at: end, name: "message-id", rule: "RFC 5438 s.11.1.1" })?;
    // RFC 5438 s.11.1.2: "The <datetime> element is mandatory".
    let datetime = fields.datetime.filter(|s| !s.is_empty());
    let datetime = datetime.ok_or(ImdnError::Missing { at: end, name: "datetime", rule: "RFC 5438 s.11.1.2" })?;
    let notification = fields.notification.ok_or(ImdnError::Missing {
        at: end,
        name: "delivery-notification",
        rule: "RFC 5438 s.11.1.6",
    })?;
    Ok(Imdn {
        message_id,
        datetime,
        recipient_uri: trimmed(fields.recipient_uri),
        original_recipient_uri: trimmed(fields.original_recipient_uri),
        subject: fields.subject,
        notification,
    })
}

/// Escapes text: markup characters and the whitespace an XML parser would
/// normalize, as character references.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes an IMDN payload in the layout of RFC 5438 s.7.2.1.1.
///
/// # Errors
/// [`ImdnError::Invalid`] for an empty or untrimmed message ID or URI, an
/// empty datetime, or a character XML 1.0 cannot carry.
pub fn write(imdn: &Imdn) -> Result<Bytes, ImdnError> {
    let bad = |field, reason| Err(ImdnError::Invalid { field, reason });
    let token = |s: &str| !s.is_empty() && s.trim() == s;
    if !token(&imdn.message_id) || imdn.message_id.contains(char::is_whitespace) {
        return bad("message_id", "empty or holds whitespace (xs:token)");
    }
    if imdn.datetime.is_empty() {
        return bad("datetime", "empty");
    }
    for uri in [&imdn.recipient_uri, &imdn.original_recipient_uri].into_iter().flatten() {
        if !token(uri) {
            return bad("recipient_uri", "empty or surrounded by whitespace (xs:anyURI)");
        }
    }
    let all = [
        Some(&imdn.message_id),
        Some(&imdn.datetime),
        imdn.recipient_uri.as_ref(),
        imdn.original_recipient_uri.as_ref(),
        imdn.subject.as_ref(),
    ];
    if !all.into_iter().flatten().all(|s| s.chars().all(is_xml_char)) {
        return bad("text", "character not allowed in XML 1.0");
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
    out.push_str(&format!("<imdn xmlns=\"{NAMESPACE}\">\r\n"));
    let mut element = |name: &str, value: &str| out.push_str(&format!("  <{name}>{}</{name}>\r\n", escape(value)));
    element("message-id", &imdn.message_id);
    element("datetime", &imdn.datetime);
    for (name, value) in [
        ("recipient-uri", &imdn.recipient_uri),
        ("original-recipient-uri", &imdn.original_recipient_uri),
        ("subject", &imdn.subject),
    ] {
        if let Some(v) = value {
            element(name, v);
        }
    }
    let n = imdn.notification;
    out.push_str(&format!(
        "  <{0}>\r\n    <status>\r\n      <{1}/>\r\n    </status>\r\n  </{0}>\r\n",
        n.element(),
        n.status()
    ));
    out.push_str("</imdn>\r\n");
    Ok(Bytes::from(out))
}

/// A CPIM message carrying `imdn`, as RFC 5438 s.7.2.1 builds one:
/// `Content-Type: message/imdn+xml`, `Content-Disposition: notification`,
/// the notification's own `imdn.Message-ID` (unrelated to the one answered),
/// no `Disposition-Notification`. `date_time` is the notification's
/// `DateTime`, if any. Add `imdn.IMDN-Route` headers to the builder as needed,
/// then [`Builder::build`].
///
/// # Errors
/// As [`write()`].
pub fn wrap(
    imdn: &Imdn,
    from: Address,
    to: Address,
    message_id: impl Into<String>,
    date_time: Option<String>,
) -> Result<Builder, ImdnError> {
    let body = write(imdn)?;
    let mut b = Builder::new(from, to, CONTENT_TYPE, body);
    // RFC 5438 s.7.2.1: "An IMDN MUST contain a Message-ID header field."
    b.message_id = Some(message_id.into());
    b.date_time = date_time;
    // RFC 5438 s.7.2.1: "IM Recipients MUST insert a Content-Disposition header field set to the
    // value "notification"."
    b.content_disposition = Some(DISPOSITION.to_owned());
    Ok(b)
}

/// The notification carried by `m`, or `None` when `m` is not an IMDN
/// (RFC 5438 s.9: Content-Type `message/imdn+xml` and Content-Disposition
/// `notification`).
///
/// # Errors
/// As [`read()`], for a message that is an IMDN.
pub fn from_message(m: &Message) -> Result<Option<Imdn>, ImdnError> {
    let essence = m.content_type().split(';').next().unwrap_or("").trim();
    if !(m.is_notification() && essence.eq_ignore_ascii_case(CONTENT_TYPE)) {
        return Ok(None);
    }
    read(m.body()).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(inner: &str) -> String {
        format!("<imdn xmlns=\"{NAMESPACE}\">{inner}</imdn>")
    }

    #[test]
    fn reads() {
        let head = "<message-id>34jk324j</message-id><datetime>2008-04-04T12:16:49-05:00</datetime>";
        let ok = |n| {
            Ok(Imdn {
                message_id: "34jk324j".into(),
                datetime: "2008-04-04T12:16:49-05:00".into(),
                recipient_uri: None,
                original_recipient_uri: None,
                subject: None,
                notification: n,
            })
        };
        let cases: Vec<(String, Result<Imdn, ImdnError>)> = vec![
            (
                doc(&format!("{head}<delivery-notification><status><failed/></status></delivery-notification>")),
                ok(Notification::Delivery(DeliveryStatus::Failed)),
            ),
            (
                doc(&format!(
                    "{head}<x:ext xmlns:x='urn:x'><y/></x:ext><processing-notification><status><x:e xmlns:x='urn:x'/><stored/></status></processing-notification>"
                )),
                ok(Notification::Processing(ProcessingStatus::Stored)),
            ),
            (
                doc(&format!("{head}<display-notification><status><delivered/></status></display-notification>")),
                Err(ImdnError::Status { at: 195 }),
            ),
            (
                doc(&format!("{head}<display-notification><status><error/><forbidden/></status></display-notification>")),
                Err(ImdnError::Status { at: 171 }),
            ),
            (
                doc(&format!("{head}<display-notification/>")),
                Err(ImdnError::Status { at: 144 }),
            ),
            (doc(head), Err(ImdnError::Missing { at: 128, name: "delivery-notification", rule: "RFC 5438 s.11.1.6" })),
            (
                doc("<datetime>x</datetime><delivery-notification><status><delivered/></status></delivery-notification>"),
                Err(ImdnError::Missing { at: 147, name: "message-id", rule: "RFC 5438 s.11.1.1" }),
            ),
            (doc(&format!("{head}<datetime>y</datetime>")), Err(ImdnError::Repeated { at: 131, name: "datetime" })),
            ("<imdn><message-id>a</message-id></imdn>".into(), Err(ImdnError::Root { at: 6 })),
            (doc("<message-id>a</message-id>"), Err(ImdnError::Missing { at: 75, name: "datetime", rule: "RFC 5438 s.11.1.2" })),
            (format!("<imdn xmlns=\"{NAMESPACE}\">"), Err(ImdnError::Unclosed { at: 42 })),
            (doc("<message-id>&#1;</message-id>"), Err(ImdnError::Char { at: 58 })),
            (String::new(), Err(ImdnError::Unclosed { at: 0 })),
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
    fn write_refuses() {
        let good = Imdn {
            message_id: "m".into(),
            datetime: "d".into(),
            recipient_uri: None,
            original_recipient_uri: None,
            subject: None,
            notification: Notification::Display(DisplayStatus::Displayed),
        };
        assert!(write(&good).is_ok());
        let cases: Vec<(Imdn, &str)> = vec![
            (Imdn { message_id: String::new(), ..good.clone() }, "message_id"),
            (Imdn { message_id: "a b".into(), ..good.clone() }, "message_id"),
            (Imdn { datetime: String::new(), ..good.clone() }, "datetime"),
            (Imdn { recipient_uri: Some(" sip:a".into()), ..good.clone() }, "recipient_uri"),
            (Imdn { subject: Some("\u{1}".into()), ..good }, "text"),
        ];
        for (imdn, field) in cases {
            assert!(matches!(write(&imdn), Err(ImdnError::Invalid { field: f, .. }) if f == field), "{imdn:?}");
        }
    }
}
