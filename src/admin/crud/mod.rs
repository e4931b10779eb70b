//! Shared machinery for management objects, so that each object module (organisations, teams,
//! users, end users, budgets, keys, models) keeps only what is its own:
//! - [`Tx`] (`tx.rs`): one write. A transaction on a pooled connection with its prepared
//!   statements, JSON rows out of named queries, the "not found" and "already exists" checks,
//!   object-permission and budget rows, and the commit that writes the audit rows and then drops
//!   what changed from the governance caches.
//! - `read.rs`: reads outside a transaction ([`Call::first`], [`Call::count`]), query
//!   parameters, the 403 wording, and [`Page`] for paginated lists.

mod read;
mod tx;

pub use read::{Page, str_list};
pub use tx::{Params, Tx};

use serde::Deserialize;
use serde_json::Value;

use super::AdminError;
#[cfg(doc)]
use super::Call;

/// A body that names one object: `{"id": ..}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdBody {
    pub id: String,
}

/// 404: `{what} not found, passed {param}={id}`.
pub fn not_found(what: &str, param: &'static str, id: &str) -> AdminError {
    AdminError::NotFound {
        param,
        message: format!("{what} not found, passed {param}={id}"),
    }
}

/// `ids` sorted, each once; 400 on `field` when there are none.
pub fn distinct(field: &str, mut ids: Vec<String>) -> Result<Vec<String>, AdminError> {
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Err(AdminError::invalid(field, "must not be empty"));
    }
    Ok(ids)
}

/// A string member of a JSON row.
pub fn str_of<'v>(row: &'v Value, name: &str) -> Option<&'v str> {
    row.get(name).and_then(Value::as_str)
}
