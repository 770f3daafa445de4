//! Interworking conversions: a reassembled CPM message into the formats of
//! non-CPM systems (SMS, Email, MMS), and their acknowledgements back into
//! MSRP statuses.
//!
//! Everything here is a pure function (sans-IO): no clocks, no randomness.
//! The time of the submission and the ids come in with the
//! [`NonCpmMessage`]; the operator's choices come in a [`ConversionConfig`].
//!
//! # How the IWF uses it
//!
//! 1. When the whole message has arrived, call [`convert`] with the system
//!    the ISF chose, the content (plain or `message/cpim`), the sender and
//!    recipient URIs, and a fresh [`NonCpmMessage::id`]. An `Err` is final:
//!    its [`ConvertError::status_code`] is the status of the delivery
//!    REPORT.
//! 2. Hand every element of [`Conversion::parts`] to the non-CPM system, in
//!    order: one SMPP `submit_sm` PDU per SMS segment, one RFC 5322 message
//!    (the SMTP `DATA`), or one MMS `m-send-req` PDU (the HTTP POST body).
//! 3. Map each acknowledgement with [`sms_ack_status`] (one `submit_sm_resp`
//!    per part), [`smtp_reply_status`] (the final reply to `DATA`) or
//!    [`mms_conf_status`] (the `m-send-conf`), fold the statuses of all
//!    parts with [`combine_statuses`], and report the result
//!    (`Input::NonCpmAck`).
//!
//! ```
//! use bytes::Bytes;
//! use cpm_roles::NonCpmSystem;
//! use cpm_roles::interworking::{convert, sms_ack_status, ConversionConfig, NonCpmMessage};
//!
//! let mut message = NonCpmMessage::new(
//!     "tel:+447700900001",
//!     "sip:+447700900002@ims.example.com;user=phone",
//!     "text/plain;charset=utf-8",
//!     Bytes::from_static(b"Hello"),
//! );
//! message.id = 42;
//! message.sms_first_sequence = 7;
//! let conversion = convert(NonCpmSystem::Sms, &message, &ConversionConfig::default()).unwrap();
//! assert_eq!(conversion.format, "sms");
//! assert_eq!(conversion.parts.len(), 1);
//! // The SMSC answers with a submit_sm_resp (SMPP v3.4 s.4.4.2): status 0, message_id "m1".
//! let resp = [0, 0, 0, 19, 0x80, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 7, b'm', b'1', 0];
//! assert_eq!(sms_ack_status(&resp), Ok(200));
//! ```

mod email;
pub mod gsm7;
mod identity;
mod media;
mod mms;
pub mod sms;

use bytes::Bytes;
use cpm_negotiation::cpim::{self, CpimError};
use thiserror::Error;

use crate::NonCpmSystem;

pub use email::smtp_reply_status;
pub use mms::{mms_conf_status, mms_response_status, parse_m_send_conf, MSendConf};
pub use sms::{parse_submit_sm_resp, smpp_status, sms_ack_status, SubmitSmResp};

/// The REPORT status for a delivered message (RFC 4975 s.10.1).
pub const STATUS_OK: u16 = 200;
/// The REPORT status for a failure that may pass if tried again later.
///
/// RFC 4975 s.10.4: "An endpoint MUST treat a 408 response in the same
/// manner as it would treat a local timeout": a sender may try again, which
/// is what a throttled SMSC, a 4xx SMTP reply or a transient MMSC error
/// asks for.
pub const STATUS_TEMPORARY: u16 = 408;
/// The REPORT status for a failure that will not pass if tried again.
///
/// RFC 4975 s.10.3: "A 403 response indicates that the attempted action is
/// not allowed. The sender should not try the request again."
pub const STATUS_PERMANENT: u16 = 403;

