//! What one flush adds to each entity and to each daily-table row, summed in the writer so the
//! database gets one array element per entity (or per daily key) instead of one per request.

use crate::util::FastMap;

use super::ledger::Account;
use super::record::SpendRow;

/// Amounts per entity id, as parallel arrays.
#[derive(Debug, Default)]
pub struct Sums {
    pub ids: Vec<String>,
    pub amounts: Vec<f64>,
}

impl Sums {
    fn from_map(m: FastMap<&str, f64>) -> Self {
        let (ids, amounts) = m.into_iter().map(|(k, v)| (k.to_string(), v)).unzip();
        Self { ids, amounts }
    }
}

/// Amounts per (team, user) membership.
#[derive(Debug, Default)]
pub struct MemberSums {
    pub teams: Vec<String>,
    pub users: Vec<String>,
    pub amounts: Vec<f64>,
}

/// Rows for one daily table, as parallel arrays (see the FlushDaily* queries).
#[derive(Debug, Default)]
pub struct Daily {
    pub entity: Vec<String>,
    pub day: Vec<String>,
    pub api_key: Vec<String>,
    pub model: Vec<String>,
    pub model_group: Vec<String>,
    pub provider: Vec<String>,
    pub endpoint: Vec<String>,
    /// `mcp_namespaced_tool_name` ("" but for MCP tool calls).
    pub tool: Vec<String>,
    pub prompt: Vec<i64>,
    pub completion: Vec<i64>,
    pub cache_read: Vec<i64>,
    pub cache_creation: Vec<i64>,
    pub spend: Vec<f64>,
    pub requests: Vec<i64>,
    pub ok: Vec<i64>,
    pub failed: Vec<i64>,
    pub ms: Vec<i64>,
}

#[derive(Default)]
struct DayAcc {
    model_group: String,
    prompt: i64,
    completion: i64,
    cache_read: i64,
    cache_creation: i64,
    spend: f64,
    requests: i64,
    ok: i64,
    failed: i64,
    ms: i64,
}

/// (UTC day number, api_key, model, provider, endpoint, MCP tool), borrowed from the batch:
/// what the daily rows of one request share, whatever entity they are for.
type Combo<'a> = (i64, &'a str, &'a str, &'a str, &'static str, &'a str);

/// The combos of a batch, each numbered once (a row's is hashed once, not once per entity).
#[derive(Default)]
struct Combos<'a> {
    index: FastMap<Combo<'a>, u32>,
    list: Vec<Combo<'a>>,
}

impl<'a> Combos<'a> {
    fn of(&mut self, day: i64, r: &'a SpendRow) -> u32 {
        let combo = (
            day,
            r.api_key(),
            r.model(),
            r.provider(),
            r.endpoint,
            r.mcp_tool().unwrap_or_default(),
        );
        let next = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        *self.index.entry(combo).or_insert_with(|| {
            self.list.push(combo);
            next
        })
    }
}

/// (entity, combo number).
type DayKey<'a> = (&'a str, u32);

fn add_day<'a>(m: &mut FastMap<DayKey<'a>, DayAcc>, entity: &'a str, combo: u32, r: &SpendRow) {
    let a = m.entry((entity, combo)).or_default();
    if a.model_group.is_empty() {
        a.model_group.clone_from(&r.model_group);
    }
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    a.prompt += i(r.prompt_tokens);
    a.completion += i(r.completion_tokens);
    a.cache_read += i(r.cache_read_input_tokens);
    a.cache_creation += i(r.cache_creation_input_tokens);
    a.spend += r.spend;
    a.requests += 1;
    if r.status == "success" {
        a.ok += 1;
    } else {
        a.failed += 1;
    }
    a.ms += i(r.request_duration_ms);
}

