//! A real headless Chromium for the tests of what people see (the status page `/ui/`),
//! driven over WebDriver: `chromedriver` runs as a child process and [`fantoccini`]
//! talks to it. Rendering, the page's inline script, its Content-Security-Policy and its
//! self-refresh can only be checked by a browser; an HTTP client sees the HTML only.
//!
//! The binaries are Debian's (`apt-get install chromium chromium-driver`), or whatever
//! the `CHROMIUM` and `CHROMEDRIVER` environment variables name. A missing binary is an
//! error that says how to install it: the tests that need a browser fail, never skip.
//!
//! `chromedriver --port=0` picks a free port on loopback and prints it ("… started
//! successfully on port N."). It runs in a process group of its own and Chromium, which it
//! starts, inherits that group: dropping the [`Browser`] kills the whole group, so no
//! Chromium outlives a test, even one that panicked (killing chromedriver alone would
//! leave Chromium running). Every WebDriver command is bounded in time; the profile is a
//! fresh temporary directory.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::time::Instant;

pub use fantoccini;

/// The Chromium binary when `CHROMIUM` is not set (Debian's package `chromium`).
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// The chromedriver binary when `CHROMEDRIVER` is not set (Debian's `chromium-driver`).
pub const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long chromedriver may take to listen, and Chromium to open a session.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one WebDriver command (a navigation, a script, a screenshot) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two looks at the page while waiting for something to appear.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const LISTENING: &str = "started successfully on port ";

/// The switches Chromium runs with: headless, no sandbox (tests run as root in CI), and
/// nothing that would reach beyond this machine (no updates, sync, QUIC or proxy).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--hide-scrollbars",
];