/// One reassembled CPM message for a non-CPM system.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NonCpmMessage {
    /// The sender's identity: a `sip:`, `sips:`, `tel:`, `im:` or `mailto:` URI.
    pub sender: String,
    /// The recipient's identity (same forms).
    pub recipient: String,
    /// The MSRP `Content-Type` of the message (`message/cpim` is unwrapped).
    pub content_type: String,
    /// The reassembled content.
    pub body: Bytes,
    /// A caller-chosen id, unique per message (CSPRNG or counter): the
    /// Email `Message-ID`, the MMS `X-Mms-Transaction-ID`, the SMS
    /// concatenation reference (its low octet) and `{id}` in a link text.
    pub id: u64,
    /// When the IWF hands the message over, in seconds since the Unix
    /// epoch (the Email `Date`, the MMS `Date`).
    pub submitted_at: u64,
    /// The SMPP `sequence_number` of the first `submit_sm`; the next
    /// segments take the following numbers (the runtime owns the SMPP
    /// session's counter). 0 counts as 1; numbers wrap within
    /// 1..=0x7FFFFFFF (SMPP v3.4 s.3.2).
    pub sms_first_sequence: u32,
}

impl NonCpmMessage {
    /// A message with id 0, time 0 and first SMPP sequence number 1; set the
    /// public fields for the others.
    #[must_use]
    pub fn new(
        sender: impl Into<String>,
        recipient: impl Into<String>,
        content_type: impl Into<String>,
        body: Bytes,
    ) -> Self {
        Self {
            sender: sender.into(),
            recipient: recipient.into(),
            content_type: content_type.into(),
            body,
            id: 0,
            submitted_at: 0,
            sms_first_sequence: 1,
        }
    }
}

/// What the SMS conversion does with content that is not text.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NonTextRule {
    /// Refuse it: [`ConvertError::NotText`] (415).
    #[default]
    Reject,
    /// Send a text instead, made from `template` with `{id}` replaced by
    /// the message id (16 lower-case hex digits) and `{type}` by the media
    /// type: the runtime MUST make the content reachable under that link.
    LinkText {
        /// The text, e.g. `"You got a {type}: https://iwf.example.com/m/{id}"`.
        template: String,
    },
}

/// How GSM 7-bit text goes into the SMPP `short_message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Gsm7Packing {
    /// One septet per octet, what SMSCs take for `data_coding` 0 over SMPP
    /// (and what Wireshark decodes).
    #[default]
    Unpacked,
    /// Packed as on the air interface (3GPP TS 23.040 s.9.2.3.24, with
    /// fill bits after a UDH), for SMSCs configured that way.
    Packed,
}

/// SMS (SMPP v3.4) settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmsConfig {
    /// `service_type` (SMPP v3.4 s.5.2.11; at most 5 characters, empty for the default).
    pub service_type: String,
    /// `registered_delivery` (SMPP v3.4 s.5.2.17; 0: no receipt).
    pub registered_delivery: u8,
    /// GSM 7-bit packing.
    pub packing: Gsm7Packing,
    /// The most segments one message may take (1..=255); more is
    /// [`ConvertError::TooLong`].
    pub max_segments: u8,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self { service_type: String::new(), registered_delivery: 0, packing: Gsm7Packing::Unpacked, max_segments: 255 }
    }
}

/// Email (RFC 5322) settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmailConfig {
    /// The IWF's domain: the right part of `Message-ID`s and the domain of
    /// addresses made from telephone numbers (`+4477...@domain`).
    pub domain: String,
    /// The `Subject` when the CPIM message has none (no `Subject` header when `None`).
    pub default_subject: Option<String>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self { domain: "iwf.invalid".into(), default_subject: None }
    }
}

/// MMS (OMA MMS encapsulation) settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MmsConfig {
    /// Ask for a delivery report (`X-Mms-Delivery-Report: Yes`).
    pub delivery_report: bool,
}

/// The operator's conversion settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConversionConfig {
    /// SMS: what to do with content that is not text.
    pub non_text: NonTextRule,
    /// SMS settings.
    pub sms: SmsConfig,
    /// Email settings.
    pub email: EmailConfig,
    /// MMS settings.
    pub mms: MmsConfig,
}

/// A converted message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Conversion {
    /// `"sms"`, `"email"` or `"mms"` (the trace event's `format`).
    pub format: &'static str,
    /// What to send, in order: one SMPP `submit_sm` PDU per segment, one
    /// RFC 5322 message, or one MMS `m-send-req` PDU.
    pub parts: Vec<Bytes>,
    /// Email: the SMTP envelope to submit the message with.
    pub envelope: Option<MailEnvelope>,
}

