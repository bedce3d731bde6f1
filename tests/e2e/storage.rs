//! A full disk (a real tmpfs, filled up): while writes cannot reach the disk the node
//! says so (not ready, with the reason, so nginx sends writes elsewhere) and a SIGTERM
//! still exits 0 within the shutdown deadline, though sled's flush hangs after the disk
//! ran full. Once the disk has room again the node gets well by itself: sled cannot, so
//! the node restarts in place (same process id, same port) and serves again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use discovery_testkit::eventually;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{discoveryd, new_id, service, Server, ENV};

/// A tmpfs of `size` mounted for the test, unmounted when dropped. Mounting needs root
/// (CI runs as root); without it the test fails with that reason.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temporary directory");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "cannot mount a tmpfs on {} ({status}): this test needs root",
            dir.path().display()
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn large_announcement() -> serde_json::Value {
    json!({
        "environment": ENV,
        "pool": "alpha",
        "location": "/big",
        "services": [service(&new_id(), "storage", json!({ "blob": "z".repeat(50_000) }))],
    })
}

/// A node on a 3 MB tmpfs whose disk a filler file has filled until writes failed and the
/// node reported not ready; returns the filler to remove.
async fn node_on_a_full_disk(disk: &Tmpfs) -> (Server, PathBuf) {
    let data: PathBuf = disk.path().join("data");
    let server = Server::start_with(discoveryd!(), |mut options| {
        options.data_dir = data.clone();
        options
    });
    let filler = disk.path().join("filler");
    std::fs::write(&filler, vec![0u8; 2_000_000]).expect("fill most of the disk");

    let mut refused = None;
    for n in 0..100 {
        let reply = server
            .put_announcement(&format!("big-{n}"), &large_announcement())
            .await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(reply);
            break;
        }
        server.expect_status(&reply, StatusCode::ACCEPTED);
    }
    let Some(refused) = refused else {
        server.fail("100 announcements of 50 KB fit on a 1 MB disk")
    };
    server.check(
        refused.text().contains("storage"),
        format!("the refusal says why: {refused}"),
    );
    eventually(
        Duration::from_secs(10),
        "the node to report its storage failing",
        || async {
            let reply = server.get("/v1/health/ready").await;
            anyhow::ensure!(
                reply.status == StatusCode::SERVICE_UNAVAILABLE && reply.text().contains("storage"),
                "{reply}"
            );
            anyhow::Ok(())
        },
    )
    .await;
    (server, filler)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_the_node_not_ready_and_sigterm_still_exits_0() {
    let disk = Tmpfs::mount("3m");
    let (mut server, filler) = node_on_a_full_disk(&disk).await;

    std::fs::remove_file(&filler).expect("free the disk");
    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM exits 0 even with storage failing: {status}"
    );
    let logs = server.logs();
    assert!(
        logs.contains("ERROR") && logs.contains("storage is failing"),
        "the failure was logged at ERROR:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_the_disk_has_room_again_the_node_restarts_in_place_and_serves() {
    let disk = Tmpfs::mount("3m");
    let (mut server, filler) = node_on_a_full_disk(&disk).await;
    let pid = server.process().pid();

    std::fs::remove_file(&filler).expect("free the disk");
    server.log_line("restarting in place").await;
    // The grace (10 s), the shutdown (its flush bounded to 10 s) and a fresh start.
    eventually(
        Duration::from_secs(60),
        "the node to be ready again after restarting itself",
        || async {
            // Refused connections too while it restarts.
            let reply = reqwest::get(server.url("/v1/health/ready")).await?;
            anyhow::ensure!(reply.status() == StatusCode::OK, "{}", reply.status());
            anyhow::Ok(())
        },
    )
    .await;
    server.check_eq(
        server.process().pid(),
        pid,
        "the process id after the restart",
    );
    let after = format!("after-{}", new_id());
    let reply = server
        .put_announcement(
            &after,
            &json!({
                "environment": ENV,
                "pool": "alpha",
                "services": [service(&new_id(), "storage", json!({}))],
            }),
        )
        .await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
    server.check(
        server.services_of_node(&after).await.len() == 1,
        "a new announcement is listed after the restart",
    );
    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM after the restart exits 0: {status}"
    );
    let logs = server.logs();
    assert!(
        logs.contains("cannot recover in process") && logs.matches("listening on").count() >= 2,
        "the restart was logged and the node listened again:\n{logs}"
    );
}
