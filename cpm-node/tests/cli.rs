//! The built `cpm-node` binary: `check` on good and bad files, the shipped
//! configs, size parsing, help, the demo, and the commands not implemented yet.

mod support;

use support::node::free_port;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SHIPPED: [&str; 9] =
    ["a.toml", "pf-a.toml", "cf.toml", "pf-b.toml", "b.toml", "isf.toml", "iwf.toml", "relay.toml", "relay-bench.toml"];

fn cpm_node(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cpm-node")).args(args).output().expect("the binary runs")
}

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

#[test]
fn every_shipped_config_passes_check() {
    let mut on_disk: Vec<String> = std::fs::read_dir(configs_dir())
        .expect("the configs directory")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = SHIPPED.iter().map(|name| (*name).to_owned()).collect();
    expected.sort();
    assert_eq!(on_disk, expected, "configs/ ships exactly one file per node");

    for name in SHIPPED {
        let path = configs_dir().join(name);
        let path = path.to_str().expect("a UTF-8 path");
        let output = cpm_node(&["check", path]);
        assert_eq!(text(&output.stdout), format!("{path}: ok\n"), "{}", text(&output.stderr));
        assert_eq!(output.status.code(), Some(0));
    }
}

#[test]
fn check_reports_each_problem_with_its_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let good = std::fs::read_to_string(configs_dir().join("b.toml")).expect("b.toml");
    let bad = good
        .replace("tcp://127.0.0.1:7164", "tls://127.0.0.1:7164")
        .replace("udp://127.0.0.1:5164\"", "udp://127.0.0.1\"")
        + "\n[[group]]\nuri = \"sip:g@cf.example\"\nmembers = [\"sip:x@b.example\"]\n";
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, &bad).expect("written");
    let line_of = |needle: &str| bad.lines().position(|line| line.contains(needle)).expect("the line") + 1;
    let shown = path.to_str().expect("a UTF-8 path");

    let output = cpm_node(&["check", shown]);
    assert_eq!(output.status.code(), Some(1));
    let expected = format!(
        "{shown}:{sip}: sip_listen: invalid address \"udp://127.0.0.1\": expected IP:PORT after the scheme (a numeric IP address, IPv6 in brackets, and a port)\n\
         {shown}:{msrp}: msrp_listen: tls://127.0.0.1:7164 is a TLS listener, but [tls] has no cert and key\n\
         {shown}:{group}: [[group]] is not allowed for role receiver (only for controlling)\n",
        sip = line_of("sip_listen"),
        msrp = line_of("msrp_listen"),
        group = line_of("[[group]]"),
    );
    assert_eq!(text(&output.stdout), expected);
}