/// The SMTP envelope of a converted email (RFC 5321 s.3.3): the
/// reverse-path of `MAIL FROM` and the forward-path of `RCPT TO`, the
/// addresses of the message's `From` and `To`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailEnvelope {
    /// The sender's `addr-spec`.
    pub from: String,
    /// The recipient's `addr-spec`.
    pub to: String,
}

/// Why a message cannot be converted. [`ConvertError::status_code`] is the
/// REPORT status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The content says `message/cpim` but is not (the peer is at fault).
    #[error("CPIM wrapper: {0}")]
    Cpim(#[from] CpimError),
    /// The content type is not `type "/" subtype *(";" parameter)` (RFC 2045 s.5.1).
    #[error("content type is not type/subtype with parameters (RFC 2045 s.5.1)")]
    ContentType,
    /// SMS with [`NonTextRule::Reject`]: the content is not text.
    #[error("content is not text and the SMS rule rejects it")]
    NotText,
    /// The content cannot be carried: `reason` says why.
    #[error("content cannot be converted: {reason}")]
    Unsupported {
        /// Why.
        reason: &'static str,
    },
    /// The sender's identity has no form in the target system.
    #[error("sender identity: {reason}")]
    Sender {
        /// Why.
        reason: &'static str,
    },
    /// The recipient's identity has no form in the target system.
    #[error("recipient identity: {reason}")]
    Recipient {
        /// Why.
        reason: &'static str,
    },
    /// The text needs more SMS segments than allowed.
    #[error("text needs {needed} SMS segments, more than {max}")]
    TooLong {
        /// Segments needed.
        needed: usize,
        /// The limit ([`SmsConfig::max_segments`]).
        max: u8,
    },
    /// The configuration is unusable (local fault): `reason` says which part.
    #[error("configuration: {reason}")]
    Config {
        /// Why.
        reason: &'static str,
    },
}

impl ConvertError {
    /// The REPORT status (RFC 4975 s.10) for this failure.
    #[must_use]
    pub const fn status_code(&self) -> u16 {
        match self {
            // RFC 4975 s.10.2: "A 400 response indicates that a request was unintelligible."
            Self::Cpim(_) | Self::ContentType => 400,
            // RFC 4975 s.10.6: "a media type that is not understood by the receiver".
            Self::NotText | Self::Unsupported { .. } => 415,
            // RFC 4975 s.10.5: "the receiver wishes the sender to stop sending the particular message".
            Self::TooLong { .. } => 413,
            // RFC 4975 s.10.3: "The sender should not try the request again": the
            // identities or the IWF's settings will not change on a retry.
            Self::Sender { .. } | Self::Recipient { .. } | Self::Config { .. } => STATUS_PERMANENT,
        }
    }
}

/// Why an acknowledgement from the non-CPM system cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AckError {
    /// The bytes end before the PDU does.
    #[error("acknowledgement truncated at byte {at}")]
    Truncated {
        /// Where the missing bytes were expected.
        at: usize,
    },
    /// SMPP `command_length` does not match the PDU.
    #[error("command_length {length} but the PDU has {actual} bytes (SMPP v3.4 s.3.2)")]
    Length {
        /// The field.
        length: u32,
        /// The bytes given.
        actual: usize,
    },
    /// An SMPP PDU that is neither `submit_sm_resp` nor `generic_nack`.
    #[error("command_id {command_id:#010x} is not submit_sm_resp or generic_nack")]
    Command {
        /// The command_id.
        command_id: u32,
    },
    /// A malformed field (`what`) at byte `at`.
    #[error("{what} at byte {at}")]
    Field {
        /// Where.
        at: usize,
        /// The rule broken.
        what: &'static str,
    },
    /// An MMS PDU that is not `m-send-conf`.
    #[error("X-Mms-Message-Type {message_type:#04x} is not m-send-conf")]
    MessageType {
        /// The type found (0 when the first header is not the type).
        message_type: u8,
    },
    /// `m-send-conf` without `X-Mms-Response-Status`.
    #[error("m-send-conf has no X-Mms-Response-Status (OMA-TS-MMS_ENC s.6.1.2)")]
    NoResponseStatus,
}

