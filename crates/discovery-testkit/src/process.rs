//! Real `discoveryd` processes for end-to-end tests.
//!
//! Each process binds port 0 on a loopback address, so parallel tests never collide; the
//! harness learns the ports from the "listening on http://…" and "listening on https://…"
//! log lines (one per listener: plain HTTP unless `http-server.http.enabled=false`, HTTPS
//! when `http-server.https.enabled=true`, as the options' `--set`s say). stdout (the
//! log) is captured and printed when a test fails, via [`DiscoveryProcess::logs`].

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::values::ENVIRONMENT;

/// The path of the `discoveryd` binary, for the suites of the root package.
///
/// Cargo tells only the integration tests of the package that owns the binary where it
/// built it, in `CARGO_BIN_EXE_discoveryd` at compile time. A function of this crate
/// would be compiled without that variable, so this is a macro: it expands in the test's
/// own crate, and every suite names the binary the same way.
#[macro_export]
macro_rules! discoveryd {
    () => {
        env!("CARGO_BIN_EXE_discoveryd")
    };
}

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const LOG_LINE_TIMEOUT: Duration = Duration::from_secs(30);
const LISTENING: &str = "discoveryd listening on http://";
const LISTENING_TLS: &str = "discoveryd listening on https://";

/// How to start a process.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// The `discoveryd` binary ([`discoveryd!`](crate::discoveryd) in the root package).
    pub binary: PathBuf,
    /// Data directory (`store.data-dir`); reuse it to restart "the same" node.
    pub data_dir: PathBuf,
    /// Loopback address to bind.
    pub bind_ip: String,
    /// Port; 0 for any free one.
    pub port: u16,
    /// Extra `--set KEY=VALUE` overrides, applied after the test defaults.
    pub settings: Vec<(String, String)>,
    /// Extra command-line arguments (e.g. `--config FILE`).
    pub args: Vec<String>,
    /// Extra environment variables (e.g. libfaketime's, for a node with a wrong clock).
    pub env: Vec<(String, String)>,
}

