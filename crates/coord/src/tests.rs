//! The coordinator against the in-memory engine, under paused time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::memory::MemoryEngine;

fn timing() -> Timing {
    Timing {
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    }
}

fn units(n: usize) -> BTreeMap<String, Vec<String>> {
    (0..n).map(|i| (format!("gw{i:02}"), vec![format!("gw{i:02}")])).collect()
}

struct Replica {
    ownership: Ownership,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(engine: &MemoryEngine, name: &str, units: &BTreeMap<String, Vec<String>>) -> Replica {
    let t = timing();
    let ownership = Ownership::sharded(name, "memory", t);
    ownership.set_units(units.clone(), "rev1");
    let c = Coordinator::new(engine.backend(name, t.lease_duration), ownership.clone(), name, t);
    let stop = CancellationToken::new();
    let task = tokio::spawn(c.run(stop.clone(), Duration::from_secs(5)));
    Replica { ownership, stop, task }
}

fn owned(r: &Replica) -> BTreeSet<String> {
    r.ownership.owned().unwrap()
}

/// No unit is owned (by the replicas' own fences) by two replicas.
fn assert_disjoint(rs: &[&Replica]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in rs.iter().enumerate() {
        for u in owned(r) {
            if let Some(j) = seen.insert(u.clone(), i) {
                panic!("unit {u} owned by replicas {j} and {i} at once");
            }
        }
    }
}

#[test]
fn timing_rules() {
    assert!(Timing::default().check().is_ok());
    let t = Timing { renew_deadline: Duration::from_secs(15), ..Timing::default() };
    assert!(t.check().unwrap_err().contains("margin"));
    let t = Timing { retry_period: Duration::from_secs(6), ..Timing::default() };
    assert!(t.check().unwrap_err().contains("two chances"));
}

#[test]
fn rendezvous_moves_only_what_it_must() {
    let three: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let four: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let us: Vec<String> = (0..1000).map(|i| format!("unit-{i}")).collect();
    let mut moved = 0;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &us {
        let before = preferred(u, &three).unwrap();
        let after = preferred(u, &four).unwrap();
        *counts.entry(after).or_default() += 1;
        if before != after {
            // Every unit that moves, moves to the new replica.
            assert_eq!(after, "d");
            moved += 1;
        }
    }
    // About a quarter moves; the spread is even.
    assert!((180..=320).contains(&moved), "{moved} of 1000 moved");
    for (m, n) in counts {
        assert!((180..=320).contains(&n), "{m} got {n}");
    }
    assert_eq!(preferred("x", &[]), None);
}

#[tokio::test(start_paused = true)]
async fn three_replicas_split_the_units_and_a_dead_ones_units_move_after_the_lease() {
    let engine = MemoryEngine::new();
    let us = units(12);
    let a = start(&engine, "a", &us);
    let b = start(&engine, "b", &us);
    let c = start(&engine, "c", &us);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_disjoint(&[&a, &b, &c]);
    }
    let all: BTreeSet<String> = us.keys().cloned().collect();
    let union: BTreeSet<String> = owned(&a).into_iter().chain(owned(&b)).chain(owned(&c)).collect();
    assert_eq!(union, all, "every unit has an owner");
    for r in [&a, &b, &c] {
        assert!(!owned(r).is_empty(), "each replica has work");
    }
    // Each unit sits where rendezvous hashing puts it.
    let members = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    for u in owned(&a) {
        assert_eq!(preferred(&u, &members), Some("a"));
    }

