//! The two stores of a discovery server.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `dynamic` (node announcements, expiring unless renewed) or `static` (operator-managed
/// services, kept until deleted): the `{store}` of `/v1/store/{store}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreName {
    Dynamic,
    Static,
}

impl StoreName {
    pub const ALL: [StoreName; 2] = [StoreName::Dynamic, StoreName::Static];

    /// The path segment in `/v1/store/{store}` and the store's name everywhere else.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreName::Dynamic => "dynamic",
            StoreName::Static => "static",
        }
    }
}

impl fmt::Display for StoreName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StoreName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dynamic" => Ok(StoreName::Dynamic),
            "static" => Ok(StoreName::Static),
            other => Err(format!(
                "unknown store '{other}': expected dynamic or static"
            )),
        }
    }
}
