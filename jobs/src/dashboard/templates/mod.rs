//! Markup. Each page has a view model (a plain struct its handler fills) and a template that
//! renders it: the struct implements [`View`](layout::View), and
//! [`layout::page`] puts its content in the layout every page shares. Everything goes through
//! maud, which escapes every value.
//!
//! Templates read the request context (for links and whether to show buttons) and the list
//! query; they never read the storage.

pub(crate) mod graph;
pub(crate) mod job;
pub(crate) mod job_list;
pub(crate) mod layout;
pub(crate) mod overview;
pub(crate) mod parts;
pub(crate) mod queues;
pub(crate) mod recurring;
pub(crate) mod servers;
