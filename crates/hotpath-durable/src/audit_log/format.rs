//! The line format: encoding a line, checking one, the hash chain and the
//! file names. The format itself is specified in the [module
//! docs](super#the-line-format).

use hotpath::{AuditEvent, EventType, MAX_AUDIT_SEQ, MAX_GENERATION};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What separates a line's hashed body from its hash.
const HASH_FIELD: &[u8] = b",\"hash\":\"";
/// Hex digits of a [`ChainHash`].
const HEX_LEN: usize = 64;
/// `,"hash":"` + 64 hex digits + `"}`: the part of a line (without its
/// newline) after the hashed body.
const SUFFIX_LEN: usize = HASH_FIELD.len() + HEX_LEN + 2;
/// Digits of the index in a file name.
const INDEX_DIGITS: usize = 10;
/// The largest file index that still has [`INDEX_DIGITS`] digits.
pub(crate) const MAX_FILE_INDEX: u64 = 9_999_999_999;

/// A SHA-256 hash in the chain: the hash of one line's body, which the next
/// line repeats as its `prev`. Displayed (and written) as 64 lowercase hex
/// digits.
///
/// ```
/// use hotpath_durable::audit_log::ChainHash;
///
/// assert_eq!(ChainHash::GENESIS.to_string(), "0".repeat(64));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash([u8; 32]);

impl ChainHash {
    /// The `prev` of the first line of a chain: 32 zero bytes.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// The hash of a line's body (SHA-256).
    pub(crate) fn of(body: &[u8]) -> Self {
        Self(Sha256::digest(body).into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 lowercase hex digits (the only spelling the log uses).
    fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != HEX_LEN {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Self(bytes))
    }

    fn write_hex(&self, out: &mut Vec<u8>) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for byte in self.0 {
            out.push(DIGITS[usize::from(byte >> 4)]);
            out.push(DIGITS[usize::from(byte & 0xf)]);
        }
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl Serialize for ChainHash {
    /// As 64 lowercase hex digits, the log's spelling.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChainHash {
    /// From 64 lowercase hex digits.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(deserializer)?;
        ChainHash::from_hex(&hex).ok_or_else(|| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Str(&hex),
                &"64 lowercase hex digits",
            )
        })
    }
}

/// One event of a log, named by its seq and its line's hash: what a state
/// file records as the last event it covers (see
/// [`GovernedState::checkpoint`](crate::state::GovernedState::checkpoint)).
///
/// ```
/// use hotpath_durable::audit_log::{ChainHash, LogHead};
///
/// let head = LogHead { seq: 41, hash: ChainHash::GENESIS };
/// let json = serde_json::to_string(&head)?;
/// assert_eq!(json, format!("{{\"seq\":41,\"hash\":\"{}\"}}", "0".repeat(64)));
/// assert_eq!(serde_json::from_str::<LogHead>(&json)?, head);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogHead {
    /// The event's seq.
    pub seq: u64,
    /// Its line's hash.
    pub hash: ChainHash,
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({self})")
    }
}

