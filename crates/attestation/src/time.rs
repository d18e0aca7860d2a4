//! The IAS report timestamp: `YYYY-MM-DDTHH:MM:SS[.ffffff]`, UTC without a zone designator.

/// Unix seconds of an IAS timestamp, or `None` if it is not one.
#[must_use]
pub fn parse_ias_timestamp(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, clock) = text.split_once('T')?;
    let clock = clock.split('.').next()?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let (year, month, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut c = clock.split(':').map(str::parse::<i64>);
    let (h, m, s) = (c.next()?.ok()?, c.next()?.ok()?, c.next()?.ok()?);
    if d.next().is_some() || c.next().is_some() {
        return None;
    }
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&h)
        || !(0..60).contains(&m)
        || !(0..61).contains(&s)
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_timestamps() {
        assert_eq!(parse_ias_timestamp("1970-01-01T00:00:00"), Some(0));
        assert_eq!(parse_ias_timestamp("2019-12-14T10:24:33.365531"), Some(1_576_319_073));
        assert_eq!(parse_ias_timestamp("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(parse_ias_timestamp("2019-13-14T10:24:33"), None);
        assert_eq!(parse_ias_timestamp("yesterday"), None);
        assert_eq!(parse_ias_timestamp("2019-12-14T10:24"), None);
    }
}
