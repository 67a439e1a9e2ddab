//! The flash message: what the previous action did, carried to the next page in a
//! short-lived cookie. [`Action`] names the actions; [`Flash`] counts what one did.

/// The flash cookie's name.
pub(crate) const FLASH_COOKIE: &str = "jobs_dashboard_flash";

/// An action on jobs or recurring jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Requeue,
    /// Requeue under the name users see on scheduled and awaiting jobs: "Enqueue now".
    Enqueue,
    Delete,
    Trigger,
    Pause,
    Resume,
    Remove,
}

impl Action {
    const ALL: [Action; 7] = [
        Action::Requeue,
        Action::Enqueue,
        Action::Delete,
        Action::Trigger,
        Action::Pause,
        Action::Resume,
        Action::Remove,
    ];

    /// The action's name in URLs and in the cookie.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Requeue => "requeue",
            Action::Enqueue => "enqueue",
            Action::Delete => "delete",
            Action::Trigger => "trigger",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Remove => "remove",
        }
    }

    /// The action named `text`, if any.
    pub(crate) fn parse(text: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
    }

    fn past(self) -> &'static str {
        match self {
            Action::Requeue => "Requeued",
            Action::Enqueue => "Enqueued",
            Action::Delete => "Deleted",
            Action::Trigger => "Triggered",
            Action::Pause => "Paused",
            Action::Resume => "Resumed",
            Action::Remove => "Removed",
        }
    }

    fn noun(self, count: usize) -> &'static str {
        match (self, count) {
            (Action::Requeue | Action::Enqueue | Action::Delete, 1) => "job",
            (Action::Requeue | Action::Enqueue | Action::Delete, _) => "jobs",
            (_, 1) => "recurring job",
            _ => "recurring jobs",
        }
    }
}

/// The outcome of the previous action, carried to the next page in a short-lived cookie. Only
/// this fixed shape is read back, so no text of the request's choosing is ever shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flash {
    /// What was done.
    pub(crate) action: Action,
    /// To how many items it was done.
    pub(crate) done: usize,
    /// How many items it could not be done to.
    pub(crate) failed: usize,
}

impl Flash {
    /// Nothing done yet.
    pub(crate) fn new(action: Action) -> Flash {
        Flash {
            action,
            done: 0,
            failed: 0,
        }
    }

    /// Reads a cookie value; `None` unless it has exactly the shape [`Flash::to_cookie_value`]
    /// writes.
    pub(crate) fn parse(value: &str) -> Option<Flash> {
        let mut fields = value.split('.');
        let flash = Flash {
            action: Action::parse(fields.next()?)?,
            done: fields.next()?.parse().ok()?,
            failed: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(flash)
    }

    /// The cookie value.
    pub(crate) fn to_cookie_value(self) -> String {
        format!("{}.{}.{}", self.action.as_str(), self.done, self.failed)
    }

    /// Whether something went wrong.
    pub(crate) fn is_error(self) -> bool {
        self.failed > 0
    }

    /// The message, in words.
    pub(crate) fn message(self) -> String {
        let Flash {
            action,
            done,
            failed,
        } = self;
        match (done, failed) {
            (0, 0) => "Nothing was selected.".to_owned(),
            (done, 0) => format!("{} {done} {}.", action.past(), action.noun(done)),
            (0, failed) => format!(
                "{failed} {} could not be {}: see the log.",
                action.noun(failed),
                action.past().to_lowercase()
            ),
            (done, failed) => format!(
                "{} {done} {}; {failed} could not be: see the log.",
                action.past(),
                action.noun(done)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_round_trips_and_rejects_anything_else() {
        let flash = Flash {
            action: Action::Requeue,
            done: 3,
            failed: 1,
        };
        assert_eq!(Flash::parse(&flash.to_cookie_value()), Some(flash));
        assert_eq!(
            flash.message(),
            "Requeued 3 jobs; 1 could not be: see the log."
        );
        let enqueued = Flash {
            action: Action::Enqueue,
            done: 1,
            failed: 0,
        };
        assert_eq!(Flash::parse(&enqueued.to_cookie_value()), Some(enqueued));
        assert_eq!(enqueued.message(), "Enqueued 1 job.");
        for bad in [
            "",
            "requeue",
            "requeue.1",
            "requeue.1.2.3",
            "hack.1.1",
            "requeue.x.1",
        ] {
            assert_eq!(Flash::parse(bad), None, "{bad}");
        }
    }
}
