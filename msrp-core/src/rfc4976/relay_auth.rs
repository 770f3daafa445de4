//! The relay's side of AUTH (RFC 4976 s.6.3): challenges, credentials,
//! lifetimes and the Use-Path URIs it hands out.

use std::time::{Duration, Instant};

use super::{CloseReason, Grant, Output, Relay, Timer};
use crate::auth::digest::{AuthenticationInfo, Challenge, Credentials};
use crate::id::{random_ident, IdSource};
use crate::rfc4976::config::{is_websocket, ChallengeMode};
use crate::rfc4976::frames::answer_to;
use crate::router::ConnId;
use crate::uri::{MsrpUri, Scheme};
use crate::wire::FrameHead;

impl Relay {
    /// An AUTH to the relay itself, read whole (RFC 4976 s.6.3).
    pub(super) fn auth(&mut self, conn: ConnId, head: &FrameHead, now: Instant, ids: &mut dyn IdSource) {
        let tls = self
            .conns
            .get(&conn)
            .and_then(|c| c.listener)
            .and_then(|l| self.config.listeners.get(l))
            .is_some_and(|l| l.scheme() == Scheme::Msrps);
        // RFC 4976 s.8: "AUTH requests MUST only be sent over a TLS-protected channel."
        if !tls && !self.config.auth_over_tcp {
            return self.auth_failed(conn, head, 403, Vec::new(), now, ids);
        }
        let (username, credentials) = match self.config.challenge {
            ChallengeMode::NoChallenge => (String::new(), None),
            ChallengeMode::Digest => {
                let Some(value) = head.authorization() else {
                    // RFC 4976 s.5.1: "In response to an AUTH request that does not contain an
                    // Authorization header, a relay MUST respond with a "401 Unauthorized"
                    // response containing a WWW-Authenticate header."
                    let challenge = self.challenge(false, now, ids);
                    return self.auth_failed(conn, head, 401, vec![("WWW-Authenticate", challenge)], now, ids);
                };
                let Ok(credentials) = Credentials::parse(value) else {
                    return self.auth_failed(conn, head, 400, Vec::new(), now, ids);
                };
                let fresh = self.nonces.get(&credentials.nonce).is_some_and(|at| *at > now);
                if credentials.realm != self.config.realm || !fresh {
                    // A nonce we no longer hold: the client answers the new one (RFC 2617 s.3.2.1 stale).
                    let challenge = self.challenge(credentials.realm == self.config.realm, now, ids);
                    return self.auth_failed(conn, head, 401, vec![("WWW-Authenticate", challenge)], now, ids);
                }
                let Some(ha1) = self.users.ha1(&credentials.username, &self.config.realm) else {
                    // RFC 4976 s.6.3: "If the client is not authorized, the relay returns a 403 response."
                    return self.auth_failed(conn, head, 403, Vec::new(), now, ids);
                };
                // RFC 4976 s.9.1: "The request-URI to be used in calculating H(A2) is the rightmost
                // URI in the To-Path header."
                let rightmost = head.to_path().last().unwrap_or_default().to_owned();
                if !credentials.verify(&ha1, &rightmost) {
                    let challenge = self.challenge(false, now, ids);
                    return self.auth_failed(conn, head, 401, vec![("WWW-Authenticate", challenge)], now, ids);
                }
                // A nonce answers one AUTH (s.9.1: "AUTH requests cannot be pipelined").
                self.nonces.remove(&credentials.nonce);
                (credentials.username.clone(), Some((credentials, ha1, rightmost)))
            }
        };
        // RFC 4976 s.6.3: "If the client has requested a particular expiration time in an
        // Expires header, the relay needs to check that the time is acceptable to it and, if
        // not, return an error containing a Min-Expires or Max-Expires header".
        let expires = head.expires().unwrap_or(self.config.default_expires);
        if expires < self.config.min_expires {
            let min = self.config.min_expires.to_string();
            return self.auth_failed(conn, head, 423, vec![("Min-Expires", min)], now, ids);
        }
        if expires > self.config.max_expires {
            let max = self.config.max_expires.to_string();
            return self.auth_failed(conn, head, 423, vec![("Max-Expires", max)], now, ids);
        }
        let held_here = self.conns.get(&conn).map_or(0, |c| c.grants);
        if self.grants.len() >= self.config.max_grants || held_here >= self.config.max_grants_per_connection {
            return self.auth_failed(conn, head, 403, Vec::new(), now, ids);
        }
        let Some(client) = head.from_path_uris().next() else { return };
        let listener = self.conns.get(&conn).and_then(|c| c.listener).unwrap_or(0);
        let Some(base) = self.config.listeners.get(listener) else { return };
        // A WebSocket client's peers reach it through the relay's stream listener (RFC 7977
        // s.8.1.2: the Use-Path a WebSocket client gets is a `tcp` URI), if there is one.
        let base = if is_websocket(base) {
            self.config.listeners.iter().find(|l| !is_websocket(l)).unwrap_or(base)
        } else {
            base
        };
        // RFC 4976 s.6.3: "The URI MUST contain at least 64 bits of cryptographically random
        // material": 16 characters of 62 symbols, 95 bits.
        let sid = String::from_utf8_lossy(&random_ident::<16>(ids)).into_owned();
        let Ok(uri) = MsrpUri::new(base.scheme(), base.host(), base.port(), Some(&sid), base.transport()) else {
            return;
        };
        let expires_at = now + Duration::from_secs(u64::from(expires));
        self.grants.insert(sid.clone(), Grant { conn, client, expires_at });
        if let Some(c) = self.conns.get_mut(&conn) {
            c.grants += 1;
        }
        self.arm(expires_at, Timer::Grant(sid));
        // RFC 4976 s.5.1 example: the outer relay's Use-Path holds the relays before it (the
        // AUTH's From-Path without the client, reversed) and then its own URI.
        let from: Vec<String> = head.from_path().map(str::to_owned).collect();
        let mut use_path: Vec<String> = from.iter().take(from.len().saturating_sub(1)).rev().cloned().collect();
        use_path.push(uri.as_str().to_owned());
        let mut headers = vec![("Use-Path", use_path.join(" ")), ("Expires", expires.to_string())];
        if let Some((credentials, ha1, rightmost)) = &credentials {
            let next = self.challenge(false, now, ids);
            let nextnonce = Challenge::parse(&next).ok().map(|c| c.nonce);
            // RFC 4976 s.9.1: "Relays MUST include rspauth, cnonce, nc, and qop parameters in a
            // "Authentication-Info" header for all "200 OK" responses to an AUTH request."
            let info = AuthenticationInfo::answer(credentials, ha1, rightmost, nextnonce.as_deref());
            headers.push(("Authentication-Info", info.to_string()));
        }
        if let Some(answer) = answer_to(head, 200, headers) {
            self.send_small(conn, answer);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.probation_until = None;
            c.failed_auth = 0;
        }
        self.out.push_back(Output::Authenticated { conn, username, use_path: uri });
    }

