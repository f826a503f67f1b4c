//! A small, generic HTTP server: HTTP/1.1 and HTTP/2 (hyper-util's auto builder) over plain
//! TCP, or over TLS (tokio-rustls, ALPN `h2` and `http/1.1`) when a certificate is given.
//!
//! It knows nothing about health codes. It bounds what a peer can make it hold (body size,
//! time to send the request head, TLS handshake time, open connections), reads the whole
//! body, and hands a `Request<Bytes>` to a [`Handler`]. On shutdown it stops accepting, lets
//! in-flight requests finish (hyper's graceful shutdown), and gives up on stragglers after
//! a drain timeout. The simulator uses it; the gateway may share it later.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the server calls for each request, with the body read in full.
pub type Handler = Arc<dyn Fn(Request<Bytes>) -> BoxFuture<'static, Response<Bytes>> + Send + Sync>;

/// Default largest request body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Default time a client has to send a request head (HTTP/1.1) or finish the TLS handshake.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on open connections; accepting waits while it is reached.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Default time in-flight requests get to finish after shutdown begins.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate chain or private key is not usable PEM, or rustls refused them
    /// (e.g. the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The listener's local address could not be read.
    #[error("listener: {0}")]
    Listener(std::io::Error),
}

/// Limits and transport of one listener.
#[derive(Clone)]
pub struct ServerConfig {
    /// Largest request body; a larger one is answered 413 without calling the handler.
    pub max_body_bytes: usize,
    /// Time allowed for the TLS handshake and for each HTTP/1.1 request head.
    pub header_read_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// TLS, when set; plain TCP otherwise.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            tls: None,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_connections", &self.max_connections)
            .field("drain_timeout", &self.drain_timeout)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A rustls server configuration from a PEM certificate chain and a PEM private key
/// (PKCS#8, SEC1 or PKCS#1), with ALPN `h2` and `http/1.1`, on the ring provider.
pub fn tls_config_from_files(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ServerError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| ServerError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    tls_config_from_pem(&read(cert)?, &read(key)?)
}

/// [`tls_config_from_files`] from PEM bytes.
pub fn tls_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::ServerConfig, ServerError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(format!("certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ServerError::Tls("no certificate in the PEM file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| ServerError::Tls(format!("private key: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ServerError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `listener` until `shutdown` completes, then drains.
///
/// Accept errors (e.g. out of file descriptors) are logged and retried after a pause; a
/// failed TLS handshake or a broken connection ends that connection only.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    handler: Handler,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let local = listener.local_addr().map_err(ServerError::Listener)?;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(64 * 1024)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let acceptor = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tracing::debug!(%local, tls = acceptor.is_some(), "serving");

    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // the semaphore is never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        let handler = Arc::clone(&handler);
        let max_body = config.max_body_bytes;
        let handshake_timeout = config.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            // The server detects HTTP/1.1 or HTTP/2 from the first bytes, with no deadline
            // of its own: a connection that has sent no request within the header deadline
            // is dropped (below).
            let asked = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let seen = Arc::clone(&asked);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                seen.store(true, std::sync::atomic::Ordering::Relaxed);
                let handler = Arc::clone(&handler);
                async move {
                    Ok::<_, Infallible>(respond(req, &handler, max_body, handshake_timeout).await)
                }
            });
            let silent = async {
                tokio::time::sleep(handshake_timeout).await;
                if asked.load(std::sync::atomic::Ordering::Relaxed) {
                    std::future::pending::<()>().await;
                }
            };
            let result = match acceptor {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        r = watcher.watch(conn.into_owned()) => r,
                        () = silent => {
                            tracing::debug!(%peer, "no request within the header deadline");
                            return;
                        }
                    }
                }
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls), service);
                    tokio::select! {
                        r = watcher.watch(conn.into_owned()) => r,
                        () = silent => {
                            tracing::debug!(%peer, "no request within the header deadline");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(config.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(%local, "drain timeout: closing connections with requests in flight");
    }
    Ok(())
}

/// Reads the body within the limit and the deadline, and calls the handler.
async fn respond(
    req: Request<Incoming>,
    handler: &Handler,
    max_body: usize,
    read_timeout: Duration,
) -> Response<Full<Bytes>> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(read_timeout, Limited::new(body, max_body).collect());
    let bytes = match read.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        Ok(Err(_)) => return plain(StatusCode::BAD_REQUEST, "request body could not be read"),
        Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "request body not sent in time"),
    };
    let response = handler(Request::from_parts(parts, bytes)).await;
    response.map(Full::new)
}

/// A short plain-text answer from the server itself.
pub fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The address a listener is bound to, as a URL base (`http://127.0.0.1:PORT`).
pub fn base_url(addr: SocketAddr, tls: bool) -> String {
    format!("{}://{addr}", if tls { "https" } else { "http" })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A server answering 200 to everything, with a 300 ms header deadline.
    async fn quick() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler: Handler =
            Arc::new(|_req| Box::pin(async { Response::new(Bytes::from_static(b"ok")) }));
        let config = ServerConfig {
            header_read_timeout: Duration::from_millis(300),
            ..ServerConfig::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, config, handler, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    async fn answer_within(s: &mut tokio::net::TcpStream, limit: Duration) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        tokio::time::timeout(limit, s.read_to_end(&mut out))
            .await
            .ok()
            .map(|_| out)
    }

    #[tokio::test]
    async fn a_silent_connection_and_a_body_never_sent_are_given_up() {
        let (addr, _stop) = quick().await;
        // Nothing sent: closed after the header deadline, not held for ever.
        let started = Instant::now();
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let got = answer_within(&mut silent, Duration::from_secs(5)).await;
        assert_eq!(
            got.as_deref(),
            Some(&b""[..]),
            "after {:?}",
            started.elapsed()
        );
        // A head that promises a body it never sends: 408 after the deadline.
        let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
        stalled
            .write_all(b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        let read =
            tokio::time::timeout(Duration::from_secs(5), stalled.read_exact(&mut head)).await;
        assert!(matches!(read, Ok(Ok(_))), "{read:?}");
        assert_eq!(&head, b"HTTP/1.1 408");
        // A client that asks is served.
        let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let got = answer_within(&mut ok, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(got.starts_with(b"HTTP/1.1 200"));
    }
}
