//! Continuations: jobs awaiting a parent, released or deleted by its outcome.

use std::sync::Arc;

use crate::error::Error;
use crate::job::{JobId, JobState};
use crate::storage::*;

use super::{
    at, child, complete, enqueue, error_data, fetch, fetch_from, ids, job, last_reason, record,
    state, succeeded, t0, SERVER,
};

/// A continuation waits, then is enqueued with its parent's result when the parent succeeds.
pub async fn continuation_runs_after_parent_succeeds(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parent = enqueue(storage, vec![job("parent", "default")]).await[0];
    let kids = enqueue(
        storage,
        vec![
            child("child1", parent, ContinueOn::Succeeded),
            child("child2", parent, ContinueOn::Succeeded),
        ],
    )
    .await;
    for kid in &kids {
        let record = record(storage, *kid).await;
        assert_eq!(
            (record.state, record.parent),
            (JobState::Awaiting, Some(parent))
        );
    }
    assert_eq!(record(storage, parent).await.children, kids);
    assert_eq!(
        ids(&fetch(storage, 10).await),
        vec![parent],
        "awaiting jobs are not fetched"
    );
    complete(
        storage,
        parent,
        SERVER,
        at(2),
        succeeded(Some(serde_json::json!("hello"))),
    )
    .await;
    for kid in &kids {
        assert_eq!(state(storage, *kid).await, JobState::Enqueued);
    }
    let fetched = fetch_from(storage, SERVER, &["default"], 10, at(3)).await;
    assert_eq!(ids(&fetched), kids);
    assert_eq!(fetched[0].parent, Some(parent));
    assert_eq!(fetched[0].parent_result, Some(serde_json::json!("hello")));
}

/// A deleted parent deletes its continuations, down the chain.
pub async fn continuation_delete_cascades(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parent = enqueue(storage, vec![job("parent", "default")]).await[0];
    let first = enqueue(storage, vec![child("first", parent, ContinueOn::Succeeded)]).await[0];
    let second = enqueue(storage, vec![child("second", first, ContinueOn::Succeeded)]).await[0];
    storage
        .delete(parent, "deleted by a user", at(1))
        .await
        .expect("delete");
    for kid in [first, second] {
        let record = record(storage, kid).await;
        assert_eq!(record.state, JobState::Deleted);
        let reason = last_reason(&record).unwrap_or_default();
        assert!(
            reason.starts_with("continuation condition not met"),
            "reason: {reason}"
        );
    }
}

/// A continuation of a job that does not exist is refused.
pub async fn continuation_missing_parent_is_an_error(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let missing = JobId(987_654_321);
    let result = storage
        .enqueue(vec![child("orphan", missing, ContinueOn::Succeeded)], t0())
        .await;
    assert!(
        matches!(result, Err(Error::ParentNotFound(id)) if id == missing),
        "{result:?}"
    );
    assert_eq!(
        storage
            .counts()
            .await
            .expect("counts")
            .by_state
            .values()
            .sum::<u64>(),
        0,
        "nothing was created"
    );
}

/// A continuation of a parent that already finished moves on at once.
pub async fn continuation_of_finished_parent_moves_at_once(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parents = enqueue(
        storage,
        vec![job("done", "default"), job("gone", "default")],
    )
    .await;
    fetch(storage, 1).await;
    complete(
        storage,
        parents[0],
        SERVER,
        at(2),
        succeeded(Some(serde_json::json!(7))),
    )
    .await;
    storage
        .delete(parents[1], "x", at(2))
        .await
        .expect("delete");
    let kids = enqueue(
        storage,
        vec![
            child("after-done", parents[0], ContinueOn::Succeeded),
            child("after-gone", parents[1], ContinueOn::Succeeded),
        ],
    )
    .await;
    assert_eq!(state(storage, kids[0]).await, JobState::Enqueued);
    assert_eq!(state(storage, kids[1]).await, JobState::Deleted);
    let fetched = fetch_from(storage, SERVER, &["default"], 1, at(3)).await;
    assert_eq!(fetched[0].parent_result, Some(serde_json::json!(7)));
}

