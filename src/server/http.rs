//! The listeners: TCP accept, TLS handshake under a deadline, HTTP/1.1 or HTTP/2 with head
//! size and read-time limits, and graceful shutdown that drains within a grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::sources::Sources;
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
    // The admin listener stays up through the drain, so that /ready says 503 to probes
    // meanwhile; it stops once the drain is over.
    let (admin_stop, admin_stopped) = watch::channel(false);
    tokio::spawn(admin::serve(Arc::clone(&gw), admin_listener, admin_stopped));
    // Status-change callbacks, including those still pending from before a restart.
    let deliveries = super::recognition::spawn_deliveries(Arc::clone(&gw));
    let retention = super::recognition::spawn_retention(Arc::clone(&gw));
    let sweep = spawn_cache_sweep(Arc::clone(&gw));
    let nonce_saves = spawn_nonce_saves(Arc::clone(&gw));

    // Over TLS the protocol is known from ALPN, so each connection goes straight to its
    // HTTP/1.1 or HTTP/2 server: the automatic detection reads the first bytes with no
    // deadline, and a client that sent nothing after the handshake was held for good.
    // HTTP/1.1 waits between requests under header_read_timeout; HTTP/2 pings an idle
    // peer and closes a dead one, and closes one with no request for idle_timeout.
    let builders = Arc::new(Builders {
        auto: builder(s),
        http1: builder(s).http1_only(),
        http2: builder(s).http2_only(),
    });
    let permits = Arc::new(Semaphore::new(s.max_concurrency));
    // Every open connection holds one of these from accept to close, so the drain is
    // over when all of them are back.
    let connections = Arc::new(Semaphore::new(s.max_connections));
    let all_connections = u32::try_from(s.max_connections).unwrap_or(u32::MAX);
    let sources = Arc::new(Sources::default());
    let per_source = s.max_connections_per_ip;
    let handshake_deadline = s.header_read_timeout;
    let grace = s.shutdown_grace;

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
                Sources::enter(&sources, peer_addr.ip(), per_source),
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
            let watcher = stopped.clone();
            tokio::spawn(async move {
                let _open = (open, source);
                match tls {
                    None => {
                        let peer = Peer {
                            addr: peer_addr,
                            cert_app_ids: Arc::new(Vec::new()),
                        };
                        let times = Times {
                            first_request: Some(handshake_deadline),
                            idle: Some(gw.config.load().server.idle_timeout),
                            close_idle_within: H2_PING_TIMEOUT,
                        };
                        let io = TokioIo::new(tcp);
                        serve_conn(&builders.auto, times, watcher, gw, permits, io, peer).await;
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
                        // HTTP/1.1 times its request heads itself, between requests too; an
                        // HTTP/2 client has the same time for its first request (preface and
                        // headers), and idle_timeout between requests. HTTP/1.1 has
                        // idle_timeout as well, for a client that sends requests and never
                        // reads their answers: the gateway's writes stop, and only a head
                        // it had begun to read was timed.
                        let idle = Some(gw.config.load().server.idle_timeout);
                        let (http, times) = if tls_state.alpn_protocol() == Some(b"h2".as_slice()) {
                            let times = Times {
                                first_request: Some(handshake_deadline),
                                idle,
                                close_idle_within: H2_PING_TIMEOUT,
                            };
                            (&builders.http2, times)
                        } else {
                            let times = Times {
                                first_request: None,
                                idle,
                                close_idle_within: H1_IDLE_CLOSE,
                            };
                            (&builders.http1, times)
                        };
                        let peer = Peer {
                            addr: peer_addr,
                            cert_app_ids: Arc::new(ids),
                        };
                        let io = TokioIo::new(stream);
                        serve_conn(http, times, watcher, gw, permits, io, peer).await;
                    }
                }
            });
        }
        gw.ready.store(false, Ordering::SeqCst);
        drop(listener);
        // Each connection saw the stop and is closing: HTTP/1.1 after the answer in
        // flight, HTTP/2 with GOAWAY once its streams are done.
        if tokio::time::timeout(grace, connections.acquire_many(all_connections))
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
        let _ = admin_stop.send(true);
    });
    Ok(Running {
        addr,
        admin_addr,
        stop,
        done,
    })
}

