//! What the proxy counts, in Prometheus form (the appliance serves it on
//! the management address only).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::tls::Refusal;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    pub service: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandshakeLabels {
    pub service: Arc<str>,
    /// `full` or `resumed`.
    pub kind: &'static str,
    /// `TLSv1_3`, `TLSv1_2`.
    pub version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// Empty when the SNI named no service.
    pub service: String,
    pub reason: &'static str,
    /// `tcp`, or `quic` for HTTP/3.
    pub transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InitialLabels {
    pub action: &'static str,
}

/// What a refused connection came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    /// HTTP/3.
    Quic,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Quic => "quic",
        }
    }
}

/// What was done with a QUIC Initial before any handshake work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initial {
    Accepted,
    /// Address validation asked first (RFC 9000 §8.1.2).
    Retry,
    DroppedHandshakeCap,
    /// An address without HTTP/3.
    NoService,
}

impl Initial {
    pub fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Retry => "retry",
            Self::DroppedHandshakeCap => "dropped_handshake_cap",
            Self::NoService => "no_service",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub service: Arc<str>,
    pub protocol: &'static str,
    pub status: u16,
}

type LatencyFamily = Family<ServiceLabel, Histogram, fn() -> Histogram>;

/// Every metric of the proxy.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub connections_active: Gauge,
    /// HTTP/1.1 connections between requests, holding only their TLS.
    pub connections_parked: Gauge,
    pub handshakes: Family<HandshakeLabels, Counter>,
    pub refusals: Family<RefusalLabels, Counter>,
    pub requests: Family<RequestLabels, Counter>,
    pub rate_limited: Family<ServiceLabel, Counter>,
    pub origin_latency: LatencyFamily,
    pub origin_connections_opened: Family<ServiceLabel, Counter>,
    pub origin_healthy: Family<ServiceLabel, Gauge>,
    /// Sources the firewall's trusted set could not take in time.
    pub trusted_feed_dropped: Counter,
    pub quic_initials: Family<InitialLabels, Counter>,
    pub quic_handshakes_in_progress: Gauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ixgate_proxy");
        let metrics = Self {
            connections_active: Gauge::default(),
            connections_parked: Gauge::default(),
            handshakes: Family::default(),
            refusals: Family::default(),
            requests: Family::default(),
            rate_limited: Family::default(),
            origin_latency: Family::new_with_constructor(latency_histogram),
            origin_connections_opened: Family::default(),
            origin_healthy: Family::default(),
            trusted_feed_dropped: Counter::default(),
            quic_initials: Family::default(),
            quic_handshakes_in_progress: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections_active",
            "Client connections open now",
            metrics.connections_active.clone(),
        );
        registry.register(
            "connections_parked",
            "HTTP/1.1 connections between requests, holding only their TLS session",
            metrics.connections_parked.clone(),
        );
        registry.register(
            "handshakes",
            "Completed mutual-TLS handshakes",
            metrics.handshakes.clone(),
        );
        registry.register(
            "handshake_failures",
            "Connections closed before a byte reached the bank, by reason",
            metrics.refusals.clone(),
        );
        registry.register(
            "requests",
            "Requests answered, by status",
            metrics.requests.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by the per-certificate rate limit",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "origin_latency_seconds",
            "Time from sending a request to the origin to its response head",
            metrics.origin_latency.clone(),
        );
        registry.register(
            "origin_connections_opened",
            "Connections opened to the origins (requests over these is the pool's reuse)",
            metrics.origin_connections_opened.clone(),
        );
        registry.register(
            "origin_healthy",
            "1 when at least one origin of the service passes its health check",
            metrics.origin_healthy.clone(),
        );
        registry.register(
            "trusted_feed_dropped",
            "Verified sources not passed to the firewall's trusted set (channel full)",
            metrics.trusted_feed_dropped.clone(),
        );
        registry.register(
            "quic_initials",
            "New QUIC connections, by what was done before any handshake work",
            metrics.quic_initials.clone(),
        );
        registry.register(
            "quic_handshakes_in_progress",
            "QUIC handshakes under way now",
            metrics.quic_handshakes_in_progress.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    pub fn refused(&self, transport: Transport, service: &str, refusal: Refusal) {
        self.refusals
            .get_or_create(&RefusalLabels {
                service: service.to_owned(),
                reason: refusal.label(),
                transport: transport.label(),
            })
            .inc();
    }

    pub fn quic_initial(&self, initial: Initial) {
        self.quic_initials
            .get_or_create(&InitialLabels {
                action: initial.label(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
