//! Announcement bodies and their validation.
//!
//! Validation works on a parsed `serde_json::Value` rather than on derived structs so that
//! every rejection names the exact field and problem in one line
//! (`services[0].id must be a UUID`), instead of serde's positional messages. The rules
//! follow the Java server where a client could notice (unknown fields ignored, numbers and
//! booleans in properties stored as strings, location defaulted) and are stricter where
//! Java answers 500 or stores something that breaks lookups (missing fields, non-UUID ids).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::limits::{
    MAX_ECHOED_CHARS, MAX_LOCATION_BYTES, MAX_NAME_BYTES, MAX_NODE_ID_BYTES,
    MAX_PROPERTIES_PER_SERVICE, MAX_SERVICES_PER_ANNOUNCEMENT,
};
use crate::service::{is_service_id, Service};

/// Why an announcement was refused. `Display` is the one-line message sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AnnouncementError {
    /// Same text as the Java server, which operators grep for.
    #[error("Environment mismatch. Expected: {expected}, Provided: {}", .provided.as_deref().unwrap_or("null"))]
    EnvironmentMismatch {
        expected: String,
        provided: Option<String>,
    },
    #[error("invalid JSON body: {0}")]
    InvalidJson(String),
    #[error("{field} {problem}")]
    InvalidField { field: String, problem: String },
}

impl AnnouncementError {
    fn field(field: impl fmt::Display, problem: impl Into<String>) -> Self {
        AnnouncementError::InvalidField {
            field: field.to_string(),
            problem: problem.into(),
        }
    }
}

/// Checks a node id taken from the request path.
///
/// Java accepts any path segment. We accept any non-empty string of printable characters
/// up to [`MAX_NODE_ID_BYTES`]: airlift node ids (`[A-Za-z0-9][_A-Za-z0-9-]*`), UUIDs,
/// host names and the literal `static` all pass. Refused besides whitespace and control
/// characters: `/` and `..` (a node id ends up in paths, logs and file names) and the
/// Unicode bidirectional controls, which make an id read differently from what it is.
pub fn validate_node_id(node_id: &str) -> Result<(), AnnouncementError> {
    if node_id.is_empty() {
        return Err(AnnouncementError::field("node id", "must not be empty"));
    }
    if node_id.len() > MAX_NODE_ID_BYTES {
        return Err(AnnouncementError::field(
            "node id",
            format!("must be at most {MAX_NODE_ID_BYTES} bytes"),
        ));
    }
    if node_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(AnnouncementError::field(
            "node id",
            "must not contain whitespace or control characters",
        ));
    }
    if node_id.contains('/') || node_id.contains("..") {
        return Err(AnnouncementError::field(
            "node id",
            "must not contain '/' or '..'",
        ));
    }
    if node_id.chars().any(is_bidi_control) {
        return Err(AnnouncementError::field(
            "node id",
            "must not contain Unicode bidirectional control characters",
        ));
    }
    Ok(())
}

/// U+200E/F (marks), U+202A–U+202E (embeddings, overrides), U+2066–U+2069 (isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The body of `PUT /v1/announcement/{nodeId}`: everything one node offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DynamicAnnouncement {
    pub environment: String,
    pub pool: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub services: Vec<ServiceAnnouncement>,
}

/// One service inside a dynamic announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceAnnouncement {
    pub id: String,
    #[serde(rename = "type")]
    pub service_type: String,
    pub properties: BTreeMap<String, String>,
}

impl DynamicAnnouncement {
    /// Parses and validates a request body against the server's environment.
    pub fn from_json(body: &[u8], expected_environment: &str) -> Result<Self, AnnouncementError> {
        let object = parse_object(body)?;
        let environment = check_environment(&object, expected_environment)?;
        let pool = required_name(&object, "pool")?;
        let location = optional_location(&object)?;
        let raw_services = match object.get("services") {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => {
                return Err(AnnouncementError::field("services", "is required"))
            }
            Some(_) => return Err(AnnouncementError::field("services", "must be an array")),
        };
        if raw_services.len() > MAX_SERVICES_PER_ANNOUNCEMENT {
            return Err(AnnouncementError::field(
                "services",
                format!("must hold at most {MAX_SERVICES_PER_ANNOUNCEMENT} services"),
            ));
        }
        let mut services: Vec<ServiceAnnouncement> = Vec::with_capacity(raw_services.len());
        for (index, raw) in raw_services.iter().enumerate() {
            let service = ServiceAnnouncement::from_value(raw, index)?;
            // Java deserialises the array into a set, so exact duplicates collapse. Two
            // different services under one id would make lookups ambiguous: refuse them.
            match services.iter().find(|s| s.id == service.id) {
                Some(existing) if *existing == service => continue,
                Some(_) => {
                    return Err(AnnouncementError::field(
                        format!("services[{index}].id"),
                        "repeats the id of a different service in the same announcement",
                    ))
                }
                None => services.push(service),
            }
        }
        Ok(DynamicAnnouncement {
            environment,
            pool,
            location,
            services,
        })
    }

