//! Validates the item under `#[job]` into a small typed model ([`JobFn`], one per job).
//!
//! [`lower`] takes the parsed item and the parsed options. It returns the item to re-emit (the
//! user's code with `#[inject]` and method-level `#[job(...)]` attributes removed) and one
//! [`JobFn`] per function that passed every check. Problems go to [`Errors`], each spanned at the
//! culprit; a function with a problem gets no model, so no follow-on errors are generated for it.

use proc_macro2::{Ident, Span};
use quote::{format_ident, ToTokens};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{
    Attribute, FnArg, GenericArgument, ImplItem, Item, ItemFn, ItemImpl, Pat, PathArguments,
    ReturnType, Signature, Type, Visibility,
};

use crate::attr::{self, JobAttrs};
use crate::errors::Errors;

/// One job: a free function or a method of an impl block, validated.
#[derive(Debug)]
pub(crate) struct JobFn {
    /// The function's name (`send_welcome`).
    pub(crate) ident: Ident,
    /// Free function or method.
    pub(crate) kind: FnKind,
    /// `async fn` or a blocking `fn`.
    pub(crate) is_async: bool,
    /// The function's visibility, given to the arguments struct and its fields.
    pub(crate) vis: Visibility,
    /// The function's `#[doc]` attributes, copied to the arguments struct.
    pub(crate) docs: Vec<Attribute>,
    /// The function's `#[cfg]` attributes: the generated code exists only where the function does.
    pub(crate) cfgs: Vec<Attribute>,
    /// The parameters, in order.
    pub(crate) params: Vec<Param>,
    /// The return type (`()` spanned at the signature when there is none).
    pub(crate) output: Type,
    /// The generated arguments struct (`SendWelcome`, `EmailServiceSend`).
    pub(crate) struct_ident: Ident,
    /// The stored job name (`"send_welcome"`, `"EmailService::send"`, or `name = ...`).
    pub(crate) name: String,
    /// The options, with defaults filled in.
    pub(crate) options: Options,
}

/// Whether a job is a free function or a method of a service.
#[derive(Debug)]
pub(crate) enum FnKind {
    /// `fn send_welcome(...)`.
    Free,
    /// `fn send(&self, ...)` in `impl EmailService`: the service is resolved from the container.
    Method {
        /// `EmailService`.
        self_ty: Box<Type>,
        /// `self: Arc<Self>` (the resolved `Arc` is passed), rather than `&self`.
        receiver_is_arc: bool,
    },
}

/// One parameter of a job function.
#[derive(Debug)]
pub(crate) enum Param {
    /// `user_id: i64`: a field of the arguments struct.
    Arg {
        /// The field name.
        ident: Ident,
        /// The field type (`Self` replaced by the impl's type).
        ty: Type,
        /// `#[serde(...)]` attributes moved from the parameter to the field.
        serde_attrs: Vec<Attribute>,
        /// How the `#[serde]` attributes leave the field's serialization.
        serde: FieldSerde,
    },
    /// `#[inject] payments: Arc<Payments>`: resolved from the container.
    Inject {
        /// The parameter's name (`payments`).
        ident: Ident,
        /// `Payments`.
        service: Type,
    },
    /// `ctx: JobContext`.
    Context {
        /// The parameter's name (`ctx`).
        ident: Ident,
    },
    /// `token: CancellationToken`.
    CancellationToken {
        /// The parameter's name (`token`).
        ident: Ident,
    },
}

impl Param {
    /// The parameter's name.
    pub(crate) fn ident(&self) -> &Ident {
        match self {
            Param::Arg { ident, .. }
            | Param::Inject { ident, .. }
            | Param::Context { ident }
            | Param::CancellationToken { ident } => ident,
        }
    }

    /// What a parameter that is not an argument is, for messages; `None` for an argument.
    fn non_argument(&self) -> Option<&'static str> {
        match self {
            Param::Arg { .. } => None,
            Param::Inject { .. } => Some("an `#[inject]` service"),
            Param::Context { .. } => Some("the job's `JobContext`"),
            Param::CancellationToken { .. } => Some("the job's `CancellationToken`"),
        }
    }
}

/// What an argument's `#[serde(...)]` attributes change about its serialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldSerde {
    /// The field is (de)serialized by its type's own `Serialize` and `Deserialize` impls: the
    /// macro checks the type and routes both through that check.
    Plain {
        /// `#[serde(default)]` (or `default = "..."`) gives a value for a missing field.
        has_default: bool,
    },
    /// An attribute takes over how the field is (de)serialized (`with`, `serialize_with`,
    /// `deserialize_with`, `skip*`, `flatten`, `borrow`), or the attributes do not parse: serde's
    /// derive handles the field alone (and reports any problem with the attributes).
    Custom,
}

/// The keys of a field's `#[serde(...)]` attribute after which its type's own `Serialize` and
/// `Deserialize` impls are not (or not simply) what serializes it.
const CUSTOM_SERDE_KEYS: &[&str] = &[
    "with",
    "serialize_with",
    "deserialize_with",
    "skip",
    "skip_serializing",
    "skip_deserializing",
    "flatten",
    "borrow",
    "getter",
];

