//! The faults of the matrix: what each one breaks, when it strikes, and how it is injected.

use super::Run;
use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One row of the fault matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// No fault: the baseline every row is compared with.
    None,
    /// The sensor SIGKILLed mid-replay and started again.
    SensorKilled,
    /// The bridge SIGKILLed and started again.
    BridgeKilled,
    /// The windower SIGKILLed and started again.
    WindowerKilled,
    /// Two more windowers started mid-run, then stopped (SIGTERM): Key_Shared moves devices
    /// with open windows to them and back.
    WindowerScaled,
    /// The coordinator SIGKILLed and started again.
    CoordinatorKilled,
    /// The trainer SIGKILLed while it works through retrain requests, and started again.
    TrainerKilled,
    /// Mosquitto SIGKILLed and started again.
    MosquittoCrash,
    /// The Pulsar broker (standalone, with its bookie) SIGKILLed and started again on its data.
    PulsarCrash,
    /// PostgreSQL's postmaster SIGKILLed (crash recovery on restart).
    PostgresCrash,
    /// The object store away while the trainer stores retrained models and the coordinator
    /// loads them.
    S3Unavailable,
}

/// When a fault strikes.
pub enum Trigger {
    /// Once this share of the sent readings is stored.
    Stored(f64),
    /// Once the trainer has made this many models (it has a queue of requests by then).
    Retrained(u64),
    /// Once the coordinator has sent a retrain request.
    RetrainRequested,
}

/// What the run watches to say the pipeline recovered.
pub enum Progress {
    /// Windows stored.
    Windows,
    /// Retrained models stored.
    Retrains,
}

/// When an injected fault struck (its recovery is timed from then).
pub struct Injected {
    /// The fault struck.
    pub at: Instant,
}

impl Fault {
    /// Every fault, in the table's order.
    pub fn all() -> Vec<Self> {
        Self::value_variants().to_vec()
    }

    /// Its name in the table.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }

    /// What the table says was done.
    pub fn description(self) -> &'static str {
        match self {
            Self::None => "no fault (baseline)",
            Self::SensorKilled => "sensor SIGKILLed mid-replay, restarted",
            Self::BridgeKilled => "bridge SIGKILLed, restarted",
            Self::WindowerKilled => "windower SIGKILLed, restarted",
            Self::WindowerScaled => "windowers scaled 1 → 3 → 1 (SIGTERM)",
            Self::CoordinatorKilled => "coordinator SIGKILLed, restarted",
            Self::TrainerKilled => "trainer SIGKILLed during training, restarted",
            Self::MosquittoCrash => "Mosquitto SIGKILLed, restarted",
            Self::PulsarCrash => "Pulsar SIGKILLed, restarted on its data",
            Self::PostgresCrash => "PostgreSQL postmaster SIGKILLed, restarted",
            Self::S3Unavailable => "object store down during retrains and model loads",
        }
    }

    /// When it strikes.
    pub fn trigger(self) -> Trigger {
        match self {
            Self::TrainerKilled => Trigger::Retrained(1),
            Self::S3Unavailable => Trigger::RetrainRequested,
            _ => Trigger::Stored(0.3),
        }
    }

    /// What shows the pipeline working again.
    pub fn progress(self) -> Progress {
        match self {
            Self::TrainerKilled | Self::S3Unavailable => Progress::Retrains,
            _ => Progress::Windows,
        }
    }

    /// Injects the fault into a running experiment and brings the broken part back.
    pub async fn inject(self, run: &mut Run) -> Result<Injected> {
        let at = Instant::now();
        match self {
            Self::None => {}
            Self::SensorKilled => restart(run, "sensor", false).await?,
            Self::BridgeKilled => restart(run, "bridge", true).await?,
            Self::WindowerKilled => restart(run, "windower", true).await?,
            Self::CoordinatorKilled => restart(run, "coordinator", true).await?,
            Self::TrainerKilled => restart(run, "trainer", true).await?,
            Self::WindowerScaled => {
                run.add_windowers(2).await?;
                // Let the new replicas take devices over and window for a while.
                let stored = run.stored().await?;
                run.wait_stored(stored + run.truth.sent / 5).await?;
                run.stop_added_windowers()?;
            }
            Self::MosquittoCrash => crash_service(run, "mosquitto", Duration::from_secs(2)).await?,
            Self::PulsarCrash => crash_service(run, "pulsar", Duration::from_secs(2)).await?,
            Self::PostgresCrash => crash_service(run, "postgres", Duration::from_secs(2)).await?,
            Self::S3Unavailable => crash_service(run, "s3", Duration::from_secs(10)).await?,
        }
        Ok(Injected { at })
    }
}

/// SIGKILLs a workload, waits a second (a pod's replacement is not instant) and starts it again.
async fn restart(run: &mut Run, name: &str, wait_ready: bool) -> Result<()> {
    let http = run.http.clone();
    let workload = run.workloads.named(name)?;
    workload.kill()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    workload.restart()?;
    if wait_ready {
        workload.wait_ready(&http).await?;
    }
    Ok(())
}

/// Crashes a test-env service, keeps it down for `down`, and starts it again on its data.
async fn crash_service(run: &mut Run, service: &str, down: Duration) -> Result<()> {
    service_control(run, service, "crash").await?;
    tokio::time::sleep(down).await;
    service_control(run, service, "start").await
}

async fn service_control(run: &Run, service: &str, action: &str) -> Result<()> {
    let status = tokio::process::Command::new(&run.service_control)
        .args([service, action])
        .status()
        .await
        .with_context(|| format!("running {}", run.service_control.display()))?;
    if !status.success() {
        bail!(
            "`{} {service} {action}` failed ({status})",
            run.service_control.display()
        );
    }
    Ok(())
}
