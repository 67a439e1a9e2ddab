//! [`Cron`]: when a recurring job fires. Expressions are read as Hangfire reads them (Hangfire
//! parses cron with the Cronos library): the same syntax, the same next occurrences and the same
//! daylight saving time rules; where Hangfire has no form, this module keeps its own (seconds
//! first in 6 fields, a year as a 7th field, `@minutely`).
//!
//! Accepted forms:
//! - 5 fields, `minute hour day-of-month month day-of-week` (`*/5 * * * *`);
//! - 6 fields with seconds first (`30 */5 * * * *`), and 7 with a year (1970–2100) last;
//! - the macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`),
//!   `@hourly`, `@minutely` (`@every_minute`) and `@every_second`.
//!
//! In every field: a number, `*` or `?` (any), a range `a-b`, a step `*/n`, `a-b/n` or `a/n`
//! (from `a` to the field's end), and lists of these (`0,30`, `1-5,10`). A range whose end is
//! below its start wraps around: `51-4` in minutes is 51 to 59 then 0 to 4, `FRI-MON` is Friday
//! to Monday, `23-3/2` in hours is 23, 1 and 3. Months and days of week also take three-letter
//! names (`JAN`–`DEC`, `SUN`–`SAT`, in any case, also as a step's start: `tue/2`); full names
//! (`SUNDAY`) are refused. Day-of-week numbers follow standard cron: 0 and 7 are Sunday, 1 is
//! Monday.
//!
//! Special days, each as the whole field:
//! - day of month: `L` (the last day), `L-3` (three days before it), `15W` (the weekday nearest
//!   the 15th, within the month), `LW` and `L-3W` (the weekday nearest those);
//! - day of week: `5L` or `FRIL` (the month's last Friday), `MON#2` (its second Monday).
//!
//! When both day of month and day of week are restricted, a day must match both (`0 0 13 * FRI`
//! is Friday the 13th). An expression no date can match (`0 0 30 2 *`) is refused.
//!
//! Time zones: occurrences are computed in the recurring job's IANA zone, with Cronos's rules
//! for clock changes:
//! - when clocks move forward, an occurrence whose time does not exist that day fires at the
//!   first instant after the gap (a daily `30 2 * * *` fires at 03:00 that day);
//! - when clocks move back, a time that happens twice fires once, in the first pass, unless the
//!   expression is an interval: one with `*`, a range or a step in its second, minute or hour
//!   field (`*/30 * * * *`, `0 * * * *`), which fires in both passes, as real time goes on.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone,
    Timelike, Utc, Weekday,
};
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
/// assert!(Cron::parse("0 18 L * *").is_ok()); // the last day of every month
/// assert!(Cron::parse("61 * * * *").is_err());
/// assert!(Cron::parse("0 0 30 2 *").is_err()); // never fires
/// # Ok::<(), jobs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cron {
    expression: String,
}

impl Cron {
    /// Parses and validates an expression: its syntax, and that some date matches it.
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

    /// Every year on `month`/`day` at `hour:minute`. A date that never comes (February 30th)
    /// is an error.
    pub fn yearly_on(month: u32, day: u32, hour: u32, minute: u32) -> Result<Cron> {
        check("month", month, 1, 12)?;
        check("day", day, 1, 31)?;
        check("hour", hour, 0, 23)?;
        check("minute", minute, 0, 59)?;
        let cron = Cron::literal(&format!("{minute} {hour} {day} {month} *"));
        // February 30th and the like never come.
        cron.schedule()?;
        Ok(cron)
    }

    /// The parsed schedule of this expression.
    fn schedule(&self) -> Result<Schedule> {
        Schedule::parse(&self.expression).map_err(|reason| Error::InvalidCron {
            expression: self.expression.clone(),
            reason,
        })
    }

