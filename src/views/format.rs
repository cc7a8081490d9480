//! How figures read on the page.

use crate::domain::Timestamp;

/// `2026-11-28 09:14:03 UTC` from an RFC 3339 answer field; anything else is shown as it is.
pub fn time(rfc3339: &str) -> String {
    match Timestamp::parse_rfc3339(rfc3339) {
        Some(t) => {
            let s = t.to_rfc3339();
            format!("{} {} UTC", &s[..10], &s[11..19])
        }
        None => rfc3339.to_owned(),
    }
}

/// How long ago `then` was, in the largest whole unit: `42 s`, `5 min`, `3 h`, `12 days`.
pub fn age(then: &str, now: &str) -> Option<String> {
    let (then, now) = (Timestamp::parse_rfc3339(then)?, Timestamp::parse_rfc3339(now)?);
    Some(span((now.millis() - then.millis()) / 1000))
}

/// A length of time in its largest whole unit: `42 s`, `5 min`, `3 h`, `1 day`, `12 days`.
pub fn span(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3_600 => format!("{} min", secs / 60),
        3_600..86_400 => format!("{} h", secs / 3_600),
        _ if secs < 2 * 86_400 => "1 day".to_owned(),
        _ => format!("{} days", secs / 86_400),
    }
}

/// `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `12 days ago`; the script's copy of this rule keeps
/// the words current between refreshes.
pub fn ago(then: &str, now: &str) -> Option<String> {
    let (t, n) = (Timestamp::parse_rfc3339(then)?, Timestamp::parse_rfc3339(now)?);
    if n.millis() - t.millis() < 10_000 {
        return Some("just now".to_owned());
    }
    Some(format!("{} ago", age(then, now)?))
}

pub fn percent(rate: Option<f64>) -> String {
    match rate {
        // One decimal, so that 99.96 % does not read as a perfect 100 %.
        Some(r) if r < 1.0 => format!("{:.1} %", (r * 1000.0).floor() / 10.0),
        Some(_) => "100 %".to_owned(),
        None => "—".to_owned(),
    }
}

pub fn millis(ms: Option<u32>) -> String {
    ms.map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms"))
}

/// `1 234 567`: a thin space between thousands, as elsewhere in Hookplane's text.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

pub fn bytes(n: u64) -> String {
    match n {
        0..1_024 => format!("{n} B"),
        1_024..1_048_576 => format!("{:.1} KB", n as f64 / 1_024.0),
        _ => format!("{:.1} MB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_operators_expect() {
        assert_eq!(time("2026-11-28T09:14:03.120Z"), "2026-11-28 09:14:03 UTC");
        assert_eq!(time("not a time"), "not a time");
        assert_eq!(age("2026-11-28T09:00:00Z", "2026-11-28T09:00:42Z").as_deref(), Some("42 s"));
        assert_eq!(age("2026-11-28T06:00:00Z", "2026-11-28T09:30:00Z").as_deref(), Some("3 h"));
        assert_eq!(age("2026-11-16T09:00:00Z", "2026-11-28T09:00:00Z").as_deref(), Some("12 days"));
        assert_eq!(ago("2026-11-28T09:00:00Z", "2026-11-28T09:00:04Z").as_deref(), Some("just now"));
        assert_eq!(ago("2026-11-28T09:00:00Z", "2026-11-28T09:05:30Z").as_deref(), Some("5 min ago"));
        assert_eq!(ago("2026-11-28T09:00:00Z", "2026-11-28T08:00:00Z").as_deref(), Some("just now"), "a clock ahead");
        assert_eq!(percent(Some(0.9996)), "99.9 %");
        assert_eq!(percent(Some(1.0)), "100 %");
        assert_eq!(percent(None), "—");
        assert_eq!(count(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(count(999), "999");
        assert_eq!(bytes(3_700), "3.6 KB");
    }
}
