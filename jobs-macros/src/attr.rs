//! Parses the arguments of `#[job(...)]`: `name`, `aliases`, `queue`, `retries`,
//! `retry_delays`, `on_exhausted`, `timeout` and `crate`.
//!
//! Parsing goes through [`syn::meta::parser`]. Every value is kept with the span of its key and of
//! its literal, so later checks can point at the culprit. A bad value, a duplicate key or an
//! unknown key is reported to [`Errors`] and parsing carries on, so every problem is reported at
//! once; only malformed syntax (`queue = ` with no value, a missing comma) stops it.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, ExprArray, Lit, LitInt, LitStr, Path};

use crate::errors::Errors;

/// The option keys, in the order the "unknown option" message lists them.
pub(crate) mod kw {
    /// `name = "..."`: the stored job name.
    pub(crate) const NAME: &str = "name";
    /// `aliases = ["..."]`: former names that still run the job.
    pub(crate) const ALIASES: &str = "aliases";
    /// `queue = "..."`: the queue the job is enqueued to.
    pub(crate) const QUEUE: &str = "queue";
    /// `priority = N`: the job's place within its queue, 0 first (default 1).
    pub(crate) const PRIORITY: &str = "priority";
    /// `retries = N`: retries after the first attempt.
    pub(crate) const RETRIES: &str = "retries";
    /// `retry_delays = [1, 5, 30]`: fixed delays between retries, in seconds.
    pub(crate) const RETRY_DELAYS: &str = "retry_delays";
    /// `on_exhausted = "fail" | "delete"`: what happens once retries are used up.
    pub(crate) const ON_EXHAUSTED: &str = "on_exhausted";
    /// `timeout = "30s"`: fails an attempt that runs longer.
    pub(crate) const TIMEOUT: &str = "timeout";
    /// `crate = path`: the path of the `jobs` crate, if renamed.
    pub(crate) const CRATE: &str = "crate";

    /// Every key, in documentation order.
    pub(crate) const ALL: [&str; 9] = [
        NAME,
        ALIASES,
        QUEUE,
        PRIORITY,
        RETRIES,
        RETRY_DELAYS,
        ON_EXHAUSTED,
        TIMEOUT,
        CRATE,
    ];

    /// An example of the accepted form of `key`, for messages.
    pub(crate) fn example(key: &str) -> &'static str {
        match key {
            NAME => "`name = \"billing.charge\"`",
            ALIASES => "`aliases = [\"old_name\"]`",
            QUEUE => "`queue = \"critical\"`",
            PRIORITY => "`priority = 0`",
            RETRIES => "`retries = 3`",
            RETRY_DELAYS => "`retry_delays = [1, 5, 30]`",
            ON_EXHAUSTED => "`on_exhausted = \"delete\"`",
            TIMEOUT => "`timeout = \"30s\"`",
            CRATE => "`crate = ::jobs` or `crate = \"jobs\"`",
            _ => "",
        }
    }
}

/// A parsed option value with the span of its value (the span of its key is in
/// [`JobAttrs::seen`]).
#[derive(Debug, Clone)]
pub(crate) struct Setting<T> {
    /// The value.
    pub(crate) value: T,
    /// The span of the value (`"critical"` in `queue = "critical"`).
    pub(crate) span: Span,
}

impl<T> Setting<T> {
    /// `Some` setting, for assigning to an option field.
    fn new(value: T, span: Span) -> Option<Self> {
        Some(Setting { value, span })
    }
}

/// What happens when a job's retries are used up (mirrors `jobs::OnExhausted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnExhausted {
    /// The job stays Failed.
    Fail,
    /// The job is deleted.
    Delete,
}

