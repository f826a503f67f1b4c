//! `hutong bench relay-floor`: the relay of the gateway's own stack with nothing of the
//! standard in it, a baseline for benches/bench.sh's scenario (c0).
//!
//! It accepts TLS as the gateway does (rustls with ring, TLS 1.2 and 1.3; ALPN offers
//! HTTP/1.1 alone, what the benchmark's wrk speaks), serves HTTP/1.1 with hyper as the
//! gateway does, reads each request's body whole, sends it
//! to one upstream through the same kind of pooled hyper-util client the gateway's
//! transport uses, reads the answer whole and returns its status, content type and body.
//! No envelope is opened, nothing is checked, counted, cached or recorded: it is what
//! nginx's `proxy_pass` does, written with the libraries the gateway is built on. The
//! distance between nginx and this floor is the stack's; the distance between this floor and
//! the gateway is the gateway's own work.
//!
//! It is a measuring instrument, not a proxy to deploy: its only limits are the gateway's
//! cap on a message's size, hyper's own head-read timeout and the client's connect
//! timeout, and it listens on loopback alone.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The largest body either way: the gateway's own cap on a message.
const MAX_BODY: usize = crate::national::validate::MAX_MESSAGE_BYTES;

type Upstream = Client<HttpConnector, Full<Bytes>>;

/// Serves until killed.
pub(super) fn relay_floor(
    listen: SocketAddr,
    cert: &Path,
    key: &Path,
    upstream: &str,
) -> anyhow::Result<ExitCode> {
    if !listen.ip().is_loopback() {
        bail!("relay-floor listens on loopback only (got {listen})");
    }
    let base: Uri = upstream
        .parse()
        .with_context(|| format!("--upstream {upstream:?} is not a URL"))?;
    if base.scheme_str() != Some("http")
        || base.authority().is_none()
        || base.path_and_query().is_some_and(|p| p.as_str() != "/")
    {
        bail!("--upstream must be http://HOST:PORT, without a path (got {upstream:?})");
    }
    let tls = TlsAcceptor::from(tls_config(cert, key)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        say!(
            "relay-floor listening on https://{} (to {base})",
            listener.local_addr()?
        );
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(2)));
        let client: Upstream = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            // The default of a region of the gateway (its upstream policy).
            .pool_max_idle_per_host(32)
            .build(http);
        let shared = Arc::new((client, base));
        loop {
            let (tcp, _) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (tls, shared) = (tls.clone(), Arc::clone(&shared));
            tokio::spawn(async move {
                let Ok(stream) = tls.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req| {
                    let shared = Arc::clone(&shared);
                    async move {
                        let (client, base) = &*shared;
                        Ok::<_, Infallible>(forward(client, base, req).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

/// One request there and its answer back, or 502 with an empty body.
async fn forward(client: &Upstream, base: &Uri, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match try_forward(client, base, req).await {
        Ok(r) => r,
        Err(()) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            r
        }
    }
}

async fn try_forward(
    client: &Upstream,
    base: &Uri,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ()> {
    let (parts, body) = req.into_parts();
    let body = whole(body).await?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = Uri::builder()
        .scheme("http")
        .authority(base.authority().ok_or(())?.clone())
        .path_and_query(path)
        .build()
        .map_err(drop)?;
    let mut out = Request::builder().method(parts.method).uri(uri);
    if let Some(t) = parts.headers.get(header::CONTENT_TYPE) {
        out = out.header(header::CONTENT_TYPE, t);
    }
    let answer = client
        .request(out.body(Full::new(body)).map_err(drop)?)
        .await
        .map_err(drop)?;
    let (parts, body) = answer.into_parts();
    let body = whole(body).await?;
    let mut r = Response::builder().status(parts.status);
    if let Some(t) = parts.headers.get(header::CONTENT_TYPE) {
        r = r.header(header::CONTENT_TYPE, t);
    }
    r.body(Full::new(body)).map_err(drop)
}

/// A body read whole, up to [`MAX_BODY`].
async fn whole(body: Incoming) -> Result<Bytes, ()> {
    let collected = http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(drop)?;
    Ok(collected.to_bytes())
}

/// The gateway's server TLS configuration without client certificates, HTTP/1.1 alone.
fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = crate::server::tls::config_for(cert, key, None)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
