//! The state file a run leaves behind: where the tuning ended, by name.
//!
//! **Seam:** this is the CLI's own summary of the engine's state. When the
//! core crate's state export/restore lands, [`write`] is the one function to
//! switch over to it.

use crate::config::ParamSpec;
use crate::output::OutputFile;
use crate::CliError;
use hotpath::{AdaptiveEngine, EngineStats, ExecutorStats, SpsaCheckpoint};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The file name used inside an output directory.
pub const FILE_NAME: &str = "state.json";

/// Values keyed by parameter name, in index order.
struct Named<'a> {
    params: &'a [ParamSpec],
    values: &'a [f64],
}

impl Serialize for Named<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.params.len()))?;
        for (p, v) in self.params.iter().zip(self.values) {
            map.serialize_entry(&p.name, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct State<'a> {
    format: &'static str,
    /// The live configuration.
    params: Named<'a>,
    generation: u64,
    /// The committed centre (equal to `params` unless a probe is live).
    centre: Named<'a>,
    centre_generation: u64,
    baseline: Option<Named<'a>>,
    safe_mode: Vec<String>,
    spsa: SpsaCheckpoint,
    engine_stats: EngineStats,
    executor_stats: ExecutorStats,
}

/// Writes the engine's state to `path` (atomically).
pub fn write<C: hotpath::Clock>(
    path: &Path,
    params: &[ParamSpec],
    engine: &AdaptiveEngine<C>,
) -> Result<PathBuf, CliError> {
    let executor = engine.executor();
    let live = executor.snapshot();
    let baseline = executor.baseline().map(|b| b.snapshot.params.clone());
    let state = State {
        format: "hotpath-cli/state/v0",
        params: Named {
            params,
            values: &live.params,
        },
        generation: live.generation,
        centre: Named {
            params,
            values: executor.centre(),
        },
        centre_generation: executor.centre_generation(),
        baseline: baseline.as_deref().map(|values| Named { params, values }),
        safe_mode: executor
            .control_safety()
            .reasons()
            .iter()
            .map(|r| r.to_string())
            .collect(),
        spsa: engine.spsa().checkpoint(),
        engine_stats: engine.stats(),
        executor_stats: executor.stats(),
    };
    let mut out = OutputFile::create(path)?;
    let json = serde_json::to_vec_pretty(&state).map_err(|e| CliError::write(path, e.into()))?;
    out.write_all(&json)?;
    out.write_all(b"\n")?;
    out.commit()
}
