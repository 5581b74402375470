//! The fleet's keys in etcd and what they hold.

use hotpath_durable::state::GovernedState;
use serde::{Deserialize, Serialize};

/// The keys of fleet `name`.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) prefix: String,
    pub(crate) leader: String,
    pub(crate) config: String,
    pub(crate) state: String,
}

impl Keys {
    pub(crate) fn new(name: &str) -> Self {
        let prefix = format!("/hotpath/fleet/{name}/");
        Self {
            leader: format!("{prefix}leader"),
            config: format!("{prefix}config"),
            state: format!("{prefix}state"),
            prefix,
        }
    }
}

/// What the `leader` key holds.
///
/// ```
/// let r = hotpath_fleet::LeaderRecord { instance: "a".into(), address: "127.0.0.1:7071".into() };
/// let json = serde_json::to_string(&r)?;
/// assert_eq!(serde_json::from_str::<hotpath_fleet::LeaderRecord>(&json)?, r);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderRecord {
    /// The leader's instance name.
    pub instance: String,
    /// Where it serves HTTP.
    pub address: String,
}

/// What the `state` key holds: one publication.
///
/// ```
/// # use hotpath_fleet::StateRecord;
/// fn head(r: &StateRecord) -> Option<u64> { r.state.checkpoint.map(|c| c.seq) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRecord {
    /// The generation published.
    pub generation: u64,
    /// `{"generation": N, "values": {…}}`, as the `config` key holds it.
    pub config: String,
    /// The instance that published it.
    pub instance: String,
    /// Its term (its `leader` key's `create_revision`).
    pub term: i64,
    /// The governed state, a checkpoint of the publisher's log.
    pub state: GovernedState,
}

/// The generation in a `config` value, if it holds one.
pub(crate) fn config_generation(json: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Head {
        generation: u64,
    }
    serde_json::from_str::<Head>(json)
        .ok()
        .map(|h| h.generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_under_the_fleets_prefix() {
        let keys = Keys::new("checkout");
        assert_eq!(keys.prefix, "/hotpath/fleet/checkout/");
        for key in [&keys.leader, &keys.config, &keys.state] {
            assert!(key.starts_with(&keys.prefix));
        }
    }

    #[test]
    fn a_configs_generation_is_read_and_anything_else_is_none() {
        assert_eq!(
            config_generation(r#"{"generation":7,"values":{"a":1}}"#),
            Some(7)
        );
        assert_eq!(config_generation(r#"{"values":{}}"#), None);
        assert_eq!(config_generation("not json"), None);
        assert_eq!(config_generation(r#"{"generation":-1}"#), None);
    }
}
