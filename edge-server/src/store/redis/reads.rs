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
//!
//! A round's commands go to each master as one pipeline: the masters that serve the keys' hash
//! slots are known from `CLUSTER SLOTS`, read at the start and again whenever a pipeline fails.
//! Sent one by one, each command cost the edge its own trip through the cluster client (routing,
//! a channel to the connection's task, a reply channel, a timeout), which was most of a query's
//! CPU. A pipeline that fails in any way (a moved slot after a failover, a dropped connection)
//! is sent again command by command, which follows redirections as before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use futures::{StreamExt, TryStreamExt, stream};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use redis::{FromRedisValue, Value};
use rustc_hash::FxHashMap;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::store::StoreError;

/// Rounds of merged reads running at once.
const ROUNDS_IN_FLIGHT: usize = 2;
/// Most callers merged into one round (bounds a round's size and its latency).
const MAX_CALLERS_PER_ROUND: usize = 256;
/// Fields per `HMGET` command.
const FIELDS_PER_COMMAND: usize = 1000;
/// Commands of one round in flight at once, when they are sent one by one.
const CONCURRENT_COMMANDS: usize = 256;
/// Hash slots of a Redis Cluster.
const SLOTS: usize = 16_384;
/// How long after a failed reading of `CLUSTER SLOTS` the next may start.
const TOPOLOGY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The slot of a key, as Redis Cluster computes it: CRC16 (XMODEM) of the key's hash tag (the
/// part between the first `{` and the next `}`, when not empty) or of the whole key.
pub fn key_slot(key: &[u8]) -> u16 {
    let tag = key
        .iter()
        .position(|&byte| byte == b'{')
        .and_then(|open| {
            let length = key[open + 1..].iter().position(|&byte| byte == b'}')?;
            (length > 0).then(|| &key[open + 1..open + 1 + length])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &byte in tag {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % SLOTS as u16
}

/// Which master serves each hash slot (an index per distinct master), from `CLUSTER SLOTS`.
pub struct SlotOwners {
    owner: Vec<u16>,
}

/// No master known for a slot.
const NO_OWNER: u16 = u16::MAX;

impl SlotOwners {
    /// Parses a `CLUSTER SLOTS` reply: entries of start slot, end slot, then the master's host,
    /// port and id, then its replicas.
    pub fn from_cluster_slots(reply: Value) -> Option<SlotOwners> {
        let Value::Array(ranges) = reply else { return None };
        let mut owner = vec![NO_OWNER; SLOTS];
        let mut masters: Vec<Vec<u8>> = Vec::new();
        for range in ranges {
            let Value::Array(parts) = range else { return None };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(master))) = (parts.first(), parts.get(1), parts.get(2)) else { return None };
            let (Some(host), Some(Value::Int(port))) = (master.first(), master.get(1)) else { return None };
            let host = match host {
                Value::BulkString(bytes) => bytes.clone(),
                Value::SimpleString(text) => text.clone().into_bytes(),
                _ => return None,
            };
            let mut name = host;
            name.extend_from_slice(format!(":{port}").as_bytes());
            let index = match masters.iter().position(|known| *known == name) {
                Some(index) => index,
                None => {
                    masters.push(name);
                    masters.len() - 1
                }
            };
            let (start, end) = (usize::try_from(*start).ok()?, usize::try_from(*end).ok()?);
            if start > end || end >= SLOTS {
                return None;
            }
            owner[start..=end].fill(index as u16);
        }
        Some(SlotOwners { owner })
    }

    /// The master (an index among the reply's distinct masters) serving `slot`.
    pub fn of(&self, slot: u16) -> Option<u16> {
        self.owner.get(usize::from(slot)).copied().filter(|&owner| owner != NO_OWNER)
    }
}

/// The slot owners the rounds use, and whether a reading of them is under way.
#[derive(Default)]
struct Topology {
    owners: RwLock<Option<Arc<SlotOwners>>>,
    refreshing: AtomicBool,
}

impl Topology {
    fn current(&self) -> Option<Arc<SlotOwners>> {
        match self.owners.read() {
            Ok(owners) => owners.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads `CLUSTER SLOTS` again in the background, unless a reading is under way (or one
    /// failed less than [`TOPOLOGY_RETRY`] ago); until it answers, rounds send their commands
    /// one by one, and each asks for it again.
    fn refresh(self: &Arc<Self>, mut connection: ClusterConnection) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Ok(mut owners) = self.owners.write() {
            *owners = None;
        }
        let topology = self.clone();
        tokio::spawn(async move {
            let reply: Result<Value, _> = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut connection).await;
            match reply.ok().and_then(SlotOwners::from_cluster_slots) {
                Some(owners) => {
                    if let Ok(mut slot) = topology.owners.write() {
                        *slot = Some(Arc::new(owners));
                    }
                }
                None => {
                    tracing::debug!("CLUSTER SLOTS gave no usable answer; reads go command by command");
                    tokio::time::sleep(TOPOLOGY_RETRY).await;
                }
            }
            topology.refreshing.store(false, Ordering::Release);
        });
    }
}

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
        let topology = Arc::new(Topology::default());
        topology.refresh(current(&connection));
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
                let topology = topology.clone();
                tokio::spawn(async move {
                    run_round(connection, &topology, callers).await;
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
    index: FxHashMap<&'a [u8], usize>,
    wanted: Vec<u32>,
}

/// One `HMGET`: (index of its key among the round's keys, first field, field count).
type Command = (usize, usize, usize);
/// (key, index of the command's first field among the key's fields, values)
type Fetched<'a> = (&'a str, usize, Vec<Option<Vec<u8>>>);

/// `commands` as one pipeline to the master serving `slot`; `None` when it failed in any way
/// (the caller then sends them one by one).
async fn pipelined<'a>(mut connection: ClusterConnection, keyed: &[(&'a str, &MergedKey<'_>)], slot: u16, commands: &[Command]) -> Option<Vec<Fetched<'a>>> {
    let mut pipeline = redis::pipe();
    for &(number, offset, count) in commands {
        let (key, merged_key) = keyed[number];
        pipeline.cmd("HMGET").arg(key).arg(&merged_key.fields[offset..offset + count]);
    }
    let route = SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
    let replies = connection.route_pipeline(pipeline, 0, commands.len(), route).await.ok()?;
    if replies.len() != commands.len() {
        return None;
    }
    let mut fetched = Vec::with_capacity(commands.len());
    for (&(number, offset, count), reply) in commands.iter().zip(replies) {
        let values = Vec::<Option<Vec<u8>>>::from_redis_value(reply).ok()?;
        if values.len() != count {
            return None;
        }
        fetched.push((keyed[number].0, offset, values));
    }
    Some(fetched)
}

/// `commands` sent one by one, each routed (and redirected) by the cluster client.
async fn one_by_one<'a>(connection: ClusterConnection, keyed: &[(&'a str, &MergedKey<'_>)], commands: Vec<Command>) -> Result<Vec<Fetched<'a>>, StoreError> {
    stream::iter(commands)
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
        .await
}

async fn run_round(connection: ClusterConnection, topology: &Arc<Topology>, callers: Vec<Caller>) {
    let mut merged: FxHashMap<&str, MergedKey<'_>> = FxHashMap::default();
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
    // Commands by index (key, first field, field count): the streams' closures then borrow
    // nothing but the merged table they capture.
    let keyed: Vec<(&str, &MergedKey<'_>)> = merged.iter().map(|(key, fields)| (*key, fields)).collect();
    let mut commands: Vec<Command> = Vec::new();
    for (number, (_, fields)) in keyed.iter().enumerate() {
        for offset in (0..fields.fields.len()).step_by(FIELDS_PER_COMMAND) {
            commands.push((number, offset, FIELDS_PER_COMMAND.min(fields.fields.len() - offset)));
        }
    }
    let keyed = &keyed;
    let fetched: Result<Vec<Fetched<'_>>, StoreError> = match topology.current() {
        Some(owners) => {
            // One pipeline per master, all at once; each led by its first command's slot.
            let mut by_master: FxHashMap<u16, (u16, Vec<Command>)> = FxHashMap::default();
            let mut unowned: Vec<Command> = Vec::new();
            for command in commands {
                let slot = key_slot(keyed[command.0].0.as_bytes());
                match owners.of(slot) {
                    Some(master) => by_master.entry(master).or_insert_with(|| (slot, Vec::new())).1.push(command),
                    None => unowned.push(command),
                }
            }
            let mut groups: Vec<(Option<u16>, Vec<Command>)> = by_master.into_values().map(|(slot, commands)| (Some(slot), commands)).collect();
            if !unowned.is_empty() {
                groups.push((None, unowned));
            }
            stream::iter(groups)
                .map(|(slot, commands)| {
                    let connection = connection.clone();
                    async move {
                        if let Some(slot) = slot {
                            match pipelined(connection.clone(), keyed, slot, &commands).await {
                                Some(fetched) => return Ok(fetched),
                                None => topology.refresh(connection.clone()),
                            }
                        }
                        one_by_one(connection, keyed, commands).await
                    }
                })
                .buffer_unordered(CONCURRENT_COMMANDS)
                .try_collect::<Vec<Vec<Fetched<'_>>>>()
                .await
                .map(|groups| groups.into_iter().flatten().collect())
        }
        None => {
            // Not known yet, or the last reading failed (a master down): asked for again, so
            // that the pipelines resume once the cluster answers.
            topology.refresh(connection.clone());
            one_by_one(connection, keyed, commands).await
        }
    };
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
    let mut values_by_key: FxHashMap<&str, Vec<Option<Vec<u8>>>> = FxHashMap::with_capacity_and_hasher(merged.len(), Default::default());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_cluster_specification() {
        // The specification's CRC16 check value, and its hash tag rules.
        assert_eq!(key_slot(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"), "an empty tag hashes the whole key");
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn cluster_slots_replies_give_each_slot_its_master() {
        let node = |host: &str, port: i64| Value::Array(vec![Value::BulkString(host.as_bytes().to_vec()), Value::Int(port), Value::BulkString(b"id".to_vec())]);
        let range = |start: i64, end: i64, master: Value, replica: Value| Value::Array(vec![Value::Int(start), Value::Int(end), master, replica]);
        let reply = Value::Array(vec![
            range(0, 5460, node("127.0.0.1", 7000), node("127.0.0.1", 7003)),
            range(5461, 10922, node("127.0.0.1", 7001), node("127.0.0.1", 7004)),
            range(10923, 16383, node("127.0.0.1", 7000), node("127.0.0.1", 7005)),
        ]);
        let owners = SlotOwners::from_cluster_slots(reply).expect("parses");
        assert_eq!(owners.of(0), owners.of(16_383), "one master serving two ranges is one master");
        assert_ne!(owners.of(0), owners.of(5461));
        let partial = Value::Array(vec![range(0, 100, node("h", 1), node("h", 2))]);
        assert_eq!(SlotOwners::from_cluster_slots(partial).expect("parses").of(101), None, "a slot nobody serves has no master");
        assert!(SlotOwners::from_cluster_slots(Value::Array(vec![range(5, 16_384, node("h", 1), node("h", 2))])).is_none());
        assert!(SlotOwners::from_cluster_slots(Value::Nil).is_none());
    }
}
