//! The coordinator's forecasting: each device's current model (loaded once, hot-swapped on an
//! announcement, kept when a new one is unusable) and the forecast after each stored window.

use super::{now_ms, retry};
use crate::model_registry::{LoadedModel, ModelRegistry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use wattcast_core::wire::ModelAnnouncement;
use wattcast_core::{DeviceId, Reading, Window};
use wattcast_io::store::Store;
use wattcast_model::ForecastEngine;

/// Forecast minus measured value for each reading a forecast made at `origin` covers.
pub fn forecast_errors(origin: i64, forecast: &[f64], readings: &[Reading]) -> Vec<f64> {
    readings
        .iter()
        .filter_map(|reading| {
            let step = usize::try_from(reading.event_time - origin).ok()?;
            forecast.get(step).map(|value| value - reading.power_w)
        })
        .collect()
}

/// How the coordinator forecasts.
#[derive(Debug, Clone, Copy)]
pub struct ForecastSettings {
    /// Readings each forecast looks back over.
    pub look_back: usize,
    /// Seconds forecast after each window.
    pub horizon: usize,
    /// How long to wait before looking again for a device that had no model (ms).
    pub absent_recheck_ms: i64,
}

impl ForecastSettings {
    /// How long a device found without a model waits before it is looked up again, ms: an
    /// announcement swaps a new model in at once, so this only catches one missed.
    pub const ABSENT_RECHECK_MS: i64 = 10_000;

    /// The settings an experiment's `spec.forecasting` asks for, in local mode and pods alike.
    pub fn from_spec(forecasting: &wattcast_crds::ForecastingSpec) -> Self {
        Self {
            look_back: forecasting.look_back as usize,
            horizon: forecasting.horizon as usize,
            absent_recheck_ms: Self::ABSENT_RECHECK_MS,
        }
    }
}

/// Forecasting counts.
#[derive(Debug, Default)]
pub struct ForecastStats {
    /// Forecasts stored (one per window, `horizon` values each).
    pub forecasts: Counter,
    /// Windows not forecast: no model yet, or less stored history than the look-back.
    pub skipped: Counter,
    /// Models that could not be loaded (missing, corrupt, wrong shape); the last one stays.
    pub model_load_failures: Counter,
    /// Models swapped in on an announcement.
    pub model_swaps: Counter,
    /// Forecasts that failed to compute.
    pub failures: Counter,
    /// Models loaded that run on the native evaluator.
    pub models_native: Counter,
    /// Models loaded that run on tract's interpreter (tens of times slower per forecast).
    pub models_tract: Counter,
}

impl ForecastStats {
    /// Counts a loaded model by what runs its forecasts.
    fn loaded(&self, model: &LoadedModel) {
        match model.forecaster.engine() {
            ForecastEngine::Native => self.models_native.inc(),
            ForecastEngine::Tract => self.models_tract.inc(),
        };
    }

    /// Registers the counters as `wattcast_coordinator_*_total`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wattcast_coordinator_forecasts",
            "Forecasts stored",
            self.forecasts.clone(),
        );
        registry.register(
            "wattcast_coordinator_forecasts_skipped",
            "Windows not forecast (no model yet, or too little history)",
            self.skipped.clone(),
        );
        registry.register(
            "wattcast_coordinator_model_load_failures",
            "Models that could not be loaded; the last model stays",
            self.model_load_failures.clone(),
        );
        registry.register(
            "wattcast_coordinator_model_swaps",
            "Models hot-swapped",
            self.model_swaps.clone(),
        );
        registry.register(
            "wattcast_coordinator_forecast_failures",
            "Forecasts that failed",
            self.failures.clone(),
        );
        registry.register(
            "wattcast_coordinator_models_native",
            "Models loaded that run on the native LSTM evaluator",
            self.models_native.clone(),
        );
        registry.register(
            "wattcast_coordinator_models_tract",
            "Models loaded that run on tract's interpreter (much slower per forecast)",
            self.models_tract.clone(),
        );
    }
}

