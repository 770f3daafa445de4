//! Node configs: a valid one per role parses into the expected values, and
//! each kind of mistake is reported with its message and line.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cpm_node::config::{
    AckPolicy, AnswerPolicy, ByteSize, IwfReport, LoadError, NodeConfig, NonCpmSystem, ProblemKind, Role, Side,
    Strategy,
};
use cpm_node::transport::{Fingerprint, ListenAddr, Transport};

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs").join(name)
}

fn load_shipped(name: &str) -> NodeConfig {
    NodeConfig::load(&shipped(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn addr(text: &str) -> ListenAddr {
    text.parse().expect("a valid address")
}

/// The problems of `text` as `(line, message)`.
fn problems(text: &str) -> Vec<(usize, String)> {
    match NodeConfig::parse(text) {
        Ok(_) => Vec::new(),
        Err(error) => error.problems.iter().map(|problem| (problem.line, problem.kind.to_string())).collect(),
    }
}

/// Asserts exactly one problem, on `line`, whose message contains `needle`.
#[track_caller]
fn assert_one_problem(text: &str, line: usize, needle: &str) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "expected one problem, got {found:#?}");
    assert_eq!(found[0].0, line, "wrong line: {found:#?}");
    assert!(found[0].1.contains(needle), "{:?} does not contain {needle:?}", found[0].1);
}

/// A minimal valid receiver, the base of the mistakes below (line numbers
/// are counted from its first line).
const RECEIVER: &str = r#"role = "receiver"
sip_listen = ["udp://127.0.0.1:5064"]
msrp_listen = ["tcp://127.0.0.1:7064"]

[identity]
name = "b"
host = "127.0.0.1"
uri = "sip:bob@b.example"
"#;

#[test]
fn the_base_receiver_is_valid_and_gets_the_defaults() {
    let config = NodeConfig::parse(RECEIVER).expect("valid");
    assert_eq!(config.role, Role::Receiver);
    assert_eq!(config.log, "info");
    assert_eq!(config.policy.strategy, Strategy::InviteInitiator);
    assert_eq!(config.limits.max_sessions, 1024);
    assert_eq!(config.limits.max_message_size, ByteSize::new(64 << 20));
    assert_eq!(config.limits.window, ByteSize::new(1 << 20));
    assert_eq!(config.limits.handshake_timeout, Duration::from_secs(10));
    assert_eq!(config.limits.transaction_timeout, Duration::from_secs(30));
    assert!(config.tls.is_none());
}

#[test]
fn sender_config() {
    let config = load_shipped("a.toml");
    assert_eq!(config.role, Role::Sender);
    assert_eq!(config.identity.uri, "sip:alice@a.example");
    assert_eq!(config.sip_listen, [addr("udp://127.0.0.1:5160"), addr("tcp://127.0.0.1:5160")]);
    assert_eq!(config.msrp_listen, [addr("tcp://127.0.0.1:7160")]);
    let route = config.route("cf.example").expect("the * route");
    assert_eq!(route.address, addr("udp://127.0.0.1:5161"));
}

#[test]
fn participating_configs() {
    let pf_a = load_shipped("pf-a.toml");
    assert_eq!(pf_a.role, Role::Participating);
    assert_eq!(pf_a.participating.as_ref().map(|pf| pf.side), Some(Side::Originating));
    assert_eq!(pf_a.policy.ack, AckPolicy::AfterAck);
    assert_eq!(pf_a.route("cf.example").map(|route| route.address), Some(addr("udp://127.0.0.1:5162")));
    assert!(pf_a.route("elsewhere.example").is_none());

    let pf_b = load_shipped("pf-b.toml");
    let participating = pf_b.participating.expect("a [participating] table");
    assert_eq!(participating.side, Side::Terminating);
    assert_eq!(participating.users, ["sip:bob@b.example"]);
}

#[test]
fn controlling_config() {
    let config = load_shipped("cf.toml");
    assert_eq!(config.role, Role::Controlling);
    assert_eq!(config.groups.len(), 1);
    assert_eq!(config.groups[0].uri, "sip:friends@cf.example");
    assert_eq!(config.groups[0].members, ["sip:bob@b.example", "sip:+15550100@sms.example"]);
    assert_eq!(config.adhoc.map(|adhoc| adhoc.max_members), Some(32));
    assert_eq!(config.policy.ack, AckPolicy::On200);
    assert_eq!(config.policy.answer, AnswerPolicy::Immediate);
    assert_eq!(config.limits.max_sessions, 256);
    assert_eq!(config.metrics_listen, Some(addr("tcp://127.0.0.1:9462")));
    assert_eq!(config.limits.slow_member, Some(Duration::from_secs(10)));
    let stalled = std::fs::read_to_string(shipped("cf.toml"))
        .expect("cf.toml")
        .replace("slow_member_secs = 10", "slow_member_secs = 0");
    let line = stalled.lines().position(|l| l.starts_with("slow_member_secs")).expect("the line") + 1;
    assert_one_problem(&stalled, line, "limits.slow_member_secs must be greater than 0");
    let sms = config.route("SMS.example").expect("routes compare hosts without case");
    assert!(sms.non_cpm);
    assert!(!config.route("b.example").expect("a route").non_cpm);
}

#[test]
fn receiver_config() {
    let config = load_shipped("b.toml");
    assert_eq!(config.role, Role::Receiver);
    assert_eq!(config.identity.name, "b");
}

#[test]
fn isf_config() {
    let config = load_shipped("isf.toml");
    assert_eq!(config.role, Role::Isf);
    assert!(config.msrp_listen.is_empty());
    assert_eq!(config.iwf_rules.len(), 2);
    let first = &config.iwf_rules[0];
    assert_eq!(first.receiver_suffix.as_deref(), Some("@sms.example"));
    assert_eq!(first.content_type.as_deref(), Some("text/plain"));
    assert_eq!(first.min_size, Some(ByteSize::new(0)));
    assert_eq!(first.max_size, Some(ByteSize::new(64 << 20)));
    assert_eq!(first.iwf, "sip:iwf@iwf.example");
}

#[test]
fn iwf_config() {
    let config = load_shipped("iwf.toml");
    assert_eq!(config.role, Role::Iwf);
    let iwf = config.iwf.expect("an [iwf] table");
    assert_eq!(iwf.system, NonCpmSystem::Sms);
    assert_eq!(iwf.target, "127.0.0.1:2775");
    assert_eq!(iwf.report, IwfReport::OnAck);
}

#[test]
fn an_sms_iwf_binds_with_its_system_id() {
    let iwf = std::fs::read_to_string(shipped("iwf.toml")).expect("iwf.toml");
    let config = NodeConfig::parse(&iwf).expect("valid");
    let target = config.iwf.expect("an [iwf] table");
    assert_eq!((target.system_id.as_str(), target.password.as_str()), ("cpm-iwf", ""));
    let bound = iwf
        .replace("bye_after_report = false", "bye_after_report = false\nsystem_id = \"iwf-1\"\npassword = \"secret\"");
    let target = NodeConfig::parse(&bound).expect("valid").iwf.expect("an [iwf] table");
    assert_eq!((target.system_id.as_str(), target.password.as_str()), ("iwf-1", "secret"));
    let line = bound.lines().position(|l| l.starts_with("password")).expect("the line") + 1;
    let long = bound.replace("\"secret\"", "\"much-too-long\"");
    assert_one_problem(&long, line, "iwf.password: \"much-too-long\" must be ASCII of at most 8 characters");
    let email = bound.replace("system = \"sms\"", "system = \"email\"");
    assert_eq!(problems(&email).len(), 2, "system_id and password are for SMS: {:?}", problems(&email));
}

#[test]
fn an_email_iwf_takes_its_domain() {
    let iwf = std::fs::read_to_string(shipped("iwf.toml")).expect("iwf.toml");
    let email = iwf.replace("system = \"sms\"", "system = \"email\"").replace("127.0.0.1:2775", "127.0.0.1:2525");
    assert_eq!(NodeConfig::parse(&email).expect("valid").iwf.expect("[iwf]").domain, None);
    let with = |domain: &str| {
        email.replace("bye_after_report = false", &format!("bye_after_report = false\ndomain = \"{domain}\""))
    };
    let target = NodeConfig::parse(&with("iwf.example.org")).expect("valid").iwf.expect("[iwf]");
    assert_eq!(target.domain.as_deref(), Some("iwf.example.org"));
    let bad = with("not a domain");
    let line = bad.lines().position(|l| l.starts_with("domain")).expect("the line") + 1;
    assert_one_problem(&bad, line, "iwf.domain: \"not a domain\" is not a domain name");
    let sms = iwf.replace("bye_after_report = false", "bye_after_report = false\ndomain = \"iwf.example.org\"");
    assert_eq!(problems(&sms).len(), 1, "a domain is for email: {:?}", problems(&sms));
}

#[test]
fn shipped_configs_form_one_network_on_distinct_ports() {
    let names = ["a.toml", "pf-a.toml", "cf.toml", "pf-b.toml", "b.toml", "isf.toml", "iwf.toml"];
    let configs: Vec<NodeConfig> = names.iter().map(|name| load_shipped(name)).collect();
    let mut ports = Vec::new();
    for config in &configs {
        for listen in config.sip_listen.iter().chain(&config.msrp_listen) {
            assert!(listen.addr.ip().is_loopback(), "{listen}");
            if listen.transport != Transport::Udp {
                ports.push(listen.addr.port());
            }
        }
    }
    let count = ports.len();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), count, "every stream listener has its own port");

    // Each hop's route points at the next node's SIP listener.
    let sip_of = |index: usize| configs[index].sip_listen[0];
    let hops =
        [(0, "cf.example", 1), (1, "cf.example", 2), (2, "b.example", 3), (3, "b.example", 4), (2, "sms.example", 5)];
    for (from, host, to) in hops {
        let route = configs[from].route(host).unwrap_or_else(|| panic!("{} routes {host}", names[from]));
        assert_eq!(route.address, sip_of(to), "{} -> {}", names[from], names[to]);
    }
    let isf_to_iwf = configs[5].route("iwf.example").expect("the ISF routes the IWF");
    assert_eq!(isf_to_iwf.address, sip_of(6));
}

