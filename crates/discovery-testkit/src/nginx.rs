//! A real nginx in front of discovery nodes, configured like production (for the HA tests
//! and the fleet benchmarks).
//!
//! The configuration is the shipped `deploy/nginx/discovery.conf` (upstream with
//! keepalive and passive health checks, `proxy_next_upstream error timeout http_502
//! http_503 http_504`, 3 tries within 10 s, 1 s connect and 3 s read timeouts) with only the upstream
//! addresses and the listen address replaced, wrapped in a minimal `nginx.conf` that
//! keeps every path (pid, logs, temp files) inside a temporary directory. nginx runs in
//! the foreground as a child process and is stopped when the [`Nginx`] is dropped.
//!
//! The TLS examples (`deploy/nginx/discovery-tls-*.conf`) run the same way through
//! [`Nginx::start_tls`]: upstream and listen addresses replaced, and the certificate
//! paths (or any other directive a test names) set to the test's own.
//!
//! If nginx is not installed the harness installs it (`apt-get install -y nginx`) and
//! says so; if that fails the test fails with the reason. It never skips.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::logs::tail;
use crate::ports::free_addr;
use crate::wait::eventually;

use tempfile::TempDir;

/// The shipped nginx snippet.
/// `deploy/nginx/discovery.conf` of this repository.
pub const SHIPPED_CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/nginx/discovery.conf"
);

/// `deploy/nginx/discovery-tls-termination.conf`: HTTPS at nginx, plain HTTP to the nodes.
pub const TLS_TERMINATION_CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/nginx/discovery-tls-termination.conf"
);

/// `deploy/nginx/discovery-tls-reencrypt.conf`: HTTPS at nginx and to the nodes.
pub const TLS_REENCRYPT_CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/nginx/discovery-tls-reencrypt.conf"
);

/// The access log format: enough to tell which node answered what, and when.
const LOG_FORMAT: &str = "log_format ha '$msec \"$request\" $status ua=\"$http_user_agent\" \
    upstream=\"$upstream_addr\" upstream_status=\"$upstream_status\" rt=$request_time';";

/// The nginx binary, installed if needed (once per test process).
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BINARY.get_or_init(find_or_install) {
        Ok(path) => path,
        Err(why) => panic!("nginx is required by the HA tests and is not available: {why}"),
    }
}

fn find() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NGINX") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