    /// The first occurrence strictly after `after`, computed in `zone`. `None` if there is none
    /// (a year field whose years are past).
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Result<Option<DateTime<Utc>>> {
        Ok(self.schedule()?.next_after(after, zone))
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

/// Why an expression was refused.
type Reason = String;

/// The first and last year a year field can name.
const FIRST_YEAR: u32 = 1970;
const LAST_YEAR: u32 = 2100;

/// One field's name, bounds and names for its values.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Three-letter names, the first for `min`.
    names: &'static [&'static str],
    /// The names' span, for messages.
    names_span: &'static str,
    /// How many values a range that wraps around goes through before it comes back to a value
    /// (7 for days of week, where 7 is 0); 0 when ranges cannot wrap.
    cycle: u32,
    /// The largest step.
    max_step: u32,
    /// Said after an out-of-range value.
    note: &'static str,
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    names_span: "",
    cycle: 60,
    max_step: 59,
    note: "",
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_span: "",
    cycle: 60,
    max_step: 59,
    note: "",
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_span: "",
    cycle: 24,
    max_step: 23,
    note: "",
};
const DAY_OF_MONTH: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
    names_span: "",
    cycle: 31,
    max_step: 31,
    note: "",
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    names_span: "JAN-DEC",
    cycle: 12,
    max_step: 12,
    note: "",
};
const DAY_OF_WEEK: Field = Field {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"],
    names_span: "SUN-SAT",
    cycle: 7,
    max_step: 7,
    note: " (0 and 7 are Sunday)",
};
const YEAR: Field = Field {
    name: "year",
    min: FIRST_YEAR,
    max: LAST_YEAR,
    names: &[],
    names_span: "",
    cycle: 0,
    max_step: LAST_YEAR - FIRST_YEAR,
    note: "",
};

impl Field {
    /// One value: a number within the bounds, or a name.
    fn value(&self, text: &str, item: &str) -> std::result::Result<u32, Reason> {
        if text.is_empty() {
            return Err(format!(
                "{} field item `{item}` is missing a value",
                self.name
            ));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            // Too many digits for a u32 is out of range too.
            let value = text.parse::<u32>().unwrap_or(u32::MAX);
            if !(self.min..=self.max).contains(&value) {
                return Err(format!(
                    "{} {value} must be between {} and {}{}",
                    self.name, self.min, self.max, self.note
                ));
            }
            return Ok(value);
        }
        if let Some(index) = self
            .names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
        {
            return Ok(self.min + index as u32);
        }
        Err(if self.names.is_empty() {
            format!("{} `{text}` is not a number", self.name)
        } else {
            format!(
                "{} `{text}` is not a number ({}-{}) or a three-letter name ({})",
                self.name, self.min, self.max, self.names_span
            )
        })
    }

    /// The step after `/`: 1 to the field's largest step.
    fn step(&self, text: &str, item: &str) -> std::result::Result<u32, Reason> {
        let max = self.max_step;
        if text.is_empty() {
            return Err(format!(
                "{} field item `{item}` has no step after `/`",
                self.name
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{} step `{text}` is not a number", self.name));
        }
        let step = text.parse::<u32>().unwrap_or(u32::MAX);
        if !(1..=max).contains(&step) {
            return Err(format!(
                "{} step {step} must be between 1 and {max}",
                self.name
            ));
        }
        Ok(step)
    }

    /// A list of numbers, names, `*`, `?`, ranges and steps, each value passed to `set`.
    /// Returns whether it has `*`, `?`, a range or a step (what makes an interval).
    fn list(&self, text: &str, set: &mut dyn FnMut(u32)) -> std::result::Result<bool, Reason> {
        let mut interval = false;
        for item in text.split(',') {
            if item.is_empty() {
                return Err(format!(
                    "{} field `{text}` has an empty list item",
                    self.name
                ));
            }
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(self.step(step, item)?)),
                None => (item, None),
            };
            let (start, end) = if range == "*" || range == "?" {
                interval = true;
                (self.min, self.max)
            } else if let Some((start, end)) = range.split_once('-') {
                interval = true;
                (self.value(start, item)?, self.value(end, item)?)
            } else {
                let start = self.value(range, item)?;
                (start, if step.is_some() { self.max } else { start })
            };
            interval |= step.is_some();
            let step = step.unwrap_or(1);
            if start <= end {
                for value in (start..=end).step_by(step as usize) {
                    set(value);
                }
            } else if self.cycle == 0 {
                return Err(format!(
                    "{} range `{range}` ends before it starts",
                    self.name
                ));
            } else {
                // Wraps around: from `start` to the field's end, then on from its start (for
                // days of week, 7 is Sunday, as 0).
                let cycle = self.cycle;
                let start = (start - self.min) % cycle;
                let distance = (end - self.min + cycle - start) % cycle;
                for offset in (0..=distance).step_by(step as usize) {
                    set(self.min + (start + offset) % cycle);
                }
            }
        }
        Ok(interval)
    }
}

