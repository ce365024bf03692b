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
        "PostgreSQL, postgres://user:password@host:port/database (or without user:password@ and the two variables below)",
    ),
    (
        "WATTCAST_POSTGRES_USERNAME",
        "PostgreSQL user, put into a WATTCAST_POSTGRES_URL without one (percent-encoded)",
    ),
    (
        "WATTCAST_POSTGRES_PASSWORD",
        "PostgreSQL password, put into a WATTCAST_POSTGRES_URL without one (percent-encoded)",
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

/// The service variables as found (environment over `.env` file), read one service at a time
/// so each workload needs only its own credentials.
#[derive(Debug, Clone)]
pub struct ServiceEnv {
    values: HashMap<String, String>,
    env_file: Option<PathBuf>,
}

impl ServiceEnv {
    /// Reads the process environment; variables it lacks are taken from `env_file` when that
    /// file exists (environment wins).
    pub fn load(env_file: Option<&Path>) -> Result<Self, ServicesError> {
        Self::load_with(|name| std::env::var(name).ok(), env_file)
    }

    /// [`ServiceEnv::load`] with the environment given as a lookup function.
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
        Ok(Self {
            values,
            env_file: file_used,
        })
    }

    /// From a map of variables (`env_file` only names the source in errors).
    pub fn from_values(values: HashMap<String, String>, env_file: Option<PathBuf>) -> Self {
        Self { values, env_file }
    }

    fn get(&self, name: &'static str) -> Result<String, ServicesError> {
        self.values
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
                    env_file: self.env_file.clone(),
                }
            })
    }

    /// The MQTT broker.
    pub fn mqtt(&self) -> Result<MqttEndpoint, ServicesError> {
        let url = self.get("WATTCAST_MQTT_URL")?;
        let (host, port) = parse_mqtt_url(&url).ok_or_else(|| ServicesError::Invalid {
            name: "WATTCAST_MQTT_URL",
            value: url.clone(),
            problem: "expected mqtt://host:port".to_owned(),
        })?;
        Ok(MqttEndpoint {
            host,
            port,
            username: self.get("WATTCAST_MQTT_USERNAME")?,
            password: self.get("WATTCAST_MQTT_PASSWORD")?,
        })
    }

    /// The PostgreSQL URL; a URL without credentials gets `WATTCAST_POSTGRES_USERNAME` and
    /// `WATTCAST_POSTGRES_PASSWORD`, percent-encoded, when they are set (how pods get theirs:
    /// a password may hold any character).
    pub fn postgres_url(&self) -> Result<String, ServicesError> {
        let url = self.get("WATTCAST_POSTGRES_URL")?;
        let user = self
            .values
            .get("WATTCAST_POSTGRES_USERNAME")
            .filter(|v| !v.is_empty());
        let password = self.values.get("WATTCAST_POSTGRES_PASSWORD");
        match (user, password) {
            (Some(user), Some(password)) if !has_userinfo(&url) => Ok(with_credentials(&url, user, password)),
            _ => Ok(url),
        }
    }

    /// The Pulsar broker URL.
    pub fn pulsar_url(&self) -> Result<String, ServicesError> {
        self.get("WATTCAST_PULSAR_URL")
    }

    /// The Pulsar admin URL.
    pub fn pulsar_admin_url(&self) -> Result<String, ServicesError> {
        self.get("WATTCAST_PULSAR_ADMIN_URL")
    }

    /// The object store.
    pub fn s3(&self) -> Result<S3Endpoint, ServicesError> {
        Ok(S3Endpoint {
            endpoint: self.get("WATTCAST_S3_ENDPOINT")?,
            access_key: self.get("WATTCAST_S3_ACCESS_KEY")?,
            secret_key: self.get("WATTCAST_S3_SECRET_KEY")?,
            region: self
                .values
                .get("WATTCAST_S3_REGION")
                .cloned()
                .unwrap_or_else(|| "us-east-1".to_owned()),
        })
    }

    /// Every service.
    pub fn all(&self) -> Result<Services, ServicesError> {
        Ok(Services {
            mqtt: self.mqtt()?,
            postgres_url: self.postgres_url()?,
            pulsar_url: self.pulsar_url()?,
            pulsar_admin_url: self.pulsar_admin_url()?,
            s3: self.s3()?,
        })
    }
}

