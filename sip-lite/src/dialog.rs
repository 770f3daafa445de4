//! SIP dialogs (RFC 3261 s.12): the state two user agents share, and the
//! in-dialog requests built from it.
//!
//! A [`Dialog`] is a value, not a machine: the user agent ([`crate::ua`])
//! creates it from the request and the response that establish it, asks it
//! for each in-dialog request, and checks each request it receives.

use std::fmt;

use crate::ids::{new_branch, IdSource};
use crate::sip::{Message, MessageBuilder};
use crate::transaction::Transport;

/// The key of a dialog (s.12): Call-ID, local tag and remote tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId {
    call_id: String,
    local_tag: String,
    remote_tag: String,
}

impl DialogId {
    /// A dialog id from its three parts.
    #[must_use]
    pub fn new(call_id: &str, local_tag: &str, remote_tag: &str) -> Self {
        Self { call_id: call_id.to_owned(), local_tag: local_tag.to_owned(), remote_tag: remote_tag.to_owned() }
    }

    /// The id of the dialog a received request belongs to (s.12.2.2: local tag
    /// = To tag, remote tag = From tag), when it has both tags.
    #[must_use]
    pub fn of_received_request(request: &Message) -> Option<Self> {
        Some(Self::new(request.call_id()?, request.to_tag()?, request.from_tag()?))
    }

    /// The id of the dialog a received response belongs to (s.12.1.2: local tag
    /// = From tag, remote tag = To tag), when it has both tags.
    #[must_use]
    pub fn of_received_response(response: &Message) -> Option<Self> {
        Some(Self::new(response.call_id()?, response.from_tag()?, response.to_tag()?))
    }

    /// The Call-ID.
    #[must_use]
    pub fn call_id(&self) -> &str {
        &self.call_id
    }
    /// The local tag.
    #[must_use]
    pub fn local_tag(&self) -> &str {
        &self.local_tag
    }
    /// The remote tag.
    #[must_use]
    pub fn remote_tag(&self) -> &str {
        &self.remote_tag
    }
}

impl fmt::Display for DialogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};local={};remote={}", self.call_id, self.local_tag, self.remote_tag)
    }
}

/// Whether the dialog was created by a provisional or a final response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogState {
    /// From a 1xx with a To tag (s.12.1).
    Early,
    /// From a 2xx.
    Confirmed,
}

/// Why a received in-dialog request is refused (s.12.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteSequenceError {
    /// "If the remote sequence number was not empty, but the sequence number of
    /// the request is lower than the remote sequence number, the request is out
    /// of order and MUST be rejected with a 500 (Server Internal Error)".
    OutOfOrder,
}

impl RemoteSequenceError {
    /// The response status code.
    #[must_use]
    pub const fn status_code(self) -> u16 {
        500
    }
}

/// The state of one dialog (s.12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    local_seq: u32,
    remote_seq: Option<u32>,
    /// The From (UAC) or To (UAS) value of the establishing request, with our tag.
    local_party: String,
    /// The other value, with the remote tag.
    remote_party: String,
    remote_target: String,
    route_set: Vec<String>,
    local_contact: String,
}

fn unfolded(message: &Message, name: &str) -> Option<String> {
    message.headers_named(name).next().map(|h| h.value().into_owned())
}

fn first_contact(message: &Message) -> Option<String> {
    message.contacts().next().map(|c| c.uri().as_str().to_owned())
}

impl Dialog {
    /// The dialog of a UAC (s.12.1.2) from its INVITE and a 1xx (early) or 2xx
    /// (confirmed) response with a To tag. `None` when the response has no To
    /// tag or no Contact, or the request lacks what a dialog needs.
    #[must_use]
    pub fn from_uac(request: &Message, response: &Message) -> Option<Self> {
        let code = response.status_code()?;
        let id = DialogId::of_received_response(response)?;
        // "The route set MUST be set to the list of URIs in the Record-Route header
        // field from the response, taken in reverse order".
        let mut route_set: Vec<String> = response.header_values("Record-Route").map(str::to_owned).collect();
        route_set.reverse();
        Some(Self {
            id,
            state: if (200..300).contains(&code) { DialogState::Confirmed } else { DialogState::Early },
            // "The local sequence number MUST be set to the value of the sequence
            // number in the CSeq header field of the request. The remote sequence
            // number MUST be empty".
            local_seq: request.cseq()?.seq,
            remote_seq: None,
            local_party: unfolded(request, "From")?,
            remote_party: unfolded(response, "To")?,
            // "The remote target MUST be set to the URI from the Contact header field of the response."
            remote_target: first_contact(response)?,
            route_set,
            local_contact: first_contact(request).unwrap_or_default(),
        })
    }

