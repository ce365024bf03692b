//! `wattcast probe`: whether this process can open TCP connections to addresses (what a
//! NetworkPolicy admits), for diagnosing a pod's reach and for `make e2e`'s policy checks.

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::time::{Duration, Instant};
use wattcast_io::reach::{Target, wait_until_reachable};

/// Arguments of `wattcast probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Addresses to connect to, as HOST:PORT.
    #[arg(required = true)]
    targets: Vec<String>,
    /// What every target must be for the probe to succeed.
    #[arg(long, value_enum, default_value_t = Expect::Reachable)]
    expect: Expect,
    /// Reachable: how long to keep trying (a new pod's policies take a moment to be programmed).
    /// Unreachable: how long every target must keep refusing. 0 tries once.
    #[arg(long, default_value_t = 0)]
    patience_seconds: u64,
}

/// The outcome every target must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Expect {
    /// A TCP connection opens.
    Reachable,
    /// No TCP connection opens (refused or timed out).
    Unreachable,
}

/// Probes the targets and prints what it found; fails unless all are as expected. A name that
/// does not resolve is an error, not "unreachable": it would prove nothing.
pub fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let targets = args
        .targets
        .iter()
        .map(|t| parse(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for target in &targets {
        resolves(target)?;
    }
    let patience = Duration::from_secs(args.patience_seconds);
    match args.expect {
        Expect::Reachable => {
            wait_until_reachable(&targets, patience).context("expected reachable")?;
            for target in &targets {
                println!("{}:{} reachable", target.host, target.port);
            }
        }
        Expect::Unreachable => {
            let started = Instant::now();
            loop {
                let reached: Vec<String> = targets
                    .iter()
                    .filter(|target| target.try_connect().is_ok())
                    .map(|target| format!("{}:{}", target.host, target.port))
                    .collect();
                if !reached.is_empty() {
                    bail!("expected unreachable, but reached: {}", reached.join(", "));
                }
                if started.elapsed() >= patience {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            for target in &targets {
                println!(
                    "{}:{} unreachable for {} s",
                    target.host,
                    target.port,
                    started.elapsed().as_secs()
                );
            }
        }
    }
    Ok(())
}

fn parse(target: &str) -> anyhow::Result<Target> {
    let (host, port) = target
        .rsplit_once(':')
        .with_context(|| format!("{target:?} is not HOST:PORT"))?;
    let port = port
        .parse::<u16>()
        .with_context(|| format!("{target:?}: the port is not a number from 1 to 65535"))?;
    Ok(Target {
        service: "probe target",
        host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
        port,
    })
}

fn resolves(target: &Target) -> anyhow::Result<()> {
    use std::net::ToSocketAddrs;
    let mut addresses = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {}", target.host))?;
    if addresses.next().is_none() {
        bail!("{} resolves to no address", target.host);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn args(targets: Vec<String>, expect: Expect) -> ProbeArgs {
        ProbeArgs {
            targets,
            expect,
            patience_seconds: 0,
        }
    }

    #[test]
    fn a_listening_port_is_reachable_and_a_closed_one_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let open = listener.local_addr().expect("address").to_string();
        let closed = {
            let spare = TcpListener::bind("127.0.0.1:0").expect("bind");
            spare.local_addr().expect("address").to_string()
        };
        assert!(run(args(vec![open.clone()], Expect::Reachable)).is_ok());
        assert!(run(args(vec![closed.clone()], Expect::Unreachable)).is_ok());
        let error = run(args(vec![open.clone(), closed.clone()], Expect::Reachable))
            .expect_err("the closed port is not reachable");
        let message = format!("{error:#}");
        assert!(message.contains(&closed), "{message}");
        let error = run(args(vec![closed, open.clone()], Expect::Unreachable))
            .expect_err("the open port is reachable");
        assert!(format!("{error:#}").contains(&open), "{error:#}");
    }

    #[test]
    fn a_target_without_a_port_is_an_error_naming_it() {
        let error = run(args(vec!["postgres".to_owned()], Expect::Unreachable)).expect_err("no port");
        assert!(error.to_string().contains("\"postgres\""), "{error}");
    }
}
