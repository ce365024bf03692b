//! The pipeline's workloads — sensor, bridge, windower, coordinator, trainer — as async tasks
//! that run as their own processes (pods) or together in one process (`wattcast local`). The
//! four that consume Pulsar run on [`runner::run`], which owns their session, readiness,
//! cancellation and graceful stop; the sensor replays its data on a loop of its own.

pub mod bridge;
pub mod coordinator;
pub mod error;
pub mod forecasting;
pub mod runner;
pub mod sensor;
pub mod session;
pub mod trainer;
pub mod windower;

use pulsar::{Pulsar, TokioExecutor};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;
use wattcast_io::services::{MqttEndpoint, PulsarEndpoint, Transport};

/// Wall-clock time in epoch milliseconds (publish, emit and store stamps).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, millis)
}

/// A duration in whole milliseconds (saturating: no duration here comes near 292 million years).
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Connects to Pulsar; over `pulsar+ssl://` the broker's certificate must chain to the
/// endpoint's CA bundle (or the public roots) and match its host name.
pub async fn pulsar_client(pulsar: &PulsarEndpoint) -> Result<Pulsar<TokioExecutor>, pulsar::Error> {
    let mut builder = Pulsar::builder(pulsar.url.clone(), TokioExecutor);
    if pulsar.url.starts_with("pulsar+ssl://") {
        wattcast_io::tls::ensure_default_provider();
        builder = builder
            .with_allow_insecure_connection(false)
            .with_tls_hostname_verification_enabled(true);
        if let Some(ca) = &pulsar.ca {
            builder = builder.with_certificate_chain(ca.pem().to_vec());
        }
        return match builder.build().await {
            Ok(client) => Ok(client),
            Err(error) => Err(explain_tls_failure(pulsar, error).await),
        };
    }
    builder.build().await
}

/// The Pulsar client's connection error, with the reason a TLS handshake fails added (the
/// client itself says only "fatal error when connecting").
async fn explain_tls_failure(pulsar: &PulsarEndpoint, error: pulsar::Error) -> pulsar::Error {
    let authority = pulsar
        .url
        .trim_start_matches("pulsar+ssl://")
        .trim_end_matches('/');
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(6651)),
        None => (authority, 6651),
    };
    match wattcast_io::tls::handshake(host, port, pulsar.ca.as_ref()).await {
        Err(reason) => pulsar::Error::Custom(format!("{}: {error}: {reason}", pulsar.url)),
        Ok(()) => error,
    }
}

/// MQTT options for `client_id` at the endpoint: its credentials, and over `mqtts://` TLS with
/// the broker's certificate checked against the endpoint's CA bundle (or the public roots).
pub fn mqtt_options(mqtt: &MqttEndpoint, client_id: impl Into<String>) -> rumqttc::MqttOptions {
    let mut options = rumqttc::MqttOptions::new(client_id, &mqtt.host, mqtt.port);
    options.set_credentials(&mqtt.username, &mqtt.password);
    if let Transport::Tls { ca } = &mqtt.transport {
        let config = wattcast_io::tls::client_config(ca.as_ref());
        options.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(std::sync::Arc::new(config)),
        ));
    }
    options
}

/// A producer for one of the experiment's topics (workloads get theirs from a
/// [`session::BrokerSession`]). A full send queue makes sends wait
/// (backpressure reaches the MQTT broker and the consumers) instead of failing.
pub async fn producer(
    pulsar: &Pulsar<TokioExecutor>,
    topic: String,
) -> Result<pulsar::Producer<TokioExecutor>, pulsar::Error> {
    producer_with(pulsar, topic, pulsar::compression::Compression::None).await
}

/// A producer like [`producer`] whose messages are Snappy-compressed, for the `windows` topic: a
/// window is 60 readings of JSON, about five times smaller compressed, and every device's window
/// is published in the same second, so this is what Pulsar writes, stores and reads back in
/// that second. Consumers decompress transparently.
async fn compressed_producer(
    pulsar: &Pulsar<TokioExecutor>,
    topic: String,
) -> Result<pulsar::Producer<TokioExecutor>, pulsar::Error> {
    let snappy = pulsar::compression::Compression::Snappy(pulsar::compression::CompressionSnappy::default());
    producer_with(pulsar, topic, snappy).await
}

async fn producer_with(
    pulsar: &Pulsar<TokioExecutor>,
    topic: String,
    compression: pulsar::compression::Compression,
) -> Result<pulsar::Producer<TokioExecutor>, pulsar::Error> {
    pulsar
        .producer()
        .with_topic(topic)
        .with_options(pulsar::ProducerOptions {
            block_queue_if_full: true,
            compression: Some(compression),
            ..pulsar::ProducerOptions::default()
        })
        .build()
        .await
}

/// Retries `attempt` with exponential backoff (100 ms doubling to 10 s) until it succeeds or
/// `cancel` fires; logs each failure. Returns `None` when cancelled.
pub async fn retry<T, E, F, Fut>(what: &str, cancel: &CancellationToken, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = millis(delay), "{what} failed");
                tokio::select! {
                    () = cancel.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retry_backs_off_until_success() {
        let calls = AtomicU32::new(0);
        let cancel = CancellationToken::new();
        let value = retry("flaky", &cancel, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err("not yet")
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(value, Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn retry_stops_when_cancelled() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let value: Option<()> = retry("never", &cancel, || async { Err("down") }).await;
        assert_eq!(value, None);
    }
}
