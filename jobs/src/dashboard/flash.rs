//! The flash message: what the previous action did, carried to the next page in a
//! short-lived cookie. [`Action`] names the actions on ticked rows; [`Flash`] is what one
//! did: a [`Tally`] of the rows, or a [`Note`] in words (signed, see there).

use super::csrf::{hex, unhex, CsrfKey};

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

/// The outcome of the previous action, carried to the next page in a short-lived cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flash {
    /// An action on ticked rows: how many it was done to and how many it failed for.
    Tally(Tally),
    /// An action on one thing (a queue), in words: what it did, or the error that stopped it.
    Note(Note),
}

/// What an action on ticked rows did. Only this fixed shape is read back, so it carries no
/// text at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// What was done.
    pub(crate) action: Action,
    /// To how many items it was done.
    pub(crate) done: usize,
    /// How many items it could not be done to.
    pub(crate) failed: usize,
}

/// A message in words. Its cookie is signed with the dashboard's key, so a page shows only
/// text the dashboard itself wrote: a cookie planted by someone else (a sibling subdomain can
/// set cookies for this host) is ignored rather than shown as the dashboard's word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    /// Whether it reports a failure.
    pub(crate) error: bool,
    /// The message.
    pub(crate) text: String,
}

/// The longest note, in bytes: with its hex encoding and signature the cookie stays far below
/// the 4 KiB browsers keep.
pub(crate) const MAX_NOTE_BYTES: usize = 1000;

/// What note cookies are signed for.
const NOTE_PURPOSE: &[u8] = b"jobs-dashboard-flash\0";

impl Flash {
    /// Reads a cookie value; `None` unless it has exactly the shape
    /// [`to_cookie_value`](Flash::to_cookie_value) writes and, for a note, `key`'s signature.
    pub(crate) fn parse(value: &str, key: &CsrfKey) -> Option<Flash> {
        match value.split_once('.') {
            Some(("note", rest)) => Note::parse(rest, key).map(Flash::Note),
            _ => Tally::parse(value).map(Flash::Tally),
        }
    }

    /// The cookie value, a note signed with `key`.
    pub(crate) fn to_cookie_value(&self, key: &CsrfKey) -> String {
        match self {
            Flash::Tally(tally) => tally.to_cookie_value(),
            Flash::Note(note) => format!("note.{}", note.to_cookie_value(key)),
        }
    }

    /// Whether something went wrong.
    pub(crate) fn is_error(&self) -> bool {
        match self {
            Flash::Tally(tally) => tally.failed > 0,
            Flash::Note(note) => note.error,
        }
    }

    /// The message, in words.
    pub(crate) fn message(&self) -> String {
        match self {
            Flash::Tally(tally) => tally.message(),
            Flash::Note(note) => note.text.clone(),
        }
    }
}

impl Tally {
    /// Nothing done yet.
    pub(crate) fn new(action: Action) -> Tally {
        Tally {
            action,
            done: 0,
            failed: 0,
        }
    }

