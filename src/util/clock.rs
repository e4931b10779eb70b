//! Wall-clock readings in the units the gateway stores (Unix seconds and milliseconds) and their
//! text form. A clock before 1970 reads as 0.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds of `t`, with fractions.
pub fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Unix seconds now, with fractions.
pub fn now_secs() -> f64 {
    unix(SystemTime::now())
}

/// Whole Unix seconds now.
pub fn now_whole_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of Unix seconds.
pub fn fmt_utc(secs: f64) -> String {
    let s = secs.floor() as i64;
    let (days, rem) = (s.div_euclid(86_400), s.rem_euclid(86_400));
    // civil-from-days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Unix seconds of `YYYY-MM-DD[T ]HH:MM:SS[.fff]` (UTC; how Postgres writes a timestamp in
/// JSON), or `None` when the text is not one.
pub fn parse_utc(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 19 || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // days-from-civil (Howard Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text() {
        assert_eq!(fmt_utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(fmt_utc(1_700_000_000.5), "2023-11-14 22:13:20");
        assert_eq!(fmt_utc(951_782_400.0), "2000-02-29 00:00:00");
        assert_eq!(parse_utc("2023-11-14T22:13:20.5"), Some(1_700_000_000));
        assert_eq!(parse_utc("2000-02-29 00:00:00"), Some(951_782_400));
        assert_eq!(parse_utc("1970-01-01T00:00:00"), Some(0));
        assert_eq!(parse_utc("yesterday"), None);
    }

    #[test]
    fn readings_agree() {
        let (s, ms, whole) = (now_secs(), now_ms(), now_whole_secs());
        assert!((s - ms as f64 / 1000.0).abs() < 5.0);
        assert!((s - whole as f64).abs() < 5.0);
    }
}