#[test]
fn unknown_field() {
    let text = RECEIVER.replace("name = \"b\"", "name = \"b\"\ncolour = \"blue\"");
    assert_one_problem(&text, 7, "unknown field `colour`");
    let text = format!("{RECEIVER}\n[limits]\nmax_sesions = 5\n");
    assert_one_problem(&text, 11, "unknown field `max_sesions`");
}

#[test]
fn bad_addresses() {
    let text = RECEIVER.replace("tcp://127.0.0.1:7064", "tcp://127.0.0.1:99999");
    assert_one_problem(&text, 3, "msrp_listen: invalid address \"tcp://127.0.0.1:99999\": expected IP:PORT");
    let text = RECEIVER.replace("udp://127.0.0.1:5064", "127.0.0.1:5064");
    assert_one_problem(&text, 2, "missing scheme");
    let text = RECEIVER.replace("udp://127.0.0.1:5064", "sctp://127.0.0.1:5064");
    assert_one_problem(&text, 2, "unknown scheme");
    let text = RECEIVER.replace("tcp://127.0.0.1:7064", "udp://127.0.0.1:7064");
    assert_one_problem(&text, 3, "msrp_listen: udp://127.0.0.1:7064 uses udp, but msrp_listen takes tcp:// or tls://");
    let text = RECEIVER.replace("[\"udp://127.0.0.1:5064\"]", "[\"udp://127.0.0.1:5064\", \"udp://127.0.0.1:5064\"]");
    assert_one_problem(&text, 2, "listed twice");
    // On a line of its own inside a multi-line array, the line is the element's.
    let text = RECEIVER
        .replace("[\"udp://127.0.0.1:5064\"]", "[\n  \"udp://127.0.0.1:5064\",\n  \"tcp://localhost:5064\",\n]");
    assert_one_problem(&text, 4, "sip_listen: invalid address \"tcp://localhost:5064\"");
}

