//! The pure half of the differential test: what one server answered ([`Observed`]), how
//! an answer is normalised so that values which legitimately differ between two servers
//! (generated ids, clocks, ETags, the server's own address) stop mattering, how two
//! normalised answers are compared into [`Difference`]s, and how differences are matched
//! against the allow-list (`differential-allowed.json`), including the check that every
//! allowed entry still matches something.
//!
//! Nothing here does I/O, so all of it is unit-tested below.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// How an absent header or JSON field is written in differences and in the allow-list
/// (distinct from an explicit JSON `null`).
pub const ABSENT: &str = "(absent)";

/// The response headers airlift clients read; no other header is compared.
pub const CLIENT_HEADERS: [&str; 4] = ["content-type", "cache-control", "etag", "location"];

/// One server's answer to one step, as read off the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub status: u16,
    /// Only [`CLIENT_HEADERS`], names lowercased.
    pub headers: BTreeMap<String, String>,
    pub body: Body,
}

/// A response body, decoded by its content type.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Empty,
    /// JSON, or Smile decoded into the same JSON shape.
    Json(Value),
    Text(String),
}

impl Body {
    fn as_value(&self) -> Value {
        match self {
            Body::Empty => json!(ABSENT),
            Body::Json(value) => value.clone(),
            Body::Text(text) => json!(text),
        }
    }
}

/// How much of a response a step compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Status; on a success (2xx/3xx) also the client headers and the body.
    Full,
    /// Status only: an error whose body the protocol leaves open (Java answers with stack
    /// traces or Jetty pages, we with one line of text).
    Status,
    /// Status and the body text: an error whose message the protocol fixes (the
    /// environment mismatch).
    Text,
}

/// What one server's normalisation needs to know.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `http://ip:port` of the server, stripped from `Location`.
    pub base_url: String,
    /// Generated values (captured ids) and their placeholders, replaced in every string.
    pub replacements: Vec<(String, String)>,
    /// Clock values the script sent (`${t50-10000}` evaluated), by value: store entries
    /// carrying one are shown as the expression, so both servers read the same.
    pub sent_times: Vec<(i64, String)>,
    /// Any other clock value in this range (ms) is a server-stamped time and becomes
    /// `<clock>`; values outside it are kept, so a wrong clock still shows.
    pub clock_window: (i64, i64),
    /// For store dumps: only entries whose (decoded) key is listed are compared.
    pub keys: Option<Vec<String>>,
}

/// The normalised form of an [`Observed`]: what is compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Body,
}

/// Normalises one answer. Headers: `ETag` becomes `<etag>` (its value is each server's
/// own hash), `Location` loses the server's base URL. Bodies: captured ids are replaced
/// by their placeholders; store dumps get readable keys, decoded values and clock tokens;
/// arrays are put in a canonical order, because every list in this protocol (services in
/// a lookup, entries in a dump, services in a stored value) is a set.
pub fn normalise(observed: &Observed, context: &Context) -> Normalised {
    let mut headers = BTreeMap::new();
    for (name, value) in &observed.headers {
        let value = match name.as_str() {
            "etag" => "<etag>".to_owned(),
            "location" => {
                let path = value.strip_prefix(&context.base_url).unwrap_or(value);
                replace_all(path, context)
            }
            _ => value.clone(),
        };
        headers.insert(name.clone(), value);
    }
    let body = match &observed.body {
        Body::Json(value) => {
            let value = if is_store_dump(value) {
                normalise_dump(value, context)
            } else {
                value.clone()
            };
            Body::Json(canonical(&replace_in_value(&value, context)))
        }
        other => other.clone(),
    };
    Normalised {
        status: observed.status,
        headers,
        body,
    }
}

fn replace_all(text: &str, context: &Context) -> String {
    let mut text = text.to_owned();
    for (actual, placeholder) in &context.replacements {
        if !actual.is_empty() {
            text = text.replace(actual.as_str(), placeholder);
        }
    }
    text
}