impl ProcessOptions {
    /// Test defaults: environment `testing`, 127.0.0.1, any free port, request logging on,
    /// no readiness warm-up.
    pub fn new(binary: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        ProcessOptions {
            binary: binary.into(),
            data_dir: data_dir.into(),
            bind_ip: "127.0.0.1".into(),
            port: 0,
            settings: vec![
                ("node.environment".into(), ENVIRONMENT.into()),
                ("log.level".into(), "info,discovery::request=debug".into()),
                // Tests look up right after start; readiness has tests of its own.
                ("readiness.warm-up".into(), "0s".into()),
                ("readiness.max-wait".into(), "0s".into()),
            ],
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Adds or replaces one `--set` override.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.settings.retain(|(k, _)| k != key);
        self.settings.push((key.into(), value.into()));
        self
    }

    /// The value of a `--set` override, if there is one.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the process serves plain HTTP (unless `http-server.http.enabled=false`).
    pub fn serves_http(&self) -> bool {
        self.setting("http-server.http.enabled") != Some("false")
    }

    /// Whether the process serves HTTPS (`http-server.https.enabled=true`).
    pub fn serves_https(&self) -> bool {
        self.setting("http-server.https.enabled") == Some("true")
    }
}

/// Which listener a "listening on" line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// A running `discoveryd`. Dropping it kills the process (SIGKILL).
pub struct DiscoveryProcess {
    options: ProcessOptions,
    child: Child,
    /// The plain HTTP address, or the HTTPS one when plain HTTP is off.
    addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    https_addr: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
}

impl DiscoveryProcess {
    /// Starts a process and waits until each of its listeners listens.
    pub fn start(options: ProcessOptions) -> anyhow::Result<Self> {
        let mut command = Command::new(&options.binary);
        command
            .args(&options.args)
            .arg("--set")
            .arg(format!("store.data-dir={}", options.data_dir.display()))
            .arg("--set")
            .arg(format!("node.bind-ip={}", options.bind_ip))
            .arg("--set")
            .arg(format!("http-server.http.port={}", options.port))
            .env_remove("RUST_LOG")
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &options.settings {
            command.arg("--set").arg(format!("{key}={value}"));
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", options.binary.display()))?;
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        spawn_reader(stdout, Arc::clone(&log), Some(addr_tx));
        spawn_reader(stderr, Arc::clone(&log), None);

        let deadline = Instant::now() + START_TIMEOUT;
        let (mut http_addr, mut https_addr) = (None, None);
        let addr = loop {
            let http_done = http_addr.is_some() || !options.serves_http();
            let https_done = https_addr.is_some() || !options.serves_https();
            if http_done && https_done {
                if let Some(addr) = http_addr.or(https_addr) {
                    break addr;
                }
            }
            match addr_rx.recv_timeout(Duration::from_millis(50)) {
                Ok((Scheme::Http, addr)) => http_addr = Some(addr),
                Ok((Scheme::Https, addr)) => https_addr = Some(addr),
                Err(_) => {
                    if let Some(status) = child.try_wait()? {
                        bail!(
                            "discoveryd exited with {status} before listening:\n{}",
                            lock(&log)
                        );
                    }
                    if Instant::now() >= deadline {
                        let _ = child.kill();
                        bail!(
                            "discoveryd did not listen within {START_TIMEOUT:?}:\n{}",
                            lock(&log)
                        );
                    }
                }
            }
        };
        Ok(DiscoveryProcess {
            options,
            child,
            addr,
            http_addr,
            https_addr,
            log,
        })
    }

    /// Starts the same node again (same options, same data directory) after it stopped.
    /// The port is chosen anew unless the options fixed one.
    pub fn restart(self) -> anyhow::Result<Self> {
        let options = self.options.clone();
        drop(self);
        Self::start(options)
    }

    /// The plain HTTP address, or the HTTPS one when plain HTTP is off.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The plain HTTP address; `None` with `http-server.http.enabled=false`.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The HTTPS address; `None` unless `http-server.https.enabled=true`.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// `http://ip:port` of this process (`https://` when plain HTTP is off).
    pub fn base_url(&self) -> String {
        match self.http_addr {
            Some(addr) => format!("http://{addr}"),
            None => format!("https://{}", self.addr),
        }
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// `https://ip:port` + `path`. Panics when the process serves no HTTPS.
    pub fn https_url(&self, path: &str) -> String {
        match self.https_addr {
            Some(addr) => format!("https://{addr}{path}"),
            None => {
                panic!("this discoveryd serves no HTTPS (http-server.https.enabled is not true)")
            }
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.options.data_dir
    }

    pub fn options(&self) -> &ProcessOptions {
        &self.options
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process has logged so far.
    pub fn logs(&self) -> String {
        lock(&self.log)
    }

    /// Waits until the log holds a line containing `needle` and returns that line. The
    /// log is copied from the process's output by a reader thread, so a line the process
    /// wrote after "listening on" can trail [`DiscoveryProcess::start`] a little.
    pub async fn log_line(&self, needle: &str) -> String {
        crate::eventually(
            LOG_LINE_TIMEOUT,
            &format!("a log line containing {needle:?}"),
            || async {
                let logs = self.logs();
                match logs.lines().find(|line| line.contains(needle)) {
                    Some(line) => Ok(line.to_owned()),
                    None => Err(format!("not in the log:\n{logs}")),
                }
            },
        )
        .await
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        self.wait_exit()
    }

    /// Sends SIGKILL (`kill -9`) and waits for the process to be gone.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        self.child.kill().context("cannot SIGKILL")?;
        self.wait_exit()
    }

    fn wait_exit(&mut self) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(anyhow!("process did not exit within {STOP_TIMEOUT:?}"));
            }
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }
}

impl Drop for DiscoveryProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn lock(log: &Mutex<String>) -> String {
    log.lock().map(|l| l.clone()).unwrap_or_default()
}

/// Copies lines into the shared log; the first "listening on" line of each scheme
/// then reports that listener's address.
fn spawn_reader(
    stream: impl std::io::Read + Send + 'static,
    log: Arc<Mutex<String>>,
    addr_tx: Option<mpsc::Sender<(Scheme, SocketAddr)>>,
) {
    std::thread::spawn(move || {
        let mut reported = Vec::new();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            // Into the log first: whoever learns of a listener from this thread must
            // find every line up to that "listening on" in the log already.
            if let Ok(mut log) = log.lock() {
                log.push_str(&line);
                log.push('\n');
            }
            if let Some(tx) = &addr_tx {
                let found = match listening_addr(&line) {
                    Some(addr) => Some((Scheme::Http, addr)),
                    None => listening_tls_addr(&line).map(|addr| (Scheme::Https, addr)),
                };
                if let Some((scheme, addr)) = found {
                    if !reported.contains(&scheme) {
                        reported.push(scheme);
                        let _ = tx.send((scheme, addr));
                    }
                }
            }
        }
    });
}

fn listening_addr(line: &str) -> Option<SocketAddr> {
    addr_after(line, LISTENING)
}

fn listening_tls_addr(line: &str) -> Option<SocketAddr> {
    addr_after(line, LISTENING_TLS)
}

fn addr_after(line: &str, prefix: &str) -> Option<SocketAddr> {
    let start = line.find(prefix)? + prefix.len();
    line[start..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_the_log_line() {
        let line = "2026-11-22T04:00:38Z  INFO discoveryd: discoveryd listening on http://127.0.0.1:39581 node_id=x";
        assert_eq!(
            listening_addr(line),
            Some("127.0.0.1:39581".parse().unwrap())
        );
        assert_eq!(listening_addr("nothing here"), None);
        let tls = "2026-11-22T04:00:38Z  INFO discoveryd: discoveryd listening on https://127.0.0.1:39582 node_id=x";
        assert_eq!(listening_addr(tls), None);
        assert_eq!(
            listening_tls_addr(tls),
            Some("127.0.0.1:39582".parse().unwrap())
        );
        assert_eq!(listening_tls_addr(line), None);
    }
}
