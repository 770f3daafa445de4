//! Who connects and where (RFC 4975 s.8.1, s.8.2, s.8.5; RFC 6135; RFC 4145;
//! RFC 6714), and the offer/answer exchange of one hop (RFC 3264).
//!
//! - [`opener`]: the pair (offer `a=setup`, answer `a=setup`) decides which
//!   side opens the hop.
//! - [`answer_setup`]: what an answerer writes, given the offer and the role
//!   its strategy preset wants.
//! - [`connect_params`]: where the active side connects: the leftmost `a=path`
//!   URI, or `c=`/`m=` when CEMA applies ([`cema_applies`]).
//! - [`build_offer`], [`answer_offer`], [`check_answer`]: the whole exchange,
//!   with the 488 reasons ([`Refusal`]).
//!
//! Decisions where the RFCs leave room:
//! - Addresses are compared without DNS (we are sans-IO): IP literals by
//!   value, names case-insensitively. RFC 6714 s.4.4 would resolve names first.
//! - An offer without `a=setup` (or with `holdconn`) comes from a peer that
//!   follows RFC 4975 s.8.5 and will connect itself: the answer is `passive`.
//! - `actpass` in an answer, or an offer/answer pair that leaves nobody (or
//!   both) to connect, is a failure the offerer reports ([`Refusal::SetupMismatch`]).

use std::fmt;

use msrp_core::MsrpUri;

use crate::error::Refusal;
use crate::media::{BodyType, Direction, LocalMedia, MediaType, MsrpMedia, MsrpSdp, Setup};

/// The side of a hop's offer/answer exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Side {
    /// Sent the INVITE (the offer).
    Offerer,
    /// Received the INVITE and sends the answer in its 200.
    Answerer,
}

impl Side {
    /// The other side.
    #[must_use]
    pub const fn peer(self) -> Self {
        match self {
            Self::Offerer => Self::Answerer,
            Self::Answerer => Self::Offerer,
        }
    }

    /// `offerer` or `answerer`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Offerer => "offerer",
            Self::Answerer => "answerer",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn setup_name(setup: Option<Setup>) -> &'static str {
    setup.map_or("none", Setup::as_str)
}

/// Which side opens the hop, given the offer's and the answer's `a=setup`
/// (`holdconn` counts as absent).
///
/// | offer \ answer | absent | active | passive | actpass |
/// |---|---|---|---|---|
/// | absent | offerer | error | offerer | error |
/// | active | offerer | error | offerer | error |
/// | passive | error | answerer | error | error |
/// | actpass | offerer | answerer | offerer | error |
///
/// # Errors
/// [`Refusal::SetupMismatch`] for the pairs marked *error*.
pub fn opener(offer: Option<Setup>, answer: Option<Setup>) -> Result<Side, Refusal> {
    let (o, a) = (Setup::effective(offer), Setup::effective(answer));
    let mismatch = Refusal::SetupMismatch { offer: setup_name(o), answer: setup_name(a) };
    match (o, a) {
        // RFC 6135 s.4.2.2 NOTE: "According to [RFC4975], the initiating UA is always active";
        // RFC 4975 s.8.5: "The party that sent the original offer is responsible for connecting
        // to its peer." An offerer that said passive cannot be the one connecting.
        (Some(Setup::Passive), None) => Err(mismatch),
        (_, None) => Ok(Side::Offerer),
        // RFC 4145 s.4.1: the answerer may be active only when the offer was passive or actpass.
        (Some(Setup::Actpass | Setup::Passive), Some(Setup::Active)) => Ok(Side::Answerer),
        // ... and passive only when the offer was active or actpass (absent: RFC 4975 offerer).
        (None | Some(Setup::Active | Setup::Actpass), Some(Setup::Passive)) => Ok(Side::Offerer),
        // RFC 4145 s.4.1: "actpass" is an offer value; an answer holds active or passive.
        _ => Err(mismatch),
    }
}

