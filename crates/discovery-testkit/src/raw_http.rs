//! Just enough HTTP/1.1 to play a peer by hand: read one request off a connection and
//! write one response.
//!
//! The stubs of [`crate::stub`] and the fake discovery server of the fleet simulator's
//! tests answer in ways a real server cannot be made to (a 503 on demand, no answer at
//! all, a node hidden from lookups), so they speak HTTP over a bare socket. One reader
//! means one set of parsing rules; it reads the body by `Content-Length` so that no
//! response is written before its request has arrived whole.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The longest request head (request line and headers) read; a longer one ends the
/// connection instead of growing a buffer without bound.
const MAX_HEAD: usize = 64 * 1024;

/// The largest body read.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// The request line, e.g. `POST /v1/store/dynamic HTTP/1.1`.
    pub line: String,
    pub method: String,
    pub path: String,
    /// Header names as sent (compare them case-insensitively, see [`RawRequest::header`]).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The value of the first header called `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request: `None` when the connection ends first, or when the request is not
/// one this reader understands (no method and path, a head or body over the limits, a
/// `Content-Length` that is not a number). Keep-alive works: call it again on the same
/// reader for the next request.
pub async fn read_request<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<RawRequest> {
    let mut head_left = MAX_HEAD;
    let line = read_line(reader, &mut head_left).await?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let header = read_line(reader, &mut head_left).await?;
        if header.is_empty() {
            break;
        }
        // A line without a colon is not a header; skip it as lenient servers do.
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut request = RawRequest {
        line,
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let length: usize = match request.header("content-length") {
        Some(value) => value.parse().ok()?,
        None => 0,
    };
    if length > MAX_BODY {
        return None;
    }
    request.body = vec![0; length];
    reader.read_exact(&mut request.body).await.ok()?;
    Some(request)
}

/// One line of the head without its line ending; `None` at the end of the connection or
/// past the head's limit.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, left: &mut usize) -> Option<String> {
    let mut line = String::new();
    let limit = u64::try_from(*left).unwrap_or(u64::MAX);
    let read = (&mut *reader).take(limit).read_line(&mut line).await.ok()?;
    if read == 0 || !line.ends_with('\n') {
        return None;
    }
    *left -= read;
    Some(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Writes a response with `headers`, a `Content-Length` and `body`. The reason phrase is
/// the standard one of `status`.
pub async fn write_response<W: AsyncWrite + Unpin>(
    writer: &mut W,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes()).await?;
    writer.write_all(body).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_requests_one_after_the_other() {
        let wire = b"PUT /v1/announcement/n1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nUser-Agent: n1\r\n\r\n{}\
GET /v1/service HTTP/1.1\r\nIf-None-Match: \"e\"\r\n\r\n";
        let mut reader = tokio::io::BufReader::new(&wire[..]);
        let first = read_request(&mut reader).await.expect("first request");
        assert_eq!(first.line, "PUT /v1/announcement/n1 HTTP/1.1");
        assert_eq!(
            (first.method.as_str(), first.path.as_str()),
            ("PUT", "/v1/announcement/n1")
        );
        assert_eq!(first.header("user-agent"), Some("n1"));
        assert_eq!(first.body, b"{}");
        let second = read_request(&mut reader).await.expect("second request");
        assert_eq!(second.header("IF-NONE-MATCH"), Some("\"e\""));
        assert!(second.body.is_empty());
        assert_eq!(read_request(&mut reader).await, None);
    }

    #[tokio::test]
    async fn a_truncated_body_is_no_request() {
        let wire = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
        let mut reader = tokio::io::BufReader::new(&wire[..]);
        assert_eq!(read_request(&mut reader).await, None);
    }

    #[tokio::test]
    async fn writes_the_status_line_headers_and_body() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            503,
            &[("content-type", "text/plain".into())],
            b"busy",
        )
        .await
        .expect("write to a Vec");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\ncontent-type: text/plain\r\n\r\nbusy"
        );
    }
}
