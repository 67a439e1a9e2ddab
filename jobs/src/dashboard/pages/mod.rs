//! GET handlers: every page, the JSON endpoints and the embedded assets.
//!
//! A page's handler reads what it shows from the storage into the page's view model (see
//! [`templates`](super::templates)) and renders it with
//! [`page`](super::templates::layout::page), which adds the layout. Handlers hold no markup.

mod assets;
mod fallback;
mod health;
mod job;
mod job_lists;
mod load;
mod overview;
mod recurring;
mod servers;

pub(crate) use assets::{css, js};
pub(crate) use fallback::not_found;
pub(crate) use job::{job, job_arguments_json, job_state_json};
pub(crate) use job_lists::{by_state, queue, queues, search};
pub(crate) use overview::{overview, stats_json};
pub(crate) use recurring::recurring;
pub(crate) use servers::servers;
