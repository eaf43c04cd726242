//! Read coalescing for the Redis Cluster backend: the hash-field reads (`HMGET`) of all the
//! queries that arrive together are merged into one `HMGET` per key, so that the cluster
//! client and Redis handle a few large commands instead of many small ones (a single-sketch
//! query reads about 24 keys in two rounds; 48 concurrent queries mostly read the same
//! partitions' hashes).
//!
//! A background task owns the queue. It starts a round as soon as a read arrives and fewer
//! than [`ROUNDS_IN_FLIGHT`] rounds are running; reads that arrive while the rounds are busy
//! wait and go together in the next one. A lone query is therefore sent at once, and batching
//! grows only with load. A failed command fails every read of its round (each caller gets
//! `Err`, never a partial answer).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::{StreamExt, TryStreamExt, stream};
use redis::cluster_async::ClusterConnection;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::store::StoreError;

/// Rounds of merged reads running at once.
const ROUNDS_IN_FLIGHT: usize = 2;
/// Most callers merged into one round (bounds a round's size and its latency).
const MAX_CALLERS_PER_ROUND: usize = 256;
/// Fields per `HMGET` command.
const FIELDS_PER_COMMAND: usize = 1000;
/// Commands of one round in flight at once.
const CONCURRENT_COMMANDS: usize = 256;

/// `HMGET key fields...`: one read of a caller.
pub struct HashRead {
    pub key: String,
    pub fields: Vec<Vec<u8>>,
}

/// The values of each read's fields, in order; `None` where a field is absent.
pub type HashValues = Vec<Vec<Option<Vec<u8>>>>;

struct Caller {
    reads: Vec<HashRead>,
    reply: oneshot::Sender<Result<HashValues, StoreError>>,
}

/// The handle that queries read through; the queue's task ends when it is dropped.
pub struct ReadCoalescer {
    queue: mpsc::UnboundedSender<Caller>,
}

