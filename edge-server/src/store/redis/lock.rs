//! A repository's write lock on the Redis Cluster: a `SET NX PX` key holding a random token,
//! so that two edge replicas never interleave batches of one repository.
//!
//! The lease is short (a few seconds) and renewed while the batch runs, so a lock whose holder
//! died, or whose release did not get through (its master failing over), stalls the
//! repository's next writer for one lease at most, not for the length of the longest batch.
//! A batch whose lease could not be renewed in time has lost the lock; it is not acknowledged
//! (`still_held` before the batch id is recorded), and its retry converges.
//!
//! Renewal and release are plain `EVAL`s routed by the lock key to its master: `EVALSHA`
//! would need the script in the cache of a freshly promoted master, and loading it goes to
//! every node, which fails while one of them is down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::cluster_async::ClusterConnection;
use tokio::sync::watch;

use crate::store::StoreError;

/// How long a lock lives without renewal.
pub const LEASE: Duration = Duration::from_millis(5000);
/// How often a held lock is renewed: several renewals fit in one lease, so one slow or
/// failed renewal does not lose it.
const RENEW_EVERY: Duration = Duration::from_millis(1000);
/// How long a batch waits for another writer of the same repository to finish.
const WAIT_FOR_OTHER_WRITER: Duration = Duration::from_secs(10);
/// How long one renewal or release attempt may take: a command to a dead master waits for the
/// full response timeout, and the lock is usually reachable through a new connection (after
/// the watchdog re-read the topology) well before that.
const ATTEMPT: Duration = Duration::from_millis(1000);

const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

/// The cluster connection the store currently uses (replaced by its watchdog).
pub type SharedConnection = Arc<RwLock<ClusterConnection>>;

fn current(connection: &SharedConnection) -> ClusterConnection {
    match connection.read() {
        Ok(connection) => connection.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// A held lock; renewed in the background until [`RepoLock::release`].
pub struct RepoLock {
    connection: SharedConnection,
    key: String,
    token: String,
    lost: Arc<AtomicBool>,
    stop_renewing: watch::Sender<bool>,
    released: bool,
}

fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {error}"))
}

impl RepoLock {
    /// Takes the lock at `key`, waiting (bounded) while another writer holds it.
    pub async fn acquire(connection: &SharedConnection, key: &str) -> Result<RepoLock, StoreError> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|error| StoreError::Unavailable(format!("random lock token: {error}")))?;
        let token: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        let deadline = Instant::now() + WAIT_FOR_OTHER_WRITER;
        loop {
            let set = redis::cmd("SET").arg(key).arg(&token).arg("NX").arg("PX").arg(LEASE.as_millis() as u64).query_async::<Option<String>>(&mut current(connection)).await;
            match set {
                Ok(Some(_)) => return Ok(RepoLock::renewing(connection.clone(), key.to_string(), token)),
                Ok(None) => {}
                Err(error) => {
                    // The master may have taken the lock and lost only the reply (it died or
                    // failed over): release it rather than leave it for its lease.
                    release_in_background(connection.clone(), key.to_string(), token);
                    return Err(unavailable(error));
                }
            }
            if Instant::now() > deadline {
                return Err(StoreError::Unavailable("another writer held this repository's lock for too long".into()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn renewing(connection: SharedConnection, key: String, token: String) -> RepoLock {
        let lost = Arc::new(AtomicBool::new(false));
        let (stop_renewing, mut stopped) = watch::channel(false);
        let renewal = {
            let (connection, key, token, lost) = (connection.clone(), key.clone(), token.clone(), lost.clone());
            async move {
                let mut renewed_at = Instant::now();
                loop {
                    tokio::select! {
                        _ = stopped.changed() => return,
                        _ = tokio::time::sleep(RENEW_EVERY) => {}
                    }
                    let renew = redis::cmd("EVAL").arg(RENEW).arg(1).arg(&key).arg(&token).arg(LEASE.as_millis() as u64).to_owned();
                    let mut conn = current(&connection);
                    match tokio::time::timeout(ATTEMPT, renew.query_async::<i64>(&mut conn)).await {
                        Ok(Ok(1)) => renewed_at = Instant::now(),
                        Ok(Ok(_)) => {
                            // Expired and possibly taken by another writer.
                            lost.store(true, Ordering::Release);
                            return;
                        }
                        _ if renewed_at.elapsed() >= LEASE => {
                            lost.store(true, Ordering::Release);
                            return;
                        }
                        _ => {}
                    }
                }
            }
        };
        tokio::spawn(renewal);
        RepoLock { connection, key, token, lost, stop_renewing, released: false }
    }

    /// `Err` when the lease may have run out: another writer may have taken the repository,
    /// so this batch must not be acknowledged.
    pub fn still_held(&self) -> Result<(), StoreError> {
        if self.lost.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the repository's lock could not be renewed in time; the batch was not acknowledged".into()));
        }
        Ok(())
    }

    /// Stops renewing and deletes the lock if it is still ours; waits for the first attempt
    /// only briefly and goes on in the background while the lock's master is unreachable.
    pub async fn release(mut self) {
        self.released = true;
        let _ = self.stop_renewing.send(true);
        let releasing = release_in_background(self.connection.clone(), self.key.clone(), self.token.clone());
        if tokio::time::timeout(Duration::from_millis(500), releasing).await.is_err() {
            tracing::debug!("repository lock release continues in the background");
        }
    }
}

impl Drop for RepoLock {
    /// A batch abandoned mid-way (its request timed out, or its client went away) releases
    /// the lock too; dropping the sender also stops the renewal.
    fn drop(&mut self) {
        if !self.released && tokio::runtime::Handle::try_current().is_ok() {
            release_in_background(self.connection.clone(), self.key.clone(), self.token.clone());
        }
    }
}

/// Deletes the lock if it holds `token`, retrying until the lease would have run out anyway.
fn release_in_background(connection: SharedConnection, key: String, token: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let deadline = Instant::now() + LEASE;
        loop {
            // The current connection each time: after a failover the watchdog replaces it.
            let release = redis::cmd("EVAL").arg(RELEASE).arg(1).arg(&key).arg(&token).to_owned();
            let mut conn = current(&connection);
            if matches!(tokio::time::timeout(ATTEMPT, release.query_async::<i64>(&mut conn)).await, Ok(Ok(_))) || Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}