/// A headless Chromium with one WebDriver session. Dropping it ends chromedriver and
/// Chromium; [`Browser::close`] also ends the session politely first.
pub struct Browser {
    // Field order matters: the processes are killed before the profile is removed.
    client: Client,
    driver: Driver,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver and a Chromium session whose window shows `width` × `height`
    /// pixels of page.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Browser> {
        let chromium = binary("CHROMIUM", DEFAULT_CHROMIUM)?;
        let chromedriver = binary("CHROMEDRIVER", DEFAULT_CHROMEDRIVER)?;
        let profile = tempfile::tempdir().context("a temporary Chromium profile directory")?;
        let driver = Driver::start(&chromedriver).await?;

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium.display().to_string(), "args": args}),
        );
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        capabilities.insert(
            "timeouts".into(),
            json!({"pageLoad": ms(COMMAND_TIMEOUT), "script": ms(COMMAND_TIMEOUT), "implicit": 0}),
        );
        // chromedriver speaks plain HTTP on loopback: no TLS connector is needed.
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let url = driver.url();
        let connect = builder.connect(&url);
        let client = match tokio::time::timeout(START_TIMEOUT, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => bail!(
                "chromedriver could not start {}: {e}\n{}",
                chromium.display(),
                driver.logs()
            ),
            Err(_) => bail!(
                "{} did not open a session within {START_TIMEOUT:?}\n{}",
                chromium.display(),
                driver.logs()
            ),
        };
        let browser = Browser {
            client,
            driver,
            _profile: profile,
        };
        browser.set_viewport(width, height).await?;
        Ok(browser)
    }

    /// Resizes the window so that its content area (what a screenshot shows) is `width`
    /// × `height`: even headless, Chromium keeps room for a window frame and toolbar.
    async fn set_viewport(&self, width: u32, height: u32) -> anyhow::Result<()> {
        let inner = || async {
            let size = self
                .execute("return [window.innerWidth, window.innerHeight];", vec![])
                .await?;
            let side = |i: usize| size.get(i).and_then(Value::as_u64);
            match (side(0), side(1)) {
                (Some(w), Some(h)) => Ok((w, h)),
                _ => bail!("not a window size: {size}"),
            }
        };
        let (inner_width, inner_height) = inner().await?;
        let (outer_width, outer_height) = self
            .bounded("read the window size", self.client.get_window_size())
            .await?;
        let frame = |outer: u64, inner: u64| outer.saturating_sub(inner);
        let resize = |wanted: u32, frame: u64| {
            u32::try_from(u64::from(wanted) + frame).context("a window size in pixels")
        };
        let new_width = resize(width, frame(outer_width, inner_width))?;
        let new_height = resize(height, frame(outer_height, inner_height))?;
        self.bounded(
            "resize the window",
            self.client.set_window_size(new_width, new_height),
        )
        .await?;
        let got = inner().await?;
        if got != (u64::from(width), u64::from(height)) {
            bail!("asked for a {width}x{height} viewport, got {got:?}");
        }
        Ok(())
    }

    /// The WebDriver client, for anything the helpers here do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The version Chromium reported when the session opened.
    pub fn version(&self) -> Option<String> {
        self.client
            .capabilities()
            .and_then(|c| c.get("browserVersion"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Loads `url` and waits until the document has loaded.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.bounded(&format!("load {url}"), self.client.goto(url))
            .await
    }

    /// The address of the document shown now.
    pub async fn current_url(&self) -> anyhow::Result<String> {
        let url = self
            .bounded("read the current URL", self.client.current_url())
            .await?;
        Ok(url.to_string())
    }

    /// Runs `script` (a function body: `return …` gives the result) in the page.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.bounded("run a script", self.client.execute(script, args))
            .await
    }

    /// The rendered text of the first element matching the CSS `selector`.
    pub async fn text(&self, selector: &str) -> anyhow::Result<String> {
        let element = self
            .bounded(
                &format!("find {selector}"),
                self.client.find(Locator::Css(selector)),
            )
            .await?;
        self.bounded(&format!("read the text of {selector}"), element.text())
            .await
    }

    /// Waits until the element `selector` shows a text containing `needle`, and returns
    /// that text; after `timeout` an error with what it showed last.
    pub async fn wait_for_text(
        &self,
        selector: &str,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.text(selector).await {
                Ok(text) if text.contains(needle) => return Ok(text),
                Ok(text) => format!("it shows {text:?}"),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!("{selector} did not show {needle:?} within {timeout:?}: {last}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// A PNG of the window's content, also written to `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<Vec<u8>> {
        let png = self
            .bounded("take a screenshot", self.client.screenshot())
            .await?;
        std::fs::write(path, &png).with_context(|| format!("write {}", path.display()))?;
        Ok(png)
    }

    /// What chromedriver has logged so far, for failure messages.
    pub fn driver_logs(&self) -> String {
        self.driver.logs()
    }

    /// Ends the session (Chromium exits), then chromedriver.
    pub async fn close(self) -> anyhow::Result<()> {
        let Browser {
            client,
            driver,
            _profile,
        } = self;
        let closed = tokio::time::timeout(COMMAND_TIMEOUT, client.close()).await;
        drop(driver);
        match closed {
            Ok(result) => result.context("close the WebDriver session"),
            Err(_) => bail!("closing the session took longer than {COMMAND_TIMEOUT:?}"),
        }
    }

    async fn bounded<T, E: std::fmt::Display>(
        &self,
        what: &str,
        command: impl std::future::Future<Output = Result<T, E>>,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => bail!("{what}: {e}"),
            Err(_) => bail!(
                "{what}: no answer within {COMMAND_TIMEOUT:?}\n{}",
                self.driver.logs()
            ),
        }
    }
}

/// The binary named by the environment variable `variable`, else `default`; an error
/// saying how to get it when it is not an executable file.
fn binary(variable: &str, default: &str) -> anyhow::Result<PathBuf> {
    let (path, from_env) = match std::env::var_os(variable) {
        Some(value) if !value.is_empty() => (PathBuf::from(value), true),
        _ => (PathBuf::from(default), false),
    };
    let executable = std::fs::metadata(&path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if executable {
        return Ok(path);
    }
    if from_env {
        bail!("{variable}={} is not an executable file", path.display());
    }
    bail!(
        "{} is missing: the browser tests need headless Chromium and chromedriver. Install \
         Debian's packages (apt-get install chromium chromium-driver), or set CHROMIUM and \
         CHROMEDRIVER to the paths of other binaries",
        path.display()
    )
}

/// A chromedriver process, leader of its own process group.
struct Driver {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Driver {
    async fn start(binary: &Path) -> anyhow::Result<Driver> {
        let mut child = Command::new(binary)
            .arg("--port=0")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, which the Chromium it starts joins: see the module doc.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let log = Arc::new(Mutex::new(String::new()));
        let port = Arc::new(Mutex::new(None));
        if let Some(stdout) = child.stdout.take() {
            copy_lines(stdout, Arc::clone(&log), Some(Arc::clone(&port)));
        }
        if let Some(stderr) = child.stderr.take() {
            copy_lines(stderr, Arc::clone(&log), None);
        }
        let mut driver = Driver {
            child,
            port: 0,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(found) = port.lock().ok().and_then(|p| *p) {
                driver.port = found;
                return Ok(driver);
            }
            if let Some(status) = driver.child.try_wait()? {
                bail!(
                    "{} exited with {status} before listening:\n{}",
                    binary.display(),
                    driver.logs()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not listen within {START_TIMEOUT:?}:\n{}",
                    binary.display(),
                    driver.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn logs(&self) -> String {
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        format!("----- chromedriver log -----\n{log}")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid; its members are the processes it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies a stream's lines into `log`; with `port`, records the port of the first
/// "started successfully on port N." line.
fn copy_lines(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    port: Option<Arc<Mutex<Option<u16>>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut log) = log.lock() {
                log.push_str(&line);
                log.push('\n');
            }
            if let (Some(slot), Some(found)) = (&port, listening_port(&line)) {
                if let Ok(mut slot) = slot.lock() {
                    slot.get_or_insert(found);
                }
            }
        }
    });
}

fn listening_port(line: &str) -> Option<u16> {
    let start = line.find(LISTENING)? + LISTENING.len();
    line[start..].trim_end_matches('.').trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_port_in_chromedriver_s_line() {
        assert_eq!(
            listening_port("ChromeDriver was started successfully on port 39985."),
            Some(39985)
        );
        assert_eq!(listening_port("Only local connections are allowed."), None);
    }

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let error = binary(
            "DISCOVERY_TESTKIT_NO_SUCH_VARIABLE",
            "/nonexistent/chromium",
        )
        .expect_err("a missing binary");
        let message = format!("{error:#}");
        assert!(
            message.contains("/nonexistent/chromium") && message.contains("chromium-driver"),
            "{message}"
        );
    }
}