/// Reads the keys of `serde_attrs` (`#[serde(rename = "a", default)]`) into a [`FieldSerde`].
fn field_serde(serde_attrs: &[Attribute]) -> FieldSerde {
    let mut has_default = false;
    for attribute in serde_attrs {
        let Ok(metas) =
            attribute.parse_args_with(Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated)
        else {
            return FieldSerde::Custom;
        };
        for meta in &metas {
            let path = meta.path();
            if CUSTOM_SERDE_KEYS.iter().any(|key| path.is_ident(key)) {
                return FieldSerde::Custom;
            }
            has_default |= path.is_ident("default");
        }
    }
    FieldSerde::Plain { has_default }
}

/// The options of one job with defaults filled in.
#[derive(Debug)]
pub(crate) struct Options {
    /// Former names.
    pub(crate) aliases: Vec<String>,
    /// The queue (`"default"` unless given).
    pub(crate) queue: String,
    /// `priority = N`, `None` for the library's default.
    pub(crate) priority: Option<u8>,
    /// `retries = N`, `None` for the server default.
    pub(crate) retries: Option<u32>,
    /// `retry_delays`, in seconds; empty for the server's policy.
    pub(crate) retry_delays: Vec<u64>,
    /// `on_exhausted = "..."` (`"fail"` unless given).
    pub(crate) on_exhausted: attr::OnExhausted,
    /// `timeout`, in milliseconds.
    pub(crate) timeout_ms: Option<u64>,
    /// `unique` or `unique_for`: at most one job per key (its name and arguments).
    pub(crate) unique: bool,
    /// `unique_for`, in milliseconds: the window of `unique`.
    pub(crate) unique_for_ms: Option<u64>,
    /// `mutex = "..."`, checked against the parameters; `None` without one, or when the
    /// template names something that is not an argument (an error was reported).
    pub(crate) mutex: Option<MutexKey>,
    /// `concurrency = N`.
    pub(crate) concurrency: Option<u32>,
    /// `rate = "..."`.
    pub(crate) rate: Option<attr::RateLimit>,
    /// The path of the `jobs` crate (`::jobs` unless `crate = ...`).
    pub(crate) krate: syn::Path,
}

/// A `mutex = "..."` template whose fields are the job's arguments, ready for `format!`.
#[derive(Debug)]
pub(crate) struct MutexKey {
    /// The format string: the template's text with its braces escaped, `{}` for each field.
    pub(crate) format: String,
    /// The argument rendered into each `{}`, in order: its name and its type (checked to
    /// implement `Display`).
    pub(crate) fields: Vec<(Ident, Type)>,
    /// The template literal: an argument that cannot be rendered is reported there.
    pub(crate) span: Span,
}

/// The queue of a job without `queue = "..."`.
pub(crate) const DEFAULT_QUEUE: &str = "default";

/// The name of the parameter attribute that marks a service resolved from the container.
const INJECT: &str = "inject";

/// Validates `item` under `#[job(attrs)]`: the item to re-emit, and one model per valid job.
pub(crate) fn lower(cx: &Errors, attrs: &JobAttrs, item: Item) -> (Item, Vec<JobFn>) {
    match item {
        Item::Fn(mut item_fn) => {
            let job = lower_fn(cx, attrs, &mut item_fn);
            (Item::Fn(item_fn), job.into_iter().collect())
        }
        Item::Impl(mut item_impl) => {
            let jobs = lower_impl(cx, attrs, &mut item_impl);
            (Item::Impl(item_impl), jobs)
        }
        other => {
            cx.error_at(
                Span::call_site(),
                "`#[job]` can only be applied to a function or an impl block",
            );
            (other, Vec::new())
        }
    }
}

/// A free `#[job] fn`.
fn lower_fn(cx: &Errors, attrs: &JobAttrs, item: &mut ItemFn) -> Option<JobFn> {
    let errors_before = cx.count();
    check_signature(cx, &item.sig);
    if let Some(FnArg::Receiver(receiver)) = item.sig.inputs.first() {
        cx.error_spanned_by(
            receiver,
            "`#[job]` on a method: put `#[job]` on the `impl` block instead",
        );
    }
    let params = lower_params(cx, &mut item.sig, None);
    let output = output_type(cx, &item.sig, None);
    let ident = item.sig.ident.clone();
    let mut options = options(attrs);
    let name = attrs
        .name
        .as_ref()
        .map_or_else(|| ident.unraw().to_string(), |name| name.value.clone());
    check_aliases(cx, attrs, &name);
    if cx.count() > errors_before {
        return None;
    }
    let params = params?;
    // After the check above: a template error, like an option error, still lets the job
    // expand (without its key), so uses of the arguments struct stay quiet.
    options.mutex = mutex_key(cx, attrs, &params, &ident, false);
    Some(JobFn {
        struct_ident: Ident::new(&upper_camel_case(&ident.unraw().to_string()), ident.span()),
        kind: FnKind::Free,
        is_async: item.sig.asyncness.is_some(),
        vis: item.vis.clone(),
        docs: docs(&item.attrs),
        cfgs: cfgs(&item.attrs),
        params,
        output: output?,
        name,
        options,
        ident,
    })
}

