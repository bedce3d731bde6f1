//! `deploy/airlift/bin/launcher` against the real server: a copy of the airlift layout in
//! a temporary directory, its configuration rewritten to a free port on 127.0.0.1, and
//! the commands an operator uses, with airlift's output and exit codes.

use std::fs;
use std::path::{Path, PathBuf};

use discovery_testkit::eventually;
use tempfile::TempDir;
use tokio::process::Command;

use discovery_testkit::discoveryd;
use discovery_testkit::ports::free_port;

use crate::support::{
    get_status, http_client, pid_in, process_gone, repo_root, run, signal, Ran, DEADLINE,
};

/// How the launcher is told where the server binary is.
#[derive(Clone, Copy)]
enum Binary {
    /// `--server-bin PATH`.
    Flag,
    /// `DISCOVERYD=PATH`.
    Env,
    /// `bin/discoveryd` beside the launcher (a symlink to the test binary).
    Beside,
}

/// A copy of `deploy/airlift/` with its configuration pointed at a free port.
struct Install {
    dir: TempDir,
    port: u16,
    binary: Binary,
}

impl Install {
    fn new(binary: Binary) -> Install {
        Install::with_settings(binary, &[])
    }

    /// Copies the layout; `extra` lines are appended to etc/config.properties.
    fn with_settings(binary: Binary, extra: &[&str]) -> Install {
        let dir = tempfile::tempdir().unwrap();
        let source = repo_root().join("deploy/airlift");
        fs::create_dir_all(dir.path().join("bin")).unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        // fs::copy keeps the executable bit.
        fs::copy(source.join("bin/launcher"), dir.path().join("bin/launcher")).unwrap();
        for file in [
            "config.properties",
            "node.properties",
            "service-inventory.json",
        ] {
            fs::copy(
                source.join("etc").join(file),
                dir.path().join("etc").join(file),
            )
            .unwrap();
        }
        if let Binary::Beside = binary {
            std::os::unix::fs::symlink(discoveryd!(), dir.path().join("bin/discoveryd")).unwrap();
        }

        // The shipped configuration, minus what would leave the test's sandbox: the port,
        // the bind address, the peers of the example inventory (not reachable from here);
        // data under the install directory as shipped (var/data), and no warm-up.
        let port = free_port("127.0.0.1");
        let config = dir.path().join("etc/config.properties");
        let replaced = [
            "http-server.http.port",
            "node.bind-ip",
            "service-inventory.uri",
            "readiness.warm-up",
        ];
        let mut text: String = fs::read_to_string(&config)
            .unwrap()
            .lines()
            .filter(|line| {
                let key = line.split('=').next().unwrap_or("").trim();
                !replaced.contains(&key)
            })
            .map(|line| format!("{line}\n"))
            .collect();
        text.push_str(&format!(
            "http-server.http.port={port}\nnode.bind-ip=127.0.0.1\nreadiness.warm-up=0s\n"
        ));
        for line in extra {
            text.push_str(&format!("{line}\n"));
        }
        fs::write(&config, text).unwrap();
        Install { dir, port, binary }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn pid_file(&self) -> PathBuf {
        self.path().join("var/run/launcher.pid")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path().join("var/log/launcher.log")).unwrap_or_default()
    }

    fn live_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/health/live", self.port)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.path().join("bin/launcher"));
        command.env_remove("DISCOVERYD");
        match self.binary {
            Binary::Flag => {
                command.arg("--server-bin").arg(discoveryd!());
            }
            Binary::Env => {
                command.env("DISCOVERYD", discoveryd!());
            }
            Binary::Beside => {}
        }
        // Run from elsewhere: the launcher must find its install directory by itself.
        command.args(args).current_dir(std::env::temp_dir());
        command
    }

    async fn launcher(&self, args: &[&str]) -> Ran {
        run(&mut self.command(args)).await
    }

    async fn wait_live(&self) {
        let client = http_client();
        let url = self.live_url();
        eventually(DEADLINE, "the server to answer /v1/health/live", || async {
            match get_status(&client, &url).await? {
                200 => Ok(()),
                other => Err(format!("status {other}")),
            }
        })
        .await;
    }

    async fn wait_gone(&self, pid: u32) {
        eventually(DEADLINE, "the server process to be gone", || async {
            if process_gone(pid) {
                Ok(())
            } else {
                Err(format!("pid {pid} still runs"))
            }
        })
        .await;
        let client = http_client();
        assert!(
            get_status(&client, &self.live_url()).await.is_err(),
            "something still answers on port {} after the server stopped",
            self.port
        );
    }
}

