//! `hyper-baseline`: the physical ceiling of HTTP on this machine for discovery's request
//! shapes — bare hyper 1.x (http1, keep-alive) on a multi-threaded tokio runtime, with no
//! routing framework, no parsing and no state:
//!
//! * `PUT` any path: the body is read and dropped; `202` with `Cache-Control: max-age=10`
//!   (what `discoveryd` answers to an announcement).
//! * `GET /body/{size}`: a pre-built JSON body of `size` bytes (one of `--body-sizes`) with
//!   the headers of a discovery lookup (`Content-Type`, `Cache-Control`, `ETag`,
//!   `X-Content-Type-Options`); `304` when `If-None-Match` carries its ETag.
//!
//! Run as its own process (so its CPU and memory are measured apart from the load
//! generator); it prints `hyper-baseline listening on http://ADDR` once bound.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub const LISTENING: &str = "hyper-baseline listening on http://";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Loopback address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port; 0 for any free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Sizes of the pre-built GET bodies, in bytes, served at `/body/{size}`.
    #[arg(long, value_delimiter = ',', default_value = "4096")]
    body_sizes: Vec<usize>,
    /// Exit when standard input closes (the benchmark that started it is gone).
    #[arg(long)]
    exit_on_stdin_eof: bool,
    /// Exit after this many seconds whatever happens.
    #[arg(long, default_value_t = 3600)]
    max_lifetime_secs: u64,
}

/// A pre-built body: `{"pad":"xxx…"}` of exactly `size` bytes (plain `x`s below 10 bytes).
pub fn json_body(size: usize) -> Bytes {
    const OPEN: &[u8] = br#"{"pad":""#;
    const CLOSE: &[u8] = br#""}"#;
    if size < OPEN.len() + CLOSE.len() {
        return Bytes::from(vec![b'x'; size]);
    }
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(OPEN);
    body.resize(size - CLOSE.len(), b'x');
    body.extend_from_slice(CLOSE);
    Bytes::from(body)
}

/// The path of the body of `size` bytes.
pub fn body_path(size: usize) -> String {
    format!("/body/{size}")
}

/// The ETag of the body of `size` bytes.
pub fn body_etag(size: usize) -> String {
    format!("\"baseline-{size}\"")
}

struct Prebuilt {
    body: Bytes,
    etag: HeaderValue,
}

struct Bodies(HashMap<String, Prebuilt>);

pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(
        args.bind.is_loopback(),
        "hyper-baseline binds loopback addresses only"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(SocketAddr::new(args.bind, args.port)).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{LISTENING}{}", listener.local_addr()?)?;
        stdout.flush()?;
    }
    if args.exit_on_stdin_eof {
        // A blocking read on a thread of its own: returns when the parent closes the pipe.
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    serve_on(
        listener,
        &args.body_sizes,
        Duration::from_secs(args.max_lifetime_secs),
    )
    .await
}

/// Serves on `listener` for `lifetime`.
pub async fn serve_on(
    listener: TcpListener,
    body_sizes: &[usize],
    lifetime: Duration,
) -> anyhow::Result<()> {
    let mut bodies = HashMap::new();
    for &size in body_sizes {
        bodies.insert(
            body_path(size),
            Prebuilt {
                body: json_body(size),
                etag: HeaderValue::from_str(&body_etag(size))?,
            },
        );
    }
    let bodies = Arc::new(Bodies(bodies));
    let lifetime = tokio::time::sleep(lifetime);
    tokio::pin!(lifetime);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut lifetime => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let bodies = Arc::clone(&bodies);
        let connection = http.serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(move |request| {
                let bodies = Arc::clone(&bodies);
                async move { Ok::<_, Infallible>(respond(&bodies, request).await) }
            }),
        );
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

async fn respond(bodies: &Bodies, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let cache = HeaderValue::from_static("max-age=10");
    match *request.method() {
        Method::PUT => {
            // Read the whole body, as a server that parses it must.
            let _ = request.into_body().collect().await;
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::ACCEPTED;
            response.headers_mut().insert(CACHE_CONTROL, cache);
            response
        }
        Method::GET => {
            let Some(prebuilt) = bodies.0.get(request.uri().path()) else {
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = StatusCode::NOT_FOUND;
                return response;
            };
            let not_modified = request
                .headers()
                .get(IF_NONE_MATCH)
                .is_some_and(|tag| tag == prebuilt.etag);
            let mut response = if not_modified {
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = StatusCode::NOT_MODIFIED;
                response
            } else {
                let mut response = Response::new(Full::new(prebuilt.body.clone()));
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                response
            };
            let headers = response.headers_mut();
            headers.insert(CACHE_CONTROL, cache);
            headers.insert(ETAG, prebuilt.etag.clone());
            response
        }
        _ => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
        }
    }
}

/// A running baseline process; killed when dropped.
pub struct BaselineProcess {
    child: std::process::Child,
    addr: SocketAddr,
}

impl BaselineProcess {
    /// Starts `discovery-bench hyper-baseline` (this same binary) serving `body_sizes`.
    pub fn start(body_sizes: &[usize]) -> anyhow::Result<Self> {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let sizes: Vec<String> = body_sizes.iter().map(ToString::to_string).collect();
        let mut child = Command::new(std::env::current_exe()?)
            .args(["hyper-baseline", "--exit-on-stdin-eof", "--body-sizes"])
            .arg(sizes.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take();
        let mut guard = BaselineProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut line = String::new();
        if let Some(stdout) = stdout {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let addr = line
            .trim()
            .strip_prefix(LISTENING)
            .and_then(|addr| addr.parse().ok());
        match addr {
            Some(addr) => guard.addr = addr,
            None => anyhow::bail!("hyper-baseline did not start: {line:?}"),
        }
        Ok(guard)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BaselineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_exact_size_and_are_json() {
        for size in [0, 5, 10, 11, 4096, 1_000_000] {
            let body = json_body(size);
            assert_eq!(body.len(), size);
            if size >= 10 {
                let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert!(value["pad"].is_string());
            }
        }
        assert_eq!(body_path(4096), "/body/4096");
        assert_eq!(body_etag(4096), "\"baseline-4096\"");
    }
}
