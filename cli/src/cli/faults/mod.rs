//! `wattcast faults`: the fault matrix in local mode. Each fault is injected mid-run into an
//! experiment whose workloads run as separate processes on the test env's real services; the
//! run is drained, and its store is compared with the fault-free outcome (lost, duplicated).

mod fault;
mod table;
mod tally;

use super::processes::{Workload, Workloads};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use fault::{Fault, Progress, Trigger};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tally::{Tally, Truth};
use wattcast_core::topics::{ExperimentNames, Topic};
use wattcast_crds::PipelineExperiment;
use wattcast_io::services::{Services, find_test_env_file};
use wattcast_io::store::Store;

#[derive(Debug, Subcommand)]
pub enum FaultsCommand {
    /// Run the fault matrix on the test env (`make test-faults`); exits 1 if a fault lost or
    /// duplicated a reading or the experiment did not complete.
    Run(RunArgs),
    /// Print the Markdown table of a run's JSON (docs/reliability.md).
    Table {
        /// The JSON `faults run --out` wrote.
        input: PathBuf,
        /// Replace the table in this Markdown file (between its `fault-matrix` markers)
        /// instead of printing it.
        #[arg(long)]
        into: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The faults to inject (default: all, the baseline first).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Fault>,
    /// Devices of each run's experiment.
    #[arg(long, default_value_t = 50)]
    devices: u32,
    /// Where to write the results (JSON).
    #[arg(long)]
    out: PathBuf,
    /// The script that crashes and restarts a service (`SCRIPT SERVICE crash|start`).
    #[arg(long, default_value = "test-env/fault")]
    service_control: PathBuf,
    /// Where the processes' logs go (one directory per fault).
    #[arg(long, default_value = "/tmp/wattcast-faults")]
    log_dir: PathBuf,
}

/// One fault's result: a row of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultResult {
    /// The fault.
    pub fault: Fault,
    /// What was done.
    pub description: String,
    /// The account of the run.
    pub tally: Tally,
    /// From the fault until the pipeline made progress again (a window stored, or for the
    /// trainer and object store a retrained model), seconds.
    pub recovery_s: Option<f64>,
    /// Workloads that exited on their own and were started again (as a kubelet would).
    pub restarts: u32,
    /// Whether the experiment completed: every process ran to the end and the run drained.
    pub completed: bool,
    /// Why not, when it did not.
    pub failure: Option<String>,
}

impl FaultResult {
    /// Nothing lost, nothing stored twice, the experiment completed.
    pub fn passed(&self) -> bool {
        self.completed && self.tally.lost == 0 && self.tally.duplicated == 0 && self.tally.wrong_value == 0
    }
}

/// The whole matrix as written to `--out`.
#[derive(Debug, Serialize, Deserialize)]
pub struct FaultMatrix {
    /// Devices per experiment.
    pub devices: u32,
    /// The experiment each fault ran (its name aside).
    pub experiment: String,
    /// When it ran (RFC 3339).
    pub ran_at: String,
    /// The machine (`uname -srm`, cores).
    pub machine: String,
    /// One per fault.
    pub results: Vec<FaultResult>,
}

pub fn run(command: FaultsCommand) -> Result<()> {
    match command {
        FaultsCommand::Table { input, into } => {
            let text =
                std::fs::read_to_string(&input).with_context(|| format!("reading {}", input.display()))?;
            let matrix: FaultMatrix =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", input.display()))?;
            let rendered = table::render(&matrix);
            match into {
                None => print!("{rendered}"),
                Some(doc) => {
                    let text = std::fs::read_to_string(&doc)
                        .with_context(|| format!("reading {}", doc.display()))?;
                    let replaced = table::replace_section(&text, &rendered)
                        .with_context(|| format!("in {}", doc.display()))?;
                    std::fs::write(&doc, replaced).with_context(|| format!("writing {}", doc.display()))?;
                }
            }
            Ok(())
        }
        FaultsCommand::Run(args) => tokio::runtime::Runtime::new()
            .context("starting the async runtime")?
            .block_on(run_matrix(args)),
    }
}