#[test]
fn metrics_listen() {
    let with = |addr: &str| RECEIVER.replace("\n\n[identity]", &format!("\nmetrics_listen = \"{addr}\"\n\n[identity]"));
    let config = NodeConfig::parse(&with("tcp://127.0.0.1:9464")).expect("valid");
    assert_eq!(config.metrics_listen, Some(addr("tcp://127.0.0.1:9464")));
    assert!(NodeConfig::parse(RECEIVER).expect("valid").metrics_listen.is_none());
    assert_one_problem(
        &with("udp://127.0.0.1:9464"),
        4,
        "metrics_listen: udp://127.0.0.1:9464 uses udp, but metrics_listen takes tcp:// (HTTP)",
    );
    assert_one_problem(&with("tcp://127.0.0.1"), 4, "metrics_listen: invalid address");
}

#[test]
fn tls_listener_without_tls_table() {
    let text = RECEIVER.replace("tcp://127.0.0.1:7064", "tls://127.0.0.1:7064");
    assert_one_problem(&text, 3, "msrp_listen: tls://127.0.0.1:7064 is a TLS listener, but [tls] has no cert and key");
    // A [tls] with only a CA is not enough for a listener either.
    let text = format!("{text}\n[tls]\nca = \"ca.pem\"\n");
    assert_one_problem(&text, 3, "is a TLS listener");
    // With cert and key it is fine (parse reads no file).
    let text = text.replace("ca = \"ca.pem\"", "cert = \"cert.pem\"\nkey = \"key.pem\"");
    assert_eq!(problems(&text), []);
}

