//! Checks on lookup responses, as the airlift client makes them.
//!
//! A response for the wrong environment means the client talks to the wrong cluster (a
//! typo in a URI, a load balancer in front of two clusters); a service of another type or
//! pool means the server ignored the filter. Either way none of the list can be trusted, so
//! the whole response is refused and a selector keeps its last good list. A service id that
//! is not a UUID is refused too: airlift clients parse ids as `java.util.UUID`, and code
//! built on this crate should see the same services a Java node sees.

use discovery_types::{is_service_id, ServiceSet};
use thiserror::Error;

/// Why a lookup response was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    /// Same wording as airlift's client.
    #[error("Expected environment to be {expected}, but was {actual}")]
    Environment { expected: String, actual: String },
    #[error("Expected {expected} service descriptor, but was {actual} (service {id})")]
    Type {
        expected: String,
        actual: String,
        id: String,
    },
    #[error("Expected service descriptor from pool {expected}, but was {actual} (service {id})")]
    Pool {
        expected: String,
        actual: String,
        id: String,
    },
    #[error("service id '{id}' is not a UUID")]
    ServiceId { id: String },
}

/// What a lookup asked for, to check its answer against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The client's environment; `None` accepts whatever the server reports.
    pub environment: Option<&'a str>,
    /// Type every service must have; `None` for `GET /v1/service`.
    pub service_type: Option<&'a str>,
    /// Pool every service must have; `None` for all pools.
    pub pool: Option<&'a str>,
}

/// Accepts `set` only if it answers the lookup described by `expected`.
pub fn validate_lookup(set: &ServiceSet, expected: Expected<'_>) -> Result<(), ValidationError> {
    if let Some(environment) = expected.environment {
        if set.environment != environment {
            return Err(ValidationError::Environment {
                expected: environment.to_owned(),
                actual: set.environment.clone(),
            });
        }
    }
    for service in &set.services {
        if !is_service_id(&service.id) {
            return Err(ValidationError::ServiceId {
                id: service.id.chars().take(64).collect(),
            });
        }
        if let Some(service_type) = expected.service_type {
            if service.service_type != service_type {
                return Err(ValidationError::Type {
                    expected: service_type.to_owned(),
                    actual: service.service_type.clone(),
                    id: service.id.clone(),
                });
            }
        }
        if let Some(pool) = expected.pool {
            if service.pool != pool {
                return Err(ValidationError::Pool {
                    expected: pool.to_owned(),
                    actual: service.pool.clone(),
                    id: service.id.clone(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use discovery_types::Service;

    use super::*;

    const ID: &str = "0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01";

    fn service(id: &str, service_type: &str, pool: &str) -> Service {
        Service {
            id: id.into(),
            node_id: Some("n1".into()),
            service_type: service_type.into(),
            pool: pool.into(),
            location: None,
            state: None,
            properties: BTreeMap::new(),
        }
    }

    fn set(environment: &str, services: Vec<Service>) -> ServiceSet {
        ServiceSet {
            environment: environment.into(),
            services,
        }
    }

    const PRESTO_GENERAL: Expected<'static> = Expected {
        environment: Some("prod"),
        service_type: Some("presto"),
        pool: Some("general"),
    };

    #[test]
    fn accepts_a_matching_response_including_an_empty_one() {
        let ok = set("prod", vec![service(ID, "presto", "general")]);
        assert_eq!(validate_lookup(&ok, PRESTO_GENERAL), Ok(()));
        assert_eq!(
            validate_lookup(&set("prod", vec![]), PRESTO_GENERAL),
            Ok(())
        );
    }

    #[test]
    fn refuses_another_environment_with_airlifts_message() {
        let err = validate_lookup(&set("test", vec![]), PRESTO_GENERAL).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Expected environment to be prod, but was test"
        );
        let any_environment = Expected {
            environment: None,
            ..PRESTO_GENERAL
        };
        assert_eq!(
            validate_lookup(&set("test", vec![]), any_environment),
            Ok(())
        );
    }

    #[test]
    fn refuses_the_whole_list_for_one_wrong_type_pool_or_id() {
        let wrong_type = set(
            "prod",
            vec![
                service(ID, "presto", "general"),
                service(ID, "jmx", "general"),
            ],
        );
        assert!(matches!(
            validate_lookup(&wrong_type, PRESTO_GENERAL),
            Err(ValidationError::Type { .. })
        ));
        let wrong_pool = set("prod", vec![service(ID, "presto", "etl")]);
        assert!(matches!(
            validate_lookup(&wrong_pool, PRESTO_GENERAL),
            Err(ValidationError::Pool { .. })
        ));
        let bad_id = set("prod", vec![service("s1", "presto", "general")]);
        assert_eq!(
            validate_lookup(&bad_id, PRESTO_GENERAL),
            Err(ValidationError::ServiceId { id: "s1".into() })
        );
    }

    #[test]
    fn type_only_and_all_lookups_check_only_what_was_asked() {
        let mixed = set(
            "prod",
            vec![
                service(ID, "presto", "general"),
                service(ID, "presto", "etl"),
            ],
        );
        let any_pool = Expected {
            pool: None,
            ..PRESTO_GENERAL
        };
        assert_eq!(validate_lookup(&mixed, any_pool), Ok(()));
        let everything = Expected {
            environment: Some("prod"),
            service_type: None,
            pool: None,
        };
        let types = set("prod", vec![service(ID, "jmx", "x")]);
        assert_eq!(validate_lookup(&types, everything), Ok(()));
    }
}
