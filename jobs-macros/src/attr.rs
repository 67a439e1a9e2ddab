//! Parses the arguments of `#[job(...)]`: `name`, `aliases`, `queue`, `priority`, `retries`,
//! `retry_delays`, `on_exhausted`, `timeout`, the flow-control options `unique`, `unique_for`,
//! `mutex`, `concurrency` and `rate`, and `crate`.
//!
//! Parsing goes through [`syn::meta::parser`]. Every value is kept with the span of its key and of
//! its literal, so later checks can point at the culprit. A bad value, a duplicate key or an
//! unknown key is reported to [`Errors`] and parsing carries on, so every problem is reported at
//! once; only malformed syntax (`queue = ` with no value, a missing comma) stops it.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
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
    /// `unique` (a flag, no value): no new job is created while one with the same name and
    /// arguments is Enqueued, Scheduled, Awaiting or Processing.
    pub(crate) const UNIQUE: &str = "unique";
    /// `unique_for = "10m"` (a `humantime` duration, at least 1ms): `unique`, and a job with
    /// the same key created within that period blocks a new one whatever its state. Given
    /// together with `unique` it is not an error: `unique_for` wins, as it implies `unique`.
    pub(crate) const UNIQUE_FOR: &str = "unique_for";
    /// `mutex = "account-{account_id}"`: the key jobs hold while Processing, at most one per
    /// key at once; each `{name}` is an argument rendered with `Display`, `{{`/`}}` escape.
    pub(crate) const MUTEX: &str = "mutex";
    /// `concurrency = N` (at least 1): at most N of its jobs Processing at once.
    pub(crate) const CONCURRENCY: &str = "concurrency";
    /// `rate = "100/1m"` (`count/period`, the period a `humantime` duration of at least 1ms):
    /// at most `count` of its jobs started per window of `period`.
    pub(crate) const RATE: &str = "rate";
    /// `crate = path`: the path of the `jobs` crate, if renamed.
    pub(crate) const CRATE: &str = "crate";

    /// Every key, in documentation order.
    pub(crate) const ALL: [&str; 14] = [
        NAME,
        ALIASES,
        QUEUE,
        PRIORITY,
        RETRIES,
        RETRY_DELAYS,
        ON_EXHAUSTED,
        TIMEOUT,
        UNIQUE,
        UNIQUE_FOR,
        MUTEX,
        CONCURRENCY,
        RATE,
        CRATE,
    ];

    /// Whether `key` is a flag, written without a value (`unique`).
    pub(crate) fn is_flag(key: &str) -> bool {
        key == UNIQUE
    }

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
            UNIQUE => "`unique`, or `unique_for = \"10m\"` for a time window",
            UNIQUE_FOR => "`unique_for = \"10m\"`",
            MUTEX => "`mutex = \"account-{account_id}\"`",
            CONCURRENCY => "`concurrency = 5`",
            RATE => "`rate = \"100/1m\"`",
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

/// `rate = "count/period"`, checked: `count` at least 1, `period_ms` at least 1 (mirrors
/// `jobs::Rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimit {
    /// Jobs started per window.
    pub(crate) count: u32,
    /// The window, in whole milliseconds.
    pub(crate) period_ms: u64,
}