#[test]
fn tls_table_mistakes() {
    let text = format!("{RECEIVER}\n[tls]\ncert = \"cert.pem\"\n");
    assert_one_problem(&text, 10, "[tls] has cert but no key");
    let text = format!("{RECEIVER}\n[tls]\nfingerprints = [\"SHA-256 AB:CD\"]\n");
    assert_one_problem(
        &text,
        11,
        "tls.fingerprints: invalid fingerprint \"SHA-256 AB:CD\": a SHA-256 fingerprint has 32 hex pairs",
    );
    let good = Fingerprint::from_bytes([0xAB; 32]);
    let text = format!("{RECEIVER}\n[tls]\nfingerprints = [\"{good}\"]\n");
    let config = NodeConfig::parse(&text).expect("valid");
    assert_eq!(config.tls.expect("[tls]").fingerprints, [good]);
}

#[test]
fn tls_route_needs_something_to_verify_by() {
    let text = format!("{RECEIVER}\n[[sip_route]]\nhost = \"*\"\naddress = \"tls://127.0.0.1:5061\"\n");
    assert_one_problem(
        &text,
        12,
        "sip_route: tls://127.0.0.1:5061 is a TLS route, but [tls] has neither ca nor fingerprints",
    );
}

#[test]
fn wrong_role_fields() {
    let group = "\n[[group]]\nuri = \"sip:friends@cf.example\"\nmembers = [\"sip:bob@b.example\"]\n";
    assert_one_problem(
        &format!("{RECEIVER}{group}"),
        10,
        "[[group]] is not allowed for role receiver (only for controlling)",
    );
    let iwf = "\n[iwf]\nsystem = \"sms\"\ntarget = \"127.0.0.1:2775\"\n";
    assert_one_problem(&format!("{RECEIVER}{iwf}"), 10, "[iwf] is not allowed for role receiver (only for iwf)");
    let rule = "\n[[iwf_rule]]\niwf = \"sip:iwf@iwf.example\"\n";
    assert_one_problem(
        &format!("{RECEIVER}{rule}"),
        10,
        "[[iwf_rule]] is not allowed for role receiver (only for isf)",
    );
    let answer = "\n[policy]\nanswer = \"immediate\"\n";
    assert_one_problem(&format!("{RECEIVER}{answer}"), 11, "policy.answer is not allowed for role receiver");
    let ack = "\n[policy]\nack = \"on-200\"\n";
    assert_one_problem(&format!("{RECEIVER}{ack}"), 11, "policy.ack is not allowed for role receiver");
    let adhoc = "\n[adhoc]\nmax_members = 3\n";
    assert_one_problem(&format!("{RECEIVER}{adhoc}"), 10, "[adhoc] is not allowed for role receiver");
    let participating = "\n[participating]\nside = \"originating\"\n";
    assert_one_problem(&format!("{RECEIVER}{participating}"), 10, "[participating] is not allowed for role receiver");
    let non_cpm = "\n[[sip_route]]\nhost = \"*\"\naddress = \"udp://127.0.0.1:5061\"\nnon_cpm = true\n";
    assert_one_problem(&format!("{RECEIVER}{non_cpm}"), 13, "sip_route.non_cpm is not allowed for role receiver");
    // An ISF relays SIP only.
    let isf = std::fs::read_to_string(shipped("isf.toml")).expect("isf.toml");
    let isf = isf.replace("sip_listen = [", "msrp_listen = [\"tcp://127.0.0.1:7165\"]\nsip_listen = [");
    let line = isf.lines().position(|line| line.starts_with("msrp_listen")).expect("the line") + 1;
    assert_one_problem(&isf, line, "msrp_listen is not allowed for role isf");
    // A PF(A) serves no users of its own.
    let pf_a = std::fs::read_to_string(shipped("pf-a.toml")).expect("pf-a.toml");
    let pf_a = pf_a.replace("side = \"originating\"", "side = \"originating\"\nusers = [\"sip:x@a.example\"]");
    let line = pf_a.lines().position(|line| line.starts_with("users")).expect("the line") + 1;
    assert_one_problem(
        &pf_a,
        line,
        "participating.users is not allowed for role participating (only for side = \"terminating\")",
    );
}