impl Services {
    /// Every service, from the environment and `env_file` (see [`ServiceEnv::load`]).
    pub fn load(env_file: Option<&Path>) -> Result<Self, ServicesError> {
        ServiceEnv::load(env_file)?.all()
    }
}

/// Percent-encodes a URL userinfo part (RFC 3986 unreserved characters stay).
fn encode_userinfo(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `scheme://user:password@rest` from `scheme://rest`, both percent-encoded.
pub fn with_credentials(url: &str, user: &str, password: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!(
            "{scheme}://{}:{}@{rest}",
            encode_userinfo(user),
            encode_userinfo(password)
        ),
        None => url.to_owned(),
    }
}

/// Whether `scheme://user@host…` carries a user.
fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
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
        let services = ServiceEnv::from_values(complete(), None).all().unwrap();
        assert_eq!(services.mqtt.host, "127.0.0.1");
        assert_eq!(services.mqtt.port, 1883);
        assert_eq!(services.mqtt.username, "value-of-WATTCAST_MQTT_USERNAME");
        assert_eq!(services.s3.region, "value-of-WATTCAST_S3_REGION");
    }

    #[test]
    fn a_missing_variable_says_how_to_start_the_services() {
        let mut values = complete();
        values.remove("WATTCAST_PULSAR_URL");
        let message = ServiceEnv::from_values(values, Some(PathBuf::from("test-env/.env")))
            .all()
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("WATTCAST_PULSAR_URL (Pulsar broker, pulsar://host:6650) is not set and test-env/.env does not define it"), "{message}");
        assert!(message.contains("make test-env"), "{message}");
    }

    #[test]
    fn a_workload_needs_only_its_own_service() {
        let values: HashMap<String, String> = complete()
            .into_iter()
            .filter(|(name, _)| name.starts_with("WATTCAST_MQTT"))
            .collect();
        let env = ServiceEnv::from_values(values, None);
        assert_eq!(env.mqtt().unwrap().port, 1883);
        assert!(env.postgres_url().is_err());
    }

    #[test]
    fn credentials_are_percent_encoded_into_the_url() {
        assert_eq!(
            with_credentials("postgres://db:5432/lab", "we/b", "p@ss:wörd"),
            "postgres://we%2Fb:p%40ss%3Aw%C3%B6rd@db:5432/lab"
        );
        assert_eq!(with_credentials("no-scheme", "a", "b"), "no-scheme");
    }

    #[test]
    fn a_postgres_url_without_credentials_gets_the_variables() {
        let mut values = complete();
        values.insert(
            "WATTCAST_POSTGRES_URL".to_owned(),
            "postgres://db:5432/lab?sslmode=require".to_owned(),
        );
        values.insert("WATTCAST_POSTGRES_USERNAME".to_owned(), "lab".to_owned());
        values.insert("WATTCAST_POSTGRES_PASSWORD".to_owned(), "a@b:c/d#e%f".to_owned());
        let env = ServiceEnv::from_values(values.clone(), None);
        assert_eq!(
            env.postgres_url().unwrap(),
            "postgres://lab:a%40b%3Ac%2Fd%23e%25f@db:5432/lab?sslmode=require"
        );
        // A URL that has its own credentials keeps them.
        values.insert(
            "WATTCAST_POSTGRES_URL".to_owned(),
            "postgres://own:pw@db/lab".to_owned(),
        );
        let env = ServiceEnv::from_values(values, None);
        assert_eq!(env.postgres_url().unwrap(), "postgres://own:pw@db/lab");
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
        let services = ServiceEnv::load_with(environment, Some(&file))
            .unwrap()
            .all()
            .unwrap();
        assert_eq!(services.pulsar_url, "pulsar://from-env:6650");
        assert_eq!(services.postgres_url, "value-of-WATTCAST_POSTGRES_URL");
        assert_eq!(services.mqtt.port, 1883);
    }
}
