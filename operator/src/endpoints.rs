//! The operator's own connections to an experiment's services: the locations of
//! [`crate::resources::locations`] with the credentials read from their Secrets.

use crate::experiment_ref::ExperimentRef;
use crate::resources::locations::{HostNames, Location, SecretKey, locations};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use wattcast::services::{S3Endpoint, with_credentials};

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
}

/// How the operator reaches the experiment's services.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// PostgreSQL, with credentials.
    pub postgres_url: String,
    /// Whether PostgreSQL is managed by the experiment.
    pub postgres_managed: bool,
    /// Pulsar's admin API.
    pub pulsar_admin_url: String,
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
            .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned());
        let from_string_data = secret
            .string_data
            .as_ref()
            .and_then(|data| data.get(&key.key))
            .cloned();
        from_data
            .or(from_string_data)
            .ok_or_else(|| EndpointsError::MissingKey {
                namespace: self.namespace.clone(),
                secret: key.secret.clone(),
                key: key.key.clone(),
            })
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
        postgres_url: with_credentials(&found.postgres.url, &user, &password),
        postgres_managed: found.postgres.managed,
        pulsar_admin_url: found.pulsar_admin_url,
        pulsar_managed: found.pulsar_managed,
        object_store: S3Endpoint {
            endpoint: found.object_store.url,
            access_key,
            secret_key,
            region: "us-east-1".to_owned(),
        },
        object_store_managed: found.object_store.managed,
    })
}
