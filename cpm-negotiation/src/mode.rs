//! Pager or large message mode (RFC 3428 s.7, OMA CPM).
//!
//! A message goes as a SIP MESSAGE (pager mode) when the encoded MESSAGE
//! fits the threshold (1300 bytes by default), otherwise as an INVITE plus
//! MSRP (large message mode). Large message mode can be forced, and works
//! for small messages too.

use bytes::Bytes;
use sip_lite::sip::MessageBuilder;

/// RFC 3428 s.7: "the size of MESSAGE requests outside of a media session
/// MUST NOT exceed 1300 bytes" (unless the path MTU is known to be larger).
pub const PAGER_LIMIT: usize = 1300;

/// How a message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum DeliveryMode {
    /// One SIP MESSAGE (RFC 3428).
    Pager,
    /// INVITE + MSRP session (RFC 4975).
    LargeMessage,
}

/// The mode choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ModeConfig {
    /// Largest encoded SIP MESSAGE sent in pager mode ([`PAGER_LIMIT`] by default).
    pub threshold: usize,
    /// Always use large message mode.
    pub force_large: bool,
}

impl Default for ModeConfig {
    fn default() -> Self {
        Self { threshold: PAGER_LIMIT, force_large: false }
    }
}

impl ModeConfig {
    /// Sets [`ModeConfig::threshold`].
    pub fn threshold(&mut self, threshold: usize) -> &mut Self {
        self.threshold = threshold;
        self
    }

    /// Sets [`ModeConfig::force_large`].
    pub fn force_large(&mut self, force_large: bool) -> &mut Self {
        self.force_large = force_large;
        self
    }

    /// The mode for a message whose SIP MESSAGE would encode to `encoded_len` bytes.
    #[must_use]
    pub const fn choose(&self, encoded_len: usize) -> DeliveryMode {
        if self.force_large || encoded_len > self.threshold {
            DeliveryMode::LargeMessage
        } else {
            DeliveryMode::Pager
        }
    }

    /// The mode for `message`, the SIP MESSAGE that would carry the content
    /// (its exact encoded size is measured, Content-Length included).
    #[must_use]
    pub fn choose_for(&self, message: &MessageBuilder) -> DeliveryMode {
        self.choose(encoded_len(message))
    }
}

/// The encoded size of a SIP message (what goes on the wire).
#[must_use]
pub fn encoded_len(message: &MessageBuilder) -> usize {
    message.encode().len()
}

/// Builds the pager-mode MESSAGE for `body` with the given headers (in
/// order, without Content-Length, which the encoder adds), for sizing or sending.
#[must_use]
pub fn pager_message(request_uri: &str, headers: &[(&str, &str)], content_type: &str, body: Bytes) -> MessageBuilder {
    let mut message = MessageBuilder::request("MESSAGE", request_uri);
    for (name, value) in headers {
        message.header(name, value);
    }
    message.header("Content-Type", content_type).body(body);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body_len: usize) -> MessageBuilder {
        pager_message(
            "sip:bob@example.com",
            &[
                ("Via", "SIP/2.0/TCP a.example.com;branch=z9hG4bK776sgdkse"),
                ("Max-Forwards", "70"),
                ("From", "<sip:alice@example.com>;tag=49583"),
                ("To", "<sip:bob@example.com>"),
                ("Call-ID", "asd88asd77a@1.2.3.4"),
                ("CSeq", "1 MESSAGE"),
            ],
            "text/plain",
            Bytes::from(vec![b'x'; body_len]),
        )
    }

    #[test]
    fn threshold_is_on_the_encoded_message() {
        let overhead = encoded_len(&message(0));
        assert!(overhead > 150 && overhead < 400, "{overhead}");
        let fits = PAGER_LIMIT - overhead;
        let config = ModeConfig::default();
        // Content-Length grows by digits, so measure both sides of the line exactly.
        let cases = [
            (0, DeliveryMode::Pager),
            (fits - 10, DeliveryMode::Pager),
            (fits + 10, DeliveryMode::LargeMessage),
            (5000, DeliveryMode::LargeMessage),
        ];
        for (len, want) in cases {
            let m = message(len);
            assert_eq!(config.choose_for(&m), want, "body {len}, encoded {}", encoded_len(&m));
        }
        let exact = (0..2000).find(|&n| encoded_len(&message(n)) > PAGER_LIMIT).unwrap_or(0);
        assert_eq!(config.choose_for(&message(exact - 1)), DeliveryMode::Pager);
        assert_eq!(config.choose_for(&message(exact)), DeliveryMode::LargeMessage);
    }

    #[test]
    fn configurable_and_forced() {
        let mut config = ModeConfig::default();
        config.threshold(100);
        assert_eq!(config.choose(101), DeliveryMode::LargeMessage);
        assert_eq!(config.choose(100), DeliveryMode::Pager);
        config.force_large(true);
        assert_eq!(config.choose(1), DeliveryMode::LargeMessage);
        assert_eq!(config.choose_for(&message(1)), DeliveryMode::LargeMessage);
    }
}
