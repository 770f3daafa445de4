//! Pictures of a trace: a ladder diagram for terminals ([`ladder`]), an
//! SVG sequence diagram ([`svg`]) and an SVG chart of the bytes each member
//! received over time ([`throughput_svg`]), plus [`TraceRecorder`], which turns the
//! outputs an entity emits into [`TraceEvent`]s the way the simulator does,
//! so that a runtime on real sockets records the same trace (same JSON
//! schema, [`TraceEvent::to_json`]).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Instant;

use bytes::Bytes;
use cpm_negotiation::Trigger;
use msrp_core::Transmit;
use sip_lite::sip::Message;

use crate::sim::{crc32, trigger_name, Scenario, TraceEvent};
use crate::ConnId;

/// Width of one ladder column, in characters.
const WIDTH: usize = 14;

/// The entity columns of a scenario, left to right: A, PF-A, CF, then
/// PF-B and B per CPM member, then the ISF and the IWFs.
#[must_use]
pub fn columns(scenario: &Scenario) -> Vec<String> {
    let mut columns = vec!["A".to_owned(), "PF-A".to_owned(), "CF".to_owned()];
    let single = scenario.members + scenario.non_cpm == 1;
    if scenario.shared_pf_b && scenario.members > 0 {
        columns.push("PF-B".to_owned());
    }
    for k in 1..=scenario.members {
        let s = if single { String::new() } else { k.to_string() };
        if !scenario.shared_pf_b {
            columns.push(format!("PF-B{s}"));
        }
        columns.push(format!("B{s}"));
    }
    if scenario.non_cpm > 0 {
        columns.push("ISF".to_owned());
        for k in 1..=scenario.non_cpm {
            columns.push(if single { "IWF".to_owned() } else { format!("IWF{k}") });
        }
    }
    columns
}

