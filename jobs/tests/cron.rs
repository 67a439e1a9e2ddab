//! `Cron` read as Hangfire users write it: the syntax, next occurrences and daylight saving time
//! rules of Cronos (the parser Hangfire uses), checked against cases from its documentation and
//! test suite, and the project's own choices where Hangfire has none.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use jobs::Cron;

const EASTERN: Tz = Tz::America__New_York;
const PARIS: Tz = Tz::Europe__Paris;
const SANTIAGO: Tz = Tz::America__Santiago;
const LORD_HOWE: Tz = Tz::Australia__Lord_Howe;
const AMMAN: Tz = Tz::Asia__Amman;

/// An instant written `2016-11-06 01:30 -04:00` (with its offset, for times a clock change makes
/// ambiguous) or `2016-12-09 17:35[:20]` / `2016-12-09` (a local time in `zone`).
fn instant(text: &str, zone: Tz) -> DateTime<Utc> {
    let has_offset = text
        .rsplit(' ')
        .next()
        .is_some_and(|last| last.starts_with(['+', '-']) && last.contains(':'));
    if has_offset {
        for format in ["%Y-%m-%d %H:%M:%S %:z", "%Y-%m-%d %H:%M %:z"] {
            if let Ok(time) = DateTime::parse_from_str(text, format) {
                return time.with_timezone(&Utc);
            }
        }
        panic!("bad time with offset `{text}`");
    }
    let local = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
        })
        .unwrap_or_else(|| panic!("bad local time `{text}`"));
    zone.from_local_datetime(&local)
        .single()
        .unwrap_or_else(|| panic!("`{text}` is not one instant in {zone}"))
        .with_timezone(&Utc)
}

/// The next occurrence, from `from` excluded, or from `from` included (Cronos's `inclusive`),
/// which is the same as from one second earlier excluded: occurrences fall on whole seconds.
fn next(expression: &str, zone: Tz, from: &str, inclusive: bool) -> Option<DateTime<Utc>> {
    let cron = Cron::parse(expression)
        .unwrap_or_else(|error| panic!("`{expression}` should parse: {error}"));
    let mut from = instant(from, zone);
    if inclusive {
        from -= Duration::seconds(1);
    }
    cron.next_after(from, zone)
        .unwrap_or_else(|error| panic!("`{expression}`: {error}"))
}

