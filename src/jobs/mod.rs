//! Background jobs every instance runs over the shared state (a Postgres advisory lock lets one
//! instance do each run).

pub mod budget_reset;