    /// The services this announcement stores for `node_id`: the node id comes from the
    /// path, never from the body, and a missing location becomes `/somewhere/<nodeId>`.
    pub fn into_services(self, node_id: &str) -> Vec<Service> {
        let location = self
            .location
            .unwrap_or_else(|| format!("/somewhere/{node_id}"));
        self.services
            .into_iter()
            .map(|service| Service {
                id: service.id,
                node_id: Some(node_id.to_owned()),
                service_type: service.service_type,
                pool: self.pool.clone(),
                location: Some(location.clone()),
                state: None,
                properties: service.properties,
            })
            .collect()
    }
}

impl ServiceAnnouncement {
    fn from_value(value: &Value, index: usize) -> Result<Self, AnnouncementError> {
        let path = format!("services[{index}]");
        let Value::Object(object) = value else {
            return Err(AnnouncementError::field(path, "must be an object"));
        };
        let id = match object.get("id") {
            Some(Value::String(id)) if is_service_id(id) => id.clone(),
            Some(Value::String(_)) | Some(Value::Number(_)) => {
                return Err(AnnouncementError::field(
                    format!("{path}.id"),
                    "must be a UUID such as 0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01",
                ))
            }
            None | Some(Value::Null) => {
                return Err(AnnouncementError::field(
                    format!("{path}.id"),
                    "is required",
                ))
            }
            Some(_) => {
                return Err(AnnouncementError::field(
                    format!("{path}.id"),
                    "must be a string",
                ))
            }
        };
        let service_type = required_name_at(object, "type", &path)?;
        let properties = properties_at(object, &path)?;
        Ok(ServiceAnnouncement {
            id,
            service_type,
            properties,
        })
    }
}

/// The body of `POST /v1/announcement/static`: one operator-managed service that never
/// expires and belongs to no node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticAnnouncement {
    pub environment: String,
    #[serde(rename = "type")]
    pub service_type: String,
    pub pool: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub properties: BTreeMap<String, String>,
}

impl StaticAnnouncement {
    /// Parses and validates a request body against the server's environment.
    pub fn from_json(body: &[u8], expected_environment: &str) -> Result<Self, AnnouncementError> {
        let object = parse_object(body)?;
        let environment = check_environment(&object, expected_environment)?;
        Ok(StaticAnnouncement {
            environment,
            service_type: required_name(&object, "type")?,
            pool: required_name(&object, "pool")?,
            location: optional_location(&object)?,
            properties: properties_at(&object, "")?,
        })
    }

    /// The stored service under the server-generated `id`; a missing location becomes
    /// `/somewhere/<id>` as in Java.
    pub fn into_service(self, id: String) -> Service {
        let location = self.location.unwrap_or_else(|| format!("/somewhere/{id}"));
        Service {
            id,
            node_id: None,
            service_type: self.service_type,
            pool: self.pool,
            location: Some(location),
            state: None,
            properties: self.properties,
        }
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, AnnouncementError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(AnnouncementError::InvalidJson(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(AnnouncementError::InvalidJson(e.to_string())),
    }
}

fn check_environment(
    object: &Map<String, Value>,
    expected: &str,
) -> Result<String, AnnouncementError> {
    let provided = match object.get("environment") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(AnnouncementError::field("environment", "must be a string")),
    };
    match provided {
        Some(environment) if environment == expected => Ok(environment),
        provided => Err(AnnouncementError::EnvironmentMismatch {
            expected: expected.to_owned(),
            provided: provided.map(|p| truncate_for_echo(&p)),
        }),
    }
}

fn truncate_for_echo(text: &str) -> String {
    if text.chars().count() <= MAX_ECHOED_CHARS {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX_ECHOED_CHARS).collect();
        format!("{cut}...")
    }
}

fn required_name(object: &Map<String, Value>, field: &str) -> Result<String, AnnouncementError> {
    required_name_at(object, field, "")
}