    // c dies without resigning (kill -9): its task stops, its lease is not renewed.
    let c_units = owned(&c);
    assert!(!c_units.is_empty());
    c.task.abort();
    let died = Instant::now();
    let mut taken_at = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_disjoint(&[&a, &b]);
        let ab: BTreeSet<String> = owned(&a).into_iter().chain(owned(&b)).collect();
        if ab == all {
            taken_at = Some(Instant::now());
            break;
        }
    }
    let took = taken_at.expect("c's units were taken over").duration_since(died);
    // Not before the lease ran out, and within a lease plus two retry periods.
    assert!(took >= Duration::from_secs(13), "taken over after {took:?}, before c's lease could expire");
    assert!(took <= Duration::from_secs(15 + 4 + 1), "taken over only after {took:?}");
    a.stop.cancel();
    b.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_replica_cut_off_from_the_engine_stops_mutating_before_anyone_takes_over() {
    let engine = MemoryEngine::new();
    let us = units(6);
    let a = start(&engine, "a", &us);
    let b = start(&engine, "b", &us);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let a_units = owned(&a);
    assert!(!a_units.is_empty());
    let unit = a_units.iter().next().unwrap().clone();
    assert!(a.ownership.check(&unit).is_ok());

    engine.set_reachable("a", false);
    let cut = Instant::now();
    let mut stopped_at = None;
    let mut taken_at = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if stopped_at.is_none() && a.ownership.check(&unit).is_err() {
            stopped_at = Some(Instant::now());
        }
        if taken_at.is_none() && owned(&b).contains(&unit) {
            taken_at = Some(Instant::now());
        }
        // The fence of a and the ownership of b never overlap.
        assert!(!(a.ownership.check(&unit).is_ok() && owned(&b).contains(&unit)), "both replicas may change {unit}");
    }
    let stopped = stopped_at.expect("a stopped").duration_since(cut);
    let taken = taken_at.expect("b took over").duration_since(cut);
    assert!(stopped <= Duration::from_secs(10), "a kept mutating for {stopped:?}");
    assert!(taken >= stopped + Duration::from_secs(3), "b took over {taken:?} after the cut, a stopped at {stopped:?}");
    let msg = a.ownership.check(&unit).unwrap_err();
    assert!(msg.contains("does not hold") || msg.contains("not renewed"), "{msg}");
    // a comes back and gets its share again.
    engine.set_reachable("a", true);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!owned(&a).is_empty());
    assert_disjoint(&[&a, &b]);
    a.stop.cancel();
    b.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn joining_moves_a_bounded_share_and_handover_waits_for_calls_in_flight() {
    let engine = MemoryEngine::new();
    let us = units(30);
    let a = start(&engine, "a", &us);
    let b = start(&engine, "b", &us);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let before_a = owned(&a);
    let before_b = owned(&b);
    assert_eq!(before_a.len() + before_b.len(), 30);

    // A call is in flight on one of a's units that will move to c.
    let members3 = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let moving: Vec<String> = before_a.iter().filter(|u| preferred(u, &members3) == Some("c")).cloned().collect();
    let busy = moving.first().expect("some unit of a moves to c").clone();
    let guard = a.ownership.enter(&busy);
    let grants_before = engine.grants().len();

    let c = start(&engine, "c", &us);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_disjoint(&[&a, &b, &c]);
    }
    // The busy unit is no longer a's to change (draining), but its lease is not released yet.
    assert!(a.ownership.check(&busy).is_err());
    assert_eq!(engine.holders().get(&busy).map(String::as_str), Some("a"));
    assert!(!owned(&c).contains(&busy));
    drop(guard);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(owned(&c).contains(&busy), "released after the call returned, then taken");

    // Only units that c is preferred for moved; nothing moved between a and b.
    let after_a = owned(&a);
    let after_b = owned(&b);
    assert!(after_a.is_subset(&before_a));
    assert!(after_b.is_subset(&before_b));
    let moved = 30 - after_a.len() - after_b.len();
    assert_eq!(moved, owned(&c).len());
    assert!(moved <= 15, "{moved} of 30 units moved");
    // One acquisition per moved unit: no flapping.
    assert_eq!(engine.grants().len() - grants_before, moved);

    // Graceful stop: c's units go back at once, not after a lease.
    c.stop.cancel();
    c.task.await.unwrap();
    let stopped = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if owned(&a).len() + owned(&b).len() == 30 {
            break;
        }
        assert!(stopped.elapsed() < Duration::from_secs(8), "c's units not taken back promptly");
    }
    a.stop.cancel();
    b.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn units_that_leave_desired_state_are_released_and_solo_owns_everything() {
    let solo = Ownership::solo();
    assert!(solo.owned().is_none());
    assert!(solo.check("anything").is_ok());
    assert!(solo.status().is_none());

    let engine = MemoryEngine::new();
    let us = units(3);
    let a = start(&engine, "a", &us);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(owned(&a).len(), 3);
    let st = a.ownership.status().unwrap();
    assert_eq!(st.members, vec!["a".to_string()]);
    assert!(st.units.iter().all(|u| u.mine && u.holder.as_deref() == Some("a")));
    let mut fewer = us.clone();
    fewer.remove("gw00");
    a.ownership.set_units(fewer, "rev1");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(owned(&a).len(), 2);
    assert!(!engine.holders().contains_key("gw00"));
    a.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn units_move_only_between_replicas_on_the_same_revision() {
    let engine = MemoryEngine::new();
    let us = units(12);
    let b = start(&engine, "b", &us);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(owned(&b).len(), 12);
    // a joins with a newer revision: nothing moves to it yet, and both see the skew.
    let a = start(&engine, "a", &us);
    a.ownership.set_units(us.clone(), "rev2");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(owned(&a).is_empty(), "units moved to a replica on another revision: {:?}", owned(&a));
    assert_eq!(owned(&b).len(), 12);
    assert_eq!(b.ownership.skew(), vec!["a@rev2".to_string()]);
    assert_eq!(a.ownership.skew(), vec!["b@rev1".to_string()]);
    // b catches up: a gets its share, and the skew is gone.
    b.ownership.set_units(us.clone(), "rev2");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!owned(&a).is_empty());
    assert_eq!(owned(&a).len() + owned(&b).len(), 12);
    assert!(a.ownership.skew().is_empty() && b.ownership.skew().is_empty());
    let st = a.ownership.status().unwrap();
    assert_eq!(st.revisions.get("b").map(String::as_str), Some("rev2"));
    a.stop.cancel();
    b.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_prune_guard_counts_removals_across_replicas() {
    let engine = MemoryEngine::new();
    let us = units(4);
    let a = start(&engine, "a", &us);
    let b = start(&engine, "b", &us);
    tokio::time::sleep(Duration::from_secs(6)).await;
    // b has not planned this revision yet: a's removals wait.
    let e = a.ownership.pruning_total(3).unwrap_err();
    assert!(e.contains('b'), "{e}");
    b.ownership.set_pruning("rev1", 4);
    // Published with b's next heartbeat, seen at a's round after that.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(a.ownership.pruning_total(3), Ok(7));
    // A count for another revision does not count.
    b.ownership.set_units(us.clone(), "rev2");
    b.ownership.set_pruning("rev1", 0);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(a.ownership.pruning_total(3).is_err(), "{:?} {:?}", a.ownership.pruning_total(3), a.ownership.status());
    // Alone, a replica's own count is the total.
    assert_eq!(Ownership::solo().pruning_total(3), Ok(3));
    a.stop.cancel();
    b.stop.cancel();
}
