//! The repository's documentation and example files agree with the code.

// Test code: a failed unwrap is a failed test, which is what we want.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use discovery_server::config::KEYS;
use discovery_server::Settings;
use discovery_types::ServiceSet;

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

#[test]
fn the_readme_documents_every_configuration_key() {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    for key in KEYS {
        assert!(
            readme.contains(&format!("`{}`", key.name)),
            "README.md does not document {}",
            key.name
        );
    }
}

#[test]
fn the_example_etc_directory_loads_without_warnings() {
    let loaded = Settings::load(Some(&repo_file("deploy/etc/config.properties")), &[]).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.settings.node_id.as_deref(), Some("disc-1"));
    assert_eq!(loaded.settings.environment, "test");
}

#[test]
fn the_service_inventory_lists_three_distinct_discovery_nodes() {
    let text = std::fs::read_to_string(repo_file("service-inventory.json")).unwrap();
    let inventory: ServiceSet = serde_json::from_str(&text).unwrap();
    let nodes: BTreeSet<_> = inventory
        .services
        .iter()
        .filter(|s| s.service_type == "discovery")
        .map(|s| {
            assert!(discovery_types::is_service_id(&s.id));
            assert!(s.properties.contains_key("http"));
            s.node_id.clone().unwrap()
        })
        .collect();
    assert_eq!(nodes.len(), 3);
}
