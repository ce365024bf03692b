//! The operator's own metrics: reconciles by outcome, their duration, and errors by kind.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A reconcile's outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ok` or `error`.
    pub outcome: String,
}

/// An error's kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The error's kind (e.g. `kube`, `store`, `cleanup`).
    pub kind: String,
}

/// The operator's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// Reconciles by outcome.
    pub reconciles: Family<OutcomeLabels, Counter>,
    /// Reconcile durations in seconds.
    pub reconcile_seconds: Histogram,
    /// Errors by kind.
    pub errors: Family<ErrorLabels, Counter>,
    /// Phase transitions.
    pub transitions: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            reconcile_seconds: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            errors: Family::default(),
            transitions: Counter::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric under the `wattcast_operator` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("wattcast_operator");
        registry.register("reconciles", "Reconciles by outcome", self.reconciles.clone());
        registry.register(
            "reconcile_duration_seconds",
            "How long a reconcile took",
            self.reconcile_seconds.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconcile errors by kind",
            self.errors.clone(),
        );
        registry.register(
            "phase_transitions",
            "Experiment phase changes",
            self.transitions.clone(),
        );
    }

    /// Counts a reconcile's outcome and duration.
    pub fn observe(&self, seconds: f64, error_kind: Option<&str>) {
        self.reconcile_seconds.observe(seconds);
        let outcome = if error_kind.is_some() { "error" } else { "ok" };
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
        if let Some(kind) = error_kind {
            self.errors
                .get_or_create(&ErrorLabels {
                    kind: kind.to_owned(),
                })
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_and_errors_are_exposed_with_their_labels() {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.observe(0.02, None);
        metrics.observe(0.3, Some("kube"));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("wattcast_operator_reconciles_total{outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("wattcast_operator_reconciles_total{outcome=\"error\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("wattcast_operator_reconcile_errors_total{kind=\"kube\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("wattcast_operator_reconcile_duration_seconds_count 2"),
            "{text}"
        );
    }
}
