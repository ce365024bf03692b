//! Where the pipeline's services are: MQTT, PostgreSQL, Pulsar and S3 endpoints with credentials,
//! read from environment variables, falling back to the `.env` file `test-env/up` writes.

use crate::tls::{CaBundle, TlsError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The variables, and what each one holds.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "WATTCAST_MQTT_URL",
        "MQTT broker, mqtt://host:port or mqtts://host:port (TLS)",
    ),
    ("WATTCAST_MQTT_USERNAME", "MQTT user"),
    ("WATTCAST_MQTT_PASSWORD", "MQTT password"),
    (
        "WATTCAST_MQTT_CA_FILE",
        "PEM CA bundle the MQTT broker's certificate must chain to (mqtts:// only; default: the public roots)",
    ),
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
    (
        "WATTCAST_POSTGRES_CA_FILE",
        "PEM CA bundle PostgreSQL's certificate must chain to (with sslmode=verify-ca|verify-full; default: the public roots)",
    ),
    (
        "WATTCAST_PULSAR_URL",
        "Pulsar broker, pulsar://host:6650 or pulsar+ssl://host:6651 (TLS)",
    ),
    (
        "WATTCAST_PULSAR_ADMIN_URL",
        "Pulsar admin API, http://host:8080 or https://host:8443",
    ),
    (
        "WATTCAST_PULSAR_CA_FILE",
        "PEM CA bundle Pulsar's broker and admin certificates must chain to (TLS URLs only; default: the public roots)",
    ),
    (
        "WATTCAST_S3_ENDPOINT",
        "S3-compatible object store, http://host:9000 or https://…",
    ),
    (
        "WATTCAST_S3_CA_FILE",
        "PEM CA bundle the object store's certificate must chain to (https:// only; default: the public roots)",
    ),
    ("WATTCAST_S3_ACCESS_KEY", "S3 access key"),
    ("WATTCAST_S3_SECRET_KEY", "S3 secret key"),
    ("WATTCAST_S3_REGION", "S3 region (any name for s3s-fs and RustFS)"),
];

/// An MQTT broker and the credentials to use it.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttEndpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Plain TCP (`mqtt://`) or TLS (`mqtts://`).
    pub transport: Transport,
}

/// Whether a connection is encrypted, and what the server's certificate is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP.
    Plain,
    /// TLS, the server's certificate checked against `ca` (the public roots when `None`) and
    /// its host name.
    Tls {
        /// The CA bundle of the service.
        ca: Option<CaBundle>,
    },
}

/// PostgreSQL: the connection URL (its `sslmode` decides TLS) and the CA its certificate must
/// chain to.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresEndpoint {
    /// `postgres://user:password@host:port/database?sslmode=…`.
    pub url: String,
    /// The CA bundle for `sslmode=verify-ca|verify-full` (the public roots when `None`).
    pub ca: Option<CaBundle>,
}

impl PostgresEndpoint {
    /// A URL with no CA of its own.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca: None,
        }
    }
}

/// Pulsar: the broker (`pulsar://` or `pulsar+ssl://`), its admin API and the CA both
/// certificates must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulsarEndpoint {
    /// Broker URL.
    pub url: String,
    /// Admin (HTTP) URL.
    pub admin_url: String,
    /// The CA bundle for TLS URLs (the public roots when `None`).
    pub ca: Option<CaBundle>,
}

impl PulsarEndpoint {
    /// Plain endpoints with no CA of their own.
    pub fn new(url: impl Into<String>, admin_url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            admin_url: admin_url.into(),
            ca: None,
        }
    }
}

/// An S3-compatible object store and its keys.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Endpoint {
    /// Endpoint URL (path-style requests are used).
    pub endpoint: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Region name.
    pub region: String,
    /// The CA bundle for an `https://` endpoint (the public roots when `None`).
    pub ca: Option<CaBundle>,
}