/// The options of one `#[job(...)]` (or of several `#[job(...)]` attributes on one method).
///
/// A key that was given with an invalid value is recorded in `seen` but has no value, so
/// defaults apply and a second occurrence is still reported as a duplicate.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobAttrs {
    /// `name = "..."`.
    pub(crate) name: Option<Setting<String>>,
    /// `aliases = [...]`, each alias with its own span.
    pub(crate) aliases: Option<Setting<Vec<(String, Span)>>>,
    /// `queue = "..."`.
    pub(crate) queue: Option<Setting<String>>,
    /// `priority = N`.
    pub(crate) priority: Option<Setting<u8>>,
    /// `retries = N`.
    pub(crate) retries: Option<Setting<u32>>,
    /// `retry_delays = [..]`, in seconds.
    pub(crate) retry_delays: Option<Setting<Vec<u64>>>,
    /// `on_exhausted = "..."`.
    pub(crate) on_exhausted: Option<Setting<OnExhausted>>,
    /// `timeout = "..."`, in milliseconds.
    pub(crate) timeout: Option<Setting<u64>>,
    /// `crate = ...`.
    pub(crate) krate: Option<Setting<Path>>,
    /// Every key given so far, with the span of its first occurrence.
    pub(crate) seen: Vec<(&'static str, Span)>,
}

/// Parses the arguments of a `#[job(...)]` attribute macro (the tokens inside the parentheses).
pub(crate) fn parse(cx: &Errors, args: TokenStream) -> JobAttrs {
    let mut attrs = JobAttrs::default();
    let parser = syn::meta::parser(|meta| attrs.parse_meta(cx, meta));
    if let Err(error) = parser.parse2(args) {
        cx.syn_error(error);
    }
    attrs.check(cx);
    attrs
}

impl JobAttrs {
    /// Parses one `key = value` of a `#[job(...)]` list. Value errors go to `cx`; only syntax
    /// errors are returned (they stop the parse).
    pub(crate) fn parse_meta(&mut self, cx: &Errors, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let Some(key) = kw::ALL.iter().copied().find(|key| meta.path.is_ident(key)) else {
            cx.error_spanned_by(&meta.path, unknown_key_message(&meta.path));
            return skip_value(&meta);
        };
        let key_span = meta.path.span();
        if !meta.input.peek(syn::Token![=]) {
            return Err(meta.error(format_args!("expected a value, e.g. {}", kw::example(key))));
        }
        let value: Expr = meta.value()?.parse()?;
        if self.seen.iter().any(|(seen, _)| *seen == key) {
            cx.error_at(key_span, format_args!("`{key}` specified more than once"));
            return Ok(());
        }
        self.seen.push((key, key_span));
        let value = ungroup(value);
        let span = value.span();
        match key {
            kw::NAME => {
                if let Some(lit) = lit_str(cx, key, &value) {
                    if lit.value().is_empty() {
                        cx.error_spanned_by(&lit, "job name must not be empty");
                    } else {
                        self.name = Setting::new(lit.value(), span);
                    }
                }
            }
            kw::ALIASES => {
                if let Some(aliases) = aliases(cx, &value) {
                    self.aliases = Setting::new(aliases, span);
                }
            }
            kw::QUEUE => {
                if let Some(lit) = lit_str(cx, key, &value) {
                    match check_queue(&lit.value()) {
                        Ok(()) => self.queue = Setting::new(lit.value(), span),
                        Err(message) => cx.error_spanned_by(&lit, message),
                    }
                }
            }
            kw::PRIORITY => {
                if let Some(lit) = lit_int(cx, key, &value) {
                    match lit.base10_parse::<u8>() {
                        Ok(priority) => self.priority = Setting::new(priority, span),
                        Err(_) => cx.error_spanned_by(
                            &lit,
                            "`priority` must be 0 (first) to 255 (last); the default is 1",
                        ),
                    }
                }
            }
            kw::RETRIES => {
                if let Some(lit) = lit_int(cx, key, &value) {
                    match lit.base10_parse::<u32>() {
                        Ok(retries) => self.retries = Setting::new(retries, span),
                        Err(_) => cx.error_spanned_by(&lit, "`retries` must fit in a `u32`"),
                    }
                }
            }
            kw::RETRY_DELAYS => {
                if let Some(delays) = retry_delays(cx, &value) {
                    self.retry_delays = Setting::new(delays, span);
                }
            }
            kw::ON_EXHAUSTED => {
                if let Some(lit) = lit_str(cx, key, &value) {
                    match lit.value().as_str() {
                        "fail" => self.on_exhausted = Setting::new(OnExhausted::Fail, span),
                        "delete" => self.on_exhausted = Setting::new(OnExhausted::Delete, span),
                        other => cx.error_spanned_by(
                            &lit,
                            format_args!(
                                "invalid `on_exhausted` value `{other}`; expected `\"fail\"` or `\"delete\"`"
                            ),
                        ),
                    }
                }
            }
            kw::TIMEOUT => {
                if let Some(lit) = lit_str(cx, key, &value) {
                    match parse_timeout(&lit.value()) {
                        Ok(millis) => self.timeout = Setting::new(millis, span),
                        Err(message) => cx.error_spanned_by(&lit, message),
                    }
                }
            }
            kw::CRATE => {
                if let Some(path) = crate_path(cx, &value) {
                    self.krate = Setting::new(path, span);
                }
            }
            _ => unreachable!("every key of `kw::ALL` is handled"),
        }
        Ok(())
    }

