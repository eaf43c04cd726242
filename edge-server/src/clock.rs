//! Wall-clock times as operators write and read them: RFC 3339 timestamps in UTC (token
//! expiry, `token list`, the audit log) and short durations (`90d`, `12h`, `2s`). Kept here,
//! dependency-free, because the edge needs only these few conversions and no time zones:
//! times are always written in UTC, and an offset in an input is applied, not kept.

use std::time::{SystemTime, UNIX_EPOCH};

use periodic_wire::time::civil_from_days;

/// Seconds since the Unix epoch now (0 if the clock is set before 1970).
pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0)
}

/// Milliseconds since the Unix epoch now.
pub fn now_unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_millis() as u64).unwrap_or(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `2026-12-06T22:27:58Z`.
pub fn format_rfc3339(unix_seconds: u64) -> String {
    let seconds = unix_seconds as i64;
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let in_day = seconds.rem_euclid(86_400);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", in_day / 3600, in_day / 60 % 60, in_day % 60)
}

/// `2026-12-06T22:27:58.123Z`: the audit log's timestamps, which order actions within a second.
pub fn format_rfc3339_millis(unix_millis: u64) -> String {
    let text = format_rfc3339(unix_millis / 1000);
    format!("{}.{:03}Z", &text[..text.len() - 1], unix_millis % 1000)
}

fn digits(text: &str, what: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("{what} {text:?} is not a number"));
    }
    text.parse().map_err(|_| format!("{what} {text:?} is out of range"))
}

/// Parses an RFC 3339 time (`2027-03-01T00:00:00Z`, `2027-03-01T09:30:00+01:00`, fractional
/// seconds ignored) into Unix seconds.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not an RFC 3339 time such as 2027-03-01T00:00:00Z");
    let (date, rest) = text.split_once(['T', 't', ' ']).ok_or_else(bad)?;
    let mut date_parts = date.split('-');
    let (Some(year), Some(month), Some(day), None) = (date_parts.next(), date_parts.next(), date_parts.next(), date_parts.next()) else {
        return Err(bad());
    };
    // Every byte of a valid time is ASCII; checking it first keeps the slicing below safe.
    if !text.is_ascii() || year.len() != 4 || month.len() != 2 || day.len() != 2 || rest.len() < 9 {
        return Err(bad());
    }
    let (year, month, day) = (digits(year, "year")?, digits(month, "month")?, digits(day, "day")?);
    let (clock, zone) = rest.split_at(8);
    let mut clock_parts = clock.split(':');
    let (Some(hour), Some(minute), Some(second), None) = (clock_parts.next(), clock_parts.next(), clock_parts.next(), clock_parts.next()) else {
        return Err(bad());
    };
    let (hour, minute, second) = (digits(hour, "hour")?, digits(minute, "minute")?, digits(second, "second")?);
    // Fractional seconds do not matter to an expiry; they are skipped.
    let zone = match zone.strip_prefix('.') {
        Some(fraction) => fraction.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => zone,
    };
    let offset_seconds: i64 = match zone {
        "Z" | "z" => 0,
        _ if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) && zone.as_bytes()[3] == b':' => {
            let hours = i64::from(digits(&zone[1..3], "offset hour")?);
            let minutes = i64::from(digits(&zone[4..6], "offset minute")?);
            let magnitude = hours * 3600 + minutes * 60;
            if zone.starts_with('-') { -magnitude } else { magnitude }
        }
        _ => return Err(format!("{text:?}: the time needs a zone, `Z` or an offset such as +01:00")),
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return Err(format!("{text:?}: month {month} does not exist")),
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(format!("{text:?}: no such date or time of day"));
    }
    let local = days_from_civil(i64::from(year), month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(local - offset_seconds).map_err(|_| format!("{text:?} is before 1970"))
}

/// Parses a duration written as a whole number and a unit: `s`, `m`, `h`, `d` or `w`
/// (`2s`, `45m`, `12h`, `90d`, `2w`), into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_at);
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{text:?} is not a duration such as 90d, 12h, 30m or 2s")),
    };
    let number: u64 = digits(number, "duration").map(u64::from).map_err(|_| format!("{text:?} is not a duration such as 90d, 12h, 30m or 2s"))?;
    number.checked_mul(seconds_per_unit).filter(|&seconds| seconds > 0).ok_or_else(|| format!("{text:?}: a duration must be positive and below about 136 years"))
}

/// When something given `--expires TEXT` at `now` expires: `now` plus a duration, or an RFC
/// 3339 time, which must be in the future.
pub fn parse_expiry(text: &str, now: u64) -> Result<u64, String> {
    let at = match parse_duration(text) {
        Ok(seconds) => now.checked_add(seconds).ok_or_else(|| format!("{text:?} is too far in the future"))?,
        Err(duration_error) if text.starts_with(|c: char| c.is_ascii_digit()) && !text.contains('-') => return Err(duration_error),
        Err(_) => parse_rfc3339(text)?,
    };
    if at <= now {
        return Err(format!("{text:?} is not in the future (it is now {})", format_rfc3339(now)));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_rfc3339() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(format_rfc3339_millis(1_798_761_599_042), "2026-12-31T23:59:59.042Z");
        for seconds in [0, 59, 86_399, 951_782_400, 1_798_761_599, 4_102_444_800, 1_000_000_007] {
            assert_eq!(parse_rfc3339(&format_rfc3339(seconds)), Ok(seconds));
        }
        assert_eq!(parse_rfc3339("2000-02-29T01:00:00+01:00"), Ok(951_782_400));
        assert_eq!(parse_rfc3339("1999-12-31T23:00:00.5-01:00"), Ok(951_782_400 - 59 * 86_400));
        for bad in ["2027-02-29T00:00:00Z", "2027-13-01T00:00:00Z", "2027-01-01T24:00:00Z", "2027-01-01T00:00:00", "2027-01-01", "tomorrow", "1969-12-31T23:59:59Z", "2027-01-01T00:00:0\u{e9}Z"] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_expiries_are_read_as_operators_write_them() {
        assert_eq!(parse_duration("2s"), Ok(2));
        assert_eq!(parse_duration("45m"), Ok(2700));
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("90d"), Ok(90 * 86_400));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
        for bad in ["", "0s", "12", "h", "1.5h", "-2s", "2 s", "3y", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let now = 1_798_761_599;
        assert_eq!(parse_expiry("90d", now), Ok(now + 90 * 86_400));
        assert_eq!(parse_expiry("2027-03-01T00:00:00Z", now), parse_rfc3339("2027-03-01T00:00:00Z"));
        let past = parse_expiry("2020-01-01T00:00:00Z", now).expect_err("past");
        assert!(past.contains("not in the future"), "{past}");
        let typo = parse_expiry("90x", now).expect_err("typo");
        assert!(typo.contains("not a duration"), "{typo}");
    }
}