fn replace_in_value(value: &Value, context: &Context) -> Value {
    match value {
        Value::String(text) => Value::String(replace_all(text, context)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| replace_in_value(item, context))
                .collect(),
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (replace_all(k, context), replace_in_value(v, context)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A `/v1/store` dump: a list of entries (objects with `key` and `version`).
fn is_store_dump(value: &Value) -> bool {
    match value {
        Value::Array(entries) => entries.iter().all(|entry| {
            entry.get("key").is_some_and(Value::is_string) && entry.get("version").is_some()
        }),
        _ => false,
    }
}

fn normalise_dump(value: &Value, context: &Context) -> Value {
    let Value::Array(entries) = value else {
        return value.clone();
    };
    let entries = entries
        .iter()
        .filter_map(|entry| {
            let key = entry.get("key").and_then(Value::as_str).map(decode_text)?;
            if let Some(keys) = &context.keys {
                if !keys.contains(&key) {
                    return None;
                }
            }
            let mut out = Map::new();
            out.insert("key".into(), json!(key));
            if let Some(value) = entry.get("value") {
                out.insert("value".into(), decode_stored_value(value));
            }
            let timestamp = entry.get("timestamp").and_then(Value::as_i64);
            let sequence = entry.pointer("/version/sequence").and_then(Value::as_i64);
            if let Some(timestamp) = timestamp {
                out.insert("timestamp".into(), time_token(timestamp, context));
            }
            let version = match (sequence, timestamp) {
                // airlift writes one clock reading as both; keep that relation visible.
                (Some(s), Some(t)) if s == t => json!({"sequence": "=timestamp"}),
                (Some(s), _) => json!({"sequence": time_token(s, context)}),
                _ => entry.get("version").cloned().unwrap_or(Value::Null),
            };
            out.insert("version".into(), version);
            for (name, field) in entry.as_object().into_iter().flatten() {
                if !["key", "value", "timestamp", "version"].contains(&name.as_str()) {
                    out.insert(name.clone(), field.clone());
                }
            }
            Some(Value::Object(out))
        })
        .collect();
    Value::Array(entries)
}

fn decode_text(base64: &str) -> String {
    match BASE64.decode(base64) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => format!("(not base64) {base64}"),
    }
}

/// A stored value is base64 of JSON (a node's service list, or one static service).
fn decode_stored_value(value: &Value) -> Value {
    let Some(text) = value.as_str() else {
        return value.clone();
    };
    match BASE64.decode(text) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes))),
        Err(_) => value.clone(),
    }
}

fn time_token(value: i64, context: &Context) -> Value {
    if let Some((_, expression)) = context.sent_times.iter().find(|(v, _)| *v == value) {
        return json!(format!("<{expression}>"));
    }
    let (from, to) = context.clock_window;
    if (from..=to).contains(&value) {
        json!("<clock>")
    } else {
        json!(value)
    }
}

/// The key an array element is matched by: a service's `id` or an entry's `key`.
fn element_key(value: &Value) -> Option<String> {
    ["id", "key"]
        .iter()
        .find_map(|field| value.get(field).and_then(Value::as_str))
        .map(|k| {
            format!(
                "{}={k}",
                if value.get("id").is_some() {
                    "id"
                } else {
                    "key"
                }
            )
        })
}

fn keyed(items: &[Value]) -> Option<BTreeMap<String, &Value>> {
    let mut map = BTreeMap::new();
    for item in items {
        if map.insert(element_key(item)?, item).is_some() {
            return None;
        }
    }
    Some(map)
}

/// Sorts every array (keyed elements by key, others by their JSON text).
fn canonical(value: &Value) -> Value {
    match value {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(canonical).collect();
            items.sort_by_cached_key(|item| element_key(item).unwrap_or_else(|| item.to_string()));
            Value::Array(items)
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One observed difference between the Java server and ours.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub case: u32,
    pub step: String,
    /// The step's request as scripted (`GET /v1/service/c25/p`), before templates are
    /// filled in; for steps that are not one request, what they send.
    pub request: String,
    /// `status`, `header <name>`, `body` or `body <path>` (path segments `/field`, `[id=…]`,
    /// `[i]`), or what a non-request step summarised.
    pub what: String,
    pub java: Value,
    pub ours: Value,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "case {} step {:?} ({}): {}\n    java: {}\n    ours: {}",
            self.case,
            self.step,
            self.request,
            self.what,
            clip(&self.java),
            clip(&self.ours)
        )
    }
}

