//! A real etcd (Debian's `etcd-server`, 3.4) on loopback with a temporary data directory,
//! driven through its v3 HTTP/JSON gateway (grpc-gateway in front of its gRPC API).

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A running etcd; killed (and its data directory removed) when dropped.
pub struct EtcdProcess {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    version: String,
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `etcd` on the PATH, or Debian's location.
pub fn find_etcd(explicit: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("etcd"))
        .find(|path| path.is_file())
}

impl EtcdProcess {
    /// Starts etcd on two free loopback ports and waits until `/health` says it is healthy.
    pub async fn start(binary: &Path) -> anyhow::Result<Self> {
        let version = Command::new(binary)
            .arg("--version")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.lines().next().map(|l| l.trim().to_owned()))
            .unwrap_or_else(|| "etcd (version unknown)".into());
        let dir = tempfile::Builder::new().prefix("bench-etcd-").tempdir()?;
        let (client, peer) = (free_port()?, free_port()?);
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = File::create(dir.path().join("etcd.log"))?;
        let child = Command::new(binary)
            .args(["--name", "bench", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("bench={peer_url}")])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut etcd = EtcdProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], client)),
            dir,
            version,
        };
        etcd.wait_healthy().await?;
        Ok(etcd)
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().no_proxy().build()?;
        let url = format!("http://{}/health", self.addr);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("etcd exited with {status}:\n{}", self.log_tail());
            }
            if let Ok(response) = client.get(&url).send().await {
                if let Ok(text) = response.text().await {
                    if text.contains("\"health\":\"true\"") {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                bail!("etcd not healthy within 30 s:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of etcd's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn version(&self) -> &str {
        &self.version
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
