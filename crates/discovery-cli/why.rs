//! `discovery why NODE_ID`: the answer to "the worker says it announced, why doesn't the
//! coordinator see it?" in one or two sentences, from the server's
//! `GET /v1/diagnostics/node/{nodeId}`. The sentence is a pure function of that answer
//! and the time ([`explain`]), so every case is unit-tested without a server.

use std::collections::BTreeSet;

use discovery_client::types::diagnostics::{NodeDiagnostics, Refusal, RefusalReason};
use discovery_client::types::validate_node_id;
use discovery_client::DiscoveryClient;
use serde_json::{self as json, Value};

use crate::cli::{Output, WhyArgs};
use crate::format;
use crate::outcome::{print, print_json, Failure, Outcome};

/// Exit 0 when the node is listed, 1 when it is not (like a lookup that matched nothing).
pub async fn why(
    client: &DiscoveryClient,
    output: Output,
    args: WhyArgs,
) -> Result<Outcome, Failure> {
    validate_node_id(&args.node_id)
        .map_err(|e| Failure::usage(format!("'{}' is not a node id: {e}", args.node_id)))?;
    let answer = client.node_diagnostics(&args.node_id).await?;
    match output {
        Output::Json => print_json(&json::to_value(&answer).unwrap_or(Value::Null))?,
        Output::Table => print(&format!("{}\n", explain(&answer, format::now_ms())))?,
    }
    Ok(if answer.listed {
        Outcome::Done
    } else {
        Outcome::NothingMatched
    })
}

/// The diagnosis of `answer` at `now_ms`, in one or two sentences.
pub fn explain(answer: &NodeDiagnostics, now_ms: i64) -> String {
    let id = &answer.node_id;
    let seen_at = answer
        .last_accepted
        .as_ref()
        .map(|a| a.at)
        .max(answer.last_renewal)
        .max(answer.unannounced_at);
    // Refusals since the last thing that went through: they explain the current state.
    let refused: Vec<&Refusal> = answer
        .recent_refusals
        .iter()
        .filter(|r| seen_at.is_none_or(|at| r.at > at))
        .collect();
    if answer.listed {
        let mut text = format!("{id} is listed{}", listing(answer, now_ms));
        text.push_str("; ");
        text.push_str(&arrival(answer));
        if !refused.is_empty() {
            text.push_str(&format!(". Since then, {}", refusals(&refused)));
        }
        return text;
    }
    if !refused.is_empty() {
        return format!("{id} is not listed: {}", refusals(&refused));
    }
    if let Some(at) = answer.unannounced_at {
        return format!(
            "{id} is not listed: it was unannounced (DELETE /v1/announcement/{id}) at {}, {} ago",
            clock(at),
            format::duration_ms(now_ms - at)
        );
    }
    if let Some(expires_at) = answer.expires_at {
        if expires_at >= now_ms {
            return format!(
                "{id} is not listed: its stored announcement holds no service a lookup can return"
            );
        }
        let from = answer
            .last_accepted
            .as_ref()
            .and_then(|a| a.client_address.as_deref())
            .map_or_else(String::new, |ip| format!(" from {ip}"));
        let renewed = answer.last_renewal.map_or_else(String::new, |at| {
            format!(", last renewed at {}{from}", clock(at))
        });
        return format!(
            "{id} is not listed: its announcement expired {} ago{renewed}; check that the node is up and still announcing",
            format::duration_ms(now_ms - expires_at)
        );
    }
    if let Some(accepted) = &answer.last_accepted {
        let from = accepted
            .client_address
            .as_deref()
            .map_or_else(String::new, |ip| format!(" from {ip}"));
        return format!(
            "{id} is not listed: this server last accepted an announcement for it at {}{from} ({} ago), and it has expired since; check that the node is up and still announcing",
            clock(accepted.at),
            format::duration_ms(now_ms - accepted.at)
        );
    }
    format!(
        "{id} is not listed and this server has never heard of it: check that its discovery.uri points here"
    )
}

/// " as trino in pool general at /rack-1 (http://…), renewed 3s ago, expires in 27s".
fn listing(answer: &NodeDiagnostics, now_ms: i64) -> String {
    let mut text = String::new();
    let types: BTreeSet<&str> = answer
        .services
        .iter()
        .map(|s| s.service_type.as_str())
        .collect();
    let pools: BTreeSet<&str> = answer.services.iter().map(|s| s.pool.as_str()).collect();
    if types.is_empty() {
        text.push_str(" with no services");
    } else {
        let plural = if pools.len() > 1 { "s" } else { "" };
        text.push_str(&format!(
            " as {} in pool{plural} {}",
            join(&types),
            join(&pools)
        ));
    }
    if let Some(location) = &answer.location {
        text.push_str(&format!(" at {location}"));
    }
    if let Some(http) = answer.services.iter().find_map(|s| s.http.as_deref()) {
        text.push_str(&format!(" ({http})"));
    }
    if let Some(at) = answer.last_renewal {
        text.push_str(&format!(
            ", renewed {} ago",
            format::duration_ms(now_ms - at)
        ));
    }
    if let Some(at) = answer.expires_at {
        text.push_str(&format!(
            ", expires in {}",
            format::duration_ms(at - now_ms)
        ));
    }
    text
}

