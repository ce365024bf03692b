//! The operator's own connections to an experiment's services: the locations of
//! [`crate::resources::locations`] with the credentials read from their Secrets.

use crate::experiment_ref::ExperimentRef;
use crate::resources::locations::{HostNames, Location, SecretKey, locations};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use wattcast_io::services::{PostgresEndpoint, PulsarEndpoint, S3Endpoint, with_credentials};
use wattcast_io::tls::{CaBundle, TlsError};

/// Why the endpoints could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum EndpointsError {
    /// The Secret could not be read.
    #[error("reading Secret {namespace}/{secret}: {source}")]
    Secret {
        /// Its namespace.
        namespace: String,
        /// Its name.
        secret: String,
        /// The API error.
        source: kube::Error,
    },
    /// The Secret lacks a key.
    #[error("Secret {namespace}/{secret} has no key `{key}`")]
    MissingKey {
        /// Its namespace.
        namespace: String,
        /// Its name.
        secret: String,
        /// The key.
        key: String,
    },
    /// A `caSecret`'s `ca.crt` is no PEM CA bundle.
    #[error(transparent)]
    CaBundle(#[from] TlsError),
}

/// How the operator reaches the experiment's services.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// PostgreSQL, with credentials in the URL.
    pub postgres: PostgresEndpoint,
    /// Whether PostgreSQL is managed by the experiment.
    pub postgres_managed: bool,
    /// Pulsar (the operator uses its admin API).
    pub pulsar: PulsarEndpoint,
    /// Whether Pulsar is managed by the experiment.
    pub pulsar_managed: bool,
    /// The object store, with credentials.
    pub object_store: S3Endpoint,
    /// Whether the object store is managed by the experiment.
    pub object_store_managed: bool,
}

/// Reads Secret keys of one namespace.
struct Secrets {
    api: Api<Secret>,
    namespace: String,
}

impl Secrets {
    async fn value(&self, key: &SecretKey) -> Result<String, EndpointsError> {
        self.bytes(key)
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn bytes(&self, key: &SecretKey) -> Result<Vec<u8>, EndpointsError> {
        let secret = self
            .api
            .get(&key.secret)
            .await
            .map_err(|source| EndpointsError::Secret {
                namespace: self.namespace.clone(),
                secret: key.secret.clone(),
                source,
            })?;
        let from_data = secret
            .data
            .as_ref()
            .and_then(|data| data.get(&key.key))
            .map(|bytes| bytes.0.clone());
        let from_string_data = secret
            .string_data
            .as_ref()
            .and_then(|data| data.get(&key.key))
            .map(|text| text.as_bytes().to_vec());
        from_data
            .or(from_string_data)
            .ok_or_else(|| EndpointsError::MissingKey {
                namespace: self.namespace.clone(),
                secret: key.secret.clone(),
                key: key.key.clone(),
            })
    }

    /// The CA bundle a `caSecret` holds, if the service has one.
    async fn ca(&self, key: Option<&SecretKey>) -> Result<Option<CaBundle>, EndpointsError> {
        let Some(key) = key else { return Ok(None) };
        let pem = self.bytes(key).await?;
        let source = format!("Secret {}/{} key {}", self.namespace, key.secret, key.key);
        Ok(Some(CaBundle::from_pem(&pem, &source)?))
    }

    async fn credentials(&self, location: &Location) -> Result<(String, String), EndpointsError> {
        Ok((
            self.value(&location.user).await?,
            self.value(&location.password).await?,
        ))
    }
}

/// Resolves the experiment's endpoints, reading the credentials from their Secrets.
pub async fn resolve(client: &Client, experiment: &ExperimentRef) -> Result<Endpoints, EndpointsError> {
    let found = locations(experiment, HostNames::Qualified);
    let secrets = Secrets {
        api: Api::namespaced(client.clone(), &experiment.namespace),
        namespace: experiment.namespace.clone(),
    };
    let (user, password) = secrets.credentials(&found.postgres).await?;
    let (access_key, secret_key) = secrets.credentials(&found.object_store).await?;
    Ok(Endpoints {
        postgres: PostgresEndpoint {
            url: with_credentials(&found.postgres.url, &user, &password),
            ca: secrets.ca(found.postgres.ca.as_ref()).await?,
        },
        postgres_managed: found.postgres.managed,
        pulsar: PulsarEndpoint {
            ca: secrets.ca(found.pulsar_ca.as_ref()).await?,
            url: found.pulsar_url,
            admin_url: found.pulsar_admin_url,
        },
        pulsar_managed: found.pulsar_managed,
        object_store: S3Endpoint {
            ca: secrets.ca(found.object_store.ca.as_ref()).await?,
            endpoint: found.object_store.url,
            access_key,
            secret_key,
            region: "us-east-1".to_owned(),
        },
        object_store_managed: found.object_store.managed,
    })
}
