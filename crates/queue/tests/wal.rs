//! Behaviour of `WalQueue` through its public API and its files: round trips across segment
//! rolls, reopen after checkpoints, torn tails, corruption in the middle of the log, a
//! corrupt checkpoint file, backpressure, group commit under concurrency, and a child
//! process killed with SIGKILL in the middle of appending.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use heartbeat_queue::{Position, QueueError, Record, WalConfig, WalQueue};
use proptest::prelude::*;

const FRAME_HEADER_BYTES: u64 = 8;

fn config(dir: &Path, segment_bytes: u64) -> WalConfig {
    WalConfig {
        segment_bytes,
        ..WalConfig::new(dir)
    }
}

/// A payload that says which record it is, `len` bytes long (at least 1).
fn payload(seed: u64, len: usize) -> Vec<u8> {
    (0..len.max(1))
        .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect()
}

/// Everything readable from `from` on, without waiting.
async fn read_all(queue: &WalQueue, from: Position) -> Vec<Record> {
    let mut records: Vec<Record> = Vec::new();
    let mut position = from;
    loop {
        let batch = queue
            .read_records(position, 37, Duration::ZERO)
            .await
            .unwrap();
        let Some(last) = batch.last() else {
            return records;
        };
        position = last.next;
        records.extend(batch);
    }
}

/// Appends every payload, one after the other, and returns the records as they should
/// read back.
async fn append_all(queue: &WalQueue, payloads: Vec<Vec<u8>>) -> Vec<Record> {
    let mut records = Vec::new();
    for payload in payloads {
        let position = queue.append_record(payload.clone()).await.unwrap();
        records.push(Record {
            position,
            next: position + FRAME_HEADER_BYTES + payload.len() as u64,
            payload,
        });
    }
    records
}

/// Segment files in the directory, oldest first, with their base positions.
fn segment_files(dir: &Path) -> Vec<(Position, PathBuf)> {
    let mut segments: Vec<(Position, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let base = name.strip_suffix(".wal")?.parse().ok()?;
            Some((base, path))
        })
        .collect();
    segments.sort();
    segments
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn payloads(sizes: &[usize]) -> Vec<Vec<u8>> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| payload(i as u64, len))
        .collect()
}

#[tokio::test]
async fn records_round_trip_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let queue = WalQueue::open(config(dir.path(), 1024)).unwrap();
    let sizes: Vec<usize> = (0..500).map(|i| 1 + (i * 37) % 200).collect();
    let expected = append_all(&queue, payloads(&sizes)).await;

    assert_eq!(read_all(&queue, 0).await, expected);
    for pair in expected.windows(2) {
        assert_eq!(pair[0].next, pair[1].position, "no gaps without damage");
    }
    let segments = segment_files(dir.path());
    assert!(segments.len() > 20, "only {} segments", segments.len());
    for (base, path) in &segments {
        let len = fs::metadata(path).unwrap().len();
        assert!(len <= 1024, "segment {base} holds {len} bytes");
    }
    assert_eq!(queue.durable_end(), expected.last().unwrap().next);
    assert_eq!(queue.pending_bytes(), queue.durable_end());
}

