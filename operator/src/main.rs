//! `wattcast-operator`: reconciles PipelineExperiments in every namespace, serving /metrics,
//! /healthz and /readyz, with leader election so several replicas are safe.

use anyhow::{Context as _, Result};
use clap::{Parser, ValueEnum};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wattcast_io::observe::{Readiness, cancel_on_signals, serve};
use wattcast_operator::controller::{self, Context, Settings};
use wattcast_operator::images::Images;
use wattcast_operator::leader::LeaderElection;
use wattcast_operator::metrics::Metrics;

/// The wattcast operator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long, env = "WATTCAST_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Elect a leader through a Lease (turn off only when running one replica by hand).
    #[arg(long, env = "WATTCAST_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// The Lease's namespace (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "wattcast-system")]
    lease_namespace: String,
    /// The Lease's name.
    #[arg(long, env = "WATTCAST_LEASE_NAME", default_value = "wattcast-operator")]
    lease_name: String,
    /// This replica's identity (the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// How often a running experiment is looked at again.
    #[arg(long, env = "WATTCAST_POLL", value_parser = humantime::parse_duration, default_value = "10s")]
    poll: Duration,
    /// How long the store's counts must stay still, once every reading arrived, to call the run drained.
    #[arg(long, env = "WATTCAST_SETTLE", value_parser = humantime::parse_duration, default_value = "20s")]
    settle: Duration,
    /// How long to wait for the data after the sensors finish before completing anyway.
    #[arg(long, env = "WATTCAST_DRAIN_TIMEOUT", value_parser = humantime::parse_duration, default_value = "10m")]
    drain_timeout: Duration,
    /// How long an experiment may take from creation to Running before it fails.
    #[arg(long, env = "WATTCAST_STARTUP_DEADLINE", value_parser = humantime::parse_duration, default_value = "15m")]
    startup_deadline: Duration,
    /// Log format.
    #[arg(long, value_enum, env = "WATTCAST_LOG_FORMAT", default_value_t = LogFormat::Json)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    wattcast_io::observe::init_logging(matches!(args.log_format, LogFormat::Json));
    wattcast_io::tls::ensure_default_provider();
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in cluster, or from KUBECONFIG)")?;

    let stop = CancellationToken::new();
    cancel_on_signals(stop.clone());
    let metrics = Arc::new(Metrics::default());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let readiness = Arc::new(Readiness::default());
    let server = tokio::spawn(serve(
        args.metrics_addr,
        Arc::new(registry),
        readiness.clone(),
        stop.clone(),
    ));

    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("wattcast-operator-{}", std::process::id()));
    let lost = CancellationToken::new();
    let election = args.leader_elect.then(|| {
        LeaderElection::new(
            client.clone(),
            &args.lease_namespace,
            &args.lease_name,
            &identity,
            Duration::from_secs(15),
        )
    });
    // Ready means healthy and able to stand for election: a follower is a ready standby (a
    // rollout of several replicas must not wait on who leads).
    readiness.set(true);
    if let Some(election) = &election {
        tracing::info!(lease = %args.lease_name, %identity, "waiting to lead");
        if !election.acquire(Duration::from_secs(2), &stop).await {
            return Ok(());
        }
        tracing::info!(%identity, "leading");
        let (election, stop, lost) = (election.clone(), stop.clone(), lost.clone());
        tokio::spawn(async move { election.keep(Duration::from_secs(5), stop, lost).await });
    }

    let settings = Settings {
        poll: args.poll,
        settle: args.settle,
        drain_timeout: args.drain_timeout,
        startup_deadline: args.startup_deadline,
    };
    let ctx = Arc::new(Context::new(
        client,
        Images::from_env(),
        metrics,
        settings,
        Some(identity),
    ));
    let shutdown = CancellationToken::new();
    {
        let (shutdown, stop, lost) = (shutdown.clone(), stop.clone(), lost.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = lost.cancelled() => {}
            }
            shutdown.cancel();
        });
    }
    controller::run(ctx, shutdown).await;
    if let Some(election) = &election
        && !lost.is_cancelled()
        && let Err(error) = election.release().await
    {
        tracing::warn!(%error, "could not release the Lease");
    }
    stop.cancel();
    let _ = server.await;
    if lost.is_cancelled() {
        anyhow::bail!("lost leadership; exiting so a fresh replica can stand for election");
    }
    Ok(())
}
