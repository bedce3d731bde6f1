//! `deploy/local-cluster.sh` end to end: three real nodes from a test inventory (free
//! ports on 127.0.0.1) behind a real nginx on a free port, state in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use discovery_testkit::eventually;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::process::Command;

use discovery_testkit::announcements::{announcement_in, service};
use discovery_testkit::ports::free_ports;
use discovery_testkit::{discoveryd, new_id};

use crate::support::{
    discovery_cli, get_status, http_client, nginx, process_gone, repo_root, run, signal, Ran,
    DEADLINE,
};

const ENVIRONMENT: &str = "deploytest";

/// A cluster directory and the inventory it is started from.
struct LocalCluster {
    dir: TempDir,
    inventory: PathBuf,
    node_ports: Vec<u16>,
    nginx_port: u16,
    h2c_port: u16,
    nginx: Option<PathBuf>,
}

impl LocalCluster {
    fn new(nginx: Option<PathBuf>) -> LocalCluster {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports("127.0.0.1", 5);
        let (node_ports, nginx_port, h2c_port) = (ports[..3].to_vec(), ports[3], ports[4]);
        let services: Vec<Value> = node_ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                json!({
                    "id": new_id(),
                    "nodeId": format!("node-{}", i + 1),
                    "type": "discovery",
                    "pool": "general",
                    "location": format!("/test/node-{}", i + 1),
                    "state": "RUNNING",
                    "properties": {"http": format!("http://127.0.0.1:{port}")},
                })
            })
            .collect();
        let inventory = dir.path().join("inventory.json");
        fs::write(
            &inventory,
            serde_json::to_string_pretty(
                &json!({"environment": ENVIRONMENT, "services": services}),
            )
            .unwrap(),
        )
        .unwrap();
        LocalCluster {
            dir,
            inventory,
            node_ports,
            nginx_port,
            h2c_port,
            nginx,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("cluster")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(repo_root().join("deploy/local-cluster.sh"));
        command
            .args(args)
            .arg("--dir")
            .arg(self.state())
            .arg("--inventory")
            .arg(&self.inventory)
            .arg("--nginx-port")
            .arg(self.nginx_port.to_string())
            .arg("--nginx-h2c-port")
            .arg(self.h2c_port.to_string())
            .args(["--set", "readiness.warm-up=0s", "--timeout", "45"])
            .args(["--stop-timeout", "20"])
            .env("DISCOVERYD", discoveryd!())
            .env("DISCOVERY_CLI", discovery_cli())
            .env_remove("DISCOVERY_CLUSTER_DIR")
            .env_remove("DISCOVERY_INVENTORY")
            .env_remove("DISCOVERY_NGINX_PORT")
            .env_remove("DISCOVERY_NGINX_H2C_PORT")
            .current_dir(std::env::temp_dir());
        match &self.nginx {
            Some(nginx) => command.env("NGINX", nginx),
            None => command.env_remove("NGINX"),
        };
        command
    }

    async fn script(&self, args: &[&str]) -> Ran {
        run(&mut self.command(args)).await
    }

    fn pid(&self, name: &str) -> u32 {
        let file = if name == "nginx" {
            self.state().join("nginx/launcher.pid")
        } else {
            self.state().join(name).join("discoveryd.pid")
        };
        fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .parse()
            .unwrap()
    }

    fn nginx_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.nginx_port)
    }

    fn node_url(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.node_ports[i])
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for name in ["node-1", "node-2", "node-3"] {
            let file = self.state().join(name).join("discoveryd.log");
            all.push_str(&format!("--- {}:\n", file.display()));
            all.push_str(&fs::read_to_string(&file).unwrap_or_default());
        }
        let file = self.state().join("nginx/error.log");
        all.push_str(&format!("--- {}:\n", file.display()));
        all.push_str(&fs::read_to_string(&file).unwrap_or_default());
        all
    }
}

impl Drop for LocalCluster {
    /// A failed test must not leave processes behind: resume anything stopped, then stop
    /// the cluster with the script itself.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        if self.state().join("nodes.tsv").exists() {
            for name in ["node-1", "node-2", "node-3"] {
                let file = self.state().join(name).join("discoveryd.pid");
                if let Ok(pid) = fs::read_to_string(file) {
                    let _ = std::process::Command::new("kill")
                        .args(["-CONT", pid.trim()])
                        .status();
                }
            }
            let _ = std::process::Command::new(repo_root().join("deploy/local-cluster.sh"))
                .args(["stop", "--stop-timeout", "5", "--dir"])
                .arg(self.state())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .status();
        }
    }
}

fn announcement(service_id: &str) -> Value {
    announcement_in(
        ENVIRONMENT,
        "general",
        "/deploy-test/worker-1",
        vec![service(
            service_id,
            "presto-coordinator",
            json!({"http": "http://10.9.8.7:8080"}),
        )],
    )
}

