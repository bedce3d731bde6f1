//! Damaged data at start: a node notices what its storage engine lost instead of serving
//! part of its state as if it were all, refuses to start, and starts with `--repair` when
//! told (docs/RELIABILITY.md).

use std::process::ExitStatus;

use reqwest::StatusCode;

use crate::support::{discoveryd, run_to_exit, storage_node, Server};

/// A server that held `nodes` announcements and stopped cleanly (SIGTERM, exit 0).
async fn stopped_cleanly(nodes: usize) -> Server {
    let mut server = Server::start(discoveryd!());
    for n in 0..nodes {
        server.announce(&format!("node-{n}"), &storage_node()).await;
    }
    let status = server.terminate();
    assert!(status.success(), "SIGTERM exits 0: {status}");
    server
}

/// Starts `discoveryd` on `server`'s data directory and expects it to exit.
async fn start_expecting_exit(server: &Server) -> (ExitStatus, String) {
    run_to_exit(Some(&server.process().options().data_dir), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_data_file_stops_the_start_and_repair_starts_with_nothing() {
    let mut server = stopped_cleanly(5).await;
    let db = server.process().options().data_dir.join("db");
    std::fs::remove_dir_all(&db).expect("remove the sled directory");

    let (status, output) = start_expecting_exit(&server).await;
    assert!(!status.success(), "started without its data: {output}");
    assert!(
        output.contains("damaged") && output.contains("missing") && output.contains("--repair"),
        "says what is lost and how to go on: {output}"
    );
    assert!(!output.contains("listening on"), "{output}");

    server.restart_in_place(|mut options| {
        options.args.push("--repair".into());
        options
    });
    let line = server.log_line("damaged data").await;
    assert!(line.contains("ERROR"), "logged at ERROR: {line}");
    // Standalone, it serves once its clients have re-announced (the warm-up, 0 here).
    let reply = server.get("/v1/service/storage").await;
    server.expect_status(&reply, StatusCode::OK);
    server.check_eq(server.dump("dynamic").await.len(), 0, "nothing was read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_data_file_is_noticed_not_served_in_part() {
    let server = stopped_cleanly(200).await;
    let file = server.process().options().data_dir.join("db").join("db");
    let length = std::fs::metadata(&file).expect("the sled data file").len();
    let handle = std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open the data file");
    handle.set_len(length / 2).expect("truncate");
    drop(handle);

    let (status, output) = start_expecting_exit(&server).await;
    assert!(!status.success(), "started on half a data file: {output}");
    assert!(
        output.contains(&server.process().options().data_dir.display().to_string()),
        "names the data directory: {output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_and_a_sigkill_restart_pass_the_check() {
    let server = stopped_cleanly(20).await;
    let mut server = server.restart();
    server.check_eq(server.dump("dynamic").await.len(), 20, "all read back");
    server.kill();
    let server = server.restart();
    server.check_eq(server.dump("dynamic").await.len(), 20, "after kill -9 too");
}

// sled's recovery stops at the first bad segment and opens with what came before it,
// without an error: one flipped bit in the middle of the file lost about half the entries
// when this was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flipped_bit_in_the_data_file_is_noticed() {
    let server = stopped_cleanly(300).await;
    let file = server.process().options().data_dir.join("db").join("db");
    let mut bytes = std::fs::read(&file).expect("the sled data file");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&file, bytes).expect("write the data file back");

    let (status, output) = start_expecting_exit(&server).await;
    assert!(!status.success(), "started on a damaged file: {output}");
    assert!(
        output.contains("held 300 entries at the last clean shutdown"),
        "says what was lost: {output}"
    );
}
