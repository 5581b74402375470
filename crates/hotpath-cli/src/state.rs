//! The state file a run leaves behind: `hotpath_durable`'s
//! [`GovernedState`] (format `hotpath-state/1`), holding the executor's
//! exported state (live parameters and generation, centre, baseline,
//! safe-mode latches, rate/flip/budget windows, rollback counters, the next
//! audit seq) and the engine's (SPSA iteration, RNG position, calibrated
//! gains), written atomically by a [`StateStore`] (temporary file, fsync,
//! rename, directory fsync).
//!
//! Parameters are stored by index, in the order of the config's
//! `[[param]]` tables. The demo restores it with `--resume`; a service
//! embedding `hotpath` restores it as the root README's "Durability"
//! section shows.

use crate::CliError;
use hotpath::{AdaptiveEngine, Clock};
use hotpath_durable::state::{GovernedState, StateStore};
use std::path::PathBuf;

/// The file name used inside an output directory.
pub const FILE_NAME: &str = "state.json";

/// The governed state of `engine` and its executor, now.
pub fn governed<C: Clock>(engine: &mut AdaptiveEngine<C>) -> GovernedState {
    let engine_state = engine.export_state();
    GovernedState::new(engine.executor_mut().export_state(), Some(engine_state))
}

/// Saves `engine`'s state through `store` now; returns the file's path.
pub fn save<C: Clock>(
    store: &mut StateStore,
    engine: &mut AdaptiveEngine<C>,
) -> Result<PathBuf, CliError> {
    store.save(&governed(engine))?;
    Ok(store.path().to_path_buf())
}

/// Saves `engine`'s state through `store` if it changed and the store's
/// interval has passed on the executor's clock; returns whether it saved.
pub fn save_if_due<C: Clock>(
    store: &mut StateStore,
    engine: &mut AdaptiveEngine<C>,
) -> Result<bool, CliError> {
    let now_us = engine.executor_mut().now_us();
    Ok(store.save_if_due(now_us, &governed(engine))?)
}