/// A `#[job] impl Service { .. }`: every method taking `&self` is a job.
fn lower_impl(cx: &Errors, impl_attrs: &JobAttrs, item: &mut ItemImpl) -> Vec<JobFn> {
    let mut impl_attrs = impl_attrs.clone();
    for key in [attr::kw::NAME, attr::kw::ALIASES] {
        if let Some(span) = impl_attrs.key_span(key) {
            cx.error_at(
                span,
                format_args!(
                    "`{key}` cannot be set on an impl block, it would apply to every method; \
                     put `#[job({key} = ...)]` on the method instead"
                ),
            );
        }
    }
    impl_attrs.name = None;
    impl_attrs.aliases = None;
    let mut ok = true;
    if let Some((_, trait_path, _)) = &item.trait_ {
        cx.error_spanned_by(
            trait_path,
            "`#[job]` cannot be used on a trait impl; put the job methods in an inherent impl block",
        );
        ok = false;
    }
    if has_generics(&item.generics) {
        cx.error_spanned_by(
            &item.generics,
            "`#[job]` cannot be used on an impl of a generic type: a job needs one concrete service type",
        );
        ok = false;
    }
    // After a generics error, `impl<T> S<T>` would also fail the plain-type-name check.
    let type_name = match self_type_name(&item.self_ty) {
        Ok(ident) => Some(ident),
        Err(_) if !ok => None,
        Err(culprit) => {
            cx.error_spanned_by(
                culprit,
                "`#[job]` needs the impl's type to be a plain type name, like `impl EmailService`",
            );
            None
        }
    };
    let ok = ok && type_name.is_some();

    let mut jobs = Vec::new();
    let mut job_methods = 0;
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let method_attrs = take_method_attrs(cx, &mut method.attrs);
        let Some(FnArg::Receiver(_)) = method.sig.inputs.first() else {
            if let Some((attr_span, _)) = &method_attrs {
                cx.error_at(
                    *attr_span,
                    "`#[job]` methods must take `&self`; associated functions without a receiver are not jobs",
                );
            }
            continue;
        };
        job_methods += 1;
        let errors_before = cx.count();
        let attrs = match method_attrs {
            Some((_, attrs)) => {
                if let Some(span) = attrs.key_span(attr::kw::CRATE) {
                    cx.error_at(span, "`crate` can only be set on the impl block");
                }
                let attrs = attrs.or(&impl_attrs);
                attrs.check(cx);
                attrs
            }
            None => impl_attrs.clone(),
        };
        check_signature(cx, &method.sig);
        check_receiver(cx, &method.sig);
        let params = lower_params(cx, &mut method.sig, Some(&item.self_ty));
        let output = output_type(cx, &method.sig, Some(&item.self_ty));
        let ident = method.sig.ident.clone();
        let type_name = type_name
            .clone()
            .unwrap_or_else(|| format_ident!("Service"));
        let name = attrs.name.as_ref().map_or_else(
            || format!("{}::{}", type_name.unraw(), ident.unraw()),
            |name| name.value.clone(),
        );
        let mut options = options(&attrs);
        check_aliases(cx, &attrs, &name);
        if !ok || cx.count() > errors_before {
            continue;
        }
        let (Some(params), Some(output)) = (params, output) else {
            continue;
        };
        // As for a free function, a template error leaves the job expanded without its key.
        options.mutex = mutex_key(cx, &attrs, &params, &ident, true);
        let struct_name = format!(
            "{}{}",
            type_name.unraw(),
            upper_camel_case(&ident.unraw().to_string())
        );
        jobs.push(JobFn {
            struct_ident: Ident::new(&struct_name, ident.span()),
            kind: FnKind::Method {
                self_ty: item.self_ty.clone(),
                receiver_is_arc: receiver_is_arc(&method.sig),
            },
            is_async: method.sig.asyncness.is_some(),
            vis: method.vis.clone(),
            docs: docs(&method.attrs),
            cfgs: cfgs(&item.attrs)
                .into_iter()
                .chain(cfgs(&method.attrs))
                .collect(),
            params,
            output,
            name,
            options,
            ident,
        });
    }
    if job_methods == 0 {
        cx.error_spanned_by(
            &item.self_ty,
            "this impl block has no job methods: `#[job]` turns the methods taking `&self` into jobs \
             (associated functions without a receiver are left alone)",
        );
    }
    jobs
}

/// Removes the `#[job(...)]` attributes of a method inside a `#[job]` impl and parses them:
/// `Some((span of the first, options))` if there was one.
fn take_method_attrs(cx: &Errors, attrs: &mut Vec<Attribute>) -> Option<(Span, JobAttrs)> {
    let mut found: Option<(Span, JobAttrs)> = None;
    attrs.retain(|attribute| {
        if !attribute.path().is_ident("job") {
            return true;
        }
        let (_, options) = found.get_or_insert_with(|| (attribute.span(), JobAttrs::default()));
        if let syn::Meta::List(_) = &attribute.meta {
            if let Err(error) = attribute.parse_nested_meta(|meta| options.parse_meta(cx, meta)) {
                cx.syn_error(error);
            }
        } else if let syn::Meta::NameValue(_) = &attribute.meta {
            cx.error_spanned_by(
                attribute,
                "expected `#[job]` or `#[job(option = value, ...)]`",
            );
        }
        false
    });
    found
}

/// The checks shared by free functions and methods: no generics, no `unsafe`, no variadics.
fn check_signature(cx: &Errors, sig: &Signature) {
    if has_generics(&sig.generics) {
        cx.error_spanned_by(
            &sig.generics,
            "`#[job]` functions cannot be generic: a job's arguments are stored with concrete types",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(unsafety, "`#[job]` cannot be used on an `unsafe fn`");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "`#[job]` functions cannot be variadic");
    }
}

/// Generic parameters or a where clause.
fn has_generics(generics: &syn::Generics) -> bool {
    !generics.params.is_empty() || generics.where_clause.is_some()
}

