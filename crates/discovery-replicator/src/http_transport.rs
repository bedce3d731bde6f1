//! The production transport: JSON over HTTP/1.1 to the peer's `/v1/replication/...`
//! endpoints, with a deadline on every request; over HTTPS to peers whose inventory entry
//! has an `https` URL, trusted as [`crate::tls`] says.

use std::time::Duration;

use discovery_types::replication::{
    DiffRequest, DiffResponse, FetchRequest, PushRequest, PushResponse, RangesRequest,
    RangesResponse, SummariesRequest, SummariesResponse, ANTI_ENTROPY_HEADER, RANGES_CAPABILITY,
};
use discovery_types::WireEntry;
use reqwest::header::{CONTENT_TYPE, IF_NONE_MATCH};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::peers::Peer;
use crate::tls::Truststore;
use crate::transport::{
    DigestAnswer, Exchange, PeerTransport, TransportError, TransportResult, CLOCK_HEADER,
    READY_HEADER,
};

/// Replication over HTTP. Cheap to clone (one shared connection pool).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    /// Signs every request when the cluster has a shared secret.
    signer: Option<discovery_auth::Minter>,
}

impl HttpTransport {
    /// `request_timeout` bounds every request, so a hung peer stalls only its own queue
    /// and only for that long. `https:` peers are verified against the system roots and
    /// `truststore` (`internal-communication.https.truststore.path`).
    pub fn new(
        node_id: &str,
        request_timeout: Duration,
        truststore: Option<&Truststore>,
    ) -> Result<Self, TransportError> {
        let client = crate::tls::client_builder(truststore)
            .user_agent(node_id)
            .connect_timeout(request_timeout.min(Duration::from_secs(3)))
            .timeout(request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            // Peers are addressed directly; an HTTP_PROXY in the environment must not
            // reroute replication.
            .no_proxy()
            .build()
            .map_err(|e| TransportError::Unreachable(format!("cannot build HTTP client: {e}")))?;
        Ok(HttpTransport {
            client,
            signer: None,
        })
    }

    /// Every request carries an internal token from `signer` (`Authorization: Bearer`):
    /// peers with the shared secret refuse replication without one.
    pub fn with_signer(mut self, signer: discovery_auth::Minter) -> Self {
        self.signer = Some(signer);
        self
    }

    fn signed(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.signer {
            Some(signer) => request.bearer_auth(signer.token()),
            None => request,
        }
    }

    fn url(peer: &Peer, store: &str, action: &str) -> String {
        format!("{}/v1/replication/{store}/{action}", peer.url)
    }

    async fn post<Q: Serialize, R: DeserializeOwned>(
        &self,
        url: String,
        request: &Q,
    ) -> TransportResult<R> {
        let body =
            serde_json::to_vec(request).map_err(|e| TransportError::Decode(e.to_string()))?;
        let bytes_sent = body.len() as u64;
        let response = self
            .signed(self.client.post(url))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        let bytes = read_bounded(response).await?;
        if !status.is_success() {
            return Err(status_error(status, &bytes));
        }
        let body =
            serde_json::from_slice(&bytes).map_err(|e| TransportError::Decode(e.to_string()))?;
        Ok(Exchange {
            body,
            bytes_sent,
            bytes_received: bytes.len() as u64,
        })
    }
}

impl PeerTransport for HttpTransport {
    async fn push(
        &self,
        peer: &Peer,
        store: &str,
        request: &PushRequest,
    ) -> TransportResult<PushResponse> {
        self.post(Self::url(peer, store, "push"), request).await
    }

    async fn digest(
        &self,
        peer: &Peer,
        store: &str,
        local_root: &str,
    ) -> TransportResult<DigestAnswer> {
        let response = self
            .signed(self.client.get(Self::url(peer, store, "digest")))
            .header(IF_NONE_MATCH, format!("\"{local_root}\""))
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        let peer_ready = response
            .headers()
            .get(READY_HEADER)
            .is_some_and(|v| v.as_bytes() == b"true");
        let peer_clock_ms = response
            .headers()
            .get(CLOCK_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let ranges = response
            .headers()
            .get(ANTI_ENTROPY_HEADER)
            .is_some_and(|v| v.as_bytes() == RANGES_CAPABILITY.as_bytes());
        let bytes = read_bounded(response).await?;
        let digest = match status {
            StatusCode::NOT_MODIFIED => None,
            s if s.is_success() => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| TransportError::Decode(e.to_string()))?,
            ),
            _ => return Err(status_error(status, &bytes)),
        };
        Ok(Exchange {
            body: DigestAnswer {
                digest,
                peer_ready,
                peer_clock_ms,
                ranges,
            },
            bytes_sent: 0,
            bytes_received: bytes.len() as u64,
        })
    }

    async fn summaries(
        &self,
        peer: &Peer,
        store: &str,
        request: &SummariesRequest,
    ) -> TransportResult<SummariesResponse> {
        self.post(Self::url(peer, store, "summaries"), request)
            .await
    }

    async fn fetch(
        &self,
        peer: &Peer,
        store: &str,
        request: &FetchRequest,
    ) -> TransportResult<Vec<WireEntry>> {
        self.post(Self::url(peer, store, "entries"), request).await
    }

    async fn ranges(
        &self,
        peer: &Peer,
        store: &str,
        request: &RangesRequest,
    ) -> TransportResult<RangesResponse> {
        self.post(Self::url(peer, store, "ranges"), request).await
    }

    async fn diff(
        &self,
        peer: &Peer,
        store: &str,
        request: &DiffRequest,
    ) -> TransportResult<DiffResponse> {
        self.post(Self::url(peer, store, "diff"), request).await
    }
}

/// Largest answer read from a peer. A peer's answers are bounded by its own limits (a
/// fetch answer by its replication request size, summaries by its store size); this bound
/// only keeps a hostile or broken peer from making us buffer without end.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The body of `response`, refused once it passes [`MAX_ANSWER_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, TransportError> {
    let too_large =
        || TransportError::Decode(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
    if response
        .content_length()
        .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn classify(error: reqwest::Error) -> TransportError {
    if error.is_timeout() {
        TransportError::Timeout
    } else {
        TransportError::Unreachable(error.to_string())
    }
}

fn status_error(status: StatusCode, body: &[u8]) -> TransportError {
    let text = String::from_utf8_lossy(body);
    let message: String = text.trim().chars().take(200).collect();
    TransportError::Status {
        status: status.as_u16(),
        message,
    }
}
