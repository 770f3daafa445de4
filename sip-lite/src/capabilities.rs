//! What a user agent serves, and the answer to a request it does not serve:
//! RFC 3261 s.8.2.1 (405 with Allow), s.21.5.2 (501), s.11.2 (OPTIONS gets
//! what an INVITE would get, with Allow and Accept).
//!
//! A [`UserAgent`](crate::ua::UserAgent) answers such requests itself (so a
//! peer cannot leave requests waiting for a caller that never answers them),
//! and an element that takes no session for a request outside any dialog
//! answers it statelessly with [`Capabilities::answer`].

use std::time::Duration;

use crate::sip::{Message, MessageBuilder};
use crate::transaction::retry_after_seconds;
use crate::ua::response;

/// The methods a user agent core handles itself, whatever the caller serves.
const CORE: [&str; 5] = ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"];

/// Methods of the IETF's SIP method registry this stack knows (a request of
/// another method gets 501, RFC 3261 s.21.5.2).
const KNOWN: [&str; 14] = [
    "INVITE",
    "ACK",
    "CANCEL",
    "BYE",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "UPDATE",
    "MESSAGE",
    "REFER",
    "PUBLISH",
];

/// The non-INVITE methods the caller of a user agent serves, and the body
/// types it accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// `None`: every method reaches the caller.
    served: Option<Vec<String>>,
    accept: Vec<String>,
}

impl Default for Capabilities {
    /// Every request reaches the caller; Accept says `application/sdp`.
    fn default() -> Self {
        Self { served: None, accept: vec!["application/sdp".to_owned()] }
    }
}

impl Capabilities {
    /// The caller serves only `methods` (MESSAGE, INFO ...) besides what the
    /// user agent handles itself (INVITE, ACK, CANCEL, BYE, OPTIONS).
    #[must_use]
    pub fn serving(methods: &[&str]) -> Self {
        Self { served: Some(methods.iter().map(|m| (*m).to_owned()).collect()), ..Self::default() }
    }
    /// The body types written in Accept (RFC 3261 s.20.1).
    pub fn set_accept(&mut self, types: &[&str]) -> &mut Self {
        self.accept = types.iter().map(|t| (*t).to_owned()).collect();
        self
    }
    /// Whether a request of `method` goes to the caller (or to the user
    /// agent core) rather than being answered here.
    #[must_use]
    pub fn serves(&self, method: &str) -> bool {
        match &self.served {
            None => true,
            Some(served) => CORE[..4].contains(&method) || served.iter().any(|m| m == method),
        }
    }
    /// The Allow value: the core's methods and the served ones.
    #[must_use]
    pub fn allow(&self) -> String {
        let mut allow: Vec<&str> = CORE.to_vec();
        for method in self.served.iter().flatten() {
            if !allow.contains(&method.as_str()) {
                allow.push(method);
            }
        }
        allow.join(", ")
    }

    /// The answer to a request this side does not serve, with `to_tag`;
    /// `busy` is the Retry-After when an INVITE would now get 503. `None`
    /// for what is served (and for ACK, which is never answered).
    #[must_use]
    pub fn answer(&self, request: &Message, to_tag: &str, busy: Option<Duration>) -> Option<MessageBuilder> {
        let method = request.method()?;
        if method == "ACK" || self.serves(method) {
            return None;
        }
        let mut reply;
        if method == "OPTIONS" {
            // s.11.2: "The response code chosen MUST be the same that would have
            // been chosen had the request been an INVITE"; "Allow, Accept ...
            // header fields SHOULD be present in a 200 (OK) response".
            if let Some(after) = busy {
                reply = response(request, 503, Some(to_tag));
                reply.header("Retry-After", &retry_after_seconds(after).to_string());
                return Some(reply);
            }
            reply = response(request, 200, Some(to_tag));
            reply.header("Allow", &self.allow());
            reply.header("Accept", &self.accept.join(", "));
        } else if KNOWN.contains(&method) {
            // s.8.2.1: "If the UAS recognizes but does not support the method of a
            // request, it MUST generate a 405 (Method Not Allowed) response. ...
            // The UAS MUST also add an Allow header field to the 405".
            reply = response(request, 405, Some(to_tag));
            reply.header("Allow", &self.allow());
        } else {
            // s.21.5.2: 501 "is the appropriate response when a UAS does not
            // recognize the request method".
            reply = response(request, 501, Some(to_tag));
        }
        Some(reply)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use bytes::Bytes;

    use super::*;

    fn request(method: &str) -> Message {
        let text = format!(
            "{method} sip:b@h SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(text)).unwrap()
    }

    fn answer(caps: &Capabilities, method: &str, busy: bool) -> Option<Message> {
        let busy = busy.then_some(Duration::from_secs(20));
        caps.answer(&request(method), "t", busy).map(|b| b.build().unwrap())
    }

    #[test]
    fn each_unserved_request_gets_the_rfc_answer() {
        let mut caps = Capabilities::serving(&["MESSAGE"]);
        caps.set_accept(&["application/sdp", "multipart/mixed"]);
        let ok = answer(&caps, "OPTIONS", false).unwrap();
        assert_eq!(ok.status_code(), Some(200));
        let value = |name: &str| ok.headers_named(name).next().map(|h| h.value().into_owned());
        assert_eq!(value("Allow").as_deref(), Some("INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE"));
        assert_eq!(value("Accept").as_deref(), Some("application/sdp, multipart/mixed"));
        assert_eq!(ok.to_tag(), Some("t"));
        let busy = answer(&caps, "OPTIONS", true).unwrap();
        assert_eq!((busy.status_code(), busy.header_values("Retry-After").next()), (Some(503), Some("20")));
        let not_allowed = answer(&caps, "SUBSCRIBE", false).unwrap();
        assert_eq!(not_allowed.status_code(), Some(405));
        assert!(not_allowed.header_values("Allow").next().is_some());
        assert_eq!(answer(&caps, "FROBNICATE", false).unwrap().status_code(), Some(501));
        for served in ["MESSAGE", "INVITE", "ACK", "BYE", "CANCEL"] {
            assert!(answer(&caps, served, false).is_none(), "{served}");
        }
        // By default the caller takes everything (OPTIONS too).
        assert!(answer(&Capabilities::default(), "OPTIONS", false).is_none());
        assert!(answer(&Capabilities::default(), "FROBNICATE", false).is_none());
    }
}