/// The deadlines of one connection beyond hyper's own.
#[derive(Debug, Clone, Copy)]
struct Times {
    /// A connection on which no request has arrived by then is closed: an HTTP/2 client
    /// that never sends its preface or a request (hyper waits for them without a
    /// deadline), or a plain-HTTP client that sends nothing.
    first_request: Option<std::time::Duration>,
    /// A connection with no request in flight for this long is closed gracefully (HTTP/2
    /// answers pings by itself, so without this an idle one would stay for good).
    idle: Option<std::time::Duration>,
    /// How long the graceful close of an idle connection may take: an HTTP/2 ping's
    /// timeout; for HTTP/1.1, [`H1_IDLE_CLOSE`] (an answer that cannot be written is not
    /// waited for long).
    close_idle_within: std::time::Duration,
}

/// How long the close of an idle HTTP/1.1 connection may take before it is dropped.
const H1_IDLE_CLOSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves one connection (plain or TLS) until it closes, it has been idle too long
/// ([`Times`]), or `stop` says the gateway drains: then it is shut down gracefully.
async fn serve_conn<I>(
    http: &Builder<TokioExecutor>,
    times: Times,
    mut stop: watch::Receiver<bool>,
    gw: Arc<Gateway>,
    permits: Arc<Semaphore>,
    io: TokioIo<I>,
    peer: Peer,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let grace = gw.config.load().server.shutdown_grace;
    let activity = Arc::new(Activity::new());
    let svc = {
        let activity = Arc::clone(&activity);
        service_fn(move |req| {
            let busy = Activity::begin(&activity);
            let (gw, permits, peer) = (Arc::clone(&gw), Arc::clone(&permits), peer.clone());
            async move {
                let resp = pipeline::handle(gw, permits, peer, req).await;
                drop(busy);
                Ok::<_, std::convert::Infallible>(resp)
            }
        })
    };
    let conn = http.serve_connection(io, svc).into_owned();
    tokio::pin!(conn);
    // How long a graceful close may take: at a stop, the drain's grace (requests in flight
    // finish); when idle, a ping's timeout (nothing is in flight). A peer that holds the
    // close open past it (an HTTP/2 client that never acknowledges the GOAWAY) is dropped.
    let close_within = loop {
        let check = activity.next_check(times);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.wait_for(|stopping| *stopping) => break grace,
            () = sleep_until(check) => {
                if !activity.seen() {
                    if times.first_request.is_some_and(|d| activity.opened.elapsed() >= d) {
                        // No first request in time: dropping the connection closes it.
                        return;
                    }
                    continue;
                }
                if times.idle.is_some_and(|idle| activity.idle_for() >= Some(idle)) {
                    break times.close_idle_within;
                }
            }
        }
    };
    if !activity.seen() {
        // Stopped before a first request: nothing of the connection's to finish (hyper
        // would wait for an HTTP/2 preface that may never come).
        return;
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(close_within, conn).await;
}

/// Sleeps until `at`, or for good without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What one connection is doing: requests in flight, whether one ever came, and since when
/// it has had none (milliseconds from its opening).
#[derive(Debug)]
struct Activity {
    opened: tokio::time::Instant,
    in_flight: std::sync::atomic::AtomicUsize,
    seen: std::sync::atomic::AtomicBool,
    idle_since_ms: std::sync::atomic::AtomicU64,
}

/// One request of a connection, from its head to its answer.
struct Busy(Arc<Activity>);

impl Activity {
    /// A connection opened now.
    fn new() -> Self {
        Self {
            opened: tokio::time::Instant::now(),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            seen: std::sync::atomic::AtomicBool::new(false),
            idle_since_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn begin(this: &Arc<Self>) -> Busy {
        this.seen.store(true, Ordering::Relaxed);
        this.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(this))
    }

    fn seen(&self) -> bool {
        self.seen.load(Ordering::Relaxed)
    }

    /// How long the connection has had no request in flight (None while one is).
    fn idle_for(&self) -> Option<std::time::Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = std::time::Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
        Some(self.opened.elapsed().saturating_sub(since))
    }

    /// When to look at the connection next: until a first request came, its deadline, or
    /// sooner (a request may come meanwhile, and idleness is timed from its end); then
    /// when it would have been idle for `times.idle` (looked at again then, since a
    /// request may have come or be in flight meanwhile). At most once every
    /// `min(idle, 1 s)`.
    fn next_check(&self, times: Times) -> Option<tokio::time::Instant> {
        let soonest = |idle: std::time::Duration| {
            tokio::time::Instant::now() + idle.min(std::time::Duration::from_secs(1))
        };
        if !self.seen() {
            let first = times.first_request.map(|d| self.opened + d);
            let poll = times.idle.map(soonest);
            return match (first, poll) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let idle = times.idle?;
        let since = std::time::Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
        Some((self.opened + since + idle).max(soonest(idle)))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = u64::try_from(a.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        a.idle_since_ms.store(ms, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
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