/// A required, non-empty, bounded string such as a type or a pool.
fn required_name_at(
    object: &Map<String, Value>,
    field: &str,
    parent: &str,
) -> Result<String, AnnouncementError> {
    let path = join(parent, field);
    match object.get(field) {
        Some(Value::String(s)) if s.is_empty() => {
            Err(AnnouncementError::field(path, "must not be empty"))
        }
        Some(Value::String(s)) if s.len() > MAX_NAME_BYTES => Err(AnnouncementError::field(
            path,
            format!("must be at most {MAX_NAME_BYTES} bytes"),
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(AnnouncementError::field(path, "is required")),
        Some(_) => Err(AnnouncementError::field(path, "must be a string")),
    }
}

fn optional_location(object: &Map<String, Value>) -> Result<Option<String>, AnnouncementError> {
    match object.get("location") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() > MAX_LOCATION_BYTES => Err(AnnouncementError::field(
            "location",
            format!("must be at most {MAX_LOCATION_BYTES} bytes"),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AnnouncementError::field("location", "must be a string")),
    }
}

/// Properties are a flat string map. Numbers and booleans are stored as their text
/// (Prestissimo sends `"coordinator": false`); null, objects and arrays are refused.
fn properties_at(
    object: &Map<String, Value>,
    parent: &str,
) -> Result<BTreeMap<String, String>, AnnouncementError> {
    let path = join(parent, "properties");
    let raw = match object.get("properties") {
        Some(Value::Object(raw)) => raw,
        None | Some(Value::Null) => return Err(AnnouncementError::field(path, "is required")),
        Some(_) => return Err(AnnouncementError::field(path, "must be an object")),
    };
    if raw.len() > MAX_PROPERTIES_PER_SERVICE {
        return Err(AnnouncementError::field(
            path,
            format!("must hold at most {MAX_PROPERTIES_PER_SERVICE} entries"),
        ));
    }
    let mut properties = BTreeMap::new();
    for (name, value) in raw {
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(AnnouncementError::field(
                &path,
                format!("names must be 1 to {MAX_NAME_BYTES} bytes long"),
            ));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => {
                return Err(AnnouncementError::field(
                    format!("{path}.{name}"),
                    "must not be null",
                ))
            }
            Value::Object(_) | Value::Array(_) => {
                return Err(AnnouncementError::field(
                    format!("{path}.{name}"),
                    "must be a string, number or boolean",
                ))
            }
        };
        properties.insert(name.clone(), text);
    }
    Ok(properties)
}

fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01";

    fn dynamic(body: &str) -> Result<DynamicAnnouncement, AnnouncementError> {
        DynamicAnnouncement::from_json(body.as_bytes(), "testing")
    }

    fn error_text(body: &str) -> String {
        dynamic(body).unwrap_err().to_string()
    }

    #[test]
    fn airlift_client_body_is_accepted_and_node_id_comes_from_the_path() {
        let body = format!(
            r#"{{"environment":"testing","nodeId":"other","location":"/n1","pool":"general",
                "services":[{{"id":"{U1}","type":"trino","properties":{{"http":"http://10.0.0.5:8080"}}}}]}}"#
        );
        let services = dynamic(&body).unwrap().into_services("n1");
        assert_eq!(services.len(), 1);
        assert_eq!(services[0].node_id.as_deref(), Some("n1"));
        assert_eq!(services[0].location.as_deref(), Some("/n1"));
        assert_eq!(services[0].pool, "general");
    }

    #[test]
    fn node_ids_that_read_as_paths_or_other_text_are_refused() {
        for good in ["n1", "worker-1.example.com", "static", U1, "a.b"] {
            assert_eq!(validate_node_id(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "..",
            "a/b",
            "a..b",
            "ab\u{202E}cd",
            "x\u{2066}y",
            "a b",
            "a\tb",
        ] {
            assert!(validate_node_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_node_id(&"n".repeat(MAX_NODE_ID_BYTES + 1)).is_err());
    }

    #[test]
    fn environment_mismatch_uses_the_java_text() {
        assert_eq!(
            error_text(r#"{"environment":"production","pool":"p","services":[]}"#),
            "Environment mismatch. Expected: testing, Provided: production"
        );
        assert_eq!(
            error_text("{}"),
            "Environment mismatch. Expected: testing, Provided: null"
        );
    }

    #[test]
    fn missing_location_defaults_to_somewhere_node() {
        let services = dynamic(&format!(
            r#"{{"environment":"testing","pool":"p","location":null,
                "services":[{{"id":"{U1}","type":"t","properties":{{}}}}]}}"#
        ))
        .unwrap()
        .into_services("test123");
        assert_eq!(services[0].location.as_deref(), Some("/somewhere/test123"));
    }

    #[test]
    fn scalars_in_properties_become_strings() {
        let announcement = dynamic(&format!(
            r#"{{"environment":"testing","pool":"p","services":[{{"id":"{U1}","type":"t",
                "properties":{{"port":8080,"tls":true,"ratio":1.5}}}}]}}"#
        ))
        .unwrap();
        let properties = &announcement.services[0].properties;
        assert_eq!(properties["port"], "8080");
        assert_eq!(properties["tls"], "true");
        assert_eq!(properties["ratio"], "1.5");
    }

    #[test]
    fn bad_shapes_name_the_field() {
        let cases = [
            (r#"{"environment":"#, "invalid JSON body"),
            ("[]", "invalid JSON body: the body must be a JSON object"),
            (
                r#"{"environment":"testing","pool":"p","services":{}}"#,
                "services must be an array",
            ),
            (
                r#"{"environment":"testing","pool":"p"}"#,
                "services is required",
            ),
            (
                r#"{"environment":"testing","services":[]}"#,
                "pool is required",
            ),
            (
                r#"{"environment":"testing","pool":"p","services":[{"id":5,"type":"t","properties":{}}]}"#,
                "services[0].id must be a UUID",
            ),
            (
                r#"{"environment":"testing","pool":"p","services":[{"id":"","type":"t","properties":{}}]}"#,
                "services[0].id must be a UUID",
            ),
            (
                r#"{"environment":"testing","pool":"p","services":[{"id":"not-a-uuid","type":"t","properties":{}}]}"#,
                "services[0].id must be a UUID",
            ),
        ];
        for (body, expected) in cases {
            let text = error_text(body);
            assert!(text.starts_with(expected), "{body}: got {text:?}");
            assert!(
                !text.contains('\n'),
                "error text must be one line: {text:?}"
            );
        }
    }

    #[test]
    fn bad_properties_and_missing_service_fields_are_refused() {
        let cases = [
            (
                r#"{"type":"t","properties":{"a":{"b":"c"}}}"#,
                "services[0].properties.a must be a string, number or boolean",
            ),
            (
                r#"{"type":"t","properties":{"a":null}}"#,
                "services[0].properties.a must not be null",
            ),
            (r#"{"type":"t"}"#, "services[0].properties is required"),
            (r#"{"properties":{}}"#, "services[0].type is required"),
        ];
        for (service_tail, expected) in cases {
            let service = format!(r#"{{"id":"{U1}",{}"#, &service_tail[1..]);
            let body = format!(r#"{{"environment":"testing","pool":"p","services":[{service}]}}"#);
            assert_eq!(error_text(&body), expected, "{body}");
        }
        let no_id =
            r#"{"environment":"testing","pool":"p","services":[{"type":"t","properties":{}}]}"#;
        assert_eq!(error_text(no_id), "services[0].id is required");
    }

    #[test]
    fn duplicate_ids_collapse_when_identical_and_are_refused_otherwise() {
        let same = format!(
            r#"{{"environment":"testing","pool":"p","services":[
                {{"id":"{U1}","type":"t","properties":{{}}}},{{"id":"{U1}","type":"t","properties":{{}}}}]}}"#
        );
        assert_eq!(dynamic(&same).unwrap().services.len(), 1);
        let different = same.replacen(r#""type":"t""#, r#""type":"u""#, 1);
        assert!(error_text(&different).contains("repeats the id"));
    }

    #[test]
    fn limits_are_enforced() {
        let service = format!(
            r#"{{"id":"{U1}","type":"{}","properties":{{}}}}"#,
            "t".repeat(MAX_NAME_BYTES + 1)
        );
        let body = format!(r#"{{"environment":"testing","pool":"p","services":[{service}]}}"#);
        assert!(error_text(&body).contains("at most"));
        let long_env = "e".repeat(1000);
        let text = error_text(&format!(r#"{{"environment":"{long_env}"}}"#));
        assert!(text.len() < 300, "echoed environment must be truncated");
    }

    #[test]
    fn node_ids_are_checked() {
        assert!(validate_node_id("static").is_ok());
        assert!(validate_node_id("worker-17").is_ok());
        assert!(validate_node_id("").is_err());
        assert!(validate_node_id("a b").is_err());
        assert!(validate_node_id(&"n".repeat(MAX_NODE_ID_BYTES + 1)).is_err());
    }

    #[test]
    fn static_announcements_require_type_pool_and_properties() {
        let ok = StaticAnnouncement::from_json(
            br#"{"environment":"testing","type":"apple","pool":"red","properties":{"http":"http://host"}}"#,
            "testing",
        )
        .unwrap()
        .into_service(U1.into());
        assert_eq!(ok.location.as_deref(), Some(&*format!("/somewhere/{U1}")));
        assert_eq!(ok.node_id, None);
        for missing in ["type", "pool", "properties"] {
            let mut object: Map<String, Value> = serde_json::from_str(
                r#"{"environment":"testing","type":"apple","pool":"red","properties":{}}"#,
            )
            .unwrap();
            object.remove(missing);
            let body = serde_json::to_vec(&object).unwrap();
            let err = StaticAnnouncement::from_json(&body, "testing").unwrap_err();
            assert_eq!(err.to_string(), format!("{missing} is required"));
        }
    }
}