/// Why a line of the log is not a valid link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineDefect {
    /// The file ends inside this line (no newline): a write that a crash
    /// interrupted, or a cut.
    #[error("incomplete line: {bytes} bytes without a newline")]
    Incomplete {
        /// Bytes of the partial line.
        bytes: u64,
    },
    /// Not JSON at all: what a write cut short by a crash (or a block a
    /// power cut left unwritten) leaves, if a newline follows it.
    #[error("malformed line: not JSON: {reason}")]
    NotJson {
        /// What the JSON parser found.
        reason: String,
    },
    /// JSON, but not a line of this format: wrong or missing fields, not
    /// ending with the hash field, or an event that contradicts the line's
    /// `seq` or `type`.
    #[error("malformed line: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// The line's content does not hash to the hash it states: it was
    /// changed after it was written.
    #[error("hash mismatch: the line states {stated}, its content hashes to {computed}")]
    HashMismatch {
        /// The `hash` field.
        stated: ChainHash,
        /// SHA-256 of the line's body.
        computed: ChainHash,
    },
    /// The line's `seq`, or its event's generation, is beyond the ceiling
    /// an executor numbers to ([`hotpath::MAX_AUDIT_SEQ`],
    /// [`hotpath::MAX_GENERATION`], both 2⁶²): continuing such a log would
    /// wrap its numbering.
    #[error("{field} {value} is beyond the ceiling 2^62")]
    BeyondCeiling {
        /// `seq` or `generation`.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// The line's `prev` is not the hash of the line before it (or not the
    /// genesis hash on the first line): a line was removed, inserted or
    /// moved here.
    #[error("broken link: prev is {found}, but the previous line's hash is {expected}")]
    BrokenLink {
        /// The hash of the previous line (or the genesis hash).
        expected: ChainHash,
        /// The line's `prev` field.
        found: ChainHash,
    },
}

impl LineDefect {
    /// `true` for what an interrupted write leaves: a line without its
    /// newline ([`Incomplete`](Self::Incomplete)) or bytes that are not
    /// JSON ([`NotJson`](Self::NotJson)). Only such a final line is cut
    /// when a log is opened; a complete line that parses but does not
    /// verify (an edited line, a line out of the chain) was written whole
    /// and changed afterwards, which is refused like damage anywhere else.
    ///
    /// ```
    /// use hotpath_durable::audit_log::LineDefect;
    ///
    /// assert!(LineDefect::Incomplete { bytes: 12 }.is_torn_write());
    /// assert!(!LineDefect::Malformed { reason: "missing field `hash`".into() }.is_torn_write());
    /// ```
    pub fn is_torn_write(&self) -> bool {
        matches!(self, Self::Incomplete { .. } | Self::NotJson { .. })
    }
}

/// A line that passed every check that needs no other line (the link to
/// the previous line is the caller's to check).
#[derive(Debug)]
pub(crate) struct ParsedLine {
    pub(crate) seq: u64,
    /// The event's generation (at most [`MAX_GENERATION`]).
    pub(crate) generation: u64,
    pub(crate) event_type: EventType,
    pub(crate) prev: ChainHash,
    pub(crate) hash: ChainHash,
    pub(crate) event: serde_json::Value,
}

/// The fields of a line, exactly these and no others.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a JSON object with seq, type, prev, event and hash"
)]
struct RawLine {
    seq: u64,
    #[serde(rename = "type")]
    event_type: EventType,
    prev: String,
    event: serde_json::Value,
    hash: String,
}

/// The name written in a line's `type` field (the variant's name, as
/// serde also spells it).
fn type_name(event_type: EventType) -> String {
    format!("{event_type:?}")
}

/// Encodes `event` as one line (with its newline) chained to `prev`,
/// replacing the contents of `out`; returns the line's hash.
///
/// If serde cannot serialise the event (no event type of `hotpath` makes it
/// fail today), the line still records it: its `details` become
/// `{"<type>":{"unencodable":"<Debug text>","error":"<serde error>"}}`,
/// and the error is returned alongside so the caller can count it.
pub(crate) fn encode_line(
    event: &AuditEvent,
    prev: &ChainHash,
    out: &mut Vec<u8>,
) -> (ChainHash, Option<serde_json::Error>) {
    let event_type = type_name(event.event_type());
    out.clear();
    out.extend_from_slice(b"{\"seq\":");
    out.extend_from_slice(event.seq.to_string().as_bytes());
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(event_type.as_bytes());
    out.extend_from_slice(b"\",\"prev\":\"");
    prev.write_hex(out);
    out.extend_from_slice(b"\",\"event\":");
    let body_start = out.len();
    let error = serde_json::to_writer(&mut *out, event).err();
    if let Some(error) = &error {
        out.truncate(body_start);
        let substitute = serde_json::json!({
            "seq": event.seq,
            "timestamp_us": event.timestamp_us,
            "generation": event.generation,
            "details": {
                event_type.as_str(): {
                    "unencodable": format!("{:?}", event.details),
                    "error": error.to_string(),
                }
            }
        });
        out.extend_from_slice(substitute.to_string().as_bytes());
    }
    let hash = ChainHash::of(out);
    out.extend_from_slice(HASH_FIELD);
    hash.write_hex(out);
    out.extend_from_slice(b"\"}\n");
    (hash, error)
}

