//! Creating an experiment's Pulsar namespace and topics through the admin REST API.

use crate::services::PulsarEndpoint;
use reqwest::{Method, StatusCode};
use wattcast_core::topics::{ExperimentNames, Topic};

/// Why the Pulsar admin API refused.
#[derive(Debug, thiserror::Error)]
pub enum PulsarAdminError {
    /// The HTTP client could not be built (its TLS configuration).
    #[error("Pulsar admin client for {url}: {source}")]
    Client {
        /// The admin URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The request did not get an answer.
    #[error("Pulsar admin API at {url}: {}", crate::object_store::describe(source))]
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
        method: String,
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
    /// A client for the endpoint's admin API (e.g. `http://127.0.0.1:8080`); over `https://`
    /// the certificate must chain to the endpoint's CA bundle (or the public roots).
    pub fn new(pulsar: &PulsarEndpoint) -> Result<Self, PulsarAdminError> {
        let base = pulsar.admin_url.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(crate::tls::client_config(pulsar.ca.as_ref()))
            .build()
            .map_err(|source| PulsarAdminError::Client {
                url: base.clone(),
                source,
            })?;
        Ok(Self { base, http })
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
        for topic in Topic::ALL {
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
        let listing = self
            .call(
                Method::GET,
                &format!("/admin/v2/namespaces/{namespace}/topics"),
                None,
                &[StatusCode::NOT_FOUND],
            )
            .await?;
        let Some(response) = listing else {
            return Ok(());
        };
        let url = response.url().to_string();
        let topics: Vec<String> = response
            .json()
            .await
            .map_err(|source| PulsarAdminError::Request { url, source })?;
        for topic in topics {
            let path = topic.replacen("://", "/", 1);
            self.call(
                Method::DELETE,
                &format!("/admin/v2/{path}?force=true"),
                None,
                &[StatusCode::NOT_FOUND],
            )
            .await?;
        }
        self.call(
            Method::DELETE,
            &format!("/admin/v2/namespaces/{namespace}"),
            None,
            &[StatusCode::NOT_FOUND],
        )
        .await?;
        Ok(())
    }

    /// Each topic's backlog: the messages its subscriptions have not acknowledged yet, summed
    /// over its subscriptions (a topic nobody subscribes to has none).
    pub async fn backlog(
        &self,
        names: &ExperimentNames,
    ) -> Result<std::collections::BTreeMap<&'static str, u64>, PulsarAdminError> {
        let namespace = names.pulsar_namespace();
        let mut backlog = std::collections::BTreeMap::new();
        for topic in Topic::ALL {
            let path = format!("/admin/v2/persistent/{namespace}/{topic}/stats");
            let Some(response) = self.call(Method::GET, &path, None, &[]).await? else {
                continue;
            };
            let url = response.url().to_string();
            let stats: TopicStats = response
                .json()
                .await
                .map_err(|source| PulsarAdminError::Request { url, source })?;
            backlog.insert(
                topic.name(),
                stats.subscriptions.values().map(|s| s.msg_backlog).sum(),
            );
        }
        Ok(backlog)
    }

    /// PUT with no body; 409 (already exists) counts as success.
    async fn put(&self, path: &str) -> Result<(), PulsarAdminError> {
        self.call(Method::PUT, path, None, &[StatusCode::CONFLICT])
            .await
            .map(drop)
    }

    /// POST with a JSON body.
    async fn post_json(&self, path: &str, body: &'static str) -> Result<(), PulsarAdminError> {
        self.call(Method::POST, path, Some(body), &[]).await.map(drop)
    }

    /// Sends a request. A success status gives the response; a status in `tolerated` gives
    /// `None`; any other status is an error carrying the answer's body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&'static str>,
        tolerated: &[StatusCode],
    ) -> Result<Option<reqwest::Response>, PulsarAdminError> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|source| PulsarAdminError::Request {
            url: url.clone(),
            source,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(Some(response));
        }
        if tolerated.contains(&status) {
            return Ok(None);
        }
        Err(PulsarAdminError::Status {
            method: method.to_string(),
            url,
            status,
            body: response.text().await.unwrap_or_default(),
        })
    }
}

/// The part of a topic's stats (`GET …/stats`) the backlog needs.
#[derive(Debug, serde::Deserialize)]
struct TopicStats {
    #[serde(default)]
    subscriptions: std::collections::HashMap<String, SubscriptionStats>,
}

/// One subscription's stats.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionStats {
    #[serde(default)]
    msg_backlog: u64,
}
