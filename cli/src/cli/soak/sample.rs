//! The soak's sampler: every so often, each workload's and watched service's footprint and
//! the experiment's Pulsar backlog per topic.

use super::super::bench_processes::Watch;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use wattcast::footprint::{self, Footprint};
use wattcast_core::topics::ExperimentNames;
use wattcast_io::pulsar_admin::PulsarAdmin;
use wattcast_io::services::Services;

/// What one sample saw.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the sensor started.
    pub t_s: f64,
    /// Each live process by name (`sensor`, `windower`, `postgres`, …).
    pub processes: BTreeMap<String, Footprint>,
    /// Unacknowledged messages per Pulsar topic.
    pub backlog: BTreeMap<&'static str, u64>,
}

/// Takes a [`Sample`] every `every` while the sensor replays.
pub struct Sampler {
    every: Duration,
    next: Duration,
    services: Vec<(String, u32)>,
    admin: PulsarAdmin,
    names: ExperimentNames,
    samples: Vec<Sample>,
}

impl Sampler {
    /// A sampler of the experiment `names`, also watching `services` (name, pid).
    pub fn new(
        services: &Services,
        names: ExperimentNames,
        every: Duration,
        watched: Vec<(String, u32)>,
    ) -> Result<Self> {
        Ok(Self {
            every,
            next: Duration::ZERO,
            services: watched,
            admin: PulsarAdmin::new(&services.pulsar)?,
            names,
            samples: Vec::new(),
        })
    }

    /// The samples taken, oldest first.
    pub fn into_samples(self) -> Vec<Sample> {
        self.samples
    }
}

impl Watch for Sampler {
    async fn tick(&mut self, since_start: Duration, workloads: &[(&'static str, u32)]) -> Result<()> {
        if since_start < self.next {
            return Ok(());
        }
        while self.next <= since_start {
            self.next += self.every;
        }
        let mut processes = BTreeMap::new();
        let named = workloads
            .iter()
            .map(|(name, pid)| ((*name).to_owned(), *pid))
            .chain(self.services.iter().cloned());
        for (name, pid) in named {
            if let Some(footprint) = footprint::of_tree(pid) {
                processes.insert(name, footprint);
            }
        }
        for (name, pid) in &self.services {
            if !processes.contains_key(name) {
                anyhow::bail!("the watched {name} (pid {pid}) is gone");
            }
        }
        let backlog = self
            .admin
            .backlog(&self.names)
            .await
            .context("reading the experiment's Pulsar backlog")?;
        let sample = Sample {
            t_s: since_start.as_secs_f64(),
            processes,
            backlog,
        };
        eprintln!("{}", progress_line(&sample));
        self.samples.push(sample);
        Ok(())
    }
}

/// One line per sample for whoever watches the soak.
fn progress_line(sample: &Sample) -> String {
    let processes: Vec<String> = sample
        .processes
        .iter()
        .map(|(name, f)| format!("{name} {:.0} MiB/{} fds", f.pss_mib(), f.open_fds))
        .collect();
    let backlog: Vec<String> = sample
        .backlog
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(topic, n)| format!("{topic} {n}"))
        .collect();
    format!(
        "soak {:>6.0} s: {}; backlog: {}",
        sample.t_s,
        processes.join(", "),
        if backlog.is_empty() {
            "none".to_owned()
        } else {
            backlog.join(", ")
        }
    )
}