    /// Cross-option checks, once every option is parsed.
    pub(crate) fn check(&self, cx: &Errors) {
        // Delays are waited before retries; with no retries they would silently do nothing.
        if let (Some(retries), Some(delays)) = (&self.retries, &self.retry_delays) {
            if retries.value == 0 {
                cx.error_at(
                    delays.span,
                    "`retry_delays` has no effect with `retries = 0`; remove one of them",
                );
            }
        }
    }

    /// The span of the first occurrence of `key`, if it was given (even with a bad value).
    pub(crate) fn key_span(&self, key: &str) -> Option<Span> {
        self.seen
            .iter()
            .find(|(seen, _)| *seen == key)
            .map(|(_, span)| *span)
    }

    /// These options, with every option not set here taken from `defaults` (a method's
    /// `#[job(...)]` over its impl block's).
    pub(crate) fn or(self, defaults: &JobAttrs) -> JobAttrs {
        let mut seen = self.seen;
        for (key, span) in &defaults.seen {
            if !seen.iter().any(|(seen, _)| seen == key) {
                seen.push((key, *span));
            }
        }
        JobAttrs {
            name: self.name.or_else(|| defaults.name.clone()),
            aliases: self.aliases.or_else(|| defaults.aliases.clone()),
            queue: self.queue.or_else(|| defaults.queue.clone()),
            priority: self.priority.or_else(|| defaults.priority.clone()),
            retries: self.retries.or_else(|| defaults.retries.clone()),
            retry_delays: self.retry_delays.or_else(|| defaults.retry_delays.clone()),
            on_exhausted: self.on_exhausted.or_else(|| defaults.on_exhausted.clone()),
            timeout: self.timeout.or_else(|| defaults.timeout.clone()),
            krate: self.krate.or_else(|| defaults.krate.clone()),
            seen,
        }
    }
}

/// "unknown `#[job]` option `foo`; expected one of: ..." with a hint for likely mix-ups.
fn unknown_key_message(path: &Path) -> String {
    let key = path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect::<Vec<_>>()
        .join("::");
    let expected = kw::ALL
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = match key.as_str() {
        "max_attempts" | "attempts" | "retry" | "max_retries" => {
            " (`retries = N` sets the number of retries after the first attempt)"
        }
        "retry_delay" | "delays" | "backoff" => {
            " (`retry_delays = [1, 5, 30]` sets the delays between retries, in seconds)"
        }
        _ => "",
    };
    format!("unknown `#[job]` option `{key}`; expected one of: {expected}{hint}")
}

/// Consumes the value of an unknown key (`= expr`, `(...)` or nothing) so parsing can go on.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

/// Removes the invisible groups `macro_rules!` puts around `$value:expr` fragments.
fn ungroup(mut expr: Expr) -> Expr {
    while let Expr::Group(group) = expr {
        expr = *group.expr;
    }
    expr
}

/// The value as a string literal, or an error at it.
fn lit_str(cx: &Errors, key: &str, value: &Expr) -> Option<LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => Some(lit.clone()),
        _ => {
            cx.error_spanned_by(
                value,
                format_args!(
                    "`{key}` must be a string literal, e.g. {}",
                    kw::example(key)
                ),
            );
            None
        }
    }
}

