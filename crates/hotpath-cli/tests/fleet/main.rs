//! Fleet mode end to end: one real etcd (Debian's `etcd-server`), three
//! `hotpath serve --fleet` processes and replica processes on loopback.
//!
//! * `twenty_leader_kills_under_load`: the leader SIGKILLed 20 times at
//!   random points (`HOTPATH_FLEET_KILLS`, `HOTPATH_FLEET_SEED`) while
//!   replicas read and report through every instance; after each: one
//!   leader, within the lease TTL + 1 s; the killed instance rejoins as a
//!   standby; a frozen fleet stays frozen across a failover. At the end:
//!   generations strictly increase across every publication etcd
//!   recorded, none was made outside its leader's term, the fleet's audit
//!   chain verifies gap-free through every published head, no replica
//!   ever read a generation going backwards. Prints the failover times and
//!   the publish-to-visible latency on a standby (BENCHMARKS.md).
//! * `etcd_outage_halts_adaptation_and_reads_go_on`: etcd stopped shorter
//!   and longer than the lease, under load.
//! * `secured::…`: etcd with a user and password, and with mutual TLS.

#[path = "../serve/http.rs"]
#[allow(dead_code)]
mod http;

mod cluster;
mod etcd;
mod history;
mod secured;

use cluster::{eventually, percentile, Cluster, FLEET};
use etcd::Etcd;
use hotpath_testkit::{env_u64, Rng};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn reasons(status: &Value) -> Vec<String> {
    status["safe_mode"]["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["reason"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The fleet's audit log verifies as one gap-free chain and every head a
/// publication named is on it.
fn check_audit(cluster: &Cluster, publications: &[history::Publication]) {
    let dirs: Vec<_> = cluster
        .audit_dirs()
        .into_iter()
        .filter(|d| d.is_dir())
        .collect();
    let report = hotpath_durable::verify_fleet(&dirs).expect("the fleet's chain verifies");
    let chain = &report.chain;
    assert_eq!(chain.first_seq, Some(0));
    assert_eq!(
        chain.last_seq.map(|s| s + 1),
        Some(chain.events),
        "gap-free"
    );
    let mut lines: HashMap<(u64, String), std::path::PathBuf> = HashMap::new();
    for dir in &dirs {
        for entry in std::fs::read_dir(dir).expect("dir").flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "jsonl") {
                for line in std::fs::read_to_string(&path).expect("log").lines() {
                    let v: Value = serde_json::from_str(line).expect("json line");
                    let key = (
                        v["seq"].as_u64().expect("seq"),
                        v["hash"].as_str().expect("hash").to_string(),
                    );
                    lines.insert(key, path.clone());
                }
            }
        }
    }
    for p in publications {
        let Some((seq, hash)) = &p.head else { continue };
        let file = lines
            .get(&(*seq, hash.clone()))
            .unwrap_or_else(|| panic!("published head seq {seq} is in no log file"));
        let abandoned = report
            .abandoned
            .iter()
            .any(|t| &t.file == file && (t.first_seq..=t.last_seq).contains(seq));
        assert!(
            !abandoned,
            "published head seq {seq} is in an abandoned tail"
        );
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotpath"))
        .args(["audit", "verify"])
        .args(cluster.instances.iter().map(|i| &i.data))
        .output()
        .expect("hotpath audit verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(": OK: "),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", text.lines().next().unwrap_or(""));
}

#[test]
fn twenty_leader_kills_under_load() {
    let kills = env_u64("HOTPATH_FLEET_KILLS", 20);
    let mut rng = Rng(env_u64("HOTPATH_FLEET_SEED", 15));
    let etcd = Etcd::start();
    let mut cluster = Cluster::start(&etcd.url(), 3, 2);
    let ttl = Duration::from_secs(cluster.ttl_s);
    let (leader, _) = cluster
        .wait_leader(None, Duration::from_secs(15))
        .expect("a first leader");
    cluster.start_replicas(3);
    let standby = (leader + 1) % 3;
    let latency = cluster.standby_latency_ms(leader, standby, Duration::from_secs(8));
    assert!(
        latency.len() >= 10,
        "the fleet published too little to measure: {latency:?}"
    );

    let mut failovers = Vec::new();
    let mut frozen_failovers = 0;
    for k in 0..kills {
        let (leader, status) = cluster
            .wait_leader(None, ttl * 2 + Duration::from_secs(5))
            .unwrap_or_else(|| panic!("kill {k}: no single leader"));
        std::thread::sleep(Duration::from_millis(rng.range(200, 1500)));
        let freeze = k % 7 == 3;
        if freeze {
            let via = (leader + 1) % 3;
            let reply = cluster.operate(via, "/v1/freeze");
            assert_eq!(
                reply.status,
                200,
                "freeze through a standby: {}",
                reply.text()
            );
            assert_eq!(
                reply.header("x-hotpath-leader"),
                Some(cluster.instances[leader].addr.as_str())
            );
            eventually(Duration::from_secs(5), "the freeze published", || {
                cluster
                    .status(via)
                    .is_some_and(|s| reasons(&s).contains(&"Manual".to_string()))
            });
        }
        let before = cluster
            .status(leader)
            .and_then(|s| s["fleet"]["published_generation"].as_u64())
            .or(status["fleet"]["published_generation"].as_u64());
        let killed_at = Instant::now();
        cluster.kill(leader);
        let (new_leader, status) = cluster
            .wait_leader(before, ttl * 2 + Duration::from_secs(5))
            .unwrap_or_else(|| panic!("kill {k}: no new leader"));
        let took = killed_at.elapsed();
        failovers.push(took.as_secs_f64());
        assert_ne!(new_leader, leader);
        assert!(
            took <= ttl + Duration::from_millis(1500),
            "kill {k}: failover took {took:?}"
        );
        if freeze {
            assert!(
                reasons(&status).contains(&"Manual".to_string()),
                "kill {k}: the freeze did not survive: {status}"
            );
            frozen_failovers += 1;
            let reply = cluster.operate(new_leader, "/v1/resume");
            assert_eq!(reply.status, 200, "{}", reply.text());
        }
        cluster.spawn(leader);
        eventually(
            Duration::from_secs(10),
            "the restarted instance a standby",
            || {
                cluster.status(leader).is_some_and(|s| {
                    s["fleet"]["role"] == "standby"
                        && s["fleet"]["leader"]["instance"]
                            == cluster.instances[new_leader].name.as_str()
                })
            },
        );
        println!(
            "kill {k}: {} -> {} in {:.3} s",
            cluster.instances[leader].name,
            cluster.instances[new_leader].name,
            took.as_secs_f64()
        );
    }
    assert!(
        kills <= 3 || frozen_failovers > 0,
        "no failover of a frozen fleet"
    );
    let summaries = cluster.stop_replicas();
    for s in &summaries {
        assert_eq!(
            s["backwards"], 0,
            "a replica saw a generation go backwards: {s}"
        );
        assert!(
            s["reads"].as_u64().unwrap_or(0) > 100 && s["reports"].as_u64().unwrap_or(0) > 100,
            "{s}"
        );
    }
    for i in 0..3 {
        let code = cluster.stop(i);
        assert!(
            code.is_some_and(|c| c.success()),
            "instance {i} stopped with {code:?}"
        );
    }
    let history = history::read(&etcd.url(), FLEET);
    history.check();
    assert!(
        history.terms.len() as u64 > kills,
        "{} terms",
        history.terms.len()
    );
    assert!(
        kills < 4 || history.latch_survived("Manual"),
        "no publication shows the freeze carried into a new term"
    );
    check_audit(&cluster, &history.publications);

    let mut sorted = failovers.clone();
    sorted.sort_by(f64::total_cmp);
    if !sorted.is_empty() {
        println!(
            "failover over {} kills (lease TTL {} s): median {:.3} s, max {:.3} s",
            sorted.len(),
            cluster.ttl_s,
            percentile(&sorted, 0.5),
            sorted[sorted.len() - 1]
        );
    }
    println!(
        "publish-to-visible on a standby over {} generations: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latency.len(),
        percentile(&latency, 0.5),
        percentile(&latency, 0.99),
        latency[latency.len() - 1]
    );
    println!(
        "{} publications in {} terms; replicas: {}",
        history.publications.len(),
        history.terms.len(),
        summaries
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// Every instance answers `GET /v1/config` with 200; the highest
/// generation seen.
fn read_all(cluster: &Cluster) -> u64 {
    (0..3)
        .map(|i| {
            let r = cluster.get(i, "/v1/config").expect("a read answers");
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["generation"].as_u64().expect("generation")
        })
        .max()
        .unwrap_or(0)
}

/// Every read of every instance answers `frozen` for `span` (`also`
/// called between reads): nothing is published without etcd.
fn unchanged_for(cluster: &Cluster, frozen: u64, span: Duration, mut also: impl FnMut()) {
    let end = Instant::now() + span;
    while Instant::now() < end {
        also();
        assert_eq!(
            read_all(cluster),
            frozen,
            "a generation was published without etcd"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn etcd_outage_halts_adaptation_and_reads_go_on() {
    let mut etcd = Etcd::start();
    let mut cluster = Cluster::start(&etcd.url(), 3, 6);
    let (leader, status) = cluster
        .wait_leader(None, Duration::from_secs(15))
        .expect("a leader");
    cluster.start_replicas(2);
    let start = status["generation"].as_u64().unwrap_or(0);
    eventually(
        Duration::from_secs(20),
        "adaptation before the outage",
        || read_all(&cluster) >= start + 3,
    );

    // Shorter than the lease: the leader keeps it, stops adapting
    // (CoordinatorLost) and resumes once it publishes again.
    etcd.stop();
    let frozen = read_all(&cluster);
    let mut latched = false;
    unchanged_for(&cluster, frozen, Duration::from_millis(1500), || {
        latched |= cluster
            .status(leader)
            .is_some_and(|s| reasons(&s).contains(&"CoordinatorLost".to_string()));
    });
    assert!(latched, "the leader did not latch CoordinatorLost");
    etcd.restart();
    eventually(
        Duration::from_secs(15),
        "the same leader adapting again",
        || {
            let status = cluster.status(leader).expect("status");
            status["fleet"]["role"] == "leader"
                && !reasons(&status).contains(&"CoordinatorLost".to_string())
                && read_all(&cluster) > frozen
        },
    );
    println!("short outage: the same leader resumed");

    // Longer than the lease: the leader steps down on its own clock; after
    // etcd returns a leader is elected again and adaptation resumes.
    etcd.stop();
    let frozen = read_all(&cluster);
    unchanged_for(
        &cluster,
        frozen,
        Duration::from_secs(cluster.ttl_s + 2),
        || {},
    );
    let stepped_down = (0..3).all(|i| {
        cluster
            .status(i)
            .is_some_and(|s| s["fleet"]["role"] == "standby")
    });
    assert!(
        stepped_down,
        "a leader kept leading past its lease without etcd"
    );
    etcd.restart();
    cluster
        .wait_leader(Some(frozen), Duration::from_secs(cluster.ttl_s * 2 + 10))
        .expect("a leader after the outage");
    eventually(
        Duration::from_secs(20),
        "adaptation after a long outage",
        || read_all(&cluster) >= frozen + 2,
    );
    println!("long outage: a leader elected again, adaptation resumed");

    let summaries = cluster.stop_replicas();
    for s in &summaries {
        assert_eq!(s["backwards"], 0, "{s}");
        assert_eq!(s["read_errors"], 0, "a read failed during the outage: {s}");
    }
    for i in 0..3 {
        cluster.stop(i);
    }
    let history = history::read(&etcd.url(), FLEET);
    history.check();
    check_audit(&cluster, &history.publications);
}

/// The value of the unlabelled metric `name` on instance `i`.
fn metric(cluster: &Cluster, i: usize, name: &str) -> Option<f64> {
    http::metric(&cluster.get(i, "/metrics")?.text(), name)
}

#[test]
fn a_standby_relays_the_leaders_feed_and_trail_and_its_metrics_follow_a_failover() {
    let etcd = Etcd::start();
    let mut cluster = Cluster::start(&etcd.url(), 2, 2);
    let (leader, _) = cluster
        .wait_leader(None, Duration::from_secs(15))
        .expect("a first leader");
    let standby = 1 - leader;
    eventually(Duration::from_secs(5), "the fleet's gauges", || {
        metric(&cluster, leader, "hotpath_fleet_leader") == Some(1.0)
            && metric(&cluster, standby, "hotpath_fleet_leader") == Some(0.0)
    });
    for i in [leader, standby] {
        assert_eq!(
            metric(&cluster, i, "hotpath_fleet_coordinator_connected"),
            Some(1.0)
        );
    }
    let changes = metric(&cluster, standby, "hotpath_fleet_role_changes_total")
        .expect("the standby's role changes");
    let mut feed = http::Watch::open_path(&cluster.instances[standby].addr, "/v1/events", None);
    assert_eq!(feed.status, 200);
    assert_eq!(
        feed.header("x-hotpath-leader"),
        Some(cluster.instances[leader].addr.as_str()),
        "the relayed feed names its leader"
    );
    let frozen = cluster.operate(standby, "/v1/freeze");
    assert_eq!(frozen.status, 200, "{}", frozen.text());
    feed.wait_for(
        "audit",
        "\"type\":\"safe-mode-entered\"",
        Duration::from_secs(5),
    );
    // The standby's audit trail is the leader's, from the fleet's start.
    let trail = cluster.get(standby, "/v1/audit?limit=1000").expect("audit");
    assert_eq!(trail.status, 200, "{}", trail.text());
    assert_eq!(
        trail.header("x-hotpath-leader"),
        Some(cluster.instances[leader].addr.as_str())
    );
    let types: Vec<String> = trail.json()["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str().map(String::from))
        .collect();
    assert_eq!(
        types.first().map(String::as_str),
        Some("started"),
        "{types:?}"
    );
    assert!(types.iter().any(|t| t == "safe-mode-entered"), "{types:?}");

    cluster.kill(leader);
    let deadline = Instant::now() + Duration::from_secs(10);
    while feed
        .next_event(deadline.saturating_duration_since(Instant::now()))
        .is_some()
    {}
    assert!(
        Instant::now() < deadline,
        "the relayed feed outlived its leader by 10 s"
    );
    let (new_leader, _) = cluster
        .wait_leader(None, Duration::from_secs(15))
        .expect("the standby leads");
    assert_eq!(new_leader, standby);
    eventually(Duration::from_secs(5), "the new leader's gauges", || {
        metric(&cluster, standby, "hotpath_fleet_leader") == Some(1.0)
    });
    assert_eq!(
        metric(&cluster, standby, "hotpath_fleet_role_changes_total"),
        Some(changes + 1.0)
    );
    let own = http::Watch::open_path(&cluster.instances[standby].addr, "/v1/events", None);
    assert_eq!(own.status, 200);
    assert_eq!(
        own.header("x-hotpath-leader"),
        None,
        "a leader streams its own feed"
    );
}
