//! The rule for a service value that arrives already encoded (a `/v1/store` batch, a
//! peer's push, an entry fetched in anti-entropy): it must be something the announcement
//! API itself could have stored. Without this, a raw entry is a back door around every
//! check of `PUT /v1/announcement` — a key that is not the value's node id, a type of
//! 10 kB, 2,000 services — and anything it lets in spreads to every replica.

use crate::announcement::validate_node_id;
use crate::limits::{
    MAX_LOCATION_BYTES, MAX_NAME_BYTES, MAX_PROPERTIES_PER_SERVICE, MAX_SERVICES_PER_ANNOUNCEMENT,
};
use crate::service::{is_service_id, Service};

/// The services of one node, stored under the key `node_id` in the `dynamic` store: what
/// `PUT /v1/announcement/{node_id}` stores.
pub fn check_node_services(node_id: &str, services: &[Service]) -> Result<(), String> {
    validate_node_id(node_id).map_err(|e| e.to_string())?;
    if services.len() > MAX_SERVICES_PER_ANNOUNCEMENT {
        return Err(format!(
            "holds {} services; at most {MAX_SERVICES_PER_ANNOUNCEMENT} are allowed",
            services.len()
        ));
    }
    for (index, service) in services.iter().enumerate() {
        let at = |problem: String| format!("services[{index}]: {problem}");
        check_service(service).map_err(at)?;
        if service.node_id.as_deref() != Some(node_id) {
            return Err(at(format!(
                "nodeId {:?} is not the entry's key '{node_id}'",
                service.node_id.as_deref().unwrap_or("(none)")
            )));
        }
        let other = services[..index]
            .iter()
            .any(|earlier| earlier.id == service.id);
        if other {
            return Err(at(format!("repeats the service id {}", service.id)));
        }
    }
    Ok(())
}

/// One static service, stored under its own id in the `static` store: what
/// `POST /v1/announcement/static` stores.
pub fn check_static_service(key: &str, service: &Service) -> Result<(), String> {
    check_service(service)?;
    if service.id != key {
        return Err(format!(
            "service id {} is not the entry's key '{key}'",
            service.id
        ));
    }
    if service.node_id.is_some() {
        return Err("a static service belongs to no node (nodeId must be absent)".into());
    }
    Ok(())
}

/// The bounds of the announcement API on one service.
fn check_service(service: &Service) -> Result<(), String> {
    if !is_service_id(&service.id) {
        return Err(format!("service id '{}' is not a UUID", service.id));
    }
    check_name("type", &service.service_type)?;
    check_name("pool", &service.pool)?;
    if let Some(location) = &service.location {
        if location.len() > MAX_LOCATION_BYTES {
            return Err(format!(
                "location must be at most {MAX_LOCATION_BYTES} bytes"
            ));
        }
    }
    if service.properties.len() > MAX_PROPERTIES_PER_SERVICE {
        return Err(format!(
            "properties must hold at most {MAX_PROPERTIES_PER_SERVICE} entries"
        ));
    }
    if service
        .properties
        .keys()
        .any(|name| name.is_empty() || name.len() > MAX_NAME_BYTES)
    {
        return Err(format!(
            "property names must be 1 to {MAX_NAME_BYTES} bytes long"
        ));
    }
    Ok(())
}

fn check_name(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_NAME_BYTES {
        return Err(format!("{field} must be 1 to {MAX_NAME_BYTES} bytes long"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const U1: &str = "0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a01";
    const U2: &str = "0b6c6a2e-3f5e-4a43-9d2e-6f3a3f0f6a02";

    fn service(id: &str, node_id: Option<&str>) -> Service {
        Service {
            id: id.into(),
            node_id: node_id.map(str::to_owned),
            service_type: "trino".into(),
            pool: "general".into(),
            location: Some("/n1".into()),
            state: None,
            properties: BTreeMap::from([("http".into(), "http://h:1".into())]),
        }
    }

    #[test]
    fn a_node_entry_holds_only_that_nodes_services() {
        assert_eq!(
            check_node_services("n1", &[service(U1, Some("n1"))]),
            Ok(())
        );
        assert_eq!(
            check_node_services("n1", &[]),
            Ok(()),
            "an empty announcement"
        );
        let forged = check_node_services("n0", &[service(U1, Some("n1"))]).unwrap_err();
        assert!(forged.contains("is not the entry's key"), "{forged}");
        assert!(check_node_services("n1", &[service(U1, None)]).is_err());
        let twice = [service(U1, Some("n1")), service(U1, Some("n1"))];
        assert!(check_node_services("n1", &twice)
            .unwrap_err()
            .contains("repeats"));
        assert!(check_node_services("..", &[]).is_err(), "not a node id");
    }

    #[test]
    fn the_announcement_apis_bounds_hold() {
        let mut empty_type = service(U1, Some("n1"));
        empty_type.service_type.clear();
        let mut long_pool = service(U1, Some("n1"));
        long_pool.pool = "p".repeat(MAX_NAME_BYTES + 1);
        let mut long_location = service(U1, Some("n1"));
        long_location.location = Some("/".repeat(MAX_LOCATION_BYTES + 1));
        let mut many_properties = service(U1, Some("n1"));
        many_properties.properties = (0..=MAX_PROPERTIES_PER_SERVICE)
            .map(|i| (format!("p{i}"), String::new()))
            .collect();
        let mut not_a_uuid = service(U1, Some("n1"));
        not_a_uuid.id = "u1".into();
        for bad in [
            empty_type,
            long_pool,
            long_location,
            many_properties,
            not_a_uuid,
        ] {
            assert!(
                check_node_services("n1", std::slice::from_ref(&bad)).is_err(),
                "{bad:?}"
            );
        }
        let too_many: Vec<Service> = (0..=MAX_SERVICES_PER_ANNOUNCEMENT)
            .map(|i| service(&format!("0b6c6a2e-3f5e-4a43-9d2e-{i:012x}"), Some("n1")))
            .collect();
        assert!(check_node_services("n1", &too_many).is_err());
    }

    #[test]
    fn a_static_entry_is_keyed_by_its_own_id_and_belongs_to_no_node() {
        assert_eq!(check_static_service(U1, &service(U1, None)), Ok(()));
        assert!(check_static_service(U2, &service(U1, None))
            .unwrap_err()
            .contains("is not the entry's key"));
        assert!(check_static_service(U1, &service(U1, Some("n1"))).is_err());
    }
}
