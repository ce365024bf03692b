//! Where each of an experiment's services is and which Secret keys hold its credentials: the
//! managed services' in-cluster addresses or the external endpoints of the spec. Used for the
//! workloads' environment and by the operator itself (reading results, cleaning up).

use super::credentials::{self, COMPONENT as CREDENTIALS};
use super::infrastructure::{DATABASE, MOSQUITTO, POSTGRES, PULSAR, RUSTFS};
use crate::experiment_ref::ExperimentRef;
use wattcast_crds::ExternalService;

/// A key of a Secret in the experiment's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKey {
    /// The Secret's name.
    pub secret: String,
    /// The key.
    pub key: String,
}

/// A service's URL (without credentials) and where its credentials are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Where it listens.
    pub url: String,
    /// The user name (the access key for S3).
    pub user: SecretKey,
    /// The password (the secret key for S3).
    pub password: SecretKey,
    /// Whether the experiment manages it (it goes with the experiment's objects).
    pub managed: bool,
    /// The CA bundle its certificate must chain to, for an external TLS service.
    pub ca: Option<SecretKey>,
}

/// The key of a `caSecret` that holds the PEM CA bundle (cert-manager's name for it).
pub const CA_KEY: &str = "ca.crt";

/// The `ca.crt` key of an external service's `caSecret`.
fn ca_key(service: &ExternalService) -> Option<SecretKey> {
    service.ca_secret.as_ref().map(|secret| SecretKey {
        secret: secret.clone(),
        key: CA_KEY.to_owned(),
    })
}

/// Every service of the experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLocations {
    /// The MQTT broker.
    pub mqtt: Location,
    /// PostgreSQL (the URL names the database).
    pub postgres: Location,
    /// The Pulsar broker (no credentials).
    pub pulsar_url: String,
    /// Pulsar's admin API.
    pub pulsar_admin_url: String,
    /// Whether Pulsar is managed.
    pub pulsar_managed: bool,
    /// The CA bundle Pulsar's certificates must chain to, for an external TLS Pulsar.
    pub pulsar_ca: Option<SecretKey>,
    /// The S3-compatible object store.
    pub object_store: Location,
}

/// How a managed service's host is named: by its Service name within the namespace (for the
/// experiment's pods), or qualified with the namespace (for the operator, which runs elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostNames {
    /// `<experiment>-<service>`.
    Short,
    /// `<experiment>-<service>.<namespace>.svc`.
    Qualified,
}

/// The Pulsar admin URL next to a broker URL (8080, or 8443 for `pulsar+ssl`).
fn admin_url(broker_url: &str) -> String {
    let rest = broker_url.split_once("://").map_or("", |(_, rest)| rest);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    if broker_url.starts_with("pulsar+ssl://") {
        format!("https://{host}:8443")
    } else {
        format!("http://{host}:8080")
    }
}

