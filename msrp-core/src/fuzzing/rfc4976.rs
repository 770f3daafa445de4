//! The `rfc4976_relay` target: an RFC 4976 relay under a script of
//! connections, hostile bytes, well-formed AUTHs, SENDs and responses,
//! acknowledgements, losses and time.
//!
//! Invariants: the relay never panics; everything it writes on a connection
//! is MSRP a framer reads without losing the framing; what it holds stays
//! under its configured bounds at every step; and once every connection is
//! gone and every deadline passed, it holds nothing and waits for nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::id::IdSource;
use crate::rfc4976::{ChallengeMode, Input, Output, Relay, RelayConfig, Users};
use crate::router::ConnId;
use crate::uri::MsrpUri;
use crate::wire::{Encoder, Frame, Framer, FramerEvent, Limits};

/// Reads the script.
struct Script<'a> {
    data: &'a [u8],
}

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(*first)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

/// Ids from the script's first bytes, then a counter.
struct ScriptIds(u64);

impl IdSource for ScriptIds {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            *b = (self.0 >> 33) as u8;
        }
    }
}

const MAX_ACCEPTED: u64 = 8;
const BASE: Duration = Duration::from_secs(1);

fn uri(text: &str) -> Option<MsrpUri> {
    MsrpUri::parse_str(text).ok()
}

/// The far end of a connection: reads what the relay wrote.
struct Far {
    framer: Framer,
    /// Transaction ids of requests the relay wrote here (to answer).
    requests: Vec<String>,
    unacked: usize,
    /// Frames the far end read whole, and writes marked as ending one.
    ends: usize,
    marked_ends: usize,
}

impl Far {
    fn new() -> Self {
        Self { framer: Framer::new(Limits::default()), requests: Vec::new(), unacked: 0, ends: 0, marked_ends: 0 }
    }
}

/// Runs one script; panics when an invariant breaks.
pub fn rfc4976_relay(data: &[u8]) {
    let mut script = Script { data };
    let Some(mode) = script.byte() else { return };
    let (Some(tls), Some(tcp), Some(ws)) = (
        uri("msrps://relay.example.com:9000;tcp"),
        uri("msrp://relay.example.com:9001;tcp"),
        uri("msrps://relay.example.com:443;ws"),
    ) else {
        return;
    };
    let mut config = RelayConfig::new(vec![tls, tcp, ws], "relay.example.com");
    config.websocket_chunk = 64 + usize::from(mode >> 2 & 3) * 100;
    config.challenge = if mode & 1 == 0 { ChallengeMode::NoChallenge } else { ChallengeMode::Digest };
    config.auth_over_tcp = mode & 2 != 0;
    config.write_window = 512 + usize::from(mode >> 4) * 256;
    config.max_owed_frames = 8;
    config.max_grants = 4;
    config.max_nonces = 4;
    config.max_pending = 16;
    config.limits = Limits::default();
    let bounds = (config.max_grants, config.max_pending);
    let mut users = Users::new();
    users.add("alice", "relay.example.com", "pw");
    let mut relay = Relay::new(config, Box::new(users));
    let mut ids = ScriptIds(u64::from(mode));
    let mut now = epoch();
    let mut fars: HashMap<ConnId, Far> = HashMap::new();
    let mut connects: Vec<ConnId> = Vec::new();
    let mut use_paths: Vec<String> = Vec::new();
    let mut next = 1u64;

    let step = |relay: &mut Relay,
                input: Input,
                now: Instant,
                fars: &mut HashMap<ConnId, Far>,
                connects: &mut Vec<ConnId>,
                use_paths: &mut Vec<String>,
                ids: &mut ScriptIds| {
        relay.handle(input, now, ids);
        while let Some(output) = relay.poll_output() {
            match output {
                Output::Write { conn, data, frame_end } => {
                    let far = fars.entry(conn).or_insert_with(Far::new);
                    far.unacked += data.len();
                    far.framer.handle_segment(data);
                    far.marked_ends += usize::from(frame_end);
                    while let Some(event) = far.framer.poll_event() {
                        match event {
                            Ok(FramerEvent::Head(head)) => {
                                if head.is_request() {
                                    far.requests.push(head.txid().to_owned());
                                    far.requests.truncate(64);
                                }
                                use_paths.extend(head.use_path().map(str::to_owned));
                                use_paths.truncate(8);
                            }
                            Ok(FramerEvent::Rejected { error, .. }) => {
                                panic!("the relay wrote a frame its peer rejects: {error:?}")
                            }
                            Ok(FramerEvent::End(_)) => far.ends += 1,
                            Ok(_) => {}
                            Err(error) => panic!("the relay broke the framing: {error:?}"),
                        }
                    }
                    // Over WebSocket each chunk goes as the message a write marked as ending it.
                    assert_eq!(far.ends, far.marked_ends, "frame ends and writes marked as such disagree");
                }
                Output::Connect { conn, .. } => connects.push(conn),
                Output::Close { conn, .. } => {
                    fars.remove(&conn);
                }
                _ => {}
            }
        }
        let held = relay.held();
        assert!(held.grants <= bounds.0, "grants past the bound: {held:?}");
        assert!(held.pending <= bounds.1, "pending past the bound: {held:?}");
    };

    while let Some(op) = script.byte() {
        let pick = |fars: &HashMap<ConnId, Far>, b: u8| {
            let mut conns: Vec<ConnId> = fars.keys().copied().collect();
            conns.sort();
            conns.get(usize::from(b) % conns.len().max(1)).copied()
        };
        let b = script.byte().unwrap_or(0);
        match op % 8 {
            0 if next <= MAX_ACCEPTED => {
                let conn = ConnId::new(next);
                next += 1;
                fars.insert(conn, Far::new());
                let input = Input::Accepted { conn, listener: usize::from(b % 3) };
                step(&mut relay, input, now, &mut fars, &mut connects, &mut use_paths, &mut ids);
            }
            1 => {
                let Some(conn) = pick(&fars, b) else { continue };
                let n = usize::from(script.byte().unwrap_or(0));
                let data = Bytes::copy_from_slice(script.take(n));
                step(
                    &mut relay,
                    Input::Received { conn, data },
                    now,
                    &mut fars,
                    &mut connects,
                    &mut use_paths,
                    &mut ids,
                );
            }
            2 | 3 => {
                let Some(conn) = pick(&fars, b) else { continue };
                let kind = script.byte().unwrap_or(0);
                let Some(frame) = well_formed(kind, &use_paths, fars.get(&conn).map(|f| f.requests.as_slice())) else {
                    continue;
                };
                let Ok(t) = Encoder::new().encode(&frame, &mut ids) else { continue };
                // Written in two pieces cut where the script says.
                let wire = [t.head, t.body, t.end_line].concat();
                let cut = usize::from(script.byte().unwrap_or(0)) % (wire.len() + 1);
                for piece in [&wire[..cut], &wire[cut..]] {
                    let data = Bytes::copy_from_slice(piece);
                    step(
                        &mut relay,
                        Input::Received { conn, data },
                        now,
                        &mut fars,
                        &mut connects,
                        &mut use_paths,
                        &mut ids,
                    );
                }
            }
            4 => {
                let Some(conn) = pick(&fars, b) else { continue };
                let Some(far) = fars.get_mut(&conn) else { continue };
                let bytes = std::mem::take(&mut far.unacked);
                step(
                    &mut relay,
                    Input::Written { conn, bytes },
                    now,
                    &mut fars,
                    &mut connects,
                    &mut use_paths,
                    &mut ids,
                );
            }
            5 => {
                let Some(conn) = pick(&fars, b) else { continue };
                fars.remove(&conn);
                step(&mut relay, Input::Closed { conn }, now, &mut fars, &mut connects, &mut use_paths, &mut ids);
            }
            6 => {
                if connects.is_empty() {
                    continue;
                }
                let conn = connects.remove(usize::from(b) % connects.len());
                let input = if b & 0x80 == 0 {
                    fars.insert(conn, Far::new());
                    Input::Connected { conn }
                } else {
                    Input::Closed { conn }
                };
                step(&mut relay, input, now, &mut fars, &mut connects, &mut use_paths, &mut ids);
            }
            _ => {
                now += BASE * u32::from(b);
                step(&mut relay, Input::Timeout, now, &mut fars, &mut connects, &mut use_paths, &mut ids);
            }
        }
    }

    // Every connection goes (closing one can release a frame that asks for
    // a new one: those go too), every deadline passes: nothing is left.
    for _ in 0..16 {
        let mut conns: Vec<ConnId> = fars.keys().copied().chain(connects.drain(..)).collect();
        if conns.is_empty() {
            break;
        }
        conns.sort();
        for conn in conns {
            fars.remove(&conn);
            step(&mut relay, Input::Closed { conn }, now, &mut fars, &mut connects, &mut use_paths, &mut ids);
        }
    }
    now += Duration::from_secs(2 * 86_400);
    step(&mut relay, Input::Timeout, now, &mut fars, &mut connects, &mut use_paths, &mut ids);
    let held = relay.held();
    assert_eq!((held.connections, held.grants, held.pending), (0, 0, 0), "state left: {held:?}");
    assert_eq!(relay.poll_timeout(), None, "a deadline left with nothing to guard");
}