/// A job method takes `&self` (or `self: &Self`, `self: Arc<Self>`): the service is a shared
/// `Arc` from the container.
fn check_receiver(cx: &Errors, sig: &Signature) {
    let Some(FnArg::Receiver(receiver)) = sig.inputs.first() else {
        return;
    };
    if receiver.colon_token.is_none() {
        // `self`, `mut self`, `&self`, `&mut self`.
        match (&receiver.reference, &receiver.mutability) {
            (Some(_), None) => {}
            (Some(_), Some(_)) => cx.error_spanned_by(
                receiver,
                "job methods must take `&self`, not `&mut self`: the service is shared from the container as an `Arc`",
            ),
            (None, _) => cx.error_spanned_by(
                receiver,
                "job methods must take `&self`, not `self`: the service is shared from the container as an `Arc` and cannot be taken by value",
            ),
        }
        return;
    }
    let accepted = match &*receiver.ty {
        Type::Reference(reference) => reference.mutability.is_none() && is_self(&reference.elem),
        ty => arc_inner(ty).is_some_and(is_self),
    };
    if !accepted {
        cx.error_spanned_by(
            receiver,
            "job methods must take `&self`, `self: &Self` or `self: Arc<Self>`: the service is shared from the container as an `Arc`",
        );
    }
}

/// Whether the (checked) receiver is `self: Arc<Self>`.
fn receiver_is_arc(sig: &Signature) -> bool {
    matches!(sig.inputs.first(), Some(FnArg::Receiver(receiver))
        if receiver.colon_token.is_some() && arc_inner(&receiver.ty).is_some())
}

/// Whether `ty` is `Self`.
fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self"))
}

/// The type's name for the struct and the job name: `EmailService` in `impl EmailService` or
/// `impl crate::mail::EmailService`; otherwise the tokens to blame.
fn self_type_name(ty: &Type) -> Result<Ident, &dyn ToTokens> {
    let Type::Path(path) = ty else {
        return Err(ty);
    };
    if path.qself.is_some() {
        return Err(ty);
    }
    let Some(last) = path.path.segments.last() else {
        return Err(ty);
    };
    if !matches!(last.arguments, PathArguments::None) {
        return Err(&last.arguments);
    }
    Ok(last.ident.clone())
}

/// Classifies every parameter (after the receiver), removing `#[inject]` and `#[serde]`
/// attributes from the signature. `None` if one of them is invalid.
fn lower_params(cx: &Errors, sig: &mut Signature, self_ty: Option<&Type>) -> Option<Vec<Param>> {
    let mut params = Vec::new();
    let mut ok = true;
    for input in &mut sig.inputs {
        let FnArg::Typed(typed) = input else {
            continue;
        };
        let mut inject = None;
        let mut serde_attrs = Vec::new();
        let mut attrs = Vec::new();
        for attribute in typed.attrs.drain(..) {
            if attribute.path().is_ident(INJECT) {
                if !matches!(attribute.meta, syn::Meta::Path(_)) {
                    cx.error_spanned_by(&attribute, "`#[inject]` takes no arguments");
                    ok = false;
                }
                inject = Some(attribute);
            } else if attribute.path().is_ident("serde") {
                serde_attrs.push(attribute);
            } else {
                attrs.push(attribute);
            }
        }
        typed.attrs = attrs;

        let ident = match &*typed.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
            pat => {
                cx.error_spanned_by(
                    pat,
                    "job parameters must be plain names like `user_id: i64`; patterns are not supported",
                );
                ok = false;
                continue;
            }
        };
        let mut ty = (*typed.ty).clone();
        if let Some(self_ty) = self_ty {
            ReplaceSelf(self_ty).visit_type_mut(&mut ty);
        }

        if inject.is_some() {
            if !serde_attrs.is_empty() {
                cx.error_spanned_by(
                    &serde_attrs[0],
                    "`#[serde]` cannot be used on an `#[inject]` parameter",
                );
                ok = false;
            }
            match arc_inner(&ty) {
                Some(service) if !matches!(service, Type::ImplTrait(_) | Type::Infer(_)) => {
                    params.push(Param::Inject {
                        ident,
                        service: service.clone(),
                    });
                }
                _ => {
                    cx.error_spanned_by(
                        &typed.ty,
                        "`#[inject]` parameters must have type `Arc<T>`: services are shared from the container as an `Arc`",
                    );
                    ok = false;
                }
            }
            continue;
        }

        match &ty {
            Type::Reference(reference) => {
                let message = if is_named(&reference.elem, "JobContext")
                    || is_named(&reference.elem, "CancellationToken")
                {
                    "take `JobContext` and `CancellationToken` by value: they are cheap to clone"
                } else {
                    "job arguments cannot be references: they are deserialized into owned values; \
                     use an owned type, e.g. `String` instead of `&str`"
                };
                cx.error_spanned_by(&typed.ty, message);
                ok = false;
                continue;
            }
            Type::ImplTrait(_) => {
                cx.error_spanned_by(
                    &typed.ty,
                    "job arguments cannot be `impl Trait`: they are deserialized into a concrete type",
                );
                ok = false;
                continue;
            }
            _ => {}
        }
        if is_named(&ty, "JobContext") || is_named(&ty, "CancellationToken") {
            if let Some(serde) = serde_attrs.first() {
                cx.error_spanned_by(
                    serde,
                    "`#[serde]` cannot be used on this parameter: it is not serialized",
                );
                ok = false;
            }
            params.push(if is_named(&ty, "JobContext") {
                Param::Context { ident }
            } else {
                Param::CancellationToken { ident }
            });
            continue;
        }
        params.push(Param::Arg {
            ident,
            ty,
            serde: field_serde(&serde_attrs),
            serde_attrs,
        });
    }
    ok.then_some(params)
}

