//! An in-process coordination engine with the semantics of an etcd lease: a replica's
//! membership and its unit leases expire together, `ttl` after its last heartbeat, on the
//! engine's (tokio) clock. For tests of the coordinator (paused time, partitions).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::{Backend, CoordError, Member};

#[derive(Debug, Default)]
struct State {
    /// Replica -> when its lease expires, its revision and its pruning count.
    members: BTreeMap<String, (Instant, String, Option<u64>)>,
    /// Unit -> holder.
    units: BTreeMap<String, String>,
    unreachable: BTreeSet<String>,
    /// Every successful acquisition, in order: (unit, replica, time).
    pub grants: Vec<(String, String, Instant)>,
}

impl State {
    fn expire(&mut self, now: Instant) {
        let dead: Vec<String> = self.members.iter().filter(|(_, (t, ..))| *t <= now).map(|(m, _)| m.clone()).collect();
        for m in dead {
            self.members.remove(&m);
            self.units.retain(|_, h| *h != m);
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct MemoryEngine {
    state: Arc<Mutex<State>>,
}

impl MemoryEngine {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn backend(&self, replica: &str, ttl: Duration) -> MemoryBackend {
        MemoryBackend { engine: self.clone(), replica: replica.to_string(), ttl }
    }

    /// Cuts a replica off the engine (its requests fail) or reconnects it.
    pub fn set_reachable(&self, replica: &str, reachable: bool) {
        let mut s = self.state.lock().unwrap();
        if reachable {
            s.unreachable.remove(replica);
        } else {
            s.unreachable.insert(replica.to_string());
        }
    }

    /// Current holders, after expiry.
    pub fn holders(&self) -> BTreeMap<String, String> {
        let mut s = self.state.lock().unwrap();
        s.expire(Instant::now());
        s.units.clone()
    }

    /// Every acquisition so far: (unit, replica, when).
    pub fn grants(&self) -> Vec<(String, String, Instant)> {
        self.state.lock().unwrap().grants.clone()
    }
}

pub struct MemoryBackend {
    engine: MemoryEngine,
    replica: String,
    ttl: Duration,
}

impl MemoryBackend {
    fn with<T>(&self, f: impl FnOnce(&mut State, Instant) -> T) -> Result<T, CoordError> {
        let mut s = self.engine.state.lock().unwrap();
        if s.unreachable.contains(&self.replica) {
            return Err(CoordError::Unavailable(format!("{} cannot reach the engine", self.replica)));
        }
        let now = Instant::now();
        s.expire(now);
        Ok(f(&mut s, now))
    }
}

impl Backend for MemoryBackend {
    fn describe(&self) -> String {
        "memory".into()
    }

    async fn heartbeat(&self, revision: &str, pruning: Option<u64>) -> Result<Vec<Member>, CoordError> {
        let ttl = self.ttl;
        self.with(|s, now| {
            s.members.insert(self.replica.clone(), (now + ttl, revision.to_string(), pruning));
            s.members
                .iter()
                .map(|(m, (_, r, p))| Member { replica: m.clone(), revision: r.clone(), pruning: *p })
                .collect()
        })
    }

    async fn holders(&self) -> Result<BTreeMap<String, String>, CoordError> {
        self.with(|s, _| s.units.clone())
    }

    async fn acquire(&self, unit: &str) -> Result<Option<Instant>, CoordError> {
        let sent = Instant::now();
        self.with(|s, now| {
            // Like an etcd key on the replica's lease: only a live member can hold a unit.
            if !s.members.contains_key(&self.replica) {
                return None;
            }
            match s.units.get(unit) {
                Some(h) if *h == self.replica => {
                    // The proof is the member's last heartbeat: the lease runs ttl from it.
                    let expires = s.members[&self.replica].0;
                    Some(sent.min(expires - self.ttl))
                }
                Some(_) => None,
                None => {
                    s.units.insert(unit.to_string(), self.replica.clone());
                    s.grants.push((unit.to_string(), self.replica.clone(), now));
                    Some(sent.min(s.members[&self.replica].0 - self.ttl))
                }
            }
        })
    }

    async fn release(&self, unit: &str) -> Result<(), CoordError> {
        self.with(|s, _| {
            if s.units.get(unit) == Some(&self.replica) {
                s.units.remove(unit);
            }
        })
    }

    async fn resign(&self) -> Result<(), CoordError> {
        self.with(|s, _| {
            s.members.remove(&self.replica);
            s.units.retain(|_, h| *h != self.replica);
        })
    }
}