/// Folds the statuses of the parts of one message into the REPORT status:
/// 200 when every part passed, else the permanent failure (403) when any
/// part failed for good, else the temporary one (408). An empty list is 200.
#[must_use]
pub fn combine_statuses(statuses: impl IntoIterator<Item = u16>) -> u16 {
    statuses.into_iter().fold(STATUS_OK, |acc, s| match (acc, s) {
        (STATUS_OK, s) => s,
        (acc, STATUS_OK) => acc,
        (STATUS_TEMPORARY, s) => s,
        (acc, _) => acc,
    })
}

/// Converts `message` into the format of `system`.
///
/// # Errors
/// [`ConvertError`]: bad CPIM or content type (400), content the system
/// cannot carry (415), a text too long (413), identities without a form in
/// the system or an unusable configuration (403).
pub fn convert(
    system: NonCpmSystem,
    message: &NonCpmMessage,
    config: &ConversionConfig,
) -> Result<Conversion, ConvertError> {
    let content = Content::extract(message)?;
    match system {
        NonCpmSystem::Sms => {
            Ok(Conversion { format: "sms", parts: sms::convert(message, &content, config)?, envelope: None })
        }
        NonCpmSystem::Email => {
            let (mail, envelope) = email::convert(message, &content, config)?;
            Ok(Conversion { format: "email", parts: vec![mail], envelope: Some(envelope) })
        }
        NonCpmSystem::Mms => {
            Ok(Conversion { format: "mms", parts: vec![mms::convert(message, &content, config)?], envelope: None })
        }
    }
}

/// The content to convert, after unwrapping CPIM.
#[derive(Debug)]
struct Content {
    media: media::MediaType,
    body: Bytes,
    /// CPIM `Subject` (RFC 3862 s.4.5), the first one.
    subject: Option<String>,
    /// CPIM `From` display name (RFC 3862 s.4.1).
    display_name: Option<String>,
}

impl Content {
    fn extract(message: &NonCpmMessage) -> Result<Self, ConvertError> {
        let outer = media::MediaType::parse(&message.content_type).ok_or(ConvertError::ContentType)?;
        if !outer.is(cpim::CONTENT_TYPE) {
            return Ok(Self { media: outer, body: message.body.clone(), subject: None, display_name: None });
        }
        // RFC 3862 s.2: the message/cpim body is the message headers, a blank
        // line, the encapsulated MIME headers, a blank line, the content.
        let wrapped = cpim::Message::parse(message.body.clone())?;
        let media = media::MediaType::parse(wrapped.content_type()).ok_or(ConvertError::ContentType)?;
        let subject = wrapped.subjects().next().map(|s| s.text);
        let display_name = wrapped.from().display_name.filter(|n| !n.trim().is_empty());
        Ok(Self { media, body: wrapped.body().clone(), subject, display_name })
    }

    /// The content as text, when it is `text/plain` in a charset this
    /// module reads; `Ok(None)` when it is not text.
    fn text(&self) -> Result<Option<String>, ConvertError> {
        if !self.media.is("text/plain") {
            return Ok(None);
        }
        let charset = self.media.param("charset").unwrap_or("utf-8");
        let is = |names: &[&str]| names.iter().any(|n| charset.eq_ignore_ascii_case(n));
        if is(&["utf-8", "utf8", "us-ascii", "ascii"]) {
            // CPM text is UTF-8 (RFC 3862 s.2.2 for CPIM; US-ASCII is a subset).
            std::str::from_utf8(&self.body)
                .map(|s| Some(s.to_owned()))
                .map_err(|_| ConvertError::Unsupported { reason: "text is not valid UTF-8" })
        } else if is(&["iso-8859-1", "latin1"]) {
            // ISO 8859-1 octets are the first 256 Unicode code points.
            Ok(Some(self.body.iter().map(|&b| char::from(b)).collect()))
        } else {
            Err(ConvertError::Unsupported { reason: "text in a charset other than UTF-8, US-ASCII, ISO-8859-1" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine() {
        assert_eq!(combine_statuses([]), 200);
        assert_eq!(combine_statuses([200, 200]), 200);
        assert_eq!(combine_statuses([200, 408, 200]), 408);
        assert_eq!(combine_statuses([408, 403, 408]), 403);
        assert_eq!(combine_statuses([403, 408]), 403);
    }
}