/// The line (with its newline) the writer appends for `event` chained to
/// `prev`, and its hash: the format's reference encoder, for tools that
/// write or check logs of their own (and tests that need a log no executor
/// would write).
///
/// ```
/// use hotpath::{AuditDetails, AuditEvent, ParamVec};
/// use hotpath_durable::audit_log::{encode, ChainHash};
///
/// let event = AuditEvent { seq: 0, timestamp_us: 17, generation: 0,
///                          details: AuditDetails::Started { params: ParamVec::from_slice(&[0.5]) } };
/// let (line, hash) = encode(&event, &ChainHash::GENESIS);
/// assert!(line.starts_with(b"{\"seq\":0,\"type\":\"Started\",\"prev\":\"000"));
/// assert!(line.ends_with(format!(",\"hash\":\"{hash}\"}}\n").as_bytes()));
/// ```
pub fn encode(event: &AuditEvent, prev: &ChainHash) -> (Vec<u8>, ChainHash) {
    let mut line = Vec::new();
    let (hash, _) = encode_line(event, prev, &mut line);
    (line, hash)
}

/// Checks one line (without its newline) on its own: the fields, the
/// layout, the hash, and that the event agrees with the line's `seq` and
/// `type`.
pub(crate) fn parse_line(line: &[u8]) -> Result<ParsedLine, LineDefect> {
    let malformed = |reason: String| LineDefect::Malformed { reason };
    if line.first() != Some(&b'{') {
        // serde would read an array as the fields in order.
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
                Ok(_) => malformed("expected a JSON object {\"seq\":…}".into()),
                Err(e) => LineDefect::NotJson {
                    reason: e.to_string(),
                },
            },
        );
    }
    let raw: RawLine = serde_json::from_slice(line).map_err(|e| {
        // Valid JSON of another shape is not what an interrupted write
        // leaves: only bytes that are not JSON at all are.
        match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
            Ok(_) => malformed(e.to_string()),
            Err(not_json) => LineDefect::NotJson {
                reason: not_json.to_string(),
            },
        }
    })?;
    let prev = ChainHash::from_hex(&raw.prev)
        .ok_or_else(|| malformed("prev is not 64 lowercase hex digits".into()))?;
    let stated = ChainHash::from_hex(&raw.hash)
        .ok_or_else(|| malformed("hash is not 64 lowercase hex digits".into()))?;
    // The body is everything before the final `,"hash":"<hex>"}`, which
    // must be spelled exactly so.
    let body_len = line.len().saturating_sub(SUFFIX_LEN);
    let suffix = &line[body_len..];
    let canonical_suffix = suffix.len() == SUFFIX_LEN
        && suffix.starts_with(HASH_FIELD)
        && &suffix[HASH_FIELD.len()..HASH_FIELD.len() + HEX_LEN] == raw.hash.as_bytes()
        && suffix.ends_with(b"\"}");
    if !canonical_suffix {
        return Err(malformed(
            "the line does not end with ,\"hash\":\"<hex>\"}".into(),
        ));
    }
    let computed = ChainHash::of(&line[..body_len]);
    if computed != stated {
        return Err(LineDefect::HashMismatch { stated, computed });
    }
    if raw.event.get("seq").and_then(serde_json::Value::as_u64) != Some(raw.seq) {
        return Err(malformed(format!(
            "the event's seq does not match the line's seq {}",
            raw.seq
        )));
    }
    if raw.seq > MAX_AUDIT_SEQ {
        return Err(LineDefect::BeyondCeiling {
            field: "seq",
            value: raw.seq,
        });
    }
    let generation = raw
        .event
        .get("generation")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| malformed("the event's generation is not a non-negative integer".into()))?;
    if generation > MAX_GENERATION {
        return Err(LineDefect::BeyondCeiling {
            field: "generation",
            value: generation,
        });
    }
    // serde writes a variant with data as `{"<name>":…}`, one without as
    // `"<name>"`.
    let name = type_name(raw.event_type);
    let details_agree = match raw.event.get("details") {
        Some(serde_json::Value::Object(details)) => {
            details.len() == 1 && details.contains_key(&name)
        }
        Some(serde_json::Value::String(unit)) => *unit == name,
        _ => false,
    };
    if !details_agree {
        return Err(malformed(format!(
            "the event's details are not of the line's type {name}"
        )));
    }
    Ok(ParsedLine {
        seq: raw.seq,
        generation,
        event_type: raw.event_type,
        prev,
        hash: stated,
        event: raw.event,
    })
}