impl Daily {
    fn from_map(m: FastMap<DayKey<'_>, DayAcc>, combos: &Combos<'_>) -> Self {
        let mut d = Daily::default();
        for ((entity, combo), a) in m {
            let Some(&(day, api_key, model, provider, endpoint, tool)) =
                combos.list.get(combo as usize)
            else {
                continue;
            };
            d.entity.push(entity.to_string());
            d.day.push(day_string(day));
            d.api_key.push(api_key.to_string());
            d.model.push(model.to_string());
            d.model_group.push(a.model_group);
            d.provider.push(provider.to_string());
            d.endpoint.push(endpoint.to_string());
            d.tool.push(tool.to_string());
            d.prompt.push(a.prompt);
            d.completion.push(a.completion);
            d.cache_read.push(a.cache_read);
            d.cache_creation.push(a.cache_creation);
            d.spend.push(a.spend);
            d.requests.push(a.requests);
            d.ok.push(a.ok);
            d.failed.push(a.failed);
            d.ms.push(a.ms);
        }
        d
    }
}

/// Everything one batch adds.
#[derive(Debug, Default)]
pub struct Rollup {
    pub keys: Sums,
    pub users: Sums,
    pub teams: Sums,
    pub orgs: Sums,
    pub members: MemberSums,
    pub end_users: Sums,
    pub tags: Sums,
    pub agents: Sums,
    pub daily_users: Daily,
    pub daily_teams: Daily,
    pub daily_orgs: Daily,
    pub daily_end_users: Daily,
    pub daily_tags: Daily,
    pub daily_agents: Daily,
}

/// `YYYY-MM-DD` of a UTC day number (days since 1970-01-01).
fn day_string(day: i64) -> String {
    let mut s = crate::util::clock::fmt_utc(day as f64 * 86_400.0);
    s.truncate(10);
    s
}

impl Rollup {
    pub fn of<'a>(batch: &'a [SpendRow]) -> Self {
        let mut keys = FastMap::default();
        let mut users = FastMap::default();
        let mut teams = FastMap::default();
        let mut orgs = FastMap::default();
        let mut members: FastMap<(&str, &str), f64> = FastMap::default();
        let mut end_users = FastMap::default();
        let mut tags = FastMap::default();
        let mut agents = FastMap::default();
        let (mut du, mut dt, mut dorg, mut de, mut dtag) = Default::default();
        let mut dagent = FastMap::default();
        let mut combos = Combos::default();
        for r in batch {
            let day = (r.start_time / 86_400.0).floor() as i64;
            let combo = combos.of(day, r);
            let paid = r.spend > 0.0;
            let add = |m: &mut FastMap<&'a str, f64>, id: &'a str| {
                *m.entry(id).or_insert(0.0) += r.spend;
            };
            if paid && !r.api_key().is_empty() {
                add(&mut keys, r.api_key());
            }
            if let Some(u) = r.user_id() {
                if paid {
                    add(&mut users, u);
                }
                add_day(&mut du, u, combo, r);
            }
            if let Some(t) = r.team_id() {
                if paid {
                    add(&mut teams, t);
                    if let Some(u) = r.user_id() {
                        *members.entry((t, u)).or_insert(0.0) += r.spend;
                    }
                }
                add_day(&mut dt, t, combo, r);
            }
            if let Some(o) = r.organization_id() {
                if paid {
                    add(&mut orgs, o);
                }
                add_day(&mut dorg, o, combo, r);
            }
            if let Some(e) = r.end_user() {
                add(&mut end_users, e);
                add_day(&mut de, e, combo, r);
            }
            for t in &r.request_tags {
                add(&mut tags, t);
                add_day(&mut dtag, t, combo, r);
            }
            if let Some(a) = r.agent_id.as_deref() {
                if paid {
                    add(&mut agents, a);
                }
                add_day(&mut dagent, a, combo, r);
            }
        }
        let mut m = MemberSums::default();
        for ((t, u), a) in members {
            m.teams.push(t.to_string());
            m.users.push(u.to_string());
            m.amounts.push(a);
        }
        Rollup {
            keys: Sums::from_map(keys),
            users: Sums::from_map(users),
            teams: Sums::from_map(teams),
            orgs: Sums::from_map(orgs),
            members: m,
            end_users: Sums::from_map(end_users),
            tags: Sums::from_map(tags),
            agents: Sums::from_map(agents),
            daily_users: Daily::from_map(du, &combos),
            daily_teams: Daily::from_map(dt, &combos),
            daily_orgs: Daily::from_map(dorg, &combos),
            daily_end_users: Daily::from_map(de, &combos),
            daily_tags: Daily::from_map(dtag, &combos),
            daily_agents: Daily::from_map(dagent, &combos),
        }
    }
}