/// How the announcement reached the answering server.
fn arrival(answer: &NodeDiagnostics) -> String {
    let Some(accepted) = &answer.last_accepted else {
        return "this server did not receive it from the node itself (it came from another discovery server, or before a restart)".into();
    };
    let address = accepted.client_address.as_deref();
    match (accepted.replicated, accepted.via.as_str()) {
        (false, _) => format!(
            "last accepted by this server{}",
            address.map_or_else(String::new, |ip| format!(" from {ip}"))
        ),
        (true, "replication") => format!(
            "it reached this server by replication{}",
            address.map_or_else(String::new, |ip| format!(" from {ip}"))
        ),
        (true, peer) => format!(
            "it reached this server by replication from {peer}{}",
            address.map_or_else(String::new, |ip| format!(" ({ip})"))
        ),
    }
}

/// "its last 5 announcements were refused: environment mismatch, expected production,
/// provided prod (last at 12:03:04 UTC from 10.0.0.7)"; `refused` is newest first.
fn refusals(refused: &[&Refusal]) -> String {
    let Some(newest) = refused.first() else {
        return String::new();
    };
    let count = if refused.len() == 1 {
        "its last announcement was refused".to_owned()
    } else {
        format!("its last {} announcements were refused", refused.len())
    };
    let kinds: BTreeSet<String> = refused
        .iter()
        .map(|r| {
            json::to_value(&r.reason).map_or_else(|_| String::new(), |v| v["kind"].to_string())
        })
        .collect();
    let separator = if kinds.len() > 1 {
        ", the last one for"
    } else {
        ":"
    };
    let from = newest
        .client_address
        .as_deref()
        .map_or_else(String::new, |ip| format!(" from {ip}"));
    format!(
        "{count}{separator} {} (last at {}{from})",
        describe(&newest.reason, &newest.message),
        clock(newest.at)
    )
}

/// A refusal reason for people; `message` is the server's text, for kinds this CLI does
/// not know.
pub fn describe(reason: &RefusalReason, message: &str) -> String {
    match reason {
        RefusalReason::EnvironmentMismatch { expected, provided } => format!(
            "environment mismatch, expected {expected}, provided {}",
            provided.as_deref().unwrap_or("none")
        ),
        RefusalReason::InvalidBody { detail } => format!("invalid body: {detail}"),
        RefusalReason::UnsupportedMediaType { detail } => detail.clone(),
        RefusalReason::TooLarge { limit } => format!("body larger than {limit} bytes"),
        RefusalReason::Timeout => "the body did not arrive in time".into(),
        RefusalReason::Unauthenticated { reason } => format!("not authenticated: {reason}"),
        RefusalReason::Forbidden { reason } => format!("forbidden: {reason}"),
        RefusalReason::StoreFull { detail } => format!("store full: {detail}"),
        RefusalReason::NotReady { reason } => format!("server not ready: {reason}"),
        RefusalReason::StorageUnavailable => "the server's storage was failing".into(),
        RefusalReason::Conflict { detail } => detail.clone(),
        RefusalReason::Other => message.to_owned(),
    }
}

/// `12:03:04 UTC`.
fn clock(ms: i64) -> String {
    let stamp = format::timestamp(ms);
    format!("{} UTC", stamp.get(11..19).unwrap_or(&stamp))
}