/// The `a=setup` an answerer writes, given the offer's value and the side
/// the strategy preset wants to open the hop; the flag says whether the
/// offer forced the other side (the preset is overridden: negotiation wins).
///
/// # Errors
/// [`Refusal::PassiveOffer`]: RFC 6135 s.4.2.2: "The UA MUST NOT use the
/// a=setup "passive" attribute value in an SDP offer."
pub fn answer_setup(offer: Option<Setup>, want_opener: Side) -> Result<(Setup, bool), Refusal> {
    match Setup::effective(offer) {
        Some(Setup::Passive) => Err(Refusal::PassiveOffer),
        // RFC 6135 s.4.2.2: "If an SDP offer includes an a=setup "actpass" attribute value, the
        // SDP answerer MAY include an a=setup "active" attribute value in the SDP answer".
        Some(Setup::Actpass) => Ok(match want_opener {
            Side::Offerer => (Setup::Passive, false),
            Side::Answerer => (Setup::Active, false),
        }),
        // An active offerer (RFC 4145 s.4.1), or one without COMEDIA (RFC 4975 s.8.5), opens
        // the hop itself; we can only be passive. RFC 6135 s.4.2.1: the answer still carries
        // an explicit a=setup.
        _ => Ok((Setup::Passive, want_opener == Side::Answerer)),
    }
}

/// CEMA applies only when both the offer and the answer carry `a=msrp-cema`
/// (RFC 6714 s.4.2, s.4.3); otherwise RFC 4975 applies.
#[must_use]
pub fn cema_applies(offer: &MsrpMedia, answer: &MsrpMedia) -> bool {
    offer.cema() && answer.cema()
}

use msrp_core::link::normalize_host;
/// What a link registry matches an existing link on: msrp-core's key
/// (scheme, normalized host, port, transport), one for every crate.
pub use msrp_core::link::LinkKey;

/// Where and how the active side of a hop connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectParams {
    /// What the link registry matches on (host and port to connect to).
    pub key: LinkKey,
    /// The peer's whole `a=path` (the To-Path of our requests), leftmost first.
    pub path: Vec<MsrpUri>,
    /// Whether host and port came from `c=`/`m=` (CEMA) instead of the path.
    pub cema: bool,
    /// The peer's `a=fingerprint` values: over TLS, the certificate it
    /// presents MUST be one of them when any is given (RFC 4975 s.14.4).
    pub fingerprints: Vec<String>,
}

impl ConnectParams {
    /// The adjacent hop's URI (leftmost in the path).
    #[must_use]
    pub fn adjacent(&self) -> Option<&MsrpUri> {
        self.path.first()
    }
}

/// Where to connect to reach the peer that wrote `peer`, or `None` for a
/// port-0 stream (nothing to connect to).
///
/// RFC 4975 s.8.3: "only the first entry is relevant for purposes of resolving
/// the address and port"; with `cema` (see [`cema_applies`]) RFC 6714 s.4.2:
/// the active side "MUST use the SDP c/m-line for establishing the MSRP TCP
/// connection".
#[must_use]
pub fn connect_params(peer: &MsrpMedia, cema: bool) -> Option<ConnectParams> {
    if !peer.is_active() {
        return None;
    }
    let first = peer.path().first()?;
    let (host, port) = if cema { (peer.address()?, peer.port()) } else { (first.host(), first.port()?) };
    Some(ConnectParams {
        key: LinkKey::new(first.scheme(), host, port, first.transport()),
        path: peer.path().to_vec(),
        cema,
        fingerprints: peer.fingerprints().map(str::to_owned).collect(),
    })
}

/// RFC 6714 s.4.4: whether the `c=`/`m=` address and port match the leftmost
/// `a=path` URI (compared without DNS, see the module docs).
#[must_use]
pub fn address_matches_path(media: &MsrpMedia) -> bool {
    let (Some(address), Some(first)) = (media.address(), media.path().first()) else {
        return true;
    };
    normalize_host(address) == normalize_host(first.host()) && Some(media.port()) == first.port()
}

// ---------------------------------------------------------------------------
// Offer/answer