#[tokio::test]
async fn read_honours_max_records_and_resumes_at_next() {
    let dir = tempfile::tempdir().unwrap();
    let queue = WalQueue::open(config(dir.path(), 300)).unwrap();
    let expected = append_all(&queue, payloads(&[50; 20])).await;

    let first = queue.read_records(0, 3, Duration::ZERO).await.unwrap();
    assert_eq!(first, expected[..3]);
    let rest = read_all(&queue, first[2].next).await;
    assert_eq!(rest, expected[3..]);
    assert!(queue
        .read_records(0, 0, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_read_stops_once_it_holds_max_read_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // Segments of two records, so a read crosses segment edges.
    let queue = WalQueue::open(WalConfig {
        max_read_bytes: 250,
        ..config(dir.path(), 300)
    })
    .unwrap();
    let expected = append_all(&queue, payloads(&[100; 9])).await;

    // 100 + 100 < 250, the third record reaches it: three records, whatever the count asked.
    let first = queue.read_records(0, 100, Duration::ZERO).await.unwrap();
    assert_eq!(first, expected[..3]);
    // A record larger than the bound is still read, alone.
    let big = append_all(&queue, payloads(&[400, 10])).await;
    let rest = read_all(&queue, first[2].next).await;
    assert_eq!(rest.len(), 8);
    let alone = queue
        .read_records(big[0].position, 100, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(alone, big[..1]);
    // Every read of the rest holds at most three records.
    let mut position = first[2].next;
    loop {
        let read = queue
            .read_records(position, 100, Duration::ZERO)
            .await
            .unwrap();
        let Some(last) = read.last() else { break };
        assert!(read.len() <= 3, "{} records in one read", read.len());
        position = last.next;
    }
}

#[tokio::test]
async fn reopen_reads_back_everything_after_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let sizes: Vec<usize> = (0..300).map(|i| 1 + (i * 13) % 90).collect();
    let expected = {
        let queue = WalQueue::open(config(dir.path(), 2048)).unwrap();
        let expected = append_all(&queue, payloads(&sizes)).await;
        queue.checkpoint(expected[100].next).await.unwrap();
        expected
    };

    let queue = WalQueue::open(config(dir.path(), 2048)).unwrap();
    assert_eq!(queue.checkpointed(), expected[100].next);
    assert_eq!(
        read_all(&queue, queue.checkpointed()).await,
        expected[101..]
    );
    let report = queue.recovery_report();
    assert_eq!(report.records_found, 199);
    assert_eq!(report.truncated_bytes(), 0);
    assert!(!report.checkpoint_corrupt);
    assert_eq!(
        queue.pending_bytes(),
        expected.last().unwrap().next - expected[100].next
    );

    let position = queue.append_record(b"after reopen".to_vec()).await.unwrap();
    assert_eq!(position, expected.last().unwrap().next);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn reopen_after_random_appends_and_checkpoints_reads_the_same(
        sizes in prop::collection::vec(1usize..400, 1..80),
        checkpoint_at in prop::option::of(any::<prop::sample::Index>()),
        segment_bytes in 64u64..2048,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let (expected, checkpoint) = {
                let queue = WalQueue::open(config(dir.path(), segment_bytes)).unwrap();
                let expected = append_all(&queue, payloads(&sizes)).await;
                let checkpoint = match checkpoint_at {
                    Some(index) => {
                        let upto = expected[index.index(expected.len())].next;
                        queue.checkpoint(upto).await.unwrap();
                        upto
                    }
                    None => 0,
                };
                prop_assert_eq!(read_all(&queue, checkpoint).await, expected.iter().filter(|r| r.position >= checkpoint).cloned().collect::<Vec<_>>());
                (expected, checkpoint)
            };

            let queue = WalQueue::open(config(dir.path(), segment_bytes)).unwrap();
            prop_assert_eq!(queue.checkpointed(), checkpoint);
            let after: Vec<Record> = expected.iter().filter(|r| r.position >= checkpoint).cloned().collect();
            prop_assert_eq!(read_all(&queue, checkpoint).await, after);
            prop_assert_eq!(queue.recovery_report().truncated_bytes(), 0);
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_torn_tail_is_cut_at_every_offset_and_appends_carry_on() {
    let pristine = tempfile::tempdir().unwrap();
    let sizes = [
        30, 1, 7, 64, 12, 3, 40, 90, 5, 22, 17, 2, 33, 9, 61, 4, 26, 11,
    ];
    let expected = {
        let queue = WalQueue::open(config(pristine.path(), 400)).unwrap();
        append_all(&queue, payloads(&sizes)).await
    };
    let segments = segment_files(pristine.path());
    assert!(segments.len() >= 2, "the cut must hit a later segment");
    let (last_base, last_path) = segments.last().unwrap();
    let last_len = fs::metadata(last_path).unwrap().len();
    let end = last_base + last_len;
    assert_eq!(end, expected.last().unwrap().next);

    for cut in 0..=last_len {
        let work = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), work.path());
        let file = fs::OpenOptions::new()
            .write(true)
            .open(work.path().join(last_path.file_name().unwrap()))
            .unwrap();
        file.set_len(cut).unwrap();
        drop(file);

        let cut_at = last_base + cut;
        let survivors: Vec<Record> = expected
            .iter()
            .filter(|r| r.next <= cut_at)
            .cloned()
            .collect();
        let valid_end = survivors.last().map_or(0, |r| r.next);

        let queue = WalQueue::open(config(work.path(), 400)).unwrap();
        assert_eq!(
            queue.recovery_report().torn_tail_bytes,
            cut_at - valid_end,
            "cut at {cut}"
        );
        assert_eq!(queue.recovery_report().corrupt_bytes, 0, "cut at {cut}");
        assert_eq!(read_all(&queue, 0).await, survivors, "cut at {cut}");

        let position = queue
            .append_record(b"after the tear".to_vec())
            .await
            .unwrap();
        assert_eq!(position, valid_end, "cut at {cut}");
        let read = queue
            .read_records(position, 10, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(read.len(), 1, "cut at {cut}");
        assert_eq!(read[0].payload, b"after the tear");
    }
}

/// Damages the bytes of a segment at the frame starting at the given offset.
type Damage = fn(&mut Vec<u8>, usize);

#[tokio::test]
async fn corruption_in_a_middle_segment_keeps_what_is_before_and_later_segments() {
    let pristine = tempfile::tempdir().unwrap();
    let expected = {
        let queue = WalQueue::open(config(pristine.path(), 512)).unwrap();
        append_all(&queue, payloads(&[50; 40])).await
    };
    let segments = segment_files(pristine.path());
    assert!(segments.len() >= 4, "{} segments", segments.len());
    let (damaged_base, damaged_path) = &segments[1];
    let damaged_end = segments[2].0;
    let in_damaged: Vec<&Record> = expected
        .iter()
        .filter(|r| r.position >= *damaged_base && r.position < damaged_end)
        .collect();
    let victim = in_damaged[2].clone();
    let offset = (victim.position - damaged_base) as usize;

    // A flipped payload byte (checksum mismatch) and a wild length field.
    let damages: [(&str, Damage); 2] = [
        ("payload byte", |bytes, at| bytes[at + 8 + 10] ^= 0x40),
        ("length field", |bytes, at| {
            bytes[at..at + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes())
        }),
    ];
    for (what, damage) in damages {
        let work = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), work.path());
        let path = work.path().join(damaged_path.file_name().unwrap());
        let mut bytes = fs::read(&path).unwrap();
        let damaged_len = bytes.len() as u64;
        damage(&mut bytes, offset);
        fs::write(&path, &bytes).unwrap();

        let queue = WalQueue::open(config(work.path(), 512)).unwrap();
        let report = queue.recovery_report();
        assert_eq!(report.corrupt_bytes, damaged_len - offset as u64, "{what}");
        assert_eq!(report.torn_tail_bytes, 0, "{what}");

        let survivors: Vec<Record> = expected
            .iter()
            .filter(|r| r.position < victim.position || r.position >= damaged_end)
            .cloned()
            .collect();
        assert_eq!(read_all(&queue, 0).await, survivors, "{what}");
        // Reading from the lost record steps over the gap to the next segment.
        let resumed = queue
            .read_records(victim.position, 1, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(resumed[0].position, damaged_end, "{what}");

        // The damage is repaired on disk: a second open finds nothing to cut.
        drop(queue);
        let queue = WalQueue::open(config(work.path(), 512)).unwrap();
        assert_eq!(queue.recovery_report().truncated_bytes(), 0, "{what}");
        assert_eq!(read_all(&queue, 0).await, survivors, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_syncs_and_all_read_back() {
    const TASKS: u64 = 64;
    const ROUNDS: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let wal = WalQueue::open(config(dir.path(), 16 << 10)).unwrap();
    let queue = Arc::new(wal.clone());
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS as usize));

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let queue = Arc::clone(&queue);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let mut positions = Vec::new();
            for round in 0..ROUNDS {
                barrier.wait().await;
                let seed = task * ROUNDS + round;
                let payload = payload(seed, 1 + (seed as usize % 120));
                positions.push((queue.append_record(payload).await.unwrap(), seed));
            }
            positions
        }));
    }
    let mut seed_at: HashMap<Position, u64> = HashMap::new();
    for task in tasks {
        for (position, seed) in task.await.unwrap() {
            assert!(
                seed_at.insert(position, seed).is_none(),
                "position {position} given twice"
            );
        }
    }
    let appends = TASKS * ROUNDS;
    assert_eq!(seed_at.len() as u64, appends);

    let records = read_all(queue.as_ref(), 0).await;
    assert_eq!(records.len() as u64, appends);
    for record in &records {
        let seed = seed_at[&record.position];
        assert_eq!(record.payload, payload(seed, 1 + (seed as usize % 120)));
    }
    let syncs = wal.syncs();
    println!("{appends} appends took {syncs} syncs");
    assert!(
        syncs * 4 <= appends,
        "{syncs} syncs for {appends} appends: no group commit"
    );
}