/// Days of month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Days {
    /// Bit `n` for day `n`.
    Set(u32),
    /// `L` and `L-offset`; with `W`, the weekday nearest that day.
    Last { offset: u32, weekday: bool },
    /// `nW`: the weekday nearest day `n`.
    NearestWeekday(u32),
}

/// Days of week, 0 for Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weekdays {
    /// Bit `n` for day `n`.
    Set(u8),
    /// `dL`: the month's last day `d`.
    Last(u32),
    /// `d#n`: the month's `n`th day `d`.
    Nth(u32, u32),
}

/// The years of a year field, 1970 to 2100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Years([u64; 3]);

impl Years {
    fn insert(&mut self, year: u32) {
        let index = (year - FIRST_YEAR) as usize;
        self.0[index / 64] |= 1 << (index % 64);
    }

    fn contains(&self, year: i32) -> bool {
        let Some(index) = year
            .checked_sub(FIRST_YEAR as i32)
            .and_then(|index| usize::try_from(index).ok())
            .filter(|index| *index <= (LAST_YEAR - FIRST_YEAR) as usize)
        else {
            return false;
        };
        self.0[index / 64] & (1 << (index % 64)) != 0
    }

    /// The first listed year from `year` on.
    fn first_from(&self, year: i32) -> Option<i32> {
        (year.max(FIRST_YEAR as i32)..=LAST_YEAR as i32).find(|&year| self.contains(year))
    }

    /// The last listed year.
    fn last(&self) -> Option<i32> {
        (FIRST_YEAR as i32..=LAST_YEAR as i32)
            .rev()
            .find(|&year| self.contains(year))
    }
}

/// A parsed expression: what matches, as bit sets of each field, plus the special days.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Schedule {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: Days,
    /// Bit `n` for month `n`.
    months: u16,
    weekdays: Weekdays,
    /// `None`: every year.
    years: Option<Years>,
    /// `*`, `?`, a range or a step in the second, minute or hour field: fires in both passes of
    /// a repeated hour.
    interval: bool,
}

/// The longest a search for a matching day runs: past it, nothing is found.
const SEARCH_YEARS: i32 = 400;

impl Schedule {
    fn parse(expression: &str) -> std::result::Result<Schedule, Reason> {
        let expression = expand_macro(expression)?;
        let mut fields = [""; 7];
        let mut count = 0;
        for field in expression.split_whitespace() {
            if count < fields.len() {
                fields[count] = field;
            }
            count += 1;
        }
        let (second, rest) = match count {
            5 => (None, &fields[..5]),
            6 | 7 => (Some(fields[0]), &fields[1..count]),
            n => {
                return Err(format!(
                    "expected 5 fields (minute hour day month weekday), 6 (with seconds first) or 7 (with a year last), found {n}"
                ))
            }
        };
        let mut interval = false;
        let mut seconds = 0u64;
        match second {
            Some(text) => interval |= SECOND.list(text, &mut |v| seconds |= 1 << v)?,
            None => seconds = 1,
        }
        let mut minutes = 0u64;
        interval |= MINUTE.list(rest[0], &mut |v| minutes |= 1 << v)?;
        let mut hours = 0u64;
        interval |= HOUR.list(rest[1], &mut |v| hours |= 1 << v)?;
        let days = parse_days(rest[2])?;
        let mut months = 0u16;
        MONTH.list(rest[3], &mut |v| months |= 1 << v)?;
        let weekdays = parse_weekdays(rest[4])?;
        let years = match rest.get(5) {
            Some(text) => {
                let mut years = Years([0; 3]);
                YEAR.list(text, &mut |v| years.insert(v))?;
                Some(years)
            }
            None => None,
        };
        let schedule = Schedule {
            seconds,
            minutes,
            hours,
            days,
            months,
            weekdays,
            years,
            interval,
        };
        schedule.check_fires()?;
        Ok(schedule)
    }