    fn auth_failed(
        &mut self,
        conn: ConnId,
        head: &FrameHead,
        status: u16,
        headers: Vec<(&'static str, String)>,
        now: Instant,
        ids: &mut dyn IdSource,
    ) {
        if let Some(answer) = answer_to(head, status, headers) {
            self.send_small(conn, answer);
        }
        let Some(c) = self.conns.get_mut(&conn) else { return };
        // RFC 4976 s.6.3: "a relay SHOULD NOT use excessive AUTH request failures as a reason to
        // terminate a connection with another relay": an AUTH that came through a relay (more
        // than the client in its From-Path) does not count.
        if head.from_path().nth(1).is_some() {
            return;
        }
        c.failed_auth += 1;
        // RFC 4976 s.6.1: "if several unsuccessful requests are sent during the probation
        // period and no requests are sent successfully, the server SHOULD close the connection."
        // Every AUTH not granted counts, a challenge included (a client's round is a challenge
        // and its answer, a stale nonce one more), so that a connection cannot draw nonces or
        // guess passwords without end; a grant starts the count again.
        if c.listener.is_some() && c.failed_auth >= self.config.max_failed_auth {
            self.close(conn, CloseReason::AuthFailures, now, ids);
        }
    }

    /// A fresh challenge (`stale` when the client's nonce was one we let go).
    fn challenge(&mut self, stale: bool, now: Instant, ids: &mut dyn IdSource) -> String {
        let nonce = String::from_utf8_lossy(&random_ident::<24>(ids)).into_owned();
        while self.nonces.len() >= self.config.max_nonces.max(1) {
            let Some(oldest) = self.nonce_order.pop_front() else { break };
            self.nonces.remove(&oldest);
        }
        if self.nonce_order.is_empty() {
            self.arm(now + self.config.nonce_lifetime, Timer::Nonces);
        }
        self.nonces.insert(nonce.clone(), now + self.config.nonce_lifetime);
        self.nonce_order.push_back(nonce.clone());
        if self.nonce_order.len() > 2 * self.config.max_nonces.max(1) {
            let nonces = &self.nonces;
            self.nonce_order.retain(|n| nonces.contains_key(n));
        }
        let mut challenge = Challenge::new(&self.config.realm, &nonce);
        challenge.stale = stale;
        challenge.to_string()
    }
}