fn clip(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 600 {
        let mut end = 600;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// Compares two normalised answers. A status difference is reported alone (headers and
/// bodies of different outcomes are not comparable); headers and bodies are compared only
/// on success, where clients read them; error bodies only under [`Check::Text`].
pub fn compare(
    case: u32,
    step: &str,
    request: &str,
    check: Check,
    java: &Normalised,
    ours: &Normalised,
) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut push = |what: String, java: Value, ours: Value| {
        out.push(Difference {
            case,
            step: step.to_owned(),
            request: request.to_owned(),
            what,
            java,
            ours,
        })
    };
    if java.status != ours.status {
        push("status".into(), json!(java.status), json!(ours.status));
        return out;
    }
    let success = java.status < 400;
    match check {
        Check::Full if success => {
            for name in CLIENT_HEADERS {
                let j = java.headers.get(name).map_or(json!(ABSENT), |v| json!(v));
                let o = ours.headers.get(name).map_or(json!(ABSENT), |v| json!(v));
                if j != o {
                    push(format!("header {name}"), j, o);
                }
            }
            let mut body = Vec::new();
            diff_values("", &java.body.as_value(), &ours.body.as_value(), &mut body);
            for (path, j, o) in body {
                push(
                    format!("body{}", if path.is_empty() { "" } else { " " }) + &path,
                    j,
                    o,
                );
            }
        }
        Check::Text if java.body != ours.body => {
            let text = |b: &Body| match b {
                Body::Text(t) => json!(t.trim_end()),
                other => other.as_value(),
            };
            let (j, o) = (text(&java.body), text(&ours.body));
            if j != o {
                push("body text".into(), j, o);
            }
        }
        _ => {}
    }
    out
}

/// Structural difference of two JSON values: objects field by field, arrays of keyed
/// elements (services by `id`, entries by `key`) element by element, other arrays by
/// position after [`canonical`] ordering (or whole, when their lengths differ).
pub fn diff_values(path: &str, java: &Value, ours: &Value, out: &mut Vec<(String, Value, Value)>) {
    match (java, ours) {
        (Value::Object(j), Value::Object(o)) => {
            let names: BTreeSet<&String> = j.keys().chain(o.keys()).collect();
            for name in names {
                let child = format!("{path}/{name}");
                match (j.get(name), o.get(name)) {
                    (Some(jv), Some(ov)) => diff_values(&child, jv, ov, out),
                    (jv, ov) => out.push((
                        child,
                        jv.cloned().unwrap_or(json!(ABSENT)),
                        ov.cloned().unwrap_or(json!(ABSENT)),
                    )),
                }
            }
        }
        (Value::Array(j), Value::Array(o)) => match (keyed(j), keyed(o)) {
            (Some(jk), Some(ok)) => {
                let names: BTreeSet<&String> = jk.keys().chain(ok.keys()).collect();
                for name in names {
                    let child = format!("{path}[{name}]");
                    match (jk.get(name), ok.get(name)) {
                        (Some(jv), Some(ov)) => diff_values(&child, jv, ov, out),
                        (jv, ov) => out.push((
                            child,
                            jv.map_or(json!(ABSENT), |v| (*v).clone()),
                            ov.map_or(json!(ABSENT), |v| (*v).clone()),
                        )),
                    }
                }
            }
            _ if j.len() == o.len() => {
                for (i, (jv, ov)) in j.iter().zip(o).enumerate() {
                    diff_values(&format!("{path}[{i}]"), jv, ov, out);
                }
            }
            _ => out.push((path.to_owned(), java.clone(), ours.clone())),
        },
        _ if java != ours => out.push((path.to_owned(), java.clone(), ours.clone())),
        _ => {}
    }
}

/// `differential-allowed.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct AllowList {
    pub allowed: Vec<Allowed>,
}

/// One documented, expected difference.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    /// The cases it occurs in; it must occur in each of them.
    pub cases: Vec<u32>,
    /// One step's name, or every step of those cases.
    #[serde(default)]
    pub step: Option<String>,
    /// Only steps whose scripted request starts with this (`PUT /v1/announcement/`).
    #[serde(default)]
    pub request: Option<String>,
    /// As in [`Difference::what`].
    pub what: String,
    /// The expected values, compared exactly.
    pub java: Value,
    pub ours: Value,
    /// The documenting row of docs/COMPATIBILITY.md.
    pub compatibility: CompatibilityRow,
    /// Why, in a sentence.
    pub note: String,
}

