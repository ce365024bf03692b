//! Workloads as child `wattcast` processes, as pods run them: started, probed for readiness,
//! sampled for usage, stopped (SIGTERM) or killed (SIGKILL) and started again.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use wattcast_pipeline::process_usage::{self, ProcessUsage};

/// A started workload process and what has been seen of its usage.
pub struct Workload {
    /// `sensor`, `bridge`, `windower`, `coordinator` or `trainer`.
    pub component: &'static str,
    /// Its name among the processes of a run (`windower-2`); names its log file.
    pub name: String,
    port: u16,
    experiment_file: PathBuf,
    log_dir: PathBuf,
    child: Child,
    /// The latest reading of its /proc entry.
    pub usage: Option<ProcessUsage>,
}

impl Workload {
    /// Starts `wattcast COMPONENT --experiment FILE --metrics-addr 127.0.0.1:PORT`, appending its
    /// output to `LOG_DIR/NAME.log`.
    pub fn start(
        component: &'static str,
        name: impl Into<String>,
        port: u16,
        experiment_file: &Path,
        log_dir: &Path,
    ) -> Result<Self> {
        let name = name.into();
        let child = spawn(component, &name, port, experiment_file, log_dir)?;
        Ok(Self {
            component,
            name,
            port,
            experiment_file: experiment_file.to_owned(),
            log_dir: log_dir.to_owned(),
            child,
            usage: None,
        })
    }

    /// Its process id (of the latest start).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where its output goes.
    pub fn log_path(&self) -> PathBuf {
        self.log_dir.join(format!("{}.log", self.name))
    }

    /// Records the latest usage while the process lives; its exit status once it has exited.
    pub fn observe(&mut self) -> Result<Option<ExitStatus>> {
        if let Some(usage) = process_usage::of(self.child.id()) {
            self.usage = Some(usage);
        }
        Ok(self.child.try_wait()?)
    }

    /// Fails, naming its log, if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.observe()? {
            bail!(
                "the {} exited ({status}); see {}",
                self.name,
                self.log_path().display()
            );
        }
        Ok(())
    }

    /// Asks the process to stop (SIGTERM, as Kubernetes does) and waits up to ten seconds.
    pub fn stop(&mut self) -> Result<()> {
        self.observe()?;
        signal(self.child.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                bail!("the {} did not stop within 10 s of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Kills the process (SIGKILL: no clean-up, as a node failure or an OOM kill) and reaps it.
    pub fn kill(&mut self) -> Result<()> {
        self.child
            .kill()
            .with_context(|| format!("killing the {}", self.name))?;
        self.child.wait()?;
        Ok(())
    }

    /// Starts the process again as it was started first (a pod's replacement).
    pub fn restart(&mut self) -> Result<()> {
        if self.observe()?.is_none() {
            bail!("the {} still runs; kill or stop it first", self.name);
        }
        self.child = spawn(
            self.component,
            &self.name,
            self.port,
            &self.experiment_file,
            &self.log_dir,
        )?;
        Ok(())
    }

    /// Waits (at most 60 s) until its `/readyz` answers 200.
    pub async fn wait_ready(&mut self, http: &reqwest::Client) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http
                .get(format!("http://127.0.0.1:{}/readyz", self.port))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "the {} was not ready within 60 s (port {} in use?); see {}",
                    self.name,
                    self.port,
                    self.log_path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The value of one counter (`wattcast_trainer_retrains_total`) on its `/metrics`.
    pub async fn metric(&self, http: &reqwest::Client, name: &str) -> Result<f64> {
        let text = http
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .send()
            .await?
            .text()
            .await?;
        text.lines()
            .find_map(|line| {
                let (metric, value) = line.split_once(' ')?;
                (metric == name).then(|| value.trim().parse().ok())?
            })
            .with_context(|| format!("the {} serves no metric {name}", self.name))
    }
}

fn spawn(component: &str, name: &str, port: u16, experiment_file: &Path, log_dir: &Path) -> Result<Child> {
    let log_path = log_dir.join(format!("{name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    Command::new(std::env::current_exe().context("finding this executable")?)
        .arg(component)
        .arg("--experiment")
        .arg(experiment_file)
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting the {name}"))
}

fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(signal).arg(pid.to_string()).status();
}

/// Kills every workload still running when dropped, so a failed run leaves no process behind.
#[derive(Default)]
pub struct Workloads(pub Vec<Workload>);

impl Workloads {
    /// Fails if any of them has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        self.0.iter_mut().try_for_each(Workload::check_alive)
    }

    /// The workload called `name`.
    pub fn named(&mut self, name: &str) -> Result<&mut Workload> {
        self.0
            .iter_mut()
            .find(|workload| workload.name == name)
            .with_context(|| format!("no workload called {name}"))
    }
}

impl Drop for Workloads {
    fn drop(&mut self) {
        for workload in &mut self.0 {
            if matches!(workload.child.try_wait(), Ok(None)) {
                let _ = workload.child.kill();
                let _ = workload.child.wait();
            }
        }
    }
}
