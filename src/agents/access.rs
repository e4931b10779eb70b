//! Who may call which agent (LiteLLM's `AgentRequestHandler`): a key's grants are its object
//! permission's `agents`, the agents of its `agent_access_groups` and those of its
//! `access_group_ids`; a team's likewise. A holder with none of these is unrestricted. Key and
//! team are intersected (one unrestricted: the other's set). With no restriction at all every
//! agent is allowed, unless `general_settings.agent_access_default_deny` (then none). Proxy
//! admins are unrestricted.

use std::collections::HashSet;

use super::Agents;
use crate::auth::Principal;
use crate::auth::records::ObjectPermission;

/// The agents a caller may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    All,
    /// These agent ids only.
    Only(HashSet<String>),
}

impl Allowed {
    pub fn permits(&self, agent_id: &str) -> bool {
        match self {
            Allowed::All => true,
            Allowed::Only(ids) => ids.contains(agent_id),
        }
    }
}

/// What one key or team grants: agent ids (or names) and access groups.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grants<'a> {
    pub agents: &'a [String],
    pub agent_access_groups: &'a [String],
    pub access_group_ids: &'a [String],
}

impl<'a> Grants<'a> {
    pub fn of(op: Option<&'a ObjectPermission>, access_group_ids: Option<&'a Vec<String>>) -> Self {
        let list = |v: Option<&'a Vec<String>>| v.map_or(&[][..], Vec::as_slice);
        Self {
            agents: list(op.and_then(|p| p.agents.as_ref())),
            agent_access_groups: list(op.and_then(|p| p.agent_access_groups.as_ref())),
            access_group_ids: list(access_group_ids),
        }
    }

    /// The agent ids granted; `None`: unrestricted (nothing granted explicitly).
    fn resolve(&self, agents: &Agents) -> Option<HashSet<String>> {
        if self.agents.is_empty()
            && self.agent_access_groups.is_empty()
            && self.access_group_ids.is_empty()
        {
            return None;
        }
        let in_group =
            |g: &String| self.agent_access_groups.contains(g) || self.access_group_ids.contains(g);
        let ids = agents
            .iter()
            .filter(|a| {
                self.agents.contains(&a.id)
                    || self.agents.contains(&a.name)
                    || a.groups.iter().any(in_group)
            })
            .map(|a| a.id.clone())
            .collect();
        Some(ids)
    }
}

/// Key and team grants combined: `None` is unrestricted.
fn intersect(
    key: Option<HashSet<String>>,
    team: Option<HashSet<String>>,
) -> Option<HashSet<String>> {
    match (key, team) {
        (None, t) => t,
        (k, None) => k,
        (Some(k), Some(t)) => Some(k.intersection(&t).cloned().collect()),
    }
}

/// The agents a key with `key` grants (and its team's `team`) may use.
pub fn decide(
    key: Grants<'_>,
    team: Option<Grants<'_>>,
    agents: &Agents,
    default_deny: bool,
) -> Allowed {
    let team = team.and_then(|t| t.resolve(agents));
    match intersect(key.resolve(agents), team) {
        Some(ids) => Allowed::Only(ids),
        None if default_deny => Allowed::Only(HashSet::new()),
        None => Allowed::All,
    }
}

/// The agents `principal` may use.
pub fn allowed(principal: &Principal, agents: &Agents, default_deny: bool) -> Allowed {
    let Some(k) = principal.key().filter(|_| !principal.is_admin()) else {
        return Allowed::All;
    };
    let key = Grants::of(
        k.key.object_permission.as_ref(),
        k.key.access_group_ids.as_ref(),
    );
    let team = k
        .team
        .as_deref()
        .map(|t| Grants::of(t.object_permission.as_ref(), t.access_group_ids.as_ref()));
    decide(key, team, agents, default_deny)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::Agent;
    use serde_json::json;

    fn agents() -> Agents {
        let a = |id: &str, groups: &[&str]| {
            Agent::from_row(json!({"agent_id": id, "agent_name": format!("n-{id}"), "agent_access_groups": groups}))
                .unwrap()
        };
        Agents::new(vec![a("a1", &["g1"]), a("a2", &["g2"]), a("a3", &[])])
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn only(ids: &[&str]) -> Allowed {
        Allowed::Only(ids.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn nothing_granted_is_everything_unless_default_deny() {
        let ags = agents();
        let none = Grants::default();
        assert_eq!(decide(none, Some(none), &ags, false), Allowed::All);
        assert_eq!(decide(none, None, &ags, true), only(&[]));
    }

    #[test]
    fn key_only_team_only_and_both() {
        let ags = agents();
        let (k, t) = (v(&["a1", "a3"]), v(&["a1", "n-a2"]));
        let key = Grants {
            agents: &k,
            ..Default::default()
        };
        let team = Grants {
            agents: &t,
            ..Default::default()
        };
        assert_eq!(decide(key, None, &ags, false), only(&["a1", "a3"]));
        assert_eq!(
            decide(key, Some(Grants::default()), &ags, true),
            only(&["a1", "a3"])
        );
        // names count as well as ids
        assert_eq!(
            decide(Grants::default(), Some(team), &ags, false),
            only(&["a1", "a2"])
        );
        assert_eq!(decide(key, Some(team), &ags, false), only(&["a1"]));
    }

    #[test]
    fn access_groups_grant_their_agents() {
        let ags = agents();
        let (g1, g2) = (v(&["g1"]), v(&["g2"]));
        let by_group = Grants {
            agent_access_groups: &g1,
            ..Default::default()
        };
        assert_eq!(decide(by_group, None, &ags, false), only(&["a1"]));
        let by_ids = Grants {
            access_group_ids: &g2,
            ..Default::default()
        };
        assert_eq!(decide(by_ids, None, &ags, false), only(&["a2"]));
        // disjoint key and team: nothing
        assert_eq!(decide(by_group, Some(by_ids), &ags, false), only(&[]));
    }

    #[test]
    fn admins_are_unrestricted() {
        assert_eq!(allowed(&Principal::Master, &agents(), true), Allowed::All);
    }
}
