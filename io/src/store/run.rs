//! The run's own record in its store: the spec it ran with and, once finished, what it cost.

use super::{Store, StoreError};
use wattcast_crds::PipelineExperimentSpec;

/// A run as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The experiment's name.
    pub experiment: String,
    /// The spec it ran with.
    pub spec: PipelineExperimentSpec,
    /// When it started, epoch milliseconds.
    pub started_ms: i64,
    /// When it finished, if recorded.
    pub finished_ms: Option<i64>,
    /// CPU time used (user + system), seconds, where measured.
    pub cpu_seconds: Option<f64>,
    /// Peak resident memory, bytes, where measured.
    pub peak_rss_bytes: Option<i64>,
}

/// A `run` row as selected: experiment, spec JSON, started, finished, CPU seconds, peak RSS.
type RunRow = (String, String, i64, Option<i64>, Option<f64>, Option<i64>);

impl Store {
    /// Records the run's spec (replacing an earlier record of the same experiment).
    pub async fn record_run(
        &self,
        experiment: &str,
        spec: &PipelineExperimentSpec,
        started_ms: i64,
    ) -> Result<(), StoreError> {
        let spec = serde_json::to_string(spec).map_err(|error| StoreError::Decode(error.to_string()))?;
        sqlx::query(
            "INSERT INTO run (experiment, spec, started_ms) VALUES ($1, $2::jsonb, $3)
             ON CONFLICT (id) DO UPDATE SET experiment = EXCLUDED.experiment, spec = EXCLUDED.spec,
                 started_ms = EXCLUDED.started_ms, finished_ms = NULL, cpu_seconds = NULL, peak_rss_bytes = NULL",
        )
        .bind(experiment)
        .bind(spec)
        .bind(started_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that the run finished and what it cost.
    pub async fn record_run_finished(
        &self,
        finished_ms: i64,
        cpu_seconds: Option<f64>,
        peak_rss_bytes: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE run SET finished_ms = $1, cpu_seconds = $2, peak_rss_bytes = $3")
            .bind(finished_ms)
            .bind(cpu_seconds)
            .bind(peak_rss_bytes)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The run's record, if one was made.
    pub async fn run_record(&self) -> Result<Option<RunRecord>, StoreError> {
        let row: Option<RunRow> = sqlx::query_as(
            "SELECT experiment, spec::text, started_ms, finished_ms, cpu_seconds, peak_rss_bytes FROM run",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(
            |(experiment, spec, started_ms, finished_ms, cpu_seconds, peak_rss_bytes)| {
                let spec =
                    serde_json::from_str(&spec).map_err(|error| StoreError::Decode(error.to_string()))?;
                Ok(RunRecord {
                    experiment,
                    spec,
                    started_ms,
                    finished_ms,
                    cpu_seconds,
                    peak_rss_bytes,
                })
            },
        )
        .transpose()
    }
}
