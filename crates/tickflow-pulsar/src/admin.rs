//! A small client for Pulsar's admin REST API (v2): what provisioning and tests need.
//!
//! Creation calls are idempotent: a 409 ("already exists") is reported as
//! [`Created::AlreadyExisted`], not as an error.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::{Namespace, TENANT, TopicName};

/// What a create call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// It was made now.
    New,
    /// It was there already (HTTP 409).
    AlreadyExisted,
}

/// An admin call that failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The admin endpoint could not be reached.
    #[error(
        "cannot reach the Pulsar admin API at {url}: {source}; check that the broker runs (`make infra`) and the admin URL is right"
    )]
    Unreachable {
        /// The URL called.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The broker answered with an error status.
    #[error("{method} {url} answered {status}: {body}")]
    Status {
        /// HTTP method.
        method: Method,
        /// URL called.
        url: String,
        /// Status received.
        status: StatusCode,
        /// The broker's reason, cut to 300 characters.
        body: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from {url}: {source}")]
    Decode {
        /// URL called.
        url: String,
        /// Why it did not decode.
        #[source]
        source: reqwest::Error,
    },
}

impl AdminError {
    /// Whether trying again may succeed: the broker is away, busy or failing (5xx), not a
    /// request the broker rejects.
    pub fn is_retryable(&self) -> bool {
        match self {
            AdminError::Unreachable { .. } => true,
            AdminError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            AdminError::Decode { .. } => false,
        }
    }

    /// The HTTP status, if the broker answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            AdminError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Retention of acknowledged messages in a namespace (`-1` means unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// Minutes to keep.
    pub retention_time_in_minutes: i64,
    /// Megabytes to keep.
    #[serde(rename = "retentionSizeInMB")]
    pub retention_size_in_mb: i64,
}

/// The parts of a topic's stats tickflow reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicStats {
    /// Messages published to the topic since it was loaded.
    pub msg_in_counter: u64,
    /// Bytes published.
    pub bytes_in_counter: u64,
    /// Stored size in bytes.
    pub storage_size: u64,
    /// Average message size in bytes.
    pub average_msg_size: f64,
    /// Per subscription.
    pub subscriptions: std::collections::BTreeMap<String, SubscriptionStats>,
    /// Connected producers.
    pub publishers: Vec<serde_json::Value>,
}

/// The parts of a subscription's stats tickflow reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionStats {
    /// Messages not yet acknowledged.
    pub msg_backlog: u64,
    /// Delivered but not acknowledged.
    pub unacked_messages: i64,
    /// Redeliveries per second.
    pub msg_rate_redeliver: f64,
    /// The consumers attached to it (one entry each, as the broker reports them).
    pub consumers: Vec<serde_json::Value>,
}

/// The admin client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
}