/// `T` if `ty` is syntactically `Arc<T>` (any path ending in `Arc` with one type argument).
fn arc_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Arc" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut args = args.args.iter();
    match (args.next(), args.next()) {
        (Some(GenericArgument::Type(inner)), None) => Some(inner),
        _ => None,
    }
}

/// Whether the last path segment of `ty` is `name` (`JobContext`, `jobs::JobContext`).
fn is_named(ty: &Type, name: &str) -> bool {
    let Type::Path(path) = ty else {
        return false;
    };
    path.qself.is_none()
        && path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == name && matches!(last.arguments, PathArguments::None))
}

/// The return type, `()` if there is none. `None` (with an error) for `impl Trait`.
fn output_type(cx: &Errors, sig: &Signature, self_ty: Option<&Type>) -> Option<Type> {
    match &sig.output {
        ReturnType::Default => Some(syn::parse_quote_spanned!(sig.ident.span()=> ())),
        ReturnType::Type(_, ty) => {
            if let Type::ImplTrait(_) = **ty {
                cx.error_spanned_by(
                    ty,
                    "job functions cannot return `impl Trait`; return `()` or `Result<T, E>`",
                );
                return None;
            }
            let mut ty = (**ty).clone();
            if let Some(self_ty) = self_ty {
                ReplaceSelf(self_ty).visit_type_mut(&mut ty);
            }
            Some(ty)
        }
    }
}

/// Fills in defaults.
fn options(attrs: &JobAttrs) -> Options {
    Options {
        aliases: attrs
            .aliases
            .as_ref()
            .map(|aliases| {
                aliases
                    .value
                    .iter()
                    .map(|(alias, _)| alias.clone())
                    .collect()
            })
            .unwrap_or_default(),
        queue: attrs
            .queue
            .as_ref()
            .map_or_else(|| DEFAULT_QUEUE.to_owned(), |queue| queue.value.clone()),
        priority: attrs.priority.as_ref().map(|priority| priority.value),
        retries: attrs.retries.as_ref().map(|retries| retries.value),
        retry_delays: attrs
            .retry_delays
            .as_ref()
            .map(|delays| delays.value.clone())
            .unwrap_or_default(),
        on_exhausted: attrs
            .on_exhausted
            .as_ref()
            .map_or(attr::OnExhausted::Fail, |on| on.value),
        timeout_ms: attrs.timeout.as_ref().map(|timeout| timeout.value),
        unique: attrs.unique.is_some() || attrs.unique_for.is_some(),
        unique_for_ms: attrs.unique_for.as_ref().map(|window| window.value),
        // Needs the parameters: filled in by `mutex_key` once they are checked.
        mutex: None,
        concurrency: attrs.concurrency.as_ref().map(|limit| limit.value),
        rate: attrs.rate.as_ref().map(|rate| rate.value),
        krate: attrs
            .krate
            .as_ref()
            .map_or_else(|| syn::parse_quote!(::jobs), |krate| krate.value.clone()),
    }
}

/// Checks the `mutex` template against the job's parameters: each `{name}` must be one of its
/// arguments, because the key is rendered from the arguments struct when the job is enqueued
/// (services, the context and the token exist only while it runs). Each bad name is reported
/// at the template; `None` then, or without a template.
fn mutex_key(
    cx: &Errors,
    attrs: &JobAttrs,
    params: &[Param],
    fn_ident: &Ident,
    has_receiver: bool,
) -> Option<MutexKey> {
    let template = attrs.mutex.as_ref()?;
    let mut format = String::new();
    let mut fields = Vec::new();
    let mut ok = true;
    for part in &template.value {
        match part {
            attr::TemplatePart::Text(text) => {
                format.push_str(&text.replace('{', "{{").replace('}', "}}"));
            }
            attr::TemplatePart::Field(name) => match argument_named(params, name) {
                Some((ident, ty)) => {
                    format.push_str("{}");
                    fields.push((ident.clone(), ty.clone()));
                }
                None => {
                    let message = not_an_argument_message(params, name, fn_ident, has_receiver);
                    cx.error_at(template.span, message);
                    ok = false;
                }
            },
        }
    }
    ok.then_some(MutexKey {
        format,
        fields,
        span: template.span,
    })
}

/// The argument (serialized parameter) called `name` (`r#type` for `type`): its name and type.
fn argument_named<'a>(params: &'a [Param], name: &str) -> Option<(&'a Ident, &'a Type)> {
    params.iter().find_map(|param| match param {
        Param::Arg { ident, ty, .. } if ident.unraw() == name => Some((ident, ty)),
        _ => None,
    })
}

/// Why the template field `{name}` is not an argument, with the arguments it could name.
fn not_an_argument_message(
    params: &[Param],
    name: &str,
    fn_ident: &Ident,
    has_receiver: bool,
) -> String {
    let fn_name = fn_ident.unraw();
    let arguments: Vec<String> = params
        .iter()
        .filter(|param| param.non_argument().is_none())
        .map(|param| format!("`{}`", param.ident().unraw()))
        .collect();
    let arguments = match &arguments[..] {
        [] => format!("`{fn_name}` has no arguments to name"),
        [only] => format!("the only argument of `{fn_name}` is {only}"),
        all => format!("the arguments of `{fn_name}` are {}", all.join(", ")),
    };
    let what = if has_receiver && name == "self" {
        Some("the receiver `self`")
    } else {
        params
            .iter()
            .find(|param| param.ident().unraw() == name)
            .and_then(Param::non_argument)
    };
    match what {
        Some(what) => format!(
            "`{{{name}}}` in the `mutex` template names {what}, not an argument: the key is \
             rendered from the job's arguments when it is enqueued; {arguments}"
        ),
        None => format!(
            "`{{{name}}}` in the `mutex` template is not a parameter of `{fn_name}`; {arguments}"
        ),
    }
}

