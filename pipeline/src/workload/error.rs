//! What stops a workload that talks to Pulsar, one type for all of them: each variant keeps
//! its source, so the message at the edge (`{error:#}`) says what failed and why.

/// Why a workload stopped: Pulsar failed for good, a consumer's stream ended, or a message
/// could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Pulsar refused a connection, producer, consumer, send or acknowledgement.
    #[error("Pulsar")]
    Pulsar(#[source] pulsar::Error),
    /// A consumer's stream ended, which happens only if the client gave up on the broker: an
    /// error, so the process exits non-zero and is restarted (a stop is a cancellation, never
    /// the end of a stream).
    #[error("Pulsar: the consumer's stream ended (the client gave up on the broker)")]
    StreamEnded,
    /// A message could not be encoded as JSON.
    #[error("encoding a message")]
    Encode(#[source] serde_json::Error),
}

impl From<pulsar::Error> for BrokerError {
    fn from(error: pulsar::Error) -> Self {
        Self::Pulsar(error)
    }
}

impl From<pulsar::error::ConsumerError> for BrokerError {
    fn from(error: pulsar::error::ConsumerError) -> Self {
        Self::Pulsar(error.into())
    }
}

impl From<pulsar::error::ProducerError> for BrokerError {
    fn from(error: pulsar::error::ProducerError) -> Self {
        Self::Pulsar(error.into())
    }
}

impl From<serde_json::Error> for BrokerError {
    fn from(error: serde_json::Error) -> Self {
        Self::Encode(error)
    }
}

/// [`BrokerError`] from anything Pulsar fails with, for `map_err`.
pub fn pulsar_error(error: impl Into<BrokerError>) -> BrokerError {
    error.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edge_message_names_the_broker_and_keeps_the_cause() {
        let error = BrokerError::from(pulsar::Error::Custom("connection refused".to_owned()));
        let chain: Vec<String> =
            std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect();
        assert_eq!(chain.first().map(String::as_str), Some("Pulsar"));
        assert!(
            chain.iter().any(|cause| cause.contains("connection refused")),
            "{chain:?}"
        );
    }
}