async fn run_matrix(args: RunArgs) -> Result<()> {
    let env_file = std::env::current_dir()
        .ok()
        .and_then(|dir| find_test_env_file(&dir));
    let services = Services::load(env_file.as_deref())?;
    if !args.service_control.is_file() {
        bail!(
            "no service control script at {} (run from the repository, or pass --service-control)",
            args.service_control.display()
        );
    }
    durable_commits(&services).await?;
    let faults = if args.only.is_empty() {
        Fault::all()
    } else {
        args.only.clone()
    };
    let mut matrix = FaultMatrix {
        devices: args.devices,
        experiment: serde_yaml::to_string(&experiment(Fault::None, args.devices)?.spec)?,
        ran_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        machine: machine(),
        results: Vec::new(),
    };
    for fault in faults {
        tracing::info!(fault = %fault.name(), "fault run starting");
        let result = run_fault(fault, &args, &services).await;
        tracing::info!(fault = %fault.name(), passed = result.passed(), tally = ?result.tally, failure = ?result.failure, "fault run done");
        matrix.results.push(result);
        // Written after every fault, so a long matrix that is stopped still leaves its rows.
        std::fs::write(&args.out, serde_json::to_string_pretty(&matrix)?)
            .with_context(|| format!("writing {}", args.out.display()))?;
    }
    print!("{}", table::render(&matrix));
    let failed: Vec<String> = matrix
        .results
        .iter()
        .filter(|result| !result.passed())
        .map(|result| result.fault.name())
        .collect();
    if !failed.is_empty() {
        bail!(
            "faults that lost or duplicated readings, or did not complete: {} (logs in {})",
            failed.join(", "),
            args.log_dir.display()
        );
    }
    Ok(())
}

/// The experiment a fault runs: big enough to be in flight when the fault strikes (twenty
/// minutes of fifty devices with gaps and jitter at 30×: forty seconds), retraining halfway.
fn experiment(fault: Fault, devices: u32) -> Result<PipelineExperiment> {
    let yaml = format!(
        r#"
apiVersion: wattcast.io/v1alpha1
kind: PipelineExperiment
metadata: {{ name: fault-{name} }}
spec:
  architecture: Streaming
  devices: {{ count: {devices} }}
  dataset: {{ scenario: MissingTimestamps, seed: 11, duration: 20m, jitter: 8s }}
  replay: {{ speedup: 30 }}
  windowing:
    size: 1m
    watermark: {{ strategy: BoundedOutOfOrderness, maxOutOfOrderness: 5s }}
  imputation: Mean
  forecasting: {{ retrainEvery: 10m, model: {{ epochs: 3 }} }}
"#,
        name = fault.name()
    );
    Ok(serde_yaml::from_str(&yaml)?)
}

fn machine() -> String {
    let uname = std::process::Command::new("uname")
        .arg("-srm")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{uname}, {cores} cores")
}

/// Runs one fault; a failure becomes the result's `failure`, with what could still be counted.
async fn run_fault(fault: Fault, args: &RunArgs, services: &Services) -> FaultResult {
    let mut result = FaultResult {
        fault,
        description: fault.description().to_owned(),
        tally: Tally::default(),
        recovery_s: None,
        restarts: 0,
        completed: false,
        failure: None,
    };
    let mut run = match Run::start(fault, args, services).await {
        Ok(run) => run,
        Err(error) => {
            result.failure = Some(format!("{error:#}"));
            return result;
        }
    };
    let outcome = run.fault_and_drain(fault).await;
    run.stop_all();
    result.restarts = run.restarts;
    match outcome {
        Ok(recovery) => {
            result.recovery_s = recovery;
            result.completed = true;
        }
        Err(error) => result.failure = Some(format!("{error:#}")),
    }
    let dead_lettered = dead_letters(services, &run.names).await.unwrap_or_else(|error| {
        tracing::warn!(%error, "could not count the dead letters");
        0
    });
    match Tally::read(&run.store, &run.truth, dead_lettered).await {
        Ok(tally) => result.tally = tally,
        Err(error) => {
            result.completed = false;
            result
                .failure
                .get_or_insert_with(|| format!("reading the store: {error:#}"));
        }
    }
    result
}

/// The consuming workloads and the port of each one's metrics.
const CONSUMERS: [(&str, u16); 4] = [
    ("bridge", 19_201),
    ("windower", 19_202),
    ("coordinator", 19_203),
    ("trainer", 19_204),
];
const SENSOR_PORT: u16 = 19_200;
/// Windowers added when scaling: `windower-2` on this port, `windower-3` on the next.
const ADDED_WINDOWER_PORT: u16 = 19_205;

/// A running fault experiment: its processes, its store and what it should store.
pub struct Run {
    /// Every workload process.
    pub workloads: Workloads,
    /// The experiment's store.
    pub store: Store,
    /// The fault-free outcome.
    pub truth: Truth,
    /// `SCRIPT SERVICE crash|start`.
    pub service_control: PathBuf,
    /// For readiness and metrics.
    pub http: reqwest::Client,
    names: ExperimentNames,
    experiment_file: PathBuf,
    dir: PathBuf,
    /// Workloads started again after they exited on their own.
    restarts: u32,
}

