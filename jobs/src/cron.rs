//! [`Cron`]: when a recurring job fires. Parsing and occurrences come from the `cron` crate;
//! this module accepts the forms Hangfire users write and converts them for it.
//!
//! Accepted forms:
//! - 5 fields, `minute hour day-of-month month day-of-week` (`*/5 * * * *`);
//! - 6 fields with seconds first (`30 */5 * * * *`), and 7 with a year last;
//! - the macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`),
//!   `@hourly` and `@minutely`.
//!
//! Day-of-week numbers follow standard cron in every form: 0 and 7 are Sunday, 1 is Monday;
//! names (`MON-FRI`) work too.
//!
//! Time zones: occurrences are computed in the recurring job's IANA zone. When clocks move
//! forward, a time that does not exist that day is skipped; when they move back, a time that
//! happens twice fires once (the first time).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc, Weekday};
use chrono_tz::Tz;

use crate::error::{Error, Result};

/// A cron schedule. Build one with the helpers (`Cron::daily()`, `Cron::daily_at(9, 30)?`), or
/// from an expression: `Cron::parse("*/5 * * * *")?` validates at once, while `"..".into()` is
/// validated when the recurring job is added.
///
/// ```
/// use jobs::Cron;
///
/// let cron = Cron::parse("30 9 * * 1-5")?;
/// assert_eq!(cron.describe(), "at 09:30 on Monday to Friday");
/// assert_eq!(Cron::daily_at(7, 5)?.expression(), "5 7 * * *");
/// assert!(Cron::parse("61 * * * *").is_err());
/// # Ok::<(), jobs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cron {
    expression: String,
}

