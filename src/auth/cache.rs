//! Governance records on the request path: one moka cache per kind (keys, teams, users,
//! organisations, team memberships, end users) in front of Postgres. A hit makes no database
//! query; "not found" is cached briefly too, so a flood of unknown ids cannot turn into a flood
//! of queries. Management writes invalidate by id, and other instances hear about it through
//! Redis (see [`crate::auth::invalidation`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::KeyCaller;
use super::keys::KeyRecord;
use super::records::{EndUserRecord, MembershipRecord, OrgRecord, TeamRecord, UserRecord};
use crate::store::{Query, Store, StoreError};

/// How long a found record stays cached (writes invalidate sooner).
const POSITIVE_TTL: Duration = Duration::from_secs(60);
/// How long "not found" stays cached.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

type Entry<T> = Option<Arc<T>>;

struct Expiry;

impl<T> moka::Expiry<String, Entry<T>> for Expiry {
    fn expire_after_create(&self, _: &String, v: &Entry<T>, _: Instant) -> Option<Duration> {
        Some(if v.is_some() {
            POSITIVE_TTL
        } else {
            NEGATIVE_TTL
        })
    }
}

/// One kind of record, looked up by id with `query` (which returns one JSON column).
pub struct EntityCache<T> {
    store: Arc<Store>,
    query: Query,
    cache: moka::future::Cache<String, Entry<T>, Hasher>,
}

/// The caches' hasher: foldhash, seeded per process (std's SipHash costs several times more
/// per lookup of a 64-character token, on every request).
type Hasher = foldhash::fast::RandomState;

impl<T: DeserializeOwned + Send + Sync + 'static> EntityCache<T> {
    fn new(store: Arc<Store>, query: Query, capacity: u64) -> Self {
        Self {
            store,
            query,
            cache: moka::future::Cache::builder()
                .max_capacity(capacity)
                .expire_after(Expiry)
                .build_with_hasher(Hasher::default()),
        }
    }

    /// The record cached under `id`; on a miss, loaded with `params` (concurrent misses share
    /// one query).
    pub async fn get_with(&self, id: &str, params: &[&str]) -> Result<Entry<T>, Arc<StoreError>> {
        if let Some(hit) = self.cache.get(id).await {
            return Ok(hit);
        }
        // boxed: the query's state is large, and every caller's future would carry it (and copy
        // it at every move) for the rare miss
        Box::pin(self.load(id, params)).await
    }

    /// Load the record `id` with `params` (concurrent misses share one query) and cache it.
    async fn load(&self, id: &str, params: &[&str]) -> Result<Entry<T>, Arc<StoreError>> {
        let store = self.store.clone();
        let query = self.query;
        let owned: Vec<String> = params.iter().map(|p| (*p).to_string()).collect();
        self.cache
            .try_get_with(id.to_string(), async move {
                let args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = owned
                    .iter()
                    .map(|s| s as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let rows = store.query(query, &args).await?;
                let Some(row) = rows.first() else {
                    return Ok::<Entry<T>, StoreError>(None);
                };
                let v: Value = row.try_get(0)?;
                let rec: T = serde_json::from_value(v).map_err(|e| {
                    StoreError::Unavailable(format!("unreadable {} row: {e}", query.name()))
                })?;
                Ok(Some(Arc::new(rec)))
            })
            .await
    }

    /// The record with this id.
    pub async fn get(&self, id: &str) -> Result<Entry<T>, Arc<StoreError>> {
        self.get_with(id, &[id]).await
    }

    pub async fn invalidate(&self, id: &str) {
        self.cache.invalidate(id).await;
    }
}

/// What changed, for invalidation (locally and across instances).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Key(String),
    Team(String),
    User(String),
    Org(String),
    Member {
        team_id: String,
        user_id: String,
    },
    EndUser(String),
    /// Something many records may point at (a budget): drop everything.
    All,
    /// A model in the database: reload the model table.
    Models,
    /// Router settings changed at run time: reload them.
    RouterSettings,
    /// An agent changed: reload the agent registry.
    Agents,
    /// An MCP server in the database changed: reload the MCP servers.
    McpServers,
    /// A skill changed: reload where skills live.
    Skills,
    /// A stored prompt changed: reload the prompt registry.
    Prompts,
    /// One of the gateway's own vector stores changed (its files): bring its index in step.
    VectorStore(String),
    /// Response cache entries deleted (`/cache/delete`): drop them from the local tier.
    CacheEntries(Vec<String>),
    /// The response cache was flushed (`/cache/flushall`).
    CacheAll,
}

impl Changed {
    /// `kind:id` as sent over Redis.
    pub fn encode(&self) -> String {
        match self {
            Changed::Key(t) => format!("key:{t}"),
            Changed::Team(t) => format!("team:{t}"),
            Changed::User(u) => format!("user:{u}"),
            Changed::Org(o) => format!("org:{o}"),
            Changed::Member { team_id, user_id } => {
                format!("member:{}", membership_id(team_id, user_id))
            }
            Changed::EndUser(e) => format!("end_user:{e}"),
            Changed::All => "all:".to_string(),
            Changed::Models => "models:".to_string(),
            Changed::RouterSettings => "router:".to_string(),
            Changed::Agents => "agents:".to_string(),
            Changed::McpServers => "mcp_servers:".to_string(),
            Changed::Skills => "skills:".to_string(),
            Changed::Prompts => "prompts:".to_string(),
            Changed::VectorStore(id) => format!("vector_store:{id}"),
            // cache keys hold no spaces (namespaces are checked)
            Changed::CacheEntries(keys) => format!("cache_entries:{}", keys.join(" ")),
            Changed::CacheAll => "cache_all:".to_string(),
        }
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (kind, id) = s.split_once(':')?;
        let id = id.to_string();
        Some(match kind {
            "key" => Changed::Key(id),
            "team" => Changed::Team(id),
            "user" => Changed::User(id),
            "org" => Changed::Org(id),
            "member" => {
                let (team_id, user_id) = id.split_once('\u{1f}')?;
                Changed::Member {
                    team_id: team_id.to_string(),
                    user_id: user_id.to_string(),
                }
            }
            "end_user" => Changed::EndUser(id),
            "all" => Changed::All,
            "models" => Changed::Models,
            "agents" => Changed::Agents,
            "mcp_servers" => Changed::McpServers,
            "skills" => Changed::Skills,
            "prompts" => Changed::Prompts,
            "vector_store" => Changed::VectorStore(id),
            "router" => Changed::RouterSettings,
            "cache_entries" => Changed::CacheEntries(id.split(' ').map(str::to_string).collect()),
            "cache_all" => Changed::CacheAll,
            _ => return None,
        })
    }
}

