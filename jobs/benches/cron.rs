//! The cron benchmark (a binary, not a test): what parsing an expression and computing its next
//! occurrence cost.
//!
//! ```text
//! cargo bench -p jobs --bench cron -- [--iterations N (default 200000)]
//! ```
//!
//! Each line is `case=… expression=… zone=… ns_per_op=…`: `parse` times `Cron::parse`,
//! `next` times `Cron::next_after` (which parses too) walking forward from 2026-01-01T00:00Z,
//! each call starting from the previous occurrence, so DST changes and month ends are crossed.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use jobs::Cron;

/// Expressions every scheduler meets, from the simplest to the ones with more fields.
const EXPRESSIONS: [&str; 5] = [
    "* * * * *",
    "*/15 * * * *",
    "30 2 * * *",
    "0 9 * * 1-5",
    "0 */10 12-20 1,15 1-11 *",
];

/// UTC, and two zones with DST changes.
const ZONES: [Tz; 3] = [Tz::UTC, Tz::Europe__Paris, Tz::America__New_York];

fn main() {
    let mut iterations: u32 = 200_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iterations" => {
                iterations = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| usage("--iterations needs a positive number"));
            }
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            other => usage(&format!("unknown argument `{other}`")),
        }
    }

    for expression in EXPRESSIONS {
        let started = Instant::now();
        for _ in 0..iterations {
            black_box(Cron::parse(black_box(expression)).is_ok());
        }
        report("parse", expression, "-", started, iterations);
    }

    let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("a valid time");
    for zone in ZONES {
        for expression in EXPRESSIONS {
            let cron = Cron::parse(expression).expect("a valid expression");
            let mut at = start;
            let started = Instant::now();
            for _ in 0..iterations {
                at = match cron.next_after(black_box(at), zone) {
                    Ok(Some(next)) => next,
                    _ => start,
                };
            }
            black_box(at);
            report("next", expression, zone.name(), started, iterations);
        }
    }
}

fn report(case: &str, expression: &str, zone: &str, started: Instant, iterations: u32) {
    let ns = started.elapsed().as_nanos() as f64 / f64::from(iterations);
    println!("case={case} expression=\"{expression}\" zone={zone} ns_per_op={ns:.0}");
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: cargo bench -p jobs --bench cron -- [--iterations N]");
    std::process::exit(2);
}
