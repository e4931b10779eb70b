//! `GET /cron_jobs`: the scheduler's jobs (`TianjiLLM_CronJob`): who holds each lease, until
//! when, when the next run is due, how many runs finished and how the last one ended.

use http::Response;
use serde_json::{Value, json};

use super::{AdminError, Call, ok};
use crate::body::Body;
use crate::store::Query;

/// The jobs, by id.
pub async fn list(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let jobs = call.rows(Query::ListCronJobs, &[]).await?;
    Ok(ok(&json!({"jobs": Value::Array(jobs)})))
}