/// How many times a run starts exited workloads again before it fails.
const MAX_RESTARTS: u32 = 10;

impl Run {
    /// Resets the experiment, sets it up as the operator's Job does, starts the consumers and,
    /// once they are ready, the sensor.
    async fn start(fault: Fault, args: &RunArgs, services: &Services) -> Result<Self> {
        let experiment = experiment(fault, args.devices)?;
        let names = ExperimentNames::new(wattcast_core::experiment::name(&experiment)?)?;
        let dir = args.log_dir.join(fault.name());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let experiment_file = dir.join("experiment.yaml");
        std::fs::write(&experiment_file, serde_yaml::to_string(&experiment)?)?;
        let truth = Truth::of(&experiment).await?;
        let store = wattcast_pipeline::local::reset_experiment(&experiment, services).await?;
        setup(&experiment_file, &dir).await?;

        let mut run = Self {
            workloads: Workloads::default(),
            store,
            truth,
            service_control: args.service_control.clone(),
            http: reqwest::Client::new(),
            names,
            experiment_file,
            dir,
            restarts: 0,
        };
        for (component, port) in CONSUMERS {
            let workload = Workload::start(component, component, port, &run.experiment_file, &run.dir)?;
            run.workloads.0.push(workload);
        }
        for workload in &mut run.workloads.0 {
            workload.wait_ready(&run.http).await?;
        }
        let sensor = Workload::start("sensor", "sensor", SENSOR_PORT, &run.experiment_file, &run.dir)?;
        run.workloads.0.push(sensor);
        Ok(run)
    }

    /// Waits for the fault's moment, injects it, waits for progress, then for the sensor to
    /// finish and every reading to be accounted for. Returns the recovery time.
    async fn fault_and_drain(&mut self, fault: Fault) -> Result<Option<f64>> {
        self.wait_trigger(fault.trigger()).await?;
        let before = self.progress(&fault.progress()).await?;
        let injected = fault.inject(self).await?;
        let recovery = if fault == Fault::None {
            None
        } else {
            let back = self.progress(&fault.progress()).await?;
            self.wait_progress(&fault.progress(), before.max(back)).await?;
            Some(injected.at.elapsed().as_secs_f64())
        };
        self.wait_sensor().await?;
        self.drain().await?;
        Ok(recovery)
    }

    /// Measured readings stored (windows and late).
    pub async fn stored(&self) -> Result<u64> {
        Ok(self.store.arrived().await? as u64)
    }

