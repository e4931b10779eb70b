//! Invitation links (`TianjiLLM_InvitationLink`, LiteLLM's `/invitation/*`, admin only): made for
//! an existing internal user, valid 7 days, accepted through `/invitation/update`. `/user/new`
//! and `/key/generate` with `send_invite_email: true` make one too and e-mail its link
//! (`{PROXY_BASE_URL}/ui?invitation_id=<id>`) when e-mail alerting is set up.

use http::Response;
use serde::Deserialize;
use serde_json::Value;

use super::audit::{Change, INVITATIONS_TABLE};
use super::crud::{self, Tx, str_of};
use super::{AdminError, Call, ok};
use crate::body::Body;
use crate::store::Query;

fn invitation_not_found(id: &str) -> AdminError {
    crud::not_found("Invitation", "invitation_id", id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct New {
    user_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    invitation_id: String,
    is_accepted: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Delete {
    invitation_id: String,
}

/// `POST /invitation/new {user_id}`
pub async fn new(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: New = call.json()?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    tx.get(Query::GetUserRows, &req.user_id, |id| {
        crud::not_found("User", "user_id", id)
    })
    .await?;
    let row = insert(&tx, &req.user_id).await?;
    let id = str_of(&row, "id").unwrap_or_default().to_string();
    tx.commit(vec![Change::created(INVITATIONS_TABLE, &id, &row)], &[])
        .await?;
    Ok(ok(&row))
}

/// `GET /invitation/info?invitation_id=`
pub async fn info(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let id = call
        .param("invitation_id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AdminError::invalid("invitation_id", "is required"))?;
    let rows: Vec<Value> = call.rows(Query::GetInvitation, &[&id]).await?;
    let row = rows.into_iter().next();
    Ok(ok(&row.ok_or_else(|| invitation_not_found(&id))?))
}

/// `POST /invitation/update {invitation_id, is_accepted}`
pub async fn update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: Update = call.json()?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = one(&tx, Query::GetInvitation, &req.invitation_id).await?;
    let by = call.changed_by();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&req.invitation_id, &req.is_accepted, &by];
    let after = tx.row(Query::AcceptInvitation, &params).await?;
    let after = after.unwrap_or_default();
    let change = Change::updated(INVITATIONS_TABLE, &req.invitation_id, &before, &after);
    tx.commit(vec![change], &[]).await?;
    Ok(ok(&after))
}

/// `POST /invitation/delete {invitation_id}`: answers the deleted row.
pub async fn delete(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: Delete = call.json()?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = one(&tx, Query::DeleteInvitation, &req.invitation_id).await?;
    let change = Change::of(
        "deleted",
        INVITATIONS_TABLE,
        &req.invitation_id,
        Some(&before),
        None,
    );
    tx.commit(vec![change], &[]).await?;
    Ok(ok(&before))
}

async fn one(tx: &Tx<'_>, q: Query, id: &String) -> Result<Value, AdminError> {
    tx.row(q, &[id])
        .await?
        .ok_or_else(|| invitation_not_found(id))
}

async fn insert(tx: &Tx<'_>, user_id: &str) -> Result<Value, AdminError> {
    let by = tx.call().changed_by();
    let row = tx.row(Query::InsertInvitation, &[&user_id, &by]).await?;
    Ok(row.unwrap_or_default())
}

/// An invitation to e-mail once its transaction commits: (address, user id, invitation id).
pub struct Pending(String, String, String);

/// With `asked` and e-mail alerting on, an invitation for `user` (a user row) made inside `tx`,
/// when the user has an e-mail address.
pub async fn pending(
    tx: &Tx<'_>,
    asked: bool,
    user: &Value,
) -> Result<Option<Pending>, AdminError> {
    if !asked || !tx.call().state.alerts.emails() {
        return Ok(None);
    }
    let (Some(user_id), Some(email)) = (str_of(user, "user_id"), str_of(user, "user_email")) else {
        tracing::warn!("send_invite_email: the user has no user_email; no invitation sent");
        return Ok(None);
    };
    let row = insert(tx, user_id).await?;
    let id = str_of(&row, "id").unwrap_or_default().to_string();
    Ok(Some(Pending(email.to_string(), user_id.to_string(), id)))
}

/// E-mail `invite` (after its transaction committed).
pub fn send(call: &Call<'_>, invite: Option<Pending>, what: &str) {
    if let Some(Pending(to, user_id, id)) = invite {
        call.state.alerts.invite(&to, &user_id, &id, what);
    }
}
