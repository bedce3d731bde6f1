//! Size bounds on everything a client can send.
//!
//! The Java server has none, so one client can grow the store without limit or break
//! lookups for everybody. These bounds are far above what Presto, Trino or Prestissimo
//! send (a node announces one to four services with a handful of properties), so a real
//! client never meets them. The HTTP body limit (configurable, default 1 MiB) bounds the
//! total on top of these.

/// Longest node id accepted in `/v1/announcement/{nodeId}`, in bytes.
pub const MAX_NODE_ID_BYTES: usize = 256;

/// Most services one node may announce in a single announcement.
pub const MAX_SERVICES_PER_ANNOUNCEMENT: usize = 256;

/// Most properties one service may carry.
pub const MAX_PROPERTIES_PER_SERVICE: usize = 256;

/// Longest service type, pool or property name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Longest location, in bytes.
pub const MAX_LOCATION_BYTES: usize = 4096;

/// Longest environment string echoed back in an error message, in characters. Longer
/// values are cut so a hostile body cannot make the error line arbitrarily long.
pub const MAX_ECHOED_CHARS: usize = 128;