/// One piece of a `mutex = "..."` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplatePart {
    /// Text kept as is (`{{` and `}}` already unescaped).
    Text(String),
    /// `{name}`: the name of a parameter, rendered with `Display` (checked against the
    /// function's parameters by `input`).
    Field(String),
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
    /// `unique`; the span is the key's (it has no value).
    pub(crate) unique: Option<Setting<()>>,
    /// `unique_for = "..."`, in milliseconds.
    pub(crate) unique_for: Option<Setting<u64>>,
    /// `mutex = "..."`, parsed; the span is the template literal's.
    pub(crate) mutex: Option<Setting<Vec<TemplatePart>>>,
    /// `concurrency = N`.
    pub(crate) concurrency: Option<Setting<u32>>,
    /// `rate = "..."`.
    pub(crate) rate: Option<Setting<RateLimit>>,
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
        if kw::is_flag(key) {
            return self.parse_flag(cx, &meta, key);
        }
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
            kw::UNIQUE_FOR => {
                if let Some(lit) = lit_str(cx, key, &value) {
                    match parse_unique_for(&lit.value()) {
                        Ok(millis) => self.unique_for = Setting::new(millis, span),
                        Err(message) => cx.error_spanned_by(&lit, message),
                    }
                }
            }
            kw::MUTEX => {
                if let Some(lit) = lit_str(cx, key, &value) {
                    match parse_template(&lit.value()) {
                        Ok(parts) => self.mutex = Setting::new(parts, span),
                        Err(message) => cx.error_spanned_by(&lit, message),
                    }
                }
            }
            kw::CONCURRENCY => {
                if let Some(lit) = lit_int(cx, key, &value) {
                    match lit.base10_parse::<u32>() {
                        Ok(0) => cx.error_spanned_by(
                            &lit,
                            "`concurrency` must be at least 1: it is how many jobs of this kind \
                             may be Processing at once",
                        ),
                        Ok(limit) => self.concurrency = Setting::new(limit, span),
                        Err(_) => cx.error_spanned_by(&lit, "`concurrency` must fit in a `u32`"),
                    }
                }
            }
            kw::RATE => {
                if let Some(lit) = lit_str(cx, key, &value) {
                    match parse_rate(&lit.value()) {
                        Ok(rate) => self.rate = Setting::new(rate, span),
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

    /// Parses a flag (`unique`), which takes no value: `unique = true` or `unique(...)` is an
    /// error at the value, and the flag is then left unset.
    fn parse_flag(
        &mut self,
        cx: &Errors,
        meta: &ParseNestedMeta<'_>,
        key: &'static str,
    ) -> syn::Result<()> {
        let key_span = meta.path.span();
        let value = if meta.input.peek(syn::Token![=]) {
            Some(meta.value()?.parse::<Expr>()?.into_token_stream())
        } else if meta.input.peek(syn::token::Paren) {
            Some(meta.input.parse::<TokenTree>()?.into_token_stream())
        } else {
            None
        };
        if self.seen.iter().any(|(seen, _)| *seen == key) {
            cx.error_at(key_span, format_args!("`{key}` specified more than once"));
            return Ok(());
        }
        self.seen.push((key, key_span));
        match value {
            Some(value) => cx.error_spanned_by(
                value,
                format_args!(
                    "`{key}` is a flag and takes no value: write {}",
                    kw::example(key)
                ),
            ),
            // `unique` is the only flag (see `kw::is_flag`).
            None => self.unique = Setting::new((), key_span),
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
            unique: self.unique.or_else(|| defaults.unique.clone()),
            unique_for: self.unique_for.or_else(|| defaults.unique_for.clone()),
            mutex: self.mutex.or_else(|| defaults.mutex.clone()),
            concurrency: self.concurrency.or_else(|| defaults.concurrency.clone()),
            rate: self.rate.or_else(|| defaults.rate.clone()),
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

/// Parses a `humantime` duration (`"10m"`, `"1h 30m"`, `"500ms"`) into whole milliseconds,
/// truncating, as `jobs::Rate` does at run time, so both accept the same texts.
fn parse_millis(text: &str) -> Result<u64, humantime::DurationError> {
    let duration = humantime::parse_duration(text)?;
    // Saturates like the runtime parser: past `u64::MAX` ms (584 million years) is forever.
    Ok(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// `unique_for = "10m"`: a `humantime` duration of at least 1ms, in milliseconds.
pub(crate) fn parse_unique_for(text: &str) -> Result<u64, String> {
    let millis = parse_millis(text).map_err(|error| {
        format!(
            "`unique_for` must be a duration like \"10m\", \"1h 30m\" or \"500ms\": `{text}`: {error}"
        )
    })?;
    if millis == 0 {
        // A zero window would block nothing more than `unique` does: it is surely a mistake.
        return Err(
            "`unique_for` must be at least 1ms; for uniqueness without a time window, write `unique`"
                .to_owned(),
        );
    }
    Ok(millis)
}

/// `rate = "100/1m"`: `count/period`, the count at least 1, the period a `humantime` duration of
/// at least 1ms. The rules and the wording of `jobs::Rate`'s `FromStr`, so a text is accepted
/// here exactly when it would be at run time.
pub(crate) fn parse_rate(text: &str) -> Result<RateLimit, String> {
    let invalid = |why: &str| format!("invalid rate `{text}`: {why}");
    // Syntax errors also show the accepted form; range errors are clear on their own.
    let malformed = |why: &str| {
        invalid(&format!(
            "{why}; expected \"count/period\" with the period in `humantime` units, \
             e.g. \"100/1m\", \"5/1s\" or \"1000/1h\""
        ))
    };
    let (count, period) = text
        .split_once('/')
        .ok_or_else(|| malformed("no `/` between the count and the period"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| malformed("the count must be a whole number that fits in a `u32`"))?;
    let period_ms =
        parse_millis(period.trim()).map_err(|error| malformed(&format!("the period: {error}")))?;
    if count == 0 {
        return Err(invalid("the count must be at least 1"));
    }
    if period_ms == 0 {
        return Err(invalid("the period must be at least 1ms"));
    }
    Ok(RateLimit { count, period_ms })
}

/// Parses a `mutex` template: text with `{name}` fields, `{{` and `}}` for literal braces.
/// The names are checked against the function's parameters later, by `input`.
pub(crate) fn parse_template(text: &str) -> Result<Vec<TemplatePart>, String> {
    if text.is_empty() {
        return Err(
            "`mutex` must not be empty: it is the key jobs share, e.g. \"account-{account_id}\""
                .to_owned(),
        );
    }
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '}' if chars.peek() == Some(&c) => {
                chars.next();
                literal.push(c);
            }
            '{' => {
                let name = template_field(text, &mut chars)?;
                if !literal.is_empty() {
                    parts.push(TemplatePart::Text(std::mem::take(&mut literal)));
                }
                parts.push(TemplatePart::Field(name));
            }
            '}' => {
                return Err(format!(
                "unmatched `}}` in the `mutex` template `{text}`; write `}}}}` for a literal brace"
            ))
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(TemplatePart::Text(literal));
    }
    Ok(parts)
}

/// The name of a template field, read after its `{` up to its `}`.
fn template_field(text: &str, chars: &mut impl Iterator<Item = char>) -> Result<String, String> {
    let mut name = String::new();
    loop {
        match chars.next() {
            Some('}') => break,
            Some('{') | None => {
                return Err(format!(
                "unclosed `{{` in the `mutex` template `{text}`; write `{{{{` for a literal brace"
            ))
            }
            Some(c) => name.push(c),
        }
    }
    if name.is_empty() {
        return Err(format!(
            "empty `{{}}` in the `mutex` template `{text}`: name an argument of the job between \
             the braces, e.g. `{{account_id}}`"
        ));
    }
    let mut name_chars = name.chars();
    let is_ident = name_chars
        .next()
        .is_some_and(|first| first == '_' || first.is_alphabetic())
        && name_chars.all(|c| c == '_' || c.is_alphanumeric());
    if !is_ident {
        return Err(format!(
            "`{{{name}}}` in the `mutex` template is not a parameter name: write `{{name}}` with \
             the name of an argument (it is rendered with `Display`; format specs are not supported)"
        ));
    }
    Ok(name)
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
            unique,
            unique_for = "1h 30m",
            mutex = "account-{account_id}",
            concurrency = 5,
            rate = "100/1m",
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
        assert!(attrs.unique.is_some());
        assert_eq!(attrs.unique_for.unwrap().value, 5_400_000);
        assert_eq!(
            attrs.mutex.unwrap().value,
            [
                TemplatePart::Text("account-".to_owned()),
                TemplatePart::Field("account_id".to_owned())
            ]
        );
        assert_eq!(attrs.concurrency.unwrap().value, 5);
        assert_eq!(
            attrs.rate.unwrap().value,
            RateLimit {
                count: 100,
                period_ms: 60_000
            }
        );
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
              `retries`, `retry_delays`, `on_exhausted`, `timeout`, `unique`, `unique_for`, `mutex`, \
              `concurrency`, `rate`, `crate`"
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

    /// The same table as the `jobs` crate's `Rate` parsing test: a rate text is accepted here
    /// exactly when it is at run time, with the same count and period.
    #[test]
    fn rates_follow_the_shared_table() {
        const RATES: &str = include_str!("../../jobs/tests/data/rates.txt");
        let mut cases = 0;
        for line in RATES.lines().filter(|line| !line.starts_with('#')) {
            let (text, expected) = line.split_once(" => ").expect("`text => expected`");
            let parsed = parse_rate(text).map(|rate| format!("{} {}", rate.count, rate.period_ms));
            match expected {
                "error" => assert!(parsed.is_err(), "rate {text:?} gave {parsed:?}"),
                meaning => assert_eq!(parsed.as_deref(), Ok(meaning), "rate {text:?}"),
            }
            cases += 1;
        }
        assert!(cases >= 20, "the table has its cases");
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
    fn unique_is_a_flag() {
        let attrs = parse_ok(quote!(unique));
        assert!(attrs.unique.is_some() && attrs.unique_for.is_none());
        // `unique_for` implies `unique`: giving both is allowed (`unique_for` wins).
        let attrs = parse_ok(quote!(unique, unique_for = "10m"));
        assert!(attrs.unique.is_some());
        assert_eq!(attrs.unique_for.unwrap().value, 600_000);
        let value_error = "`unique` is a flag and takes no value: write `unique`, or \
                           `unique_for = \"10m\"` for a time window";
        assert_eq!(parse_err(quote!(unique = true)), [value_error]);
        assert_eq!(parse_err(quote!(unique("10m"))), [value_error]);
        assert_eq!(
            parse_err(quote!(unique, queue = "a", unique)),
            ["`unique` specified more than once"]
        );
        // A bad value still counts as given.
        assert_eq!(
            parse_err(quote!(unique = 1, unique)),
            [value_error, "`unique` specified more than once"]
        );
    }

    #[test]
    fn flow_control_value_errors() {
        assert_eq!(
            parse_err(quote!(concurrency = 0)),
            ["`concurrency` must be at least 1: it is how many jobs of this kind may be Processing at once"]
        );
        assert_eq!(
            parse_err(quote!(concurrency = 5000000000)),
            ["`concurrency` must fit in a `u32`"]
        );
        assert_eq!(
            parse_err(quote!(concurrency = "5")),
            ["`concurrency` must be an integer literal, e.g. `concurrency = 5`"]
        );
        assert_eq!(
            parse_err(quote!(rate = 100)),
            ["`rate` must be a string literal, e.g. `rate = \"100/1m\"`"]
        );
        assert_eq!(
            parse_err(quote!(mutex)),
            ["expected a value, e.g. `mutex = \"account-{account_id}\"`"]
        );
        assert!(parse_err(quote!(unique_for = "soon"))[0]
            .starts_with("`unique_for` must be a duration"));
        assert!(parse_err(quote!(rate = "5/0s"))[0].ends_with("the period must be at least 1ms"));
        assert!(parse_err(quote!(mutex = "a-{"))[0].starts_with("unclosed `{`"));
    }

    #[test]
    fn unique_for_durations() {
        assert_eq!(parse_unique_for("10m"), Ok(600_000));
        assert_eq!(parse_unique_for("1h 30m"), Ok(5_400_000));
        assert_eq!(parse_unique_for("500ms"), Ok(500));
        assert_eq!(parse_unique_for("2days"), Ok(172_800_000));
        // Whole milliseconds, truncated as `jobs::Rate` truncates its period.
        assert_eq!(parse_unique_for("1s 500us"), Ok(1_000));
        for zero in ["0s", "0ms", "999us"] {
            assert_eq!(
                parse_unique_for(zero),
                Err(
                    "`unique_for` must be at least 1ms; for uniqueness without a time window, \
                     write `unique`"
                        .to_owned()
                ),
                "{zero}"
            );
        }
        for bad in ["", "10", "ten minutes", "10 fortnights", "-1s"] {
            let error = parse_unique_for(bad).unwrap_err();
            assert!(
                error.starts_with(&format!(
                    "`unique_for` must be a duration like \"10m\", \"1h 30m\" or \"500ms\": `{bad}`: "
                )),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn rates() {
        let rate = |count, period_ms| Ok(RateLimit { count, period_ms });
        assert_eq!(parse_rate("100/1m"), rate(100, 60_000));
        assert_eq!(parse_rate("5/1s"), rate(5, 1_000));
        assert_eq!(parse_rate("1000/1h"), rate(1000, 3_600_000));
        assert_eq!(parse_rate(" 7 / 1h 30m "), rate(7, 5_400_000));
        assert_eq!(parse_rate("1/1ms"), rate(1, 1));
        // The wording of `jobs::Rate`'s own parser for the range errors.
        assert_eq!(
            parse_rate("5/0s"),
            Err("invalid rate `5/0s`: the period must be at least 1ms".to_owned())
        );
        assert_eq!(
            parse_rate("0/1m"),
            Err("invalid rate `0/1m`: the count must be at least 1".to_owned())
        );
        for (bad, why) in [
            ("100 per minute", "no `/` between the count and the period"),
            ("", "no `/` between the count and the period"),
            ("x/1m", "the count must be a whole number"),
            ("-1/1m", "the count must be a whole number"),
            ("5000000000/1m", "the count must be a whole number"),
            ("100/", "the period: "),
            ("100/1 fortnight", "the period: "),
            ("100/m", "the period: "),
            ("100/1m/2", "the period: "),
        ] {
            let error = parse_rate(bad).unwrap_err();
            assert!(
                error.starts_with(&format!("invalid rate `{bad}`: {why}")),
                "{bad}: {error}"
            );
            assert!(
                error.ends_with("e.g. \"100/1m\", \"5/1s\" or \"1000/1h\""),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn mutex_templates() {
        let text = |text: &str| TemplatePart::Text(text.to_owned());
        let field = |name: &str| TemplatePart::Field(name.to_owned());
        assert_eq!(parse_template("global"), Ok(vec![text("global")]));
        assert_eq!(
            parse_template("{a}-{b_2}{c}"),
            Ok(vec![field("a"), text("-"), field("b_2"), field("c")])
        );
        assert_eq!(
            parse_template("{{literal}} {x}}}"),
            Ok(vec![text("{literal} "), field("x"), text("}")])
        );
        assert_eq!(parse_template("{_}"), Ok(vec![field("_")]));
        let error = |text: &str| parse_template(text).unwrap_err();
        assert_eq!(
            error(""),
            "`mutex` must not be empty: it is the key jobs share, e.g. \"account-{account_id}\""
        );
        for unclosed in ["a-{b", "{", "{a{b}}"] {
            assert_eq!(
                error(unclosed),
                format!(
                    "unclosed `{{` in the `mutex` template `{unclosed}`; write `{{{{` for a literal brace"
                )
            );
        }
        for unmatched in ["a}", "}{a}", "{a}}"] {
            assert_eq!(
                error(unmatched),
                format!(
                    "unmatched `}}` in the `mutex` template `{unmatched}`; write `}}}}` for a literal brace"
                )
            );
        }
        assert!(error("a-{}").starts_with("empty `{}` in the `mutex` template `a-{}`"));
        for spec in ["{a:?}", "{ a }", "{0}", "{a.b}", "{r#type}"] {
            assert!(
                error(spec).contains("in the `mutex` template is not a parameter name"),
                "{spec}: {}",
                error(spec)
            );
        }
    }

    #[test]
    fn method_options_override_impl_options() {
        let method = parse_ok(quote!(queue = "critical", concurrency = 1));
        let imp = parse_ok(quote!(
            queue = "default",
            retries = 2,
            concurrency = 4,
            unique,
            rate = "1/1s",
            mutex = "m"
        ));
        let merged = method.or(&imp);
        assert_eq!(merged.queue.unwrap().value, "critical");
        assert_eq!(merged.retries.unwrap().value, 2);
        assert_eq!(merged.concurrency.unwrap().value, 1);
        assert!(merged.unique.is_some() && merged.rate.is_some() && merged.mutex.is_some());
        assert_eq!(merged.seen.len(), 6);
    }
}
