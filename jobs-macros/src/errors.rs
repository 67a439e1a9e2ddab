//! Collects every error found while parsing, validating and expanding one `#[job]`, so users
//! see all of them at once (serde_derive's `Ctxt`).
//!
//! A check that fails pushes its error here and the macro carries on with a sensible default;
//! [`Errors::check`] folds the list into one [`syn::Error`] at the end.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// The error collector of one macro invocation. Must be consumed with [`Errors::check`].
#[derive(Debug)]
pub(crate) struct Errors {
    /// `None` once checked.
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Errors {
    /// An empty collector.
    pub(crate) fn new() -> Self {
        Errors {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Adds an error spanned over `tokens` (every token of it is underlined).
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&self, tokens: T, message: M) {
        self.syn_error(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Adds an error at `span`.
    pub(crate) fn error_at<M: Display>(&self, span: Span, message: M) {
        self.syn_error(syn::Error::new(span, message));
    }

    /// Adds an error returned by a parser.
    pub(crate) fn syn_error(&self, error: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("error added after `Errors::check`")
            .push(error);
    }

    /// How many errors were added so far (a check compares counts to see if it added any).
    pub(crate) fn count(&self) -> usize {
        self.errors.borrow().as_ref().map_or(0, Vec::len)
    }

    /// Consumes the collector: every error, combined into one, or `Ok` if there was none.
    pub(crate) fn check(self) -> syn::Result<()> {
        let errors = self
            .errors
            .borrow_mut()
            .take()
            .expect("`Errors::check` called twice");
        let mut errors = errors.into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        // A collector dropped unchecked would lose errors; this is a bug in the macro.
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            panic!("`Errors` dropped without calling `check`");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_errors_is_ok() {
        let errors = Errors::new();
        assert_eq!(errors.count(), 0);
        assert!(errors.check().is_ok());
    }

    #[test]
    fn every_error_is_kept_in_order() {
        let errors = Errors::new();
        errors.error_at(Span::call_site(), "first");
        errors.error_spanned_by(quote::quote!(a b c), "second");
        errors.syn_error(syn::Error::new(Span::call_site(), "third"));
        assert_eq!(errors.count(), 3);
        let combined = errors.check().unwrap_err();
        let messages: Vec<String> = combined.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages, ["first", "second", "third"]);
    }

    #[test]
    #[should_panic(expected = "dropped without calling `check`")]
    fn dropping_unchecked_panics() {
        let errors = Errors::new();
        drop(errors);
    }
}