    /// Refuses an expression no date matches. Calendars repeat every 28 years between 1901
    /// and 2099, so 2001 to 2028 holds every combination of month, day and weekday.
    fn check_fires(&self) -> std::result::Result<(), Reason> {
        let (from, until) = match &self.years {
            None => (ymd(2001, 1, 1), ymd(2028, 12, 31)),
            Some(years) => (
                years
                    .first_from(FIRST_YEAR as i32)
                    .and_then(|y| ymd(y, 1, 1)),
                years.last().and_then(|y| ymd(y, 12, 31)),
            ),
        };
        let fires = match (from, until) {
            (Some(from), Some(until)) => self.next_date(from, until).is_some(),
            _ => false,
        };
        if fires {
            Ok(())
        } else {
            let fields = if self.years.is_some() {
                "day of month, month, day of week and year"
            } else {
                "day of month, month and day of week"
            };
            Err(format!(
                "it never fires: no date matches its {fields} together"
            ))
        }
    }

    /// The first instant after `after` whose wall clock time in `zone` matches, by Cronos's
    /// rules for clock changes (see the module documentation).
    fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        // Occurrences fall on whole seconds: none lies between `after` and its second.
        let after = after.with_nanosecond(0)?;
        let local = after.with_timezone(&zone);
        let wall = local.naive_local();
        let LocalResult::Ambiguous(earlier, later) = zone.from_local_datetime(&wall) else {
            return self.find(wall, false).map(|next| resolve(zone, next));
        };
        // `after` is in a repeated range of wall clock times, [start, end).
        let (start, end) = repeated_range(zone, &earlier, &later)?;
        let mut from = wall;
        let mut inclusive = false;
        if local == earlier {
            // The first pass: what matches before the range ends comes in it.
            if let Some(next) = self.find(from, false).filter(|next| *next < end) {
                return Some(resolve(zone, next));
            }
            from = start;
            inclusive = true;
        }
        // The second pass: only intervals fire again in it.
        if self.interval {
            if let Some(next) = self.find(from, inclusive).filter(|next| *next < end) {
                return zone
                    .from_local_datetime(&next)
                    .latest()
                    .map(|next| next.with_timezone(&Utc));
            }
        }
        self.find(end, true).map(|next| resolve(zone, next))
    }

    /// The first matching wall clock time from `from` (included or not).
    fn find(&self, from: NaiveDateTime, inclusive: bool) -> Option<NaiveDateTime> {
        let start = if inclusive {
            from
        } else {
            from.checked_add_signed(Duration::seconds(1))?
        };
        let until = ymd(start.year().checked_add(SEARCH_YEARS)?, 12, 31)?;
        let mut date = start.date();
        loop {
            let day = self.next_date(date, until)?;
            let time = if day == start.date() {
                (start.hour(), start.minute(), start.second())
            } else {
                (0, 0, 0)
            };
            if let Some((hour, minute, second)) = self.next_time(time) {
                return day.and_hms_opt(hour, minute, second);
            }
            date = day.succ_opt()?;
        }
    }

    /// The first matching time of day from `(hour, minute, second)` on.
    fn next_time(&self, (hour, minute, second): (u32, u32, u32)) -> Option<(u32, u32, u32)> {
        let first_minute = first_bit(self.minutes, 0)?;
        let first_second = first_bit(self.seconds, 0)?;
        let matching_hour = first_bit(self.hours, hour)?;
        if matching_hour > hour {
            return Some((matching_hour, first_minute, first_second));
        }
        if let Some(matching_minute) = first_bit(self.minutes, minute) {
            if matching_minute > minute {
                return Some((hour, matching_minute, first_second));
            }
            if let Some(matching_second) = first_bit(self.seconds, second) {
                return Some((hour, minute, matching_second));
            }
            if let Some(next_minute) = first_bit(self.minutes, minute + 1) {
                return Some((hour, next_minute, first_second));
            }
        }
        let next_hour = first_bit(self.hours, hour + 1)?;
        Some((next_hour, first_minute, first_second))
    }

    /// The first matching date from `from` to `until`.
    fn next_date(&self, from: NaiveDate, until: NaiveDate) -> Option<NaiveDate> {
        let mut date = from;
        while date <= until {
            let (year, month, day) = (date.year(), date.month(), date.day());
            if let Some(years) = &self.years {
                let listed = years.first_from(year)?;
                if listed != year {
                    date = ymd(listed, 1, 1)?;
                    continue;
                }
            }
            let day_skips_month = matches!(self.days, Days::Set(days) if days >> day == 0);
            if self.months & (1 << month) == 0 || day_skips_month {
                date = match first_bit(u64::from(self.months), month + 1).filter(|m| *m <= 12) {
                    Some(next) => ymd(year, next, 1)?,
                    None => ymd(year.checked_add(1)?, 1, 1)?,
                };
                continue;
            }
            if self.day_matches(date) {
                return Some(date);
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// Whether the day of month and day of week fields match `date` (its month is known to).
    fn day_matches(&self, date: NaiveDate) -> bool {
        let day = date.day();
        let last = days_in_month(date.year(), date.month());
        let weekday = date.weekday().num_days_from_sunday();
        let day_of_month = match self.days {
            Days::Set(days) => days & (1 << day) != 0,
            Days::Last {
                offset,
                weekday: false,
            } => last > offset && day == last - offset,
            Days::Last {
                offset,
                weekday: true,
            } => last > offset && nearest_weekday(day, weekday, last - offset, last) == day,
            Days::NearestWeekday(target) => {
                target <= last && nearest_weekday(day, weekday, target, last) == day
            }
        };
        day_of_month
            && match self.weekdays {
                Weekdays::Set(days) => days & (1 << weekday) != 0,
                Weekdays::Last(wanted) => weekday == wanted && day + 7 > last,
                Weekdays::Nth(wanted, nth) => weekday == wanted && (day - 1) / 7 + 1 == nth,
            }
    }
}

/// Expands a macro to its fields; anything else is returned as it is.
fn expand_macro(expression: &str) -> std::result::Result<&str, Reason> {
    if !expression.starts_with('@') {
        return Ok(expression);
    }
    const MACROS: [(&str, &str); 10] = [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@minutely", "* * * * *"),
        ("@every_minute", "* * * * *"),
        ("@every_second", "* * * * * *"),
    ];
    MACROS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(expression))
        .map(|(_, fields)| *fields)
        .ok_or_else(|| {
            format!(
                "unknown macro `{expression}`; expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @minutely, @every_minute, @every_second"
            )
        })
}

/// The day-of-month field: a list, or one of `L`, `L-n`, `LW`, `L-nW`, `nW`.
fn parse_days(text: &str) -> std::result::Result<Days, Reason> {
    if let Some(rest) = text.strip_prefix(['L', 'l']) {
        let (rest, weekday) = match rest.strip_suffix(['W', 'w']) {
            Some(rest) => (rest, true),
            None => (rest, false),
        };
        let offset = match rest.strip_prefix('-') {
            None if rest.is_empty() => 0,
            Some(offset) if !offset.is_empty() && offset.bytes().all(|b| b.is_ascii_digit()) => {
                let offset = offset.parse::<u32>().unwrap_or(u32::MAX);
                if offset > 30 {
                    return Err(format!(
                        "day of month `{text}`: the offset after `L-` must be between 0 and 30"
                    ));
                }
                offset
            }
            _ => {
                return Err(format!(
                    "day of month `{text}` is not `L`, `L-n`, `LW` or `L-nW` (n from 0 to 30)"
                ))
            }
        };
        return Ok(Days::Last { offset, weekday });
    }
    if let Some(day) = text.strip_suffix(['W', 'w']) {
        if day.is_empty() || !day.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "day of month `{text}`: `W` follows one day (`15W`) or `L` (`LW`)"
            ));
        }
        return Ok(Days::NearestWeekday(DAY_OF_MONTH.value(day, text)?));
    }
    let mut days = 0u32;
    DAY_OF_MONTH.list(text, &mut |v| days |= 1 << v)?;
    Ok(Days::Set(days))
}

