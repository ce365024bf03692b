//! Where the pipeline's services are: MQTT, PostgreSQL, Pulsar and S3 endpoints with credentials,
//! read from environment variables, falling back to the `.env` file `test-env/up` writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The variables, and what each one holds.
pub const VARIABLES: &[(&str, &str)] = &[
    ("WATTCAST_MQTT_URL", "MQTT broker, mqtt://host:port"),
    ("WATTCAST_MQTT_USERNAME", "MQTT user"),
    ("WATTCAST_MQTT_PASSWORD", "MQTT password"),
    (
        "WATTCAST_POSTGRES_URL",
        "PostgreSQL, postgres://user:password@host:port/database",
    ),
    ("WATTCAST_PULSAR_URL", "Pulsar broker, pulsar://host:6650"),
    ("WATTCAST_PULSAR_ADMIN_URL", "Pulsar admin API, http://host:8080"),
    (
        "WATTCAST_S3_ENDPOINT",
        "S3-compatible object store, http://host:9000",
    ),
    ("WATTCAST_S3_ACCESS_KEY", "S3 access key"),
    ("WATTCAST_S3_SECRET_KEY", "S3 secret key"),
    ("WATTCAST_S3_REGION", "S3 region (any name for s3s-fs and RustFS)"),
];

/// An MQTT broker and the credentials to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttEndpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// An S3-compatible object store and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Endpoint {
    /// Endpoint URL (path-style requests are used).
    pub endpoint: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Region name.
    pub region: String,
}

/// Every service the pipeline talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Services {
    /// The MQTT broker (Mosquitto).
    pub mqtt: MqttEndpoint,
    /// PostgreSQL connection URL.
    pub postgres_url: String,
    /// Pulsar broker URL.
    pub pulsar_url: String,
    /// Pulsar admin (HTTP) URL.
    pub pulsar_admin_url: String,
    /// The object store.
    pub s3: S3Endpoint,
}

/// Why the services could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    /// A variable is neither in the environment nor in the `.env` file.
    #[error("{name} ({what}) is not set{}; start the test services with `make test-env` (or set the WATTCAST_* variables, see docs/testing.md)", .env_file.as_ref().map(|p| format!(" and {} does not define it", p.display())).unwrap_or_default())]
    Missing {
        /// The variable.
        name: &'static str,
        /// What it holds.
        what: &'static str,
        /// The `.env` file that was read, if any.
        env_file: Option<PathBuf>,
    },
    /// A variable's value is malformed.
    #[error("{name} = `{value}`: {problem}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// The `.env` file exists but cannot be read.
    #[error("{}: {source}", path.display())]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// The parse or I/O error.
        source: dotenvy::Error,
    },
}

impl Services {
    /// Reads the services from the process environment; variables it lacks are taken from
    /// `env_file` when that file exists (environment wins).
    pub fn load(env_file: Option<&Path>) -> Result<Self, ServicesError> {
        Self::load_with(|name| std::env::var(name).ok(), env_file)
    }

    /// [`Services::load`] with the environment given as a lookup function.
    fn load_with(
        environment: impl Fn(&str) -> Option<String>,
        env_file: Option<&Path>,
    ) -> Result<Self, ServicesError> {
        let mut values: HashMap<String, String> = HashMap::new();
        let mut file_used = None;
        if let Some(path) = env_file.filter(|path| path.exists()) {
            let entries = dotenvy::from_path_iter(path).map_err(|source| ServicesError::EnvFile {
                path: path.to_owned(),
                source,
            })?;
            for entry in entries {
                let (key, value) = entry.map_err(|source| ServicesError::EnvFile {
                    path: path.to_owned(),
                    source,
                })?;
                values.insert(key, value);
            }
            file_used = Some(path.to_owned());
        }
        for (name, _) in VARIABLES {
            if let Some(value) = environment(name) {
                values.insert((*name).to_owned(), value);
            }
        }
        Self::from_values(&values, file_used)
    }