/// The experiment's service locations.
pub fn locations(experiment: &ExperimentRef, names: HostNames) -> ServiceLocations {
    let infrastructure = &experiment.spec.infrastructure;
    let managed_secret = experiment.object_name(CREDENTIALS);
    let host = |service: &str| match names {
        HostNames::Short => experiment.object_name(service),
        HostNames::Qualified => format!("{}.{}.svc", experiment.object_name(service), experiment.namespace),
    };
    let key = |secret: &str, key: &str| SecretKey {
        secret: secret.to_owned(),
        key: key.to_owned(),
    };
    let external = |service: &ExternalService, user_key: &str, password_key: &str| {
        let secret = service.credentials_secret.as_deref().unwrap_or(&managed_secret);
        Location {
            url: service.url.clone(),
            user: key(secret, user_key),
            password: key(secret, password_key),
            managed: false,
            ca: ca_key(service),
        }
    };
    let managed = |url: String, user_key: &str, password_key: &str| Location {
        url,
        user: key(&managed_secret, user_key),
        password: key(&managed_secret, password_key),
        managed: true,
        ca: None,
    };
    let mqtt = match &infrastructure.mqtt {
        Some(service) => external(service, "username", "password"),
        None => managed(
            format!("mqtt://{}:1883", host(MOSQUITTO)),
            credentials::MQTT_USERNAME,
            credentials::MQTT_PASSWORD,
        ),
    };
    let postgres = match &infrastructure.postgres {
        Some(service) => external(service, "username", "password"),
        None => managed(
            format!("postgres://{}:5432/{DATABASE}", host(POSTGRES)),
            credentials::POSTGRES_USERNAME,
            credentials::POSTGRES_PASSWORD,
        ),
    };
    let (pulsar_url, pulsar_managed, pulsar_ca) = match &infrastructure.pulsar {
        Some(service) => (service.url.clone(), false, ca_key(service)),
        None => (format!("pulsar://{}:6650", host(PULSAR)), true, None),
    };
    let pulsar_admin_url = infrastructure
        .pulsar
        .as_ref()
        .and_then(|service| service.admin_url.clone())
        .unwrap_or_else(|| admin_url(&pulsar_url));
    let object_store = match &infrastructure.object_store {
        Some(service) => external(service, "accessKey", "secretKey"),
        None => managed(
            format!("http://{}:9000", host(RUSTFS)),
            credentials::S3_ACCESS_KEY,
            credentials::S3_SECRET_KEY,
        ),
    };
    ServiceLocations {
        mqtt,
        postgres,
        pulsar_admin_url,
        pulsar_url,
        pulsar_managed,
        pulsar_ca,
        object_store,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattcast_crds::PipelineExperiment;

    fn experiment(yaml: &str) -> ExperimentRef {
        let mut experiment: PipelineExperiment = serde_yaml::from_str(yaml).expect("valid experiment");
        experiment.metadata.namespace = Some("lab".to_owned());
        experiment.metadata.uid = Some("uid".to_owned());
        ExperimentRef::new(&experiment).expect("complete metadata")
    }

    #[test]
    fn managed_services_are_found_by_service_name_and_their_credentials_in_the_generated_secret() {
        let experiment = experiment(
            "metadata: { name: exp1 }\nspec: { architecture: Streaming, devices: { count: 1 }, dataset: { scenario: InOrder } }",
        );
        let short = locations(&experiment, HostNames::Short);
        assert_eq!(short.mqtt.url, "mqtt://exp1-mosquitto:1883");
        assert_eq!(short.postgres.url, "postgres://exp1-postgres:5432/wattcast");
        assert_eq!(short.pulsar_admin_url, "http://exp1-pulsar:8080");
        assert_eq!(
            short.postgres.password,
            SecretKey {
                secret: "exp1-credentials".into(),
                key: "postgres-password".into()
            }
        );
        assert!(short.postgres.managed && short.pulsar_managed && short.object_store.managed);
        let qualified = locations(&experiment, HostNames::Qualified);
        assert_eq!(qualified.object_store.url, "http://exp1-rustfs.lab.svc:9000");
        assert_eq!(qualified.pulsar_url, "pulsar://exp1-pulsar.lab.svc:6650");
    }

    #[test]
    fn an_external_pulsar_may_name_its_admin_api() {
        let experiment = experiment(
            "metadata: { name: exp1 }
spec:
  architecture: Batching
  devices: { count: 1 }
  dataset: { scenario: InOrder }
  infrastructure:
    pulsar: { url: 'pulsar+ssl://broker.example.com:6651', adminUrl: 'https://admin.example.com' }",
        );
        let found = locations(&experiment, HostNames::Short);
        assert_eq!(found.pulsar_admin_url, "https://admin.example.com");
        assert_eq!(found.pulsar_url, "pulsar+ssl://broker.example.com:6651");
    }

    #[test]
    fn external_services_keep_their_url_and_use_their_own_secret() {
        let experiment = experiment(
            "metadata: { name: exp1 }
spec:
  architecture: Batching
  devices: { count: 1 }
  dataset: { scenario: InOrder }
  infrastructure:
    pulsar: { url: 'pulsar+ssl://pulsar.example.com:6651' }
    postgres: { url: 'postgres://db.example.com:5432/lab', credentialsSecret: db }
    objectStore: { url: 'https://s3.example.com', credentialsSecret: s3 }",
        );
        let found = locations(&experiment, HostNames::Qualified);
        assert_eq!(found.pulsar_admin_url, "https://pulsar.example.com:8443");
        assert!(!found.pulsar_managed && !found.postgres.managed && found.mqtt.managed);
        assert_eq!(found.postgres.url, "postgres://db.example.com:5432/lab");
        assert_eq!(
            found.postgres.user,
            SecretKey {
                secret: "db".into(),
                key: "username".into()
            }
        );
        assert_eq!(
            found.object_store.password,
            SecretKey {
                secret: "s3".into(),
                key: "secretKey".into()
            }
        );
    }
}
