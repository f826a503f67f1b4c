//! The listeners: TCP accept, TLS handshake under a deadline, HTTP/1.1 or HTTP/2 with head
//! size and read-time limits, and graceful shutdown that drains within a grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::{Gateway, ServerError, admin, pipeline};
use crate::auth::certificate_app_ids;

/// What a connection knows of its peer.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its address.
    pub addr: SocketAddr,
    /// The appIds its client certificate names; empty without one.
    pub cert_app_ids: Arc<Vec<String>>,
}

/// A started gateway.
#[derive(Debug)]
pub struct Running {
    /// The public listener's address (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// The admin listener's address.
    pub admin_addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish within the grace period, and
    /// returns when every connection is closed or the grace period ended.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.done.await;
    }

    /// A handle that triggers shutdown (for signal handlers).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Waits until the gateway has stopped.
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

/// Binds both listeners and starts serving.
///
/// # Errors
/// [`ServerError::Bind`] or [`ServerError::Tls`].
pub async fn start(gw: Arc<Gateway>) -> Result<Running, ServerError> {
    let cfg = gw.config.load_full();
    let s = &cfg.server;
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.to_string(),
                source,
            })
    };
    let listener = bind(s.listen).await?;
    let admin_listener = bind(s.admin_listen).await?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: s.listen.to_string(),
        source,
    })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| ServerError::Bind {
            addr: s.admin_listen.to_string(),
            source,
        })?;
    gw.listener_bound(s.listen, addr);
    let tls = if s.insecure_plain_http {
        None
    } else {
        Some(TlsAcceptor::from(super::tls::server_config(s)?))
    };

    let (stop, mut stopped) = watch::channel(false);
    let admin_stop = stop.subscribe();
    tokio::spawn(admin::serve(Arc::clone(&gw), admin_listener, admin_stop));
    // Status-change callbacks, including those still pending from before a restart.
    let deliveries = super::recognition::spawn_deliveries(Arc::clone(&gw));
    let retention = super::recognition::spawn_retention(Arc::clone(&gw));
    let sweep = spawn_cache_sweep(Arc::clone(&gw));
    let nonce_saves = spawn_nonce_saves(Arc::clone(&gw));

    // Over TLS the protocol is known from ALPN, so each connection goes straight to its
    // HTTP/1.1 or HTTP/2 server: the automatic detection reads the first bytes with no
    // deadline, and a client that sent nothing after the handshake was held for good.
    // HTTP/1.1 waits between requests under header_read_timeout; HTTP/2 pings an idle
    // peer and closes a dead one; max_connections bounds the rest.
    let builders = Arc::new(Builders {
        auto: builder(s),
        http1: builder(s).http1_only(),
        http2: builder(s).http2_only(),
    });
    let permits = Arc::new(Semaphore::new(s.max_concurrency));
    let connections = Arc::new(Semaphore::new(s.max_connections));
    let sources = Arc::new(Sources {
        open: std::sync::Mutex::new(std::collections::HashMap::new()),
        cap: s.max_connections_per_ip,
    });
    let handshake_deadline = s.header_read_timeout;
    let grace = s.shutdown_grace;
    let graceful = GracefulShutdown::new();

    let done = tokio::spawn(async move {
        loop {
            let (tcp, peer_addr) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors or similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = stopped.changed() => break,
            };
            let (Ok(open), Some(source)) = (
                Arc::clone(&connections).try_acquire_owned(),
                Sources::enter(&sources, peer_addr.ip()),
            ) else {
                // At a cap (all connections, or this source's): closed at once, before any
                // TLS work.
                gw.metrics
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (gw, builders, permits, tls) = (
                Arc::clone(&gw),
                Arc::clone(&builders),
                Arc::clone(&permits),
                tls.clone(),
            );
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _open = (open, source);
                match tls {
                    None => {
                        let peer = Peer {
                            addr: peer_addr,
                            cert_app_ids: Arc::new(Vec::new()),
                        };
                        let http = &builders.auto;
                        let first = Some(handshake_deadline);
                        let io = TokioIo::new(tcp);
                        serve_conn(http, first, watcher, gw, permits, io, peer).await;
                    }
                    Some(acceptor) => {
                        let stream =
                            match tokio::time::timeout(handshake_deadline, acceptor.accept(tcp))
                                .await
                            {
                                Ok(Ok(s)) => s,
                                _ => {
                                    gw.metrics.tls_failures.fetch_add(1, Ordering::Relaxed);
                                    return;
                                }
                            };
                        let tls_state = stream.get_ref().1;
                        let ids = tls_state
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| certificate_app_ids(c))
                            .unwrap_or_default();
                        // HTTP/1.1 times its request heads itself; an HTTP/2 client has the
                        // same time for its first request (preface and headers).
                        let (http, first) = if tls_state.alpn_protocol() == Some(b"h2".as_slice()) {
                            (&builders.http2, Some(handshake_deadline))
                        } else {
                            (&builders.http1, None)
                        };
                        let peer = Peer {
                            addr: peer_addr,
                            cert_app_ids: Arc::new(ids),
                        };
                        let io = TokioIo::new(stream);
                        serve_conn(http, first, watcher, gw, permits, io, peer).await;
                    }
                }
            });
        }
        gw.ready.store(false, Ordering::SeqCst);
        drop(listener);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "shutdown grace period ended with connections open"
            );
        }
        // Undelivered callbacks stay in the outbox for the next start.
        deliveries.abort();
        retention.abort();
        sweep.abort();
        // The replay store, once more after the drain, so that the next start refuses
        // every nonce this process accepted (closed first: see close_and_save).
        nonce_saves.abort();
        let saving = Arc::clone(&gw);
        let _ = tokio::task::spawn_blocking(move || {
            saving.saved_nonces.close_and_save(&saving.metrics)
        })
        .await;
    });
    Ok(Running {
        addr,
        admin_addr,
        stop,
        done,
    })
}