/// The day-of-week field: a list, or one of `dL`, `d#n`.
fn parse_weekdays(text: &str) -> std::result::Result<Weekdays, Reason> {
    if let Some((day, nth)) = text.split_once('#') {
        let day = DAY_OF_WEEK.value(day, text)? % 7;
        let digits = !nth.is_empty() && nth.bytes().all(|b| b.is_ascii_digit());
        let nth = match nth.parse::<u32>() {
            Ok(nth) if digits && (1..=5).contains(&nth) => nth,
            _ => {
                return Err(format!(
                    "day of week `{text}`: the number after `#` must be between 1 and 5"
                ))
            }
        };
        return Ok(Weekdays::Nth(day, nth));
    }
    if let Some(day) = text.strip_suffix(['L', 'l']) {
        if day.is_empty() {
            return Err(format!(
                "day of week `{text}`: `L` follows a day (`5L` or `FRIL`, the month's last Friday)"
            ));
        }
        return Ok(Weekdays::Last(DAY_OF_WEEK.value(day, text)? % 7));
    }
    let mut days = 0u8;
    DAY_OF_WEEK.list(text, &mut |v| days |= 1 << (v % 7))?;
    Ok(Weekdays::Set(days))
}

/// The first set bit at or above `from`.
fn first_bit(bits: u64, from: u32) -> Option<u32> {
    let above = bits.checked_shr(from)?.checked_shl(from)?;
    (above != 0).then(|| above.trailing_zeros())
}