#[tokio::test]
async fn a_full_queue_refuses_appends_until_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let queue = WalQueue::open(WalConfig {
        max_pending_bytes: 1000,
        ..config(dir.path(), 4096)
    })
    .unwrap();
    // Frames of 108 bytes: the tenth append sees 972 pending bytes and goes through.
    let mut last = None;
    for _ in 0..10 {
        let position = queue.append_record(vec![1; 100]).await.unwrap();
        last = Some(position + 108);
    }
    let end = queue.durable_end();
    match queue.append_record(vec![2; 100]).await {
        Err(QueueError::Full {
            pending: 1080,
            limit: 1000,
            unit: "bytes",
        }) => {}
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(queue.durable_end(), end, "a refused append writes nothing");

    queue.checkpoint(last.unwrap()).await.unwrap();
    assert_eq!(queue.pending_bytes(), 0);
    assert_eq!(queue.append_record(vec![3; 100]).await.unwrap(), end);
}

#[tokio::test]
async fn bad_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let queue = WalQueue::open(WalConfig {
        max_record_bytes: 64,
        ..WalConfig::new(dir.path())
    })
    .unwrap();
    assert!(matches!(
        queue.append_record(vec![0; 65]).await,
        Err(QueueError::RecordTooLarge { len: 65, limit: 64 })
    ));
    assert!(matches!(
        queue.append_record(Vec::new()).await,
        Err(QueueError::EmptyRecord)
    ));
    assert_eq!(queue.append_record(vec![0; 64]).await.unwrap(), 0);
    assert_eq!(queue.durable_end(), 72);
}