impl Drop for Install {
    /// A failed test must not leave a server behind: SIGKILL whatever the pid file names.
    fn drop(&mut self) {
        if let Ok(text) = fs::read_to_string(self.pid_file()) {
            if let Ok(pid) = text.trim().parse::<u32>() {
                if !process_gone(pid) {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
        }
        if std::thread::panicking() {
            eprintln!("--- launcher.log:\n{}", self.log());
        }
    }
}

#[tokio::test]
async fn start_status_stop_like_airlift() {
    let install = Install::new(Binary::Flag);

    install
        .launcher(&["status"])
        .await
        .expect_code(3)
        .expect_stdout("Not running");

    let started = install.launcher(&["start"]).await.expect_code(0);
    let first_line = started.stdout.lines().next().unwrap_or("").to_owned();
    assert!(first_line.starts_with("Started as "), "{started:?}");
    let pid = pid_in(&first_line);
    install.wait_live().await;
    assert_eq!(
        fs::read_to_string(install.pid_file()).unwrap().trim(),
        pid.to_string()
    );

    let status = install.launcher(&["status"]).await.expect_code(0);
    assert_eq!(status.stdout.trim(), format!("Running as {pid}"));

    // airlift: a second start prints the running pid and succeeds.
    let again = install.launcher(&["start"]).await.expect_code(0);
    assert_eq!(again.stdout.trim(), format!("Already running as {pid}"));

    let stopped = install.launcher(&["stop"]).await.expect_code(0);
    assert_eq!(stopped.stdout.trim(), format!("Stopped {pid}"));
    install.wait_gone(pid).await;
    assert!(!install.pid_file().exists(), "the pid file is removed");
    let log = install.log();
    assert!(
        log.contains("SIGTERM received"),
        "stopped with SIGTERM: {log}"
    );
    assert!(
        !log.contains("ignoring unknown configuration key"),
        "the shipped etc/ has only keys discoveryd knows: {log}"
    );

    install
        .launcher(&["status"])
        .await
        .expect_code(3)
        .expect_stdout("Not running");
    install
        .launcher(&["stop"])
        .await
        .expect_code(0)
        .expect_stdout("Not running");
}

#[tokio::test]
async fn run_stays_in_the_foreground_and_exits_0_on_sigterm() {
    let install = Install::new(Binary::Env);
    let mut command = install.command(&["run"]);
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().unwrap();
    let pid = child.id().unwrap();
    install.wait_live().await;

    // run execs the server: the pid file names the launcher's own pid.
    let status = install.launcher(&["status"]).await.expect_code(0);
    assert_eq!(status.stdout.trim(), format!("Running as {pid}"));

    signal(pid, "TERM");
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("the server exits after SIGTERM")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "clean exit after SIGTERM; output:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("discoveryd listening on"),
        "run prints the server's log to the terminal: {stdout}"
    );
    install.launcher(&["status"]).await.expect_code(3);
}

#[tokio::test]
async fn kill_sends_sigkill_and_restart_starts_a_new_process() {
    let install = Install::new(Binary::Beside);
    let started = install.launcher(&["start"]).await.expect_code(0);
    let first = pid_in(started.stdout.trim());
    install.wait_live().await;

    let restarted = install.launcher(&["restart"]).await.expect_code(0);
    assert!(
        restarted.stdout.contains(&format!("Stopped {first}")),
        "{restarted:?}"
    );
    let second = pid_in(
        restarted
            .stdout
            .lines()
            .find(|l| l.starts_with("Started as "))
            .unwrap_or_else(|| panic!("{restarted:?}")),
    );
    assert_ne!(first, second);
    assert!(process_gone(first));
    install.wait_live().await;

    let terms_before = install.log().matches("SIGTERM received").count();
    let killed = install.launcher(&["kill"]).await.expect_code(0);
    assert_eq!(killed.stdout.trim(), format!("Killed {second}"));
    install.wait_gone(second).await;
    assert_eq!(
        install.log().matches("SIGTERM received").count(),
        terms_before,
        "kill must not go through SIGTERM"
    );
    assert!(!install.pid_file().exists());
    install.launcher(&["status"]).await.expect_code(3);
    install
        .launcher(&["kill"])
        .await
        .expect_code(0)
        .expect_stdout("Not running");
}

#[tokio::test]
async fn data_dir_holds_pid_log_and_data_and_links_etc() {
    let install = Install::new(Binary::Flag);
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let started = install
        .launcher(&["--data-dir", &data_dir, "start"])
        .await
        .expect_code(0);
    let pid = pid_in(started.stdout.trim());
    install.wait_live().await;

    assert!(data.path().join("var/run/launcher.pid").is_file());
    assert!(data.path().join("var/log/launcher.log").is_file());
    // store.data-dir=var/data is relative to the data directory.
    assert!(data.path().join("var/data").is_dir());
    assert!(!install.path().join("var/data").exists());
    assert_eq!(
        fs::read_link(data.path().join("etc")).unwrap(),
        install.path().join("etc")
    );

    // Without --data-dir the launcher looks in the install directory: nothing runs there.
    install.launcher(&["status"]).await.expect_code(3);
    install
        .launcher(&["--data-dir", &data_dir, "status"])
        .await
        .expect_code(0);
    install
        .launcher(&["--data-dir", &data_dir, "stop"])
        .await
        .expect_code(0)
        .expect_stdout(&format!("Stopped {pid}"));
    install.wait_gone(pid).await;
}

#[tokio::test]
async fn start_reports_a_server_that_cannot_start() {
    let install = Install::with_settings(Binary::Flag, &["discovery.max-age=soon"]);
    let failed = install.launcher(&["start"]).await;
    assert_eq!(failed.code, Some(1), "{failed:?}");
    assert!(
        failed.stderr.contains("discovery.max-age"),
        "the log's last lines name the bad key: {failed:?}"
    );
    install.launcher(&["status"]).await.expect_code(3);
}

#[tokio::test]
async fn status_of_an_unknown_binary_or_bad_usage() {
    let install = Install::new(Binary::Flag);
    let mut command = Command::new(install.path().join("bin/launcher"));
    command
        .args(["--server-bin", "/nonexistent/discoveryd", "start"])
        .env_remove("DISCOVERYD");
    let missing = run(&mut command).await;
    assert_eq!(missing.code, Some(1), "{missing:?}");
    assert!(
        missing.stderr.contains("/nonexistent/discoveryd"),
        "{missing:?}"
    );

    let usage = install.launcher(&["frobnicate"]).await;
    assert_eq!(usage.code, Some(2), "{usage:?}");
}