/// `ContinueOn` decides which parent outcome releases a child (see its table).
pub async fn continuation_conditions(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parent = enqueue(storage, vec![job("parent", "default")]).await[0];
    let kids = enqueue(
        storage,
        vec![
            child("on-success", parent, ContinueOn::Succeeded),
            child("on-any", parent, ContinueOn::AnyFinished),
            child("on-failure", parent, ContinueOn::Failed),
        ],
    )
    .await;
    fetch(storage, 1).await;
    complete(
        storage,
        parent,
        SERVER,
        at(2),
        Outcome::Retry {
            run_at: at(30),
            reason: "Retry attempt 1 of 1: boom".into(),
            data: error_data(),
        },
    )
    .await;
    for kid in &kids {
        assert_eq!(
            state(storage, *kid).await,
            JobState::Awaiting,
            "a retry is not a finish"
        );
    }
    storage
        .promote_scheduled(at(30), 10)
        .await
        .expect("promote");
    fetch_from(storage, SERVER, &["default"], 1, at(31)).await;
    complete(
        storage,
        parent,
        SERVER,
        at(32),
        Outcome::Failed {
            reason: "exceeded".into(),
            data: error_data(),
        },
    )
    .await;
    assert_eq!(
        state(storage, kids[0]).await,
        JobState::Awaiting,
        "a failed parent may still be requeued"
    );
    assert_eq!(state(storage, kids[1]).await, JobState::Enqueued);
    assert_eq!(state(storage, kids[2]).await, JobState::Enqueued);
    // Requeued and then succeeding, the parent releases the child that waited for success.
    assert!(storage
        .requeue(parent, "requeued by a user", at(40))
        .await
        .expect("requeue"));
    assert_eq!(state(storage, kids[0]).await, JobState::Awaiting);
    let queue = fetch_from(storage, SERVER, &["default"], 10, at(41)).await;
    assert!(ids(&queue).contains(&parent));
    complete(storage, parent, SERVER, at(42), succeeded(None)).await;
    assert_eq!(state(storage, kids[0]).await, JobState::Enqueued);
    // A child waiting for failure of a parent that succeeds is deleted.
    let other = enqueue(storage, vec![job("other", "default")]).await[0];
    let only_failure = enqueue(
        storage,
        vec![child("only-failure", other, ContinueOn::Failed)],
    )
    .await[0];
    fetch_from(storage, SERVER, &["default"], 10, at(43)).await;
    complete(storage, other, SERVER, at(44), succeeded(None)).await;
    assert_eq!(state(storage, only_failure).await, JobState::Deleted);
}

/// A continuation added at the moment its parent is decided ends as if it had been added just
/// before or just after: never left Awaiting under a parent that is final. Each chain is a
/// running job `P`, its continuation `C`, and a grandchild `G` added to `C` while `P` succeeds
/// or is deleted (both at once, from two tasks): when `C` is deleted, `G` must be deleted too;
/// when `C` is enqueued, `G` waits for it. Kinds of chains: `C` waits for `P`'s failure (deleted
/// when `P` succeeds), `C` waits for success and `P` is deleted (deleted down the chain), `C`
/// waits for success and `P` succeeds (`C` enqueued, `G` Awaiting).
pub async fn continuations_added_while_parents_finish(storage: Arc<dyn Storage>) {
    const CHAINS: usize = 60;
    const ROUNDS: usize = 4;
    for round in 0..ROUNDS {
        // Each round's parents in a queue of their own: earlier rounds left children Enqueued.
        let queue = format!("race-{round}");
        let parents = enqueue(
            storage.as_ref(),
            (0..CHAINS).map(|_| job("p", &queue)).collect(),
        )
        .await;
        let now = at(10 * round as i64 + 1);
        let fetched = fetch_from(storage.as_ref(), SERVER, &[&queue], CHAINS, now).await;
        assert_eq!(fetched.len(), CHAINS, "every parent is running");
        let kinds: Vec<(ContinueOn, bool)> = (0..CHAINS)
            .map(|i| match i % 3 {
                0 => (ContinueOn::Failed, false),
                1 => (ContinueOn::Succeeded, true),
                _ => (ContinueOn::Succeeded, false),
            })
            .collect();
        let children = enqueue(
            storage.as_ref(),
            parents
                .iter()
                .zip(&kinds)
                .map(|(parent, (on, _))| child("c", *parent, *on))
                .collect(),
        )
        .await;
        let start = Arc::new(tokio::sync::Barrier::new(2 * CHAINS));
        let mut tasks = Vec::new();
        for i in 0..CHAINS {
            let (parent, kid, delete) = (parents[i], children[i], kinds[i].1);
            let (adder, finisher) = (storage.clone(), storage.clone());
            let (adder_start, finisher_start) = (start.clone(), start.clone());
            let add = tokio::spawn(async move {
                adder_start.wait().await;
                adder
                    .enqueue(vec![child("g", kid, ContinueOn::Succeeded)], now)
                    .await
                    .expect("enqueue a grandchild")[0]
                    .id
            });
            let finish = tokio::spawn(async move {
                finisher_start.wait().await;
                if delete {
                    finisher
                        .delete(parent, "deleted by a user", now)
                        .await
                        .expect("delete");
                } else {
                    complete(finisher.as_ref(), parent, SERVER, now, succeeded(None)).await;
                }
            });
            tasks.push((add, finish));
        }
        let mut grandchildren = Vec::new();
        for (add, finish) in tasks {
            grandchildren.push(add.await.expect("adder task"));
            finish.await.expect("finisher task");
        }
        let mut stuck = Vec::new();
        for i in 0..CHAINS {
            let kid = state(storage.as_ref(), children[i]).await;
            let grandchild = state(storage.as_ref(), grandchildren[i]).await;
            let expected_kid = match kinds[i] {
                (ContinueOn::Succeeded, false) => JobState::Enqueued,
                _ => JobState::Deleted,
            };
            assert_eq!(kid, expected_kid, "chain {i} of round {round}");
            let expected = match kid {
                JobState::Deleted => JobState::Deleted,
                _ => JobState::Awaiting,
            };
            if grandchild != expected {
                stuck.push((i, kid, grandchild));
            }
        }
        assert!(
            stuck.is_empty(),
            "round {round}: grandchildren in the wrong state (chain, child, grandchild): {stuck:?}"
        );
    }
}

