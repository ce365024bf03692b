//! The S3-compatible object store (RustFS in the cluster, s3s-fs in the test env): the bucket
//! holding every experiment's models, with put/get/delete and model upload/download.

use crate::services::S3Endpoint;
use crate::tls::CaBundle;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use wattcast_core::artifacts::{self, METRICS_FILE, MODEL_FILE, ModelArtifacts, SCALER_FILE};

/// The bucket used when none is configured.
pub const DEFAULT_BUCKET: &str = "wattcast-models";

/// Why an object-store request failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreError {
    /// The object does not exist.
    #[error("s3://{bucket}/{key} does not exist")]
    NotFound {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// The request failed (unreachable, refused, server error).
    #[error("s3://{bucket}/{key}: {message}")]
    Request {
        /// The bucket.
        bucket: String,
        /// The key (empty for bucket requests).
        key: String,
        /// The SDK's error with its causes.
        message: String,
    },
    /// An object exists but its content is unusable.
    #[error(transparent)]
    Artifact(#[from] artifacts::ArtifactError),
}

/// A client for one bucket.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// An error with its causes, `outer: inner: innermost` (SDK and HTTP errors say what went
/// wrong, e.g. a certificate refused, only in their causes).
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// An HTTPS client whose only roots are `ca`.
fn https_client_trusting(ca: &CaBundle) -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let trust = TrustStore::empty().with_pem_certificate(ca.pem());
    let context = TlsContext::builder().with_trust_store(trust).build().unwrap_or_else(|error| {
        // Cannot happen (the builder only stores the bundle, parsed already); the default context
        // trusts only the platform's roots, so a failure here refuses the server, never trusts it.
        tracing::error!(%error, "building the S3 client's TLS context failed; using the platform's roots");
        TlsContext::default()
    });
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

impl ObjectStore {
    /// A client for `bucket` at `endpoint` (path-style requests, static credentials). Over
    /// `https://` the certificate must chain to the endpoint's CA bundle, or without one to the
    /// platform's roots (the SDK's default).
    pub fn new(endpoint: &S3Endpoint, bucket: &str) -> Self {
        let mut config = aws_sdk_s3::Config::builder();
        if let Some(ca) = &endpoint.ca {
            config = config.http_client(https_client_trusting(ca));
        }
        let config = config
            .endpoint_url(&endpoint.endpoint)
            .region(Region::new(endpoint.region.clone()))
            .credentials_provider(Credentials::new(
                endpoint.access_key.clone(),
                endpoint.secret_key.clone(),
                None,
                None,
                "wattcast",
            ))
            .force_path_style(true)
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: bucket.to_owned(),
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn request_error(&self, key: &str, error: &(dyn std::error::Error + 'static)) -> ObjectStoreError {
        ObjectStoreError::Request {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            message: describe(error),
        }
    }

    /// Creates the bucket unless it exists.
    pub async fn ensure_bucket(&self) -> Result<(), ObjectStoreError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self.client.create_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(error) => {
                let exists = error
                    .as_service_error()
                    .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists());
                if exists {
                    Ok(())
                } else {
                    Err(self.request_error("", &error))
                }
            }
        }
    }

    /// Stores `bytes` under `key`.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ObjectStoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|error| self.request_error(key, &error))?;
        Ok(())
    }

    /// The bytes under `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectStoreError> {
        let object = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(object) => object,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Err(ObjectStoreError::NotFound {
                    bucket: self.bucket.clone(),
                    key: key.to_owned(),
                });
            }
            Err(error) => return Err(self.request_error(key, &error)),
        };
        let body = object
            .body
            .collect()
            .await
            .map_err(|error| self.request_error(key, &error))?;
        Ok(body.into_bytes().to_vec())
    }

    /// Deletes every object whose key starts with `prefix`; returns how many.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, ObjectStoreError> {
        let mut deleted = 0;
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| self.request_error(prefix, &error))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    self.client
                        .delete_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .send()
                        .await
                        .map_err(|error| self.request_error(key, &error))?;
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }

    /// Uploads a model's files under `prefix` (ending in `/`); the model goes last, so a reader
    /// that finds it finds the scaler too.
    pub async fn upload_model(&self, prefix: &str, model: &ModelArtifacts) -> Result<(), ObjectStoreError> {
        self.put(&format!("{prefix}{SCALER_FILE}"), model.scaler_json())
            .await?;
        if let Some(metrics) = &model.metrics {
            let bytes = serde_json::to_vec_pretty(metrics).unwrap_or_default();
            self.put(&format!("{prefix}{METRICS_FILE}"), bytes).await?;
        }
        self.put(&format!("{prefix}{MODEL_FILE}"), model.onnx.clone())
            .await
    }

    /// Downloads the model and scaler under `prefix` (metrics are not needed to forecast).
    pub async fn download_model(&self, prefix: &str) -> Result<ModelArtifacts, ObjectStoreError> {
        let scaler_key = format!("{prefix}{SCALER_FILE}");
        let scaler = artifacts::parse(
            &format!("s3://{}/{scaler_key}", self.bucket),
            &self.get(&scaler_key).await?,
        )?;
        let onnx = self.get(&format!("{prefix}{MODEL_FILE}")).await?;
        Ok(ModelArtifacts {
            onnx,
            scaler,
            metrics: None,
        })
    }
}