/// Serves one connection (plain or TLS) until it closes or shutdown drains it.
///
/// With `first_request`, a connection on which no request has arrived by then is closed:
/// an HTTP/2 client that never sends its preface or a request (hyper waits for them without
/// a deadline), or a plain-HTTP client that sends nothing.
async fn serve_conn<I>(
    http: &Builder<TokioExecutor>,
    first_request: Option<std::time::Duration>,
    watcher: hyper_util::server::graceful::Watcher,
    gw: Arc<Gateway>,
    permits: Arc<Semaphore>,
    io: TokioIo<I>,
    peer: Peer,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw = Arc::clone(&seen);
    let svc = service_fn(move |req| {
        saw.store(true, Ordering::Relaxed);
        let (gw, permits, peer) = (Arc::clone(&gw), Arc::clone(&permits), peer.clone());
        async move { Ok::<_, std::convert::Infallible>(pipeline::handle(gw, permits, peer, req).await) }
    });
    let conn = http.serve_connection(io, svc).into_owned();
    let served = watcher.watch(conn);
    let Some(deadline) = first_request else {
        let _ = served.await;
        return;
    };
    tokio::pin!(served);
    tokio::select! {
        _ = &mut served => {}
        () = tokio::time::sleep(deadline) => {
            // Dropping the connection closes it.
            if seen.load(Ordering::Relaxed) {
                let _ = served.await;
            }
        }
    }
}

/// Connections open per source address (IPv6 by /64), against `server.max_connections_per_ip`.
struct Sources {
    open: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    cap: usize,
}

/// One open connection of a source; leaves the count when dropped.
struct Source {
    sources: Arc<Sources>,
    ip: std::net::IpAddr,
}

impl Sources {
    /// Counts a connection from `ip`, unless its source is at the cap.
    fn enter(this: &Arc<Self>, ip: std::net::IpAddr) -> Option<Source> {
        let ip = crate::ratelimit::ip_bucket(ip);
        let mut open = crate::store::lock(&this.open);
        let n = open.entry(ip).or_default();
        if *n >= this.cap {
            return None;
        }
        *n += 1;
        Some(Source {
            sources: Arc::clone(this),
            ip,
        })
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let mut open = crate::store::lock(&self.sources.open);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The connection servers: by ALPN over TLS, detected on plain HTTP (development only).
struct Builders {
    auto: Builder<TokioExecutor>,
    http1: Builder<TokioExecutor>,
    http2: Builder<TokioExecutor>,
}

/// HTTP/1.1 and HTTP/2 with the listener's limits.
fn builder(s: &crate::config::ServerSettings) -> Builder<TokioExecutor> {
    let mut http = Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(s.header_read_timeout)
        .max_buf_size(s.max_header_bytes.max(8192));
    http.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(s.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(H2_PING_INTERVAL))
        .keep_alive_timeout(H2_PING_TIMEOUT);
    http
}

/// How often an idle HTTP/2 peer is pinged.
const H2_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an HTTP/2 ping may go unanswered before the connection is closed.
const H2_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often the cache sweep runs.
const CACHE_SWEEP: std::time::Duration = std::time::Duration::from_secs(10);

/// Saves the replay store every [`NONCE_SAVE_EVERY`](crate::envelope::NONCE_SAVE_EVERY), off
/// the runtime's workers, so that a crash forgets at most that much of it.
fn spawn_nonce_saves(gw: Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(crate::envelope::NONCE_SAVE_EVERY).await;
            let saving = Arc::clone(&gw);
            let _ = tokio::task::spawn_blocking(move || saving.saved_nonces.save(&saving.metrics))
                .await;
        }
    })
}

/// The cache sweep: every [`CACHE_SWEEP`], answers past their freshness deadline leave
/// memory (a read would never serve them; this frees what no read meets).
fn spawn_cache_sweep(gw: Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CACHE_SWEEP).await;
            let removed = gw.cache.run_pending_tasks().await;
            if removed > 0 {
                tracing::debug!(removed, "expired cache entries freed");
            }
        }
    })
}
