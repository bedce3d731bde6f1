//! Request bodies of the announcement API: `PUT /v1/announcement/{nodeId}` (a dynamic
//! announcement: a node's pool, location and services) and `POST /v1/announcement/static`.
//!
//! Every suite announces; building the JSON here keeps one spelling of the wire shape (the
//! field names airlift's `Announcement` and `StaticAnnouncement` use) instead of one per
//! suite. The bodies are `serde_json::Value`s, not typed structs, on purpose: tests also
//! send bodies a typed client could never produce, by editing these.

use serde_json::{json, Value};

use crate::values::ENVIRONMENT;

/// A service inside a dynamic announcement.
pub fn service(id: &str, service_type: &str, properties: Value) -> Value {
    json!({"id": id, "type": service_type, "properties": properties})
}

/// A valid dynamic announcement body in [`ENVIRONMENT`] (`A(pool, location, services)`
/// in the conformance cases of `docs/PROTOCOL.md`).
pub fn announcement(pool: &str, location: &str, services: Vec<Value>) -> Value {
    announcement_in(ENVIRONMENT, pool, location, services)
}

/// [`announcement`] in another environment, for servers configured with one.
pub fn announcement_in(
    environment: &str,
    pool: &str,
    location: &str,
    services: Vec<Value>,
) -> Value {
    json!({"environment": environment, "pool": pool, "location": location,
           "services": services})
}

/// The announcement the cluster tests write when only the service matters: one service
/// `service_id` of `service_type` in pool `general`, location `/test`.
pub fn standard_announcement(service_id: &str, service_type: &str) -> Value {
    announcement(
        "general",
        "/test",
        vec![service(
            service_id,
            service_type,
            json!({"http": "http://10.0.0.1:8080"}),
        )],
    )
}

/// A valid static announcement body in [`ENVIRONMENT`]. `location` is optional in the
/// protocol; `None` leaves the field out.
pub fn static_announcement<'a>(
    service_type: &str,
    pool: &str,
    location: impl Into<Option<&'a str>>,
    properties: Value,
) -> Value {
    let mut body = json!({"environment": ENVIRONMENT, "type": service_type, "pool": pool,
                          "properties": properties});
    if let Some(location) = location.into() {
        body["location"] = json!(location);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_wire_field_names() {
        assert_eq!(
            standard_announcement("id-1", "trino"),
            json!({"environment": "testing", "pool": "general", "location": "/test",
                   "services": [{"id": "id-1", "type": "trino",
                                 "properties": {"http": "http://10.0.0.1:8080"}}]})
        );
        assert_eq!(
            static_announcement("db", "p", None, json!({})),
            json!({"environment": "testing", "type": "db", "pool": "p", "properties": {}})
        );
        assert_eq!(
            static_announcement("db", "p", "/x", json!({}))["location"],
            json!("/x")
        );
    }
}