    /// Builds the services from a map of variables (`env_file` only names the source in errors).
    pub fn from_values(
        values: &HashMap<String, String>,
        env_file: Option<PathBuf>,
    ) -> Result<Self, ServicesError> {
        let get = |name: &'static str| -> Result<String, ServicesError> {
            values
                .get(name)
                .filter(|value| !value.is_empty())
                .cloned()
                .ok_or_else(|| {
                    let what = VARIABLES
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map_or("", |(_, what)| what);
                    ServicesError::Missing {
                        name,
                        what,
                        env_file: env_file.clone(),
                    }
                })
        };
        let mqtt_url = get("WATTCAST_MQTT_URL")?;
        let (host, port) = parse_mqtt_url(&mqtt_url).ok_or_else(|| ServicesError::Invalid {
            name: "WATTCAST_MQTT_URL",
            value: mqtt_url.clone(),
            problem: "expected mqtt://host:port".to_owned(),
        })?;
        Ok(Self {
            mqtt: MqttEndpoint {
                host,
                port,
                username: get("WATTCAST_MQTT_USERNAME")?,
                password: get("WATTCAST_MQTT_PASSWORD")?,
            },
            postgres_url: get("WATTCAST_POSTGRES_URL")?,
            pulsar_url: get("WATTCAST_PULSAR_URL")?,
            pulsar_admin_url: get("WATTCAST_PULSAR_ADMIN_URL")?,
            s3: S3Endpoint {
                endpoint: get("WATTCAST_S3_ENDPOINT")?,
                access_key: get("WATTCAST_S3_ACCESS_KEY")?,
                secret_key: get("WATTCAST_S3_SECRET_KEY")?,
                region: values
                    .get("WATTCAST_S3_REGION")
                    .cloned()
                    .unwrap_or_else(|| "us-east-1".to_owned()),
            },
        })
    }
}

/// `mqtt://host:port` (port 1883 when left out).
fn parse_mqtt_url(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("mqtt://")?.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host.to_owned(), port.parse().ok()?)),
        Some(_) => None,
        None if !rest.is_empty() => Some((rest.to_owned(), 1883)),
        None => None,
    }
}

/// The `.env` file `test-env/up` writes, found from `start` upwards (`<repo>/test-env/.env`).
pub fn find_test_env_file(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join("test-env").join(".env"))
        .find(|candidate| candidate.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> HashMap<String, String> {
        VARIABLES
            .iter()
            .map(|(name, _)| {
                let value = match *name {
                    "WATTCAST_MQTT_URL" => "mqtt://127.0.0.1:1883".to_owned(),
                    other => format!("value-of-{other}"),
                };
                ((*name).to_owned(), value)
            })
            .collect()
    }

    #[test]
    fn reads_every_service() {
        let services = Services::from_values(&complete(), None).unwrap();
        assert_eq!(services.mqtt.host, "127.0.0.1");
        assert_eq!(services.mqtt.port, 1883);
        assert_eq!(services.mqtt.username, "value-of-WATTCAST_MQTT_USERNAME");
        assert_eq!(services.s3.region, "value-of-WATTCAST_S3_REGION");
    }

    #[test]
    fn a_missing_variable_says_how_to_start_the_services() {
        let mut values = complete();
        values.remove("WATTCAST_PULSAR_URL");
        let message = Services::from_values(&values, Some(PathBuf::from("test-env/.env")))
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("WATTCAST_PULSAR_URL (Pulsar broker, pulsar://host:6650) is not set and test-env/.env does not define it"), "{message}");
        assert!(message.contains("make test-env"), "{message}");
    }

    #[test]
    fn mqtt_urls() {
        assert_eq!(
            parse_mqtt_url("mqtt://broker:1884"),
            Some(("broker".to_owned(), 1884))
        );
        assert_eq!(parse_mqtt_url("mqtt://broker"), Some(("broker".to_owned(), 1883)));
        assert_eq!(parse_mqtt_url("http://broker:1883"), None);
        assert_eq!(parse_mqtt_url("mqtt://:1883"), None);
        assert_eq!(parse_mqtt_url("mqtt://broker:lots"), None);
    }

    #[test]
    fn an_env_file_fills_what_the_environment_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".env");
        let text: String = complete().iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&file, text).unwrap();
        let environment =
            |name: &str| (name == "WATTCAST_PULSAR_URL").then(|| "pulsar://from-env:6650".to_owned());
        let services = Services::load_with(environment, Some(&file)).unwrap();
        assert_eq!(services.pulsar_url, "pulsar://from-env:6650");
        assert_eq!(services.postgres_url, "value-of-WATTCAST_POSTGRES_URL");
        assert_eq!(services.mqtt.port, 1883);
    }
}
