//! Rows ↔ `jobs` values. Every column is read with `try_get`: a row the storage cannot
//! understand is a [`PostgresError::Decode`] naming the row and column, never a panic.

use chrono::{DateTime, Utc};
use jobs::storage::{ContinueOn, HistoryEntry, JobRecord, StateData};
use jobs::{JobError, JobId, JobState};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::error::{describe, PostgresError};

/// One column of `row`, or a decode error naming `what` (the row) and the column.
pub(crate) fn column<'a, T: FromSql<'a>>(
    row: &'a Row,
    name: &str,
    what: &dyn Fn() -> String,
) -> Result<T, PostgresError> {
    row.try_get(name).map_err(|error| {
        PostgresError::decode(format!("{}, column `{name}`", what()), describe(&error))
    })
}

pub(crate) fn state_from_sql(
    value: &str,
    what: &dyn Fn() -> String,
) -> Result<JobState, PostgresError> {
    value
        .parse()
        .map_err(|_| PostgresError::decode(what(), format!("unknown job state `{value}`")))
}

pub(crate) fn continue_on_to_sql(on: ContinueOn) -> &'static str {
    match on {
        ContinueOn::Succeeded => "succeeded",
        ContinueOn::AnyFinished => "any_finished",
        ContinueOn::Failed => "failed",
    }
}

pub(crate) fn continue_on_from_sql(
    value: &str,
    what: &dyn Fn() -> String,
) -> Result<ContinueOn, PostgresError> {
    match value {
        "succeeded" => Ok(ContinueOn::Succeeded),
        "any_finished" => Ok(ContinueOn::AnyFinished),
        "failed" => Ok(ContinueOn::Failed),
        other => Err(PostgresError::decode(
            format!("{}, column `continue_on`", what()),
            format!("unknown continuation condition `{other}`"),
        )),
    }
}

pub(crate) fn retry_count(value: i32, what: &dyn Fn() -> String) -> Result<u32, PostgresError> {
    u32::try_from(value).map_err(|_| {
        PostgresError::decode(
            format!("{}, column `retry_count`", what()),
            format!("negative retry count {value}"),
        )
    })
}

/// A stored priority (`smallint`, 0 to 255 by the column's check).
pub(crate) fn priority(value: i16, what: &dyn Fn() -> String) -> Result<u8, PostgresError> {
    u8::try_from(value).map_err(|_| {
        PostgresError::decode(
            format!("{}, column `priority`", what()),
            format!("priority {value} outside 0 to 255"),
        )
    })
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    column: &str,
    what: &dyn Fn() -> String,
) -> Result<T, PostgresError> {
    serde_json::from_value(value)
        .map_err(|error| PostgresError::decode(format!("{}, column `{column}`", what()), error))
}

/// A job record from the columns of `RECORD_COLUMNS`, and its history if the row has it.
pub(crate) fn job_record(row: &Row, with_history: bool) -> Result<JobRecord, PostgresError> {
    let id: i64 = row
        .try_get("id")
        .map_err(|error| PostgresError::decode("a job row, column `id`", describe(&error)))?;
    let what = || format!("job {id}");
    let what: &dyn Fn() -> String = &what;
    let state: String = column(row, "state", what)?;
    let continue_on: Option<String> = column(row, "continue_on", what)?;
    let error: Option<serde_json::Value> = column(row, "error", what)?;
    let children: Vec<i64> = column(row, "children", what)?;
    let history = if with_history {
        history(row, what)?
    } else {
        Vec::new()
    };
    Ok(JobRecord {
        id: JobId(id),
        name: column(row, "name", what)?,
        queue: column(row, "queue", what)?,
        priority: priority(column(row, "priority", what)?, what)?,
        unique_key: column(row, "unique_key", what)?,
        mutex: column(row, "mutex", what)?,
        args: column(row, "args", what)?,
        state: state_from_sql(&state, &|| format!("{}, column `state`", what()))?,
        created_at: column(row, "created_at", what)?,
        state_at: column(row, "state_at", what)?,
        run_at: column(row, "run_at", what)?,
        retry_count: retry_count(column(row, "retry_count", what)?, what)?,
        server_id: column(row, "server_id", what)?,
        parent: column::<Option<i64>>(row, "parent_id", what)?.map(JobId),
        continue_on: continue_on
            .map(|value| continue_on_from_sql(&value, what))
            .transpose()?,
        children: children.into_iter().map(JobId).collect(),
        recurring_id: column(row, "recurring_id", what)?,
        result: column(row, "result", what)?,
        error: error
            .map(|value| json::<JobError>(value, "error", what))
            .transpose()?,
        history,
    })
}

/// The history arrays of the `job` statement, oldest first.
pub(crate) fn history(
    row: &Row,
    what: &dyn Fn() -> String,
) -> Result<Vec<HistoryEntry>, PostgresError> {
    let states: Option<Vec<String>> = column(row, "states", what)?;
    let ats: Option<Vec<DateTime<Utc>>> = column(row, "ats", what)?;
    let reasons: Option<Vec<Option<String>>> = column(row, "reasons", what)?;
    let data: Option<Vec<serde_json::Value>> = column(row, "data", what)?;
    let (Some(states), Some(ats), Some(reasons), Some(data)) = (states, ats, reasons, data) else {
        return Ok(Vec::new());
    };
    let history_what = || format!("{}, its history", what());
    if ats.len() != states.len() || reasons.len() != states.len() || data.len() != states.len() {
        return Err(PostgresError::decode(
            history_what(),
            "history columns of different lengths",
        ));
    }
    states
        .into_iter()
        .zip(ats)
        .zip(reasons)
        .zip(data)
        .enumerate()
        .map(|(index, (((state, at), reason), data))| {
            let entry_what = || format!("{}, history entry {}", what(), index + 1);
            Ok(HistoryEntry {
                state: state_from_sql(&state, &entry_what)?,
                at,
                reason,
                data: serde_json::from_value::<StateData>(data)
                    .map_err(|error| PostgresError::decode(entry_what(), error))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for on in [
            ContinueOn::Succeeded,
            ContinueOn::AnyFinished,
            ContinueOn::Failed,
        ] {
            let sql = continue_on_to_sql(on);
            assert_eq!(continue_on_from_sql(sql, &String::new).ok(), Some(on));
            // The same spelling as the type's serde form, which the dashboard shows.
            assert_eq!(serde_json::to_value(on).ok(), Some(serde_json::json!(sql)));
        }
        for state in JobState::ALL {
            assert_eq!(
                state_from_sql(state.as_str(), &String::new).ok(),
                Some(state)
            );
        }
        let error = continue_on_from_sql("sometimes", &|| "job 1".to_owned()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "job 1, column `continue_on` holds undecodable data: unknown continuation condition `sometimes`"
        );
    }
}
