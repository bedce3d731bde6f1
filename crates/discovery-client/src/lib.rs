//! A Rust client for airlift discovery servers (`discoveryd`, or the Java discovery server
//! Presto and Trino use).
//!
//! * [`DiscoveryClient`]: one call per protocol operation (announce, unannounce, lookup,
//!   static services, raw store dumps) over one or more server URIs, failing over to the
//!   next URI when a server is unreachable or answers 5xx. Errors are [`DiscoveryError`].
//! * [`Announcer`]: keeps a node announced in the background, at 80 % of the server's
//!   `Cache-Control: max-age`, backing off on failures, and unannounces on
//!   [`Announcer::shutdown`].
//! * [`ServiceSelector`]: a cached view of one type and pool, refreshed every `max-age`
//!   with ETags, that keeps its last good list when discovery is down and publishes every
//!   change on a `tokio::sync::watch` channel.
//! * Credentials: [`ClientBuilder::headers`] adds headers to every request, computed per
//!   attempt (a fresh short-lived token, or one signed for the announced node).
//!
//! The wire types come from [`discovery_types`], re-exported as [`types`].
//!
//! # Announce a service until shutdown
//!
//! ```no_run
//! use discovery_client::{service, Announcer, DiscoveryClient};
//! use discovery_client::types::DynamicAnnouncement;
//!
//! # async fn example() -> Result<(), discovery_client::DiscoveryError> {
//! let client = DiscoveryClient::builder(["http://disc-1:8411", "http://disc-2:8411"])
//!     .environment("production")
//!     .user_agent("gateway-1")
//!     .build()?;
//! let announcement = DynamicAnnouncement {
//!     environment: client.environment().await?,
//!     pool: "general".into(),
//!     location: Some("/rack1/gateway-1".into()),
//!     services: vec![service("presto-gateway", [("http", "http://10.0.0.7:8080")])],
//! };
//! let announcer = Announcer::start(client, "gateway-1", announcement)?;
//! announcer.announced().await;
//! // ... serve ...
//! announcer.shutdown().await?; // the node disappears from lookups at once
//! # Ok(())
//! # }
//! ```
//!
//! # Always know where the coordinator is
//!
//! ```no_run
//! use discovery_client::{DiscoveryClient, ServiceSelector};
//!
//! # async fn example() -> Result<(), discovery_client::DiscoveryError> {
//! let client = DiscoveryClient::builder(["http://disc-1:8411"])
//!     .environment("production")
//!     .build()?;
//! let selector = ServiceSelector::start_loaded(client, "presto-coordinator", "general").await?;
//! let mut changes = selector.subscribe();
//! loop {
//!     let coordinator = changes
//!         .borrow_and_update()
//!         .first()
//!         .and_then(|s| s.properties.get("http").cloned());
//!     println!("coordinator is now at {coordinator:?}");
//!     if changes.changed().await.is_err() {
//!         break; // the selector was dropped
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # One-off calls
//!
//! ```no_run
//! use discovery_client::{DiscoveryClient, StoreName};
//! use discovery_client::types::StaticAnnouncement;
//!
//! # async fn example() -> Result<(), discovery_client::DiscoveryError> {
//! let client = DiscoveryClient::new("http://127.0.0.1:8411")?;
//! for service in client.lookup("presto", "general").await?.services {
//!     println!("{} {:?}", service.id, service.properties.get("http"));
//! }
//! let created = client
//!     .add_static(&StaticAnnouncement {
//!         environment: client.environment().await?,
//!         service_type: "hive-metastore".into(),
//!         pool: "general".into(),
//!         location: None,
//!         properties: [("thrift".to_owned(), "thrift://10.0.0.9:9083".to_owned())].into(),
//!     })
//!     .await?;
//! client.delete_static(&created.id).await?;
//! for entry in client.store_entries(StoreName::Dynamic).await? {
//!     println!("{} tombstone={} services={}", entry.key, entry.tombstone, entry.services.len());
//! }
//! # Ok(())
//! # }
//! ```

pub mod announcement;
pub mod announcer;
pub mod backoff;
pub mod cache_control;
pub mod client;
pub mod error;
pub mod selector;
pub mod store;
pub mod uris;
pub mod validate;

pub use announcement::{
    new_service_id, parse_announcement_file, parse_static_file, service, AnnouncementFile,
};
pub use announcer::{Announcer, AnnouncerStatus};
pub use client::{Announced, ClientBuilder, DiscoveryClient, Lookup, Readiness};
pub use error::DiscoveryError;
pub use selector::{SelectorStatus, ServiceSelector, Services};
pub use store::{DecodedEntry, StoreName};
pub use validate::ValidationError;

/// The header and method types [`ClientBuilder::headers`] works with (reqwest's), so a
/// caller needs no reqwest dependency of its own, nor one of the same version.
pub use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
pub use reqwest::Method;

/// The protocol's wire types ([`types::Service`], [`types::ServiceSet`], the announcement
/// bodies, raw store entries).
pub use discovery_types as types;