#[expect(clippy::disallowed_methods, reason = "one real epoch for the script's virtual clock")]
fn epoch() -> Instant {
    Instant::now()
}

/// A frame a client could send: AUTH to the relay, a SEND through a
/// Use-Path seen on the wire, or a response to a request the relay wrote.
fn well_formed(kind: u8, use_paths: &[String], requests: Option<&[String]>) -> Option<Frame> {
    let me = uri("msrps://alice.example.com:9892/98cjs;tcp")?;
    let peer = uri("msrps://bob.example.com:8145/foo;tcp")?;
    let relay = uri("msrps://relay.example.com:9000;tcp")?;
    let use_path = use_paths.get(usize::from(kind >> 3) % use_paths.len().max(1)).and_then(|u| uri(u));
    Some(match kind % 5 {
        0 => {
            let frame = Frame::bodiless("AUTH", vec![relay], vec![me]);
            if kind & 0x40 != 0 {
                frame.with_header("Expires", &u32::from(kind).to_string())
            } else {
                frame
            }
        }
        1 | 2 => {
            let to = if kind % 5 == 1 { peer.clone() } else { me.clone() };
            let from = if kind % 5 == 1 { me } else { peer };
            let body = Bytes::from(vec![b'x'; usize::from(kind) * 37]);
            Frame::send(vec![use_path?, to], vec![from], "text/plain", body)
        }
        3 => {
            let tid = requests?.get(usize::from(kind >> 3) % requests?.len().max(1))?;
            let tid = crate::TransactionId::from_text(tid)?;
            let status = [200, 403, 408, 481][usize::from(kind >> 6)];
            Frame::response(tid, status, None, vec![use_path.unwrap_or(relay)], vec![me])
        }
        _ => Frame::bodiless("REPORT", vec![use_path?, peer], vec![me]).with_header("Status", "000 200 OK"),
    })
}