    /// Waits (at most three minutes) until `readings` are stored; fails if a process exits.
    pub async fn wait_stored(&mut self, readings: u64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(180);
        while self.stored().await? < readings {
            self.check_consumers()?;
            if Instant::now() > deadline {
                bail!("fewer than {readings} readings stored after 180 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn wait_trigger(&mut self, trigger: Trigger) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let reached = match trigger {
                Trigger::Stored(share) => self.stored().await? as f64 >= share * self.truth.sent as f64,
                Trigger::Retrained(models) => {
                    let trainer = self.workloads.named("trainer")?;
                    trainer
                        .metric(&self.http, "wattcast_trainer_retrains_total")
                        .await?
                        >= models as f64
                }
                Trigger::RetrainRequested => {
                    let coordinator = self.workloads.named("coordinator")?;
                    coordinator
                        .metric(&self.http, "wattcast_coordinator_retrain_requests_total")
                        .await?
                        >= 1.0
                }
            };
            if reached {
                return Ok(());
            }
            self.check_consumers()?;
            if Instant::now() > deadline {
                bail!("the fault's moment did not come within 180 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn progress(&self, progress: &Progress) -> Result<i64> {
        let counts = self.store.counts().await?;
        Ok(match progress {
            Progress::Windows => counts.windows,
            Progress::Retrains => counts.retrains,
        })
    }

    /// Waits until the progress measure exceeds `from` (retrying while a service restarts).
    async fn wait_progress(&mut self, progress: &Progress, from: i64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if self.progress(progress).await.is_ok_and(|now| now > from) {
                return Ok(());
            }
            self.check_consumers()?;
            if Instant::now() > deadline {
                bail!("no progress within 180 s of the fault");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the sensor exits, and fails unless it succeeded.
    async fn wait_sensor(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let sensor = self.workloads.named("sensor")?;
            if let Some(status) = sensor.observe()? {
                if status.success() {
                    return Ok(());
                }
                bail!(
                    "the sensor failed ({status}); see {}",
                    sensor.log_path().display()
                );
            }
            self.check_consumers()?;
            if Instant::now() > deadline {
                bail!("the sensor did not finish within 300 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until every reading sent is stored, or nothing more has arrived for 20 s.
    async fn drain(&mut self) -> Result<()> {
        let expected = (self.truth.windowed.len() + self.truth.late.len()) as u64;
        let mut last = (self.stored().await?, Instant::now());
        loop {
            let stored = self.stored().await?;
            if stored >= expected {
                return Ok(());
            }
            if stored != last.0 {
                last = (stored, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(20) {
                // Not an error here: the tally says what is missing.
                tracing::warn!(stored, expected, "nothing more arrives");
                return Ok(());
            }
            self.check_consumers()?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Starts again a consumer that exited on its own, as a Deployment's kubelet would (up to
    /// [`MAX_RESTARTS`] in a run, then the run fails).
    fn check_consumers(&mut self) -> Result<()> {
        for workload in &mut self.workloads.0 {
            if workload.component == "sensor" {
                continue;
            }
            if let Some(status) = workload.observe()? {
                if self.restarts >= MAX_RESTARTS {
                    bail!(
                        "the {} exited ({status}) after {} restarts in this run; see {}",
                        workload.name,
                        self.restarts,
                        workload.log_path().display()
                    );
                }
                tracing::warn!(workload = %workload.name, %status, "a workload exited; starting it again");
                workload.restart()?;
                self.restarts += 1;
            }
        }
        Ok(())
    }

    /// Starts `count` more windowers and waits until they are ready.
    pub async fn add_windowers(&mut self, count: u16) -> Result<()> {
        for index in 0..count {
            let name = format!("windower-{}", index + 2);
            let port = ADDED_WINDOWER_PORT + index;
            let mut workload = Workload::start("windower", name, port, &self.experiment_file, &self.dir)?;
            workload.wait_ready(&self.http).await?;
            self.workloads.0.push(workload);
        }
        Ok(())
    }

    /// Stops (SIGTERM) the windowers [`Run::add_windowers`] started.
    pub fn stop_added_windowers(&mut self) -> Result<()> {
        let mut kept = Vec::new();
        for mut workload in std::mem::take(&mut self.workloads.0) {
            if workload.name.starts_with("windower-") {
                workload.stop()?;
            } else {
                kept.push(workload);
            }
        }
        self.workloads.0 = kept;
        Ok(())
    }

    /// Stops every process (SIGTERM), logging any that would not.
    fn stop_all(&mut self) {
        for workload in &mut self.workloads.0 {
            if matches!(workload.observe(), Ok(None))
                && let Err(error) = workload.stop()
            {
                tracing::warn!(%error, "stopping a workload");
            }
        }
    }
}

/// Makes every new session of the experiments' database commit durably (`synchronous_commit`
/// on, PostgreSQL's default and the operator's): the test env runs it off for speed, and a
/// crash would then lose commits the coordinator was told were made — the database's
/// durability, not the pipeline's, which the matrix is not about.
async fn durable_commits(services: &Services) -> Result<()> {
    let store = Store::connect(&services.postgres, "public", 1).await?;
    sqlx::query(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on', current_database()); END $$",
    )
    .execute(store.pool())
    .await
    .context("setting synchronous_commit on for the experiments' database")?;
    store.pool().close().await;
    Ok(())
}

/// Runs `wattcast setup` as a process (the operator's Job): topics, schema, bucket, initial models.
async fn setup(experiment_file: &Path, dir: &Path) -> Result<()> {
    let log_path = dir.join("setup.log");
    let log = std::fs::File::create(&log_path)?;
    let status = tokio::process::Command::new(std::env::current_exe()?)
        .arg("setup")
        .arg("--experiment")
        .arg(experiment_file)
        .arg("--metrics-addr")
        .arg("127.0.0.1:0")
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .await
        .context("running wattcast setup")?;
    if !status.success() {
        bail!("wattcast setup failed ({status}); see {}", log_path.display());
    }
    Ok(())
}

/// Counts the messages on the experiment's dead-letter topic.
async fn dead_letters(services: &Services, names: &ExperimentNames) -> Result<u64> {
    use futures::StreamExt;
    let pulsar = wattcast_pipeline::workload::pulsar_client(&services.pulsar).await?;
    let mut consumer: pulsar::Consumer<Vec<u8>, pulsar::TokioExecutor> = pulsar
        .consumer()
        .with_topic(names.pulsar_topic(Topic::DeadLetter))
        .with_subscription("fault-matrix")
        .with_subscription_type(pulsar::SubType::Exclusive)
        .with_options(pulsar::ConsumerOptions {
            initial_position: pulsar::consumer::InitialPosition::Earliest,
            ..pulsar::ConsumerOptions::default()
        })
        .build()
        .await?;
    let mut count = 0;
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await {
        message?;
        count += 1;
    }
    Ok(count)
}
