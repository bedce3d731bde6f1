//! Running the deployment scripts and looking at what they left behind: commands with a
//! deadline and captured output, process liveness, HTTP probes. Free ports (the scripts
//! take ports up front) and nginx (installed with apt-get when missing) come from the
//! testkit.

use std::fmt;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use tokio::process::Command;

/// Longest a script command may take (the local-cluster start waits for readiness).
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// Deadline for a server to answer, or to be gone.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn discovery_cli() -> &'static str {
    env!("CARGO_BIN_EXE_discovery")
}

/// What a finished command did.
pub struct Ran {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Debug for Ran {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}\n--- stdout:\n{}--- stderr:\n{}---",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

impl Ran {
    /// Panics with the whole output unless the command exited with `code`.
    pub fn expect_code(self, code: i32) -> Ran {
        assert_eq!(self.code, Some(code), "unexpected exit code: {self:?}");
        self
    }

    pub fn expect_stdout(self, needle: &str) -> Ran {
        assert!(
            self.stdout.contains(needle),
            "expected {needle:?} in stdout: {self:?}"
        );
        self
    }
}

/// Runs a command to completion (stdin from /dev/null), within [`COMMAND_DEADLINE`].
pub async fn run(command: &mut Command) -> Ran {
    let what = format!("{:?}", command.as_std());
    command.stdin(Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(COMMAND_DEADLINE, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {COMMAND_DEADLINE:?}"))
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    Ran {
        what,
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// True when the process no longer runs (gone, or a zombie nobody has reaped yet).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Sends a signal (`TERM`, `KILL`, `STOP`, `CONT`) with kill(1).
pub fn signal(pid: u32, name: &str) {
    let status = StdCommand::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Parses "<word> as <pid>" / "<word> <pid>" launcher output: the last number on the line.
pub fn pid_in(line: &str) -> u32 {
    line.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// A client for probes: a script's server answers within 5 s or counts as not answering.
pub fn http_client() -> reqwest::Client {
    discovery_testkit::http::http_client(Duration::from_secs(5))
}

/// Status of `GET url`, or an error when nothing answered.
pub async fn get_status(client: &reqwest::Client, url: &str) -> Result<u16, String> {
    client
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("GET {url}: {e}"))
}

/// The nginx binary: `NGINX=` if set, else the one on the machine, installed with
/// apt-get first if there is none (the testkit's finder, shared with the HA tests).
pub fn nginx() -> &'static Path {
    discovery_testkit::nginx::binary()
}
