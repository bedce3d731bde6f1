//! Shared support of the interop suite: the Java side ([`java`]), the discovery cluster
//! behind nginx ([`front`]), real engine clusters ([`engine`]) and the scenario they go
//! through ([`scenario`]).

pub mod engine;
pub mod front;
pub mod java;
pub mod scenario;