/// A row of docs/COMPATIBILITY.md: the anchor of its section and the start of its first
/// cell (the Java column).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompatibilityRow {
    pub section: String,
    pub row: String,
}

impl Allowed {
    pub fn matches(&self, difference: &Difference) -> bool {
        self.cases.contains(&difference.case)
            && self
                .step
                .as_ref()
                .is_none_or(|step| *step == difference.step)
            && self
                .request
                .as_ref()
                .is_none_or(|prefix| difference.request.starts_with(prefix.as_str()))
            && self.what == difference.what
            && self.java == difference.java
            && self.ours == difference.ours
    }

    fn describe(&self) -> String {
        format!(
            "cases {:?}{}{} {}: java {} / ours {} ({})",
            self.cases,
            self.step
                .as_ref()
                .map(|s| format!(" step {s:?}"))
                .unwrap_or_default(),
            self.request
                .as_ref()
                .map(|r| format!(" request {r:?}"))
                .unwrap_or_default(),
            self.what,
            self.java,
            self.ours,
            self.note
        )
    }
}

/// What matching the differences against the allow-list found wrong.
#[derive(Debug, Default)]
pub struct Verdict {
    pub unlisted: Vec<Difference>,
    /// Allowed entries (described) with the cases where they matched nothing.
    pub stale: Vec<String>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.unlisted.is_empty() && self.stale.is_empty()
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.unlisted.is_empty() {
            writeln!(
                f,
                "{} difference(s) not in differential-allowed.json (document each in \
                 docs/COMPATIBILITY.md and list it, or fix the server):",
                self.unlisted.len()
            )?;
            for difference in &self.unlisted {
                writeln!(f, "  {difference}")?;
            }
        }
        if !self.stale.is_empty() {
            writeln!(
                f,
                "{} allowed entr(y/ies) no longer observed (remove or correct them):",
                self.stale.len()
            )?;
            for stale in &self.stale {
                writeln!(f, "  {stale}")?;
            }
        }
        Ok(())
    }
}

/// Every difference must match an allowed entry, and every allowed entry must match at
/// least one difference in each case it names.
pub fn judge(differences: &[Difference], allow: &AllowList) -> Verdict {
    let mut verdict = Verdict::default();
    for difference in differences {
        if !allow.allowed.iter().any(|a| a.matches(difference)) {
            verdict.unlisted.push(difference.clone());
        }
    }
    for allowed in &allow.allowed {
        let missing: Vec<u32> = allowed
            .cases
            .iter()
            .copied()
            .filter(|case| {
                !differences
                    .iter()
                    .any(|d| d.case == *case && allowed.matches(d))
            })
            .collect();
        if !missing.is_empty() {
            verdict.stale.push(format!(
                "{} (nothing matched in case(s) {missing:?})",
                allowed.describe()
            ));
        }
    }
    verdict
}