/// What an entity can receive on a hop.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Types we accept (`a=accept-types`).
    pub accept_types: Vec<MediaType>,
    /// Types we accept only wrapped (`a=accept-wrapped-types`).
    pub accept_wrapped_types: Vec<MediaType>,
    /// Largest message we take (`a=max-size`).
    pub max_size: Option<u64>,
    /// Whether we implement RFC 6714 (CEMA).
    pub cema: bool,
}

/// What the sender of a large message will send, as its offer says it in
/// OMA SIMPLE IM large message mode: the content type in `a=accept-types`
/// (or `message/cpim` there and the inner type in `a=accept-wrapped-types`)
/// and the size in `a=max-size`. The ISF reads it to pick an IWF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendIntent {
    /// The top-level Content-Type of the message.
    pub content_type: MediaType,
    /// The inner type, when `content_type` is `message/cpim`.
    pub wrapped: Option<MediaType>,
    /// The message size in bytes.
    pub size: u64,
}

impl SendIntent {
    /// Reads the intent from an offer: the first accept-types entry, the
    /// first wrapped entry when that is `message/cpim`, and `a=max-size`.
    /// `None` when the offer does not say (no max-size, or a wildcard type).
    #[must_use]
    pub fn from_offer(offer: &MsrpMedia) -> Option<Self> {
        let content_type = offer.accept_types().first()?.clone();
        if content_type.essence().contains('*') {
            return None;
        }
        let wrapped = if content_type.essence().eq_ignore_ascii_case("message/cpim") {
            offer.accept_wrapped_types().first().filter(|t| !t.essence().contains('*')).cloned()
        } else {
            None
        };
        Some(Self { content_type, wrapped, size: offer.max_size()? })
    }

    fn body(&self) -> BodyType<'_> {
        BodyType { content_type: self.content_type.essence(), wrapped: self.wrapped.as_ref().map(MediaType::essence) }
    }
}

/// Builds the offer an entity writes on a hop: `a=setup:actpass` (every CPM
/// entity here is reachable, RFC 6135 s.4.2.2), our capabilities, or, for the
/// sender of a large message, its [`SendIntent`] and `a=sendonly`.
#[must_use]
pub fn build_offer(uri: MsrpUri, capabilities: &Capabilities, intent: Option<&SendIntent>) -> LocalMedia {
    let mut media = LocalMedia::new(uri, capabilities.accept_types.clone());
    media.accept_wrapped_types.clone_from(&capabilities.accept_wrapped_types);
    media.max_size = capabilities.max_size;
    if let Some(intent) = intent {
        media.accept_types = vec![intent.content_type.clone()];
        media.accept_wrapped_types = intent.wrapped.iter().cloned().collect();
        media.max_size = Some(intent.size);
        media.direction = Direction::SendOnly;
    }
    // RFC 6135 s.4.2.2: "If an MSRP UA can provide a globally reachable IP address that the
    // other endpoint can use as a destination for a TCP connection, the UA MUST use the a=setup
    // "actpass" attribute value in SDP offers."
    media.setup = Some(Setup::Actpass);
    // RFC 6714 s.4.2: "The offerer MUST include an SDP 'msrp-cema' attribute".
    media.cema = capabilities.cema;
    media
}

/// The outcome of one hop's offer/answer, for the side that computed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Which side opens the hop.
    pub opener: Side,
    /// Where the opener connects (the answerer's parameters when the offerer
    /// opens, the offerer's when the answerer opens).
    pub connect: Option<ConnectParams>,
    /// Whether CEMA applies.
    pub cema: bool,
    /// The peer's parameters (path and its connect key), whoever opens: the
    /// passive side uses them to recognise the link (RFC 4975 s.5.4).
    pub peer: Option<ConnectParams>,
}

/// An answer to an offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The media to write into the 200's SDP ([`LocalMedia::to_sdp`]).
    pub media: LocalMedia,
    /// What was agreed.
    pub negotiated: Negotiated,
    /// The offer forced the other opener than the preset wanted.
    pub preset_overridden: bool,
    /// What the offerer announced it will send, if it said.
    pub intent: Option<SendIntent>,
}