/// What `Debug` shows instead of a secret: endpoints end up in logs and panics.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for MqttEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttEndpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &REDACTED)
            .field("transport", &self.transport)
            .finish()
    }
}

impl std::fmt::Debug for PostgresEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresEndpoint")
            .field("url", &redact_password(&self.url))
            .field("ca", &self.ca)
            .finish()
    }
}

impl std::fmt::Debug for S3Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Endpoint")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("secret_key", &REDACTED)
            .field("region", &self.region)
            .field("ca", &self.ca)
            .finish()
    }
}

/// `scheme://user:<redacted>@rest` from `scheme://user:password@rest`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:{REDACTED}@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

/// Every service the pipeline talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Services {
    /// The MQTT broker (Mosquitto).
    pub mqtt: MqttEndpoint,
    /// PostgreSQL.
    pub postgres: PostgresEndpoint,
    /// Pulsar's broker and admin API.
    pub pulsar: PulsarEndpoint,
    /// The object store.
    pub s3: S3Endpoint,
}

/// Why the services could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    /// A variable is neither in the environment nor in the `.env` file.
    #[error("{name} ({what}) is not set{}; start the test services with `make test-env` (or set the WATTCAST_* variables, see docs/contributing/testing.md)", .env_file.as_ref().map(|p| format!(" and {} does not define it", p.display())).unwrap_or_default())]
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
    /// A CA bundle variable names an unusable file.
    #[error("{name}: {source}")]
    CaBundle {
        /// The variable.
        name: &'static str,
        /// What is wrong with the file.
        source: TlsError,
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
#[derive(Clone)]
pub struct ServiceEnv {
    values: HashMap<String, String>,
    env_file: Option<PathBuf>,
}

impl std::fmt::Debug for ServiceEnv {
    /// The variables' names only: their values include passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.values.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("ServiceEnv")
            .field("variables", &names)
            .field("env_file", &self.env_file)
            .finish()
    }
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

    /// A variable holding a URL with one of `schemes`; `expected` shows the forms in the error.
    fn get_url(&self, name: &'static str, schemes: &[&str], expected: &str) -> Result<String, ServicesError> {
        let url = self.get(name)?;
        if schemes.iter().any(|scheme| url.starts_with(scheme)) {
            Ok(url)
        } else {
            Err(ServicesError::Invalid {
                name,
                value: url,
                problem: format!("expected {expected}"),
            })
        }
    }

    /// The MQTT broker.
    pub fn mqtt(&self) -> Result<MqttEndpoint, ServicesError> {
        let url = self.get("WATTCAST_MQTT_URL")?;
        let (host, port, tls) = parse_mqtt_url(&url).ok_or_else(|| ServicesError::Invalid {
            name: "WATTCAST_MQTT_URL",
            value: url.clone(),
            problem: "expected mqtt://host:port or mqtts://host:port".to_owned(),
        })?;
        let ca = self.ca_bundle("WATTCAST_MQTT_CA_FILE", ("WATTCAST_MQTT_URL", &url), tls)?;
        Ok(MqttEndpoint {
            host,
            port,
            username: self.get("WATTCAST_MQTT_USERNAME")?,
            password: self.get("WATTCAST_MQTT_PASSWORD")?,
            transport: if tls {
                Transport::Tls { ca }
            } else {
                Transport::Plain
            },
        })
    }

    /// The CA bundle a `*_CA_FILE` variable names, if set; refused for a plain `url` (a CA
    /// there would be ignored, so it is a mistake to say so early).
    fn ca_bundle(
        &self,
        name: &'static str,
        (url_name, url): (&'static str, &str),
        tls: bool,
    ) -> Result<Option<CaBundle>, ServicesError> {
        let Some(path) = self.values.get(name).filter(|value| !value.is_empty()) else {
            return Ok(None);
        };
        if !tls {
            return Err(ServicesError::Invalid {
                name,
                value: path.clone(),
                problem: format!(
                    "a CA bundle is only used over TLS, and {url_name} = `{url}` is not a TLS URL"
                ),
            });
        }
        CaBundle::from_file(Path::new(path))
            .map(Some)
            .map_err(|source| ServicesError::CaBundle { name, source })
    }

    /// The PostgreSQL URL; a URL without credentials gets `WATTCAST_POSTGRES_USERNAME` and
    /// `WATTCAST_POSTGRES_PASSWORD`, percent-encoded, when they are set (how pods get theirs:
    /// a password may hold any character).
    pub fn postgres(&self) -> Result<PostgresEndpoint, ServicesError> {
        let url = self.postgres_url()?;
        let tls = postgres_uses_tls(&url);
        let ca = self.ca_bundle("WATTCAST_POSTGRES_CA_FILE", ("WATTCAST_POSTGRES_URL", &url), tls)?;
        Ok(PostgresEndpoint { url, ca })
    }

    fn postgres_url(&self) -> Result<String, ServicesError> {
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

    /// The Pulsar broker and admin API.
    pub fn pulsar(&self) -> Result<PulsarEndpoint, ServicesError> {
        let url = self.get_url(
            "WATTCAST_PULSAR_URL",
            &["pulsar://", "pulsar+ssl://"],
            "pulsar://host:6650 or pulsar+ssl://host:6651",
        )?;
        let admin_url = self.get_url(
            "WATTCAST_PULSAR_ADMIN_URL",
            &["http://", "https://"],
            "http://host:8080 or https://host:8443",
        )?;
        let tls = url.starts_with("pulsar+ssl://") || admin_url.starts_with("https://");
        let ca = self.ca_bundle("WATTCAST_PULSAR_CA_FILE", ("WATTCAST_PULSAR_URL", &url), tls)?;
        Ok(PulsarEndpoint { url, admin_url, ca })
    }

    /// The object store.
    pub fn s3(&self) -> Result<S3Endpoint, ServicesError> {
        let endpoint = self.get_url(
            "WATTCAST_S3_ENDPOINT",
            &["http://", "https://"],
            "http://host:9000 or https://host",
        )?;
        let ca = self.ca_bundle(
            "WATTCAST_S3_CA_FILE",
            ("WATTCAST_S3_ENDPOINT", &endpoint),
            endpoint.starts_with("https://"),
        )?;
        Ok(S3Endpoint {
            ca,
            endpoint,
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
            postgres: self.postgres()?,
            pulsar: self.pulsar()?,
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

/// `mqtt://host:port` or `mqtts://host:port` (port 1883 or 8883 when left out), and whether
/// it is TLS.
pub fn parse_mqtt_url(url: &str) -> Option<(String, u16, bool)> {
    let (rest, tls, default_port) = match url.strip_prefix("mqtts://") {
        Some(rest) => (rest, true, 8883),
        None => (url.strip_prefix("mqtt://")?, false, 1883),
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains(['/', '@']) {
        return None;
    }
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => {
            Some((host.to_owned(), port.parse().ok().filter(|p| *p > 0)?, tls))
        }
        Some(_) => None,
        None if !rest.is_empty() => Some((rest.to_owned(), default_port, tls)),
        None => None,
    }
}

/// Whether a PostgreSQL URL's `sslmode` makes the client use TLS: `require`, `verify-ca` and
/// `verify-full` do; `prefer` (the default) may, without checking the certificate.
pub fn postgres_uses_tls(url: &str) -> bool {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    query.split('&').any(|pair| {
        matches!(
            pair.split_once('='),
            Some(("sslmode", "require" | "verify-ca" | "verify-full"))
        )
    })
}

/// Which CA a client is given for the test env's TLS listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestEnvCa {
    /// The CA that signed the test env's server certificate.
    Signer,
    /// A CA that signed nothing: every client must refuse the servers.
    Other,
}

/// The test env's services at their TLS addresses (the `WATTCAST_TEST_*_TLS_*` lines
/// `test-env/up` writes into `env_file`), each with `ca` as its CA bundle file: read through
/// the same variables a pod gets.
pub fn test_env_over_tls(env_file: &Path, ca: TestEnvCa) -> Result<Services, ServicesError> {
    let mut env = ServiceEnv::load(Some(env_file))?;
    let file_values: HashMap<String, String> = dotenvy::from_path_iter(env_file)
        .and_then(|entries| entries.collect())
        .map_err(|source| ServicesError::EnvFile {
            path: env_file.to_owned(),
            source,
        })?;
    let test_variable = |name: &'static str| {
        std::env::var(name)
            .ok()
            .or_else(|| file_values.get(name).cloned())
            .ok_or_else(|| ServicesError::Missing {
                name,
                what: "the test env's TLS listeners; it predates them: run `make test-env` again",
                env_file: Some(env_file.to_owned()),
            })
    };
    let ca_file = test_variable(match ca {
        TestEnvCa::Signer => "WATTCAST_TEST_TLS_CA_FILE",
        TestEnvCa::Other => "WATTCAST_TEST_TLS_OTHER_CA_FILE",
    })?;
    for (to, from) in [
        ("WATTCAST_MQTT_URL", "WATTCAST_TEST_MQTT_TLS_URL"),
        ("WATTCAST_POSTGRES_URL", "WATTCAST_TEST_POSTGRES_TLS_URL"),
        ("WATTCAST_PULSAR_URL", "WATTCAST_TEST_PULSAR_TLS_URL"),
        ("WATTCAST_PULSAR_ADMIN_URL", "WATTCAST_TEST_PULSAR_ADMIN_TLS_URL"),
        ("WATTCAST_S3_ENDPOINT", "WATTCAST_TEST_S3_TLS_ENDPOINT"),
    ] {
        env.values.insert(to.to_owned(), test_variable(from)?);
    }
    for service in ["MQTT", "POSTGRES", "PULSAR", "S3"] {
        env.values
            .insert(format!("WATTCAST_{service}_CA_FILE"), ca_file.clone());
    }
    env.all()
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
                    "WATTCAST_POSTGRES_URL" => "postgres://u:p@db/lab".to_owned(),
                    "WATTCAST_PULSAR_URL" => "pulsar://broker:6650".to_owned(),
                    "WATTCAST_PULSAR_ADMIN_URL" => "http://broker:8080".to_owned(),
                    "WATTCAST_S3_ENDPOINT" => "http://s3:9000".to_owned(),
                    // No CA bundles: the plain URLs above refuse them.
                    name if name.ends_with("_CA_FILE") => String::new(),
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
    fn debug_output_names_the_variables_and_shows_no_value() {
        let shown = format!("{:?}", ServiceEnv::from_values(complete(), None));
        assert!(shown.contains("WATTCAST_POSTGRES_PASSWORD"), "{shown}");
        assert!(!shown.contains("value-of-"), "{shown}");
    }

    #[test]
    fn a_missing_variable_says_how_to_start_the_services() {
        let mut values = complete();
        values.remove("WATTCAST_PULSAR_URL");
        let message = ServiceEnv::from_values(values, Some(PathBuf::from("test-env/.env")))
            .all()
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("WATTCAST_PULSAR_URL (Pulsar broker, pulsar://host:6650 or pulsar+ssl://host:6651 (TLS)) is not set and test-env/.env does not define it"), "{message}");
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
        assert!(env.postgres().is_err());
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
            Some(("broker".to_owned(), 1884, false))
        );
        assert_eq!(
            parse_mqtt_url("mqtt://broker"),
            Some(("broker".to_owned(), 1883, false))
        );
        assert_eq!(
            parse_mqtt_url("mqtts://broker"),
            Some(("broker".to_owned(), 8883, true))
        );
        assert_eq!(
            parse_mqtt_url("mqtts://broker:9883/"),
            Some(("broker".to_owned(), 9883, true))
        );
        assert_eq!(parse_mqtt_url("mqtt://broker:0"), None);
        assert_eq!(parse_mqtt_url("mqtt://user@broker:1883"), None);
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
        assert_eq!(services.pulsar.url, "pulsar://from-env:6650");
        assert_eq!(services.postgres.url, "postgres://u:p@db/lab");
        assert_eq!(services.mqtt.port, 1883);
    }

    #[test]
    fn tls_urls_take_a_ca_bundle_and_plain_ones_refuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, crate::tls::tests::CERTIFICATE).unwrap();
        let ca_path = ca_file.display().to_string();
        let mut values = complete();
        for (name, url) in [
            ("WATTCAST_MQTT_URL", "mqtts://broker"),
            (
                "WATTCAST_POSTGRES_URL",
                "postgres://u:p@db/lab?sslmode=verify-full",
            ),
            ("WATTCAST_PULSAR_URL", "pulsar+ssl://broker:6651"),
            ("WATTCAST_PULSAR_ADMIN_URL", "https://broker:8443"),
            ("WATTCAST_S3_ENDPOINT", "https://s3.example.com"),
        ] {
            values.insert(name.to_owned(), url.to_owned());
        }
        for name in ["MQTT", "POSTGRES", "PULSAR", "S3"] {
            values.insert(format!("WATTCAST_{name}_CA_FILE"), ca_path.clone());
        }
        let services = ServiceEnv::from_values(values.clone(), None).all().unwrap();
        let ca = crate::tls::CaBundle::from_file(&ca_file).unwrap();
        assert_eq!(services.mqtt.transport, Transport::Tls { ca: Some(ca.clone()) });
        assert_eq!(services.mqtt.port, 8883);
        assert_eq!(services.postgres.ca.as_ref(), Some(&ca));
        assert_eq!(services.pulsar.ca.as_ref(), Some(&ca));
        assert_eq!(services.s3.ca.as_ref(), Some(&ca));

        values.insert(
            "WATTCAST_POSTGRES_URL".to_owned(),
            "postgres://u:p@db/lab".to_owned(),
        );
        let message = ServiceEnv::from_values(values.clone(), None)
            .postgres()
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            format!(
                "WATTCAST_POSTGRES_CA_FILE = `{ca_path}`: a CA bundle is only used over TLS, and WATTCAST_POSTGRES_URL = `postgres://u:p@db/lab` is not a TLS URL"
            )
        );
        values.insert("WATTCAST_S3_CA_FILE".to_owned(), "/nonexistent/ca.crt".to_owned());
        let message = ServiceEnv::from_values(values, None)
            .s3()
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("WATTCAST_S3_CA_FILE: CA bundle /nonexistent/ca.crt: "),
            "{message}"
        );
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let mut values = complete();
        values.insert("WATTCAST_MQTT_PASSWORD".to_owned(), "mqtt-secret".to_owned());
        values.insert("WATTCAST_S3_SECRET_KEY".to_owned(), "s3-secret".to_owned());
        values.insert(
            "WATTCAST_POSTGRES_URL".to_owned(),
            "postgres://lab:pg-secret@db:5432/lab?sslmode=require".to_owned(),
        );
        let services = ServiceEnv::from_values(values, None).all().unwrap();
        let shown = format!("{services:?}");
        for secret in ["mqtt-secret", "s3-secret", "pg-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("postgres://lab:<redacted>@db:5432/lab?sslmode=require"),
            "{shown}"
        );
        assert_eq!(redact_password("postgres://db/lab"), "postgres://db/lab");
        assert_eq!(
            redact_password("postgres://only-user@db/lab"),
            "postgres://only-user:<redacted>@db/lab"
        );
    }

    #[test]
    fn postgres_tls_follows_sslmode() {
        assert!(postgres_uses_tls("postgres://db/lab?sslmode=require"));
        assert!(postgres_uses_tls(
            "postgres://db/lab?application_name=x&sslmode=verify-full"
        ));
        assert!(!postgres_uses_tls("postgres://db/lab?sslmode=prefer"));
        assert!(!postgres_uses_tls("postgres://db/lab"));
    }
}
