//! Wire and domain types of the airlift discovery protocol, shared by the server, the
//! client library, the CLI and the tests.
//!
//! Everything here is pure: JSON shapes that match airlift's field names exactly, and the
//! validation rules that decide whether a client's body is acceptable. No I/O, no clocks.
//!
//! * [`service`]: a [`Service`] as stored and returned by lookups, and the [`ServiceSet`]
//!   envelope (`{"environment": .., "services": [..]}`) used by lookups and inventories.
//! * [`announcement`]: the bodies of dynamic (`PUT /v1/announcement/{nodeId}`) and static
//!   (`POST /v1/announcement/static`) announcements and their validation.
//! * [`store_wire`]: the raw replicated-entry shape of `/v1/store/{store}`.
//! * [`replication`]: messages between discoveryd servers (push, digests, status).
//! * [`limits`]: the size bounds every accepted input respects.
//! * [`trino_announce`]: Trino 477+ announce mode: the `POST /v1/announce` body (one URI)
//!   and the node's `/v1/info` document.
//! * [`diagnostics`]: `GET /v1/diagnostics/node/{nodeId}`, why a node is (not) listed.

pub mod announcement;
pub mod diagnostics;
pub mod limits;
pub mod replication;
pub mod service;
pub mod store_name;
pub mod store_wire;
pub mod stored;
pub mod trino_announce;
pub mod units;

pub use announcement::{
    validate_node_id, AnnouncementError, DynamicAnnouncement, ServiceAnnouncement,
    StaticAnnouncement,
};
pub use service::{is_service_id, Service, ServiceSet};
pub use store_name::StoreName;
pub use store_wire::{WireEntry, WireVersion};
pub use trino_announce::{AnnounceUri, AnnounceUriError, ServerInfo, ServerInfoError, UriScheme};