#[test]
fn what_each_role_needs() {
    let cf = RECEIVER.replace("\"receiver\"", "\"controlling\"");
    assert_one_problem(&cf, 1, "role controlling needs at least one [[group]] or an [adhoc] table");
    assert_eq!(problems(&format!("{cf}\n[adhoc]\n")), []);
    let isf = RECEIVER.replace("\"receiver\"", "\"isf\"").replace("msrp_listen = [\"tcp://127.0.0.1:7064\"]\n", "");
    assert_one_problem(&isf, 1, "role isf needs at least one [[iwf_rule]]");
    let iwf = RECEIVER.replace("\"receiver\"", "\"iwf\"");
    assert_one_problem(&iwf, 1, "role iwf needs an [iwf] table");
    let sender = RECEIVER.replace("\"receiver\"", "\"sender\"");
    assert_one_problem(&sender, 1, "role sender needs at least one [[sip_route]]");
    let no_msrp = RECEIVER.replace("msrp_listen = [\"tcp://127.0.0.1:7064\"]\n", "");
    assert_one_problem(&no_msrp, 1, "role receiver needs msrp_listen");
}

#[test]
fn routes_and_uris() {
    let cf = std::fs::read_to_string(shipped("cf.toml")).expect("cf.toml");
    let unrouted = cf.replace("\"sip:bob@b.example\", ", "\"sip:bob@b.example\", \"sip:carol@c.example\", ");
    let line = unrouted.lines().position(|line| line.contains("carol")).expect("the line") + 1;
    assert_one_problem(
        &unrouted,
        line,
        "group.members: no [[sip_route]] for host \"c.example\" of sip:carol@c.example",
    );
    let tel = cf.replace("\"sip:bob@b.example\", ", "\"tel:+15550199\", ");
    assert_one_problem(
        &tel,
        line,
        "group.members: \"tel:+15550199\" is not a SIP URI: it must start with sip: or sips:",
    );
    let twice = format!("{cf}\n[[group]]\nuri = \"sip:friends@cf.example\"\nmembers = [\"sip:bob@b.example\"]\n");
    let line = twice.lines().count() - 1;
    assert_one_problem(&twice, line, "group: sip:friends@cf.example is defined twice");
    let duplicate_route = format!("{cf}\n[[sip_route]]\nhost = \"B.EXAMPLE\"\naddress = \"udp://127.0.0.1:5999\"\n");
    let line = duplicate_route.lines().count() - 1;
    assert_one_problem(&duplicate_route, line, "sip_route: host \"B.EXAMPLE\" has a route already");
    let isf = std::fs::read_to_string(shipped("isf.toml")).expect("isf.toml");
    let isf =
        isf.replace("iwf = \"sip:iwf@iwf.example\"\n\n# Anything", "iwf = \"sip:iwf@other.example\"\n\n# Anything");
    let line = isf.lines().position(|line| line.contains("other.example")).expect("the line") + 1;
    assert_one_problem(&isf, line, "iwf_rule.iwf: no [[sip_route]] for host \"other.example\"");
    let bad_identity = RECEIVER.replace("uri = \"sip:bob@b.example\"", "uri = \"bob\"");
    assert_one_problem(&bad_identity, 8, "identity.uri: \"bob\" is not a SIP URI");
}

