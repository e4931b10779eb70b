//! `"TianjiLLM_ManagedFileTable"`: every file uploaded through the gateway, by the id the client
//! got, with the deployments holding it (`model_mappings`: deployment id -> the provider's file
//! id) and its owner. A file sent to several deployments (`target_model_names`) has one row
//! mapping its unified id to each copy; a file on one deployment, or a batch's output file, has
//! one mapping. Each write is one statement (its own transaction).

use serde_json::{Map, Value};

use crate::store::{Query, Store, StoreError};

/// One recorded file.
#[derive(Debug, Clone)]
pub struct FileRow {
    /// The id the client got.
    pub id: String,
    /// The file object as the client sees it (`None`: not read from the provider yet).
    pub object: Option<Value>,
    /// (deployment id, provider's file id), in the database's order.
    pub mappings: Vec<(String, String)>,
}

/// The owner of a file row: (user id, team id), `""` for none.
pub type Owner<'a> = (&'a str, &'a str);

fn mappings_json(mappings: &[(String, String)]) -> (Value, Vec<String>) {
    let mut m = Map::new();
    for (dep, raw) in mappings {
        m.insert(dep.clone(), Value::String(raw.clone()));
    }
    (
        Value::Object(m),
        mappings.iter().map(|(_, raw)| raw.clone()).collect(),
    )
}

fn mappings_of(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(dep, raw)| Some((dep.clone(), raw.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Record file `id` held as `mappings`; `false` when `id` was already recorded.
pub async fn insert(
    store: &Store,
    id: &str,
    object: Option<&Value>,
    mappings: &[(String, String)],
    (user, team): Owner<'_>,
) -> Result<bool, StoreError> {
    let (json, flat) = mappings_json(mappings);
    let rows = store
        .query(
            Query::InsertManagedFile,
            &[&id, &object, &json, &flat, &user, &team],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// The file the client knows as `id`, with its owner.
pub async fn get(store: &Store, id: &str) -> Result<Option<(FileRow, String, String)>, StoreError> {
    let rows = store.query(Query::GetManagedFile, &[&id]).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let object = row.try_get::<_, Option<Value>>(0)?;
    let mappings = mappings_of(&row.try_get::<_, Value>(1)?);
    let user = row.try_get::<_, String>(2)?;
    let team = row.try_get::<_, String>(3)?;
    Ok(Some((
        FileRow {
            id: id.to_string(),
            object,
            mappings,
        },
        user,
        team,
    )))
}

/// The client's id of the file deployment `dep` holds as `raw`, if recorded.
pub async fn of_provider_id(
    store: &Store,
    dep: &str,
    raw: &str,
) -> Result<Option<String>, StoreError> {
    let rows = store
        .query(Query::ManagedFileOfProviderId, &[&dep, &raw])
        .await?;
    Ok(match rows.first() {
        Some(r) => Some(r.try_get::<_, String>(0)?),
        None => None,
    })
}

/// Keep the file object as read now.
pub async fn set_object(store: &Store, id: &str, object: &Value) -> Result<(), StoreError> {
    store
        .query(Query::SetManagedFileObject, &[&id, object])
        .await?;
    Ok(())
}

/// The deployments still holding file `id`.
pub async fn set_mappings(
    store: &Store,
    id: &str,
    mappings: &[(String, String)],
) -> Result<(), StoreError> {
    let (json, flat) = mappings_json(mappings);
    store
        .query(Query::SetManagedFileMappings, &[&id, &json, &flat])
        .await?;
    Ok(())
}

/// Forget file `id` (and the one-deployment row of `raw` on `dep`).
pub async fn delete(store: &Store, id: &str, dep: &str, raw: &str) -> Result<(), StoreError> {
    store
        .query(Query::DeleteManagedFile, &[&id, &dep, &raw])
        .await?;
    Ok(())
}

/// Which files to list.
#[derive(Debug, Clone)]
pub struct Listing<'a> {
    /// Only this owner's (`None`: every owner's).
    pub owner: Option<Owner<'a>>,
    pub limit: i64,
    pub newest_first: bool,
    /// Only files recorded after (or before, newest first) this client id.
    pub after: Option<String>,
    pub purpose: Option<String>,
    /// Only files some of these deployments hold.
    pub deployments: Option<Vec<String>>,
}

/// One page of files and whether more follow.
pub async fn list(store: &Store, l: &Listing<'_>) -> Result<(Vec<FileRow>, bool), StoreError> {
    let (user, team) = l.owner.unwrap_or(("", ""));
    let rows = store
        .query(
            Query::ListManagedFiles,
            &[
                &l.owner.is_some(),
                &user,
                &team,
                &(l.limit + 1),
                &l.newest_first,
                &l.after,
                &l.purpose,
                &l.deployments,
            ],
        )
        .await?;
    let more = rows.len() as i64 > l.limit;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows.iter().take(l.limit as usize) {
        out.push(FileRow {
            id: row.try_get::<_, String>(0)?,
            object: row.try_get::<_, Option<Value>>(1)?,
            mappings: mappings_of(&row.try_get::<_, Value>(2)?),
        });
    }
    Ok((out, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_round_trip() {
        let m = vec![("d1".to_string(), "file-a".to_string())];
        let (json, flat) = mappings_json(&m);
        assert_eq!(json, serde_json::json!({"d1": "file-a"}));
        assert_eq!(flat, ["file-a"]);
        assert_eq!(mappings_of(&json), m);
        assert!(mappings_of(&Value::Null).is_empty());
    }
}
