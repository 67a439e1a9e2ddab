//! Servers: job leases (keep-alive and rescue), leadership and the server registry.

use std::collections::HashSet;
use std::sync::Arc;

use crate::job::JobState;
use crate::storage::*;

use super::{
    at, complete, enqueue, fetch, fetch_from, ids, job, last_reason, queues, record, state,
    succeeded, t0, OTHER, SERVER,
};

/// A job whose lease lapsed (its server died) goes back to its queue, once.
pub async fn lapsed_lease_is_rescued(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(storage, vec![job("a", "default"), job("b", "default")]).await;
    let queue = queues(&["default"]);
    storage
        .fetch(FetchRequest {
            server_id: SERVER,
            queues: &queue,
            limit: 1,
            capacity: 1,
            now: at(0),
            lease_until: at(10),
            flow: false,
            gated: false,
        })
        .await
        .expect("fetch");
    assert_eq!(storage.rescue_expired(at(5), 10).await.expect("rescue"), 0);
    assert!(storage
        .keep_alive(SERVER, &[created[0]], at(20))
        .await
        .expect("keep alive")
        .is_empty());
    assert_eq!(
        storage.rescue_expired(at(15), 10).await.expect("rescue"),
        0,
        "a renewed lease holds"
    );
    assert_eq!(storage.rescue_expired(at(21), 10).await.expect("rescue"), 1);
    assert_eq!(storage.rescue_expired(at(22), 10).await.expect("rescue"), 0);
    let record = record(storage, created[0]).await;
    assert_eq!(record.state, JobState::Enqueued);
    assert_eq!(
        last_reason(&record),
        Some(MaintenanceReason::rescued(SERVER))
    );
    // It is taken again, ahead of the job behind it; the dead server's completion is ignored.
    let taken = fetch_from(storage, OTHER, &["default"], 1, at(23)).await;
    assert_eq!(ids(&taken), vec![created[0]]);
    complete(storage, created[0], SERVER, at(24), succeeded(None)).await;
    assert_eq!(state(storage, created[0]).await, JobState::Processing);
    complete(storage, created[0], OTHER, at(24), succeeded(None)).await;
    assert_eq!(state(storage, created[0]).await, JobState::Succeeded);
}

/// keep_alive tells a server which of its jobs it no longer holds.
pub async fn keep_alive_reports_lost_jobs(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(
        storage,
        vec![
            job("a", "default"),
            job("b", "default"),
            job("c", "default"),
        ],
    )
    .await;
    fetch(storage, 3).await;
    storage
        .delete(created[1], "deleted by a user", at(2))
        .await
        .expect("delete");
    storage
        .requeue(created[2], "requeued by a user", at(2))
        .await
        .expect("requeue");
    let lost = storage
        .keep_alive(SERVER, &created, at(100))
        .await
        .expect("keep alive");
    assert_eq!(
        lost.into_iter().collect::<HashSet<_>>(),
        HashSet::from([created[1], created[2]])
    );
    assert_eq!(
        storage
            .keep_alive(OTHER, &created[..1], at(100))
            .await
            .expect("keep alive"),
        vec![created[0]]
    );
}

/// One leader at a time; it can renew; another takes over when it lapses or resigns.
pub async fn leadership_is_exclusive(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    assert!(storage.try_lead(SERVER, at(0), at(10)).await.expect("lead"));
    assert!(!storage.try_lead(OTHER, at(1), at(11)).await.expect("lead"));
    assert!(storage
        .try_lead(SERVER, at(5), at(15))
        .await
        .expect("renew"));
    assert!(!storage.try_lead(OTHER, at(14), at(24)).await.expect("lead"));
    assert!(storage
        .try_lead(OTHER, at(16), at(26))
        .await
        .expect("take over"));
    assert!(!storage
        .try_lead(SERVER, at(17), at(27))
        .await
        .expect("lead"));
    storage.resign(OTHER).await.expect("resign");
    assert!(storage
        .try_lead(SERVER, at(18), at(28))
        .await
        .expect("lead after resign"));
}

/// Servers register, beat, and are removed when dead.
pub async fn server_registry(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let info = |id: &str| ServerInfo {
        id: id.to_owned(),
        queues: queues(&["critical", "default"]),
        workers: 4,
        started_at: t0(),
    };
    storage
        .register_server(&info(SERVER), at(0))
        .await
        .expect("register");
    storage
        .register_server(&info(OTHER), at(0))
        .await
        .expect("register");
    storage.heartbeat(SERVER, at(50)).await.expect("heartbeat");
    let servers = storage.servers().await.expect("servers");
    assert_eq!(servers.len(), 2);
    let a = servers
        .iter()
        .find(|s| s.info.id == SERVER)
        .expect("server a listed");
    assert_eq!(
        (a.heartbeat_at, a.info.workers, a.info.queues.clone()),
        (at(50), 4, queues(&["critical", "default"]))
    );
    assert_eq!(
        storage
            .remove_dead_servers(at(10))
            .await
            .expect("remove dead"),
        1
    );
    assert_eq!(storage.servers().await.expect("servers").len(), 1);
    storage.unregister_server(SERVER).await.expect("unregister");
    assert!(storage.servers().await.expect("servers").is_empty());
}
