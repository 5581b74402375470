//! Fleet mode's costs, measured on loopback with a real etcd and three
//! `hotpath serve --fleet` processes (bounded: about a minute).
//!
//! `cargo bench -p hotpath-cli --bench fleet` prints, each against its
//! baseline measured in the same run:
//!
//! * telemetry ingest (NDJSON batches of 200 digests, one client) sent
//!   through a standby, which forwards it, against sent to the leader;
//! * `GET /v1/config` on a standby and on the leader (each read confirmed
//!   by a linearizable etcd read), against `GET /healthz` on the same
//!   instance (no etcd read);
//! * publish-to-visible on a standby: for each generation both watch
//!   streams deliver, the standby's receipt minus the leader's.
//!
//! Failover times are measured by the 20-kill test (`tests/fleet`).

#[path = "../tests/serve/http.rs"]
#[allow(dead_code)]
mod http;

#[path = "../tests/fleet/cluster.rs"]
#[allow(dead_code)]
mod cluster;
#[path = "../tests/fleet/etcd.rs"]
#[allow(dead_code)]
mod etcd;

use std::time::{Duration, Instant};

fn ingest(cluster: &cluster::Cluster, i: usize, batches: usize) -> f64 {
    let mut body = String::new();
    for d in 0..200 {
        body.push_str(&format!(
            "{{\"objective\":{},\"samples\":10,\"instance\":\"bench\"}}\n",
            1.0 + f64::from(d % 7) / 10.0
        ));
    }
    let addr = &cluster.instances[i].addr;
    let start = Instant::now();
    for _ in 0..batches {
        let r = http::post(
            addr,
            "/v1/telemetry",
            &cluster.token,
            "application/x-ndjson",
            body.as_bytes(),
        );
        assert_eq!(r.status, 202, "{}", r.text());
    }
    (batches * 200) as f64 / start.elapsed().as_secs_f64()
}

fn reads(cluster: &cluster::Cluster, i: usize, path: &str, n: usize) -> f64 {
    let addr = &cluster.instances[i].addr;
    let start = Instant::now();
    for _ in 0..n {
        assert_eq!(http::get(addr, path).status, 200);
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let etcd = etcd::Etcd::start();
    let mut cluster = cluster::Cluster::start(&etcd.url(), 3, 2);
    let (leader, _) = cluster
        .wait_leader(None, Duration::from_secs(15))
        .expect("a leader");
    let standby = (leader + 1) % 3;

    let direct = ingest(&cluster, leader, 300);
    let forwarded = ingest(&cluster, standby, 300);
    println!("ingest, NDJSON x200: leader {direct:.0} digests/s, through a standby {forwarded:.0} digests/s ({:.2}x)", forwarded / direct);

    for (name, i) in [("standby", standby), ("leader", leader)] {
        let config = reads(&cluster, i, "/v1/config", 2000);
        let health = reads(&cluster, i, "/healthz", 2000);
        println!(
            "GET /v1/config on the {name}: {config:.0}/s, /healthz {health:.0}/s ({:.2}x)",
            config / health
        );
    }

    cluster.start_replicas(3);
    let d = cluster.standby_latency_ms(leader, standby, Duration::from_secs(30));
    assert!(!d.is_empty(), "nothing published");
    println!(
        "publish-to-visible on a standby over {} generations: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        d.len(),
        cluster::percentile(&d, 0.5),
        cluster::percentile(&d, 0.99),
        d[d.len() - 1]
    );
    cluster.stop_replicas();
}
