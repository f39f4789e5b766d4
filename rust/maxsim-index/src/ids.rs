//! Users' document ids (int64 or strings), and the map from id to the
//! position ("ordinal") of the document in a snapshot.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// One document id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocId {
    Int(i64),
    Str(String),
}

impl DocId {
    pub fn kind(&self) -> IdKind {
        match self {
            DocId::Int(_) => IdKind::Int,
            DocId::Str(_) => IdKind::Str,
        }
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Int(v) => write!(f, "{v}"),
            DocId::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// The id type of an index, fixed by its first `add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdKind {
    #[serde(rename = "int64")]
    Int,
    #[serde(rename = "str")]
    Str,
}

impl IdKind {
    pub fn name(self) -> &'static str {
        match self {
            IdKind::Int => "int64",
            IdKind::Str => "str",
        }
    }
}

/// Live ids → ordinals.
pub type IdMap = HashMap<DocId, u64>;

/// Names up to 10 ids for an error message.
pub fn list_some(ids: &[&DocId]) -> String {
    let shown: Vec<String> = ids.iter().take(10).map(|i| i.to_string()).collect();
    let more = if ids.len() > 10 {
        format!(" and {} more", ids.len() - 10)
    } else {
        String::new()
    };
    format!("[{}]{more}", shown.join(", "))
}