fn current(connection: &RwLock<ClusterConnection>) -> ClusterConnection {
    match connection.read() {
        Ok(connection) => connection.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

impl ReadCoalescer {
    /// Starts the queue's task; reads go through whatever connection `connection` holds at the
    /// start of their round (the store's watchdog replaces it after a failover).
    pub fn start(connection: Arc<RwLock<ClusterConnection>>) -> ReadCoalescer {
        let (queue, mut arrivals) = mpsc::unbounded_channel::<Caller>();
        tokio::spawn(async move {
            let rounds = Arc::new(Semaphore::new(ROUNDS_IN_FLIGHT));
            while let Some(first) = arrivals.recv().await {
                let Ok(round_slot) = rounds.clone().acquire_owned().await else { return };
                let mut callers = vec![first];
                while callers.len() < MAX_CALLERS_PER_ROUND
                    && let Ok(next) = arrivals.try_recv()
                {
                    callers.push(next);
                }
                let connection = current(&connection);
                tokio::spawn(async move {
                    run_round(connection, callers).await;
                    drop(round_slot);
                });
            }
        });
        ReadCoalescer { queue }
    }

    /// Reads every `HMGET` of `reads`, merged with the reads of concurrent callers.
    pub async fn read(&self, reads: Vec<HashRead>) -> Result<HashValues, StoreError> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.queue.send(Caller { reads, reply }).map_err(|_| StoreError::Unavailable("the Redis read queue has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("the Redis read queue dropped a read".into()))?
    }
}

/// One key's merged fields: each distinct field once (borrowed from the callers' reads), with
/// its index, and how many caller positions still want each field's value (the last one takes
/// the value instead of copying it).
#[derive(Default)]
struct MergedKey<'a> {
    fields: Vec<&'a [u8]>,
    index: HashMap<&'a [u8], usize>,
    wanted: Vec<u32>,
}

async fn run_round(connection: ClusterConnection, callers: Vec<Caller>) {
    let mut merged: HashMap<&str, MergedKey<'_>> = HashMap::new();
    for caller in &callers {
        for read in &caller.reads {
            let key = merged.entry(read.key.as_str()).or_default();
            for field in &read.fields {
                let next = key.fields.len();
                let index = *key.index.entry(field.as_slice()).or_insert(next);
                if index == next {
                    key.fields.push(field.as_slice());
                    key.wanted.push(0);
                }
                key.wanted[index] += 1;
            }
        }
    }
    // (key, index of the command's first field among the key's fields, values)
    type Fetched<'a> = (&'a str, usize, Vec<Option<Vec<u8>>>);
    // Commands by index (key, first field, field count): the stream's closure then borrows
    // nothing but the merged table it captures.
    let keyed: Vec<(&str, &MergedKey<'_>)> = merged.iter().map(|(key, fields)| (*key, fields)).collect();
    let mut commands: Vec<(usize, usize, usize)> = Vec::new();
    for (number, (_, fields)) in keyed.iter().enumerate() {
        for offset in (0..fields.fields.len()).step_by(FIELDS_PER_COMMAND) {
            commands.push((number, offset, FIELDS_PER_COMMAND.min(fields.fields.len() - offset)));
        }
    }
    let keyed = &keyed;
    let fetched: Result<Vec<Fetched<'_>>, StoreError> = stream::iter(commands)
    .map(|(number, offset, count)| {
        let mut connection = connection.clone();
        async move {
            let (key, merged_key) = keyed[number];
            let fields = &merged_key.fields[offset..offset + count];
            let values: Vec<Option<Vec<u8>>> =
                redis::cmd("HMGET").arg(key).arg(fields).query_async(&mut connection).await.map_err(|error| StoreError::Unavailable(format!("redis: {error}")))?;
            if values.len() != fields.len() {
                return Err(StoreError::Corrupt(format!("HMGET of {} fields answered {} values", fields.len(), values.len())));
            }
            Ok((key, offset, values))
        }
    })
    .buffer_unordered(CONCURRENT_COMMANDS)
    .try_collect()
    .await;
    let fetched = match fetched {
        Ok(fetched) => fetched,
        Err(error) => {
            for caller in callers {
                let shared = match &error {
                    StoreError::Corrupt(message) => StoreError::Corrupt(message.clone()),
                    StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
                    other => StoreError::Unavailable(other.to_string()),
                };
                let _ = caller.reply.send(Err(shared));
            }
            return;
        }
    };
    let mut values_by_key: HashMap<&str, Vec<Option<Vec<u8>>>> = HashMap::with_capacity(merged.len());
    for (key, offset, values) in fetched {
        let length = merged.get(key).map_or(0, |fields| fields.fields.len());
        let all = values_by_key.entry(key).or_insert_with(|| std::iter::repeat_with(|| None).take(length).collect());
        for (position, value) in values.into_iter().enumerate() {
            if let Some(slot) = all.get_mut(offset + position) {
                *slot = value;
            }
        }
    }
    let mut answers: Vec<HashValues> = Vec::with_capacity(callers.len());
    for caller in &callers {
        let answer: HashValues = caller
            .reads
            .iter()
            .map(|read| {
                let (Some(key), Some(values)) = (merged.get_mut(read.key.as_str()), values_by_key.get_mut(read.key.as_str())) else {
                    return vec![None; read.fields.len()];
                };
                read.fields
                    .iter()
                    .map(|field| {
                        let index = *key.index.get(field.as_slice())?;
                        key.wanted[index] -= 1;
                        let slot = values.get_mut(index)?;
                        if key.wanted[index] == 0 { slot.take() } else { slot.clone() }
                    })
                    .collect()
            })
            .collect();
        answers.push(answer);
    }
    drop(merged);
    for (caller, answer) in callers.into_iter().zip(answers) {
        let _ = caller.reply.send(Ok(answer));
    }
}