/// An alias equal to the job's own name is a mistake.
fn check_aliases(cx: &Errors, attrs: &JobAttrs, name: &str) {
    let Some(aliases) = &attrs.aliases else {
        return;
    };
    for (alias, span) in &aliases.value {
        if alias == name {
            cx.error_at(*span, format_args!("alias `{alias}` is the job's own name"));
        }
    }
}

/// The `#[doc]` attributes.
fn docs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|attribute| attribute.path().is_ident("doc"))
        .cloned()
        .collect()
}

/// The `#[cfg]` attributes.
fn cfgs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|attribute| attribute.path().is_ident("cfg"))
        .cloned()
        .collect()
}

/// Replaces `Self` with the impl's type: the generated struct and run function are outside the
/// impl block.
struct ReplaceSelf<'a>(&'a Type);

impl VisitMut for ReplaceSelf<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if is_self(ty) {
            *ty = self.0.clone();
            return;
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

/// `send_welcome` → `SendWelcome`, `export_v2` → `ExportV2`, `_private` → `Private`.
pub(crate) fn upper_camel_case(name: &str) -> String {
    let mut camel = String::with_capacity(name.len());
    for word in name.split('_').filter(|word| !word.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            camel.extend(first.to_uppercase());
            camel.push_str(chars.as_str());
        }
    }
    if camel.is_empty() {
        // A name made only of underscores cannot be a fn name, but keep the struct name valid.
        camel.push_str("Job");
    }
    camel
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn lower_ok(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> Vec<JobFn> {
        let cx = Errors::new();
        let attrs = attr::parse(&cx, args);
        let (_, jobs) = lower(&cx, &attrs, syn::parse2(item).unwrap());
        if let Err(error) = cx.check() {
            panic!("unexpected error: {error}");
        }
        jobs
    }

    fn lower_err(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> Vec<String> {
        let cx = Errors::new();
        let attrs = attr::parse(&cx, args);
        let (_, jobs) = lower(&cx, &attrs, syn::parse2(item).unwrap());
        let errors: Vec<String> = cx
            .check()
            .expect_err("expected an error")
            .into_iter()
            .map(|error| error.to_string())
            .collect();
        assert!(jobs.is_empty() || !errors.is_empty());
        errors
    }

    #[test]
    fn naming() {
        assert_eq!(upper_camel_case("send_welcome"), "SendWelcome");
        assert_eq!(upper_camel_case("export_v2"), "ExportV2");
        assert_eq!(upper_camel_case("_private_job"), "PrivateJob");
        assert_eq!(upper_camel_case("a__b"), "AB");
        assert_eq!(upper_camel_case("send"), "Send");
        assert_eq!(upper_camel_case("sendMail"), "SendMail");
    }

    #[test]
    fn free_fn_model() {
        let jobs = lower_ok(
            quote!(queue = "critical", retries = 3),
            quote! {
                /// Docs.
                pub async fn send_welcome(
                    user_id: i64,
                    #[serde(default)] template: String,
                    #[inject] mailer: std::sync::Arc<Mailer>,
                    ctx: JobContext,
                    token: jobs::CancellationToken,
                ) -> anyhow::Result<()> {}
            },
        );
        let [job] = &jobs[..] else { panic!() };
        assert_eq!(job.name, "send_welcome");
        assert_eq!(job.struct_ident, "SendWelcome");
        assert!(job.is_async);
        assert_eq!(job.docs.len(), 1);
        assert_eq!(job.options.queue, "critical");
        assert_eq!(job.options.retries, Some(3));
        assert!(
            matches!(&job.params[0], Param::Arg { ident, serde_attrs, .. } if ident == "user_id" && serde_attrs.is_empty())
        );
        assert!(matches!(&job.params[1], Param::Arg { serde_attrs, .. } if serde_attrs.len() == 1));
        assert!(
            matches!(&job.params[2], Param::Inject { ident, service } if ident == "mailer" && quote!(#service).to_string() == "Mailer")
        );
        assert!(matches!(&job.params[3], Param::Context { ident } if ident == "ctx"));
        assert!(matches!(&job.params[4], Param::CancellationToken { ident } if ident == "token"));
    }

    #[test]
    fn serde_attributes_that_take_over_leave_the_field_to_serde() {
        let serde_of = |attrs: proc_macro2::TokenStream| {
            let item: ItemFn = syn::parse2(quote!(fn f(#attrs x: u8) {})).unwrap();
            let FnArg::Typed(typed) = &item.sig.inputs[0] else {
                panic!()
            };
            field_serde(&typed.attrs)
        };
        let plain = FieldSerde::Plain { has_default: false };
        let defaulted = FieldSerde::Plain { has_default: true };
        assert_eq!(serde_of(quote!()), plain);
        assert_eq!(serde_of(quote!(#[serde(rename = "y", alias = "z")])), plain);
        assert_eq!(
            serde_of(quote!(#[serde(rename(serialize = "y"), skip_serializing_if = "is_zero")])),
            plain
        );
        assert_eq!(serde_of(quote!(#[serde(default)])), defaulted);
        assert_eq!(
            serde_of(quote!(#[serde(rename = "y")] #[serde(default = "seven")])),
            defaulted
        );
        for custom in [
            quote!(#[serde(with = "module")]),
            quote!(#[serde(rename = "y", serialize_with = "f")]),
            quote!(#[serde(deserialize_with = "f")]),
            quote!(#[serde(skip)]),
            quote!(#[serde(default, skip_deserializing)]),
            quote!(#[serde(flatten)]),
            quote!(#[serde(with = )]),
        ] {
            assert_eq!(serde_of(custom.clone()), FieldSerde::Custom, "{custom}");
        }
    }

    #[test]
    fn defaults() {
        let jobs = lower_ok(
            quote!(),
            quote!(
                fn r#type(r#in: u8) {}
            ),
        );
        let [job] = &jobs[..] else { panic!() };
        assert_eq!(job.name, "type");
        assert_eq!(job.struct_ident, "Type");
        assert!(!job.is_async);
        assert_eq!(job.options.queue, "default");
        assert_eq!(job.options.retries, None);
        let output = &job.output;
        assert_eq!(quote!(#output).to_string(), "()");
    }

    #[test]
    fn impl_block_model() {
        let jobs = lower_ok(
            quote!(queue = "mail"),
            quote! {
                impl EmailService {
                    pub fn new() -> Self { EmailService }
                    pub async fn send(&self, to: String) -> anyhow::Result<()> {}
                    #[job(queue = "bulk", name = "mail.digest")]
                    fn digest(self: Arc<Self>, other: Self) {}
                    const X: u8 = 1;
                }
            },
        );
        let [send, digest] = &jobs[..] else { panic!() };
        assert_eq!(send.name, "EmailService::send");
        assert_eq!(send.struct_ident, "EmailServiceSend");
        assert_eq!(send.options.queue, "mail");
        assert_eq!(digest.name, "mail.digest");
        assert_eq!(digest.struct_ident, "EmailServiceDigest");
        assert_eq!(digest.options.queue, "bulk");
        let Param::Arg { ty, .. } = &digest.params[0] else {
            panic!()
        };
        assert_eq!(quote!(#ty).to_string(), "EmailService");
    }

    #[test]
    fn fn_errors() {
        let cases = [
            (
                quote!(
                    fn f<T>(x: T) {}
                ),
                "`#[job]` functions cannot be generic",
            ),
            (
                quote!(
                    fn f(x: &str) {}
                ),
                "job arguments cannot be references",
            ),
            (
                quote!(
                    fn f(x: impl Fn()) {}
                ),
                "job arguments cannot be `impl Trait`",
            ),
            (
                quote!(
                    fn f((a, b): (u8, u8)) {}
                ),
                "job parameters must be plain names",
            ),
            (
                quote!(
                    fn f(#[inject] x: Box<u8>) {}
                ),
                "`#[inject]` parameters must have type `Arc<T>`",
            ),
            (
                quote!(
                    fn f(#[inject(x)] x: Arc<u8>) {}
                ),
                "`#[inject]` takes no arguments",
            ),
            (
                quote!(
                    fn f(&self) {}
                ),
                "`#[job]` on a method",
            ),
            (
                quote!(
                    unsafe fn f() {}
                ),
                "`#[job]` cannot be used on an `unsafe fn`",
            ),
            (
                quote!(
                    fn f() -> impl Sized {}
                ),
                "job functions cannot return `impl Trait`",
            ),
            (
                quote!(
                    struct S;
                ),
                "`#[job]` can only be applied to a function or an impl block",
            ),
            (
                quote!(
                    fn f(c: &JobContext) {}
                ),
                "take `JobContext` and `CancellationToken` by value",
            ),
        ];
        for (item, expected) in cases {
            let errors = lower_err(quote!(), item.clone());
            assert_eq!(errors.len(), 1, "{item}: {errors:?}");
            assert!(errors[0].starts_with(expected), "{item}: {errors:?}");
        }
    }

    #[test]
    fn impl_errors() {
        let cases = [
            (
                quote!(
                    impl<T> S<T> {
                        fn f(&self) {}
                    }
                ),
                "`#[job]` cannot be used on an impl of a generic type",
            ),
            (
                quote!(impl S { fn f(self) {} }),
                "job methods must take `&self`, not `self`",
            ),
            (
                quote!(impl S { fn f(&mut self) {} }),
                "job methods must take `&self`, not `&mut self`",
            ),
            (
                quote!(impl S { fn f(self: Box<Self>) {} }),
                "job methods must take `&self`, `self: &Self`",
            ),
            (
                quote!(impl S { fn new() -> Self { S } }),
                "this impl block has no job methods",
            ),
            (
                quote!(impl Clone for S { fn clone(&self) -> Self { S } }),
                "`#[job]` cannot be used on a trait impl",
            ),
            (
                quote!(impl S { #[job] fn new() {} fn f(&self) {} }),
                "`#[job]` methods must take `&self`",
            ),
            (
                quote!(impl S { #[job(crate = ::x)] fn f(&self) {} }),
                "`crate` can only be set on the impl block",
            ),
        ];
        for (item, expected) in cases {
            let errors = lower_err(quote!(), item.clone());
            assert_eq!(errors.len(), 1, "{item}: {errors:?}");
            assert!(errors[0].starts_with(expected), "{item}: {errors:?}");
        }
        let errors = lower_err(quote!(name = "x"), quote!(impl S { fn f(&self) {} }));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("`name` cannot be set on an impl block"));
    }

    #[test]
    fn every_problem_is_reported() {
        let errors = lower_err(
            quote!(queue = "Bad"),
            quote!(
                fn f<T>(a: &str, (b, c): (u8, u8), #[inject] d: u8) {}
            ),
        );
        assert_eq!(errors.len(), 5, "{errors:#?}");
    }

    #[test]
    fn flow_control_options_model() {
        let jobs = lower_ok(
            quote!(
                unique_for = "10m",
                concurrency = 2,
                rate = "5/1s",
                mutex = "{{{account}}}-{type}:{account}"
            ),
            quote! {
                fn f(account: u64, r#type: String, #[inject] db: Arc<Db>, ctx: JobContext) {}
            },
        );
        let [job] = &jobs[..] else { panic!() };
        let options = &job.options;
        assert!(options.unique);
        assert_eq!(options.unique_for_ms, Some(600_000));
        assert_eq!(options.concurrency, Some(2));
        assert_eq!(
            options.rate,
            Some(attr::RateLimit {
                count: 5,
                period_ms: 1_000
            })
        );
        let mutex = options.mutex.as_ref().unwrap();
        assert_eq!(mutex.format, "{{{}}}-{}:{}");
        let fields: Vec<String> = mutex
            .fields
            .iter()
            .map(|(ident, ty)| format!("{ident}: {}", quote!(#ty)))
            .collect();
        assert_eq!(fields, ["account: u64", "r#type: String", "account: u64"]);

        let [job] = &lower_ok(
            quote!(unique),
            quote!(
                fn f() {}
            ),
        )[..] else {
            panic!()
        };
        assert!(job.options.unique && job.options.unique_for_ms.is_none());
        assert!(job.options.mutex.is_none());
    }

    #[test]
    fn mutex_fields_must_be_arguments() {
        let item = quote! {
            fn transfer(
                account_id: u64,
                amount: u64,
                #[inject] db: Arc<Db>,
                ctx: JobContext,
                token: CancellationToken,
            ) {}
        };
        let arguments = "the arguments of `transfer` are `account_id`, `amount`";
        let cases = [
            (
                quote!(mutex = "account-{acount_id}"),
                format!(
                    "`{{acount_id}}` in the `mutex` template is not a parameter of `transfer`; \
                     {arguments}"
                ),
            ),
            (
                quote!(mutex = "{db}"),
                format!(
                    "`{{db}}` in the `mutex` template names an `#[inject]` service, not an \
                     argument: the key is rendered from the job's arguments when it is enqueued; \
                     {arguments}"
                ),
            ),
            (
                quote!(mutex = "{ctx}"),
                format!(
                    "`{{ctx}}` in the `mutex` template names the job's `JobContext`, not an \
                     argument: the key is rendered from the job's arguments when it is enqueued; \
                     {arguments}"
                ),
            ),
            (
                quote!(mutex = "{token}"),
                format!(
                    "`{{token}}` in the `mutex` template names the job's `CancellationToken`, \
                     not an argument: the key is rendered from the job's arguments when it is \
                     enqueued; {arguments}"
                ),
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(lower_err(args.clone(), item.clone()), [expected], "{args}");
        }
        assert_eq!(
            lower_err(quote!(mutex = "{a}-{b}"), quote!(fn g(a: u8) {})),
            ["`{b}` in the `mutex` template is not a parameter of `g`; the only argument of `g` is `a`"]
        );
        assert_eq!(
            lower_err(quote!(mutex = "{x}"), quote!(fn g(#[inject] db: Arc<Db>) {})),
            ["`{x}` in the `mutex` template is not a parameter of `g`; `g` has no arguments to name"]
        );
        assert_eq!(
            lower_err(
                quote!(mutex = "{self}"),
                quote!(impl S { fn send(&self, to: String) {} })
            ),
            ["`{self}` in the `mutex` template names the receiver `self`, not an argument: the key \
              is rendered from the job's arguments when it is enqueued; the only argument of \
              `send` is `to`"]
        );
    }

    #[test]
    fn impl_mutex_is_checked_per_method() {
        let cx = Errors::new();
        let attrs = attr::parse(&cx, quote!(mutex = "{to}"));
        let item = syn::parse2(quote!(impl S {
            fn send(&self, to: String) {}
            fn flush(&self) {}
            #[job(mutex = "all")]
            fn digest(&self) {}
        }))
        .unwrap();
        let (_, jobs) = lower(&cx, &attrs, item);
        let errors: Vec<String> = cx
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors,
            ["`{to}` in the `mutex` template is not a parameter of `flush`; `flush` has no arguments to name"]
        );
        // Every job is still generated; the one with the bad template without its key.
        let keys: Vec<Option<&str>> = jobs
            .iter()
            .map(|job| {
                job.options
                    .mutex
                    .as_ref()
                    .map(|mutex| mutex.format.as_str())
            })
            .collect();
        assert_eq!(keys, [Some("{}"), None, Some("all")]);
    }

    #[test]
    fn alias_equal_to_name() {
        let errors = lower_err(
            quote!(aliases = ["f"]),
            quote!(
                fn f() {}
            ),
        );
        assert_eq!(errors, ["alias `f` is the job's own name"]);
    }
}
