//! A2A agents: the in-process registry of `TianjiLLM_AgentsTable` (loaded at startup, reloaded
//! on every instance when an agent changes, through the invalidation channel), who may call
//! which agent ([`access`]), the cards served for them ([`card`]), the check that keeps agent
//! URLs off private addresses ([`address`]), the JSON-RPC envelope ([`rpc`]), where the
//! events of an agent's stream end ([`events`]) and a model-backed agent's conversions between
//! A2A and chat completions ([`convert`]).

pub mod access;
pub mod address;
pub mod card;
pub mod convert;
pub mod events;
pub mod rpc;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Deserialize;
use serde_json::Value;

use crate::secrets::AtRest;
use crate::store::{Query, Store, StoreError};

/// Why the registry could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One agent as the gateway serves it.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub name: String,
    /// `agent_access_groups` and `access_group_ids`: the groups the agent belongs to.
    pub groups: Vec<String>,
    /// The stored row (with `object_permission`), `tianji_params` decrypted.
    pub row: Value,
}

impl Agent {
    /// An agent from a stored row (`None` without an id or a name).
    pub fn from_row(row: Value) -> Option<Self> {
        let id = row.get("agent_id")?.as_str()?.to_string();
        let name = row.get("agent_name")?.as_str()?.to_string();
        let mut groups = strings(row.get("agent_access_groups"));
        groups.extend(strings(row.get("access_group_ids")));
        Some(Self {
            id,
            name,
            groups,
            row,
        })
    }

    /// The stored agent card, when there is one (a non-empty object).
    pub fn card(&self) -> Option<&Value> {
        self.row
            .get("agent_card_params")
            .filter(|c| c.as_object().is_some_and(|o| !o.is_empty()))
    }
}

/// A JSON list of strings (nothing when `v` is not one).
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| Vec::<String>::deserialize(v).ok())
        .unwrap_or_default()
}

/// Every agent, in the order they were created.
#[derive(Debug, Default)]
pub struct Agents {
    list: Vec<Arc<Agent>>,
    by_id: HashMap<String, usize>,
}

impl Agents {
    pub fn new(list: Vec<Agent>) -> Self {
        let list: Vec<Arc<Agent>> = list.into_iter().map(Arc::new).collect();
        let by_id = list
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        Self { list, by_id }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Agent>> {
        self.by_id.get(id).and_then(|i| self.list.get(*i))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Agent>> {
        self.list.iter()
    }
}

/// The live agents, replaced whole when one changes.
#[derive(Debug, Default)]
pub struct Registry {
    agents: ArcSwap<Agents>,
}

impl Registry {
    pub fn load(&self) -> Arc<Agents> {
        self.agents.load_full()
    }

    /// Read every agent from the database (credentials decrypted with `at_rest`); an agent
    /// whose credentials cannot be read is left out, with a warning.
    pub async fn reload(&self, store: &Store, at_rest: Option<&AtRest>) -> Result<(), AgentError> {
        let rows = store.query(Query::ListAgents, &[]).await?;
        let mut list = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut v: Value = row.try_get(0).map_err(StoreError::from)?;
            if let Some(p) = v.get("tianji_params").filter(|p| !p.is_null()) {
                match crate::secrets::at_rest::open_params(at_rest, p) {
                    Ok(p) => v["tianji_params"] = p,
                    Err(e) => {
                        tracing::warn!(agent = %v["agent_id"], error = %e, "skipping an agent whose credentials cannot be read");
                        continue;
                    }
                }
            }
            match Agent::from_row(v) {
                Some(a) => list.push(a),
                None => tracing::warn!("skipping an unreadable agent row"),
            }
        }
        self.agents.store(Arc::new(Agents::new(list)));
        Ok(())
    }
}