impl AdminClient {
    /// A client for `admin_url` (`http://127.0.0.1:8080`, without `/admin/v2`).
    pub fn new(admin_url: &str) -> Result<Self, AdminError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|source| AdminError::Unreachable {
                url: admin_url.to_owned(),
                source,
            })?;
        Ok(Self {
            http,
            base: format!("{}/admin/v2", admin_url.trim_end_matches('/')),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<reqwest::Response, AdminError> {
        let url = format!("{}/{}", self.base, path);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let resp = req.send().await.map_err(|source| AdminError::Unreachable {
            url: url.clone(),
            source,
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let reason = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
            .unwrap_or(text);
        Err(AdminError::Status {
            method,
            url,
            status,
            body: reason.chars().take(300).collect(),
        })
    }

    async fn create(&self, path: &str, body: Option<String>) -> Result<Created, AdminError> {
        // Two processes creating the same thing at once can make the broker answer 500 to one of
        // them (seen with tenants on 4.0.8); asking again then gets the 409 that means "there".
        let mut attempt = 0;
        loop {
            match self.call(Method::PUT, path, body.clone()).await {
                Ok(_) => return Ok(Created::New),
                Err(e) if e.status() == Some(StatusCode::CONFLICT) => {
                    return Ok(Created::AlreadyExisted);
                }
                Err(e) if attempt < 3 && e.status().is_some_and(|s| s.is_server_error()) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, AdminError> {
        let resp = self.call(Method::GET, path, None).await?;
        let url = resp.url().to_string();
        resp.json()
            .await
            .map_err(|source| AdminError::Decode { url, source })
    }

    /// `ok` when the broker can produce and consume (a real round trip on a heartbeat topic).
    pub async fn health(&self) -> Result<(), AdminError> {
        self.call(Method::GET, "brokers/health", None)
            .await
            .map(|_| ())
    }

    /// The clusters the broker knows (`["standalone"]` on a standalone).
    pub async fn clusters(&self) -> Result<Vec<String>, AdminError> {
        self.get_json("clusters").await
    }

    /// Creates the `market-data` tenant, allowed on `clusters`.
    pub async fn create_tenant(
        &self,
        tenant: &str,
        clusters: &[String],
    ) -> Result<Created, AdminError> {
        let body = serde_json::json!({ "adminRoles": [], "allowedClusters": clusters }).to_string();
        self.create(&format!("tenants/{tenant}"), Some(body)).await
    }

    /// Lists tenants.
    pub async fn tenants(&self) -> Result<Vec<String>, AdminError> {
        self.get_json("tenants").await
    }

    /// Creates a namespace of [`TENANT`].
    pub async fn create_namespace(&self, ns: Namespace) -> Result<Created, AdminError> {
        self.create(&format!("namespaces/{}", ns.qualified()), None)
            .await
    }

    /// Lists the namespaces of [`TENANT`] (`market-data/realtime`, ...).
    pub async fn namespaces(&self) -> Result<Vec<String>, AdminError> {
        self.get_json(&format!("namespaces/{TENANT}")).await
    }

    /// Sets how long acknowledged messages are kept.
    pub async fn set_retention(
        &self,
        ns: Namespace,
        retention: Retention,
    ) -> Result<(), AdminError> {
        let body = serde_json::to_string(&retention).unwrap_or_default();
        self.call(
            Method::POST,
            &format!("namespaces/{}/retention", ns.qualified()),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// Reads the retention policy.
    pub async fn retention(&self, ns: Namespace) -> Result<Retention, AdminError> {
        self.get_json(&format!("namespaces/{}/retention", ns.qualified()))
            .await
    }

    /// Turns broker-side deduplication on or off.
    pub async fn set_deduplication(&self, ns: Namespace, enabled: bool) -> Result<(), AdminError> {
        self.call(
            Method::POST,
            &format!("namespaces/{}/deduplication", ns.qualified()),
            Some(enabled.to_string()),
        )
        .await
        .map(|_| ())
    }

    /// Sets the message time-to-live in seconds.
    pub async fn set_message_ttl(&self, ns: Namespace, seconds: u32) -> Result<(), AdminError> {
        self.call(
            Method::POST,
            &format!("namespaces/{}/messageTTL", ns.qualified()),
            Some(seconds.to_string()),
        )
        .await
        .map(|_| ())
    }

    /// Creates a non-partitioned topic.
    pub async fn create_topic(&self, topic: &TopicName) -> Result<Created, AdminError> {
        self.create(&format!("persistent/{}", topic.rest_path()), None)
            .await
    }

    /// Creates a partitioned topic.
    pub async fn create_partitioned_topic(
        &self,
        topic: &TopicName,
        partitions: u32,
    ) -> Result<Created, AdminError> {
        self.create(
            &format!("persistent/{}/partitions", topic.rest_path()),
            Some(partitions.to_string()),
        )
        .await
    }

    /// Lists the persistent topics of a namespace (partitions as `...-partition-N`).
    pub async fn list_topics(&self, ns: Namespace) -> Result<Vec<String>, AdminError> {
        self.get_json(&format!("persistent/{}", ns.qualified()))
            .await
    }

    /// Deletes a topic, even with clients attached when `force`. A missing topic is not an error.
    pub async fn delete_topic(&self, topic: &TopicName, force: bool) -> Result<(), AdminError> {
        match self
            .call(
                Method::DELETE,
                &format!("persistent/{}?force={force}", topic.rest_path()),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The topic's stats.
    pub async fn topic_stats(&self, topic: &TopicName) -> Result<TopicStats, AdminError> {
        self.get_json(&format!("persistent/{}/stats", topic.rest_path()))
            .await
    }
}

impl AdminClient {
    /// Creates the tenant [`TENANT`] (on every cluster the broker knows) and its namespaces with
    /// tickflow's policies: `historical` keeps acknowledged data for ever and deduplicates on the
    /// broker; `realtime` keeps acknowledged data for 7 days; `control` for 7 days. Idempotent.
    pub async fn provision_layout(&self) -> Result<(), AdminError> {
        let clusters = self.clusters().await?;
        self.create_tenant(TENANT, &clusters).await?;
        for ns in Namespace::ALL {
            self.create_namespace(ns).await?;
        }
        let week = Retention {
            retention_time_in_minutes: 7 * 24 * 60,
            retention_size_in_mb: 10 * 1024,
        };
        self.set_retention(Namespace::Realtime, week).await?;
        self.set_retention(Namespace::Control, week).await?;
        self.set_retention(
            Namespace::Historical,
            Retention {
                retention_time_in_minutes: -1,
                retention_size_in_mb: -1,
            },
        )
        .await?;
        self.set_deduplication(Namespace::Historical, true).await?;
        Ok(())
    }
}