    fn parse(value: &str) -> Option<Tally> {
        let mut fields = value.split('.');
        let tally = Tally {
            action: Action::parse(fields.next()?)?,
            done: fields.next()?.parse().ok()?,
            failed: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(tally)
    }

    fn to_cookie_value(self) -> String {
        format!("{}.{}.{}", self.action.as_str(), self.done, self.failed)
    }

    fn message(self) -> String {
        let Tally {
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

impl Note {
    /// A note that something was done.
    pub(crate) fn done(text: String) -> Note {
        Note { error: false, text }
    }

    /// A note that something could not be done, and why.
    pub(crate) fn failed(text: String) -> Note {
        Note { error: true, text }
    }

    /// What is signed: the kind and the text, so neither can be swapped.
    fn signed_bytes(error: bool, text: &str) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(text.len() + 2);
        bytes.extend_from_slice(if error { b"e\0" } else { b"i\0" });
        bytes.extend_from_slice(text.as_bytes());
        bytes
    }

    /// `e|i.<text as hex>.<signature>`, the text cut to [`MAX_NOTE_BYTES`].
    fn to_cookie_value(&self, key: &CsrfKey) -> String {
        let mut end = self.text.len().min(MAX_NOTE_BYTES);
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let text = &self.text[..end];
        let signature = key.sign(NOTE_PURPOSE, &Note::signed_bytes(self.error, text));
        let kind = if self.error { "e" } else { "i" };
        format!("{kind}.{}.{signature}", hex(text.as_bytes()))
    }

    fn parse(value: &str, key: &CsrfKey) -> Option<Note> {
        let mut fields = value.split('.');
        let error = match fields.next()? {
            "e" => true,
            "i" => false,
            _ => return None,
        };
        let text = String::from_utf8(unhex(fields.next()?, MAX_NOTE_BYTES)?).ok()?;
        let signature = fields.next()?;
        let signed = Note::signed_bytes(error, &text);
        (fields.next().is_none() && key.verify_signature(NOTE_PURPOSE, &signed, signature))
            .then_some(Note { error, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_round_trip_and_anything_else_is_rejected() {
        let key = CsrfKey::random();
        let flash = Flash::Tally(Tally {
            action: Action::Requeue,
            done: 3,
            failed: 1,
        });
        assert_eq!(flash.to_cookie_value(&key), "requeue.3.1");
        assert_eq!(
            Flash::parse(&flash.to_cookie_value(&key), &key),
            Some(flash.clone())
        );
        assert_eq!(
            flash.message(),
            "Requeued 3 jobs; 1 could not be: see the log."
        );
        assert!(flash.is_error());
        let enqueued = Flash::Tally(Tally {
            action: Action::Enqueue,
            done: 1,
            failed: 0,
        });
        assert_eq!(
            Flash::parse(&enqueued.to_cookie_value(&key), &key),
            Some(enqueued.clone())
        );
        assert_eq!(enqueued.message(), "Enqueued 1 job.");
        for bad in [
            "",
            "requeue",
            "requeue.1",
            "requeue.1.2.3",
            "hack.1.1",
            "requeue.x.1",
            "note",
            "note.e",
            "note.i.6869",
        ] {
            assert_eq!(Flash::parse(bad, &key), None, "{bad}");
        }
    }

    #[test]
    fn notes_are_read_back_only_with_the_signature_of_their_key() {
        let key = CsrfKey::random();
        let note = Flash::Note(Note::failed("unknown queue `é<x>`".to_owned()));
        let value = note.to_cookie_value(&key);
        assert!(value.starts_with("note.e."), "{value}");
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.'),
            "a plain cookie value: {value}"
        );
        assert_eq!(Flash::parse(&value, &key), Some(note.clone()));
        assert!(note.is_error());
        assert_eq!(note.message(), "unknown queue `é<x>`");
        // Another key, another kind or another text: ignored.
        assert_eq!(Flash::parse(&value, &CsrfKey::random()), None);
        assert_eq!(
            Flash::parse(&value.replacen("note.e.", "note.i.", 1), &key),
            None
        );
        let forged = format!(
            "note.e.{}.{}",
            hex(b"unknown queue `x`"),
            value.rsplit('.').next().unwrap_or_default()
        );
        assert_eq!(Flash::parse(&forged, &key), None);
        assert_eq!(Flash::parse(&format!("{value}.x"), &key), None);
        // A long text is cut at a character boundary, and the cut text is what is signed.
        let long = Flash::Note(Note::done("é".repeat(MAX_NOTE_BYTES)));
        let Some(Flash::Note(read)) = Flash::parse(&long.to_cookie_value(&key), &key) else {
            panic!("a long note reads back");
        };
        assert_eq!(read.text, "é".repeat(MAX_NOTE_BYTES / 2));
        assert!(!read.error);
    }
}
