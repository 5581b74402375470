//! Type names of the library's enums, for labels and JSON: the variant's
//! name as the audit log spells it (`DeltaTooLarge`, `Manual`, …).

/// The name of `value`'s variant: its `Debug` text up to the first
/// character that cannot be in an identifier (`NoBaseline` for
/// `Violation::NoBaseline`, `DeltaTooLarge` for `DeltaTooLarge { .. }`).
pub(crate) fn type_name<T: std::fmt::Debug>(value: &T) -> String {
    let text = format!("{value:?}");
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::type_name;
    use hotpath::{SafeModeReason, Violation};

    #[test]
    fn names_are_the_variants() {
        assert_eq!(type_name(&Violation::NoBaseline), "NoBaseline");
        let v = Violation::DeltaTooLarge {
            index: 0,
            delta: 0.5,
            limit: 0.1,
        };
        assert_eq!(type_name(&v), "DeltaTooLarge");
        assert_eq!(type_name(&SafeModeReason::ClockFault), "ClockFault");
    }
}
