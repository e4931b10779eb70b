//! The budgets a request is subject to: the accounts spend is tracked for (keys, teams, team
//! members, users, organisations, end users) and one budget line per account.

use super::cache::Changed;

/// An entity spend is tracked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Account {
    Key(String),
    Team(String),
    Member { team_id: String, user_id: String },
    User(String),
    Org(String),
    EndUser(String),
}

impl Account {
    /// The account a governance change is about (`None` for `All` and `Models`).
    pub fn of(c: &Changed) -> Option<Account> {
        Some(match c {
            Changed::Key(t) => Account::Key(t.clone()),
            Changed::Team(t) => Account::Team(t.clone()),
            Changed::User(u) => Account::User(u.clone()),
            Changed::Org(o) => Account::Org(o.clone()),
            Changed::EndUser(e) => Account::EndUser(e.clone()),
            Changed::Member { team_id, user_id } => Account::Member {
                team_id: team_id.clone(),
                user_id: user_id.clone(),
            },
            Changed::All
            | Changed::Models
            | Changed::Agents
            | Changed::McpServers
            | Changed::Skills
            | Changed::Prompts
            | Changed::VectorStore(_)
            | Changed::RouterSettings
            | Changed::CacheEntries(_)
            | Changed::CacheAll => return None,
        })
    }
}

/// One budget a request is subject to.
#[derive(Debug, Clone)]
pub struct Line {
    pub account: Account,
    pub max_budget: f64,
    /// Spend in the cached record.
    pub recorded: f64,
}