fn overlaps(ours: &[MediaType], theirs: &[MediaType]) -> bool {
    ours.iter().any(|o| theirs.iter().any(|t| o.matches(t.essence()) || t.matches(o.essence())))
}

/// Answers an offer with our capabilities, wanting `want_opener` to open the
/// hop (the strategy preset).
///
/// # Errors
/// The [`Refusal`] to send as 488 with a Warning: no MSRP stream, a
/// `passive` offer, no common content type, a message larger than our
/// max-size, or (for a CEMA answerer) a non-CEMA offer whose `c=`/`m=` do not
/// match its path.
pub fn answer_offer(
    offer: &MsrpSdp,
    uri: MsrpUri,
    capabilities: &Capabilities,
    want_opener: Side,
) -> Result<Answer, Refusal> {
    let m = offer.first_active().ok_or(Refusal::NoMsrpMedia)?;
    let (setup, preset_overridden) = answer_setup(m.setup(), want_opener)?;
    // RFC 6714 s.4.3: "If the MSRP media description of the SDP offer does not contain an SDP
    // 'msrp-cema' attribute, and the SDP c/m-line address information associated with the MSRP
    // media description does not match the information in the MSRP URI of the SDP 'path'
    // attribute(s), the answerer MUST either reject the offered MSRP connection [...] or reject
    // the whole SIP request [...] with a 488".
    if capabilities.cema && !m.cema() && !address_matches_path(m) {
        return Err(Refusal::CemaMismatch);
    }
    let intent = SendIntent::from_offer(m);
    // RFC 4975 s.8.6: "If the recipient of an offer does not understand any of the payload types
    // indicated in the offered SDP, it SHOULD [...] return a SIP 488 response."
    let common = match &intent {
        Some(intent) => {
            crate::media::accepts(&capabilities.accept_types, &capabilities.accept_wrapped_types, &intent.body())
        }
        None => overlaps(&capabilities.accept_types, m.accept_types()),
    };
    if !common {
        return Err(Refusal::NoCommonType);
    }
    if let (Some(intent), Some(max)) = (&intent, capabilities.max_size) {
        if intent.size > max {
            return Err(Refusal::TooLarge);
        }
    }
    let mut media = LocalMedia::new(uri, capabilities.accept_types.clone());
    media.accept_wrapped_types.clone_from(&capabilities.accept_wrapped_types);
    media.max_size = capabilities.max_size;
    media.setup = Some(setup);
    media.direction = m.direction().answer_to();
    media.proto = m.proto();
    // RFC 6714 s.4.3: the answerer includes 'msrp-cema' only when the offer had it (and it
    // implements CEMA); otherwise it falls back to RFC 4975.
    let cema = capabilities.cema && m.cema();
    media.cema = cema;
    let opener = if setup == Setup::Active { Side::Answerer } else { Side::Offerer };
    let peer = connect_params(m, cema);
    let negotiated =
        Negotiated { opener, connect: if opener == Side::Answerer { peer.clone() } else { None }, cema, peer };
    Ok(Answer { media, negotiated, preset_overridden, intent })
}