enum Slot {
    Loaded(Arc<LoadedModel>),
    Absent { checked_ms: i64 },
}

/// Each device's model and the forecasting after each window.
pub struct Forecasting {
    registry: ModelRegistry,
    settings: ForecastSettings,
    stats: Arc<ForecastStats>,
    models: HashMap<DeviceId, Slot>,
    /// Each device's latest forecast: its origin and values, to score against the next window.
    latest: HashMap<DeviceId, (i64, Vec<f64>)>,
    /// Announced models that could not be loaded because a service was away, and when to try
    /// again (epoch ms): tried again before the device's next forecast, so an object store
    /// outage delays a swap instead of losing it.
    pending_swaps: HashMap<DeviceId, (ModelAnnouncement, i64)>,
}

/// How long an announced model that could not be fetched waits before it is tried again.
const SWAP_RETRY_MS: i64 = 2_000;

impl Forecasting {
    /// Forecasting with the models of `registry`.
    pub fn new(registry: ModelRegistry, settings: ForecastSettings, stats: Arc<ForecastStats>) -> Self {
        Self {
            registry,
            settings,
            stats,
            models: HashMap::new(),
            latest: HashMap::new(),
            pending_swaps: HashMap::new(),
        }
    }

    /// Forecast minus measured value (watts) for each reading of `window` that the device's
    /// latest forecast covered; scored from memory, so the hot path adds no query.
    pub fn errors_against(&self, window: &Window) -> Vec<f64> {
        self.latest
            .get(&window.device)
            .map_or_else(Vec::new, |(origin, values)| {
                forecast_errors(*origin, values, &window.readings)
            })
    }

    /// The device's model: loaded on first use from the newest `models` row.
    /// Whether `device`'s slot says nothing about its model as of `now`: never looked up, or
    /// found absent longer ago than the recheck interval.
    fn due_for_lookup(&self, device: DeviceId, now: i64) -> bool {
        match self.models.get(&device) {
            Some(Slot::Loaded(_)) => false,
            Some(Slot::Absent { checked_ms }) => now - checked_ms >= self.settings.absent_recheck_ms,
            None => true,
        }
    }

    /// Looks up in one query which of `devices` (the devices of a batch of windows) have a
    /// model, and marks the rest absent; the per-window lookups that follow then query only
    /// for devices that do have one. Every device's window closes in the same second, so
    /// without this a burst of windows cost one query each until models exist. A failed
    /// lookup changes nothing: each device is then looked up on its own.
    pub async fn check_models(&mut self, devices: impl IntoIterator<Item = DeviceId>) {
        let now = now_ms();
        let mut due: Vec<DeviceId> = devices
            .into_iter()
            .filter(|device| self.due_for_lookup(*device, now))
            .collect();
        due.sort_unstable();
        due.dedup();
        if due.is_empty() {
            return;
        }
        match self.registry.devices_with_models(&due).await {
            Ok(with_models) => {
                let with_models: std::collections::HashSet<DeviceId> = with_models.into_iter().collect();
                for device in due.into_iter().filter(|device| !with_models.contains(device)) {
                    self.models.insert(device, Slot::Absent { checked_ms: now });
                }
            }
            Err(error) => tracing::warn!(%error, "looking up which devices have models failed"),
        }
    }

    async fn model(&mut self, device: DeviceId) -> Option<Arc<LoadedModel>> {
        let now = now_ms();
        let retry_due = self
            .pending_swaps
            .get(&device)
            .is_some_and(|(_, retry_at)| *retry_at <= now);
        if retry_due && let Some((announcement, _)) = self.pending_swaps.remove(&device) {
            self.swap(&announcement).await;
        }
        if let Some(Slot::Loaded(model)) = self.models.get(&device) {
            return Some(model.clone());
        }
        if !self.due_for_lookup(device, now) {
            return None;
        }
        let slot = match self.registry.load_latest(device, self.settings.look_back).await {
            Ok(Some(model)) => {
                let engine = model.forecaster.engine().as_str();
                tracing::info!(%device, version = %model.version, engine, "model loaded");
                self.stats.loaded(&model);
                Slot::Loaded(Arc::new(model))
            }
            Ok(None) => Slot::Absent { checked_ms: now },
            Err(error) => {
                tracing::warn!(%device, %error, "no usable model; forecasting waits for the next");
                self.stats.model_load_failures.inc();
                Slot::Absent { checked_ms: now }
            }
        };
        let model = match &slot {
            Slot::Loaded(model) => Some(model.clone()),
            Slot::Absent { .. } => None,
        };
        self.models.insert(device, slot);
        model
    }

