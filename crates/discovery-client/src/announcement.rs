//! Building announcement bodies: fresh service ids, and bodies read from JSON files.
//!
//! The bodies themselves are the wire types of `discovery-types`
//! ([`DynamicAnnouncement`], [`StaticAnnouncement`]); this module only helps fill them.

use std::collections::BTreeMap;

use discovery_types::{
    AnnouncementError, DynamicAnnouncement, ServiceAnnouncement, StaticAnnouncement,
};
use serde_json::Value;

/// A new random service id (UUID v4, lowercase, dashed).
///
/// Like airlift, pick it once per process and keep it across re-announcements: a new id
/// tells Presto's failure detector that this is a new service instance.
pub fn new_service_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A service of `service_type` with a fresh id and the given properties.
pub fn service<K, V>(
    service_type: impl Into<String>,
    properties: impl IntoIterator<Item = (K, V)>,
) -> ServiceAnnouncement
where
    K: Into<String>,
    V: Into<String>,
{
    ServiceAnnouncement {
        id: new_service_id(),
        service_type: service_type.into(),
        properties: properties
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// A `PUT /v1/announcement/{nodeId}` body read from a file, and the node id it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncementFile {
    /// The body's `nodeId` field, which airlift clients send although the server takes the
    /// node id from the path.
    pub node_id: Option<String>,
    pub announcement: DynamicAnnouncement,
}

/// Parses a dynamic announcement in the PUT body format, with the server's validation
/// rules (UUID service ids, required fields). A body without `environment` gets
/// `default_environment`; a body with one keeps it, so the server, not this client, decides
/// whether it matches, and reports a mismatch in its own words.
pub fn parse_announcement_file(
    body: &[u8],
    default_environment: &str,
) -> Result<AnnouncementFile, AnnouncementError> {
    let (object, environment) = with_environment(body, default_environment)?;
    let node_id = match object.get("nodeId") {
        Some(Value::String(node_id)) => Some(node_id.clone()),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(AnnouncementError::InvalidField {
                field: "nodeId".into(),
                problem: "must be a string".into(),
            })
        }
    };
    let bytes =
        serde_json::to_vec(&object).map_err(|e| AnnouncementError::InvalidJson(e.to_string()))?;
    let announcement = DynamicAnnouncement::from_json(&bytes, &environment)?;
    Ok(AnnouncementFile {
        node_id,
        announcement,
    })
}

/// Parses a static announcement in the POST body format; `environment` as in
/// [`parse_announcement_file`].
pub fn parse_static_file(
    body: &[u8],
    default_environment: &str,
) -> Result<StaticAnnouncement, AnnouncementError> {
    let (object, environment) = with_environment(body, default_environment)?;
    let bytes =
        serde_json::to_vec(&object).map_err(|e| AnnouncementError::InvalidJson(e.to_string()))?;
    StaticAnnouncement::from_json(&bytes, &environment)
}

/// The body as a JSON object with an `environment` (filled in if missing), and that
/// environment.
fn with_environment(
    body: &[u8],
    default_environment: &str,
) -> Result<(serde_json::Map<String, Value>, String), AnnouncementError> {
    let mut object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            return Err(AnnouncementError::InvalidJson(
                "the body must be a JSON object".into(),
            ))
        }
        Err(e) => return Err(AnnouncementError::InvalidJson(e.to_string())),
    };
    let environment = match object.get("environment") {
        Some(Value::String(environment)) => environment.clone(),
        None | Some(Value::Null) => default_environment.to_owned(),
        Some(_) => {
            return Err(AnnouncementError::InvalidField {
                field: "environment".into(),
                problem: "must be a string".into(),
            })
        }
    };
    object.insert("environment".into(), Value::String(environment.clone()));
    Ok((object, environment))
}

#[cfg(test)]
mod tests {
    use discovery_types::is_service_id;

    use super::*;

    #[test]
    fn new_services_get_distinct_uuid_ids() {
        let a = service("presto", [("http", "http://h:8080")]);
        let b = service("presto", [("http", "http://h:8080")]);
        assert!(is_service_id(&a.id));
        assert_ne!(a.id, b.id);
        assert_eq!(a.properties["http"], "http://h:8080");
    }

    #[test]
    fn announcement_files_keep_their_environment_and_node_id() {
        let body = br#"{"environment":"prod","nodeId":"w1","pool":"general",
            "services":[{"id":"0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01","type":"presto","properties":{"coordinator":false}}]}"#;
        let file = parse_announcement_file(body, "testing").unwrap();
        assert_eq!(file.node_id.as_deref(), Some("w1"));
        assert_eq!(file.announcement.environment, "prod");
        assert_eq!(
            file.announcement.services[0].properties["coordinator"],
            "false"
        );
    }

    #[test]
    fn announcement_files_without_environment_get_the_default() {
        let body = br#"{"pool":"general","services":[]}"#;
        let file = parse_announcement_file(body, "testing").unwrap();
        assert_eq!(file.announcement.environment, "testing");
        assert_eq!(file.node_id, None);
    }

    #[test]
    fn bad_files_name_the_problem() {
        let err = parse_announcement_file(
            br#"{"pool":"general","services":[{"id":"x","type":"t","properties":{}}]}"#,
            "e",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("services[0].id must be a UUID"),
            "{err}"
        );
        assert!(parse_announcement_file(b"[]", "e").is_err());
        assert!(parse_announcement_file(b"{", "e").is_err());
        let err = parse_static_file(br#"{"type":"t","properties":{}}"#, "e").unwrap_err();
        assert_eq!(err.to_string(), "pool is required");
        let ok = parse_static_file(br#"{"type":"t","pool":"p","properties":{"http":"x"}}"#, "e")
            .unwrap();
        assert_eq!(ok.environment, "e");
    }
}