#[test]
fn values_and_limits() {
    let zero = format!("{RECEIVER}\n[limits]\nmax_sessions = 0\nwindow = \"0KiB\"\nchunk_size = 0\n");
    let found = problems(&zero);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_eq!((found[0].0, found[0].1.as_str()), (11, "limits.max_sessions must be greater than 0"));
    assert_eq!((found[1].0, found[1].1.as_str()), (12, "limits.window must be greater than 0"));
    assert_eq!((found[2].0, found[2].1.as_str()), (13, "limits.chunk_size must be greater than 0"));
    assert_eq!(NodeConfig::parse(RECEIVER).expect("valid").limits.chunk_size, None);
    let sizes = format!(
        "{RECEIVER}\n[limits]\nmax_message_size = \"17MiB\"\nwindow = 65536\nidle_timeout_secs = 60\nchunk_size = \"2KiB\"\n"
    );
    let config = NodeConfig::parse(&sizes).expect("valid");
    assert_eq!(config.limits.chunk_size, Some(ByteSize::new(2048)));
    assert_eq!(config.limits.max_message_size, ByteSize::new(17 << 20));
    assert_eq!(config.limits.window, ByteSize::new(65_536));
    assert_eq!(config.limits.idle_timeout, Duration::from_secs(60));
    let bad_size = format!("{RECEIVER}\n[limits]\nwindow = \"lots\"\n");
    assert_one_problem(&bad_size, 11, "invalid size \"lots\"");
    let range = "\n[[iwf_rule]]\nmin_size = \"2MiB\"\nmax_size = \"1MiB\"\niwf = \"sip:iwf@127.0.0.1\"\n\n[[sip_route]]\nhost = \"*\"\naddress = \"udp://127.0.0.1:5166\"\n";
    let isf = RECEIVER.replace("\"receiver\"", "\"isf\"").replace("msrp_listen = [\"tcp://127.0.0.1:7064\"]\n", "");
    assert_one_problem(&format!("{isf}{range}"), 9, "iwf_rule: min_size 2MiB is larger than max_size 1MiB");
    let iwf = std::fs::read_to_string(shipped("iwf.toml")).expect("iwf.toml");
    let mms = iwf.replace("system = \"sms\"", "system = \"mms\"");
    let line = mms.lines().position(|line| line.starts_with("target")).expect("the line") + 1;
    assert_one_problem(&mms, line, "iwf.target: \"127.0.0.1:2775\" is not a valid mms target");
    let mms = mms.replace("127.0.0.1:2775", "http://127.0.0.1:8080/mmsc").replace("\"on-ack\"", "\"at-media-end\"");
    let config = NodeConfig::parse(&mms).expect("valid");
    assert_eq!(config.iwf.map(|iwf| (iwf.system, iwf.report)), Some((NonCpmSystem::Mms, IwfReport::AtMediaEnd)));
    let log = RECEIVER.replace("role = \"receiver\"", "role = \"receiver\"\nlog = \"cpm_node=loud\"");
    assert_one_problem(&log, 2, "log: invalid filter \"cpm_node=loud\"");
}

