//! The Java side of the interop suite: the JDKs, the Maven build of `tests/interop/java`
//! (real Trino, Presto and airlift artifacts resolved from Maven Central, plus our small
//! harness around the airlift client), and Java processes whose logs a failing test
//! prints.
//!
//! Nothing here skips: a missing JDK, a missing Maven or a failed build fails the test
//! with what was tried and how to fix it. Maven caches what it downloads in `~/.m2`, so
//! only the first run on a machine pays for the downloads.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use discovery_testkit::logs::tail;

/// The Maven tree, `tests/interop/java`.
pub fn java_tree() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/java")
}

/// A JDK major version the suite needs: 17 runs the Java airlift discovery server and
/// Presto, 25 runs recent Trino (which requires Java 24 or newer) and builds the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jdk {
    J17,
    J25,
}

impl Jdk {
    fn major(self) -> u32 {
        match self {
            Jdk::J17 => 17,
            Jdk::J25 => 25,
        }
    }

    /// `JAVA_HOME` of this JDK: `$JAVA{major}_HOME` if set, else the first of the usual
    /// Debian and Temurin locations that holds `bin/java`.
    pub fn home(self) -> PathBuf {
        let major = self.major();
        if let Some(home) = std::env::var_os(format!("JAVA{major}_HOME")) {
            return PathBuf::from(home);
        }
        let candidates = [
            format!("/usr/lib/jvm/java-{major}-openjdk-amd64"),
            format!("/usr/lib/jvm/temurin-{major}-jdk-amd64"),
            format!("/usr/lib/jvm/temurin-{major}-jdk"),
            format!("/usr/lib/jvm/java-{major}-openjdk"),
        ];
        candidates
            .iter()
            .map(PathBuf::from)
            .find(|home| home.join("bin/java").is_file())
            .unwrap_or_else(|| {
                panic!(
                    "the interop suite needs a Java {major} JDK and found none in {candidates:?}; \
                     install one (Java 17: apt-get install -y openjdk-17-jdk-headless) or set \
                     JAVA{major}_HOME"
                )
            })
    }

    /// The `java` launcher of this JDK.
    pub fn java(self) -> PathBuf {
        self.home().join("bin/java")
    }
}

/// Builds `tests/interop/java` once per test process (`mvn package`) and returns the
/// tree. Every test calls this before it starts a Java program.
pub fn build() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(run_maven) {
        Ok(tree) => tree,
        Err(why) => panic!("the interop suite's Java tree did not build: {why}"),
    }
}

fn run_maven() -> Result<PathBuf, String> {
    let tree = java_tree();
    let log_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-maven.log");
    let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    eprintln!(
        "interop: building {} with Maven (first run downloads Trino, Presto and airlift \
         from Maven Central; log: {})",
        tree.display(),
        log_path.display()
    );
    let status = Command::new("mvn")
        .args(["-B", "-q", "package"])
        .current_dir(&tree)
        .env("JAVA_HOME", Jdk::J25.home())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .status()
        .map_err(|e| format!("cannot run mvn ({e}); install Maven (apt-get install -y maven)"))?;
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "mvn package in {} failed ({status}):\n{}",
            tree.display(),
            tail(&output, 60)
        ));
    }
    eprintln!("interop: Maven build done in {:.0?}", started.elapsed());
    Ok(tree)
}

/// The classpath of module `module` of the Maven tree: its `target/lib` jars, plus its
/// own jar when it builds one.
pub fn classpath(module: &str) -> String {
    let target = build().join(module).join("target");
    let mut parts = vec![format!("{}/lib/*", target.display())];
    if let Ok(entries) = std::fs::read_dir(&target) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "jar") {
                parts.push(path.display().to_string());
            }
        }
    }
    parts.join(":")
}

/// A running Java program. Its stdout and stderr go to a log file; dropping it kills the
/// process (SIGKILL).
pub struct JavaProcess {
    name: String,
    child: Child,
    log_path: PathBuf,
}

impl JavaProcess {
    /// Starts `java {args}` of `jdk` in `dir`, logging to `{dir}/{name}.log`.
    pub fn start(name: &str, jdk: Jdk, dir: &Path, args: &[String]) -> anyhow::Result<Self> {
        let log_path = dir.join(format!("{name}.log"));
        let log = File::create(&log_path).with_context(|| log_path.display().to_string())?;
        let err_log = log.try_clone()?;
        let child = Command::new(jdk.java())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .with_context(|| format!("cannot start {name} with {}", jdk.java().display()))?;
        Ok(JavaProcess {
            name: name.into(),
            child,
            log_path,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the program has written so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The exit status if the program has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, and waits for the exit.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        self.child.kill()?;
        Ok(self.child.wait()?)
    }

    /// SIGTERM, then waits up to `timeout` for the exit (SIGKILL after that).
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        self.child.kill()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for JavaProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