/// Runs a table of `(expression, from, expected, inclusive)` in `zone`; reports every row that
/// fails, not only the first.
fn check_table(zone: Tz, table: &[(&str, &str, &str, bool)]) {
    let failures: Vec<String> = table
        .iter()
        .filter_map(|&(expression, from, expected, inclusive)| {
            let got = std::panic::catch_unwind(|| next(expression, zone, from, inclusive));
            let expected = instant(expected, zone);
            match got {
                Ok(Some(got)) if got == expected => None,
                Ok(got) => Some(format!(
                    "`{expression}` from {from} ({}): expected {} ({expected}), got {}",
                    if inclusive { "included" } else { "excluded" },
                    expected.with_timezone(&zone),
                    got.map_or("none".to_owned(), |got| format!(
                        "{} ({got})",
                        got.with_timezone(&zone)
                    )),
                )),
                Err(_) => Some(format!("`{expression}` from {from}: panicked")),
            }
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}

fn parse_error(expression: &str) -> String {
    match Cron::parse(expression) {
        Ok(_) => panic!("`{expression}` should be refused"),
        Err(error) => {
            assert!(
                matches!(error, jobs::Error::InvalidCron { .. }),
                "`{expression}`: {error:?}"
            );
            error.to_string()
        }
    }
}

/// Cases from Cronos's test suite (Eastern time, `from` included as there).
#[test]
fn cronos_documented_cases() {
    check_table(
        EASTERN,
        &[
            // Plain fields, lists, steps from a value.
            (
                "20 * * * * *",
                "2016-12-09 17:35:40",
                "2016-12-09 17:36:20",
                true,
            ),
            (
                "10/5 * * * * *",
                "2016-12-09 17:35:12",
                "2016-12-09 17:35:15",
                true,
            ),
            (
                "5-8,19,20,35-41 * * * * *",
                "2016-12-09 17:35:21",
                "2016-12-09 17:35:35",
                true,
            ),
            (
                "* 10/5 * * * *",
                "2016-12-09 15:59",
                "2016-12-09 16:10",
                true,
            ),
            (
                "* * 4/5 * * *",
                "2016-12-09 05:00",
                "2016-12-09 09:00",
                true,
            ),
            ("* * * */4 * *", "2016-12-02", "2016-12-05", true),
            (
                "* * * 5-8,19,20,29-30 * *",
                "2017-02-27",
                "2017-03-05",
                true,
            ),
            ("* * * 30-31 * *", "2016-02-27", "2016-03-30", true),
            ("* * * * mar-dec *", "2016-02-09", "2016-03-01", true),
            (
                "* * * * 2-4,JUN,7,SEP-nov *",
                "2016-05-20",
                "2016-06-01",
                true,
            ),
            ("* * * * */5 *", "2016-12-09", "2017-01-01", true),
            ("* * * * * 3,5,7", "2016-12-10", "2016-12-11", true),
            ("* * * * * 4-07", "2016-12-12", "2016-12-15", true),
            ("* * * * * */5", "2016-12-10", "2016-12-11", true),
            ("00 00 00 11 12 7", "2016-12-09", "2016-12-11", true),
            (
                "54 47 17 09 DEC FRI",
                "2016-07-05 00:00:00",
                "2016-12-09 17:47:54",
                true,
            ),
            // Day of month and day of week together: both must match (Friday the 13th).
            (
                "00 05 18 13 * 05",
                "2016-09-01 00:00:00",
                "2017-01-13 18:05:00",
                true,
            ),
            ("0 0 0 29 2 *", "2016-03-10 00:00", "2020-02-29 00:00", true),
            (
                "0 57,20/20,30/20,32-34/2,58 * * * *",
                "2017-04-17 17:35",
                "2017-04-17 17:40",
                true,
            ),
            (
                "0 57,20/20,30/20,32-34/2,58 * * * *",
                "2017-04-17 17:59",
                "2017-04-17 18:20",
                true,
            ),
            // Ranges that wrap around.
            (
                "55-5 * * * * ?",
                "2016-12-09 17:35:42",
                "2016-12-09 17:35:55",
                true,
            ),
            (
                "55-5 * * * * ?",
                "2016-12-09 17:36:05",
                "2016-12-09 17:36:05",
                true,
            ),
            (
                "55-5 * * * * ?",
                "2016-12-09 17:36:06",
                "2016-12-09 17:36:55",
                true,
            ),
            (
                "57-5/3 * * * * ?",
                "2016-12-09 17:36:58",
                "2016-12-09 17:37:00",
                true,
            ),
            (
                "57-5/3 * * * * ?",
                "2016-12-09 17:37:01",
                "2016-12-09 17:37:03",
                true,
            ),
            (
                "57-5/3 * * * * ?",
                "2016-12-09 17:37:04",
                "2016-12-09 17:37:57",
                true,
            ),
            (
                "59-58 * * * * ?",
                "2016-12-09 17:37:58",
                "2016-12-09 17:37:58",
                true,
            ),
            (
                "* 51-4 * * * *",
                "2016-12-09 17:35",
                "2016-12-09 17:51",
                true,
            ),
            (
                "* 51-4 * * * *",
                "2016-12-09 18:04",
                "2016-12-09 18:04",
                true,
            ),
            (
                "* 51-4 * * * *",
                "2016-12-09 18:05",
                "2016-12-09 18:51",
                true,
            ),
            (
                "* 56-4/4 * * * *",
                "2016-12-09 17:57",
                "2016-12-09 18:00",
                true,
            ),
            (
                "* 56-4/4 * * * *",
                "2016-12-09 18:05",
                "2016-12-09 18:56",
                true,
            ),
            (
                "* * 23-3/2 * * *",
                "2016-12-09 17:30",
                "2016-12-09 23:00",
                true,
            ),
            (
                "* * 23-3/2 * * *",
                "2016-12-09 00:30",
                "2016-12-09 01:00",
                true,
            ),
            (
                "* * 23-3/2 * * *",
                "2016-12-09 02:00",
                "2016-12-09 03:00",
                true,
            ),
            (
                "* * 23-3/2 * * *",
                "2016-12-09 04:00",
                "2016-12-09 23:00",
                true,
            ),
            (
                "* * 23-22 * * *",
                "2016-12-09 22:10",
                "2016-12-09 22:10",
                true,
            ),
            ("* * * 20-5/5 * *", "2017-05-21", "2017-05-25", true),
            ("* * * 20-5/5 * *", "2017-06-01", "2017-06-04", true),
            ("* * * 20-5/5 * *", "2017-06-05", "2017-06-20", true),
            ("* * * 20-5/5 * *", "2018-02-26", "2018-03-04", true),
            ("* * * * 12-2 *", "2016-05-19", "2016-12-01", true),
            ("* * * * 12-2 *", "2017-03-19", "2017-12-01", true),
            ("* * * * 9-8/3 *", "2016-10-19", "2016-12-01", true),
            ("* * * * 9-8/3 *", "2017-01-19", "2017-03-01", true),
            ("* * * ? * sat-tue", "2016-12-11", "2016-12-11", true),
            ("* * * ? * sat-tue", "2016-12-14", "2016-12-17", true),
            ("* * * ? * sat-tue/2", "2016-12-11", "2016-12-12", true),
            ("* * * ? * sat-tue/2", "2016-12-13", "2016-12-17", true),
            // A day name as a step's start.
            ("* * * * * tue/2", "2016-12-09", "2016-12-10", true),
            ("* * * * * tue/2", "2016-12-11", "2016-12-13", true),
            ("* * * * * FRI/3", "2016-12-03", "2016-12-09", true),
            // `L` in day of month, with an offset.
            ("* * * L * *", "2016-02-05", "2016-02-29", true),
            ("* * * L * *", "2017-02-28", "2017-02-28", true),
            ("* * * L * *", "2016-04-05", "2016-04-30", true),
            ("* * * L-1 * *", "2016-01-31", "2016-02-28", true),
            ("* * * L-2 * *", "2017-02-01", "2017-02-26", true),
            ("* * * L-28 * *", "2017-02-01", "2017-03-03", true),
            ("* * * L-30 * *", "2016-04-01", "2016-05-01", true),
            // `L` in day of week: the last such day of the month.
            ("* * * * * 5L", "2017-01-01", "2017-01-27", true),
            ("* * * * * FRIL", "2017-01-01", "2017-01-27", true),
            ("* * * * * 7L", "2016-12-31", "2017-01-29", true),
            ("* * * * * 0L", "2017-01-29", "2017-01-29", true),
            // `#`: the nth such day of the month.
            ("* * * * * SUN#1", "2017-01-01", "2017-01-01", true),
            ("* * * * * 0#1", "2016-12-10", "2017-01-01", true),
            ("* * * * * 5#3", "2017-01-21", "2017-02-17", true),
            ("* * * * * 2#5", "2017-02-01", "2017-05-30", true),
            // `W`: the nearest weekday, within the month.
            ("* * * 1W * *", "2017-01-01", "2017-01-02", true),
            ("* * * 7W * *", "2017-01-07", "2017-02-07", true),
            ("* * * 30W * *", "2017-04-27", "2017-04-28", true),
            ("* * * 1W * *", "2017-04-01", "2017-04-03", true),
            (
                "0 30 17 31W * *",
                "2018-03-30 17:45",
                "2018-05-31 17:30",
                true,
            ),
            (
                "0 30 17 15W * *",
                "2016-12-30 17:45",
                "2017-01-16 17:30",
                true,
            ),
            (
                "0 30 17 27W * 1L",
                "2017-03-10 17:45",
                "2017-03-27 17:30",
                true,
            ),
            (
                "0 30 17 27W * 1#4",
                "2017-03-10 17:45",
                "2017-03-27 17:30",
                true,
            ),
            ("* * * LW * *", "2017-09-01", "2017-09-29", true),
            ("* * * LW * *", "2017-09-30", "2017-10-31", true),
            ("* * * LW * *", "2017-04-29", "2017-05-31", true),
            ("* * * L-3W * *", "2017-01-01", "2017-01-27", true),
            ("* * * L-0W * *", "2016-02-01", "2016-02-29", true),
            ("* * * L-2W * *", "2016-02-01", "2016-02-26", true),
            ("* * * L-3W * *", "2017-02-01", "2017-02-24", true),
            // `?` is `*`, in any field; names and letters in any case.
            ("? ? ? ? ? ?", "2016-12-09 16:46", "2016-12-09 16:46", true),
            ("* * * ? 11 *", "2016-10-09", "2016-11-01", true),
            ("* * * lw * *", "2017-05-30", "2017-05-31", true),
            (
                "0 30 17 27w * mOnL",
                "2017-03-10 17:45",
                "2017-03-27 17:30",
                true,
            ),
            // Five fields.
            (
                "* * * * *",
                "2016-12-09 17:35:01",
                "2016-12-09 17:36:00",
                true,
            ),
            ("30 17 LW * *", "2017-09-29 17:45", "2017-10-31 17:30", true),
            ("* * ? 11 *", "2016-10-09", "2016-11-01", true),
            ("? ? ? ? ?", "2016-12-09 16:46", "2016-12-09 16:46", true),
            // Macros.
            (
                "@every_second",
                "2017-03-23 16:46:05",
                "2017-03-23 16:46:05",
                true,
            ),
            (
                "@every_minute",
                "2017-03-23 16:46",
                "2017-03-23 16:46",
                true,
            ),
            ("@hourly", "2017-03-23 16:46", "2017-03-23 17:00", true),
            ("@MIDNIGHT", "2017-03-23 16:46", "2017-03-24 00:00", true),
            ("@monthly", "2017-03-23 16:46", "2017-04-01 00:00", true),
            ("@annually", "2017-03-23 16:46", "2018-01-01 00:00", true),
        ],
    );
}

#[test]
fn last_day_of_month_and_last_weekday_of_month() {
    check_table(
        EASTERN,
        &[
            ("0 0 L * *", "2026-02-01", "2026-02-28", true),
            ("0 0 L-3 * *", "2026-02-01", "2026-02-25", true),
            ("0 0 * * 5L", "2026-01-01", "2026-01-30", true),
        ],
    );
}

#[test]
fn nearest_weekday_and_last_weekday() {
    check_table(
        EASTERN,
        &[
            // 2026-02-15 is a Sunday: 15W is Monday the 16th; 2026-01-31 is a Saturday: LW is
            // Friday the 30th.
            ("0 0 15W * *", "2026-02-01", "2026-02-16", true),
            ("0 0 LW * *", "2026-01-01", "2026-01-30", true),
        ],
    );
}

#[test]
fn nth_day_of_week_of_the_month() {
    check_table(
        EASTERN,
        &[
            ("0 9 * * MON#2", "2026-01-01", "2026-01-12 09:00", true),
            ("0 9 ? * 1#1", "2026-01-06", "2026-02-02 09:00", true),
        ],
    );
}

#[test]
fn question_mark_means_any() {
    check_table(
        EASTERN,
        &[
            ("0 0 5 * ?", "2026-01-06", "2026-02-05", true),
            ("? ? ? ? ?", "2026-01-06 10:20", "2026-01-06 10:20", true),
        ],
    );
}

#[test]
fn ranges_that_wrap_around() {
    check_table(
        EASTERN,
        &[
            ("51-4 * * * *", "2026-01-06 10:20", "2026-01-06 10:51", true),
            ("51-4 * * * *", "2026-01-06 11:03", "2026-01-06 11:03", true),
            // 2026-01-06 is a Tuesday; FRI-MON is Friday, Saturday, Sunday and Monday.
            ("0 0 * * FRI-MON", "2026-01-06", "2026-01-09", true),
            ("0 0 * * FRI-MON", "2026-01-10 01:00", "2026-01-11", true),
            (
                "0 23-3/2 * * *",
                "2026-01-06 04:00",
                "2026-01-06 23:00",
                true,
            ),
            (
                "0 23-3/2 * * *",
                "2026-01-06 23:30",
                "2026-01-07 01:00",
                true,
            ),
        ],
    );
}

#[test]
fn day_name_as_the_start_of_a_step() {
    // 2026-01-07 is a Wednesday; tue/2 is Tuesday, Thursday and Saturday.
    check_table(
        EASTERN,
        &[
            ("0 0 * * tue/2", "2026-01-07", "2026-01-08", true),
            ("0 0 * * tue/2", "2026-01-09", "2026-01-10", true),
        ],
    );
}

#[test]
fn full_day_names_are_refused() {
    for expression in [
        "* * * * SUNDAY",
        "* * * * * MONDAY",
        "0 0 * * FRIDAY-SUN",
        "* * * * JANUARY *",
    ] {
        let error = parse_error(expression);
        assert!(error.contains("three-letter"), "{error}");
    }
}

/// Cronos's invalid expressions (a selection of its test suite): each is refused.
#[test]
fn cronos_invalid_expressions_are_refused() {
    for expression in [
        "-1 * * * * *",
        "5- * * * * *",
        ", * * * * *",
        ",1 * * * * *",
        "*/ * * * * *",
        "1/0 * * * * *",
        "1/60 * * * * *",
        "1/k * * * * *",
        "1k * * * * *",
        "*#1 * * * * *",
        "L * * * * *",
        "W * * * * *",
        "60 * * * *",
        "5#3 * * * *",
        "* 25 * * *",
        "* 1/24 * * *",
        "* * 32 * *",
        "* * 10-32 * *",
        "* * 1/32 * *",
        "* * MON * *",
        "* * 4#1 * *",
        "* * W * *",
        "* * 1-2W * *",
        "* * 1,2W * *",
        "* * 1LW * *",
        "* * L-31 * *",
        "* * * 13 *",
        "* * * 1/13 *",
        "* * * 2#2 *",
        "* * * L *",
        "* * * * 8",
        "* * * * 1/8",
        "* * * * 0#",
        "* * * * 5#6",
        "* * * * SUN#050",
        "* * * * 0#0",
        "* * * * SUT",
        "* * * * L",
        "* * * * W",
        "* * *",
        "@",
        "@yearl",
        "@every_hour",
        "@@daily",
    ] {
        parse_error(expression);
    }
}

#[test]
fn out_of_range_errors_name_the_field_and_its_range() {
    for (expression, reason) in [
        ("61 * * * *", "minute 61 must be between 0 and 59"),
        ("60 * * * * *", "second 60 must be between 0 and 59"),
        ("* 24 * * *", "hour 24 must be between 0 and 23"),
        ("* * 0 * *", "day of month 0 must be between 1 and 31"),
        ("* * * 13 *", "month 13 must be between 1 and 12"),
        ("* * * * 8", "day of week 8 must be between 0 and 7"),
        ("*/60 * * * *", "minute step 60 must be between 1 and 59"),
        ("* * * * SUN#6", "between 1 and 5"),
        ("* * L-31 * *", "between 0 and 30"),
        (
            "0 0 0 1 1 * 1969",
            "year 1969 must be between 1970 and 2100",
        ),
    ] {
        let error = parse_error(expression);
        assert!(
            error.starts_with(&format!("invalid cron expression `{expression}`: ")),
            "{error}"
        );
        assert!(error.contains(reason), "`{expression}`: {error}");
        assert!(!error.contains("less than 59"), "{error}");
    }
}

/// Cronos answers "no next occurrence" for these; here they are refused when parsed.
#[test]
fn an_expression_that_can_never_fire_is_refused() {
    for expression in [
        "0 0 30 2 *",
        "* * 30-31 2 *",
        "* * 31 4 *",
        "* * 31 11 *",
        "* * L-30 11 *",
        "* * L-29 2 *",
        "* * 1 * SUN#2",
        "* * 1-28 * SUN#5",
        "* * 21 * 0L",
        "* * L * SUN#3",
        "* * L-10 * SUN#4",
        "* * 1W * SUN",
        "* * 14W * 6#2",
        "* * 21W * 7L",
        "* * LW * SAT",
        "* * LW 3-12 4#4",
        "0 0 0 30 2 * 2030",
        "0 0 0 29 2 * 2025-2027",
    ] {
        let error = parse_error(expression);
        assert!(error.contains("never"), "`{expression}`: {error}");
    }
    // Rare but possible: a leap day, a leap day on a Monday, a 5th Sunday in February.
    for expression in [
        "0 0 29 2 *",
        "0 0 29 2 MON",
        "0 0 * 2 SUN#5",
        "0 0 0 1 1 * 2025",
    ] {
        Cron::parse(expression).unwrap_or_else(|error| panic!("{error}"));
    }
}

#[test]
fn start_times_before_1970_and_after_2100() {
    let utc = |text: &str| -> DateTime<Utc> { text.parse().expect("valid time") };
    for (expression, after, expected) in [
        ("0 0 1 1 *", "1960-05-01T00:00:00Z", "1961-01-01T00:00:00Z"),
        (
            "*/15 * * * *",
            "1965-03-04T10:07:00Z",
            "1965-03-04T10:15:00Z",
        ),
        (
            "0 12 * * MON",
            "1969-12-31T00:00:00Z",
            "1970-01-05T12:00:00Z",
        ),
        ("0 0 1 1 *", "2150-06-01T00:00:00Z", "2151-01-01T00:00:00Z"),
    ] {
        let got = Cron::parse(expression)
            .and_then(|cron| cron.next_after(utc(after), Tz::UTC))
            .expect("valid");
        assert_eq!(got, Some(utc(expected)), "`{expression}` after {after}");
    }
}

/// When clocks go back, a fixed time fires once, in the first pass, wherever the search starts.
#[test]
fn a_repeated_fixed_time_fires_once_even_from_inside_the_repeated_hour() {
    // Santiago, 2017-05-14 00:00 -03:00 becomes 2017-05-13 23:00 -04:00.
    check_table(
        SANTIAGO,
        &[
            (
                "30 23 * * *",
                "2017-05-13 23:10 -03:00",
                "2017-05-13 23:30 -03:00",
                false,
            ),
            (
                "30 23 * * *",
                "2017-05-13 23:30 -03:00",
                "2017-05-14 23:30 -04:00",
                false,
            ),
            (
                "30 23 * * *",
                "2017-05-13 23:59:59 -03:00",
                "2017-05-14 23:30 -04:00",
                false,
            ),
            // A job added during the second pass of the hour.
            (
                "30 23 * * *",
                "2017-05-13 23:10 -04:00",
                "2017-05-14 23:30 -04:00",
                false,
            ),
        ],
    );
    // New York, 2016-11-06 02:00 -04:00 becomes 01:00 -05:00: lists are not intervals.
    check_table(
        EASTERN,
        &[
            (
                "0 0,30 1 * * *",
                "2016-11-06 01:30 -04:00",
                "2016-11-07 01:00 -05:00",
                false,
            ),
            (
                "0 0,30 1 * * *",
                "2016-11-06 01:00 -05:00",
                "2016-11-07 01:00 -05:00",
                true,
            ),
            (
                "0 0 1 * * *",
                "2016-11-06 01:00 -04:00",
                "2016-11-07 01:00 -05:00",
                false,
            ),
            (
                "0 0 1 6 11 *",
                "2015-11-07 01:00 -05:00",
                "2016-11-06 01:00 -04:00",
                false,
            ),
            (
                "59 59 01 * * *",
                "2016-11-06 01:59:59 -05:00",
                "2016-11-07 01:59:59 -05:00",
                false,
            ),
            (
                "0 0 2 * * *",
                "2016-11-06 01:45 -05:00",
                "2016-11-06 02:00 -05:00",
                false,
            ),
        ],
    );
}

/// When clocks go back, interval schedules go on firing through the repeated hour.
#[test]
fn interval_schedules_fire_through_the_repeated_hour() {
    check_table(
        EASTERN,
        &[
            (
                "0 */30 * * * *",
                "2016-11-06 01:00 -04:00",
                "2016-11-06 01:30 -04:00",
                false,
            ),
            (
                "0 */30 * * * *",
                "2016-11-06 01:30 -04:00",
                "2016-11-06 01:00 -05:00",
                false,
            ),
            (
                "0 */30 * * * *",
                "2016-11-06 01:00 -05:00",
                "2016-11-06 01:30 -05:00",
                false,
            ),
            (
                "0 */30 * * * *",
                "2016-11-06 01:30 -05:00",
                "2016-11-06 02:00 -05:00",
                false,
            ),
            (
                "0 */30 * * * *",
                "2016-11-06 01:59 -04:00",
                "2016-11-06 01:00 -05:00",
                true,
            ),
            (
                "0 30 * * * *",
                "2016-11-06 01:30 -04:00",
                "2016-11-06 01:30 -05:00",
                false,
            ),
            (
                "0 30 1-9 * * *",
                "2016-11-06 01:30 -04:00",
                "2016-11-06 01:30 -05:00",
                false,
            ),
            (
                "0 0-30 1 * * *",
                "2016-11-06 01:59 -04:00",
                "2016-11-06 01:00 -05:00",
                false,
            ),
            (
                "*/30 0 1 * * *",
                "2016-11-06 01:00:30 -04:00",
                "2016-11-06 01:00:00 -05:00",
                false,
            ),
            (
                "*/30 0 1 * * *",
                "2016-11-06 01:00:30 -05:00",
                "2016-11-07 01:00:00 -05:00",
                false,
            ),
            (
                "0 */30 */2 * * *",
                "2016-11-06 01:30 -04:00",
                "2016-11-06 02:00 -05:00",
                true,
            ),
        ],
    );
    // Walking `*/30 * * * *` through the night: six firings from 00:30 to 02:00, two of them
    // at 01:00 and two at 01:30 local time.
    let cron = Cron::parse("*/30 * * * *").expect("valid");
    let mut at = instant("2016-11-06 00:30 -04:00", EASTERN);
    let mut fired = vec![at];
    for _ in 0..5 {
        at = cron.next_after(at, EASTERN).expect("valid").expect("fires");
        fired.push(at);
    }
    let expected: Vec<DateTime<Utc>> = [
        "2016-11-06 00:30 -04:00",
        "2016-11-06 01:00 -04:00",
        "2016-11-06 01:30 -04:00",
        "2016-11-06 01:00 -05:00",
        "2016-11-06 01:30 -05:00",
        "2016-11-06 02:00 -05:00",
    ]
    .iter()
    .map(|text| instant(text, EASTERN))
    .collect();
    assert_eq!(fired, expected);
}

/// When clocks go forward, a time that does not exist that day fires at the first instant after
/// the gap instead of being skipped.
#[test]
fn a_time_in_the_spring_forward_gap_fires_at_the_first_valid_instant() {
    check_table(
        PARIS,
        &[
            // 2026-03-29: 02:00 +01:00 becomes 03:00 +02:00.
            (
                "30 2 * * *",
                "2026-03-28 02:30 +01:00",
                "2026-03-29 03:00 +02:00",
                false,
            ),
            (
                "30 2 * * *",
                "2026-03-29 03:00 +02:00",
                "2026-03-30 02:30 +02:00",
                false,
            ),
        ],
    );
    check_table(
        EASTERN,
        &[
            (
                "0 */30 * * * *",
                "2016-03-13 01:45 -05:00",
                "2016-03-13 03:00 -04:00",
                true,
            ),
            (
                "0 1-58 */2 * * *",
                "2016-03-13 01:59 -05:00",
                "2016-03-13 03:00 -04:00",
                true,
            ),
            (
                "0 30 2 * * *",
                "2016-03-12 02:30 -05:00",
                "2016-03-13 03:00 -04:00",
                false,
            ),
            (
                "0 0,30 2 * * *",
                "2016-03-12 02:30 -05:00",
                "2016-03-13 03:00 -04:00",
                false,
            ),
            (
                "0 0 */2 * * *",
                "2016-03-13 00:00 -05:00",
                "2016-03-13 03:00 -04:00",
                false,
            ),
            (
                "0 0,59 * * * *",
                "2016-03-13 01:59 -05:00",
                "2016-03-13 03:00 -04:00",
                false,
            ),
            (
                "0 30 * * 3 SUN#2",
                "2016-03-13 01:59 -05:00",
                "2016-03-13 03:00 -04:00",
                false,
            ),
        ],
    );
    // Lord Howe moves its clock forward by half an hour, 02:00 +10:30 to 02:30 +11:00.
    check_table(
        LORD_HOWE,
        &[
            (
                "0 */30 * * * *",
                "2017-10-01 01:45 +10:30",
                "2017-10-01 02:30 +11:00",
                true,
            ),
            (
                "0 0,30 2 * * *",
                "2017-10-01 01:59 +10:30",
                "2017-10-01 02:30 +11:00",
                true,
            ),
        ],
    );
    // Amman, 2017-03-31: midnight +02:00 becomes 01:00 +03:00.
    check_table(
        AMMAN,
        &[(
            "30 0 L * *",
            "2017-03-30 23:59:59 +02:00",
            "2017-03-31 01:00:00 +03:00",
            false,
        )],
    );
}