#[test]
fn toml_syntax_and_type_errors() {
    let unterminated = RECEIVER.replace("name = \"b\"", "name = \"b");
    assert_one_problem(&unterminated, 6, "invalid basic string");
    let missing_equals = RECEIVER.replace("host = \"127.0.0.1\"", "host \"127.0.0.1\"");
    let found = problems(&missing_equals);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, 7);
    let wrong_type =
        RECEIVER.replace("sip_listen = [\"udp://127.0.0.1:5064\"]", "sip_listen = \"udp://127.0.0.1:5064\"");
    assert_one_problem(&wrong_type, 2, "invalid type: string");
    let unknown_role = RECEIVER.replace("\"receiver\"", "\"switch\"");
    assert_one_problem(&unknown_role, 1, "unknown variant `switch`");
    // A relay needs its [relay] table (and no SIP); [relay] belongs to relays only.
    let relay = RECEIVER.replace("\"receiver\"", "\"relay\"");
    assert_one_problem(&relay, 1, "role relay needs a [relay] table");
    let digest_without_users = format!("{relay}\n[relay]\nchallenge = \"digest\"\n");
    let found = problems(&digest_without_users);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].1.contains("relay.user"), "{found:#?}");
    assert!(problems(&format!("{relay}\n[relay]\nchallenge = \"none\"\n")).is_empty());
    let misplaced = format!("{RECEIVER}\n[relay]\nchallenge = \"none\"\n");
    let found = problems(&misplaced);
    assert!(found.iter().any(|p| p.1.contains("[relay] is not allowed for role receiver")), "{found:#?}");
    let no_identity = RECEIVER.split("[identity]").next().expect("the head").to_owned();
    assert_one_problem(&no_identity, 1, "missing field `identity`");
}

#[test]
fn several_problems_come_back_together_in_line_order() {
    let text = format!(
        "{}\n[[group]]\nuri = \"sip:g@cf.example\"\nmembers = [\"sip:x@b.example\"]\n",
        RECEIVER
            .replace("tcp://127.0.0.1:7064", "tls://127.0.0.1:7064")
            .replace("\"udp://127.0.0.1:5064\"", "\"udp://nowhere\"")
    );
    let lines: Vec<usize> = problems(&text).iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [2, 3, 10]);
}

#[test]
fn load_resolves_and_checks_tls_files() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = support::TestCa::new();
    let leaf = ca.issue(&["localhost"]);
    std::fs::write(dir.path().join("cert.pem"), &leaf.cert_pem).expect("written");
    std::fs::write(dir.path().join("key.pem"), &leaf.key_pem).expect("written");
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("written");
    let base = RECEIVER.replace("tcp://127.0.0.1:7064", "tls://127.0.0.1:7064");
    let good = format!("{base}\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\nca = \"ca.pem\"\n");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, &good).expect("written");
    let config = NodeConfig::load(&path).expect("valid");
    let tls = config.tls.expect("[tls]");
    assert_eq!(tls.cert.as_deref(), Some(dir.path().join("cert.pem").as_path()));
    assert_eq!(tls.ca.as_deref(), Some(dir.path().join("ca.pem").as_path()));

    // A missing CA file and a key that is not a key, each at its line.
    std::fs::write(dir.path().join("empty.pem"), "").expect("written");
    let bad =
        good.replace("key = \"key.pem\"", "key = \"empty.pem\"").replace("ca = \"ca.pem\"", "ca = \"missing.pem\"");
    std::fs::write(&path, &bad).expect("written");
    let Err(LoadError::Invalid(error)) = NodeConfig::load(&path) else { panic!("expected problems") };
    let found: Vec<(usize, String)> = error.problems.iter().map(|p| (p.line, p.kind.to_string())).collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0].0, 11);
    assert!(found[0].1.starts_with("tls.key: no private key in"), "{found:#?}");
    assert!(matches!(error.problems[0].kind, ProblemKind::TlsFile { field: "key", .. }));
    assert_eq!(found[1].0, 13);
    assert!(found[1].1.starts_with("tls.ca: cannot read PEM file"), "{found:#?}");

    let Err(LoadError::Read { .. }) = NodeConfig::load(&dir.path().join("absent.toml")) else {
        panic!("expected a read error")
    };
}