#[test]
fn check_reports_toml_syntax_errors() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("syntax.toml");
    std::fs::write(&path, "role = \"receiver\"\n\n[identity\nname = \"b\"\n").expect("written");
    let shown = path.to_str().expect("a UTF-8 path");
    let output = cpm_node(&["check", shown]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with(&format!("{shown}:3: ")), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn check_of_a_missing_file_fails() {
    let output = cpm_node(&["check", "/nonexistent/node.toml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).starts_with("/nonexistent/node.toml: cannot read:"), "{}", text(&output.stdout));
}

#[test]
fn help_exits_zero_and_lists_the_commands() {
    let output = cpm_node(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = text(&output.stdout);
    for command in ["check", "run", "send", "demo"] {
        assert!(help.contains(command), "{help}");
    }
    let output = cpm_node(&["demo", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = text(&output.stdout);
    for option in ["--size", "--transport", "--processes", "--kill-member"] {
        assert!(help.contains(option), "{help}");
    }
}

#[test]
fn size_zero_is_rejected() {
    let output = cpm_node(&["demo", "--size", "0"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("invalid value '0' for '--size <SIZE>': the size must be at least 1 byte"), "{stderr}");
    let output = cpm_node(&["demo", "--size", "5 parsecs"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unknown unit"), "{}", text(&output.stderr));
}

#[test]
fn an_https_mmsc_and_non_cpm_members_without_smtp_say_they_are_not_implemented() {
    let a = configs_dir().join("a.toml");
    let a = a.to_str().expect("a UTF-8 path");
    // An MMS IWF toward an MMSC over https:// (TLS for the MMSC client is
    // not built yet).
    let dir = tempfile::tempdir().expect("a scratch directory");
    let shipped = std::fs::read_to_string(configs_dir().join("iwf.toml")).expect("iwf.toml");
    let mms = shipped
        .replace("system = \"sms\"", "system = \"mms\"")
        .replace("127.0.0.1:2775", "https://127.0.0.1:8443/mmsc");
    let iwf = dir.path().join("iwf-mms.toml");
    std::fs::write(&iwf, mms).expect("written");
    let output = cpm_node(&["run", iwf.to_str().expect("a UTF-8 path")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("an MMSC over https:// (TLS for the MMSC client) is not implemented yet"), "{stderr}");
    for (args, says) in [
        (&["demo", "--processes", "--non-cpm", "1"][..], "--processes runs CPM members only"),
        (&["demo", "--processes", "--strategy", "001-fig2"][..], "--processes runs the strategies of seed 001"),
        (&["demo", "--processes", "--kill-member", "B9"][..], "--kill-member B9: no such member"),
        (&["demo", "--kill-member", "B1"][..], "--processes"),
    ] {
        let output = cpm_node(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // A missing option is a usage error, not "not implemented".
    let output = cpm_node(&["send", "--config", a]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!text(&output.stderr).contains("not implemented"), "{}", text(&output.stderr));
}

/// The demo's non-CPM member by email to a real SMTP server (`--smtp`),
/// with every entity in this process and then every entity but A its own
/// process (the ISF and the IWF too): the server parses what it stored,
/// and its body is A's message byte for byte.
#[cfg(unix)]
#[test]
fn the_demo_delivers_a_non_cpm_member_s_message_to_a_real_smtp_server() {
    let test = "the_demo_delivers_a_non_cpm_member_s_message_to_a_real_smtp_server";
    let out = tempfile::tempdir().expect("a scratch directory");
    let Some(smtp) = support::smtp::SmtpSink::start(test, out.path()) else { return };
    let dir = out.path().to_str().expect("a UTF-8 path");
    let target = format!("127.0.0.1:{}", smtp.port);
    let email = ["--non-cpm", "1", "--non-cpm-system", "email", "--smtp", &target];
    for processes in [false, true] {
        let mut args = vec!["demo", "--members", "1", "--size", "300KiB", "--out", dir];
        args.extend(email);
        if processes {
            args.push("--processes");
        }
        let output = cpm_node(&args);
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stdout}{}", text(&output.stderr));
        assert_eq!(stdout.lines().last(), Some("result: 2/2 members received the message intact"), "{stdout}");
        let crc = stdout.split("(crc ").nth(1).and_then(|rest| rest.get(..8)).expect("the message's CRC");
        let stored = smtp.stored();
        let last = stored.last().unwrap_or_else(|| panic!("{args:?}: nothing stored: {stdout}"));
        assert!(last.contains(&format!(" len=307200 crc32={crc} ")) && last.contains(" defects=0 "), "{last}");
        // The email's Date is the wall clock, in-process and in the IWF's own process alike.
        assert!(!last.ends_with(" year=1970") && !last.ends_with(" year=-"), "{last}");
    }
    assert_eq!(smtp.stored().len(), 2);
    // Only email goes to an SMTP server.
    let output = cpm_node(&["demo", "--non-cpm-system", "sms", "--smtp", &target]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--smtp needs --non-cpm-system email"), "{}", text(&output.stderr));
}

/// The rows of the process table (`name pid peak-RSS exit`).
fn process_rows(stdout: &str) -> Vec<&str> {
    let table = stdout.lines().skip_while(|l| !l.starts_with("process  pid")).skip(1);
    table.take_while(|l| !l.is_empty() && !l.starts_with("relays:")).collect()
}

/// `demo --processes`: every entity but A its own `cpm-node run`, from
/// configs generated for it; every member gets the message intact, and
/// every process ends cleanly on SIGTERM.
#[cfg(unix)]
#[test]
fn the_demo_runs_as_processes() {
    let out = tempfile::tempdir().expect("a scratch directory");
    let dir = out.path().to_str().expect("a UTF-8 path");
    let output = cpm_node(&["demo", "--processes", "--members", "2", "--size", "300KiB", "--out", dir]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert_eq!(stdout.lines().last(), Some("result: 2/2 members received the message intact"), "{stdout}");
    for member in ["B1", "B2"] {
        let row = stdout.lines().find(|l| l.starts_with(member)).unwrap_or_default();
        assert!(row.contains(" 307200 ") && row.contains(" yes ") && row.ends_with("delivered"), "{row}");
    }
    let rows = process_rows(&stdout);
    let names: Vec<&str> = rows.iter().filter_map(|r| r.split_whitespace().next()).collect();
    assert_eq!(names, ["pf-a", "cf", "pf-b1", "b1", "pf-b2", "b2"], "{stdout}");
    assert!(rows.iter().all(|r| r.ends_with(" 0") && r.contains(" MiB")), "{stdout}");
    for node in ["pf-a", "cf", "pf-b1", "b1", "pf-b2", "b2"] {
        let config = out.path().join("configs").join(format!("{node}.toml"));
        let checked = cpm_node(&["check", config.to_str().expect("a UTF-8 path")]);
        assert_eq!(checked.status.code(), Some(0), "{node}: {}", text(&checked.stdout));
    }
}

/// A member's process killed in the middle of the message: the others get
/// it intact, and the sender hears that member failed (without waiting
/// for a dead peer's BYE to time out).
#[cfg(unix)]
#[test]
fn a_member_process_killed_mid_message_fails_alone() {
    let out = tempfile::tempdir().expect("a scratch directory");
    let dir = out.path().to_str().expect("a UTF-8 path");
    let args = ["demo", "--processes", "--members", "3", "--size", "4MiB", "--kill-member", "B2", "--out", dir];
    #[expect(
        clippy::disallowed_methods,
        reason = "a dead member's BYE must not hold the run for RFC 3261 Timer F (32 s)"
    )]
    let started = std::time::Instant::now();
    let output = cpm_node(&args);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", text(&output.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(25), "{stdout}");
    assert!(stdout.contains("killed: b2 (pid "), "{stdout}");
    assert!(stdout.contains("member sip:b2@b2.example: failed"), "{stdout}");
    for member in ["b1", "b3"] {
        assert!(stdout.contains(&format!("member sip:{member}@{member}.example: delivered")), "{stdout}");
    }
    let b2 = stdout.lines().find(|l| l.starts_with("B2 ")).unwrap_or_default();
    assert!(b2.contains(" NO ") && b2.ends_with("failed"), "{b2}");
    assert_eq!(stdout.lines().last(), Some("result: 2/3 members received the message intact"), "{stdout}");
}

/// The README's main command, small: every entity on the runtime over
/// loopback TCP, the message to every member intact, the trace files
/// written, and the result as the last line.
#[test]
fn the_demo_delivers_to_every_member() {
    let out = tempfile::tempdir().expect("a scratch directory");
    let dir = out.path().to_str().expect("a UTF-8 path");
    let output = cpm_node(&["demo", "--size", "300KiB", "--members", "2", "--non-cpm", "1", "--out", dir]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert_eq!(stdout.lines().last(), Some("result: 3/3 members received the message intact"), "{stdout}");
    for member in ["B1", "B2", "IWF1"] {
        let row = stdout.lines().find(|l| l.starts_with(member)).unwrap_or_default();
        assert!(row.contains(" 307200 ") && row.contains(" yes ") && row.ends_with(" 200"), "{row}");
    }
    let trace = std::fs::read_to_string(out.path().join("trace.jsonl")).expect("the trace");
    assert!(trace.lines().any(|l| l.contains(r#""kind":"deliver","at":"B2","bytes":307200"#)), "{trace}");
    assert!(out.path().join("sequence.svg").is_file());
    let throughput = std::fs::read_to_string(out.path().join("throughput.svg")).expect("the throughput chart");
    assert_eq!(throughput.matches("<polyline").count(), 3, "one line per member");
}

/// A message over the configured limit is refused at once, and the demo
/// says which limit and how to raise it (RFC 4975 s.8.6, `a=max-size`).
#[test]
fn the_demo_names_the_limit_that_refused_the_message() {
    let out = tempfile::tempdir().expect("a scratch directory");
    let dir = out.path().to_str().expect("a UTF-8 path");
    let output = cpm_node(&["demo", "--size", "300KiB", "--max-size", "100KiB", "--timeout", "30", "--out", dir]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(!stdout.contains("timed out"), "{stdout}");
    assert!(
        stdout.contains("the message (307200 bytes) is larger than the max-size of 102400 bytes")
            && stdout.contains("raise it with --max-size"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("result: 0/4 members received the message intact"), "{stdout}");
}

/// Large means large: past the 16 MiB a configuration accepts by default,
/// the demo carries the message to every member (run in release by
/// `.ci/run`).
#[test]
#[ignore = "large: run in release from .ci/run"]
fn the_demo_carries_a_20_mib_message() {
    let out = tempfile::tempdir().expect("a scratch directory");
    let dir = out.path().to_str().expect("a UTF-8 path");
    let output = cpm_node(&["demo", "--size", "20MiB", "--out", dir]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("result: 4/4 members received the message intact"), "{stdout}");
}

/// `demo --processes` with a 64 MiB message: every member gets it, and no
/// relay process (PF or CF) comes near the message's size: each reads an
/// upstream only as fast as its members take the bytes (run in release by
/// `.ci/run`).
#[cfg(target_os = "linux")]
#[test]
#[ignore = "large: run in release from .ci/run"]
fn the_processes_demo_carries_64_mib_through_relays_of_bounded_memory() {
    let out = tempfile::tempdir().expect("a scratch directory");
    let dir = out.path().to_str().expect("a UTF-8 path");
    let output = cpm_node(&["demo", "--processes", "--members", "3", "--size", "64MiB", "--out", dir]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert_eq!(stdout.lines().last(), Some("result: 3/3 members received the message intact"), "{stdout}");
    let relays = process_rows(&stdout).into_iter().filter(|row| row.starts_with("pf") || row.starts_with("cf "));
    for row in relays {
        let mib: f64 = row.split_whitespace().nth(2).and_then(|v| v.parse().ok()).expect("a peak RSS");
        assert!(mib < 24.0, "a relay's peak RSS is {mib} MiB for a 64 MiB message: {row}");
    }
}

/// `cpm-node run` serves a node until SIGTERM, then ends its sessions and
/// exits 0 (the receiver of the shipped configs, on ports chosen here).
#[cfg(unix)]
#[test]
fn run_serves_until_sigterm() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let [sip, msrp] = [free_port(), free_port()];
    let config = config_with_ports(dir.path(), "b.toml", &[(5164, sip), (7164, msrp)]);
    let (mut child, reachable) = run_node(&config, msrp);
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().expect("it ends");
    assert!(reachable, "the node never listened on {msrp}");
    assert!(killed.is_ok_and(|s| s.success()));
    assert_eq!(status.code(), Some(0), "SIGTERM ends it cleanly");
}

/// Waits for a process outside the test.
#[expect(clippy::disallowed_methods, reason = "the test waits for another process")]
fn pause(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// `cpm-node run CONFIG` as a child process, and whether it came to listen
/// on its MSRP port `msrp` within 5 s.
fn run_node(config: &Path, msrp: u16) -> (std::process::Child, bool) {
    let child = Command::new(env!("CARGO_BIN_EXE_cpm-node"))
        .args(["run", config.to_str().expect("a UTF-8 path")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cpm-node runs");
    let reachable = (0..50).any(|_| {
        pause(100);
        std::net::TcpStream::connect(("127.0.0.1", msrp)).is_ok()
    });
    (child, reachable)
}

/// The shipped config of `name`, its ports moved to `ports` (old, new).
fn config_with_ports(dir: &Path, name: &str, ports: &[(u16, u16)]) -> PathBuf {
    let mut text = std::fs::read_to_string(configs_dir().join(name)).expect("a shipped config");
    for (old, new) in ports {
        text = text.replace(&old.to_string(), &new.to_string());
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    path
}

/// `cpm-node send` from the shipped sender config to a `cpm-node run`
/// receiver: one line for the member (from its IMDN), then the result.
#[cfg(unix)]
#[test]
fn send_reaches_a_running_receiver() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let [b_sip, b_msrp, a_sip, a_msrp] = [free_port(), free_port(), free_port(), free_port()];
    let b = config_with_ports(dir.path(), "b.toml", &[(5164, b_sip), (7164, b_msrp)]);
    // A's route leads straight to B (no PF or CF in between).
    let a = config_with_ports(dir.path(), "a.toml", &[(5160, a_sip), (7160, a_msrp), (5161, b_sip)]);
    let file = dir.path().join("message.txt");
    std::fs::write(&file, "x".repeat(200_000)).expect("written");
    let (mut node, reachable) = run_node(&b, b_msrp);
    let output = cpm_node(&[
        "send",
        "--config",
        a.to_str().expect("a UTF-8 path"),
        "--to",
        "sip:bob@b.example",
        "--file",
        file.to_str().expect("a UTF-8 path"),
        "--timeout",
        "20",
    ]);
    let _ = Command::new("kill").args(["-TERM", &node.id().to_string()]).status();
    let _ = node.wait();
    assert!(reachable);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("member sip:bob@b.example: delivered"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("result: 1/1 members received the message intact"), "{stdout}");
}

/// `demo --transport tls`: every MSRP link over TLS (`msrps:` URIs,
/// RFC 4975 s.6), each certificate checked against the host of the URI
/// connected to (s.5.4) with a CA the demo makes at start.
#[test]
fn the_demo_runs_over_tls() {
    let out = tempfile::tempdir().expect("a scratch directory");
    let dir = out.path().to_str().expect("a UTF-8 path");
    let output = cpm_node(&["demo", "--transport", "tls", "--size", "300KiB", "--members", "2", "--out", dir]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("MSRP listener tls"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("result: 3/3 members received the message intact"), "{stdout}");
}
