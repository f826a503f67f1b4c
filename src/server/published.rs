//! The documents served by GET: the signed trust list (with its ETag) and the code page of a
//! national code, under the same guards as a service call.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::Semaphore;

use super::pipeline::{TRUST_LIST_PATH, plain};
use super::{Gateway, Peer};

/// The public documents served by GET (and HEAD): the trust list, and the code page of a
/// national code. Another method on these paths gets a plain 405 naming GET and HEAD.
pub(super) fn is_published(path: &str) -> bool {
    path == TRUST_LIST_PATH || path == super::page::PAGE_PATH
}

/// A published document, under the same guards as a service call: the per-IP limit and
/// the per-source cap on requests in flight (429), the concurrency limit (shed: 503), and
/// the request deadline (504); the work (a code's SM2 verification, registry reads) on the
/// blocking pool, off the runtime's threads. The work holds its place of both limits until
/// it ends: a blocking task cannot be cancelled, and one that outlived its 504 would
/// otherwise run beside the places it gave back.
pub(super) async fn serve(
    gw: Arc<Gateway>,
    permits: Arc<Semaphore>,
    peer: &Peer,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let started = std::time::Instant::now();
    let label = if req.uri().path() == TRUST_LIST_PATH {
        "trust-list"
    } else {
        "code-page"
    };
    let r = answer(Arc::clone(&gw), permits, peer, req).await;
    gw.metrics
        .record_own(label, code_of(r.status()), started.elapsed());
    r
}

/// The return code a document's HTTP status stands for, in the request metrics.
fn code_of(status: hyper::StatusCode) -> crate::standard::ReturnCode {
    use crate::standard::ReturnCode;
    match status.as_u16() {
        200..=399 => ReturnCode::Success,
        429 => ReturnCode::RateLimited,
        504 => ReturnCode::UpstreamTimeout,
        400..=499 => ReturnCode::BadFormat,
        _ => ReturnCode::SystemError,
    }
}

async fn answer(
    gw: Arc<Gateway>,
    permits: Arc<Semaphore>,
    peer: &Peer,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    // The per-IP limit before a place of the concurrency limit, as on the services.
    if let Err(l) = gw.limiter.check_ip(peer.addr.ip()) {
        return with_retry_after(
            plain(429, TEXT, b"1007 rate limit exceeded".to_vec()),
            l.retry_after_secs(),
        );
    }
    let per_source = gw.config.load().server.max_requests_per_ip;
    let Some(source) =
        super::sources::Sources::enter(&gw.requests_by_source, peer.addr.ip(), per_source)
    else {
        return with_retry_after(plain(429, TEXT, b"1007 rate limit exceeded".to_vec()), 1);
    };
    let Ok(permit) = permits.try_acquire_owned() else {
        gw.metrics
            .shed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return with_retry_after(plain(503, TEXT, b"overloaded, retry later".to_vec()), 1);
    };
    let deadline = gw.config.load().server.request_timeout;
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let if_none_match = req
        .headers()
        .get(hyper::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let work = tokio::task::spawn_blocking(move || {
        let _held = (permit, source);
        published(&gw, &path, query.as_deref(), if_none_match.as_deref())
    });
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => plain(500, TEXT, b"internal error".to_vec()),
        Err(_) => plain(504, TEXT, b"deadline exceeded".to_vec()),
    }
}

/// The signed trust list with its ETag (SM3 of the bytes, DESIGN.md §3), and 304 without a
/// body when the verifier already holds that version (`If-None-Match`). Verifiers poll the
/// list; they fetch it again only when it changed, and revalidate every time (`no-cache`):
/// a revocation must not wait for a cache's lifetime.
fn trust_list_answer(list: Vec<u8>, if_none_match: Option<&str>) -> Response<Full<Bytes>> {
    let etag = crate::trust::list::etag_of(&list);
    let held = if_none_match.is_some_and(|h| {
        h.split(',')
            .map(str::trim)
            .any(|t| t == etag || t == "*" || t.strip_prefix("W/") == Some(etag.as_str()))
    });
    let mut r = if held {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = hyper::StatusCode::NOT_MODIFIED;
        r
    } else {
        plain(200, "application/json", list)
    };
    let h = r.headers_mut();
    if let Ok(v) = hyper::header::HeaderValue::from_str(&etag) {
        h.insert(hyper::header::ETAG, v);
    }
    h.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    r
}

fn with_retry_after(mut r: Response<Full<Bytes>>, secs: u64) -> Response<Full<Bytes>> {
    if let Ok(v) = hyper::header::HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    r
}

fn published(
    gw: &Gateway,
    path: &str,
    query: Option<&str>,
    if_none_match: Option<&str>,
) -> Response<Full<Bytes>> {
    match path {
        TRUST_LIST_PATH => {
            // The list in force, as verified when it was loaded: not the file, which a
            // stale mirror may have overwritten with an older list that the reload refused,
            // and which may be half written, tampered with or of any size.
            let body = gw
                .relay
                .local_verifier()
                .or_else(|| gw.page_verifier.clone())
                .and_then(|v| v.published().cloned());
            match body {
                Some(b) => trust_list_answer(b.to_vec(), if_none_match),
                None => plain(404, "text/plain; charset=utf-8", b"no trust list".to_vec()),
            }
        }
        _ => super::page::serve(gw, query),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trust_list_carries_its_etag_and_a_held_version_is_304() {
        let list = br#"{"version":2}"#.to_vec();
        let first = trust_list_answer(list.clone(), None);
        assert_eq!(first.status(), 200);
        let etag = first.headers()[hyper::header::ETAG]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(etag.starts_with("\"sm3-") && etag.len() == 38, "{etag}");
        assert_eq!(first.headers()[hyper::header::CACHE_CONTROL], "no-cache");
        for held in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"x\", {etag}"),
            "*".into(),
        ] {
            assert_eq!(
                trust_list_answer(list.clone(), Some(&held)).status(),
                304,
                "{held}"
            );
        }
        // Another version: the list again.
        let newer = trust_list_answer(br#"{"version":3}"#.to_vec(), Some(&etag));
        assert_eq!(newer.status(), 200);
        assert_ne!(newer.headers()[hyper::header::ETAG].to_str().unwrap(), etag);
    }
}
