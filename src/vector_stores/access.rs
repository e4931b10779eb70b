//! Who may use a vector store. The creator (key hash, user, team) is kept in the store row's
//! `model_mappings.owner`.
//!
//! Read (search, list, get): admins; the key or user that created it; keys of its team; keys
//! whose own or team's `object_permission.vector_stores` names it; keys whose own or team's
//! `allowed_vector_store_indexes` grants `read` on an index naming it. Write (files, update,
//! delete): admins, the creating key or user, and `write` index grants. An index grant names
//! the store by id or name, or a row of `"TianjiLLM_ManagedVectorStoreIndexTable"` whose
//! `litellm_params.vector_store_index` (or `vector_store_id`) is the store's id; the caller
//! resolves those rows ([`index_names`] says which to look up).

use serde_json::Value;

use crate::auth::{Owner, Principal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    Read,
    Write,
}

impl Perm {
    fn word(self) -> &'static str {
        match self {
            Perm::Read => "read",
            Perm::Write => "write",
        }
    }
}

/// The store's id, name and owner, from its row.
pub struct StoreRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub owner: Owner,
}

impl<'a> StoreRef<'a> {
    pub fn of(row: &'a Value) -> Self {
        let s = |p: &str| row.pointer(p).and_then(Value::as_str).unwrap_or_default();
        StoreRef {
            id: s("/unified_resource_id"),
            name: s("/resource_object/name"),
            owner: Owner::from_json(row.pointer("/model_mappings/owner")),
        }
    }
}

/// The caller's key and team metadata and object permissions.
fn sources(p: &Principal) -> Vec<(&Value, Option<&Vec<String>>)> {
    let Some(k) = p.key() else {
        return Vec::new();
    };
    let mut out = vec![(
        &k.key.metadata,
        k.key
            .object_permission
            .as_ref()
            .and_then(|o| o.vector_stores.as_ref()),
    )];
    if let Some(t) = k.team.as_deref() {
        let op = t.object_permission.as_ref();
        out.push((&t.metadata, op.and_then(|o| o.vector_stores.as_ref())));
    }
    out
}

/// `allowed_vector_store_indexes` entries granting `perm`: their index names.
fn index_grants(p: &Principal, perm: Perm) -> impl Iterator<Item = &str> {
    sources(p).into_iter().flat_map(move |(meta, _)| {
        let list = meta
            .get("allowed_vector_store_indexes")
            .and_then(Value::as_array);
        list.into_iter().flatten().filter_map(move |g| {
            let perms = g.get("index_permissions").and_then(Value::as_array)?;
            perms
                .iter()
                .any(|x| x.as_str() == Some(perm.word()))
                .then(|| g.get("index_name").and_then(Value::as_str))
                .flatten()
        })
    })
}

/// Whether the caller may use the store `s` for `perm`, from what the request carries (no
/// index table row looked up).
pub fn may(p: &Principal, s: &StoreRef, perm: Perm) -> bool {
    if p.is_admin() {
        return true;
    }
    let me = Owner::of(p);
    if s.owner.created_by(&me) || (perm == Perm::Read && s.owner.same_team(&me)) {
        return true;
    }
    if perm == Perm::Read
        && sources(p)
            .iter()
            .any(|(_, ids)| ids.is_some_and(|ids| ids.iter().any(|i| i == s.id)))
    {
        return true;
    }
    index_grants(p, perm).any(|n| n == s.id || (!s.name.is_empty() && n == s.name))
}

/// Index names granting `perm` that name no store directly: rows of the index table to look
/// up.
pub fn index_names(p: &Principal, perm: Perm) -> Vec<String> {
    index_grants(p, perm)
        .filter(|n| !n.starts_with("vs_"))
        .map(str::to_string)
        .collect()
}

/// The store an index table row (`litellm_params`) points at.
pub fn index_target(row: &Value) -> Option<&str> {
    let params = row.get("litellm_params")?;
    ["vector_store_index", "vector_store_id"]
        .iter()
        .find_map(|f| params.get(*f).and_then(Value::as_str))
}
