//! Generates the code of `#[job]` from the validated model ([`JobFn`]).
//!
//! For each job: inside `const _: () = { .. };`, so nothing else leaks into the user's namespace,
//! the inherent methods of the arguments struct, the helpers its serde derive calls for each
//! field, its `Job` impl, the run function (which starts with the spanned bound checks) and the
//! registry entry; then the arguments struct itself, outside so users can name it. Generated code names only `#krate::__private::..` (`::jobs`
//! unless `crate = ...` is given).

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Item, LitStr};

use crate::attr::{self, OnExhausted};
use crate::errors::Errors;
use crate::input::{self, FieldSerde, FnKind, JobFn, MutexKey, Param};

/// The environment variable that makes the macro print each expansion to stderr.
const DEBUG_VAR: &str = "JOBS_MACROS_DEBUG";

/// Expands `#[job(args)] item`. Never returns an empty stream: on error the user's item is still
/// emitted (minus the attributes the macro consumes), with every error as a `compile_error!`,
/// plus the expansion of every job that had no error of its own, so uses of those stay quiet.
pub(crate) fn job(args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Errors::new();
    let attrs = attr::parse(&cx, args);
    let (item, jobs) = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => {
            let (item, jobs) = input::lower(&cx, &attrs, parsed);
            (item.into_token_stream(), jobs)
        }
        Err(error) => {
            cx.syn_error(error);
            (item, Vec::new())
        }
    };
    let expansions = jobs.iter().map(expand_job);
    let errors = cx.check().err().map(syn::Error::into_compile_error);
    let output = quote! {
        #item
        #(#expansions)*
        #errors
    };
    if std::env::var_os(DEBUG_VAR).is_some_and(|value| value == "1") {
        let names: Vec<&str> = jobs.iter().map(|job| job.name.as_str()).collect();
        eprintln!("#[job] expansion of {names:?}:\n{output}\n");
    }
    output
}

/// The code of one job.
fn expand_job(job: &JobFn) -> TokenStream {
    let krate = &job.options.krate;
    let private = quote!(#krate::__private);
    let cfgs = &job.cfgs;
    let args_struct = args_struct(job, &private);
    let inherent_impl = inherent_impl(job, &private);
    let job_impl = job_impl(job, &private);
    let serde_helpers = serde_helpers(job, &private);
    let run_fn = run_fn(job, &private);
    let entry = registry_entry(job, &private);
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(
            non_upper_case_globals,
            unused_qualifications,
            clippy::all,
            clippy::pedantic,
            clippy::nursery,
        )]
        const _: () = {
            #inherent_impl
            #serde_helpers
            #job_impl
            #run_fn
            #entry
        };

        #args_struct
    }
}

/// `#krate::__private` with every token at `span`, so an error about a generated call is
/// reported at the user's tokens it is about (and rustc merges it with the bound check there).
fn private_at(private: &TokenStream, span: Span) -> TokenStream {
    respan(private.clone(), span)
}

/// Sets the span of every token of `tokens`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                token = TokenTree::Group(respanned);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// A serialized parameter: a field of the arguments struct.
struct Field<'a> {
    ident: &'a syn::Ident,
    ty: &'a syn::Type,
    serde_attrs: &'a [syn::Attribute],
    serde: FieldSerde,
}

impl Field<'_> {
    /// `__jobs_serialize_user_id`, `__jobs_deserialize_user_id`: the field's serde helpers.
    fn helper(&self, direction: &str) -> syn::Ident {
        format_ident!("__jobs_{}_{}", direction, self.ident.unraw())
    }
}

/// The serialized parameters, in order.
fn fields(job: &JobFn) -> impl Iterator<Item = Field<'_>> {
    job.params.iter().filter_map(|param| match param {
        Param::Arg {
            ident,
            ty,
            serde_attrs,
            serde,
        } => Some(Field {
            ident,
            ty,
            serde_attrs,
            serde: *serde,
        }),
        _ => None,
    })
}

/// Whether `ty` is written `Option<T>` (any path ending in `Option` with one type argument).
fn is_option(ty: &syn::Type) -> bool {
    let syn::Type::Path(path) = ty else {
        return false;
    };
    path.qself.is_none()
        && path.path.segments.last().is_some_and(|last| {
            last.ident == "Option"
                && matches!(&last.arguments, syn::PathArguments::AngleBracketed(args) if args.args.len() == 1)
        })
}

