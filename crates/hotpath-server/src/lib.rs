//! hotpath-server (docs to come)
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod control;
pub mod http;
mod limits;
mod metrics;
mod names;
mod run;
mod serve;
mod status;
mod token;
pub mod window;

pub use audit::{AuditPage, EventView, AUDIT_RING_CAPACITY, MAX_AUDIT_PAGE};
pub use control::{
    default_window, Action, ConfigEvent, Control, ControlError, ControlHandle, ControlOptions,
    IngestCounts, OperatorReply,
};
pub use limits::Limits;
pub use metrics::Metrics;
pub use run::{ServeOptions, ServeReport, Server, ServerError, DEFAULT_LISTEN};
pub use serve::{serve, Served};
pub use status::{
    AuditStatus, BaselineView, Counts, EngineView, ReasonView, SafeModeView, Status,
    TelemetryCounts,
};
pub use token::{Token, TokenError, MIN_TOKEN_LEN, TOKEN_FILE};
pub use window::WindowView;
