//! The rule for queue names, `^[a-z0-9_-]+$` (Hangfire's): one place for the client's storages,
//! the server and third-party storages. The `#[job]` macro checks the same rule at compile time
//! in its own crate; a test of each crate reads the same table of names
//! (`jobs/tests/data/queue-names.txt`), so the two cannot drift apart.

use crate::error::{Error, Result};

/// Checks that `queue` is a valid queue name: one or more of `a-z`, `0-9`, `_` and `-`.
/// Every storage refuses jobs for other names at enqueue, and a server refuses to serve them.
///
/// ```
/// use jobs::validate_queue;
///
/// assert!(validate_queue("critical").is_ok());
/// let error = validate_queue("Not Valid").unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "invalid queue name `Not Valid`: queue names must match `^[a-z0-9_-]+$`"
/// );
/// ```
pub fn validate_queue(queue: &str) -> Result<()> {
    if queue.is_empty() {
        return Err(Error::InvalidQueue(
            "queue name must not be empty".to_owned(),
        ));
    }
    if queue
        .bytes()
        .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
    {
        Ok(())
    } else {
        Err(Error::InvalidQueue(format!(
            "invalid queue name `{queue}`: queue names must match `^[a-z0-9_-]+$`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::validate_queue;

    /// The table both crates holding the rule are tested against.
    const NAMES: &str = include_str!("../tests/data/queue-names.txt");

    #[test]
    fn names_follow_the_shared_table() {
        let mut cases = 0;
        for line in NAMES.lines().filter(|line| !line.starts_with('#')) {
            let (verdict, name) = line.split_once(' ').expect("`ok <name>` or `bad <name>`");
            assert_eq!(
                validate_queue(name).is_ok(),
                verdict == "ok",
                "queue name {name:?}"
            );
            cases += 1;
        }
        assert!(cases >= 15, "the table has its cases");
    }
}