/// Cache id of a team membership.
pub fn membership_id(team_id: &str, user_id: &str) -> String {
    format!("{team_id}\u{1f}{user_id}")
}

/// A key with everything it belongs to, as of a generation of [`Directory`].
pub struct Bundle {
    generation: u64,
    pub caller: KeyCaller,
}

/// Every governance cache.
pub struct Directory {
    /// Bumped whenever a team, user, organisation or membership changes: bundles built before
    /// are rebuilt from the per-kind caches (which were invalidated precisely).
    generation: AtomicU64,
    /// Token -> the key with its team, user, membership and organisation: one lookup per
    /// request on the hot path.
    bundles: moka::future::Cache<String, Arc<Bundle>, Hasher>,
    pub keys: EntityCache<KeyRecord>,
    pub teams: EntityCache<TeamRecord>,
    pub users: EntityCache<UserRecord>,
    pub orgs: EntityCache<OrgRecord>,
    pub members: EntityCache<MembershipRecord>,
    pub end_users: EntityCache<EndUserRecord>,
}

impl Directory {
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            generation: AtomicU64::new(0),
            bundles: moka::future::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(POSITIVE_TTL)
                .build_with_hasher(Hasher::default()),
            keys: EntityCache::new(store.clone(), Query::GetKeyByToken, 1_000_000),
            teams: EntityCache::new(store.clone(), Query::GetTeamRecord, 100_000),
            users: EntityCache::new(store.clone(), Query::GetUserRecord, 1_000_000),
            orgs: EntityCache::new(store.clone(), Query::GetOrgRecord, 100_000),
            members: EntityCache::new(store.clone(), Query::GetMembershipRecord, 1_000_000),
            end_users: EntityCache::new(store, Query::GetEndUserRecord, 1_000_000),
        }
    }

    /// The membership of `user_id` in `team_id`.
    pub async fn member(
        &self,
        team_id: &str,
        user_id: &str,
    ) -> Result<Entry<MembershipRecord>, Arc<StoreError>> {
        self.members
            .get_with(&membership_id(team_id, user_id), &[team_id, user_id])
            .await
    }

    /// The current generation (read it before loading what goes into a bundle).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The bundle of `token`, unless something it may contain changed since it was built.
    pub async fn bundle(&self, token: &str) -> Option<Arc<Bundle>> {
        self.bundles
            .get(token)
            .await
            .filter(|b| b.generation == self.generation())
    }

    /// Remember `caller` for `token`, as built from data of `generation`.
    pub async fn remember(&self, token: &str, generation: u64, caller: KeyCaller) {
        self.bundles
            .insert(token.to_string(), Arc::new(Bundle { generation, caller }))
            .await;
    }

    /// Drop a changed record from this instance's caches.
    pub async fn invalidate(&self, what: &Changed) {
        match what {
            Changed::Key(t) => {
                self.keys.invalidate(t).await;
                self.bundles.invalidate(t).await;
            }
            Changed::EndUser(e) => {
                self.end_users.invalidate(e).await;
                return;
            }
            Changed::Models
            | Changed::Agents
            | Changed::McpServers
            | Changed::Skills
            | Changed::Prompts
            | Changed::VectorStore(_)
            | Changed::RouterSettings
            | Changed::CacheEntries(_)
            | Changed::CacheAll => return,
            Changed::Team(t) => self.teams.invalidate(t).await,
            Changed::User(u) => self.users.invalidate(u).await,
            Changed::Org(o) => self.orgs.invalidate(o).await,
            Changed::Member { team_id, user_id } => {
                self.members
                    .invalidate(&membership_id(team_id, user_id))
                    .await
            }
            Changed::All => {
                self.bundles.invalidate_all();
                self.keys.cache.invalidate_all();
                self.teams.cache.invalidate_all();
                self.users.cache.invalidate_all();
                self.orgs.cache.invalidate_all();
                self.members.cache.invalidate_all();
                self.end_users.cache.invalidate_all();
            }
        }
        // After the precise invalidation: a bundle built from older data (even one a request
        // is building right now) is now stale.
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip() {
        for c in [
            Changed::Key("abc".into()),
            Changed::Team("t:1".into()),
            Changed::Member {
                team_id: "t".into(),
                user_id: "u:x".into(),
            },
            Changed::EndUser("e".into()),
            Changed::All,
            Changed::CacheEntries(vec!["tianji:cache:a:1".into(), "tianji:cache:b:2".into()]),
            Changed::CacheAll,
        ] {
            assert_eq!(Changed::decode(&c.encode()), Some(c));
        }
        assert_eq!(Changed::decode("nope"), None);
        assert_eq!(Changed::decode("what:x"), None);
    }
}
