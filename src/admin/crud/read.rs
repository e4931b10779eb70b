//! Reads outside a transaction, query parameters, the 403 wording, and pages of lists.

use std::fmt::Display;

use serde_json::{Value, json};

use super::super::{AdminError, Call};
use super::tx::Params;
use crate::store::Query;

impl Call<'_> {
    /// The first row of a named query, as JSON.
    pub async fn first(&self, q: Query, params: &Params<'_>) -> Result<Option<Value>, AdminError> {
        Ok(self.rows(q, params).await?.into_iter().next())
    }

    /// The number a `COUNT` query answers (0 without a row).
    pub async fn count(&self, q: Query, params: &Params<'_>) -> Result<i64, AdminError> {
        let rows = self.store.query(q, params).await?;
        Ok(rows.first().and_then(|r| r.try_get(0).ok()).unwrap_or(0))
    }

    /// A query parameter that is given and not empty.
    pub fn given(&self, name: &str) -> Option<String> {
        self.param(name).filter(|v| !v.is_empty())
    }

    /// A required query parameter (400 `pass ?name=` without it).
    pub fn required(&self, name: &str) -> Result<String, AdminError> {
        self.given(name)
            .ok_or_else(|| AdminError::invalid(name, format!("pass ?{name}=")))
    }

    /// 403 (`{what}. Your role=..`) unless the caller is a proxy admin.
    pub fn require_admin(&self, what: &str) -> Result<(), AdminError> {
        if self.principal.is_admin() {
            return Ok(());
        }
        Err(self.forbidden(what))
    }

    /// 403: `{what}. Your role={the caller's role}`.
    pub fn forbidden(&self, what: impl Display) -> AdminError {
        AdminError::Forbidden(format!(
            "{what}. Your role={}",
            self.principal.role().name()
        ))
    }
}

/// The strings of a JSON list (others skipped; nothing when `v` is not a list).
pub fn str_list(v: Option<&Value>) -> Vec<String> {
    let items = v.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    items
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// One page of a list: `page` counts from 1, `size` rows a page.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub page: i64,
    pub size: i64,
}

impl Page {
    /// `?page=&page_size=`: positive integers (`page_size` defaults to `default_size` and is
    /// capped at 100).
    pub fn of(call: &Call<'_>, default_size: i64) -> Result<Self, AdminError> {
        Ok(Self {
            page: call.positive("page", 1)?,
            size: call.positive("page_size", default_size)?.min(100),
        })
    }

    /// Rows before this page.
    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.size
    }

    /// Pages that `total` rows fill.
    pub fn total_pages(&self, total: i64) -> i64 {
        (total + self.size - 1) / self.size
    }

    /// `{name: items, total, page, page_size, total_pages}`
    pub fn answer(&self, name: &str, items: Vec<Value>, total: i64) -> Value {
        json!({
            name: items,
            "total": total,
            "page": self.page,
            "page_size": self.size,
            "total_pages": self.total_pages(total),
        })
    }
}