/// The value as an integer literal, or an error at it.
fn lit_int(cx: &Errors, key: &str, value: &Expr) -> Option<LitInt> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(lit), ..
        }) => Some(lit.clone()),
        _ => {
            cx.error_spanned_by(
                value,
                format_args!(
                    "`{key}` must be an integer literal, e.g. {}",
                    kw::example(key)
                ),
            );
            None
        }
    }
}

/// The value as an array expression, or an error at it.
fn array<'a>(cx: &Errors, key: &str, what: &str, value: &'a Expr) -> Option<&'a ExprArray> {
    match value {
        Expr::Array(array) => {
            if array.elems.is_empty() {
                cx.error_spanned_by(array, format_args!("`{key}` must not be empty"));
                None
            } else {
                Some(array)
            }
        }
        _ => {
            cx.error_spanned_by(
                value,
                format_args!(
                    "`{key}` must be an array of {what}, e.g. {}",
                    kw::example(key)
                ),
            );
            None
        }
    }
}

/// `aliases = ["a", "b"]`.
fn aliases(cx: &Errors, value: &Expr) -> Option<Vec<(String, Span)>> {
    let array = array(cx, kw::ALIASES, "string literals", value)?;
    let mut aliases: Vec<(String, Span)> = Vec::new();
    for element in &array.elems {
        let element = ungroup(element.clone());
        match &element {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(lit), ..
            }) => {
                let alias = lit.value();
                if alias.is_empty() {
                    cx.error_spanned_by(lit, "alias must not be empty");
                } else if aliases.iter().any(|(seen, _)| *seen == alias) {
                    cx.error_spanned_by(lit, format_args!("alias `{alias}` is listed twice"));
                } else {
                    aliases.push((alias, lit.span()));
                }
            }
            _ => cx.error_spanned_by(
                &element,
                "alias must be a string literal, e.g. `aliases = [\"old_name\"]`",
            ),
        }
    }
    Some(aliases)
}

/// `retry_delays = [1, 5, 30]` (seconds).
fn retry_delays(cx: &Errors, value: &Expr) -> Option<Vec<u64>> {
    let array = array(cx, kw::RETRY_DELAYS, "integer seconds", value)?;
    let mut delays = Vec::new();
    for element in &array.elems {
        let element = ungroup(element.clone());
        match &element {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(lit), ..
            }) => match lit.base10_parse::<u64>() {
                Ok(delay) => delays.push(delay),
                Err(_) => cx.error_spanned_by(lit, "retry delay must fit in a `u64`"),
            },
            _ => cx.error_spanned_by(
                &element,
                "retry delay must be an integer literal (seconds), e.g. `retry_delays = [1, 5, 30]`",
            ),
        }
    }
    Some(delays)
}

/// `crate = ::jobs` or `crate = "jobs"`.
fn crate_path(cx: &Errors, value: &Expr) -> Option<Path> {
    match value {
        Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => {
            Some(path.path.clone())
        }
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => match lit.parse::<Path>() {
            Ok(path) => Some(path),
            Err(_) => {
                cx.error_spanned_by(
                    lit,
                    format_args!("`{}` is not a valid crate path", lit.value()),
                );
                None
            }
        },
        _ => {
            cx.error_spanned_by(
                value,
                format_args!("`crate` must be a path, e.g. {}", kw::example(kw::CRATE)),
            );
            None
        }
    }
}

/// Checks a queue name against `^[a-z0-9_-]+$`.
pub(crate) fn check_queue(queue: &str) -> Result<(), String> {
    if queue.is_empty() {
        return Err("queue name must not be empty".to_owned());
    }
    if queue
        .bytes()
        .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
    {
        Ok(())
    } else {
        Err(format!(
            "invalid queue name `{queue}`: queue names must match `^[a-z0-9_-]+$`"
        ))
    }
}