    /// Swaps in an announced model; keeps the current one when the new one is unusable, and
    /// tries again later when it could not be fetched.
    pub async fn swap(&mut self, announcement: &ModelAnnouncement) {
        self.pending_swaps.remove(&announcement.device);
        let loaded = self
            .registry
            .load(
                &announcement.version,
                &announcement.object_prefix,
                self.settings.look_back,
            )
            .await;
        match loaded {
            Ok(model) => {
                let engine = model.forecaster.engine().as_str();
                tracing::info!(device = %announcement.device, version = %model.version, engine, "model swapped in");
                self.stats.loaded(&model);
                self.models
                    .insert(announcement.device, Slot::Loaded(Arc::new(model)));
                self.stats.model_swaps.inc();
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(device = %announcement.device, version = %announcement.version, %error, "announced model not reachable; keeping the current one and trying again");
                self.stats.model_load_failures.inc();
                self.pending_swaps.insert(
                    announcement.device,
                    (announcement.clone(), now_ms() + SWAP_RETRY_MS),
                );
            }
            Err(error) => {
                tracing::warn!(device = %announcement.device, version = %announcement.version, %error, "announced model unusable; keeping the current one");
                self.stats.model_load_failures.inc();
            }
        }
    }

    /// Forecasts the `horizon` seconds from `origin` (a window's end) with the device's model
    /// and the stored readings before it, and stores them. Returns `None` when cancelled.
    pub async fn after_window(
        &mut self,
        store: &Store,
        device: DeviceId,
        origin: i64,
        cancel: &CancellationToken,
    ) -> Option<()> {
        let Some(model) = self.model(device).await else {
            self.stats.skipped.inc();
            return Some(());
        };
        let look_back = self.settings.look_back;
        let rows = retry("reading forecast history", cancel, || {
            store.values_before(device, origin, look_back as i64)
        })
        .await?;
        if rows.len() < look_back {
            self.stats.skipped.inc();
            return Some(());
        }
        let history: Vec<f64> = rows.iter().map(|(_, v)| *v).collect();
        let horizon = self.settings.horizon;
        let forecasting = model.clone();
        let forecast =
            tokio::task::spawn_blocking(move || forecasting.forecaster.forecast(&history, horizon)).await;
        let values = match forecast {
            Ok(Ok(values)) => values,
            Ok(Err(error)) => {
                tracing::warn!(%device, %error, "forecast failed");
                self.stats.failures.inc();
                return Some(());
            }
            Err(panic) => {
                tracing::warn!(%device, %panic, "forecast panicked");
                self.stats.failures.inc();
                return Some(());
            }
        };
        retry("storing a forecast", cancel, || {
            store.store_forecast(device, origin, &values, &model.version, now_ms())
        })
        .await?;
        self.latest.insert(device, (origin, values));
        self.stats.forecasts.inc();
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(event_time: i64, power_w: f64) -> Reading {
        Reading {
            device: DeviceId(1),
            event_time,
            power_w,
            published_ms: None,
        }
    }

    #[test]
    fn a_forecast_is_scored_on_the_readings_it_covers_only() {
        let forecast = [100.0, 110.0, 120.0];
        let readings = [
            reading(999, 1.0),
            reading(1000, 90.0),
            reading(1002, 125.0),
            reading(1003, 7.0),
        ];
        assert_eq!(forecast_errors(1000, &forecast, &readings), [10.0, -5.0]);
        assert!(forecast_errors(1000, &[], &readings).is_empty());
    }
}
