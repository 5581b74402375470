//! The fleet's whole history as etcd kept it (every revision since the
//! start: the test's etcd never compacts), and the checks on it.

use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use serde_json::Value;

/// One publication: the `state` key written at `revision`.
#[derive(Debug, Clone)]
pub struct Publication {
    pub revision: i64,
    pub generation: u64,
    pub term: i64,
    pub instance: String,
    /// The audit chain head it names: (seq, hash).
    pub head: Option<(u64, String)>,
    pub safe_mode: Vec<String>,
}

/// A leader key's life: created at `term`, deleted at `ended` (if it was).
#[derive(Debug, Clone)]
pub struct Term {
    pub term: i64,
    pub instance: String,
    pub ended: Option<i64>,
}

#[derive(Debug, Default)]
pub struct History {
    /// Every write of the `state` key (a new configuration, or new audit
    /// events under the same one).
    pub publications: Vec<Publication>,
    /// Every write of the `config` key: (revision, generation).
    pub configs: Vec<(i64, u64)>,
    pub terms: Vec<Term>,
}

/// Reads every event of the fleet's keys, in revision order.
pub fn read(url: &str, fleet: &str) -> History {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut client = Client::connect([url], None).await.expect("etcd");
        let prefix = format!("/hotpath/fleet/{fleet}/");
        let now = client
            .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
            .await
            .expect("get")
            .header()
            .map_or(0, |h| h.revision());
        let options = WatchOptions::new().with_prefix().with_start_revision(1);
        let mut stream = client
            .watch(prefix.as_str(), Some(options))
            .await
            .expect("watch");
        let mut history = History::default();
        let mut seen = 0;
        while seen < now {
            let response =
                tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
                    .await
                    .expect("history in time")
                    .expect("watch")
                    .expect("more history");
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                seen = seen.max(kv.mod_revision());
                let key = kv.key_str().unwrap_or("");
                match (key.rsplit('/').next(), event.event_type()) {
                    (Some("leader"), EventType::Put)
                        if kv.create_revision() == kv.mod_revision() =>
                    {
                        let record: Value =
                            serde_json::from_slice(kv.value()).expect("leader json");
                        history.terms.push(Term {
                            term: kv.create_revision(),
                            instance: record["instance"].as_str().unwrap_or("").to_string(),
                            ended: None,
                        });
                    }
                    (Some("leader"), EventType::Delete) => {
                        if let Some(term) =
                            history.terms.iter_mut().rev().find(|t| t.ended.is_none())
                        {
                            term.ended = Some(kv.mod_revision());
                        }
                    }
                    (Some("config"), EventType::Put) => {
                        let config: Value =
                            serde_json::from_slice(kv.value()).expect("config json");
                        history.configs.push((
                            kv.mod_revision(),
                            config["generation"].as_u64().expect("generation"),
                        ));
                    }
                    (Some("state"), EventType::Put) => {
                        let record: Value = serde_json::from_slice(kv.value()).expect("state json");
                        let checkpoint = &record["state"]["checkpoint"];
                        let head = checkpoint["seq"].as_u64().map(|seq| {
                            (seq, checkpoint["hash"].as_str().unwrap_or("").to_string())
                        });
                        let safe_mode = record["state"]["executor"]["safe_mode"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|l| l["reason"].as_str().map(String::from))
                                    .collect()
                            })
                            .unwrap_or_default();
                        history.publications.push(Publication {
                            revision: kv.mod_revision(),
                            generation: record["generation"].as_u64().expect("generation"),
                            term: record["term"].as_i64().expect("term"),
                            instance: record["instance"].as_str().unwrap_or("").to_string(),
                            head,
                            safe_mode,
                        });
                    }
                    _ => {}
                }
            }
        }
        history
    })
}

impl History {
    /// Some term ended with `reason` latched and the next term's first
    /// publication still has it latched.
    pub fn latch_survived(&self, reason: &str) -> bool {
        self.publications.windows(2).any(|pair| {
            pair[0].term != pair[1].term
                && pair[0].safe_mode.iter().any(|r| r == reason)
                && pair[1].safe_mode.iter().any(|r| r == reason)
        })
    }

    /// Generations strictly increase across every configuration published;
    /// every state publication is of the configuration published with or
    /// before it; each was made by the leader of the moment (its term's
    /// key existed, not yet deleted): none by a deposed leader.
    pub fn check(&self) {
        for pair in self.configs.windows(2) {
            assert!(
                pair[1].1 > pair[0].1,
                "the published generation went from {} (rev {}) to {} (rev {})",
                pair[0].1,
                pair[0].0,
                pair[1].1,
                pair[1].0
            );
        }
        for p in &self.publications {
            let config = self
                .configs
                .iter()
                .rev()
                .find(|(rev, _)| *rev <= p.revision);
            assert_eq!(
                config.map(|c| c.1),
                Some(p.generation),
                "rev {}: a state of another generation than the config",
                p.revision
            );
        }
        for p in &self.publications {
            let term = self
                .terms
                .iter()
                .find(|t| t.term == p.term)
                .unwrap_or_else(|| {
                    panic!(
                        "publication at rev {} names term {} that never was",
                        p.revision, p.term
                    )
                });
            assert_eq!(
                term.instance, p.instance,
                "rev {}: published by another than its term's leader",
                p.revision
            );
            assert!(
                p.revision > term.term,
                "rev {}: before its term",
                p.revision
            );
            assert!(
                term.ended.is_none_or(|end| p.revision < end),
                "rev {}: published by {} after its term {} ended at rev {:?}",
                p.revision,
                p.instance,
                p.term,
                term.ended
            );
        }
    }
}
