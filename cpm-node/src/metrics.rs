//! The metrics endpoint: `GET /metrics` answers every hosted entity's
//! [`Stats`] in the Prometheus text format (OpenMetrics, written by the
//! official `prometheus-client`), served over HTTP/1.1 by hyper.
//!
//! Each metric carries an `entity` label (the entity's name). The figures
//! are read from the entities when the request comes, so a node that is
//! never scraped pays nothing. A scraper that hogs connections cannot
//! grow the node: at most [`MAX_CONNECTIONS`] are served at once (more are
//! closed at once), and each lasts at most [`CONNECTION_DEADLINE`].

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cpm_roles::Stats;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Scrapes served at once; a connection past it is closed unanswered.
pub const MAX_CONNECTIONS: usize = 16;

/// How long one connection may stay open, whatever it does.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);

/// The media type of the exposition (OpenMetrics 1.0, which Prometheus
/// reads).
pub const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EntityLabel {
    entity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    entity: String,
    status: u16,
}

type Level = Gauge<u64, AtomicU64>;

/// One metric per entity, its value read from [`Stats`].
struct PerEntity<M> {
    name: &'static str,
    help: &'static str,
    value: fn(&Stats) -> u64,
    family: Family<EntityLabel, M>,
}

/// A `usize` level as a gauge value.
fn level(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The exposition of `entities` (name, stats), in OpenMetrics text.
#[must_use]
pub fn encode_stats(entities: &[(String, Stats)]) -> String {
    let gauge = |name, help, value| PerEntity::<Level> { name, help, value, family: Family::default() };
    let counter = |name, help, value| PerEntity::<Counter> { name, help, value, family: Family::default() };
    let gauges = [
        gauge("cpm_sessions", "SIP sessions running now", |s| level(s.sessions)),
        gauge("cpm_msrp_links", "MSRP links open now", |s| level(s.links)),
        gauge("cpm_msrp_bytes_held", "Bytes the MSRP sessions hold (messages being reassembled)", |s| {
            level(s.bytes_held)
        }),
        gauge("cpm_msrp_bytes_queued", "Bytes waiting to be written", |s| level(s.bytes_queued)),
    ];
    let counters = [
        counter("cpm_sip_messages_received", "SIP messages read", |s| s.sip_in),
        counter("cpm_sip_messages_sent", "SIP messages written", |s| s.sip_out),
        counter("cpm_msrp_bytes_received", "MSRP bytes read", |s| s.msrp_bytes_in),
        counter("cpm_msrp_bytes_sent", "MSRP bytes written", |s| s.msrp_bytes_out),
        counter("cpm_timeouts", "Outcomes that were timeouts", |s| s.timeouts),
    ];
    let refusals = Family::<RefusalLabels, Counter>::default();
    for (entity, stats) in entities {
        let label = EntityLabel { entity: entity.clone() };
        for metric in &gauges {
            metric.family.get_or_create(&label).set((metric.value)(stats));
        }
        for metric in &counters {
            metric.family.get_or_create(&label).inc_by((metric.value)(stats));
        }
        for (&status, &count) in &stats.refusals {
            refusals.get_or_create(&RefusalLabels { entity: entity.clone(), status }).inc_by(count);
        }
    }
    let mut registry = Registry::default();
    for metric in gauges {
        registry.register(metric.name, metric.help, metric.family);
    }
    for metric in counters {
        registry.register(metric.name, metric.help, metric.family);
    }
    registry.register(
        "cpm_refusals",
        "Refusals sent, by status (SIP final responses 300-699, MSRP responses other than 200)",
        refusals,
    );
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &registry);
    text
}

/// The answer to one request: the exposition for `GET /metrics`, 404 for
/// another path, 405 with `Allow` for another method.
fn respond(request: &Request<Incoming>, exposition: impl FnOnce() -> String) -> Response<Full<Bytes>> {
    let status = if request.uri().path() != "/metrics" {
        StatusCode::NOT_FOUND
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        StatusCode::METHOD_NOT_ALLOWED
    } else {
        let mut response = Response::new(Full::new(Bytes::from(exposition())));
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS));
        return response;
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

/// Serves `GET /metrics` on `listener` until dropped; `read` gives the
/// entities' names and stats at the time of each request.
pub async fn serve_metrics<F, Fut>(listener: TcpListener, read: F)
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Vec<(String, Stats)>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Past the bound the connection is dropped (closed) at once.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else { continue };
        let read = read.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let read = read.clone();
                async move {
                    let entities = if request.uri().path() == "/metrics" { read().await } else { Vec::new() };
                    Ok::<_, Infallible>(respond(&request, || encode_stats(&entities)))
                }
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, connection).await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_is_labelled_with_its_entity() {
        let mut stats = Stats::default();
        stats.sessions = 2;
        stats.msrp_bytes_in = 5000;
        stats.refusals.insert(486, 3);
        let text = encode_stats(&[("cf".to_owned(), stats), ("pf-b".to_owned(), Stats::default())]);
        for line in [
            "# TYPE cpm_sessions gauge",
            "cpm_sessions{entity=\"cf\"} 2",
            "cpm_sessions{entity=\"pf-b\"} 0",
            "# TYPE cpm_msrp_bytes_received counter",
            "cpm_msrp_bytes_received_total{entity=\"cf\"} 5000",
            "cpm_refusals_total{entity=\"cf\",status=\"486\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