impl Rollup {
    /// What the batch charged each budget account (for the ledger once it is stored): the
    /// paid sums of keys, teams, memberships, users, organisations and end users.
    pub fn charged(self) -> Vec<(Account, f64)> {
        let paid = |s: Sums, account: fn(String) -> Account| {
            s.ids
                .into_iter()
                .zip(s.amounts)
                .filter(|(_, a)| *a > 0.0)
                .map(move |(id, a)| (account(id), a))
        };
        let m = self.members;
        let members = (m.teams.into_iter().zip(m.users).zip(m.amounts))
            .filter(|(_, a)| *a > 0.0)
            .map(|((team_id, user_id), a)| (Account::Member { team_id, user_id }, a));
        paid(self.keys, Account::Key)
            .chain(paid(self.teams, Account::Team))
            .chain(members)
            .chain(paid(self.users, Account::User))
            .chain(paid(self.orgs, Account::Org))
            .chain(paid(self.end_users, Account::EndUser))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_entities_and_days() {
        let key = std::sync::Arc::new(crate::auth::KeyRecord {
            token: "k".into(),
            user_id: Some("u".into()),
            team_id: Some("t".into()),
            ..Default::default()
        });
        let row = |spend: f64, status: &'static str| SpendRow {
            caller: crate::spend::record::Caller::Key(key.clone(), None),
            spend,
            prompt_tokens: 10,
            start_time: 1_764_500_000.0,
            request_tags: vec!["a".into(), "b".into()],
            status,
            endpoint: "/v1/chat/completions",
            ..SpendRow::default()
        };
        let r = Rollup::of(&[
            row(1.0, "success"),
            row(0.5, "success"),
            row(0.0, "failure"),
        ]);
        assert_eq!(r.keys.ids, ["k"]);
        assert_eq!(r.keys.amounts, [1.5]);
        assert_eq!(r.members.amounts, [1.5]);
        assert_eq!(r.tags.ids.len(), 2);
        assert_eq!(r.daily_teams.day, ["2025-11-30"]);
        assert_eq!(r.daily_teams.requests, [3]);
        assert_eq!(r.daily_teams.failed, [1]);
        assert!(r.agents.ids.is_empty() && r.daily_agents.entity.is_empty());
        let agent = SpendRow {
            agent_id: Some("ag".into()),
            ..row(2.0, "success")
        };
        let a = Rollup::of(&[agent]);
        assert_eq!(
            (a.agents.ids.as_slice(), a.agents.amounts.as_slice()),
            (&["ag".to_string()][..], &[2.0][..])
        );
        assert_eq!(a.daily_agents.model, [""]);
        assert_eq!(a.daily_agents.provider, ["a2a_agent"]);
        assert_eq!(r.daily_teams.prompt, [30]);
        assert_eq!(r.daily_tags.entity.len(), 2);
        assert!(r.orgs.ids.is_empty());
        assert_eq!(
            r.charged(),
            [
                (Account::Key("k".into()), 1.5),
                (Account::Team("t".into()), 1.5),
                (
                    Account::Member {
                        team_id: "t".into(),
                        user_id: "u".into()
                    },
                    1.5
                ),
                (Account::User("u".into()), 1.5),
            ]
        );
    }
}