#[tokio::test]
async fn checkpoint_deletes_old_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let queue = WalQueue::open(config(dir.path(), 512)).unwrap();
        let expected = append_all(&queue, payloads(&[40; 60])).await;
        let before = segment_files(dir.path());
        assert!(before.len() >= 5);

        let upto = expected[30].next;
        queue.checkpoint(upto).await.unwrap();
        let kept: Vec<Position> = before
            .iter()
            .enumerate()
            .filter(|(i, _)| before.get(i + 1).is_none_or(|(next, _)| *next > upto))
            .map(|(_, (base, _))| *base)
            .collect();
        let after: Vec<Position> = segment_files(dir.path()).iter().map(|(b, _)| *b).collect();
        assert_eq!(after, kept);
        assert!(after.len() < before.len());
        assert!(after[0] <= upto);

        // A position below the first remaining segment reads from that segment.
        let from_zero = queue.read_records(0, 1, Duration::ZERO).await.unwrap();
        assert_eq!(from_zero[0].position, after[0]);
        // Checkpoints never move back.
        queue.checkpoint(expected[3].next).await.unwrap();
        assert_eq!(queue.checkpointed(), upto);
        expected
    };

    let queue = WalQueue::open(config(dir.path(), 512)).unwrap();
    assert_eq!(queue.checkpointed(), expected[30].next);
    assert_eq!(read_all(&queue, queue.checkpointed()).await, expected[31..]);

    // Checkpointing everything keeps only the active segment.
    queue.checkpoint(queue.durable_end()).await.unwrap();
    let left = segment_files(dir.path());
    assert_eq!(left.len(), 1);
    assert_eq!(queue.pending_bytes(), 0);
    assert!(read_all(&queue, queue.checkpointed()).await.is_empty());
    drop(queue);
    let queue = WalQueue::open(config(dir.path(), 512)).unwrap();
    assert_eq!(queue.checkpointed(), expected.last().unwrap().next);
    assert_eq!(
        queue.append_record(vec![9]).await.unwrap(),
        expected.last().unwrap().next
    );
}

#[tokio::test]
async fn a_corrupt_checkpoint_file_is_detected_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let queue = WalQueue::open(config(dir.path(), 512)).unwrap();
        let expected = append_all(&queue, payloads(&[40; 60])).await;
        queue.checkpoint(expected[30].next).await.unwrap();
        expected
    };
    let first_base = segment_files(dir.path())[0].0;
    assert!(first_base > 0);
    let checkpoint_path = dir.path().join("checkpoint");
    let mut bytes = fs::read(&checkpoint_path).unwrap();
    bytes[6] ^= 0x01;
    fs::write(&checkpoint_path, &bytes).unwrap();

    let queue = WalQueue::open(config(dir.path(), 512)).unwrap();
    assert!(queue.recovery_report().checkpoint_corrupt);
    assert_eq!(queue.checkpointed(), first_base);
    let again: Vec<Record> = expected
        .iter()
        .filter(|r| r.position >= first_base)
        .cloned()
        .collect();
    assert_eq!(read_all(&queue, queue.checkpointed()).await, again);
    drop(queue);

    let queue = WalQueue::open(config(dir.path(), 512)).unwrap();
    assert!(!queue.recovery_report().checkpoint_corrupt);
    assert_eq!(queue.checkpointed(), first_base);
}