impl Cron {
    /// Parses and validates an expression.
    pub fn parse(expression: &str) -> Result<Cron> {
        let cron = Cron {
            expression: expression.trim().to_owned(),
        };
        cron.schedule()?;
        Ok(cron)
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    fn literal(expression: &str) -> Cron {
        Cron {
            expression: expression.to_owned(),
        }
    }

    /// Every minute, at second 0.
    pub fn minutely() -> Cron {
        Cron::literal("* * * * *")
    }

    /// Every hour, at minute 0.
    pub fn hourly() -> Cron {
        Cron::literal("0 * * * *")
    }

    /// Every day at 00:00.
    pub fn daily() -> Cron {
        Cron::literal("0 0 * * *")
    }

    /// Every Monday at 00:00 (Hangfire's `Cron.Weekly()`).
    pub fn weekly() -> Cron {
        Cron::literal("0 0 * * 1")
    }

    /// The first day of every month at 00:00.
    pub fn monthly() -> Cron {
        Cron::literal("0 0 1 * *")
    }

    /// January 1st at 00:00.
    pub fn yearly() -> Cron {
        Cron::literal("0 0 1 1 *")
    }

    /// Every hour at `minute`.
    pub fn hourly_at(minute: u32) -> Result<Cron> {
        check("minute", minute, 0, 59)?;
        Ok(Cron::literal(&format!("{minute} * * * *")))
    }

    /// Every day at `hour:minute`.
    pub fn daily_at(hour: u32, minute: u32) -> Result<Cron> {
        check("hour", hour, 0, 23)?;
        check("minute", minute, 0, 59)?;
        Ok(Cron::literal(&format!("{minute} {hour} * * *")))
    }

    /// Every week on `day` at `hour:minute`.
    pub fn weekly_on(day: Weekday, hour: u32, minute: u32) -> Result<Cron> {
        check("hour", hour, 0, 23)?;
        check("minute", minute, 0, 59)?;
        let day = day.num_days_from_sunday();
        Ok(Cron::literal(&format!("{minute} {hour} * * {day}")))
    }

    /// Every month on `day` (1–31; months without that day are skipped) at `hour:minute`.
    pub fn monthly_on(day: u32, hour: u32, minute: u32) -> Result<Cron> {
        check("day", day, 1, 31)?;
        check("hour", hour, 0, 23)?;
        check("minute", minute, 0, 59)?;
        Ok(Cron::literal(&format!("{minute} {hour} {day} * *")))
    }

    /// Every year on `month`/`day` at `hour:minute`.
    pub fn yearly_on(month: u32, day: u32, hour: u32, minute: u32) -> Result<Cron> {
        check("month", month, 1, 12)?;
        check("day", day, 1, 31)?;
        check("hour", hour, 0, 23)?;
        check("minute", minute, 0, 59)?;
        Ok(Cron::literal(&format!("{minute} {hour} {day} {month} *")))
    }

    /// The `cron` crate's schedule for this expression.
    fn schedule(&self) -> Result<cron::Schedule> {
        let normalized = normalize(&self.expression).map_err(|reason| self.invalid(reason))?;
        cron::Schedule::from_str(&normalized).map_err(|error| {
            // The cron crate's message repeats the expression with a caret; keep its last line.
            let message = error.to_string();
            let reason = message.lines().rev().find(|line| !line.trim().is_empty());
            self.invalid(reason.unwrap_or(&message).trim().to_owned())
        })
    }

    fn invalid(&self, reason: String) -> Error {
        Error::InvalidCron {
            expression: self.expression.clone(),
            reason,
        }
    }

    /// The first occurrence strictly after `after`, computed in `zone`. `None` if there is none
    /// (a past year).
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Result<Option<DateTime<Utc>>> {
        let schedule = self.schedule()?;
        let local_after = after.with_timezone(&zone);
        let after_wall = local_after.naive_local();
        // When clocks go back, the cron crate yields a repeated wall time twice; fire it once.
        let next = schedule
            .after(&local_after)
            .take(4)
            .find(|candidate| {
                candidate.with_timezone(&Utc) > after && candidate.naive_local() != after_wall
            })
            .map(|candidate| candidate.with_timezone(&Utc));
        Ok(next)
    }

    /// A description in words, for people (the dashboard): "every 5 minutes",
    /// "at 09:30 on Monday to Friday". Falls back to the expression itself.
    pub fn describe(&self) -> String {
        describe(&self.expression).unwrap_or_else(|| format!("cron `{}`", self.expression))
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl FromStr for Cron {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Cron::parse(s)
    }
}

/// An expression, validated when used.
impl From<&str> for Cron {
    fn from(expression: &str) -> Self {
        Cron::literal(expression.trim())
    }
}

/// An expression, validated when used.
impl From<String> for Cron {
    fn from(expression: String) -> Self {
        Cron::from(expression.as_str())
    }
}

/// Parses an IANA time zone name (`Europe/Paris`, `UTC`).
pub(crate) fn parse_zone(name: &str) -> Result<Tz> {
    Tz::from_str(name).map_err(|_| Error::InvalidTimeZone(name.to_owned()))
}

fn check(what: &str, value: u32, min: u32, max: u32) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::InvalidCron {
            expression: format!("{what} = {value}"),
            reason: format!("{what} must be between {min} and {max}"),
        })
    }
}

/// Converts the accepted forms to the `cron` crate's: seconds first, day-of-week 1–7 from
/// Sunday.
fn normalize(expression: &str) -> std::result::Result<String, String> {
    let expanded = match expression.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *".to_owned(),
        "@monthly" => "0 0 1 * *".to_owned(),
        "@weekly" => "0 0 * * 0".to_owned(),
        "@daily" | "@midnight" => "0 0 * * *".to_owned(),
        "@hourly" => "0 * * * *".to_owned(),
        "@minutely" => "* * * * *".to_owned(),
        other if other.starts_with('@') => {
            return Err(format!(
                "unknown macro `{expression}`; expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @minutely"
            ))
        }
        _ => expression.to_owned(),
    };
    let mut fields: Vec<String> = expanded.split_whitespace().map(str::to_owned).collect();
    match fields.len() {
        5 => fields.insert(0, "0".to_owned()),
        6 | 7 => {}
        n => {
            return Err(format!(
                "expected 5 fields (minute hour day month weekday), 6 (with seconds first) or 7 (with a year last), found {n}"
            ))
        }
    }
    fields[5] = day_of_week(&fields[5])?;
    Ok(fields.join(" "))
}