/// Every line of `template` except the upstream `server` lines and the `listen` line
/// appears, in order, in `generated`.
fn assert_same_proxy_settings(template: &Path, generated: &Path) {
    let template = fs::read_to_string(template).unwrap();
    let generated = fs::read_to_string(generated).unwrap();
    let mut rest = generated.as_str();
    for line in template.lines().map(str::trim) {
        let varies = line.starts_with("server ") && !line.starts_with("server {")
            || line.starts_with("listen ");
        if line.is_empty() || varies {
            continue;
        }
        match rest.find(line) {
            Some(at) => rest = &rest[at + line.len()..],
            None => panic!("generated nginx config lacks {line:?} (in order):\n{generated}"),
        }
    }
}

#[tokio::test]
async fn start_status_announce_through_nginx_stop() {
    let nginx = nginx().to_path_buf();
    let cluster = LocalCluster::new(Some(nginx));
    let client = http_client();

    let started = cluster.script(&["start"]).await.expect_code(0);
    assert!(
        started
            .stdout
            .contains(&format!("discovery.uri={}", cluster.nginx_url(""))),
        "start prints what to give Presto/Trino: {started:?}"
    );
    assert!(started.stdout.contains(ENVIRONMENT), "{started:?}");

    // Everything is ready when start returns.
    let status = cluster.script(&["status"]).await.expect_code(0);
    for name in ["node-1", "node-2", "node-3", "nginx"] {
        let pid = cluster.pid(name);
        assert!(
            status
                .stdout
                .lines()
                .any(|l| l.starts_with(name) && l.contains(&pid.to_string())),
            "status shows {name} with its pid {pid}: {status:?}"
        );
    }
    for i in 0..3 {
        assert_eq!(
            get_status(&client, &cluster.node_url(i, "/v1/health/ready")).await,
            Ok(200)
        );
    }
    assert_same_proxy_settings(
        &repo_root().join("deploy/nginx/discovery.conf"),
        &cluster.state().join("nginx/discovery.conf"),
    );

    // A second start leaves the running cluster alone.
    let pids_before: Vec<u32> = ["node-1", "node-2", "node-3", "nginx"]
        .iter()
        .map(|n| cluster.pid(n))
        .collect();
    cluster
        .script(&["start"])
        .await
        .expect_code(0)
        .expect_stdout("already running");
    let pids_after: Vec<u32> = ["node-1", "node-2", "node-3", "nginx"]
        .iter()
        .map(|n| cluster.pid(n))
        .collect();
    assert_eq!(pids_before, pids_after);

    // An announcement through nginx reaches every node.
    let service_id = new_id();
    let response = client
        .put(cluster.nginx_url("/v1/announcement/worker-1"))
        .json(&announcement(&service_id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    for i in 0..3 {
        let url = cluster.node_url(i, "/v1/service/presto-coordinator/general");
        let client = &client;
        let service_id = &service_id;
        eventually(DEADLINE, "the announcement on every node", || {
            let url = url.clone();
            async move {
                let body: Value = client
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                let ids: Vec<&str> = body["services"]
                    .as_array()
                    .map(|s| s.iter().filter_map(|s| s["id"].as_str()).collect())
                    .unwrap_or_default();
                if ids.contains(&service_id.as_str()) {
                    Ok(())
                } else {
                    Err(format!("{url}: {body}"))
                }
            }
        })
        .await;
    }

    // A hung node (stopped, its port still accepting connections) is skipped by nginx:
    // every lookup through nginx still succeeds.
    let hung = cluster.pid("node-2");
    signal(hung, "STOP");
    for _ in 0..6 {
        let status = get_status(
            &client,
            &cluster.nginx_url("/v1/service/presto-coordinator/general"),
        )
        .await;
        assert_eq!(status, Ok(200), "lookup through nginx with node-2 hung");
    }
    signal(hung, "CONT");

    let stopped = cluster.script(&["stop"]).await.expect_code(0);
    for (name, pid) in ["node-1", "node-2", "node-3", "nginx"]
        .iter()
        .zip(&pids_before)
    {
        assert!(
            stopped
                .stdout
                .contains(&format!("stopped {name} (pid {pid})")),
            "{stopped:?}"
        );
        assert!(process_gone(*pid), "{name} (pid {pid}) is gone after stop");
    }
    for i in 0..3 {
        let log = fs::read_to_string(
            cluster
                .state()
                .join(format!("node-{}", i + 1))
                .join("discoveryd.log"),
        )
        .unwrap();
        assert!(
            log.contains("shutdown complete"),
            "node-{} stopped cleanly: {log}",
            i + 1
        );
    }
    let status = cluster.script(&["status"]).await;
    assert_ne!(status.code, Some(0), "status after stop: {status:?}");
    assert!(get_status(&client, &cluster.nginx_url("/v1/health/live"))
        .await
        .is_err());
}

#[tokio::test]
async fn start_without_nginx_says_how_to_install_it_and_starts_nothing() {
    let cluster = LocalCluster::new(Some(PathBuf::from("/nonexistent/sbin/nginx")));
    let failed = cluster.script(&["start"]).await;
    assert_eq!(failed.code, Some(1), "{failed:?}");
    assert!(
        failed.stderr.contains("apt-get install -y nginx"),
        "{failed:?}"
    );
    assert!(
        !cluster.state().join("node-1/discoveryd.pid").exists(),
        "no node is started without nginx"
    );
    let status = cluster.script(&["status"]).await;
    assert_eq!(status.code, Some(3), "{status:?}");
}