    /// The dialog of a UAS (s.12.1.1) from the request it answers with a 1xx or
    /// 2xx carrying `local_tag` and `local_contact`. `None` when the request has
    /// no From tag or no Contact.
    #[must_use]
    pub fn from_uas(request: &Message, local_tag: &str, local_contact: &str, confirmed: bool) -> Option<Self> {
        let remote_tag = request.from_tag()?;
        let mut local_party = unfolded(request, "To")?;
        if request.to_tag().is_none() {
            local_party.push_str(";tag=");
            local_party.push_str(local_tag);
        }
        Some(Self {
            id: DialogId::new(request.call_id()?, local_tag, remote_tag),
            state: if confirmed { DialogState::Confirmed } else { DialogState::Early },
            // "The local sequence number MUST be empty" (chosen at the first request we send).
            local_seq: 0,
            // "The remote sequence number MUST be set to the value of the sequence
            // number in the CSeq header field of the request."
            remote_seq: Some(request.cseq()?.seq),
            local_party,
            remote_party: unfolded(request, "From")?,
            // "The remote target MUST be set to the URI from the Contact header field of the request."
            remote_target: first_contact(request)?,
            // "The route set MUST be set to the list of URIs in the Record-Route
            // header field from the request, taken in order".
            route_set: request.header_values("Record-Route").map(str::to_owned).collect(),
            local_contact: local_contact.to_owned(),
        })
    }

