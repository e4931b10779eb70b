//! Background jobs every instance runs over the shared state (a Postgres advisory lock, or the
//! alert deduplication, lets one instance do each run).

pub mod budget_reset;
pub mod daily_report;
