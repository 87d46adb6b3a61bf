//! Standard cron schedules (`minute hour day-of-month month day-of-week`,
//! with lists, ranges, steps, month and weekday names, and the `@hourly`
//! family), evaluated in a time zone as robfig/cron does for Kubernetes:
//! when both day fields are restricted, either may match.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Whether a day field was `*` (then only the other one restricts).
    any_day: bool,
    any_weekday: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// How far ahead a next time is searched (a schedule like `0 0 30 2 *`
/// never fires).
const HORIZON_DAYS: i64 = 5 * 366;

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let spec = spec.trim();
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
            s => s,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                fields.len()
            ));
        }
        let mut weekdays = field(fields[4], 0, 7, &WEEKDAYS, 0)?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays & !(1 << 7)) | 1;
        }
        Ok(Schedule {
            minutes: field(fields[0], 0, 59, &[], 0)?,
            hours: field(fields[1], 0, 23, &[], 0)?,
            days: field(fields[2], 1, 31, &[], 1)?,
            months: field(fields[3], 1, 12, &MONTHS, 1)?,
            weekdays,
            any_day: fields[2].starts_with('*') || fields[2] == "?",
            any_weekday: fields[4].starts_with('*') || fields[4] == "?",
        })
    }

    fn day_matches(&self, dt: DateTime) -> bool {
        let dom = self.days & (1 << dt.day()) != 0;
        let dow = self.weekdays & (1 << dt.weekday().to_sunday_zero_offset()) != 0;
        if self.any_day || self.any_weekday {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first scheduled time strictly after `t`.
    pub fn next_after(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = t.to_zoned(tz.clone()).datetime();
        let mut dt = local
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = local
            .checked_add(SignedDuration::from_hours(24 * HORIZON_DAYS))
            .ok()?;
        while dt < limit {
            if self.months & (1 << dt.month()) == 0 {
                dt = dt
                    .first_of_month()
                    .checked_add(1.month())
                    .ok()?
                    .start_of_day();
                continue;
            }
            if !self.day_matches(dt) {
                dt = dt.start_of_day().checked_add(1.day()).ok()?;
                continue;
            }
            if self.hours & (1 << dt.hour()) == 0 {
                dt = dt
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if self.minutes & (1 << dt.minute()) == 0 {
                dt = dt.checked_add(1.minute()).ok()?;
                continue;
            }
            // A time skipped by a DST gap lands after the gap.
            let at = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
            if at > t {
                return Some(at);
            }
            dt = dt.checked_add(1.minute()).ok()?;
        }
        None
    }

    /// The latest scheduled time in `(since, now]` and how many there were
    /// (counting stops past `cap`).
    pub fn most_recent(
        &self,
        since: Timestamp,
        now: Timestamp,
        tz: &TimeZone,
        cap: usize,
    ) -> (Option<Timestamp>, usize) {
        let mut last = None;
        let mut count = 0;
        let mut t = since;
        while let Some(next) = self.next_after(t, tz) {
            if next > now {
                return (last, count);
            }
            last = Some(next);
            count += 1;
            t = next;
            if count > cap {
                break;
            }
        }
        // Too many to walk: find the latest one from a recent start.
        let mut t = (now - SignedDuration::from_hours(48)).max(t);
        while let Some(next) = self.next_after(t, tz) {
            if next > now {
                break;
            }
            last = Some(next);
            t = next;
        }
        (last, count)
    }
}

/// One field as a bit set; `names` are accepted for values from `first_name`.
fn field(spec: &str, min: u32, max: u32, names: &[&str], first_name: u32) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("invalid step: {part}"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("step of zero: {part}"));
        }
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, first_name)?, value(b, names, first_name)?)
        } else {
            let v = value(range, names, first_name)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("value out of range ({min}-{max}): {part}"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

fn value(s: &str, names: &[&str], first_name: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + first_name);
    }
    s.parse()
        .map_err(|_| format!("failed to parse int from {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(spec: &str, after: &str, tz: &str) -> String {
        let tz = TimeZone::get(tz).unwrap();
        Schedule::parse(spec)
            .unwrap()
            .next_after(ts(after), &tz)
            .unwrap()
            .to_string()
    }

    #[test]
    fn fields_lists_ranges_steps_and_names() {
        assert_eq!(
            next("*/15 * * * *", "2026-01-01T10:07:00Z", "UTC"),
            "2026-01-01T10:15:00Z"
        );
        assert_eq!(
            next("0 9-17/4 * * *", "2026-01-01T10:00:00Z", "UTC"),
            "2026-01-01T13:00:00Z"
        );
        assert_eq!(
            next("30 2 * * mon,fri", "2026-01-01T00:00:00Z", "UTC"),
            "2026-01-02T02:30:00Z"
        );
        assert_eq!(
            next("0 0 1 jan *", "2026-03-01T00:00:00Z", "UTC"),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@hourly", "2026-01-01T10:00:00Z", "UTC"),
            "2026-01-01T11:00:00Z"
        );
        assert_eq!(
            next("0 0 * * 7", "2026-01-01T00:00:00Z", "UTC"),
            "2026-01-04T00:00:00Z"
        );
        // Both day fields restricted: either matches (the 13th, or a Friday).
        assert_eq!(
            next("0 0 13 * 5", "2026-01-01T00:00:00Z", "UTC"),
            "2026-01-02T00:00:00Z"
        );
        for bad in [
            "* * * *",
            "61 * * * *",
            "*/0 * * * *",
            "0 0 * foo *",
            "@often",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        // 09:00 in New York is 14:00 UTC in winter, 13:00 in summer.
        assert_eq!(
            next("0 9 * * *", "2026-01-10T00:00:00Z", "America/New_York"),
            "2026-01-10T14:00:00Z"
        );
        assert_eq!(
            next("0 9 * * *", "2026-07-10T00:00:00Z", "America/New_York"),
            "2026-07-10T13:00:00Z"
        );
        // 02:30 does not exist on 2026-03-08 there: it runs after the gap.
        assert_eq!(
            next("30 2 * * *", "2026-03-08T05:00:00Z", "America/New_York"),
            "2026-03-08T07:30:00Z"
        );
    }

    #[test]
    fn most_recent_counts_missed_times() {
        let s = Schedule::parse("* * * * *").unwrap();
        let (last, n) = s.most_recent(
            ts("2026-01-01T00:00:30Z"),
            ts("2026-01-01T00:05:10Z"),
            &TimeZone::UTC,
            100,
        );
        assert_eq!(last.unwrap().to_string(), "2026-01-01T00:05:00Z");
        assert_eq!(n, 5);
        let (last, n) = s.most_recent(
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-02T00:00:30Z"),
            &TimeZone::UTC,
            100,
        );
        assert_eq!(last.unwrap().to_string(), "2026-01-02T00:00:00Z");
        assert!(n > 100);
    }
}