    /// The dialog id.
    #[must_use]
    pub const fn id(&self) -> &DialogId {
        &self.id
    }
    /// Early or confirmed.
    #[must_use]
    pub const fn state(&self) -> DialogState {
        self.state
    }
    /// The local sequence number (0 while empty).
    #[must_use]
    pub const fn local_seq(&self) -> u32 {
        self.local_seq
    }
    /// The remote sequence number.
    #[must_use]
    pub const fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }
    /// The remote target (a URI).
    #[must_use]
    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }
    /// The route set, each a Route value (`<uri>;params`).
    #[must_use]
    pub fn route_set(&self) -> &[String] {
        &self.route_set
    }

    /// Confirms an early dialog on the 2xx (s.12.1: an early dialog becomes
    /// confirmed), taking the 2xx's remote target (s.12.2.1.2 for a UAC).
    pub fn confirm(&mut self, response: Option<&Message>) {
        self.state = DialogState::Confirmed;
        if let Some(target) = response.and_then(first_contact) {
            self.remote_target = target;
        }
    }

    /// Checks the CSeq of a received in-dialog request and records it (s.12.2.2).
    /// ACK and CANCEL carry the number of the request they belong to and are
    /// not checked.
    ///
    /// # Errors
    /// [`RemoteSequenceError::OutOfOrder`] for a number lower than the last one.
    pub fn check_remote_seq(&mut self, request: &Message) -> Result<(), RemoteSequenceError> {
        let Some(cseq) = request.cseq() else { return Ok(()) };
        if matches!(cseq.method, "ACK" | "CANCEL") {
            return Ok(());
        }
        if self.remote_seq.is_some_and(|last| cseq.seq < last) {
            return Err(RemoteSequenceError::OutOfOrder);
        }
        self.remote_seq = Some(cseq.seq);
        Ok(())
    }

    /// Request-URI and Route headers (s.12.2.1.1): loose routing when the first
    /// route has `lr`, else the strict-routing rewrite.
    fn routing(&self) -> (String, Vec<String>) {
        let uri_of = |route: &str| {
            let inner = route.split_once('<').and_then(|(_, r)| r.split_once('>')).map(|(u, _)| u);
            inner.unwrap_or(route).to_owned()
        };
        match self.route_set.first() {
            None => (self.remote_target.clone(), Vec::new()),
            // "If the route set is not empty, and the first URI in the route set
            // contains the lr parameter ..., the UAC MUST place the remote target URI
            // into the Request-URI and MUST include a Route header field containing
            // the route set values in order".
            Some(first) if uri_of(first).split(';').any(|p| p.eq_ignore_ascii_case("lr")) => {
                (self.remote_target.clone(), self.route_set.clone())
            }
            // "the UAC MUST place the first URI from the route set into the
            // Request-URI, stripping any parameters that are not allowed in a
            // Request-URI. ... The UAC MUST add a route header field containing
            // the remainder of the route set values in order, including all
            // parameters. The UAC MUST then place the remote target URI into the
            // Route header field as the last value."
            Some(first) => {
                let mut routes: Vec<String> = self.route_set[1..].to_vec();
                routes.push(format!("<{}>", self.remote_target));
                (uri_of(first), routes)
            }
        }
    }

    fn base(&self, method: &str, seq: u32, branch: &str, transport: Transport, via_host: &str) -> MessageBuilder {
        let (uri, routes) = self.routing();
        let mut request = MessageBuilder::request(method, &uri);
        request
            .header("Via", &format!("SIP/2.0/{} {via_host};branch={branch}", transport.via_token()))
            .header("Max-Forwards", "70")
            .header("From", &self.local_party)
            .header("To", &self.remote_party)
            .header("Call-ID", &self.id.call_id)
            .header("CSeq", &format!("{seq} {method}"));
        for route in routes {
            request.header("Route", &route);
        }
        request
    }

    /// A new in-dialog request (s.12.2.1.1: BYE, MESSAGE, INFO ...) with a
    /// fresh branch from `ids`; the local sequence number goes up by one.
    /// The caller adds a body and its Content-Type.
    pub fn request(
        &mut self,
        method: &str,
        ids: &mut dyn IdSource,
        transport: Transport,
        via_host: &str,
    ) -> MessageBuilder {
        // "Requests within a dialog MUST contain strictly monotonically increasing
        // and contiguous CSeq sequence numbers (increasing-by-one) in each direction".
        self.local_seq = self.local_seq.wrapping_add(1).max(1);
        let branch = new_branch(ids);
        let mut request = self.base(method, self.local_seq, &branch, transport, via_host);
        if !self.local_contact.is_empty() && method != "BYE" {
            request.header("Contact", &format!("<{}>", self.local_contact));
        }
        request
    }

    /// The ACK of a 2xx to the INVITE with CSeq number `invite_seq`
    /// (s.13.2.2.4: "The sequence number of the CSeq header field MUST be the
    /// same as the INVITE being acknowledged"), with a fresh branch (it is a
    /// new transaction).
    pub fn ack(&self, invite_seq: u32, ids: &mut dyn IdSource, transport: Transport, via_host: &str) -> MessageBuilder {
        let branch = new_branch(ids);
        self.base("ACK", invite_seq, &branch, transport, via_host)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    struct Counter(u8);
    impl IdSource for Counter {
        fn fill(&mut self, out: &mut [u8]) {
            for b in out {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
    }

    fn msg(text: &str) -> Message {
        Message::parse(Bytes::from(text.replace('\n', "\r\n"))).unwrap()
    }

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>
Content-Length: 0

";
    const OK: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:bob@192.0.2.4>
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>
Content-Length: 0

";

    #[test]
    fn uac_dialog_and_requests() {
        let (invite, ok) = (msg(INVITE), msg(OK));
        let mut dialog = Dialog::from_uac(&invite, &ok).unwrap();
        assert_eq!(dialog.id(), &DialogId::new("a84b4c76e66710", "1928301774", "a6c85cf"));
        assert_eq!(dialog.state(), DialogState::Confirmed);
        // s.12.1.2: the route set is the Record-Route in reverse order.
        assert_eq!(dialog.route_set(), ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]);
        assert_eq!(dialog.remote_target(), "sip:bob@192.0.2.4");
        let mut ids = Counter(0);
        let ack = dialog.ack(314_159, &mut ids, Transport::Unreliable, "pc33.atlanta.example.com").build().unwrap();
        assert_eq!(ack.request_uri_str(), Some("sip:bob@192.0.2.4"));
        assert_eq!(ack.cseq().unwrap().seq, 314_159);
        assert_eq!(ack.to_tag(), Some("a6c85cf"));
        assert_eq!(
            ack.header_values("Route").collect::<Vec<_>>(),
            ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
        );
        let bye = dialog.request("BYE", &mut ids, Transport::Unreliable, "pc33.atlanta.example.com").build().unwrap();
        assert_eq!(bye.cseq().unwrap().seq, 314_160);
        assert_eq!(bye.cseq().unwrap().method, "BYE");
        assert_ne!(bye.top_via().unwrap().branch(), ack.top_via().unwrap().branch());
        assert!(bye.top_via().unwrap().branch().unwrap().starts_with("z9hG4bK"));
    }

    #[test]
    fn uas_dialog_and_sequence() {
        let invite = msg(INVITE);
        let mut dialog = Dialog::from_uas(&invite, "xyz", "sip:bob@192.0.2.4", true).unwrap();
        assert_eq!(dialog.id(), &DialogId::new("a84b4c76e66710", "xyz", "1928301774"));
        assert_eq!(dialog.route_set(), ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]);
        let mut ids = Counter(0);
        let bye = dialog.request("BYE", &mut ids, Transport::Reliable, "192.0.2.4").build().unwrap();
        assert_eq!(bye.from_tag(), Some("xyz"));
        assert_eq!(bye.to_tag(), Some("1928301774"));
        assert_eq!(bye.request_uri_str(), Some("sip:alice@pc33.atlanta.example.com"));
        // s.12.2.2: lower CSeq is refused with 500.
        let old = msg(&INVITE.replace("314159 INVITE", "3 INFO").replace("INVITE sip", "INFO sip"));
        assert_eq!(dialog.check_remote_seq(&old), Err(RemoteSequenceError::OutOfOrder));
        let new = msg(&INVITE.replace("314159 INVITE", "314160 BYE").replace("INVITE sip", "BYE sip"));
        assert_eq!(dialog.check_remote_seq(&new), Ok(()));
        assert_eq!(dialog.remote_seq(), Some(314_160));
    }

    #[test]
    fn strict_route() {
        let invite = msg(&INVITE.replace(";lr>, <sip:p2.example.com;lr>", ">"));
        let mut dialog = Dialog::from_uas(&invite, "x", "sip:b@h", true).unwrap();
        let mut ids = Counter(0);
        let bye = dialog.request("BYE", &mut ids, Transport::Reliable, "h").build().unwrap();
        // s.12.2.1.1: the first route becomes the Request-URI, the remote target the last Route.
        assert_eq!(bye.request_uri_str(), Some("sip:p1.example.com"));
        assert_eq!(bye.header_values("Route").collect::<Vec<_>>(), ["<sip:alice@pc33.atlanta.example.com>"]);
    }
}