/// Requeuing a deleted parent re-arms the continuations its deletion deleted.
pub async fn requeued_parent_rearms_deleted_children(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parent = enqueue(storage, vec![job("parent", "default")]).await[0];
    let first = enqueue(storage, vec![child("first", parent, ContinueOn::Succeeded)]).await[0];
    let second = enqueue(storage, vec![child("second", first, ContinueOn::Succeeded)]).await[0];
    let user_deleted = enqueue(
        storage,
        vec![child("user-deleted", parent, ContinueOn::Succeeded)],
    )
    .await[0];
    storage
        .delete(user_deleted, "deleted by a user", at(1))
        .await
        .expect("delete");
    storage
        .delete(parent, "deleted by a user", at(2))
        .await
        .expect("delete");
    assert_eq!(state(storage, second).await, JobState::Deleted);
    storage
        .requeue(parent, "requeued by a user", at(3))
        .await
        .expect("requeue");
    assert_eq!(state(storage, first).await, JobState::Awaiting);
    assert_eq!(state(storage, second).await, JobState::Awaiting);
    assert_eq!(
        state(storage, user_deleted).await,
        JobState::Deleted,
        "a user's delete stands"
    );
}

/// The reasons a decided continuation's history records are [`ContinuationReason`]'s, on
/// every storage (PostgreSQL writes them in SQL): released, not met (down a chain too), and
/// re-armed by a requeued parent.
pub async fn continuation_reasons_are_the_same_everywhere(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parent = enqueue(storage, vec![job("parent", "default")]).await[0];
    let kids = enqueue(
        storage,
        vec![
            child("on-success", parent, ContinueOn::Succeeded),
            child("on-failure", parent, ContinueOn::Failed),
        ],
    )
    .await;
    let grandchild = enqueue(
        storage,
        vec![child("after", kids[1], ContinueOn::Succeeded)],
    )
    .await[0];
    fetch(storage, 1).await;
    complete(storage, parent, SERVER, at(2), succeeded(None)).await;
    assert_eq!(
        last_reason(&record(storage, kids[0]).await),
        Some(ContinuationReason::released(parent, JobState::Succeeded))
    );
    assert_eq!(
        last_reason(&record(storage, kids[1]).await),
        Some(ContinuationReason::not_met(parent, JobState::Succeeded))
    );
    assert_eq!(
        last_reason(&record(storage, grandchild).await),
        Some(ContinuationReason::not_met(kids[1], JobState::Deleted))
    );
    assert!(storage
        .requeue(parent, "requeued by a user", at(3))
        .await
        .expect("requeue"));
    assert_eq!(
        last_reason(&record(storage, kids[1]).await),
        Some(ContinuationReason::rearmed(parent))
    );
    assert_eq!(
        last_reason(&record(storage, grandchild).await),
        Some(ContinuationReason::rearmed(kids[1]))
    );
}
