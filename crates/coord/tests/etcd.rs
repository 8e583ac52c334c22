//! The etcd backend against a real etcd (Debian's etcd-server) on loopback.
#![cfg(feature = "etcd")]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crosslink_coord::etcd::EtcdBackend;
use crosslink_coord::{Backend, CoordError, Coordinator, Member, Ownership, Timing};
use crosslink_testkit::EtcdCluster;
use tokio_util::sync::CancellationToken;

fn fast() -> Timing {
    Timing {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    }
}

fn backend(endpoints: &[String], prefix: &str, replica: &str) -> EtcdBackend {
    EtcdBackend::new(endpoints, prefix, replica, fast()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_exclusive_renewable_and_expire_with_their_holder() {
    let etcd = EtcdCluster::start(1);
    let eps = etcd.endpoints();
    let a = backend(&eps, "/t1", "a");
    let b = backend(&eps, "/t1", "b");
    // Without membership nothing can be held.
    assert_eq!(a.acquire("gw1").await.unwrap(), None);
    let members = a.heartbeat("rev1", None).await.unwrap();
    assert_eq!(members, vec![Member { replica: "a".into(), revision: "rev1".into(), pruning: None }]);
    let members = b.heartbeat("rev2", None).await.unwrap();
    assert_eq!(
        members.into_iter().map(|m| (m.replica, m.revision)).collect::<BTreeSet<_>>(),
        BTreeSet::from([("a".into(), "rev1".into()), ("b".into(), "rev2".into())]),
        "each member with the revision it runs"
    );

    assert!(a.acquire("gw1").await.unwrap().is_some(), "free unit taken");
    assert!(a.acquire("gw1").await.unwrap().is_some(), "renewal by the holder");
    assert_eq!(b.acquire("gw1").await.unwrap(), None, "held by a");
    assert_eq!(a.holders().await.unwrap(), BTreeMap::from([("gw1".to_string(), "a".to_string())]));

    // Release hands it over at once; a release by a non-holder does nothing.
    b.release("gw1").await.unwrap();
    assert_eq!(a.holders().await.unwrap().get("gw1").map(String::as_str), Some("a"));
    a.release("gw1").await.unwrap();
    assert!(b.acquire("gw1").await.unwrap().is_some());

    // a takes gw2, then stops renewing (as if killed): etcd expires its lease after the TTL.
    assert!(a.acquire("gw2").await.unwrap().is_some());
    let stopped = tokio::time::Instant::now();
    let mut taken = None;
    while stopped.elapsed() < Duration::from_secs(10) {
        b.heartbeat("rev1", None).await.unwrap();
        if b.acquire("gw2").await.unwrap().is_some() {
            taken = Some(stopped.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let taken = taken.expect("b took gw2 after a's lease expired");
    assert!(taken >= Duration::from_secs(2), "taken after {taken:?}: before a's TTL could run out");
    let members = b.heartbeat("rev1", None).await.unwrap();
    assert_eq!(members.len(), 1, "a's membership expired with its lease: {members:?}");
    assert_eq!(members[0].replica, "b");

    // a comes back: its old lease is gone, it registers anew and holds nothing.
    a.heartbeat("rev1", None).await.unwrap();
    assert_eq!(a.acquire("gw2").await.unwrap(), None);
    // Resigning revokes b's lease: its units are free at once.
    b.resign().await.unwrap();
    assert!(a.holders().await.unwrap().is_empty());
    assert!(a.acquire("gw2").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_etcd_is_an_error_not_a_hang() {
    let port = crosslink_testkit::free_port().unwrap();
    let b = backend(&[format!("http://127.0.0.1:{port}")], "/t2", "a");
    let started = std::time::Instant::now();
    let e = b.heartbeat("rev1", None).await.unwrap_err();
    assert!(matches!(e, CoordError::Unavailable(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(EtcdBackend::new(&["https://x:2379".into()], "/p", "a", fast()).is_err());
    assert!(EtcdBackend::new(&[], "/p", "a", fast()).is_err());
}

type Running = (Ownership, CancellationToken, tokio::task::JoinHandle<()>);

/// No unit owned twice; returns the units owned.
fn check(rs: &[Running]) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for (o, _, _) in rs {
        for u in o.owned().unwrap() {
            assert!(all.insert(u.clone()), "unit {u} owned twice");
        }
    }
    all
}

/// Three coordinators over a three-member cluster: units are split without overlap; killing
/// the member every replica talks to first does not cost any unit; a replica's death moves its
/// units once its lease has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_survive_an_etcd_member_and_a_replica_dying() {
    let mut etcd = EtcdCluster::start(3);
    let eps = etcd.endpoints();
    let units: BTreeMap<String, Vec<String>> = (0..9).map(|i| (format!("gw{i}"), vec![format!("gw{i}")])).collect();
    let mut replicas: Vec<Running> = Vec::new();
    for name in ["r0", "r1", "r2"] {
        let own = Ownership::sharded(name, "etcd", fast());
        own.set_units(units.clone(), "rev1");
        let c = Coordinator::new(backend(&eps, "/t3", name), own.clone(), name, fast());
        let stop = CancellationToken::new();
        let task = tokio::spawn(c.run(stop.clone(), Duration::from_secs(2)));
        replicas.push((own, stop, task));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    // Settled: every unit owned, each by the replica rendezvous hashing prefers (the first
    // replica to register takes everything, then hands units over as the others join).
    let settled = |rs: &[Running]| {
        check(rs).len() == 9
            && rs.iter().all(|(o, _, _)| {
                let st = o.status().unwrap();
                st.members.len() == 3 && st.units.iter().all(|u| u.holder.is_some() && u.holder == u.preferred)
            })
    };
    while !settled(&replicas) {
        assert!(tokio::time::Instant::now() < deadline, "units not all owned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Member 0 (every replica's first endpoint) dies: the others keep quorum.
    etcd.kill(0);
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = check(&replicas).len();
        if n != 9 {
            let st: Vec<_> = replicas.iter().map(|(o, _, _)| o.status()).collect();
            panic!("a unit was lost while an etcd member was down: {st:#?}");
        }
    }
    for (o, _, _) in &replicas {
        let st = o.status().unwrap();
        assert_eq!(st.members.len(), 3, "{st:?}");
    }
    // Replica r2 dies without resigning.
    let (r2, _, task) = replicas.pop().unwrap();
    let lost = r2.owned().unwrap();
    task.abort();
    let died = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if check(&replicas).len() == 9 {
            break;
        }
        assert!(died.elapsed() < Duration::from_secs(10), "r2's units {lost:?} not taken over");
    }
    let took = died.elapsed();
    if !lost.is_empty() {
        assert!(took >= Duration::from_secs(2), "taken over {took:?} after the death, within r2's lease");
    }
    for (_, stop, _) in &replicas {
        stop.cancel();
    }
    for (_, _, task) in replicas {
        task.await.unwrap();
    }
}