/// `audit.<index, 10 digits>.jsonl`.
pub(crate) fn file_name(index: u64) -> String {
    format!("audit.{index:0width$}.jsonl", width = INDEX_DIGITS)
}

/// The index of a log file's name, `None` for any other name.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("audit.")?.strip_suffix(".jsonl")?;
    if digits.len() != INDEX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The log files of `dir`, by index.
pub(crate) fn list_files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(index) = entry.file_name().to_str().and_then(parse_file_name) {
            files.push((index, entry.path()));
        }
    }
    files.sort_unstable_by_key(|(index, _)| *index);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpath::{AuditDetails, ParamVec};

    fn event(seq: u64) -> AuditEvent {
        AuditEvent {
            seq,
            timestamp_us: 1_000 + seq,
            generation: seq / 2,
            details: AuditDetails::Started {
                params: ParamVec::from_slice(&[0.5, 64.0]),
            },
        }
    }

    fn encode(event: &AuditEvent, prev: &ChainHash) -> (Vec<u8>, ChainHash) {
        let mut out = Vec::new();
        let (hash, error) = encode_line(event, prev, &mut out);
        assert!(error.is_none());
        (out, hash)
    }

    #[test]
    fn a_line_is_the_documented_json() {
        let (line, hash) = encode(&event(7), &ChainHash::GENESIS);
        let text = std::str::from_utf8(&line).unwrap();
        let zeros = "0".repeat(64);
        let body = format!(
            "{{\"seq\":7,\"type\":\"Started\",\"prev\":\"{zeros}\",\"event\":\
             {{\"seq\":7,\"timestamp_us\":1007,\"generation\":3,\
             \"details\":{{\"Started\":{{\"params\":[0.5,64.0]}}}}}}"
        );
        assert_eq!(text, format!("{body},\"hash\":\"{hash}\"}}\n"));
        assert_eq!(hash, ChainHash::of(body.as_bytes()));
        // Anyone can check it with a stock SHA-256 of the body.
        assert_eq!(
            hash.as_bytes().as_slice(),
            Sha256::digest(body.as_bytes()).as_slice()
        );
    }

    #[test]
    fn an_encoded_line_parses_back() {
        let prev = ChainHash::of(b"previous");
        let (line, hash) = encode(&event(3), &prev);
        let parsed = parse_line(&line[..line.len() - 1]).unwrap();
        assert_eq!(parsed.seq, 3);
        assert_eq!(parsed.event_type, EventType::Started);
        assert_eq!(parsed.prev, prev);
        assert_eq!(parsed.hash, hash);
        let back: AuditEvent = serde_json::from_value(parsed.event).unwrap();
        assert_eq!(back, event(3));
    }

    #[test]
    fn parameters_read_back_bit_for_bit() {
        // Values whose shortest decimal form parses back wrong without
        // serde_json's `float_roundtrip`.
        let awkward = [0.447_183_568_078_108_05, 0.1 + 0.2, 1e-300, f64::MAX, -0.0];
        let event = AuditEvent {
            details: AuditDetails::Started {
                params: ParamVec::from_slice(&awkward),
            },
            ..event(1)
        };
        let (line, _) = encode(&event, &ChainHash::GENESIS);
        let parsed = parse_line(&line[..line.len() - 1]).unwrap();
        let back: AuditEvent = serde_json::from_value(parsed.event).unwrap();
        let AuditDetails::Started { params } = back.details else {
            panic!("{back:?}");
        };
        assert!(params.bit_eq(&awkward), "{params:?}");
    }

    #[test]
    fn defects_are_told_apart() {
        let (line, _) = encode(&event(3), &ChainHash::GENESIS);
        let line = std::str::from_utf8(&line[..line.len() - 1]).unwrap();

        let edited = line.replace("\"timestamp_us\":1003", "\"timestamp_us\":1004");
        assert!(matches!(
            parse_line(edited.as_bytes()),
            Err(LineDefect::HashMismatch { .. })
        ));
        let spaced = line.replace(",\"hash\":", ", \"hash\":");
        assert!(matches!(
            parse_line(spaced.as_bytes()),
            Err(LineDefect::Malformed { .. })
        ));
        assert!(matches!(
            parse_line(&line.as_bytes()[..40]),
            Err(LineDefect::NotJson { .. })
        ));
        assert!(matches!(
            parse_line(b"{\"seq\":3}"),
            Err(LineDefect::Malformed { .. })
        ));
        // No internal type name in what a reader sees.
        let shape = parse_line(b"[1,2]").unwrap_err().to_string();
        assert!(!shape.contains("RawLine"), "{shape}");
        let upper = line.replace("\"prev\":\"0000", "\"prev\":\"000A");
        assert!(matches!(
            parse_line(upper.as_bytes()),
            Err(LineDefect::Malformed { .. })
        ));
    }

    #[test]
    fn an_event_must_agree_with_its_line() {
        // Re-hash a line whose outer seq disagrees with the event's: the
        // hash is right, the structure is not.
        let (line, _) = encode(&event(3), &ChainHash::GENESIS);
        let text = std::str::from_utf8(&line).unwrap();
        let body_end = text.len() - 1 - SUFFIX_LEN;
        for body in [
            text[..body_end].replacen("{\"seq\":3", "{\"seq\":4", 1),
            text[..body_end].replacen("\"type\":\"Started\"", "\"type\":\"Applied\"", 1),
        ] {
            let hash = ChainHash::of(body.as_bytes());
            let forged = format!("{body},\"hash\":\"{hash}\"}}");
            assert!(
                matches!(
                    parse_line(forged.as_bytes()),
                    Err(LineDefect::Malformed { .. })
                ),
                "{forged}"
            );
        }
    }

    #[test]
    fn hex_round_trips() {
        let hash = ChainHash::of(b"x");
        assert_eq!(ChainHash::from_hex(&hash.to_string()), Some(hash));
        assert_eq!(ChainHash::from_hex("00"), None);
        assert_eq!(ChainHash::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(file_name(1), "audit.0000000001.jsonl");
        assert_eq!(parse_file_name("audit.0000000001.jsonl"), Some(1));
        assert_eq!(
            parse_file_name(&file_name(MAX_FILE_INDEX)),
            Some(MAX_FILE_INDEX)
        );
        for other in [
            "audit.1.jsonl",
            "audit.000000000x.jsonl",
            "audit.lock",
            "x.0000000001.jsonl",
        ] {
            assert_eq!(parse_file_name(other), None, "{other}");
        }
    }
}
