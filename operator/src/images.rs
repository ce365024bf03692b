//! The container images an experiment runs: pinned defaults, overridable through the chart's
//! values (the operator reads them from its environment).

/// Every image the operator puts in a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// The `wattcast` binary (sensor, bridge, windower, coordinator, trainer, setup).
    pub wattcast: String,
    /// Eclipse Mosquitto.
    pub mosquitto: String,
    /// Apache Pulsar (standalone).
    pub pulsar: String,
    /// PostgreSQL.
    pub postgres: String,
    /// RustFS (S3-compatible object store).
    pub rustfs: String,
}

impl Default for Images {
    fn default() -> Self {
        Self {
            wattcast: format!("ghcr.io/wattcast/wattcast:{}", env!("CARGO_PKG_VERSION")),
            mosquitto: "eclipse-mosquitto:2.0.22".to_owned(),
            pulsar: "apachepulsar/pulsar:4.0.7".to_owned(),
            postgres: "postgres:17.6-alpine".to_owned(),
            rustfs: "rustfs/rustfs:1.0.0-alpha.69".to_owned(),
        }
    }
}

impl Images {
    /// The defaults, each overridden by `WATTCAST_IMAGE_<NAME>` when set (the chart sets them).
    pub fn from_env() -> Self {
        let defaults = Self::default();
        let image =
            |name: &str, default: String| std::env::var(format!("WATTCAST_IMAGE_{name}")).unwrap_or(default);
        Self {
            wattcast: image("WATTCAST", defaults.wattcast),
            mosquitto: image("MOSQUITTO", defaults.mosquitto),
            pulsar: image("PULSAR", defaults.pulsar),
            postgres: image("POSTGRES", defaults.postgres),
            rustfs: image("RUSTFS", defaults.rustfs),
        }
    }
}
