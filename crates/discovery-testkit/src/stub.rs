//! Stub HTTP peers on loopback, for the cases a real `discoveryd` cannot be made to
//! produce: a server that answers every request with the same status (a 503 on demand, a
//! 400 from "another environment"), and a hung peer that accepts connections and never
//! answers. Every stub records the requests it read, so a test can also check who called
//! (the replicator sends its node id as `User-Agent`).
//!
//! A stub binds port 0 on the address it is given (a cluster's spare address, or
//! 127.0.0.1). Dropping it stops accepting and closes every connection it holds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::raw_http::{read_request, write_response};

/// What a stub does with each request it has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Answers with this status and a `text/plain` body, then closes the connection.
    Status(u16, &'static str),
    /// Never answers: the connection is held open, as by a hung process.
    Never,
}

/// One request a stub read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The request line, e.g. `POST /v1/store/dynamic HTTP/1.1`.
    pub request_line: String,
    pub user_agent: Option<String>,
}

/// A stub HTTP server; see the module documentation.
pub struct Stub {
    url: String,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Stub {
    /// A stub on `ip` (any free port) that answers every request as `answer` says.
    pub async fn start(ip: &str, answer: Answer) -> Stub {
        let listener = TcpListener::bind((ip, 0))
            .await
            .unwrap_or_else(|e| panic!("cannot bind a stub server on {ip}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the stub server on {ip} has no address: {e}"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept(
            listener,
            answer,
            Arc::clone(&accepted),
            Arc::clone(&requests),
        ));
        Stub {
            url: format!("http://{addr}"),
            accepted,
            requests,
            task,
        }
    }

    /// A stub answering every request with `status` and `body`.
    pub async fn answering(ip: &str, status: u16, body: &'static str) -> Stub {
        Self::start(ip, Answer::Status(status, body)).await
    }

    /// A hung peer: it accepts connections and never answers.
    pub async fn hanging(ip: &str) -> Stub {
        Self::start(ip, Answer::Never).await
    }

    /// `http://ip:port` of the stub.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connections accepted so far (a hung peer reads no request on some of them).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Requests read so far, in the order they arrived. A request is recorded before it
    /// is answered, so a caller that got the answer finds its request here.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many requests have been read.
    pub fn hits(&self) -> usize {
        self.requests.lock().map(|r| r.len()).unwrap_or_default()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    answer: Answer,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Recorded>>>,
) {
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::SeqCst);
        // Reap finished connections so the set does not grow with every request.
        while connections.try_join_next().is_some() {}
        connections.spawn(serve(stream, answer, Arc::clone(&requests)));
    }
}

async fn serve(stream: TcpStream, answer: Answer, requests: Arc<Mutex<Vec<Recorded>>>) {
    let mut reader = BufReader::new(stream);
    let Some(request) = read_request(&mut reader).await else {
        return;
    };
    if let Ok(mut requests) = requests.lock() {
        requests.push(Recorded {
            request_line: request.line.clone(),
            user_agent: request.header("user-agent").map(str::to_owned),
        });
    }
    match answer {
        Answer::Never => {
            // Hold the connection (owned by `reader`) until the stub is dropped.
            std::future::pending::<()>().await;
        }
        Answer::Status(status, body) => {
            let stream = reader.get_mut();
            let headers = [
                ("content-type", "text/plain".to_owned()),
                ("connection", "close".to_owned()),
            ];
            // The caller may have given up already; nothing to report then.
            let _ = write_response(stream, status, &headers, body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(300))
            .build()
            .expect("an HTTP client")
    }

    #[tokio::test]
    async fn answers_and_records_every_request() {
        let stub = Stub::answering("127.0.0.1", 503, "busy\n").await;
        let response = client()
            .post(format!("{}/v1/store/dynamic", stub.url()))
            .header("user-agent", "n1")
            .body("[]")
            .send()
            .await
            .expect("the stub answers");
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.text().await.expect("a body"), "busy\n");
        assert_eq!(stub.hits(), 1);
        assert_eq!(
            stub.recorded(),
            [Recorded {
                request_line: "POST /v1/store/dynamic HTTP/1.1".into(),
                user_agent: Some("n1".into()),
            }]
        );
    }

    #[tokio::test]
    async fn a_hanging_stub_accepts_and_never_answers() {
        let stub = Stub::hanging("127.0.0.1").await;
        let error = client()
            .get(format!("{}/v1/service", stub.url()))
            .send()
            .await
            .expect_err("no answer");
        assert!(error.is_timeout(), "{error:?}");
        assert_eq!(stub.accepted(), 1);
    }
}
