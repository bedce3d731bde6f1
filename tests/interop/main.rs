//! The interop suite: real Java programs against real `discoveryd` processes.
//!
//! Every compatibility claim of the README and docs/COMPATIBILITY.md is checked here
//! against the program that makes it matter: real Trino and Presto clusters whose
//! coordinators find their workers through a `discoveryd` cluster behind nginx, the real
//! airlift discovery client, and the Java airlift discovery server answering the same
//! requests as ours. The Java side is the Maven tree in `tests/interop/java`, built on
//! first use; Maven downloads what it needs from Maven Central into `~/.m2`.
//!
//! Run it on its own with `cargo test --test interop`. It needs a Java 17 and a Java 25
//! JDK, Maven and nginx; it installs nginx when missing and fails (never skips) when
//! something else is.

mod airlift_client;
mod announce_mode;
mod differential;
mod presto;
mod support;
mod trino;