fn join(items: &BTreeSet<&str>) -> String {
    items.iter().copied().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use discovery_client::types::diagnostics::{LastAccepted, NodeService};

    use super::*;

    // 2024-05-07T12:03:04.000Z
    const NOW: i64 = 1_715_083_384_000;

    fn unknown(node: &str) -> NodeDiagnostics {
        NodeDiagnostics::unknown(node.into(), "disc-1".into(), "production".into())
    }

    fn listed() -> NodeDiagnostics {
        NodeDiagnostics {
            listed: true,
            services: vec![NodeService {
                service_type: "trino".into(),
                pool: "general".into(),
                id: "0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01".into(),
                http: Some("http://10.0.0.7:8080".into()),
            }],
            location: Some("/rack-1".into()),
            last_renewal: Some(NOW - 3_000),
            expires_at: Some(NOW + 27_000),
            last_accepted: Some(LastAccepted {
                at: NOW - 3_000,
                client_address: Some("10.0.0.7".into()),
                via: "client".into(),
                replicated: false,
            }),
            environment_matches: Some(true),
            ..unknown("worker-9")
        }
    }

    fn mismatch(at: i64) -> Refusal {
        let reason = RefusalReason::EnvironmentMismatch {
            expected: "production".into(),
            provided: Some("prod".into()),
        };
        Refusal {
            at,
            message: reason.to_string(),
            reason,
            client_address: Some("10.0.0.7".into()),
        }
    }

    #[test]
    fn a_listed_node_says_where_it_is_and_who_sent_it() {
        assert_eq!(
            explain(&listed(), NOW),
            "worker-9 is listed as trino in pool general at /rack-1 (http://10.0.0.7:8080), \
             renewed 3s ago, expires in 27s; last accepted by this server from 10.0.0.7"
        );
        let mut replicated = listed();
        replicated.last_accepted = Some(LastAccepted {
            at: NOW - 3_000,
            client_address: Some("127.0.0.2".into()),
            via: "disc-2".into(),
            replicated: true,
        });
        assert!(explain(&replicated, NOW)
            .ends_with("; it reached this server by replication from disc-2 (127.0.0.2)"));
        replicated.last_accepted = None;
        assert!(explain(&replicated, NOW).contains("did not receive it from the node itself"));
    }

    #[test]
    fn a_listed_node_refused_since_its_last_renewal_says_so_too() {
        let mut answer = listed();
        answer.recent_refusals = vec![mismatch(NOW - 1_000), mismatch(NOW - 10_000)];
        let text = explain(&answer, NOW);
        assert!(
            text.ends_with(
                "from 10.0.0.7. Since then, its last announcement was refused: environment \
                 mismatch, expected production, provided prod (last at 12:03:03 UTC from \
                 10.0.0.7)"
            ),
            "{text}"
        );
    }

    #[test]
    fn refusals_explain_a_missing_node() {
        let mut answer = unknown("worker-9");
        answer.recent_refusals = (0..5).map(|i| mismatch(NOW - 1_000 * i)).collect();
        assert_eq!(
            explain(&answer, NOW),
            "worker-9 is not listed: its last 5 announcements were refused: environment \
             mismatch, expected production, provided prod (last at 12:03:04 UTC from 10.0.0.7)"
        );
        // Refusals older than the last acceptance explain nothing about now.
        answer.last_accepted = Some(LastAccepted {
            at: NOW - 500,
            client_address: None,
            via: "client".into(),
            replicated: false,
        });
        answer.recent_refusals = vec![mismatch(NOW - 1_000)];
        assert!(explain(&answer, NOW + 60_000).contains("has expired since"));
        // Mixed reasons name the newest.
        let mut mixed = unknown("w");
        let reason = RefusalReason::Unauthenticated {
            reason: "token expired".into(),
        };
        mixed.recent_refusals = vec![
            Refusal {
                at: NOW,
                message: reason.to_string(),
                reason,
                client_address: None,
            },
            mismatch(NOW - 1),
        ];
        assert_eq!(
            explain(&mixed, NOW),
            "w is not listed: its last 2 announcements were refused, the last one for not \
             authenticated: token expired (last at 12:03:04 UTC)"
        );
    }

    #[test]
    fn unknown_expired_and_unannounced_nodes() {
        assert_eq!(
            explain(&unknown("worker-9"), NOW),
            "worker-9 is not listed and this server has never heard of it: check that its \
             discovery.uri points here"
        );
        let mut expired = listed();
        expired.listed = false;
        let text = explain(&expired, NOW + 60_000);
        assert_eq!(
            text,
            "worker-9 is not listed: its announcement expired 33s ago, last renewed at \
             12:03:01 UTC from 10.0.0.7; check that the node is up and still announcing"
        );
        let mut gone = unknown("w");
        gone.unannounced_at = Some(NOW - 2_000);
        assert_eq!(
            explain(&gone, NOW),
            "w is not listed: it was unannounced (DELETE /v1/announcement/w) at 12:03:02 UTC, 2s ago"
        );
    }

    #[test]
    fn every_reason_reads_as_a_phrase() {
        assert_eq!(
            describe(
                &RefusalReason::EnvironmentMismatch {
                    expected: "a".into(),
                    provided: None
                },
                ""
            ),
            "environment mismatch, expected a, provided none"
        );
        assert_eq!(
            describe(&RefusalReason::TooLarge { limit: 1024 }, ""),
            "body larger than 1024 bytes"
        );
        assert_eq!(
            describe(&RefusalReason::Other, "from a newer server"),
            "from a newer server"
        );
        assert_eq!(
            describe(
                &RefusalReason::Forbidden {
                    reason: "a token for node 'a' cannot announce or delete node 'b'".into()
                },
                ""
            ),
            "forbidden: a token for node 'a' cannot announce or delete node 'b'"
        );
    }
}
