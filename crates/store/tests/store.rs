//! The store on real redb files: batches are atomic, ranges are bounded, and a process killed
//! with SIGKILL loses no committed write.

use std::io::{BufRead, BufReader};

use enigma_store::{ContractInfo, Store};
use enigma_types::{CodeHash, ContractAddress, DeltaHash, TaskId};

#[test]
fn batches_commit_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db.redb")).unwrap();
    let c = ContractAddress([1; 32]);
    let t = TaskId([2; 32]);
    {
        let mut b = store.batch().unwrap();
        b.put_delta(&c, 0, b"d0").unwrap();
        b.put_result(&t, b"r").unwrap();
        // Dropped without commit: nothing of it is visible.
    }
    assert_eq!(store.delta(&c, 0).unwrap(), None);
    assert_eq!(store.result(&t).unwrap(), None);
    let mut b = store.batch().unwrap();
    b.put_delta(&c, 0, b"d0").unwrap();
    b.put_result(&t, b"r").unwrap();
    b.put_pending_receipt(&c, &t, b"receipt").unwrap();
    let info =
        ContractInfo { code_hash: CodeHash([3; 32]), next_index: 1, tip: DeltaHash([4; 32]) };
    b.put_contract(&c, &info).unwrap();
    b.put_code(&CodeHash([3; 32]), b"\0asm").unwrap();
    b.put_snapshot(&c, 1, b"snap").unwrap();
    b.put_sealed("worker-identity", b"sealed").unwrap();
    b.put_meta("chain-cursor", &5u64.to_be_bytes()).unwrap();
    b.commit().unwrap();
    assert_eq!(store.delta(&c, 0).unwrap().unwrap(), b"d0");
    assert_eq!(store.contract(&c).unwrap(), Some(info));
    assert_eq!(store.contracts().unwrap(), vec![(c, info)]);
    assert_eq!(store.code(&CodeHash([3; 32])).unwrap().unwrap(), b"\0asm");
    assert_eq!(store.snapshot(&c).unwrap(), Some((1, b"snap".to_vec())));
    assert_eq!(store.pending_receipts().unwrap(), vec![(c, t, b"receipt".to_vec())]);
    assert_eq!(store.sealed("worker-identity").unwrap().unwrap(), b"sealed");
    let mut b = store.batch().unwrap();
    b.remove_pending_receipt(&c, &t).unwrap();
    b.commit().unwrap();
    assert_eq!(store.pending_count().unwrap(), 0);
}

#[test]
fn delta_ranges_respect_bounds_and_byte_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db.redb")).unwrap();
    let (a, b) = (ContractAddress([1; 32]), ContractAddress([2; 32]));
    let mut w = store.batch().unwrap();
    for i in 0..10u64 {
        w.put_delta(&a, i, &[i as u8; 100]).unwrap();
        w.put_delta(&b, i, b"other").unwrap();
    }
    w.commit().unwrap();
    let got = store.deltas(&a, 2, 7, usize::MAX).unwrap();
    assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![2, 3, 4, 5, 6]);
    assert!(got.iter().all(|(i, d)| d == &vec![*i as u8; 100]));
    assert_eq!(store.deltas(&a, 0, 10, 250).unwrap().len(), 2, "stops at the byte limit");
    assert_eq!(store.deltas(&a, 0, 10, 1).unwrap().len(), 1, "but always returns one");
    assert!(store.deltas(&a, 10, 20, usize::MAX).unwrap().is_empty());
}

#[test]
fn reopening_finds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let c = ContractAddress([9; 32]);
    {
        let store = Store::open(&path).unwrap();
        let mut b = store.batch().unwrap();
        b.put_delta(&c, 0, b"persisted").unwrap();
        b.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.delta(&c, 0).unwrap().unwrap(), b"persisted");
}

#[test]
fn a_process_killed_with_sigkill_loses_no_committed_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_enigma-store-crash-writer"))
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = 0u64;
    for _ in 0..40 {
        last = lines.next().unwrap().unwrap().parse().unwrap();
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush
    child.wait().unwrap();
    let store = Store::open(&path).unwrap();
    let c = ContractAddress([7; 32]);
    for i in 0..=last {
        assert_eq!(
            store.delta(&c, i).unwrap().as_deref(),
            Some(&vec![(i % 251) as u8; 4096][..]),
            "delta {i} committed before the kill"
        );
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&i.to_be_bytes());
        assert!(store.result(&TaskId(id)).unwrap().is_some());
    }
    let pending = store.pending_count().unwrap();
    assert!(pending > last, "every committed batch's receipt is there: {pending} > {last}");
    // Whatever was in flight at the kill is either wholly there or wholly absent.
    let extra = pending - (last + 1);
    assert!(extra <= 1);
    if extra == 1 {
        assert!(store.delta(&c, last + 1).unwrap().is_some());
    }
}

#[test]
fn truncating_drops_only_the_contracts_later_deltas_and_pending_counts_per_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db.redb")).unwrap();
    let (a, b) = (ContractAddress([1; 32]), ContractAddress([2; 32]));
    let mut w = store.batch().unwrap();
    for i in 0..6u64 {
        w.put_delta(&a, i, b"a").unwrap();
        w.put_delta(&b, i, b"b").unwrap();
    }
    w.put_snapshot(&a, 4, b"snap").unwrap();
    w.put_pending_receipt(&a, &TaskId([1; 32]), b"r1").unwrap();
    w.put_pending_receipt(&a, &TaskId([2; 32]), b"r2").unwrap();
    w.put_pending_receipt(&b, &TaskId([3; 32]), b"r3").unwrap();
    w.commit().unwrap();
    assert_eq!(store.pending_for(&a).unwrap(), 2);
    assert_eq!(store.pending_for(&b).unwrap(), 1);
    assert_eq!(store.pending_for(&ContractAddress([9; 32])).unwrap(), 0);
    // Found by contract and task, by task alone, and per contract.
    assert!(store.has_pending_receipt(&a, &TaskId([2; 32])).unwrap());
    assert!(!store.has_pending_receipt(&b, &TaskId([2; 32])).unwrap(), "another contract's");
    assert_eq!(store.pending_receipt_contract(&TaskId([3; 32])).unwrap(), Some(b));
    assert_eq!(store.pending_receipt_contract(&TaskId([4; 32])).unwrap(), None);
    assert!(store.any_pending_for(&b).unwrap());
    assert!(!store.any_pending_for(&ContractAddress([9; 32])).unwrap());
    let mut w = store.batch().unwrap();
    w.truncate_deltas(&a, 3).unwrap();
    w.remove_snapshot(&a).unwrap();
    w.commit().unwrap();
    let left: Vec<u64> =
        store.deltas(&a, 0, 100, usize::MAX).unwrap().iter().map(|d| d.0).collect();
    assert_eq!(left, vec![0, 1, 2]);
    assert_eq!(
        store.deltas(&b, 0, 100, usize::MAX).unwrap().len(),
        6,
        "other contracts keep theirs"
    );
    assert_eq!(store.snapshot(&a).unwrap(), None);
}
