//! The README's curl walk-through, run literally against a fresh `discoveryd`.
//!
//! Why: a new operator follows the README word for word, and a walk-through that drifted
//! from the server (a wrong ETag, a 503 nobody mentioned) costs them their first minutes.
//! So every `console` block between the `readme-test: walk-through` HTML comments is
//! executed: each `$ ` command runs in `sh` (with curl and jq, which the suite requires and
//! never skips without) against a node started as the README starts it (no `--config`,
//! default warm-up), after readiness, and its output must equal the lines the README shows
//! under it. Only what must vary is masked:
//!
//! * the `date` and `content-length` headers are left out of `curl -i` output (the README
//!   does not show them; the body shown pins the length anyway);
//! * the port: the README's `127.0.0.1:8411` is the test node's address;
//! * UUIDs the server generates: a UUID the README shows that no earlier command sent
//!   stands for whatever UUID the server answers there, and later commands use that one;
//! * 13-digit numbers (millisecond timestamps and versions).
//!
//! Everything else, ETags and header order included, must match; a changed response fails
//! until the README is updated.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use discovery_testkit::{eventually, DiscoveryProcess, ProcessOptions};

use crate::support::discoveryd;

const BEGIN: &str = "<!-- readme-test: walk-through begins -->";
const END: &str = "<!-- readme-test: walk-through ends -->";
/// The address the README's commands use.
const README_ADDR: &str = "127.0.0.1:8411";