/// Checks the answer to our offer (the SDP of the 200).
///
/// A failure cannot be answered with a status (the 200 is final): the owner
/// MUST ACK it and then end the dialog with BYE ([`AnswerCheck::Failed`]),
/// or ACK and send a new offer without `a=msrp-cema` ([`AnswerCheck::Reoffer`]).
pub fn check_answer(offer: &LocalMedia, intent: Option<&SendIntent>, answer: &MsrpSdp) -> AnswerCheck {
    let Some(m) = answer.media().first() else {
        return AnswerCheck::Failed(Refusal::NoMsrpMedia);
    };
    if !m.is_active() {
        return AnswerCheck::Failed(Refusal::Rejected);
    }
    let opener = match opener(offer.setup, m.setup()) {
        Ok(opener) => opener,
        Err(refusal) => return AnswerCheck::Failed(refusal),
    };
    if let Some(intent) = intent {
        // RFC 4975 s.8.6: "An MSRP endpoint MUST NOT send content of a type not signaled by the
        // peer in either an accept-types or an accept-wrapped-types attribute."
        if !m.accepts(&intent.body()) {
            return AnswerCheck::Failed(Refusal::NoCommonType);
        }
        // RFC 4975 s.8.6: "Senders SHOULD NOT exceed the max-size limit".
        if m.max_size().is_some_and(|max| intent.size > max) {
            return AnswerCheck::Failed(Refusal::TooLarge);
        }
    }
    if offer.cema && !m.cema() && !address_matches_path(m) {
        // RFC 6714 s.4.2: the offerer "MUST fall back to RFC 4975 behavior by sending a new SDP
        // offer" when the c/m-line does not match the path and it will become passive (criterion
        // 1), or the answerer uses a relay and the offerer will become active (criterion 3).
        let relay = m.path().len() > 1;
        if opener == Side::Answerer || relay {
            return AnswerCheck::Reoffer;
        }
    }
    let cema = offer.cema && m.cema();
    let peer = connect_params(m, cema);
    AnswerCheck::Usable(Negotiated {
        opener,
        connect: if opener == Side::Offerer { peer.clone() } else { None },
        cema,
        peer,
    })
}

/// What an offerer does with the answer in a 200.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerCheck {
    /// Go on: ACK, and open or wait for the hop as negotiated.
    Usable(Negotiated),
    /// RFC 6714 s.4.2: ACK, then send a new offer without `a=msrp-cema`.
    Reoffer,
    /// The answer cannot be used: ACK, then end the dialog with BYE.
    Failed(Refusal),
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: [Option<Setup>; 5] =
        [None, Some(Setup::Active), Some(Setup::Passive), Some(Setup::Actpass), Some(Setup::Holdconn)];

    /// Every (offer, answer) pair: the opener, or `None` for an error.
    #[test]
    fn setup_pairs() {
        use Side::{Answerer as A, Offerer as O};
        // rows: offer none, active, passive, actpass, holdconn; columns: answer in the same order
        let table: [[Option<Side>; 5]; 5] = [
            [Some(O), None, Some(O), None, Some(O)],
            [Some(O), None, Some(O), None, Some(O)],
            [None, Some(A), None, None, None],
            [Some(O), Some(A), Some(O), None, Some(O)],
            [Some(O), None, Some(O), None, Some(O)],
        ];
        for (i, offer) in S.iter().enumerate() {
            for (j, answer) in S.iter().enumerate() {
                assert_eq!(opener(*offer, *answer).ok(), table[i][j], "offer {offer:?} answer {answer:?}");
            }
        }
    }

    #[test]
    fn answer_setup_table() {
        use Side::{Answerer as A, Offerer as O};
        type Case = (Option<Setup>, Side, Result<(Setup, bool), Refusal>);
        let cases: &[Case] = &[
            (Some(Setup::Actpass), O, Ok((Setup::Passive, false))),
            (Some(Setup::Actpass), A, Ok((Setup::Active, false))),
            (Some(Setup::Active), O, Ok((Setup::Passive, false))),
            (Some(Setup::Active), A, Ok((Setup::Passive, true))),
            (None, O, Ok((Setup::Passive, false))),
            (None, A, Ok((Setup::Passive, true))),
            (Some(Setup::Holdconn), A, Ok((Setup::Passive, true))),
            (Some(Setup::Passive), O, Err(Refusal::PassiveOffer)),
            (Some(Setup::Passive), A, Err(Refusal::PassiveOffer)),
        ];
        for (offer, want, expect) in cases {
            let got = answer_setup(*offer, *want);
            assert_eq!(&got, expect, "{offer:?} {want:?}");
            // Whatever the answer, the pair agrees on one opener.
            if let Ok((answer, _)) = got {
                assert!(opener(*offer, Some(answer)).is_ok());
            }
        }
    }
}