/// `pub struct SendWelcome { pub user_id: i64, .. }` with the function's docs and visibility.
fn args_struct(job: &JobFn, private: &TokenStream) -> TokenStream {
    let JobFn {
        struct_ident,
        vis,
        cfgs,
        name,
        ..
    } = job;
    let docs = if job.docs.is_empty() {
        let doc = format!("The arguments of the `{name}` job (generated by `#[job]`).");
        quote!(#[doc = #doc])
    } else {
        let docs = &job.docs;
        quote!(#(#docs)*)
    };
    let serde_crate = LitStr::new(&quote!(#private::serde).to_string(), Span::call_site());
    let fields = fields(job).map(|field| {
        let Field {
            ident,
            ty,
            serde_attrs,
            ..
        } = field;
        let doc = format!("The `{}` argument.", ident.unraw());
        // Spanned at the type: serde's derive reports an unmet bound at a field's first token.
        let doc = LitStr::new(&doc, ty.span());
        let doc = quote_spanned!(ty.span()=> #[doc = #doc]);
        let routed = match field.serde {
            FieldSerde::Plain { has_default } => {
                // Through the helpers of `serde_helpers`, so a type without serde impls gets
                // one error, from `assert_argument`, instead of one per use in the derives.
                // The paths are spanned at the type, where any error about them belongs.
                let path = |direction| {
                    let path = format!("{struct_ident}::{}", field.helper(direction));
                    LitStr::new(&path, ty.span())
                };
                let (serialize, deserialize) = (path("serialize"), path("deserialize"));
                // A field with `deserialize_with` is an error when missing, even an `Option`
                // that serde would otherwise read as `None`: `default` keeps that.
                let default = (is_option(ty) && !has_default).then(|| quote!(default,));
                Some(quote! {
                    #[serde(#default serialize_with = #serialize, deserialize_with = #deserialize)]
                })
            }
            FieldSerde::Custom => None,
        };
        quote! {
            #doc
            #(#serde_attrs)*
            #routed
            #vis #ident: #ty
        }
    });
    quote! {
        #(#cfgs)*
        #docs
        #[derive(
            #private::serde::Serialize,
            #private::serde::Deserialize,
            ::core::fmt::Debug,
            ::core::clone::Clone,
        )]
        #[serde(crate = #serde_crate)]
        #vis struct #struct_ident {
            #(#fields,)*
        }
    }
}

/// `SendWelcome::new(..)`, `.enqueue(&client)`, `.enqueue_with(..)`, `.schedule(..)`,
/// `.schedule_at(..)`, `.continue_after(..)`: inherent, so no trait import is needed.
fn inherent_impl(job: &JobFn, private: &TokenStream) -> TokenStream {
    let JobFn {
        struct_ident,
        vis,
        name,
        ..
    } = job;
    let params = fields(job).map(|Field { ident, ty, .. }| quote!(#ident: #ty));
    let idents = fields(job).map(|field| field.ident);
    let new_doc = format!("Creates the arguments of the `{name}` job.");
    quote! {
        #[allow(dead_code, clippy::too_many_arguments, clippy::new_without_default)]
        impl #struct_ident {
            #[doc = #new_doc]
            #[must_use]
            #vis fn new(#(#params),*) -> Self {
                Self { #(#idents),* }
            }

            /// Enqueues the job to its queue: it runs as soon as a worker is free.
            /// Returns the id of the stored job.
            #vis async fn enqueue(
                &self,
                client: &#private::Client,
            ) -> #private::Result<#private::JobId> {
                client.enqueue(self).await
            }

            /// Enqueues the job with per-enqueue options (queue, priority, delay, unique key)
            /// over its `#[job(...)]` defaults. Returns the id of the stored job and whether it
            /// was a duplicate of a unique job, in which case nothing was created and the id is
            /// the existing job's.
            #vis async fn enqueue_with(
                &self,
                client: &#private::Client,
                opts: #private::EnqueueOptions,
            ) -> #private::Result<#private::Enqueued> {
                client.enqueue_with(self, opts).await
            }

            /// Schedules the job to run once `delay` has passed.
            #vis async fn schedule(
                &self,
                client: &#private::Client,
                delay: #private::Duration,
            ) -> #private::Result<#private::JobId> {
                client.schedule(self, delay).await
            }

            /// Schedules the job to run at `at`.
            #vis async fn schedule_at(
                &self,
                client: &#private::Client,
                at: #private::DateTime<#private::Utc>,
            ) -> #private::Result<#private::JobId> {
                client.schedule_at(self, at).await
            }

            /// Adds the job as a continuation of `parent`: it is enqueued once `parent` has
            /// succeeded.
            #vis async fn continue_after(
                &self,
                client: &#private::Client,
                parent: #private::JobId,
            ) -> #private::Result<#private::JobId> {
                client.continue_after(parent, self).await
            }
        }
    }
}