fn ymd(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The weekday nearest day `target` of the month, without leaving the month; `day` is any day
/// of that month and `weekday` its day of week (0 Sunday).
fn nearest_weekday(day: u32, weekday: u32, target: u32, last: u32) -> u32 {
    let target_weekday = (weekday + 35 + target - day) % 7;
    match target_weekday {
        // Saturday: the Friday before, or the Monday after when that leaves the month.
        6 if target == 1 => 3,
        6 => target - 1,
        // Sunday: the Monday after, or the Friday before when that leaves the month.
        0 if target == last => target - 2,
        0 => target + 1,
        _ => target,
    }
}

/// The instant of a matching wall clock time: the first when it happens twice, and the first
/// instant after the gap when it does not happen (clocks moved forward past it).
fn resolve(zone: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&wall) {
        LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => time.with_timezone(&Utc),
        LocalResult::None => after_gap(zone, wall),
    }
}

/// The first instant after the gap that the wall clock time `wall` falls in.
fn after_gap(zone: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    let exists = |seconds: i64| {
        !matches!(
            zone.from_local_datetime(&(wall + Duration::seconds(seconds))),
            LocalResult::None
        )
    };
    // No zone has skipped more than a day; double until past the gap, then halve.
    let (mut missing, mut existing) = (0i64, 3600i64);
    while !exists(existing) && existing < 4 * 86_400 {
        missing = existing;
        existing *= 2;
    }
    while existing - missing > 1 {
        let middle = missing + (existing - missing) / 2;
        if exists(middle) {
            existing = middle;
        } else {
            missing = middle;
        }
    }
    let first = wall + Duration::seconds(existing);
    match zone.from_local_datetime(&first) {
        LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => time.with_timezone(&Utc),
        // Unreachable for real zones; the wall clock time read as UTC keeps the order.
        LocalResult::None => first.and_utc(),
    }
}

