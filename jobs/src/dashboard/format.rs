//! Values in words and text: times, durations, sizes, shortened and encoded text. Plain
//! functions of their arguments, used by templates and by the handlers that build their
//! view models.

use chrono::{DateTime, Utc};

use crate::storage::ContinueOn;

/// `2024-05-01 12:00:05 UTC`.
pub(crate) fn absolute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `5 s ago`, `in 3 min`.
pub(crate) fn relative(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let delta = now.signed_duration_since(at);
    let seconds = delta.num_seconds();
    let span = span_words(seconds.unsigned_abs());
    if seconds.abs() < 1 {
        "just now".to_owned()
    } else if seconds > 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

fn span_words(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{} d {} h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

/// `850 ms`, `3.2 s`, `5 min 3 s`.
pub(crate) fn duration_ms(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// At most `max` characters of `text`, with an ellipsis when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// At most the first `max` bytes of `text`, cut at a character boundary.
pub(crate) fn first_bytes(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `850 B`, `64 KiB`, `5.0 MiB`.
pub(crate) fn size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    match bytes {
        0..KIB => format!("{bytes} B"),
        KIB..MIB => format!("{} KiB", bytes / KIB),
        _ => format!("{:.1} MiB", bytes as f64 / MIB as f64),
    }
}

/// JSON text, pretty-printed (as given if it does not parse).
pub(crate) fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| text.to_owned())
}

/// Percent-encodes a path segment or query value.
pub(crate) fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `1 failed attempt`, `2 failed attempts`.
pub(crate) fn failed_attempts(count: u64) -> String {
    let noun = if count == 1 { "attempt" } else { "attempts" };
    format!("{count} failed {noun}")
}

/// When a continuation runs: `when its parent succeeds`.
pub(crate) fn continue_on_words(on: ContinueOn) -> &'static str {
    match on {
        ContinueOn::Succeeded => "when its parent succeeds",
        ContinueOn::AnyFinished => "when its parent finishes",
        ContinueOn::Failed => "when its parent fails",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        let now = DateTime::from_timestamp(1_000_000, 0).expect("time");
        assert_eq!(relative(now, now), "just now");
        assert_eq!(
            relative(now, now - chrono::TimeDelta::seconds(5)),
            "5 s ago"
        );
        assert_eq!(
            relative(now, now + chrono::TimeDelta::minutes(3)),
            "in 3 min"
        );
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(3200), "3.2 s");
        assert_eq!(duration_ms(303_000), "5 min 3 s");
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
        assert_eq!(first_bytes("héllo", 2), "h");
        assert_eq!(first_bytes("héllo", 3), "hé");
        assert_eq!(first_bytes("hé", 10), "hé");
        assert_eq!(size(850), "850 B");
        assert_eq!(size(64 * 1024), "64 KiB");
        assert_eq!(size(5 * 1024 * 1024 + 11), "5.0 MiB");
        assert_eq!(failed_attempts(1), "1 failed attempt");
        assert_eq!(failed_attempts(0), "0 failed attempts");
        assert_eq!(enc("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(pretty_json("{\"a\":1}"), "{\n  \"a\": 1\n}");
        assert_eq!(pretty_json("not json"), "not json");
    }
}