/// The functions the serde derive of the arguments struct calls for each field the macro checks
/// (see `args_struct`): each (de)serializes the field with its type's own impl, or, when the type
/// has none, with the unchecked fallback of `jobs::__private` that makes the derive compile, so
/// that the type's one error is the one `assert_argument` reports.
fn serde_helpers(job: &JobFn, private: &TokenStream) -> TokenStream {
    let struct_ident = &job.struct_ident;
    let helpers = fields(job)
        .filter(|field| matches!(field.serde, FieldSerde::Plain { .. }))
        .map(|field| {
            let ty = field.ty;
            let serialize = field.helper("serialize");
            let deserialize = field.helper("deserialize");
            quote! {
                fn #serialize<__S: #private::serde::Serializer>(
                    value: &#ty,
                    serializer: __S,
                ) -> ::core::result::Result<__S::Ok, __S::Error> {
                    #[allow(unused_imports)]
                    use #private::{SerializeArgument as _, SerializeUnchecked as _};
                    (&#private::ArgumentRef(value)).__jobs_serialize(serializer)
                }

                fn #deserialize<'de, __D: #private::serde::Deserializer<'de>>(
                    deserializer: __D,
                ) -> ::core::result::Result<#ty, __D::Error> {
                    #[allow(unused_imports)]
                    use #private::{DeserializeArgument as _, DeserializeUnchecked as _};
                    (&#private::ArgumentType::<#ty>(::core::marker::PhantomData))
                        .__jobs_deserialize(deserializer)
                }
            }
        })
        .collect::<Vec<_>>();
    if helpers.is_empty() {
        return TokenStream::new();
    }
    quote! {
        impl #struct_ident {
            #(#helpers)*
        }
    }
}