/// GitHub's anchor of a Markdown heading: lowercase, spaces to dashes, punctuation other
/// than dashes dropped.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Whether `doc` (COMPATIBILITY.md) has a table row under the heading with anchor
/// `row.section` whose first cell starts with `row.row`.
pub fn has_row(doc: &str, row: &CompatibilityRow) -> bool {
    let mut in_section = false;
    for line in doc.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            in_section = anchor(heading) == row.section;
        } else if in_section {
            if let Some(first) = line.strip_prefix('|').and_then(|l| l.split(" | ").next()) {
                if first.trim().starts_with(row.row.as_str()) {
                    return true;
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(status: u16, headers: &[(&str, &str)], body: Body) -> Observed {
        Observed {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body,
        }
    }

    fn context() -> Context {
        Context {
            base_url: "http://127.0.0.9:4000".into(),
            replacements: vec![("5f0f6b8e-aaaa".into(), "<s38>".into())],
            sent_times: vec![(1_000_500, "t50-10000".into())],
            clock_window: (1_000_000, 2_000_000),
            keys: None,
        }
    }

    #[test]
    fn location_loses_the_base_url_and_generated_ids() {
        let o = observed(
            201,
            &[
                (
                    "location",
                    "http://127.0.0.9:4000/v1/announcement/static/5f0f6b8e-aaaa",
                ),
                ("etag", "\"abc\""),
            ],
            Body::Json(json!({"id": "5f0f6b8e-aaaa", "location": "/somewhere/5f0f6b8e-aaaa"})),
        );
        let n = normalise(&o, &context());
        assert_eq!(n.headers["location"], "/v1/announcement/static/<s38>");
        assert_eq!(n.headers["etag"], "<etag>");
        assert_eq!(
            n.body,
            Body::Json(json!({"id": "<s38>", "location": "/somewhere/<s38>"}))
        );
    }

    #[test]
    fn store_dumps_are_decoded_filtered_and_clock_free() {
        let value = BASE64.encode(br#"[{"id":"b"},{"id":"a"}]"#);
        let dump = json!([
            {"key": BASE64.encode("n1"), "value": value, "version": {"sequence": 1_500_000},
             "timestamp": 1_500_000, "maxAgeInMs": 30000},
            {"key": BASE64.encode("n2"), "version": {"sequence": 1_000_500},
             "timestamp": 3_000_000},
            {"key": BASE64.encode("other"), "version": {"sequence": 1}, "timestamp": 1},
        ]);
        let mut ctx = context();
        ctx.keys = Some(vec!["n1".into(), "n2".into()]);
        let n = normalise(&observed(200, &[], Body::Json(dump)), &ctx);
        assert_eq!(
            n.body,
            Body::Json(json!([
                {"key": "n1", "value": [{"id": "a"}, {"id": "b"}],
                 "version": {"sequence": "=timestamp"}, "timestamp": "<clock>",
                 "maxAgeInMs": 30000},
                // A sent time reads as its expression; a time outside the window is kept.
                {"key": "n2", "version": {"sequence": "<t50-10000>"}, "timestamp": 3_000_000},
            ]))
        );
    }

    #[test]
    fn service_lists_compare_by_id_whatever_their_order() {
        let java =
            json!({"services": [{"id": "u1", "nodeId": "n1"}, {"id": "u2", "nodeId": "n2"}]});
        let ours =
            json!({"services": [{"id": "u2", "nodeId": "n2"}, {"id": "u1", "nodeId": "n9"}]});
        let (j, o) = (
            normalise(&observed(200, &[], Body::Json(java)), &context()),
            normalise(&observed(200, &[], Body::Json(ours)), &context()),
        );
        let differences = compare(7, "lookup", "GET /v1/service", Check::Full, &j, &o);
        assert_eq!(differences.len(), 1, "{differences:?}");
        assert_eq!(differences[0].what, "body /services[id=u1]/nodeId");
        assert_eq!(differences[0].java, json!("n1"));
        assert_eq!(differences[0].ours, json!("n9"));
    }

    #[test]
    fn a_missing_element_and_a_missing_header_are_reported_as_absent() {
        let j = normalise(
            &observed(200, &[], Body::Json(json!({"services": [{"id": "u1"}]}))),
            &context(),
        );
        let o = normalise(
            &observed(
                200,
                &[("cache-control", "max-age=10")],
                Body::Json(json!({"services": []})),
            ),
            &context(),
        );
        let differences = compare(1, "s", "GET /v1/service", Check::Full, &j, &o);
        let whats: Vec<(&str, &Value, &Value)> = differences
            .iter()
            .map(|d| (d.what.as_str(), &d.java, &d.ours))
            .collect();
        assert_eq!(
            whats,
            vec![
                ("header cache-control", &json!(ABSENT), &json!("max-age=10")),
                (
                    "body /services[id=u1]",
                    &json!({"id": "u1"}),
                    &json!(ABSENT)
                ),
            ]
        );
    }

    #[test]
    fn a_status_difference_hides_the_rest_and_error_bodies_count_only_when_asked() {
        let j = normalise(&observed(500, &[], Body::Text("trace".into())), &context());
        let o = normalise(&observed(400, &[], Body::Text("pool".into())), &context());
        let differences = compare(17, "s", "PUT /x", Check::Full, &j, &o);
        assert_eq!(differences.len(), 1);
        assert_eq!(differences[0].what, "status");

        let j = normalise(
            &observed(400, &[("content-type", "a")], Body::Text("x".into())),
            &context(),
        );
        let o = normalise(
            &observed(400, &[("content-type", "b")], Body::Text("y\n".into())),
            &context(),
        );
        assert!(compare(15, "s", "PUT /x", Check::Status, &j, &o).is_empty());
        assert!(compare(15, "s", "PUT /x", Check::Full, &j, &o).is_empty());
        let text = compare(12, "s", "PUT /x", Check::Text, &j, &o);
        assert_eq!(text.len(), 1);
        assert_eq!((&text[0].java, &text[0].ours), (&json!("x"), &json!("y")));
    }

    fn difference(case: u32, step: &str, what: &str, java: Value, ours: Value) -> Difference {
        Difference {
            case,
            step: step.into(),
            request: format!("PUT /v1/announcement/n{case}"),
            what: what.into(),
            java,
            ours,
        }
    }

    fn allow(json: Value) -> AllowList {
        serde_json::from_value(json).expect("a valid allow-list")
    }

    #[test]
    fn allowed_entries_match_exactly_and_unlisted_differences_are_all_reported() {
        let list = allow(json!({"allowed": [{
            "cases": [1, 2], "what": "header cache-control", "java": ABSENT, "ours": "max-age=10",
            "compatibility": {"section": "lookups", "row": "No"}, "note": "n"}]}));
        let differences = vec![
            difference(
                1,
                "a",
                "header cache-control",
                json!(ABSENT),
                json!("max-age=10"),
            ),
            difference(
                2,
                "b",
                "header cache-control",
                json!(ABSENT),
                json!("max-age=10"),
            ),
            difference(
                2,
                "b",
                "header cache-control",
                json!(ABSENT),
                json!("max-age=5"),
            ),
            difference(
                3,
                "c",
                "header cache-control",
                json!(ABSENT),
                json!("max-age=10"),
            ),
        ];
        let verdict = judge(&differences, &list);
        assert_eq!(verdict.unlisted, differences[2..].to_vec());
        assert!(verdict.stale.is_empty());
        assert!(verdict.to_string().contains("2 difference(s)"));
    }

    #[test]
    fn an_entry_that_matches_nothing_in_one_of_its_cases_is_stale() {
        let list = allow(json!({"allowed": [{
            "cases": [1, 2], "step": "a", "what": "status", "java": 500, "ours": 400,
            "compatibility": {"section": "lookups", "row": "No"}, "note": "n"}]}));
        let verdict = judge(
            &[difference(1, "a", "status", json!(500), json!(400))],
            &list,
        );
        assert!(verdict.unlisted.is_empty());
        assert_eq!(verdict.stale.len(), 1);
        assert!(
            verdict.stale[0].contains("case(s) [2]"),
            "{}",
            verdict.stale[0]
        );
        // The step name is part of the match.
        let verdict = judge(
            &[difference(1, "b", "status", json!(500), json!(400))],
            &list,
        );
        assert_eq!(verdict.unlisted.len(), 1);
    }

    #[test]
    fn a_request_prefix_narrows_an_entry() {
        let list = allow(json!({"allowed": [{
            "cases": [1], "request": "PUT /v1/announcement/", "what": "status", "java": 500,
            "ours": 400, "compatibility": {"section": "lookups", "row": "No"}, "note": "n"}]}));
        let mut other = difference(1, "a", "status", json!(500), json!(400));
        other.request = "POST /v1/announcement/static".into();
        let matching = difference(1, "a", "status", json!(500), json!(400));
        let verdict = judge(&[matching, other.clone()], &list);
        assert_eq!(verdict.unlisted, vec![other]);
        assert!(verdict.stale.is_empty());
    }

    #[test]
    fn compatibility_rows_are_found_by_section_anchor_and_first_cell() {
        let doc = "# T\n\n## The raw stores (`/v1/store/{dynamic,static}`)\n\n| Java | Ours |\n|---|---|\n| No limits. | Limits. |\n\n## Lookups\n\n| `?pretty` on GETs. | Ignored. |\n";
        assert_eq!(
            anchor("The raw stores (`/v1/store/{dynamic,static}`)"),
            "the-raw-stores-v1storedynamicstatic"
        );
        let row = |section: &str, row: &str| CompatibilityRow {
            section: section.into(),
            row: row.into(),
        };
        assert!(has_row(
            doc,
            &row("the-raw-stores-v1storedynamicstatic", "No limits")
        ));
        assert!(has_row(doc, &row("lookups", "`?pretty`")));
        assert!(!has_row(doc, &row("lookups", "No limits")));
    }
}