fn find_or_install() -> Result<PathBuf, String> {
    if let Some(path) = find() {
        return Ok(path);
    }
    // Straight to the process's stderr, not through the test harness's capture: whoever
    // runs the tests sees that packages are being installed.
    let _ = writeln!(
        std::io::stderr(),
        "nginx is not installed: installing it (apt-get update && apt-get install -y nginx)"
    );
    for args in [&["update"][..], &["install", "-y", "nginx"][..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| format!("cannot run apt-get {}: {e}", args.join(" ")))?;
        if !status.success() {
            return Err(format!(
                "apt-get {} failed ({status}); its output is above. Install nginx or set \
                 NGINX=/path/to/nginx",
                args.join(" ")
            ));
        }
    }
    find().ok_or_else(|| {
        "apt-get install -y nginx succeeded but no nginx binary was found; set NGINX=/path/to/nginx"
            .to_owned()
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Walks a shipped nginx file line by line without comments and blank lines: the
/// upstream block's servers are replaced by `upstreams` (host:port), keeping the shipped
/// server parameters; every other line goes to `rewrite`, which writes its replacement
/// and returns true, or returns false to keep the line. Returns the new text and whether
/// an upstream server line was found.
fn rewrite_conf(
    shipped: &str,
    upstreams: &[String],
    mut rewrite: impl FnMut(&str, &mut String) -> bool,
) -> (String, bool) {
    let mut out = String::new();
    let mut in_upstream = false;
    let mut servers_written = false;
    for line in shipped.lines() {
        let code = line.split('#').next().unwrap_or_default().trim();
        if code.is_empty() {
            continue;
        }
        if code.starts_with("upstream ") {
            in_upstream = true;
        } else if in_upstream && code == "}" {
            in_upstream = false;
        }
        if in_upstream && code.starts_with("server ") {
            if !servers_written {
                // `server 127.0.0.1:8411 max_fails=1 fail_timeout=1s;` → keep the parameters.
                let parameters = parameters_after(code, 2);
                for upstream in upstreams {
                    out.push_str(&format!("    server {upstream} {parameters};\n"));
                }
                servers_written = true;
            }
            continue;
        }
        if !rewrite(code, &mut out) {
            out.push_str(code);
            out.push('\n');
        }
    }
    (out, servers_written)
}

/// The words of a directive after the first `skip`, without the `;`.
fn parameters_after(code: &str, skip: usize) -> String {
    code.trim_end_matches(';')
        .split_whitespace()
        .skip(skip)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The shipped snippet with `upstreams` (host:port) as the upstream servers, keeping the
/// shipped server parameters, `listen` as the HTTP/1.1 listen address and `h2c_listen`
/// as the cleartext HTTP/2 one.
pub fn discovery_conf(
    shipped: &str,
    upstreams: &[String],
    listen: SocketAddr,
    h2c_listen: SocketAddr,
) -> String {
    let mut listen_written = false;
    let mut h2c_written = false;
    let (out, servers_written) = rewrite_conf(shipped, upstreams, |code, out| {
        if !code.starts_with("listen ") {
            return false;
        }
        if code
            .split_whitespace()
            .any(|word| word.trim_end_matches(';') == "http2")
        {
            out.push_str(&format!("    listen {h2c_listen} http2;\n"));
            h2c_written = true;
        } else {
            out.push_str(&format!("    listen {listen};\n"));
            listen_written = true;
        }
        true
    });
    assert!(
        servers_written && listen_written && h2c_written,
        "{SHIPPED_CONF} lacks an upstream server, a listen or an http2 listen line to \
         replace:\n{shipped}"
    );
    out
}

/// A shipped TLS example (`shipped`) with `upstreams` (host:port) as the upstream servers,
/// keeping the shipped server parameters, `listen` as the address of its one `listen`
/// line (keeping `ssl`, `http2` and the like), and each directive named in `directives`
/// set to the value given (`("ssl_certificate", "/tmp/x/keystore.pem")`). Every directive
/// named must be in the file: a test cannot silently configure what the example lacks.
pub fn tls_conf(
    shipped: &str,
    upstreams: &[String],
    listen: SocketAddr,
    directives: &[(&str, String)],
) -> String {
    let mut listens = 0;
    let mut set = vec![false; directives.len()];
    let (out, servers_written) = rewrite_conf(shipped, upstreams, |code, out| {
        if code.starts_with("listen ") {
            // `listen 8443 ssl http2;` → `listen 127.x.y.z:port ssl http2;`
            out.push_str(&format!(
                "    listen {listen} {};\n",
                parameters_after(code, 2)
            ));
            listens += 1;
            return true;
        }
        let name = code.split_whitespace().next().unwrap_or_default();
        match directives.iter().position(|(d, _)| *d == name) {
            Some(i) => {
                out.push_str(&format!("    {name} {};\n", directives[i].1));
                set[i] = true;
                true
            }
            None => false,
        }
    });
    assert!(
        servers_written && listens == 1,
        "the TLS example lacks an upstream server, or has not exactly one listen line:\n{shipped}"
    );
    for ((directive, _), found) in directives.iter().zip(set) {
        assert!(
            found,
            "the TLS example has no {directive} directive:\n{shipped}"
        );
    }
    out
}

/// A running nginx; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Nginx {
    child: Child,
    addr: SocketAddr,
    h2c_addr: SocketAddr,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx on a free port of `listen_ip` in front of `upstreams` (host:port) and
    /// waits until it accepts connections.
    pub async fn start(listen_ip: &str, upstreams: &[String]) -> Nginx {
        let shipped = std::fs::read_to_string(SHIPPED_CONF)
            .unwrap_or_else(|e| panic!("cannot read {SHIPPED_CONF}: {e}"));
        Self::launch(listen_ip, |addr, h2c_addr| {
            discovery_conf(&shipped, upstreams, addr, h2c_addr)
        })
        .await
    }

    /// Starts nginx with the TLS example `template` ([`TLS_TERMINATION_CONF`] or
    /// [`TLS_REENCRYPT_CONF`]) on a free port of `listen_ip` in front of `upstreams`, with
    /// `directives` set as [`tls_conf`] does (the certificate paths, at least). Its one
    /// listener is [`Nginx::https_url`].
    pub async fn start_tls(
        template: &str,
        listen_ip: &str,
        upstreams: &[String],
        directives: &[(&str, String)],
    ) -> Nginx {
        let shipped = std::fs::read_to_string(template)
            .unwrap_or_else(|e| panic!("cannot read {template}: {e}"));
        Self::launch(listen_ip, |addr, _| {
            tls_conf(&shipped, upstreams, addr, directives)
        })
        .await
    }

    /// Runs nginx with the `http { }` content `conf(listen, h2c_listen)` gives for two free
    /// ports of `listen_ip`, and waits until it accepts connections on the first.
    async fn launch(listen_ip: &str, conf: impl Fn(SocketAddr, SocketAddr) -> String) -> Nginx {
        let binary = binary();
        let mut last_error = String::new();
        // The free port is found by binding and closing it, so another process can take
        // it in between: then try again with another one.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temporary directory for nginx");
            let (addr, h2c_addr) = (free_addr(listen_ip), free_addr(listen_ip));
            let conf = main_conf(dir.path(), &conf(addr, h2c_addr));
            let conf_path = dir.path().join("nginx.conf");
            std::fs::write(&conf_path, conf).expect("write nginx.conf");
            let child = Command::new(binary)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut nginx = Nginx {
                child,
                addr,
                h2c_addr,
                dir,
            };
            match nginx.wait_listening().await {
                None => return nginx,
                Some(error) => last_error = error,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    /// Waits until nginx accepts connections; returns why not if it exited instead.
    async fn wait_listening(&mut self) -> Option<String> {
        let addr = self.addr;
        let exited = eventually(Duration::from_secs(10), "nginx to listen", || {
            let exited = self.child.try_wait();
            async move {
                if let Ok(Some(status)) = exited {
                    return Ok(Some(status));
                }
                tokio::net::TcpStream::connect(addr)
                    .await
                    .map(|_| None)
                    .map_err(|e| format!("{addr}: {e}"))
            }
        })
        .await;
        exited.map(|status| format!("nginx exited with {status}:\n{}", self.error_log()))
    }

    /// `http://ip:port` of nginx: the fleet's discovery URI.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://ip:port` of nginx started with a TLS example ([`Nginx::start_tls`]).
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `http://ip:port` of nginx's cleartext HTTP/2 listener (prior knowledge), for
    /// clients that speak HTTP/2 such as Trino 483.
    pub fn h2c_url(&self) -> String {
        format!("http://{}", self.h2c_addr)
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Waits until nginx has `upstream` (host:port) back in rotation: a request that it
    /// answered with a success at or after `since` (wall clock, seconds since the epoch,
    /// as [`unix_now`] gives).
    ///
    /// nginx's passive health check (`max_fails=1 fail_timeout=1s` in the shipped
    /// snippet) keeps a node that failed out of rotation for `fail_timeout`, even after it
    /// is back and ready; open-source nginx has no way to ask it sooner. Stopping the next
    /// node before then can leave nginx with no node it considers alive: it then answers
    /// every request 502 ("no live upstreams") until a `fail_timeout` ends.
    pub async fn wait_served_by(&self, upstream: &str, since: f64, timeout: Duration) {
        eventually(
            timeout,
            &format!("nginx to route to {upstream} again"),
            || async {
                let access = self.access_log();
                let served = access.lines().any(|line| {
                    let at: f64 = line
                        .split(' ')
                        .next()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0.0);
                    let (upstreams, statuses) = (
                        access_field(line, "upstream"),
                        access_field(line, "upstream_status"),
                    );
                    at >= since
                        && upstreams.rsplit(',').next() == Some(upstream)
                        && matches!(
                            statuses.rsplit(',').next(),
                            Some("200" | "202" | "204" | "304")
                        )
                });
                if served {
                    Ok(())
                } else {
                    Err(format!(
                        "no successful answer from {upstream} since {since}"
                    ))
                }
            },
        )
        .await;
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM: a fast shutdown in which the master stops its worker (SIGKILL
            // would leave the worker running).
            let terminated = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if !terminated {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let errors = self.error_log();
            // Keep the configuration and both logs for a closer look.
            let kept = match tempfile::tempdir() {
                Ok(empty) => std::mem::replace(&mut self.dir, empty).keep(),
                Err(_) => self.dir.path().to_owned(),
            };
            eprintln!(
                "===== nginx error log (configuration and logs kept in {}) =====\n{}",
                kept.display(),
                tail(&errors, 100)
            );
        }
    }
}

/// A quoted field (`name="..."`) of an access log line, spaces removed: nginx lists the
/// nodes a request was tried on as `a:1, b:2`.
pub fn access_field(line: &str, name: &str) -> String {
    line.split(&format!(" {name}=\""))
        .nth(1)
        .map(|rest| rest.split('"').next().unwrap_or_default().replace(' ', ""))
        .unwrap_or_default()
}

/// Wall-clock time in seconds since the epoch, as nginx logs it (`$msec`).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn main_conf(dir: &Path, discovery: &str) -> String {
    let d = dir.display();
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    format!(
        "{user}worker_processes auto;\n\
         worker_rlimit_nofile 65536;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         events {{ worker_connections 16384; }}\n\
         http {{\n\
         {LOG_FORMAT}\n\
         access_log {d}/access.log ha;\n\
         client_body_temp_path {d}/client_body;\n\
         proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n\
         {discovery}\
         }}\n"
    )
}
