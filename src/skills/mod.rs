//! Skills: what an upload must be ([`archive`]), and which provider account holds each skill
//! that lives on one ([`Homes`]: skill id -> deployment id, loaded from
//! `"TianjiLLM_SkillsTable"` at startup and reloaded on every instance when a skill changes), so
//! a request naming skills in `container.skills` goes to that account without a database call.

pub mod archive;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::store::{Query, Store, StoreError};

/// Skill id -> the id of the deployment (provider account) holding it.
#[derive(Debug, Default)]
pub struct Homes {
    map: ArcSwap<HashMap<String, String>>,
}

impl Homes {
    /// Whether no provider account holds any skill (requests need no look at `container`).
    pub fn is_empty(&self) -> bool {
        self.map.load().is_empty()
    }

    /// The deployment holding `skill_id`, when a provider account holds it.
    pub fn of(&self, skill_id: &str) -> Option<String> {
        self.map.load().get(skill_id).cloned()
    }

    /// Read every skill's home from the database.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let rows = store.query(Query::SkillHomes, &[]).await?;
        let mut map = HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get(0)?;
            let dep: String = row.try_get(1)?;
            map.insert(id, dep);
        }
        self.map.store(Arc::new(map));
        Ok(())
    }
}