/// One `$ ` command and the output the README shows for it.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The walk-through's steps, in order.
fn walk_through(readme: &str) -> Vec<Step> {
    let begin = readme
        .find(BEGIN)
        .unwrap_or_else(|| panic!("README.md has no {BEGIN}"));
    let end = readme
        .find(END)
        .unwrap_or_else(|| panic!("README.md has no {END}"));
    assert!(begin < end, "README.md: {END} before {BEGIN}");
    let mut steps = Vec::new();
    let mut lines = readme[begin..end].lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```console" {
            continue;
        }
        let mut current: Option<Step> = None;
        for line in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            if let Some(first) = line.strip_prefix("$ ") {
                steps.extend(current.take());
                current = Some(Step {
                    command: first.to_owned(),
                    expected: Vec::new(),
                });
            } else if let Some(step) = current.as_mut() {
                // A command goes on while a quote is open or the line ends in a backslash.
                if step.expected.is_empty() && continues(&step.command) {
                    step.command.push('\n');
                    step.command.push_str(line);
                } else {
                    step.expected.push(line.to_owned());
                }
            } else {
                panic!("README.md: a console block must start with a '$ ' command: {line}");
            }
        }
        steps.extend(current.take());
    }
    for step in &mut steps {
        trim_trailing_blank_lines(&mut step.expected);
    }
    steps
}

fn continues(command: &str) -> bool {
    command.ends_with('\\') || command.matches('\'').count() % 2 == 1
}

fn trim_trailing_blank_lines(lines: &mut Vec<String>) {
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
}

/// What a command printed, as the README would show it.
fn normalise(output: &str, addr: &str) -> Vec<String> {
    let text = output.replace("\r\n", "\n").replace(addr, README_ADDR);
    let mut lines: Vec<String> = Vec::new();
    let mut in_head = text.starts_with("HTTP/");
    for line in text.lines() {
        if in_head && line.is_empty() {
            in_head = false;
        }
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if in_head && (name == "date" || name == "content-length") {
            continue;
        }
        lines.push(line.to_owned());
    }
    trim_trailing_blank_lines(&mut lines);
    lines
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The UUIDs in `text`, with their byte offsets.
fn uuids(text: &str) -> Vec<(usize, &str)> {
    let mut found = Vec::new();
    let mut at = 0;
    while at + 36 <= text.len() {
        match text.get(at..at + 36) {
            Some(candidate) if is_uuid(candidate) => {
                found.push((at, candidate));
                at += 36;
            }
            _ => at += 1,
        }
    }
    found
}

/// Replaces every run of exactly 13 digits (a millisecond timestamp) with `<ms>`.
fn mask_millis(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 13 {
                out.push_str("<ms>");
            } else {
                out.push_str(&text[start..i]);
            }
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_digit() {
                i += 1;
            }
            out.push_str(&text[start..i]);
        }
    }
    out
}

/// Compares one shown line with one printed line. A UUID the README shows matches the
/// UUID it is bound to; an unbound one binds to what the server printed there.
fn line_matches(
    expected: &str,
    actual: &str,
    bound: &mut HashMap<String, String>,
) -> Result<(), String> {
    let mut substituted = expected.to_owned();
    let shown = uuids(expected);
    let printed = uuids(actual);
    if shown.len() != printed.len() {
        return Err(format!(
            "{} UUIDs shown, {} printed",
            shown.len(),
            printed.len()
        ));
    }
    let mut new_bindings = Vec::new();
    for ((_, shown), (_, printed)) in shown.iter().zip(&printed) {
        match bound.get(*shown) {
            Some(value) if value != printed => {
                return Err(format!(
                    "{shown} stands for {value}, but {printed} was printed"
                ))
            }
            Some(_) => {}
            None => new_bindings.push((shown.to_string(), printed.to_string())),
        }
        let value = bound
            .get(*shown)
            .cloned()
            .unwrap_or_else(|| printed.to_string());
        substituted = substituted.replace(shown, &value);
    }
    if mask_millis(&substituted) != mask_millis(actual) {
        return Err("the lines differ".into());
    }
    bound.extend(new_bindings);
    Ok(())
}

/// Fails, never skips, when a tool the README uses is missing.
fn require_tool(name: &str) {
    let found = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the README walk-through test runs the README's commands literally and needs \
         `{name}` on PATH (apt-get install -y {name})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_answers_what_the_readme_shows() {
    require_tool("curl");
    require_tool("jq");
    let readme_path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(readme_path).expect("README.md is readable");
    let steps = walk_through(&readme);
    assert!(
        steps.len() >= 10,
        "found only {} commands in the walk-through: {steps:?}",
        steps.len()
    );

    // As the README starts it: no --config, so environment test and the default
    // warm-up. (The test kit adds only the data directory, a free port and loopback.)
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = ProcessOptions::new(discoveryd!(), dir.path().join("data"));
    options.settings.clear();
    let node = DiscoveryProcess::start(options).expect("discoveryd starts");
    let addr = node.addr().to_string();
    // The startup log must say when lookups will be ready.
    node.log_line("lookups answer 503 until the warm-up ends in 10s (readiness.warm-up=10s)")
        .await;

    let http = reqwest::Client::new();
    let ready_url = node.url("/v1/health/ready");
    eventually(
        Duration::from_secs(30),
        "readiness after the warm-up",
        || {
            let request = http.get(&ready_url).send();
            async move {
                match request.await {
                    Ok(reply) if reply.status().is_success() => Ok(()),
                    Ok(reply) => Err(format!("{}", reply.status())),
                    Err(e) => Err(e.to_string()),
                }
            }
        },
    )
    .await;

    let mut bound: HashMap<String, String> = HashMap::new();
    let mut failures = Vec::new();
    for step in &steps {
        // UUIDs a command sends are literal, unless they stand for a generated one.
        let mut command = step.command.replace(README_ADDR, &addr);
        for (_, id) in uuids(&step.command) {
            match bound.get(id) {
                Some(value) => command = command.replace(id, value),
                None => {
                    bound.insert(id.to_owned(), id.to_owned());
                }
            }
        }
        let output = tokio::task::spawn_blocking(move || {
            Command::new("sh").arg("-c").arg(&command).output()
        })
        .await
        .expect("command task")
        .expect("sh runs");
        let printed = normalise(&String::from_utf8_lossy(&output.stdout), &addr);
        let mismatch = if !output.status.success() {
            Some(format!(
                "exit status {:?}, stderr: {}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            ))
        } else if printed.len() != step.expected.len() {
            Some(format!(
                "{} lines shown, {} printed",
                step.expected.len(),
                printed.len()
            ))
        } else {
            step.expected
                .iter()
                .zip(&printed)
                .find_map(|(shown, actual)| {
                    line_matches(shown, actual, &mut bound)
                        .err()
                        .map(|why| format!("{why}:\n  shown:   {shown}\n  printed: {actual}"))
                })
        };
        if let Some(why) = mismatch {
            failures.push(format!(
                "$ {}\n{why}\nREADME shows:\n{}\nthe server printed:\n{}",
                step.command,
                step.expected.join("\n"),
                printed.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "README.md's walk-through differs from the server (update one or the other):\n\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn steps_parse_multi_line_commands_and_masks_stay_narrow() {
    let readme = format!(
        "{BEGIN}\n```console\n$ curl -X PUT http://x \\\n    -d '{{\"a\":1,\n     \"b\":2}}'\nHTTP/1.1 202 Accepted\n\n$ curl y\nok\n\n```\n{END}\n"
    );
    let steps = walk_through(&readme);
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps[0].command.ends_with("\"b\":2}'"), "{steps:?}");
    assert_eq!(steps[0].expected, ["HTTP/1.1 202 Accepted"]);
    assert_eq!(steps[1].expected, ["ok"]);

    let mut bound = HashMap::new();
    let shown = r#"{"id":"77a3fb00-b678-49cb-8b40-057fed63fcbd","t":1795320173294}"#;
    let printed = r#"{"id":"22a66b88-574f-4d98-bc53-bea8d997f681","t":1796198404955}"#;
    assert_eq!(line_matches(shown, printed, &mut bound), Ok(()));
    assert_eq!(
        bound["77a3fb00-b678-49cb-8b40-057fed63fcbd"],
        "22a66b88-574f-4d98-bc53-bea8d997f681"
    );
    // Once bound, the id must stay what it stood for; other digits are not masked.
    let other = r#"{"id":"00000000-b678-49cb-8b40-057fed63fcbd","t":1796198404955}"#;
    assert!(line_matches(shown, other, &mut bound).is_err());
    assert!(line_matches(
        "etag: \"0b7d6b3baf34583a\"",
        "etag: \"0968780ef47ab59e\"",
        &mut bound
    )
    .is_err());
    assert!(line_matches("max-age=10", "max-age=11", &mut bound).is_err());

    let head = "HTTP/1.1 200 OK\r\ndate: Wed, 02 Dec 2026 07:59:52 GMT\r\ncontent-length: 6\r\nlocation: http://127.0.0.1:4000/x\r\n\r\ncontent-length: 6\r\n";
    assert_eq!(
        normalise(head, "127.0.0.1:4000"),
        [
            "HTTP/1.1 200 OK",
            "location: http://127.0.0.1:8411/x",
            "",
            "content-length: 6"
        ]
    );
}
