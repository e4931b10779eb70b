//! Live spend of every budgeted entity, for budget checks that do not wait for the spend writer.
//!
//! An account starts from the spend in the entity's cached record plus whatever this instance
//! has spent on it that the writer has not stored yet. Each admitted request reserves its
//! worst-case cost on all its budgeted accounts at once; a request is refused when spend plus
//! the reservations already held reaches the budget. When the request ends, its reservation is
//! replaced by its real cost. So a burst of concurrent requests overspends by at most one
//! request's cost. A governance change to an entity (a spend reset, say) re-reads its spend.

use crate::util::FastMap;
use std::sync::Mutex;

use crate::auth::Changed;
pub use crate::auth::budget::{Account, Line};

#[derive(Debug, Default)]
struct State {
    /// Spend as last known; `None` until read from a record (again).
    spend: Option<f64>,
    reserved: f64,
    /// Spent here and not yet stored by the writer.
    unflushed: f64,
    /// Spent here and not yet added to the shared Redis total.
    unsynced: f64,
}

/// A budget was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Exceeded {
    pub index: usize,
    pub current: f64,
    pub max_budget: f64,
}

/// Held by an admitted request until it ends.
#[derive(Debug, Default)]
pub struct Reservation {
    accounts: Vec<Account>,
    amount: f64,
}

