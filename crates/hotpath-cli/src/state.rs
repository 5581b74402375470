//! The state file a run leaves behind: `hotpath_durable`'s
//! `GovernedState` (format `hotpath-state/2`, a checkpoint of the run's
//! audit log: it names the last event it covers), holding the executor's
//! exported state (live parameters and generation, centre, baseline,
//! safe-mode latches, rate/flip/budget windows, rollback counters, the next
//! audit seq) and the engine's (SPSA iteration, RNG position, calibrated
//! gains), written atomically by a `StateStore` (temporary file, fsync,
//! rename, directory fsync).
//!
//! Parameters are stored by index, in the order of the config's
//! `[[param]]` tables. The [`hotpath_host::Host`] saves and restores it
//! (the demo with `--resume`), as the root README's "Durability" section
//! shows for any service.

/// The file name used inside an output directory.
pub const FILE_NAME: &str = hotpath_host::STATE_FILE;