/// Standard day-of-week numbers (0 and 7 Sunday) → the `cron` crate's (1 Sunday … 7 Saturday).
fn day_of_week(field: &str) -> std::result::Result<String, String> {
    let number = |text: &str| -> std::result::Result<Option<u32>, String> {
        if !text.bytes().all(|b| b.is_ascii_digit()) || text.is_empty() {
            return Ok(None);
        }
        match text.parse::<u32>() {
            Ok(day) if day <= 7 => Ok(Some(day)),
            _ => Err(format!(
                "day of week `{text}` must be between 0 and 7 (0 and 7 are Sunday)"
            )),
        }
    };
    let shift = |day: u32| day % 7 + 1;
    let mut parts = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (part, None),
        };
        let converted = match range.split_once('-') {
            Some((start, end)) => match (number(start)?, number(end)?) {
                (Some(start), Some(7)) if step.is_none() => {
                    // "5-7" is Friday to Sunday: Friday–Saturday, then Sunday.
                    if start == 0 {
                        "1-7".to_owned()
                    } else {
                        format!("{}-7,1", shift(start))
                    }
                }
                (Some(_), Some(7)) => {
                    return Err("a stepped day-of-week range cannot end at 7; end it at 6 and list 0 for Sunday".to_owned())
                }
                (Some(start), Some(end)) => format!("{}-{}", shift(start), shift(end)),
                (None, None) => range.to_owned(),
                _ => return Err(format!("day-of-week range `{range}` mixes numbers and names")),
            },
            None => match number(range)? {
                Some(day) => shift(day).to_string(),
                None => range.to_owned(),
            },
        };
        parts.push(match step {
            Some(step) => format!("{converted}/{step}"),
            None => converted,
        });
    }
    Ok(parts.join(","))
}

const DAY_NAMES: [&str; 8] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Words for the common 5-field shapes; `None` for anything else.
fn describe(expression: &str) -> Option<String> {
    let lower = expression.to_ascii_lowercase();
    let fields: Vec<&str> = match lower.as_str() {
        "@yearly" | "@annually" => return Some("every year on January 1 at 00:00".into()),
        "@monthly" => return Some("at 00:00 on day 1 of every month".into()),
        "@weekly" => return Some("at 00:00 on Sunday".into()),
        "@daily" | "@midnight" => return Some("every day at 00:00".into()),
        "@hourly" => return Some("every hour".into()),
        "@minutely" => return Some("every minute".into()),
        _ => expression.split_whitespace().collect(),
    };
    let [minute, hour, dom, month, dow] = fields.as_slice() else {
        return None;
    };
    let number = |field: &str| field.parse::<u32>().ok();
    let step = |field: &str| field.strip_prefix("*/").and_then(|n| n.parse::<u32>().ok());
    let days = match (*dom, *month, *dow) {
        ("*", "*", "*") => None,
        ("*", "*", dow) => Some(format!("on {}", describe_days(dow)?)),
        (dom, "*", "*") => Some(format!("on day {} of every month", number(dom)?)),
        (dom, month, "*") => Some(format!("every year on {}/{}", number(month)?, number(dom)?)),
        _ => return None,
    };
    let time = match (*minute, *hour) {
        ("*", "*") => "every minute".to_owned(),
        (m, "*") if step(m).is_some() => format!("every {} minutes", step(m)?),
        (m, "*") if number(m) == Some(0) => "every hour".to_owned(),
        (m, "*") => format!("every hour at minute {}", number(m)?),
        (m, h) if step(h).is_some() && number(m).is_some() => {
            format!("every {} hours at minute {}", step(h)?, number(m)?)
        }
        (m, h) => format!("at {:02}:{:02}", number(h)?, number(m)?),
    };
    Some(match (days, time.starts_with("at ")) {
        (None, true) => format!("every day {time}"),
        (None, false) => time,
        (Some(days), _) => format!("{time} {days}"),
    })
}