impl Reservation {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct Ledger {
    accounts: Mutex<FastMap<Account, State>>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, FastMap<Account, State>> {
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admit a request subject to `lines`, reserving `worst_case` on each; all or nothing.
    pub fn admit(
        &self,
        lines: Vec<Line>,
        worst_case: f64,
    ) -> Result<Reservation, (Exceeded, Vec<Line>)> {
        if lines.is_empty() {
            return Ok(Reservation::default());
        }
        let amount = worst_case.max(0.0);
        let mut map = self.lock();
        // each account looked up once: reserved as it is checked, the reservations undone if a
        // later line refuses
        for (index, line) in lines.iter().enumerate() {
            let st = match map.get_mut(&line.account) {
                Some(st) => st,
                None => map.entry(line.account.clone()).or_default(),
            };
            let spend = *st.spend.get_or_insert(line.recorded + st.unflushed);
            if line.max_budget >= 0.0 && spend + st.reserved >= line.max_budget {
                for before in &lines[..index] {
                    if let Some(st) = map.get_mut(&before.account) {
                        st.reserved = (st.reserved - amount).max(0.0);
                    }
                }
                drop(map);
                let e = Exceeded {
                    index,
                    current: spend,
                    max_budget: line.max_budget,
                };
                return Err((e, lines));
            }
            st.reserved += amount;
        }
        Ok(Reservation {
            accounts: lines.into_iter().map(|l| l.account).collect(),
            amount,
        })
    }

    /// The request ended having cost `cost`: release its reservation, book the cost.
    pub fn settle(&self, r: Reservation, cost: f64) {
        if r.accounts.is_empty() {
            return;
        }
        let mut map = self.lock();
        for a in r.accounts {
            let st = match map.get_mut(&a) {
                Some(st) => st,
                None => map.entry(a).or_default(),
            };
            st.reserved = (st.reserved - r.amount).max(0.0);
            if let Some(s) = st.spend.as_mut() {
                *s += cost;
            }
            st.unflushed += cost;
            st.unsynced += cost;
        }
    }

    /// The writer stored `cost` for these accounts.
    pub fn flushed(&self, items: impl IntoIterator<Item = (Account, f64)>) {
        let mut map = self.lock();
        for (a, cost) in items {
            if let Some(st) = map.get_mut(&a) {
                st.unflushed = (st.unflushed - cost).max(0.0);
            }
        }
    }

    /// Spend of these entities changed in the database: read it again from their records.
    pub fn forget(&self, changed: &[Changed]) {
        let mut map = self.lock();
        for c in changed {
            match c {
                Changed::All => map.values_mut().for_each(|s| s.spend = None),
                Changed::Models
                | Changed::Agents
                | Changed::McpServers
                | Changed::Skills
                | Changed::Prompts
                | Changed::VectorStore(_)
                | Changed::RouterSettings
                | Changed::CacheEntries(_)
                | Changed::CacheAll => {}
                c => {
                    if let Some(s) = Account::of(c).and_then(|a| map.get_mut(&a)) {
                        s.spend = None;
                    }
                }
            }
        }
        map.retain(|_, s| s.spend.is_some() || s.reserved > 0.0 || s.unflushed > 0.0);
    }

    /// What to send to the shared totals: per known account, the spend it had before this
    /// instance's unsent costs (to start a missing total from) and those costs.
    pub fn to_sync(&self) -> Vec<(Account, f64, f64)> {
        self.lock()
            .iter()
            .filter_map(|(a, s)| s.spend.map(|sp| (a.clone(), sp - s.unsynced, s.unsynced)))
            .collect()
    }

    /// The shared totals after adding what [`Ledger::to_sync`] sent (`sent`): they become the
    /// accounts' spend, plus what was booked here meanwhile.
    pub fn synced(&self, results: impl IntoIterator<Item = (Account, f64, f64)>) {
        let mut map = self.lock();
        for (a, sent, total) in results {
            if let Some(st) = map.get_mut(&a) {
                st.unsynced = (st.unsynced - sent).max(0.0);
                if st.spend.is_some() {
                    st.spend = Some(total + st.unsynced);
                }
            }
        }
    }

    /// These accounts' spend was reset: costs booked before it are not added to the shared
    /// totals any more.
    pub fn drop_unsynced(&self, accounts: &[Account]) {
        let mut map = self.lock();
        for a in accounts {
            if let Some(st) = map.get_mut(a) {
                st.unsynced = 0.0;
            }
        }
    }

    /// Current spend and reservations of `a` (tests, reports).
    pub fn get(&self, a: &Account) -> Option<(f64, f64)> {
        self.lock()
            .get(a)
            .map(|s| (s.spend.unwrap_or(0.0), s.reserved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(max: f64, recorded: f64) -> Line {
        Line {
            account: Account::Key("k".into()),
            max_budget: max,
            recorded,
        }
    }

    #[test]
    fn a_burst_overspends_by_at_most_one_request() {
        let l = Ledger::default();
        let lines = [key(2.5, 0.0)];
        let held: Vec<_> = (0..20)
            .filter_map(|_| l.admit(lines.to_vec(), 1.0).ok())
            .collect();
        assert_eq!(held.len(), 3);
        for r in held {
            l.settle(r, 1.0);
        }
        assert_eq!(l.get(&Account::Key("k".into())), Some((3.0, 0.0)));
        let (e, _) = l.admit(lines.to_vec(), 1.0).unwrap_err();
        assert_eq!((e.index, e.current, e.max_budget), (0, 3.0, 2.5));
    }

    #[test]
    fn all_or_nothing_across_accounts() {
        let l = Ledger::default();
        let team = Line {
            account: Account::Team("t".into()),
            max_budget: 1.0,
            recorded: 1.0,
        };
        let (e, _) = l.admit(vec![key(10.0, 0.0), team], 0.5).unwrap_err();
        assert_eq!(e.index, 1);
        assert_eq!(l.get(&Account::Key("k".into())), Some((0.0, 0.0)));
    }

    #[test]
    fn a_reset_rereads_the_record_plus_unflushed_spend() {
        let l = Ledger::default();
        let r = l.admit(vec![key(10.0, 4.0)], 1.0).unwrap();
        l.settle(r, 0.75);
        assert_eq!(l.get(&Account::Key("k".into())), Some((4.75, 0.0)));
        // the spend was reset in the database before the writer stored the 0.75
        l.forget(&[Changed::Key("k".into())]);
        let r = l.admit(vec![key(10.0, 0.0)], 0.0).unwrap();
        assert_eq!(l.get(&Account::Key("k".into())), Some((0.75, 0.0)));
        l.settle(r, 0.0);
        l.flushed([(Account::Key("k".into()), 0.75)]);
        l.forget(&[Changed::All]);
        l.admit(vec![key(10.0, 0.75)], 0.0).unwrap();
        assert_eq!(l.get(&Account::Key("k".into())), Some((0.75, 0.0)));
    }
}
