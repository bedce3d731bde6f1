//! The Kubernetes manifests of `deploy/kubernetes/`, checked without a cluster (none is
//! available here): every YAML document parses, the expected kinds are there and fit
//! together (selectors, the headless Service the StatefulSet names, volumes, probes), and
//! the ConfigMap's `config.properties` is accepted by the real `discoveryd`
//! (`--strict-config`, so a misspelt key fails too), which then answers on the paths the
//! probes use.

use std::collections::BTreeMap;
use std::path::PathBuf;

use discovery_testkit::{discoveryd, eventually, DiscoveryProcess, ProcessOptions};
use serde::Deserialize;
use serde_norway::Value;

use crate::support::{repo_root, DEADLINE};

/// Every document of every `deploy/kubernetes/*.yaml`, with the file it came from.
fn documents() -> Vec<(String, Value)> {
    let dir = repo_root().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
            if !value.is_null() {
                docs.push((name.clone(), value));
            }
        }
    }
    docs
}

fn text<'v>(value: &'v Value, what: &str) -> &'v str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

/// The one object of `kind` named `name` (or the only one of its kind).
fn object<'d>(docs: &'d [(String, Value)], kind: &str, name: Option<&str>) -> &'d Value {
    let found: Vec<&Value> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d["kind"] == kind)
        .filter(|d| name.is_none_or(|n| d["metadata"]["name"] == n))
        .collect();
    assert_eq!(found.len(), 1, "{kind} {name:?}: {found:?}");
    found[0]
}

fn labels(value: &Value) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (text(k, "label").to_owned(), text(v, "label").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `selector` (label → value) selects pods labelled `pod`.
fn selects(selector: &BTreeMap<String, String>, pod: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

#[test]
fn the_manifests_parse_and_fit_together() {
    let docs = documents();
    let mut kinds: Vec<&str> = docs.iter().map(|(_, d)| text(&d["kind"], "kind")).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Namespace",
            "PodDisruptionBudget",
            "Service",
            "Service",
            "StatefulSet"
        ]
    );
    let namespace = text(
        &object(&docs, "Namespace", None)["metadata"]["name"],
        "namespace",
    );
    for (file, doc) in &docs {
        assert!(doc["apiVersion"].is_string(), "{file}: no apiVersion");
        assert!(doc["metadata"]["name"].is_string(), "{file}: no name");
        if doc["kind"] != "Namespace" {
            assert_eq!(doc["metadata"]["namespace"], namespace, "{file}");
        }
    }

    let set = object(&docs, "StatefulSet", None);
    let spec = &set["spec"];
    assert_eq!(spec["replicas"].as_u64(), Some(3));
    let pod_labels = labels(&spec["template"]["metadata"]["labels"]);
    assert!(selects(
        &labels(&spec["selector"]["matchLabels"]),
        &pod_labels
    ));

    // The headless Service: named by the StatefulSet, lists pods that are not ready yet
    // (peers find each other while warming up), and is the name of the dns: inventory.
    let headless_name = text(&spec["serviceName"], "serviceName");
    let headless = object(&docs, "Service", Some(headless_name));
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    assert!(selects(&labels(&headless["spec"]["selector"]), &pod_labels));
    let client = docs
        .iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"] == "Service" && d["metadata"]["name"] != headless_name)
        .expect("a client Service");
    assert_ne!(client["spec"]["clusterIP"], "None");
    assert_ne!(
        client["spec"]["publishNotReadyAddresses"], true,
        "clients must reach ready pods only"
    );
    assert!(selects(&labels(&client["spec"]["selector"]), &pod_labels));

    let pod = &spec["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    // Shutdown: 10 s request drain + 5 s replication drain + 10 s flush, at most.
    assert!(grace > 25, "terminationGracePeriodSeconds {grace}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let containers = pod["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|a| text(a, "arg"))
        .collect();
    assert!(args.contains(&"node.id=$(POD_NAME)"), "{args:?}");
    let pod_name = container["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "POD_NAME")
        .expect("POD_NAME");
    assert_eq!(
        pod_name["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    let port = container["ports"][0]["containerPort"].as_u64();
    assert_eq!(port, Some(8411));

    // Every claim template and every volume is mounted.
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .map(|m| text(&m["name"], "mount name"))
        .collect();
    let claims = spec["volumeClaimTemplates"].as_sequence().expect("claims");
    assert!(!claims.is_empty());
    for volume in claims.iter().map(|c| &c["metadata"]["name"]).chain(
        pod["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .map(|v| &v["name"]),
    ) {
        assert!(
            mounts.contains(&text(volume, "volume name")),
            "{volume:?} not mounted"
        );
    }
    let config_volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["configMap"].is_mapping())
        .expect("a ConfigMap volume");
    object(
        &docs,
        "ConfigMap",
        Some(text(&config_volume["configMap"]["name"], "ConfigMap name")),
    );

    let budget = object(&docs, "PodDisruptionBudget", None);
    assert_eq!(budget["spec"]["maxUnavailable"].as_u64(), Some(1));
    assert!(selects(
        &labels(&budget["spec"]["selector"]["matchLabels"]),
        &pod_labels
    ));
}

/// The probe path of `probe` in the StatefulSet's container.
fn probe_path(docs: &[(String, Value)], probe: &str) -> String {
    let set = object(docs, "StatefulSet", None);
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    text(&container[probe]["httpGet"]["path"], probe).to_owned()
}

/// The ConfigMap's config.properties starts a real node (only bind address, port and
/// data directory overridden, as the pod's own are not usable here, and node.id as the
/// StatefulSet passes it), whose probe paths answer 200 once it is ready.
#[tokio::test(flavor = "multi_thread")]
async fn the_configmap_starts_a_real_node_that_answers_the_probes() {
    let docs = documents();
    let config = object(&docs, "ConfigMap", None);
    let properties = text(&config["data"]["config.properties"], "config.properties");
    let uri_line = properties
        .lines()
        .find(|l| l.starts_with("service-inventory.uri="))
        .expect("a service-inventory.uri");
    let headless = text(
        &object(&docs, "StatefulSet", None)["spec"]["serviceName"],
        "serviceName",
    );
    assert!(
        uri_line.starts_with(&format!("service-inventory.uri=dns:{headless}.")),
        "{uri_line}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.properties");
    std::fs::write(&file, properties).unwrap();
    let mut options = ProcessOptions::new(discoveryd!(), dir.path().join("data"));
    // Nothing but what the pod would get besides the file: no test defaults.
    options.settings.clear();
    options
        .settings
        .push(("node.id".into(), "discovery-0".into()));
    options.args = vec![
        "--strict-config".into(),
        "--config".into(),
        file.display().to_string(),
    ];
    let node = DiscoveryProcess::start(options).expect("the ConfigMap's configuration starts");
    let client = discovery_testkit::http::http_client(std::time::Duration::from_secs(5));

    // The dns: name does not resolve here: the node runs without peers, and, like a
    // standalone node, is ready after its warm-up.
    for path in [
        probe_path(&docs, "livenessProbe"),
        probe_path(&docs, "readinessProbe"),
    ] {
        let url = node.url(&path);
        eventually(DEADLINE, &format!("200 from {path}"), || async {
            let status = client
                .get(&url)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .status();
            match status.as_u16() {
                200 => Ok(()),
                other => Err(format!("{other}\n{}", node.logs())),
            }
        })
        .await;
    }
    let status: serde_json::Value = client
        .get(node.url("/v1/replication/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["nodeId"], "discovery-0");
    assert_eq!(
        status["inventory"].as_str(),
        uri_line.strip_prefix("service-inventory.uri=")
    );
}