/// The wall clock times that happen twice around `earlier` and `later`, the two instants of one
/// of them: `[start, end)`.
fn repeated_range(
    zone: Tz,
    earlier: &DateTime<Tz>,
    later: &DateTime<Tz>,
) -> Option<(NaiveDateTime, NaiveDateTime)> {
    let before = earlier.offset().fix();
    let after = later.offset().fix();
    let offset_at = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0)
            .map(|instant| zone.offset_from_utc_datetime(&instant.naive_utc()).fix())
    };
    // The change of offset happens after `earlier` and no later than `later`: halve the
    // seconds between them down to it.
    let (mut low, mut high) = (earlier.timestamp(), later.timestamp());
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if offset_at(middle)? == after {
            high = middle;
        } else {
            low = middle;
        }
    }
    let change = DateTime::from_timestamp(high, 0)?.naive_utc();
    Some((change + after, change + before))
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
        "@minutely" | "@every_minute" => return Some("every minute".into()),
        "@every_second" => return Some("every second".into()),
        _ => expression
            .split_whitespace()
            .map(|field| if field == "?" { "*" } else { field })
            .collect(),
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
        assert!(Cron::yearly_on(2, 30, 0, 0).is_err());
        assert!(Cron::yearly_on(2, 29, 0, 0).is_ok());
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
        // Spring forward (New York, 2026-03-08): 02:30 does not exist that day; it fires at
        // 03:00 EDT, the first instant after the gap.
        let moved = next("30 2 * * *", "2026-03-07T08:00:00Z", "America/New_York");
        assert_eq!(moved, Some(utc("2026-03-08T07:00:00Z")));
        let following = next("30 2 * * *", "2026-03-08T07:00:00Z", "America/New_York");
        assert_eq!(following, Some(utc("2026-03-09T06:30:00Z")));
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
            ("0 0 5 * ?", "at 00:00 on day 5 of every month"),
            ("0 0 L * *", "cron `0 0 L * *`"),
            ("0 0 0 1 1 * 2030", "cron `0 0 0 1 1 * 2030`"),
        ] {
            assert_eq!(Cron::from(expression).describe(), words, "{expression}");
        }
    }

    #[test]
    fn nearest_weekday_stays_in_the_month() {
        // 2026-08-01 is a Saturday, 2026-08-31 a Monday; day 15 (Saturday) and 16 (Sunday).
        let saturday_first = |target| nearest_weekday(1, 6, target, 31);
        assert_eq!(saturday_first(1), 3);
        assert_eq!(saturday_first(15), 14);
        assert_eq!(saturday_first(16), 17);
        assert_eq!(saturday_first(17), 17);
        // 2026-05-31 is a Sunday: the Friday before.
        assert_eq!(nearest_weekday(31, 0, 31, 31), 29);
    }

    #[test]
    fn wrapping_ranges_expand_as_a_cycle() {
        let values = |field: &Field, text: &str| {
            let mut values = Vec::new();
            field.list(text, &mut |v| values.push(v)).expect("valid");
            values
        };
        assert_eq!(values(&SECOND, "57-5/3"), [57, 0, 3]);
        assert_eq!(values(&HOUR, "23-3/2"), [23, 1, 3]);
        assert_eq!(values(&DAY_OF_MONTH, "20-5/5"), [20, 25, 30, 4]);
        assert_eq!(values(&MONTH, "9-8/3"), [9, 12, 3, 6]);
        assert_eq!(values(&DAY_OF_WEEK, "sat-tue/2"), [6, 1]);
        assert_eq!(values(&DAY_OF_WEEK, "FRI-MON"), [5, 6, 0, 1]);
        assert_eq!(values(&DAY_OF_WEEK, "tue/2"), [2, 4, 6]);
        assert_eq!(values(&DAY_OF_WEEK, "5-7"), [5, 6, 7]);
        assert!(YEAR.list("2030-2025", &mut |_| {}).is_err());
    }

    #[test]
    fn interval_is_a_star_range_or_step_in_second_minute_or_hour() {
        for (expression, interval) in [
            ("*/30 * * * *", true),
            ("30 * * * *", true),
            ("0-30 1 * * *", true),
            ("0 0,30 1 * * *", false),
            ("30 1 * 1-6 1-5", false),
            ("@daily", false),
            ("@hourly", true),
        ] {
            let schedule = Schedule::parse(expression).expect("valid");
            assert_eq!(schedule.interval, interval, "{expression}");
        }
    }

    #[test]
    fn repeated_range_and_gap_end_are_found() {
        let zone = Tz::America__New_York;
        let wall =
            |text: &str| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("valid");
        let LocalResult::Ambiguous(earlier, later) =
            zone.from_local_datetime(&wall("2016-11-06 01:20:00"))
        else {
            panic!("01:20 happens twice");
        };
        assert_eq!(
            repeated_range(zone, &earlier, &later),
            Some((wall("2016-11-06 01:00:00"), wall("2016-11-06 02:00:00")))
        );
        assert_eq!(
            after_gap(zone, wall("2016-03-13 02:30:00")),
            utc("2016-03-13T07:00:00Z")
        );
    }
}