/// Parses `"500ms"`, `"30s"`, `"5m"` or `"1h"` into milliseconds (greater than zero).
pub(crate) fn parse_timeout(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "invalid timeout `{text}`; expected a whole number followed by `ms`, `s`, `m` or `h`, \
             e.g. \"500ms\", \"30s\", \"5m\" or \"1h\""
        )
    };
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(invalid()),
    };
    if number.is_empty() {
        return Err(invalid());
    }
    let number: u64 = number
        .parse()
        .map_err(|_| format!("timeout `{text}` is too large"))?;
    let millis = number
        .checked_mul(millis_per_unit)
        .ok_or_else(|| format!("timeout `{text}` is too large"))?;
    if millis == 0 {
        return Err("timeout must be greater than zero".to_owned());
    }
    Ok(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse_ok(args: TokenStream) -> JobAttrs {
        let cx = Errors::new();
        let attrs = parse(&cx, args);
        if let Err(error) = cx.check() {
            panic!("unexpected error: {error}");
        }
        attrs
    }

    fn parse_err(args: TokenStream) -> Vec<String> {
        let cx = Errors::new();
        let _attrs = parse(&cx, args);
        cx.check()
            .expect_err("expected an error")
            .into_iter()
            .map(|error| error.to_string())
            .collect()
    }

    #[test]
    fn empty_arguments_are_all_defaults() {
        let attrs = parse_ok(quote!());
        assert!(attrs.name.is_none() && attrs.queue.is_none() && attrs.retries.is_none());
        assert!(attrs.seen.is_empty());
    }

    #[test]
    fn every_option_parses() {
        let attrs = parse_ok(quote!(
            name = "billing.charge",
            aliases = ["charge", "billing.charge_v1"],
            queue = "critical",
            retries = 3,
            retry_delays = [1, 5, 30],
            on_exhausted = "delete",
            timeout = "5m",
            crate = ::my_jobs,
        ));
        assert_eq!(attrs.name.unwrap().value, "billing.charge");
        let aliases: Vec<String> = attrs
            .aliases
            .unwrap()
            .value
            .into_iter()
            .map(|a| a.0)
            .collect();
        assert_eq!(aliases, ["charge", "billing.charge_v1"]);
        assert_eq!(attrs.queue.unwrap().value, "critical");
        assert_eq!(attrs.retries.unwrap().value, 3);
        assert_eq!(attrs.retry_delays.unwrap().value, [1, 5, 30]);
        assert_eq!(attrs.on_exhausted.unwrap().value, OnExhausted::Delete);
        assert_eq!(attrs.timeout.unwrap().value, 300_000);
        let krate = attrs.krate.unwrap().value;
        assert_eq!(quote!(#krate).to_string(), quote!(::my_jobs).to_string());
    }

    #[test]
    fn crate_accepts_a_string_and_the_crate_keyword() {
        let krate = parse_ok(quote!(crate = "my_jobs::inner"))
            .krate
            .unwrap()
            .value;
        assert_eq!(
            quote!(#krate).to_string(),
            quote!(my_jobs::inner).to_string()
        );
        let krate = parse_ok(quote!(crate = crate)).krate.unwrap().value;
        assert_eq!(quote!(#krate).to_string(), "crate");
    }

    #[test]
    fn unknown_key_lists_every_valid_key() {
        assert_eq!(
            parse_err(quote!(foo = 1)),
            [
                "unknown `#[job]` option `foo`; expected one of: `name`, `aliases`, `queue`, `priority`, \
              `retries`, `retry_delays`, `on_exhausted`, `timeout`, `crate`"
            ]
        );
        assert!(parse_err(quote!(max_attempts = 3))[0].contains("`retries = N`"));
    }

    #[test]
    fn duplicate_key_is_reported_once_at_the_second() {
        assert_eq!(
            parse_err(quote!(queue = "a", queue = "b")),
            ["`queue` specified more than once"]
        );
    }

    #[test]
    fn every_error_is_collected() {
        let errors = parse_err(quote!(
            queue = "Critical",
            retries = "three",
            bogus,
            timeout = "30",
            on_exhausted = "retry",
            retry_delays = [],
            queue = "x",
        ));
        assert_eq!(errors.len(), 7, "{errors:#?}");
        assert_eq!(
            errors[0],
            "invalid queue name `Critical`: queue names must match `^[a-z0-9_-]+$`"
        );
        assert_eq!(
            errors[1],
            "`retries` must be an integer literal, e.g. `retries = 3`"
        );
        assert!(errors[2].starts_with("unknown `#[job]` option `bogus`"));
        assert!(errors[3].starts_with("invalid timeout `30`"));
        assert_eq!(
            errors[4],
            "invalid `on_exhausted` value `retry`; expected `\"fail\"` or `\"delete\"`"
        );
        assert_eq!(errors[5], "`retry_delays` must not be empty");
        assert_eq!(errors[6], "`queue` specified more than once");
    }

    #[test]
    fn value_errors() {
        assert_eq!(
            parse_err(quote!(queue = "")),
            ["queue name must not be empty"]
        );
        assert_eq!(parse_err(quote!(name = "")), ["job name must not be empty"]);
        assert_eq!(
            parse_err(quote!(retries = 5000000000)),
            ["`retries` must fit in a `u32`"]
        );
        assert_eq!(parse_err(quote!(retries = -1)).len(), 1);
        assert_eq!(
            parse_err(quote!(aliases = ["a", "a"])),
            ["alias `a` is listed twice"]
        );
        assert_eq!(parse_err(quote!(aliases = "a")).len(), 1);
        assert_eq!(parse_err(quote!(retry_delays = [1, "2"])).len(), 1);
        assert_eq!(parse_err(quote!(crate = 1)).len(), 1);
        assert_eq!(
            parse_err(quote!(timeout = "0s")),
            ["timeout must be greater than zero"]
        );
        assert_eq!(
            parse_err(quote!(queue)),
            ["expected a value, e.g. `queue = \"critical\"`"]
        );
    }

    #[test]
    fn delays_without_retries() {
        assert_eq!(
            parse_err(quote!(retries = 0, retry_delays = [1])),
            ["`retry_delays` has no effect with `retries = 0`; remove one of them"]
        );
    }

    #[test]
    fn syntax_errors_stop_the_parse() {
        assert_eq!(parse_err(quote!(queue = )).len(), 1);
        assert_eq!(parse_err(quote!(queue = "a" retries = 3)).len(), 1);
    }

    /// The same table as the `jobs` crate's `validate_queue` test: the rule checked here at
    /// compile time and the one storages and servers apply agree on every name in it.
    #[test]
    fn queue_names_follow_the_shared_table() {
        const NAMES: &str = include_str!("../../jobs/tests/data/queue-names.txt");
        let mut cases = 0;
        for line in NAMES.lines().filter(|line| !line.starts_with('#')) {
            let (verdict, name) = line.split_once(' ').expect("`ok <name>` or `bad <name>`");
            assert_eq!(
                check_queue(name).is_ok(),
                verdict == "ok",
                "queue name {name:?}"
            );
            cases += 1;
        }
        assert!(cases >= 15, "the table has its cases");
        assert_eq!(
            check_queue("Not Valid"),
            Err(
                "invalid queue name `Not Valid`: queue names must match `^[a-z0-9_-]+$`".to_owned()
            )
        );
        assert_eq!(
            check_queue(""),
            Err("queue name must not be empty".to_owned())
        );
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("500ms"), Ok(500));
        assert_eq!(parse_timeout("30s"), Ok(30_000));
        assert_eq!(parse_timeout("5m"), Ok(300_000));
        assert_eq!(parse_timeout("1h"), Ok(3_600_000));
        assert_eq!(
            parse_timeout("0ms"),
            Err("timeout must be greater than zero".to_owned())
        );
        for bad in ["30", "s", "", "30 s", "1.5s", "-1s", "30sec", "1d", "30S"] {
            let error = parse_timeout(bad).unwrap_err();
            assert!(
                error.starts_with(&format!("invalid timeout `{bad}`")),
                "{bad}: {error}"
            );
        }
        assert!(parse_timeout("99999999999999999999s")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_timeout("18446744073709551615h")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn method_options_override_impl_options() {
        let method = parse_ok(quote!(queue = "critical"));
        let imp = parse_ok(quote!(queue = "default", retries = 2));
        let merged = method.or(&imp);
        assert_eq!(merged.queue.unwrap().value, "critical");
        assert_eq!(merged.retries.unwrap().value, 2);
        assert_eq!(merged.seen.len(), 2);
    }
}
