//! [`EventType`]: the kind of an audit event, every kind listed once
//! ([`EventType::ALL`]), with the kebab-case names filters take and parse.

#[cfg(doc)]
use super::AuditEvent;
use serde::{Deserialize, Serialize};

/// The kind of an [`AuditEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventType {
    /// The executor took charge of the configuration.
    Started,
    /// The executor took charge again from a persisted state.
    Restored,
    /// A proposal changed the live configuration.
    Applied,
    /// A request was refused.
    Rejected,
    /// The baseline was restored.
    RolledBack,
    /// A baseline was recorded.
    BaselineSet,
    /// An outcome (objective) report was judged.
    Outcome,
    /// Safe mode latched for a reason.
    SafeModeEntered,
    /// A safe-mode reason exited by itself.
    SafeModeExited,
    /// An operator resumed from safe mode.
    Resumed,
    /// Events could not be recorded.
    EventsDropped,
    /// A decision of the adaptive engine.
    Engine,
}

impl EventType {
    /// Every event type, in declaration order: what a filter (`hotpath
    /// audit show --type`) offers, so a new type is never unfilterable.
    ///
    /// ```
    /// use hotpath::EventType;
    ///
    /// assert_eq!(EventType::ALL.len(), 12);
    /// assert_eq!(EventType::ALL[0], EventType::Started);
    /// ```
    pub const ALL: [EventType; 12] = [
        EventType::Started,
        EventType::Restored,
        EventType::Applied,
        EventType::Rejected,
        EventType::RolledBack,
        EventType::BaselineSet,
        EventType::Outcome,
        EventType::SafeModeEntered,
        EventType::SafeModeExited,
        EventType::Resumed,
        EventType::EventsDropped,
        EventType::Engine,
    ];

    /// The type's name in kebab case (`rolled-back`), as filters take it.
    /// (The log's `"type"` field is the serde name, `RolledBack`.)
    ///
    /// ```
    /// use hotpath::EventType;
    ///
    /// assert_eq!(EventType::SafeModeEntered.name(), "safe-mode-entered");
    /// assert_eq!(EventType::RolledBack.to_string(), "rolled-back");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            EventType::Started => "started",
            EventType::Restored => "restored",
            EventType::Applied => "applied",
            EventType::Rejected => "rejected",
            EventType::RolledBack => "rolled-back",
            EventType::BaselineSet => "baseline-set",
            EventType::Outcome => "outcome",
            EventType::SafeModeEntered => "safe-mode-entered",
            EventType::SafeModeExited => "safe-mode-exited",
            EventType::Resumed => "resumed",
            EventType::EventsDropped => "events-dropped",
            EventType::Engine => "engine",
        }
    }

    /// What an event of this type records, in a few words (for help
    /// texts).
    ///
    /// ```
    /// use hotpath::EventType;
    ///
    /// assert_eq!(EventType::Applied.description(), "A change was applied");
    /// ```
    pub fn description(self) -> &'static str {
        match self {
            EventType::Started => "The executor took charge",
            EventType::Restored => "The executor took charge again from a saved state",
            EventType::Applied => "A change was applied",
            EventType::Rejected => "A request was refused",
            EventType::RolledBack => "The baseline was restored",
            EventType::BaselineSet => "A baseline was recorded",
            EventType::Outcome => "An objective report was judged",
            EventType::SafeModeEntered => "Safe mode latched",
            EventType::SafeModeExited => "A safe-mode reason cleared by itself",
            EventType::Resumed => "An operator resumed",
            EventType::EventsDropped => "Events were dropped",
            EventType::Engine => "A decision of the adaptive engine",
        }
    }
}

impl std::fmt::Display for EventType {
    /// [`name`](EventType::name).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`EventType::ALL`]'s.
///
/// ```
/// use hotpath::EventType;
///
/// let e = "rolledback".parse::<EventType>().unwrap_err();
/// assert!(e.to_string().starts_with("unknown event type `rolledback`, expected one of started,"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{name}`, expected one of {}", EventType::ALL.map(EventType::name).join(", "))]
pub struct UnknownEventType {
    /// The name given.
    pub name: String,
}

impl std::str::FromStr for EventType {
    type Err = UnknownEventType;

    /// Parses a [`name`](EventType::name) (`rolled-back`).
    ///
    /// # Errors
    ///
    /// [`UnknownEventType`] for any other string.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownEventType { name: s.to_owned() })
    }
}