/// `impl Job for SendWelcome`: the stored name, the queue, and the options the trait has a
/// default for when they are given (priority, flow control).
fn job_impl(job: &JobFn, private: &TokenStream) -> TokenStream {
    let JobFn {
        struct_ident, name, ..
    } = job;
    let options = &job.options;
    let queue = &options.queue;
    // Only given options are written out: the trait's defaults are the library's.
    let priority = options
        .priority
        .map(|priority| quote!(const PRIORITY: u8 = #priority;));
    let unique = options.unique.then(|| {
        let window = option(
            options
                .unique_for_ms
                .map(|millis| quote!(#private::Duration::from_millis(#millis))),
        );
        quote! {
            const UNIQUE: ::core::option::Option<#private::Unique> =
                ::core::option::Option::Some(#private::Unique { window: #window });
        }
    });
    let concurrency = options.concurrency.map(|limit| {
        quote! {
            const CONCURRENCY: ::core::option::Option<::core::primitive::u32> =
                ::core::option::Option::Some(#limit);
        }
    });
    let rate = options.rate.map(|rate| {
        let value = rate_value(rate, private);
        quote! {
            const RATE: ::core::option::Option<#private::Rate> = ::core::option::Option::Some(#value);
        }
    });
    let mutex_key = options
        .mutex
        .as_ref()
        .map(|mutex| mutex_key_fn(mutex, private));
    quote! {
        #[automatically_derived]
        impl #private::Job for #struct_ident {
            const NAME: &'static str = #name;
            const QUEUE: &'static str = #queue;
            #priority
            #unique
            #concurrency
            #rate
            #mutex_key
        }
    }
}

/// `Some(value)` or `None`, as an expression.
fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// `Rate::checked(count, period_ms)`: the text was checked by the macro, so no runtime parse.
fn rate_value(rate: attr::RateLimit, private: &TokenStream) -> TokenStream {
    let attr::RateLimit { count, period_ms } = rate;
    quote!(#private::Rate::checked(#count, #period_ms))
}

/// `fn mutex_key(&self)`: the template rendered with `format!`. Each field goes through
/// `mutex_part::<T>`, spanned at the template, so a type without `Display` gets one error
/// there (with the library's message) instead of one inside `format!`. `&self.field` keeps
/// the call-site span: `self` must resolve to the generated method's receiver.
fn mutex_key_fn(mutex: &MutexKey, private: &TokenStream) -> TokenStream {
    let format = LitStr::new(&mutex.format, mutex.span);
    let fields = mutex.fields.iter().map(|(ident, ty)| {
        // The type too: rustc reports an unmet bound of an explicit type argument at it.
        let check = respan(quote!(#private::mutex_part::<#ty>), mutex.span);
        quote!(#check(&self.#ident))
    });
    quote! {
        fn mutex_key(&self) -> ::core::option::Option<#private::String> {
            ::core::option::Option::Some(#private::format!(#format, #(#fields),*))
        }
    }
}

/// Bound checks, each spanned at the user's type, so "not serializable" underlines the argument,
/// "not a supported return type" the return type and "not Send + Sync" the injected service.
/// They are statements of `__jobs_run`: in the same body as the calls needing the same bounds,
/// rustc reports each unmet bound once.
fn assertions(job: &JobFn, private: &TokenStream) -> TokenStream {
    // A field whose `#[serde]` attributes take over is serde's to check.
    let checked = fields(job).filter(|field| matches!(field.serde, FieldSerde::Plain { .. }));
    let arguments = checked.map(|Field { ty, .. }| {
        let private = private_at(private, ty.span());
        quote_spanned! {ty.span()=>
            #private::assert_argument::<#ty>();
        }
    });
    let services = job.params.iter().filter_map(|param| match param {
        Param::Inject { service, .. } => {
            let private = private_at(private, service.span());
            Some(quote_spanned! {service.span()=>
                #private::assert_injectable::<#service>();
            })
        }
        _ => None,
    });
    let output = &job.output;
    let output = {
        let private = private_at(private, output.span());
        quote_spanned! {output.span()=>
            #private::assert_output::<#output>();
        }
    };
    quote! {
        #(#arguments)*
        #(#services)*
        #output
    }
}

/// `fn __jobs_run(Invocation) -> BoxFuture<RunResult>`: deserializes the arguments, resolves the
/// services, calls the function (on the blocking pool if it is not `async`), converts its output.
fn run_fn(job: &JobFn, private: &TokenStream) -> TokenStream {
    let invocation = format_ident!("__jobs_invocation");
    let args = format_ident!("__jobs_args");
    let struct_ident = &job.struct_ident;

    let mut locals = Vec::new();
    let mut call_args = Vec::new();
    for (index, param) in job.params.iter().enumerate() {
        let local = format_ident!("__jobs_param{}", index);
        let resolve = match param {
            Param::Arg { ident, .. } => {
                call_args.push(quote!(#args.#ident));
                continue;
            }
            Param::Inject { service, .. } => {
                let call = quote_spanned!(service.span()=> service::<#service>());
                quote!(#invocation.#call?)
            }
            Param::Context { .. } => quote!(#invocation.context()),
            Param::CancellationToken { .. } => quote!(#invocation.cancellation_token()),
        };
        locals.push(quote!(let #local = #resolve;));
        call_args.push(quote!(#local));
    }

    let ident = &job.ident;
    let call = match &job.kind {
        FnKind::Free => quote!(#ident(#(#call_args),*)),
        FnKind::Method {
            self_ty,
            receiver_is_arc,
        } => {
            let service = format_ident!("__jobs_service");
            locals.insert(
                0,
                quote!(let #service = #invocation.service::<#self_ty>()?;),
            );
            let receiver = if *receiver_is_arc {
                quote!(#service)
            } else {
                quote!(&*#service)
            };
            quote!(<#self_ty>::#ident(#receiver, #(#call_args),*))
        }
    };
    let output = if job.is_async {
        quote!(#call.await)
    } else {
        quote!(#private::run_blocking(move || #call).await?)
    };
    // Spanned at the return type, like the `assert_output` check, so both report one error there.
    let into_result = {
        let private = private_at(private, job.output.span());
        quote_spanned! {job.output.span()=>
            #private::IntoJobResult::into_job_result(__jobs_output)
        }
    };
    // Spanned at the function's name: a job future that is not `Send` is reported there.
    let boxed = {
        let private = private_at(private, job.ident.span());
        quote_spanned! {job.ident.span()=>
            #private::Box::pin(__jobs_future)
        }
    };
    let assertions = assertions(job, private);
    quote! {
        fn __jobs_run(
            #invocation: #private::Invocation,
        ) -> #private::BoxFuture<'static, #private::RunResult> {
            #assertions
            let __jobs_future = async move {
                let #args: #struct_ident = #invocation.args()?;
                #(#locals)*
                let __jobs_output = #output;
                #into_result
            };
            #boxed
        }
    }
}

/// `inventory::submit! { JobEntry { .. } }`.
fn registry_entry(job: &JobFn, private: &TokenStream) -> TokenStream {
    let name = &job.name;
    let options = &job.options;
    let queue = &options.queue;
    let aliases = &options.aliases;
    let retries = option(options.retries.map(|retries| quote!(#retries)));
    let retry_delays = &options.retry_delays;
    let on_exhausted = match options.on_exhausted {
        OnExhausted::Fail => quote!(#private::OnExhausted::Fail),
        OnExhausted::Delete => quote!(#private::OnExhausted::Delete),
    };
    let timeout = option(
        options
            .timeout_ms
            .map(|millis| quote!(#private::Duration::from_millis(#millis))),
    );
    let concurrency = option(options.concurrency.map(|limit| quote!(#limit)));
    let rate = option(options.rate.map(|rate| rate_value(rate, private)));
    let mutex = options.mutex.is_some();
    let instance = match &job.kind {
        FnKind::Method { self_ty, .. } => Some(&**self_ty),
        FnKind::Free => None,
    };
    let injected = job.params.iter().filter_map(|param| match param {
        Param::Inject { service, .. } => Some(service),
        _ => None,
    });
    let services = instance.into_iter().chain(injected);
    quote! {
        #private::inventory::submit! {
            #private::JobEntry {
                name: #name,
                aliases: &[#(#aliases),*],
                queue: #queue,
                options: #private::JobOptions {
                    retries: #retries,
                    retry_delays: &[#(#retry_delays),*],
                    on_exhausted: #on_exhausted,
                    timeout: #timeout,
                    concurrency: #concurrency,
                    rate: #rate,
                    mutex: #mutex,
                },
                services: &[#(#private::ServiceKey::of::<#services>),*],
                run: __jobs_run,
                file: ::core::file!(),
                line: ::core::line!(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        normalized(job(args, item))
    }

    /// Token streams print with a space between tokens; compare printed forms, without
    /// trailing commas, which rustfmt adds to the expected code and are insignificant.
    fn normalized(tokens: TokenStream) -> String {
        without_trailing_commas(tokens).to_string()
    }

    /// `tokens` with the comma that ends it, or any of its groups, removed.
    fn without_trailing_commas(tokens: TokenStream) -> TokenStream {
        let mut tokens: Vec<TokenTree> = tokens
            .into_iter()
            .map(|token| match token {
                TokenTree::Group(group) => {
                    let mut stripped =
                        Group::new(group.delimiter(), without_trailing_commas(group.stream()));
                    stripped.set_span(group.span());
                    TokenTree::Group(stripped)
                }
                other => other,
            })
            .collect();
        if matches!(tokens.last(), Some(TokenTree::Punct(punct)) if punct.as_char() == ',') {
            tokens.pop();
        }
        tokens.into_iter().collect()
    }

    #[test]
    fn free_async_fn() {
        let output = expand(
            quote!(),
            quote! {
                /// Sends the welcome mail.
                pub async fn send_welcome(user_id: i64, template: String) -> Result<(), MailError> {}
            },
        );
        for expected in [
            quote!(
                pub async fn send_welcome(user_id: i64, template: String) -> Result<(), MailError> {
                }
            ),
            quote!(#[doc = r" Sends the welcome mail."]),
            quote!(#[serde(crate = ":: jobs :: __private :: serde")]),
            quote!(
                pub struct SendWelcome {
                    #[doc = "The `user_id` argument."]
                    #[serde(
                        serialize_with = "SendWelcome::__jobs_serialize_user_id",
                        deserialize_with = "SendWelcome::__jobs_deserialize_user_id"
                    )]
                    pub user_id: i64,
                    #[doc = "The `template` argument."]
                    #[serde(
                        serialize_with = "SendWelcome::__jobs_serialize_template",
                        deserialize_with = "SendWelcome::__jobs_deserialize_template"
                    )]
                    pub template: String,
                }
            ),
            quote!(
                fn __jobs_serialize_user_id<__S: ::jobs::__private::serde::Serializer>(
                    value: &i64,
                    serializer: __S,
                ) -> ::core::result::Result<__S::Ok, __S::Error> {
                    #[allow(unused_imports)]
                    use ::jobs::__private::{SerializeArgument as _, SerializeUnchecked as _};
                    (&::jobs::__private::ArgumentRef(value)).__jobs_serialize(serializer)
                }
            ),
            quote!(
                (&::jobs::__private::ArgumentType::<String>(::core::marker::PhantomData))
                    .__jobs_deserialize(deserializer)
            ),
            quote!(
                pub fn new(user_id: i64, template: String) -> Self {
                    Self { user_id, template }
                }
            ),
            quote!(impl ::jobs::__private::Job for SendWelcome { const NAME: &'static str = "send_welcome"; const QUEUE: &'static str = "default"; }),
            quote!(::jobs::__private::assert_argument::<i64>();),
            // `>>` prints as one token here, `> >` in the output: compare a prefix.
            quote!(::jobs::__private::assert_output::<Result<(), MailError),
            quote!(let __jobs_output = send_welcome(__jobs_args.user_id, __jobs_args.template).await;),
            quote!(retries: ::core::option::Option::None,),
            quote!(
                concurrency: ::core::option::Option::None,
                rate: ::core::option::Option::None,
                mutex: false,
            ),
            quote!(services: &[],),
            quote!(
                pub async fn enqueue_with(
                    &self,
                    client: &::jobs::__private::Client,
                    opts: ::jobs::__private::EnqueueOptions,
                ) -> ::jobs::__private::Result<::jobs::__private::Enqueued> {
                    client.enqueue_with(self, opts).await
                }
            ),
        ] {
            let expected = normalized(expected);
            assert!(
                output.contains(&expected),
                "missing `{expected}` in\n{output}"
            );
        }
        assert!(!output.contains("compile_error"), "{output}");
        // Options not given keep the trait's defaults.
        for absent in ["PRIORITY", "UNIQUE", "CONCURRENCY", "RATE", "fn mutex_key"] {
            assert!(!output.contains(absent), "{absent} in\n{output}");
        }
    }

    #[test]
    fn sync_fn_with_every_option_and_param_kind() {
        let output = expand(
            quote!(
                name = "billing.charge",
                aliases = ["charge"],
                queue = "critical",
                retries = 3,
                retry_delays = [1, 5, 30],
                on_exhausted = "delete",
                timeout = "30s",
                unique_for = "10m",
                mutex = "{{order}}-{order_id}",
                concurrency = 4,
                rate = "100/1m",
                crate = ::my_jobs,
            ),
            quote! {
                fn charge(
                    order_id: i64,
                    #[inject] payments: Arc<Payments>,
                    ctx: JobContext,
                    token: CancellationToken,
                ) -> anyhow::Result<Receipt> {}
            },
        );
        for expected in [
            quote!(
                fn charge(
                    order_id: i64,
                    payments: Arc<Payments>,
                    ctx: JobContext,
                    token: CancellationToken,
                ) -> anyhow::Result<Receipt> {
                }
            ),
            quote!(
                struct Charge {
                    #[doc = "The `order_id` argument."]
                    #[serde(
                        serialize_with = "Charge::__jobs_serialize_order_id",
                        deserialize_with = "Charge::__jobs_deserialize_order_id"
                    )]
                    order_id: i64,
                }
            ),
            quote!(
                const NAME: &'static str = "billing.charge";
            ),
            quote!(
                const QUEUE: &'static str = "critical";
            ),
            quote!(let __jobs_param1 = __jobs_invocation.service::<Payments>()?;),
            quote!(let __jobs_param2 = __jobs_invocation.context();),
            quote!(let __jobs_param3 = __jobs_invocation.cancellation_token();),
            quote!(
                ::my_jobs::__private::run_blocking(move || charge(
                    __jobs_args.order_id,
                    __jobs_param1,
                    __jobs_param2,
                    __jobs_param3
                ))
                .await?
            ),
            quote!(::my_jobs::__private::assert_injectable::<Payments>();),
            quote!(aliases: &["charge"],),
            quote!(retries: ::core::option::Option::Some(3u32),),
            quote!(retry_delays: &[1u64, 5u64, 30u64],),
            quote!(on_exhausted: ::my_jobs::__private::OnExhausted::Delete,),
            quote!(timeout: ::core::option::Option::Some(::my_jobs::__private::Duration::from_millis(30000u64)),),
            quote!(services: &[::my_jobs::__private::ServiceKey::of::<Payments>],),
            quote!(
                const UNIQUE: ::core::option::Option<::my_jobs::__private::Unique> =
                    ::core::option::Option::Some(::my_jobs::__private::Unique {
                        window: ::core::option::Option::Some(
                            ::my_jobs::__private::Duration::from_millis(600000u64),
                        ),
                    });
                const CONCURRENCY: ::core::option::Option<::core::primitive::u32> =
                    ::core::option::Option::Some(4u32);
                const RATE: ::core::option::Option<::my_jobs::__private::Rate> =
                    ::core::option::Option::Some(::my_jobs::__private::Rate::checked(
                        100u32, 60000u64,
                    ));
                fn mutex_key(&self) -> ::core::option::Option<::my_jobs::__private::String> {
                    ::core::option::Option::Some(::my_jobs::__private::format!(
                        "{{order}}-{}",
                        ::my_jobs::__private::mutex_part::<i64>(&self.order_id)
                    ))
                }
            ),
            quote!(
                concurrency: ::core::option::Option::Some(4u32),
                rate: ::core::option::Option::Some(::my_jobs::__private::Rate::checked(100u32, 60000u64)),
                mutex: true,
            ),
        ] {
            let expected = normalized(expected);
            assert!(
                output.contains(&expected),
                "missing `{expected}` in\n{output}"
            );
        }
        assert!(!output.contains(":: jobs ::"), "{output}");
        assert!(!output.contains("# [inject]"), "{output}");
    }

    #[test]
    fn serde_attributes_decide_how_a_field_is_routed_and_checked() {
        let output = expand(
            quote!(),
            quote! {
                async fn f(
                    #[serde(rename = "n")] note: Option<String>,
                    #[serde(default)] kept: Option<u8>,
                    #[serde(with = "my_format")] when: Stamp,
                    r#type: u8,
                ) {}
            },
        );
        for expected in [
            // Plain fields go through the helpers; an `Option` keeps reading a missing field
            // as `None`.
            quote!(
                #[serde(rename = "n")]
                #[serde(
                    default,
                    serialize_with = "F::__jobs_serialize_note",
                    deserialize_with = "F::__jobs_deserialize_note"
                )]
                note: Option<String>,
            ),
            quote!(
                #[serde(default)]
                #[serde(
                    serialize_with = "F::__jobs_serialize_kept",
                    deserialize_with = "F::__jobs_deserialize_kept"
                )]
                kept: Option<u8>,
            ),
            // Serde's own attribute takes over: no helpers, no check.
            quote!(
                #[serde(with = "my_format")]
                when: Stamp,
            ),
            quote!(serialize_with = "F::__jobs_serialize_type"),
            quote!(fn __jobs_deserialize_type),
            quote!(::jobs::__private::assert_argument::<Option<String> >();),
            quote!(::jobs::__private::assert_argument::<u8>();),
        ] {
            let expected = normalized(expected);
            assert!(
                output.contains(&expected),
                "missing `{expected}` in\n{output}"
            );
        }
        assert!(!output.contains("__jobs_serialize_when"), "{output}");
        assert!(!output.contains("assert_argument :: < Stamp >"), "{output}");
    }

    #[test]
    fn instance_jobs() {
        let output = expand(
            quote!(),
            quote! {
                impl EmailService {
                    pub fn new() -> Self { EmailService }
                    #[job(unique, mutex = "mail-{to}")]
                    pub async fn send(&self, to: String) -> anyhow::Result<()> {}
                    #[job(name = "mail.flush")]
                    fn flush(self: Arc<Self>) {}
                }
            },
        );
        for expected in [
            quote!(impl EmailService { pub fn new() -> Self { EmailService } pub async fn send(&self, to: String) -> anyhow::Result<()> {} fn flush(self: Arc<Self>) {} }),
            quote!(pub struct EmailServiceSend),
            quote!(
                const NAME: &'static str = "EmailService::send";
            ),
            quote!(let __jobs_service = __jobs_invocation.service::<EmailService>()?;),
            quote!(<EmailService>::send(&*__jobs_service, __jobs_args.to).await),
            quote!(
                struct EmailServiceFlush {}
            ),
            quote!(
                const NAME: &'static str = "mail.flush";
            ),
            quote!(run_blocking(move || <EmailService>::flush(__jobs_service,)).await?),
            quote!(
                const UNIQUE: ::core::option::Option<::jobs::__private::Unique> =
                    ::core::option::Option::Some(::jobs::__private::Unique {
                        window: ::core::option::Option::None,
                    });
            ),
            quote!(::core::option::Option::Some(::jobs::__private::format!(
                "mail-{}",
                ::jobs::__private::mutex_part::<String>(&self.to)
            ))),
            quote!(services: &[::jobs::__private::ServiceKey::of::<EmailService>],),
        ] {
            let expected = normalized(expected);
            assert!(
                output.contains(&expected),
                "missing `{expected}` in\n{output}"
            );
        }
        assert!(!output.contains("compile_error"), "{output}");
        assert_eq!(output.matches("inventory :: submit !").count(), 2);
        // The method's own options are its alone.
        assert_eq!(output.matches("const UNIQUE").count(), 1, "{output}");
        assert_eq!(output.matches("mutex : true").count(), 1, "{output}");
    }

    #[test]
    fn errors_keep_the_item_and_report_everything() {
        let output = expand(
            quote!(queue = "Bad", bogus = 1),
            quote!(
                fn f(#[inject] a: Box<u8>, b: &str) {}
            ),
        );
        assert!(
            output.starts_with(&normalized(quote!(
                fn f(a: Box<u8>, b: &str) {}
            ))),
            "{output}"
        );
        assert_eq!(output.matches("compile_error").count(), 4, "{output}");
        assert!(!output.contains("struct"), "{output}");
    }

    #[test]
    fn option_errors_still_expand_the_job() {
        // Uses of `F` elsewhere stay quiet while the user fixes the option.
        let output = expand(
            quote!(queue = "Bad"),
            quote!(
                fn f() {}
            ),
        );
        assert_eq!(output.matches("compile_error").count(), 1, "{output}");
        assert!(output.contains("struct F"), "{output}");
        assert!(
            output.contains(r#"const QUEUE : & 'static str = "default""#),
            "{output}"
        );
    }

    #[test]
    fn mutex_errors_still_expand_the_job() {
        let output = expand(
            quote!(mutex = "{nope}", unique),
            quote!(
                fn f(a: u8) {}
            ),
        );
        assert_eq!(output.matches("compile_error").count(), 1, "{output}");
        assert!(output.contains("struct F"), "{output}");
        assert!(!output.contains("fn mutex_key"), "{output}");
        assert!(output.contains("mutex : false"), "{output}");
    }

    #[test]
    fn an_impl_keeps_its_valid_jobs() {
        let output = expand(
            quote!(),
            quote!(impl S { fn good(&self) {} fn bad(&mut self) {} }),
        );
        assert_eq!(output.matches("compile_error").count(), 1, "{output}");
        assert!(output.contains("struct SGood"), "{output}");
        assert!(!output.contains("struct SBad"), "{output}");
    }

    #[test]
    fn not_a_fn_or_impl() {
        let output = expand(
            quote!(),
            quote!(
                struct S;
            ),
        );
        assert!(output.starts_with("struct S ;"), "{output}");
        assert!(output.contains("can only be applied to a function or an impl block"));
    }

    #[test]
    fn cfg_and_docs_are_copied() {
        let output = expand(
            quote!(),
            quote!(
                #[cfg(test)]
                fn f() {}
            ),
        );
        assert_eq!(output.matches("# [cfg (test)]").count(), 3, "{output}");
        assert!(output.contains("The arguments of the `f` job"), "{output}");
    }
}