fn describe_days(field: &str) -> Option<String> {
    let day = |text: &str| -> Option<&str> {
        let n = text.parse::<usize>().ok()?;
        DAY_NAMES.get(n).copied()
    };
    if let Some((start, end)) = field.split_once('-') {
        return Some(format!("{} to {}", day(start)?, day(end)?));
    }
    let days: Option<Vec<&str>> = field.split(',').map(day).collect();
    Some(days?.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("valid time")
    }

    fn next(expression: &str, after: &str, zone: &str) -> Option<DateTime<Utc>> {
        Cron::parse(expression)
            .and_then(|cron| cron.next_after(utc(after), parse_zone(zone)?))
            .expect("valid cron")
    }

    #[test]
    fn five_six_and_seven_fields_and_macros() {
        assert_eq!(
            next("*/15 * * * *", "2026-01-01T10:07:00Z", "UTC"),
            Some(utc("2026-01-01T10:15:00Z"))
        );
        assert_eq!(
            next("30 */15 * * * *", "2026-01-01T10:07:00Z", "UTC"),
            Some(utc("2026-01-01T10:15:30Z"))
        );
        assert_eq!(
            next("0 0 0 1 1 * 2027", "2026-01-01T10:07:00Z", "UTC"),
            Some(utc("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            next("0 0 0 1 1 * 2025", "2026-01-01T10:07:00Z", "UTC"),
            None
        );
        assert_eq!(
            next("@hourly", "2026-01-01T10:07:00Z", "UTC"),
            Some(utc("2026-01-01T11:00:00Z"))
        );
        assert_eq!(
            next("@daily", "2026-01-01T10:07:00Z", "UTC"),
            Some(utc("2026-01-02T00:00:00Z"))
        );
        assert_eq!(
            next("@minutely", "2026-01-01T10:07:10Z", "UTC"),
            Some(utc("2026-01-01T10:08:00Z"))
        );
        for (cron, expected) in [
            (Cron::minutely(), "2026-01-01T10:08:00Z"),
            (Cron::hourly(), "2026-01-01T11:00:00Z"),
            (Cron::daily(), "2026-01-02T00:00:00Z"),
            (Cron::weekly(), "2026-01-05T00:00:00Z"),
            (Cron::monthly(), "2026-02-01T00:00:00Z"),
            (Cron::yearly(), "2027-01-01T00:00:00Z"),
        ] {
            let got = cron
                .next_after(utc("2026-01-01T10:07:10Z"), Tz::UTC)
                .expect("valid");
            assert_eq!(got, Some(utc(expected)), "{cron}");
        }
    }

    #[test]
    fn day_of_week_numbers_are_standard() {
        // 2026-01-01 is a Thursday.
        assert_eq!(
            next("0 9 * * 1-5", "2026-01-02T10:00:00Z", "UTC"),
            Some(utc("2026-01-05T09:00:00Z"))
        );
        assert_eq!(
            next("0 9 * * 0", "2026-01-01T00:00:00Z", "UTC"),
            Some(utc("2026-01-04T09:00:00Z"))
        );
        assert_eq!(
            next("0 9 * * 7", "2026-01-01T00:00:00Z", "UTC"),
            Some(utc("2026-01-04T09:00:00Z"))
        );
        assert_eq!(
            next("0 9 * * 6-7", "2026-01-01T00:00:00Z", "UTC"),
            Some(utc("2026-01-03T09:00:00Z"))
        );
        assert_eq!(
            next("0 9 * * 6-7", "2026-01-03T10:00:00Z", "UTC"),
            Some(utc("2026-01-04T09:00:00Z"))
        );
        assert_eq!(
            next("0 9 * * MON-FRI", "2026-01-02T10:00:00Z", "UTC"),
            Some(utc("2026-01-05T09:00:00Z"))
        );
        assert_eq!(
            Cron::weekly_on(Weekday::Wed, 8, 0)
                .expect("valid")
                .next_after(utc("2026-01-01T00:00:00Z"), Tz::UTC)
                .expect("valid"),
            Some(utc("2026-01-07T08:00:00Z"))
        );
    }

    #[test]
    fn invalid_expressions_are_clear_errors() {
        for (expression, reason) in [
            ("* * * *", "expected 5 fields"),
            ("61 * * * *", "61"),
            ("* * * * 8", "between 0 and 7"),
            ("@fortnightly", "unknown macro"),
            ("not a cron", "expected 5 fields"),
        ] {
            let error = Cron::parse(expression).expect_err(expression).to_string();
            assert!(
                error.starts_with(&format!("invalid cron expression `{expression}`")),
                "{error}"
            );
            assert!(error.contains(reason), "{expression}: {error}");
        }
        assert!(Cron::daily_at(24, 0).is_err());
        assert!(Cron::monthly_on(0, 0, 0).is_err());
        assert!(parse_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn time_zones_and_dst() {
        // 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
        assert_eq!(
            next("0 9 * * *", "2026-01-10T12:00:00Z", "Europe/Paris"),
            Some(utc("2026-01-11T08:00:00Z"))
        );
        assert_eq!(
            next("0 9 * * *", "2026-07-10T12:00:00Z", "Europe/Paris"),
            Some(utc("2026-07-11T07:00:00Z"))
        );
        // Spring forward (New York, 2026-03-08): 02:30 does not exist that day and is skipped.
        let skipped = next("30 2 * * *", "2026-03-07T08:00:00Z", "America/New_York");
        assert_eq!(skipped, Some(utc("2026-03-09T06:30:00Z")));
        // Fall back (New York, 2026-11-01): 01:30 happens twice and fires once.
        let first = next("30 1 * * *", "2026-10-31T12:00:00Z", "America/New_York").expect("occurs");
        assert_eq!(first, utc("2026-11-01T05:30:00Z"));
        let second = next("30 1 * * *", &first.to_rfc3339(), "America/New_York").expect("occurs");
        assert_eq!(second, utc("2026-11-02T06:30:00Z"));
        // Every occurrence of a day is strictly later than the previous one.
        let mut at = utc("2026-10-31T00:00:00Z");
        for _ in 0..200 {
            let following =
                next("*/10 * * * *", &at.to_rfc3339(), "America/New_York").expect("occurs");
            assert!(following > at);
            at = following;
        }
    }

    #[test]
    fn descriptions() {
        for (expression, words) in [
            ("* * * * *", "every minute"),
            ("*/5 * * * *", "every 5 minutes"),
            ("0 * * * *", "every hour"),
            ("15 * * * *", "every hour at minute 15"),
            ("0 */2 * * *", "every 2 hours at minute 0"),
            ("30 9 * * *", "every day at 09:30"),
            ("0 0 1 * *", "at 00:00 on day 1 of every month"),
            ("30 9 * * 1-5", "at 09:30 on Monday to Friday"),
            ("0 8 * * 0,6", "at 08:00 on Sunday, Saturday"),
            ("0 0 25 12 *", "at 00:00 every year on 12/25"),
            ("@daily", "every day at 00:00"),
            ("0 0 0 1 1 * 2030", "cron `0 0 0 1 1 * 2030`"),
        ] {
            assert_eq!(Cron::from(expression).describe(), words, "{expression}");
        }
    }
}