#[tokio::test]
async fn a_waiting_read_wakes_up_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let queue = WalQueue::open(WalConfig::new(dir.path())).unwrap();
    assert!(queue
        .read_records(0, 10, Duration::from_millis(20))
        .await
        .unwrap()
        .is_empty());

    let reader = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.read_records(0, 10, Duration::from_secs(60)).await })
    };
    let position = queue.append_record(b"wake up".to_vec()).await.unwrap();
    let records = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the reader was not woken")
        .unwrap()
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].position, position);
    assert_eq!(records[0].payload, b"wake up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_finishes_queued_appends_and_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let queue = WalQueue::open(WalConfig::new(dir.path())).unwrap();
    let appends: Vec<_> = (0..32u64)
        .map(|seed| {
            let queue = queue.clone();
            tokio::spawn(async move { (seed, queue.append_record(payload(seed, 20)).await) })
        })
        .collect();
    {
        let queue = queue.clone();
        tokio::task::spawn_blocking(move || queue.close())
            .await
            .unwrap();
    }
    assert!(matches!(
        queue.append_record(vec![1]).await,
        Err(QueueError::Closed)
    ));

    let mut acknowledged = HashMap::new();
    for append in appends {
        match append.await.unwrap() {
            (seed, Ok(position)) => {
                acknowledged.insert(position, seed);
            }
            (_, Err(QueueError::Closed)) => {}
            (_, Err(err)) => panic!("unexpected error {err}"),
        }
    }
    // Reads keep working after close, and so does a reopen.
    assert_eq!(read_all(&queue, 0).await.len(), acknowledged.len());
    drop(queue);
    let queue = WalQueue::open(WalConfig::new(dir.path())).unwrap();
    let records = read_all(&queue, 0).await;
    assert_eq!(records.len(), acknowledged.len());
    for record in records {
        assert_eq!(record.payload, payload(acknowledged[&record.position], 20));
    }
}

const CRASH_DIR_VAR: &str = "HEARTBEAT_WAL_CRASH_DIR";

/// Appends forever from several tasks and prints `ack <position> <seed>` for every
/// acknowledged append; `kill_9_mid_write_loses_no_acknowledged_append` runs it as a child
/// process and kills it. Does nothing when run on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of kill_9_mid_write_loses_no_acknowledged_append"]
async fn crash_child_appends_until_killed() {
    let Ok(dir) = std::env::var(CRASH_DIR_VAR) else {
        return;
    };
    let queue = WalQueue::open(config(Path::new(&dir), 16 << 10)).unwrap();
    let tasks: Vec<_> = (0..8u64)
        .map(|task| {
            let queue = queue.clone();
            tokio::spawn(async move {
                for i in 0u64.. {
                    let seed = (task << 32) | i;
                    let position = queue
                        .append_record(payload(seed, 1 + (i as usize % 300)))
                        .await;
                    println!("ack {} {seed}", position.unwrap());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[test]
fn kill_9_mid_write_loses_no_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_appends_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CRASH_DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut acknowledged: HashMap<Position, u64> = HashMap::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(ack) = line.strip_prefix("ack ") {
            let (position, seed) = ack.split_once(' ').unwrap();
            acknowledged.insert(position.parse().unwrap(), seed.parse().unwrap());
            if acknowledged.len() == 2000 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(acknowledged.len(), 2000, "the child stopped early");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let queue = WalQueue::open(config(dir.path(), 16 << 10)).unwrap();
        assert_eq!(queue.recovery_report().corrupt_bytes, 0);
        let records = read_all(&queue, 0).await;
        let found: HashSet<Position> = records.iter().map(|r| r.position).collect();
        for position in acknowledged.keys() {
            assert!(found.contains(position), "acknowledged {position} is lost");
        }
        for record in &records {
            if let Some(&seed) = acknowledged.get(&record.position) {
                let i = seed & 0xffff_ffff;
                assert_eq!(record.payload, payload(seed, 1 + (i as usize % 300)));
            }
        }
        queue
            .append_record(b"after the crash".to_vec())
            .await
            .unwrap();
    });
}