/// The ladder diagram of `trace` over `columns` (see [`columns`]): a header
/// line, then one line per event, each ending with `\n`. An entity that is
/// not a column is drawn in the first one.
#[must_use]
pub fn ladder(columns: &[String], trace: &[TraceEvent]) -> String {
    let mut out = String::new();
    let mut header = String::new();
    for column in columns {
        let _ = write!(header, "{column:<WIDTH$}");
    }
    out.push_str(header.trim_end());
    out.push('\n');
    let col = |name: &str| columns.iter().position(|c| c == name).unwrap_or(0);
    for event in trace {
        let line = match event {
            TraceEvent::Sip { from, to, msg, hop, retransmission } => {
                let note = if *retransmission { format!("{hop} (retransmission)") } else { hop.clone() };
                arrow(columns.len(), col(from), col(to), msg, '-', &note)
            }
            TraceEvent::Connect { from, to, hop, trigger, .. } => {
                arrow(columns.len(), col(from), col(to), "TCP", '=', &format!("{hop} open on {trigger}"))
            }
            TraceEvent::Msrp { from, to, hop, msg, bytes } => {
                let label = if *bytes > 0 { format!("{msg} {bytes}") } else { msg.clone() };
                arrow(columns.len(), col(from), col(to), &label, '~', hop)
            }
            TraceEvent::Submit { at, bytes, crc32 } => note(col(at), &format!("submit {bytes} B crc {crc32:08x}")),
            TraceEvent::Deliver { at, bytes, crc32 } => note(col(at), &format!("deliver {bytes} B crc {crc32:08x}")),
            TraceEvent::NonCpm { at, format, parts } => {
                note(col(at), &format!("to non-CPM: {format} in {parts} part(s)"))
            }
            TraceEvent::Close { hop } => format!("close {hop}"),
            #[expect(unreachable_patterns, reason = "TraceEvent is non_exhaustive for other crates only")]
            _ => continue,
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn note(at: usize, text: &str) -> String {
    format!("{:width$}* {text}", "", width = at * WIDTH)
}

fn arrow(columns: usize, from: usize, to: usize, label: &str, line: char, suffix: &str) -> String {
    let (left, right) = (from.min(to), from.max(to));
    let mut row = String::new();
    for c in 0..columns {
        if c < left || c >= right {
            row.push('|');
            if c + 1 < columns {
                row.push_str(&" ".repeat(WIDTH - 1));
            }
        } else {
            let mut segment: Vec<char> = std::iter::once('|').chain(std::iter::repeat(line).take(WIDTH - 1)).collect();
            if c == left && from > to {
                segment[1] = '<';
            }
            if c + 1 == right && from < to {
                segment[WIDTH - 1] = '>';
            }
            if c == left {
                for (i, ch) in label.chars().take(WIDTH - 4).enumerate() {
                    segment[2 + i] = ch;
                }
            }
            row.extend(segment);
        }
    }
    format!("{row}  {suffix}")
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One row of the sequence diagram: an event, or a run of MSRP frames of
/// one kind on one hop (`count` of them, `bytes` of body).
enum Row<'a> {
    Event(&'a TraceEvent),
    Frames { from: &'a str, to: &'a str, hop: &'a str, msg: &'a str, count: usize, bytes: usize },
}

/// The rows of `trace`: between two events that are not MSRP frames, the
/// frames of one kind (a method, or a status) on one hop in one direction
/// become one row, placed where the first of them was. A 64 MiB message
/// is then a few rows per hop, not one per chunk.
fn rows(trace: &[TraceEvent]) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    // The rows of the current run of frames, by hop, direction and kind.
    let mut open: HashMap<(&str, &str, &str, &str), usize> = HashMap::new();
    for event in trace {
        match event {
            TraceEvent::Msrp { from, to, hop, msg, bytes } => {
                let key = (from.as_str(), to.as_str(), hop.as_str(), msg.as_str());
                match open.get(&key).and_then(|&at| rows.get_mut(at)) {
                    Some(Row::Frames { count, bytes: total, .. }) => {
                        *count += 1;
                        *total += *bytes;
                    }
                    _ => {
                        open.insert(key, rows.len());
                        rows.push(Row::Frames { from, to, hop, msg, count: 1, bytes: *bytes });
                    }
                }
            }
            other => {
                open.clear();
                rows.push(Row::Event(other));
            }
        }
    }
    rows
}

/// An SVG sequence diagram of `trace` over `columns` (see [`columns`]): one
/// lifeline per column, one row per event, except that between two events
/// that are not MSRP frames, the frames of one kind on one hop share a row
/// (`SEND x1024 2097152 B`). Every SIP message and connect is one `<g
/// class="arrow ...">` (kinds `sip`, `connect`), every row of frames one of
/// kind `msrp` whose `data-messages` says how many frames it stands for;
/// submits, deliveries and hand-overs to a non-CPM system are notes on
/// their entity's lifeline, closes a line of text.
#[must_use]
pub fn svg(columns: &[String], trace: &[TraceEvent]) -> String {
    const COLUMN: usize = 130;
    const ROW: usize = 22;
    const TOP: usize = 50;
    const LEFT: usize = 70;
    let rows = rows(trace);
    let width = LEFT * 2 + COLUMN * columns.len().saturating_sub(1) + 120;
    let height = TOP + ROW * (rows.len() + 2);
    let x = |name: &str| LEFT + COLUMN * columns.iter().position(|c| c == name).unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         font-family=\"monospace\" font-size=\"11\">"
    );
    out.push_str(
        "<defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
         orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>\n",
    );
    out.push_str(
        "<style>.sip line{stroke:#1f4e99}.connect line{stroke:#2b7a2b;stroke-width:2}\
         .msrp line{stroke:#a0522d;stroke-dasharray:5,3}.note{fill:#555}</style>\n",
    );
    out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    for (k, column) in columns.iter().enumerate() {
        let cx = LEFT + COLUMN * k;
        let _ = writeln!(
            out,
            "<g class=\"lifeline\"><text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\
             <line x1=\"{cx}\" y1=\"{}\" x2=\"{cx}\" y2=\"{}\" stroke=\"#999\"/></g>",
            TOP - 20,
            xml_escape(column),
            TOP - 10,
            height - 10
        );
    }
    for (row, item) in rows.iter().enumerate() {
        let y = TOP + ROW * (row + 1);
        let (kind, from, to, label, messages) = match item {
            Row::Frames { from, to, hop, msg, count, bytes } => {
                let size = if *bytes > 0 { format!(" {bytes} B") } else { String::new() };
                let times = if *count > 1 { format!(" x{count}") } else { String::new() };
                ("msrp", *from, *to, format!("{msg}{times}{size} {hop}"), *count)
            }
            Row::Event(TraceEvent::Sip { from, to, msg, hop, retransmission }) => {
                let again = if *retransmission { " (retransmission)" } else { "" };
                ("sip", from.as_str(), to.as_str(), format!("{msg} {hop}{again}"), 1)
            }
            Row::Event(TraceEvent::Connect { from, to, hop, trigger, .. }) => {
                ("connect", from.as_str(), to.as_str(), format!("TCP {hop} open on {trigger}"), 1)
            }
            Row::Event(TraceEvent::Submit { at, bytes, crc32 }) => {
                let _ = writeln!(
                    out,
                    "<text class=\"note\" x=\"{}\" y=\"{y}\">submit {bytes} B crc {crc32:08x}</text>",
                    x(at) + 4
                );
                continue;
            }
            Row::Event(TraceEvent::Deliver { at, bytes, crc32 }) => {
                let _ = writeln!(
                    out,
                    "<text class=\"note\" x=\"{}\" y=\"{y}\">deliver {bytes} B crc {crc32:08x}</text>",
                    x(at) + 4
                );
                continue;
            }
            Row::Event(TraceEvent::NonCpm { at, format, parts }) => {
                let _ = writeln!(
                    out,
                    "<text class=\"note\" x=\"{}\" y=\"{y}\">to non-CPM: {} in {parts} part(s)</text>",
                    x(at) + 4,
                    xml_escape(format)
                );
                continue;
            }
            Row::Event(TraceEvent::Close { hop }) => {
                let _ = writeln!(out, "<text class=\"note\" x=\"4\" y=\"{y}\">close {}</text>", xml_escape(hop));
                continue;
            }
            Row::Event(_) => continue,
        };
        let (x1, x2) = (x(from), x(to));
        let mid = (x1 + x2) / 2;
        let _ = writeln!(
            out,
            "<g class=\"arrow {kind}\" data-messages=\"{messages}\"><line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" \
             marker-end=\"url(#head)\"/><text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>",
            y - 3,
            xml_escape(&label)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// An SVG chart of the bytes each member received over time: for every
/// column named `B..` or `IWF..`, the body bytes of the MSRP requests sent
/// to it so far, from the first event of `trace` (`times` holds when each
/// event happened, as [`TraceRecorder::times`]).
#[must_use]
pub fn throughput_svg(columns: &[String], trace: &[TraceEvent], times: &[Instant]) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 360.0;
    const MARGIN: f64 = 60.0;
    const COLORS: [&str; 6] = ["#1f4e99", "#a0522d", "#2b7a2b", "#8b1a8b", "#b8860b", "#555555"];
    let members: Vec<&String> = columns.iter().filter(|c| c.starts_with('B') || c.starts_with("IWF")).collect();
    let start = times.first().copied();
    let mut series: Vec<Vec<(f64, u64)>> = vec![vec![(0.0, 0)]; members.len()];
    for (event, at) in trace.iter().zip(times) {
        let TraceEvent::Msrp { to, bytes, .. } = event else { continue };
        let Some(k) = members.iter().position(|m| *m == to) else { continue };
        let seconds = start.map_or(0.0, |s| at.saturating_duration_since(s).as_secs_f64());
        let total = series[k].last().map_or(0, |p| p.1) + *bytes as u64;
        series[k].push((seconds, total));
    }
    let end = series.iter().flatten().map(|p| p.0).fold(0.0, f64::max).max(1e-3);
    let most = series.iter().flatten().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let (plot_w, plot_h) = (WIDTH - 2.0 * MARGIN, HEIGHT - 2.0 * MARGIN);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"monospace\" font-size=\"11\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    );
    let _ = writeln!(
        out,
        "<g class=\"axes\" stroke=\"#999\"><line x1=\"{MARGIN}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\
         <line x1=\"{MARGIN}\" y1=\"{MARGIN}\" x2=\"{MARGIN}\" y2=\"{}\"/></g>",
        HEIGHT - MARGIN,
        WIDTH - MARGIN,
        HEIGHT - MARGIN,
        HEIGHT - MARGIN
    );
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time (s), 0 to {end:.3}</text>\
         <text x=\"10\" y=\"{}\">bytes received, 0 to {most:.0}</text>",
        WIDTH / 2.0,
        HEIGHT - 20.0,
        MARGIN - 20.0
    );
    for (k, (member, points)) in members.iter().zip(&series).enumerate() {
        let color = COLORS[k % COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(t, b)| {
                format!("{:.1},{:.1}", MARGIN + t / end * plot_w, HEIGHT - MARGIN - *b as f64 / most * plot_h)
            })
            .collect();
        let _ = writeln!(
            out,
            "<g class=\"member\"><polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{color}\">{}</text></g>",
            path.join(" "),
            WIDTH - MARGIN + 6.0,
            MARGIN + 14.0 * k as f64,
            xml_escape(member)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Records a trace from entity outputs as [`crate::sim::Sim`] does: the
/// runtime calls one method per output it carries out, with the names it
/// resolved (sender, receiver, hop label).
#[derive(Debug, Default)]
pub struct TraceRecorder {
    events: Vec<TraceEvent>,
    times: Vec<Instant>,
    /// SIP bytes each entity sent (a repeat is a retransmission).
    seen_sip: HashSet<(usize, Bytes)>,
    /// The request being written on (connection, writer): its trace index.
    open_frames: HashMap<(ConnId, usize), usize>,
}

impl TraceRecorder {
    /// An empty trace.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far.
    #[must_use]
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    /// When each of [`TraceRecorder::events`] was recorded.
    #[must_use]
    pub fn times(&self) -> &[Instant] {
        &self.times
    }

    fn push(&mut self, now: Instant, event: TraceEvent) {
        self.events.push(event);
        self.times.push(now);
    }

    /// The sender `at` submitted `body`.
    pub fn submit(&mut self, now: Instant, at: &str, body: &[u8]) {
        self.push(now, TraceEvent::Submit { at: at.to_owned(), bytes: body.len(), crc32: crc32(body) });
    }

    /// Entity `index` sent `bytes` on a SIP flow; `route` is its
    /// `[sender, receiver, hop]` names. Returns the parsed message, to hand
    /// to the receiver.
    ///
    /// # Errors
    /// The parse error when the bytes are not one SIP message (nothing is
    /// recorded then).
    pub fn sip(
        &mut self,
        now: Instant,
        index: usize,
        route: [&str; 3],
        bytes: &Bytes,
    ) -> Result<Message, sip_lite::sip::ParseError> {
        let [from, to, hop] = route;
        let retransmission = !self.seen_sip.insert((index, bytes.clone()));
        let message = Message::parse(bytes.clone())?;
        let msg = message
            .method()
            .map_or_else(|| message.status_code().map_or_else(String::new, |c| c.to_string()), str::to_owned);
        self.push(
            now,
            TraceEvent::Sip { from: from.to_owned(), to: to.to_owned(), msg, hop: hop.to_owned(), retransmission },
        );
        Ok(message)
    }

    /// `from` opened a link to `to` for hop `hop`.
    pub fn connect(&mut self, now: Instant, from: &str, to: &str, hop: &str, trigger: Trigger, reuse: bool) {
        let event = TraceEvent::Connect {
            from: from.to_owned(),
            to: to.to_owned(),
            hop: hop.to_owned(),
            trigger: trigger_name(trigger),
            reuse,
        };
        self.push(now, event);
    }

    /// Entity `index` wrote `transmit` on `conn`; `route` is its
    /// `[sender, receiver, hop]` names. A head starts an MSRP event; a
    /// request's body pieces add up until its end-line.
    pub fn msrp(&mut self, now: Instant, index: usize, conn: ConnId, route: [&str; 3], transmit: &Transmit) {
        let [from, to, hop] = route;
        let key = (conn, index);
        if !transmit.head.is_empty() {
            let line = transmit.head.split(|&b| b == b'\r').next().unwrap_or_default();
            let text = String::from_utf8_lossy(line);
            let msg = text.split(' ').nth(2).unwrap_or_default().to_owned();
            self.push(
                now,
                TraceEvent::Msrp { from: from.to_owned(), to: to.to_owned(), hop: hop.to_owned(), msg, bytes: 0 },
            );
            self.open_frames.insert(key, self.events.len() - 1);
        }
        if let Some(&at) = self.open_frames.get(&key) {
            if let Some(TraceEvent::Msrp { msg, bytes, .. }) = self.events.get_mut(at) {
                if msg.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
                    *bytes += transmit.body.len();
                }
            }
            if !transmit.end_line.is_empty() {
                self.open_frames.remove(&key);
            }
        }
    }

    /// The opener closed hop `hop`'s link.
    pub fn close(&mut self, now: Instant, hop: &str) {
        self.push(now, TraceEvent::Close { hop: hop.to_owned() });
    }

    /// `at` reassembled `body`.
    pub fn deliver(&mut self, now: Instant, at: &str, body: &[u8]) {
        self.push(now, TraceEvent::Deliver { at: at.to_owned(), bytes: body.len(), crc32: crc32(body) });
    }

    /// The IWF `at` handed a message to the non-CPM system.
    pub fn non_cpm(&mut self, now: Instant, at: &str, format: &str, parts: usize) {
        self.push(now, TraceEvent::NonCpm { at: at.to_owned(), format: format.to_owned(), parts });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<TraceEvent> {
        vec![
            TraceEvent::Submit { at: "A".into(), bytes: 5, crc32: 1 },
            TraceEvent::Sip {
                from: "A".into(),
                to: "PF-A".into(),
                msg: "INVITE".into(),
                hop: "L1".into(),
                retransmission: false,
            },
            TraceEvent::Connect { from: "A".into(), to: "PF-A".into(), hop: "L1".into(), trigger: "200", reuse: false },
            TraceEvent::Msrp { from: "PF-A".into(), to: "A".into(), hop: "L1<&>".into(), msg: "200".into(), bytes: 0 },
            TraceEvent::Close { hop: "L1".into() },
        ]
    }

    #[test]
    fn ladder_rows() {
        let columns = vec!["A".to_owned(), "PF-A".to_owned()];
        let text = ladder(&columns, &sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "A             PF-A");
        assert_eq!(lines[2], "|-INVITE----->|  L1");
        assert_eq!(lines[4], "|<200~~~~~~~~~|  L1<&>");
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn svg_escapes() {
        let columns = vec!["A".to_owned(), "PF-A".to_owned()];
        let text = svg(&columns, &sample());
        assert!(text.contains("L1&lt;&amp;&gt;"));
        assert_eq!(text.matches("<g class=\"arrow ").count(), 3);
    }

    fn frame(from: &str, to: &str, msg: &str, bytes: usize) -> TraceEvent {
        TraceEvent::Msrp { from: from.into(), to: to.into(), hop: "L1".into(), msg: msg.into(), bytes }
    }

    /// 1000 chunks and their 200s between two SIP messages are two rows, each
    /// saying how many frames and bytes it stands for; a SIP message ends a run.
    #[test]
    fn runs_of_frames_share_a_row() {
        let columns = vec!["A".to_owned(), "PF-A".to_owned()];
        let mut trace = vec![TraceEvent::Sip {
            from: "A".into(),
            to: "PF-A".into(),
            msg: "ACK".into(),
            hop: "L1".into(),
            retransmission: false,
        }];
        for _ in 0..1000 {
            trace.push(frame("A", "PF-A", "SEND", 2048));
            trace.push(frame("PF-A", "A", "200", 0));
        }
        trace.push(TraceEvent::Close { hop: "L1".into() });
        trace.push(frame("A", "PF-A", "SEND", 10));
        let text = svg(&columns, &trace);
        assert_eq!(text.matches("<g class=\"arrow msrp\"").count(), 3);
        assert!(text.contains("data-messages=\"1000\"") && text.contains("SEND x1000 2048000 B L1"), "{text}");
        assert!(text.contains("data-messages=\"1\"><line") && text.contains("SEND 10 B L1"));
    }

    /// One line per member, rising to the bytes each received.
    #[test]
    fn throughput_draws_each_member() {
        let columns = vec!["A".to_owned(), "B1".to_owned(), "B2".to_owned()];
        #[expect(clippy::disallowed_methods, reason = "a test epoch")]
        let start = Instant::now();
        let trace = vec![frame("A", "B1", "SEND", 100), frame("A", "B2", "SEND", 50), frame("A", "B1", "SEND", 100)];
        let times: Vec<Instant> = (0..3).map(|k| start + std::time::Duration::from_millis(10 * k)).collect();
        let text = throughput_svg(&columns, &trace, &times);
        assert_eq!(text.matches("<polyline").count(), 2);
        assert!(text.contains("bytes received, 0 to 200"), "{text}");
        assert!(text.contains(">B1</text>") && text.contains(">B2</text>"));
    }
}
