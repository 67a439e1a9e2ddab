//! What a list page is asked for in its query string: filters ([`Filters`]) and a page
//! ([`Paging`]). Handlers read them into storage queries; templates write them back into
//! links and forms.

use serde::Deserialize;

use super::context::RequestCtx;
use super::format::{enc, truncate};
use crate::flow::MAX_UNIQUE_KEY_BYTES;
use crate::job::JobState;

/// The query parameters pages understand. All optional; bad values fall back to defaults.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    page: Option<String>,
    size: Option<String>,
    name: Option<String>,
    args: Option<String>,
    key: Option<String>,
    state: Option<String>,
    q: Option<String>,
}

impl Params {
    /// The filters, and the page asked for (of `total` items).
    pub(crate) fn split(self, total: u64) -> (Filters, Paging) {
        let size = self
            .size
            .and_then(|s| s.parse().ok())
            .filter(|s| Paging::SIZES.contains(s))
            .unwrap_or(20);
        let page = self
            .page
            .and_then(|p| p.parse::<usize>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
            .min(1_000_000);
        let filters = Filters {
            name: non_empty(self.name),
            args: non_empty(self.args),
            // A whole unique key, so the link from a job's page finds it.
            key: non_empty_up_to(self.key, MAX_UNIQUE_KEY_BYTES),
            state: self.state.and_then(|s| s.parse().ok()),
            q: non_empty(self.q),
        };
        (filters, Paging { page, size, total })
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    non_empty_up_to(value, 200)
}

/// The trimmed value unless empty, at most `max` characters.
fn non_empty_up_to(value: Option<String>, max: usize) -> Option<String> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(|v| truncate(&v, max))
}

/// The list filters of a request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    /// Part of the job's name.
    pub(crate) name: Option<String>,
    /// Part of the job's arguments.
    pub(crate) args: Option<String>,
    /// Part of the job's unique key.
    pub(crate) key: Option<String>,
    /// The job's state (on the search page).
    pub(crate) state: Option<JobState>,
    /// Part of a recurring job's id or job name.
    pub(crate) q: Option<String>,
}

impl Filters {
    /// Whether any filter is set.
    pub(crate) fn is_active(&self) -> bool {
        self.name.is_some()
            || self.args.is_some()
            || self.key.is_some()
            || self.state.is_some()
            || self.q.is_some()
    }

    /// `path?…` with these filters and the page.
    pub(crate) fn link(&self, ctx: &RequestCtx, path: &str, page: usize, size: usize) -> String {
        let mut query = Vec::new();
        for (key, value) in [
            ("name", self.name.as_deref()),
            ("args", self.args.as_deref()),
            ("key", self.key.as_deref()),
            ("state", self.state.map(JobState::as_str)),
            ("q", self.q.as_deref()),
        ] {
            if let Some(value) = value {
                query.push(format!("{key}={}", enc(value)));
            }
        }
        if page > 1 {
            query.push(format!("page={page}"));
        }
        if size != 20 {
            query.push(format!("size={size}"));
        }
        if query.is_empty() {
            ctx.url(path)
        } else {
            format!("{}?{}", ctx.url(path), query.join("&"))
        }
    }
}

/// Paging of a list.
#[derive(Debug, Clone)]
pub(crate) struct Paging {
    /// The page shown, from 1.
    pub(crate) page: usize,
    /// Items per page.
    pub(crate) size: usize,
    /// Items in all pages.
    pub(crate) total: u64,
}

impl Paging {
    /// The page sizes offered.
    pub(crate) const SIZES: [usize; 4] = [10, 20, 50, 100];

    /// How many items come before this page.
    pub(crate) fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.size)
    }

    /// How many pages there are (at least one).
    pub(crate) fn pages(&self) -> usize {
        let total = usize::try_from(self.total).unwrap_or(usize::MAX);
        total.div_ceil(self.size).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging() {
        let paging = Paging {
            page: 3,
            size: 20,
            total: 45,
        };
        assert_eq!(paging.offset(), 40);
        assert_eq!(paging.pages(), 3);
        let empty = Paging {
            page: 1,
            size: 20,
            total: 0,
        };
        assert_eq!(empty.pages(), 1);
    }
}
