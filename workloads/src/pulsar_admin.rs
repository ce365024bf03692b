//! Creating an experiment's Pulsar namespace and topics through the admin REST API.

use crate::topics::{ExperimentNames, PULSAR_TOPICS};

/// Why the Pulsar admin API refused.
#[derive(Debug, thiserror::Error)]
pub enum PulsarAdminError {
    /// The request did not get an answer.
    #[error("Pulsar admin API at {url}: {source}")]
    Request {
        /// The URL requested.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The API answered with an error status.
    #[error("Pulsar admin API: {method} {url} answered {status}: {body}")]
    Status {
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
        /// The body of the answer.
        body: String,
    },
}

/// A client of Pulsar's admin REST API.
#[derive(Debug, Clone)]
pub struct PulsarAdmin {
    base: String,
    http: reqwest::Client,
}

impl PulsarAdmin {
    /// A client for the admin API at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Creates the experiment's namespace and its non-partitioned topics; what exists is kept.
    ///
    /// The windower acknowledges a reading only once its window is published, so it holds about
    /// devices × (window + bound) readings unacknowledged; Pulsar's default of 50,000 unacked
    /// messages per consumer would stop dispatching (a deadlock at ~800 devices). The namespace
    /// therefore lifts the per-consumer and per-subscription limits (0 = none).
    pub async fn create_experiment(&self, names: &ExperimentNames) -> Result<(), PulsarAdminError> {
        let namespace = names.pulsar_namespace();
        self.put(&format!("/admin/v2/namespaces/{namespace}")).await?;
        for policy in [
            "maxUnackedMessagesPerConsumer",
            "maxUnackedMessagesPerSubscription",
        ] {
            self.post_json(&format!("/admin/v2/namespaces/{namespace}/{policy}"), "0")
                .await?;
        }
        for topic in PULSAR_TOPICS {
            self.put(&format!("/admin/v2/persistent/{namespace}/{topic}"))
                .await?;
        }
        Ok(())
    }

    /// Deletes the experiment's topics (closing their producers and consumers) and then its
    /// namespace; nothing to delete is fine. Brokers refuse forced namespace deletion by
    /// default, so topics go one by one.
    pub async fn delete_experiment(&self, names: &ExperimentNames) -> Result<(), PulsarAdminError> {
        let namespace = names.pulsar_namespace();
        let Some(topics) = self
            .get_json::<Vec<String>>(&format!("/admin/v2/namespaces/{namespace}/topics"))
            .await?
        else {
            return Ok(());
        };
        for topic in topics {
            let path = topic.replacen("://", "/", 1);
            self.delete(&format!("/admin/v2/{path}?force=true")).await?;
        }
        self.delete(&format!("/admin/v2/namespaces/{namespace}")).await
    }

    /// GET returning JSON; `None` when the resource does not exist.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, PulsarAdminError> {
        let url = format!("{}{path}", self.base);
        let request_error = |source| PulsarAdminError::Request {
            url: url.clone(),
            source,
        };
        let response = self.http.get(&url).send().await.map_err(request_error)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(PulsarAdminError::Status {
                method: "GET",
                url: url.clone(),
                status,
                body: response.text().await.unwrap_or_default(),
            });
        }
        response.json().await.map(Some).map_err(request_error)
    }

    /// DELETE; 404 (already gone) counts as success.
    async fn delete(&self, path: &str) -> Result<(), PulsarAdminError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .delete(&url)
            .send()
            .await
            .map_err(|source| PulsarAdminError::Request {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(PulsarAdminError::Status {
            method: "DELETE",
            url,
            status,
            body: response.text().await.unwrap_or_default(),
        })
    }

    /// POST with a JSON body.
    async fn post_json(&self, path: &str, body: &'static str) -> Result<(), PulsarAdminError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|source| PulsarAdminError::Request {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(PulsarAdminError::Status {
            method: "POST",
            url,
            status,
            body: response.text().await.unwrap_or_default(),
        })
    }

    /// PUT with no body; 409 (already exists) counts as success.
    async fn put(&self, path: &str) -> Result<(), PulsarAdminError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .put(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .send()
            .await
            .map_err(|source| PulsarAdminError::Request {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_success() || status == reqwest::StatusCode::CONFLICT {
            return Ok(());
        }
        Err(PulsarAdminError::Status {
            method: "PUT",
            url,
            status,
            body: response.text().await.unwrap_or_default(),
        })
    }
}
