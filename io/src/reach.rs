//! Waiting at start-up until the services a workload needs accept TCP connections: a new pod's
//! first connections can be refused while the network plugin programs its NetworkPolicies, or
//! while a Service's endpoints are not ready yet.

use crate::services::{MqttEndpoint, PostgresEndpoint, PulsarEndpoint, S3Endpoint, redact_password};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long one connection attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause between rounds of attempts.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// One address a workload must reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What it is, for messages ("Pulsar admin API").
    pub service: &'static str,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why the services could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    /// A service's URL has no host, or no port that its scheme implies.
    #[error("{service}: cannot tell host and port from {url}: {problem}")]
    BadUrl {
        /// The service.
        service: &'static str,
        /// Its URL, password redacted.
        url: String,
        /// What is missing.
        problem: String,
    },
    /// Some targets still refused connections when the patience ran out.
    #[error("still unreachable after {waited_s} s: {unreachable}")]
    Unreachable {
        /// How long it waited.
        waited_s: u64,
        /// Each unreachable target with its last error.
        unreachable: String,
    },
}

impl Target {
    /// The host and port of `url` (its scheme's usual port when it names none).
    pub fn from_url(service: &'static str, url: &str) -> Result<Self, ReachError> {
        let bad = |problem: &str| ReachError::BadUrl {
            service,
            url: redact_password(url),
            problem: problem.to_owned(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|error| bad(&error.to_string()))?;
        let host = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| bad("no host"))?;
        let port = parsed
            .port()
            .or_else(|| default_port(parsed.scheme()))
            .ok_or_else(|| bad("no port, and the scheme has no usual one"))?;
        Ok(Self {
            service,
            host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            port,
        })
    }

    /// The MQTT broker.
    pub fn mqtt(endpoint: &MqttEndpoint) -> Self {
        Self {
            service: "MQTT broker",
            host: endpoint.host.clone(),
            port: endpoint.port,
        }
    }

    /// PostgreSQL.
    pub fn postgres(endpoint: &PostgresEndpoint) -> Result<Self, ReachError> {
        Self::from_url("PostgreSQL", &endpoint.url)
    }

    /// Pulsar's broker and its admin API.
    pub fn pulsar(endpoint: &PulsarEndpoint) -> Result<Vec<Self>, ReachError> {
        Ok(vec![
            Self::from_url("Pulsar broker", &endpoint.url)?,
            Self::from_url("Pulsar admin API", &endpoint.admin_url)?,
        ])
    }

    /// The object store.
    pub fn s3(endpoint: &S3Endpoint) -> Result<Self, ReachError> {
        Self::from_url("object store", &endpoint.endpoint)
    }

    /// One connection attempt to each of its addresses; the first that opens wins.
    pub fn try_connect(&self) -> Result<(), std::io::Error> {
        let mut last = std::io::Error::other("the name resolves to no address");
        for address in (self.host.as_str(), self.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&address, ATTEMPT_TIMEOUT) {
                Ok(_) => return Ok(()),
                Err(error) => last = error,
            }
        }
        Err(last)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}:{}", self.service, self.host, self.port)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "mqtt" | "tcp" => 1883,
        "mqtts" | "ssl" => 8883,
        "postgres" | "postgresql" => 5432,
        "pulsar" => 6650,
        "pulsar+ssl" => 6651,
        "http" => 80,
        "https" => 443,
        _ => return None,
    })
}

/// Blocks until every target accepts a TCP connection, trying again every half second, for at
/// most `patience`; says once which it waits for. Only the connection is tested: credentials
/// and protocol are the clients' business.
pub fn wait_until_reachable(targets: &[Target], patience: Duration) -> Result<(), ReachError> {
    let started = Instant::now();
    let mut pending: Vec<&Target> = targets.iter().collect();
    let mut announced = false;
    loop {
        let mut failures = Vec::new();
        pending.retain(|target| match target.try_connect() {
            Ok(()) => false,
            Err(error) => {
                failures.push(format!("{target} ({error})"));
                true
            }
        });
        if pending.is_empty() {
            if announced {
                tracing::info!(
                    waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "every service reachable"
                );
            }
            return Ok(());
        }
        if started.elapsed() >= patience {
            return Err(ReachError::Unreachable {
                waited_s: started.elapsed().as_secs(),
                unreachable: failures.join("; "),
            });
        }
        if !announced {
            tracing::info!(waiting_for = %failures.join("; "), "waiting for services to accept connections");
            announced = true;
        }
        std::thread::sleep(RETRY_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls_give_host_and_port_with_scheme_defaults() {
        let target = Target::from_url("PostgreSQL", "postgres://u:secret@db.example:6543/x").expect("url");
        assert_eq!((target.host.as_str(), target.port), ("db.example", 6543));
        let target = Target::from_url("Pulsar broker", "pulsar+ssl://broker").expect("url");
        assert_eq!(target.port, 6651);
        let target = Target::from_url("object store", "https://s3.example").expect("url");
        assert_eq!(target.port, 443);
        let target = Target::from_url("x", "http://[::1]:9000").expect("url");
        assert_eq!(target.host, "::1");
    }

    #[test]
    fn a_bad_url_is_named_without_its_password() {
        let error = Target::from_url("PostgreSQL", "postgres://u:secret@").expect_err("no host");
        let message = error.to_string();
        assert!(message.contains("PostgreSQL"), "{message}");
        assert!(!message.contains("secret"), "{message}");
        let error = Target::from_url("S3", "gopher://host").expect_err("no port");
        assert!(error.to_string().contains("no port"), "{error}");
    }

    #[test]
    fn waits_for_a_port_that_opens_later() {
        let spare = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = spare.local_addr().expect("address");
        drop(spare);
        let opener = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            let listener = TcpListener::bind(address).expect("bind again");
            let _ = listener.accept();
        });
        let target = Target {
            service: "test",
            host: "127.0.0.1".to_owned(),
            port: address.port(),
        };
        wait_until_reachable(&[target], Duration::from_secs(30)).expect("reachable once it listens");
        opener.join().expect("opener");
    }

    #[test]
    fn gives_up_naming_what_stayed_unreachable() {
        let spare = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = spare.local_addr().expect("address").port();
        drop(spare);
        let target = Target {
            service: "closed service",
            host: "127.0.0.1".to_owned(),
            port,
        };
        let error = wait_until_reachable(&[target], Duration::ZERO).expect_err("nothing listens");
        assert!(
            error.to_string().contains("closed service at 127.0.0.1"),
            "{error}"
        );
    }
}
