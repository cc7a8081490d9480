//! Time is a parameter: everything that needs "now" receives a [`Clock`], so tests move time by hand.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    pub const fn seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// The minute this instant falls in, as minutes since the epoch: the key of the stats rollups.
    pub const fn minute(self) -> u64 {
        let m = self.0.div_euclid(60_000);
        if m < 0 { 0 } else { m as u64 }
    }

    pub const fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-28T11:39:22.123Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, mo, d) = civil_from_days(days);
        format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
    }

    /// Parses RFC 3339 (`2026-11-28T11:39:22Z`, optional fraction, `Z` or `±hh:mm` offset).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let num = |from: usize, to: usize| -> Option<i64> {
            let part = s.get(from..to)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let mut i = 19;
        let mut ms = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return None;
            }
            let frac = &s[start..i.min(start + 3)];
            ms = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
        }
        let offset_secs = match b.get(i)? {
            b'Z' | b'z' if i + 1 == b.len() => 0,
            sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
                let oh = num(i + 1, i + 3)?;
                let om = num(i + 4, i + 6)?;
                let v = oh * 3600 + om * 60;
                if *sign == b'+' { v } else { -v }
            }
            _ => return None,
        };
        let days = days_from_civil(y, mo, d);
        let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
        Some(Self(secs * 1000 + ms))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

// Howard Hinnant's civil calendar algorithms: exact for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// The source of "now" for every rule that depends on time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// From now on, never earlier than `at`, for a clock that follows the system's (see [`SystemClock`]).
    fn not_before(&self, _at: Timestamp) {}
}

/// The wall clock, except that it never goes back. When the system's clock is stepped back (an NTP
/// correction, a VM restored, an operator's `date -s`), time here goes on at the pace of the monotonic
/// clock from its last reading until the wall clock has caught up: ids keep their order, a job's lease or
/// retry time is never reached early or an hour late, and timestamps never run backwards. A step forward is
/// followed at once. One reading for the whole process, since ids and leases from every part are compared.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

static LAST: std::sync::Mutex<Option<Reading>> = std::sync::Mutex::new(None);

impl Clock for SystemClock {
    /// Time here will not be earlier than `at` (the newest time stored, read at start): a process started
    /// after the wall clock was stepped back does not make ids older than the ones it holds.
    fn not_before(&self, at: Timestamp) {
        let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        if last.is_none_or(|r| r.at_elapsed(now) < at.0) {
            *last = Some(Reading { ms: at.0, at: now });
        }
    }

    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let wall = i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
        let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let reading = Reading::next(*last, wall, std::time::Instant::now());
        *last = Some(reading);
        Timestamp(reading.ms)
    }
}

/// A time given out, and the monotonic instant it was given at.
#[derive(Debug, Clone, Copy)]
struct Reading {
    ms: i64,
    at: std::time::Instant,
}

impl Reading {
    /// What `self` has become by `now`, at the monotonic clock's pace.
    fn at_elapsed(self, now: std::time::Instant) -> i64 {
        let elapsed = i64::try_from(now.saturating_duration_since(self.at).as_millis()).unwrap_or(i64::MAX);
        self.ms.saturating_add(elapsed)
    }

    /// The time to give out at `now` with the wall clock reading `wall`: the wall clock, or the last
    /// reading carried forward when the wall clock is behind it.
    fn next(last: Option<Reading>, wall: i64, now: std::time::Instant) -> Reading {
        match last {
            Some(r) if r.at_elapsed(now) > wall => {
                // Carried from the last reading, not re-anchored, so rounding never holds time still.
                Reading { ms: r.at_elapsed(now), at: now }
            }
            _ => Reading { ms: wall, at: now },
        }
    }
}

/// A clock that only moves when told to: for tests and for seeding demo history.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        Self(AtomicI64::new(at.0))
    }

    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }

    pub fn advance_millis(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_steps_forward_with_the_wall_clock_and_goes_on_at_its_pace_when_the_wall_clock_steps_back() {
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let hour = 3_600_000;
        let mut r = Reading::next(None, 1_000_000, at(0));
        assert_eq!(r.ms, 1_000_000);
        // A second later by both clocks.
        r = Reading::next(Some(r), 1_001_000, at(1000));
        assert_eq!(r.ms, 1_001_000);
        // The wall clock steps back an hour: time goes on from the last reading.
        r = Reading::next(Some(r), 1_001_500 - hour, at(1500));
        assert_eq!(r.ms, 1_001_500);
        r = Reading::next(Some(r), 1_031_500 - hour, at(31_500));
        assert_eq!(r.ms, 1_031_500);
        // Once the wall clock is ahead again (here, stepped forward), it leads.
        r = Reading::next(Some(r), 1_031_600 + hour, at(31_600));
        assert_eq!(r.ms, 1_031_600 + hour);
        // Readings in the same millisecond never go back, whatever the wall clock says.
        let same = Reading::next(Some(r), 0, at(31_600));
        assert_eq!(same.ms, r.ms);
    }

    #[test]
    fn rfc3339_round_trips() {
        for ms in [0, 1_614_265_330_000, 1_795_000_000_123, -86_400_000] {
            let t = Timestamp(ms);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
        }
        assert_eq!(Timestamp(1_614_265_330_000).to_rfc3339(), "2021-02-25T15:02:10.000Z");
    }

    #[test]
    fn rfc3339_accepts_offsets_and_rejects_garbage() {
        let utc = Timestamp::parse_rfc3339("2024-01-01T12:00:00Z").unwrap();
        assert_eq!(Timestamp::parse_rfc3339("2024-01-01T14:00:00+02:00"), Some(utc));
        assert_eq!(Timestamp::parse_rfc3339("2024-01-01T12:00:00.5Z"), Some(utc.plus_millis(500)));
        for bad in ["", "2024-01-01", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00", "yesterday!!!!!!!!!!!"] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp(1000));
        assert_eq!(c.now(), Timestamp(1000));
        c.advance_millis(500);
        assert_eq!(c.now(), Timestamp(1500));
        assert_eq!(Timestamp(125_000).minute(), 2);
    }
}
