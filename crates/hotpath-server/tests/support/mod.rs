//! What the server's integration tests share.

use hotpath::{AdaptiveEngineConfig, ParamSpace};
use hotpath_host::{Host, HostOptions};
use hotpath_server::{Control, ControlOptions};
use std::sync::Arc;

/// A control thread over an in-memory host on the system clock.
pub fn control(
    space: ParamSpace,
    settings: AdaptiveEngineConfig,
    options: ControlOptions,
) -> Control {
    let host = Host::open(
        Arc::new(space),
        settings,
        HostOptions::in_memory(),
        hotpath::SystemClock::new(),
    )
    .expect("host");
    Control::start(host, options).expect("control")
}
