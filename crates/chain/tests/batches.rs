//! Record batches against real anvil (`EnigmaBatches` behind Enigma's fallback): tasks recorded
//! as one root, receipts and refunds that prove each task, and every guarantee of per-task
//! records kept — escrow and settlement to the grain, the contract's order, no double commit, no
//! refund of a committed task — against receipts a hostile submitter forges.

use crate::common::*;
use crate::lifecycle::{LIMIT, PX, Scenario, USER, h, scenario};
use alloy::providers::Provider;
use enigma_chain::{bindings::EnigmaBatches, *};
use enigma_crypto::Signature;
use enigma_types::{ContractAddress, DeltaHash, InputsHash, OutputHash, messages::batch_digest};

/// Records `values.len()` tasks on `contract` as one batch (task i escrows `values[i]`).
async fn record_batch(
    s: &Scenario,
    contract: ContractAddress,
    label: &str,
    values: &[u128],
) -> RecordBatch {
    let tasks: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (contract, InputsHash(h(&format!("{label} {i}"))), LIMIT, *v))
        .collect();
    let nonce = s.user.task_nonce(s.net.address(USER)).await.unwrap();
    let (batch, _) =
        s.user.create_task_batch(&tasks, PX, s.epoch.first_block, nonce).await.unwrap();
    batch
}

/// What the enclave reports for a task: success with a delta, success without, or failure.
fn outcome(t: &ProvenTask, status: u8, with_delta: bool, gas_used: u64) -> BatchItemTx {
    let delta = if with_delta {
        DeltaHash(h(&format!("delta of {}", t.task.task_id)))
    } else {
        DeltaHash::ZERO
    };
    BatchItemTx {
        task_id: t.task.task_id,
        delta_hash: delta,
        output_hash: OutputHash(h(&format!("output of {}", t.task.task_id))),
        gas_used,
        status,
        payouts: Vec::new(),
    }
}

/// Worker `w`'s batch signature over `items` on `contract`, built on the chain's current tip.
async fn sign(
    s: &Scenario,
    w: usize,
    contract: ContractAddress,
    items: &[(ProvenTask, BatchItemTx)],
) -> Signature {
    let sc = s.net.deployer.secret_contract(&contract).await.unwrap().unwrap();
    let entries = batch_entries(items);
    s.net.workers[w].enclave.sign_digest(&batch_digest(
        &contract,
        &sc.code_hash,
        sc.delta_count,
        &sc.last_delta_hash,
        &entries,
    ))
}

/// Commits `items` on the scenario's contract as its selected worker.
async fn commit(s: &Scenario, items: &[(ProvenTask, BatchItemTx)]) -> Result<Mined> {
    let w = s.selected();
    let signature = sign(s, w, s.contract, items).await;
    s.net.workers[w].chain.commit_batch_receipts(s.contract, items, &signature).await
}

#[tokio::test]
async fn batch_recorded_tasks_settle_to_the_grain_in_order_and_close_once() {
    let s = scenario().await;
    let w = s.selected();
    let user = s.net.address(USER);
    let before = s.prepaid().await;
    let count_before =
        s.net.deployer.secret_contract(&s.contract).await.unwrap().unwrap().task_count;

    let nonce = s.user.task_nonce(user).await.unwrap();
    let batch = record_batch(&s, s.contract, "five", &[0, 0, 1_000, 0, 0]).await;
    assert_eq!(batch.tasks.len(), 5);
    assert_eq!(
        s.prepaid().await,
        before - 5 * u128::from(LIMIT * PX) - 1_000,
        "fees and the value are escrowed when recorded"
    );
    let seqs: Vec<u64> = batch.tasks.iter().map(|t| t.seq).collect();
    assert_eq!(seqs, (count_before..count_before + 5).collect::<Vec<_>>(), "the contract's order");
    for (t, nonce) in batch.tasks.iter().zip(nonce..) {
        assert_eq!(t.task_id, enigma_types::task_id(&user, nonce), "ids from the sender's nonces");
    }
    assert_eq!(s.user.task_nonce(user).await.unwrap(), nonce + 5);
    let info = s.net.deployer.record_batch(batch.root()).await.unwrap().unwrap();
    assert_eq!((info.sender, info.count, info.epoch), (user, 5, s.epoch.nonce));
    assert!((0..5).all(|i| info.is_open(i)) && !info.is_open(5));

    // Tasks 0 (a delta), 1 (failed) and 2 (a delta; its value joins the contract) in one receipt.
    let items: Vec<_> = [(0, 1, true, 400), (1, 0, false, 300), (2, 1, true, 500)]
        .iter()
        .map(|&(i, status, delta, used)| {
            let t = batch.proven(i).unwrap();
            let o = outcome(&t, status, delta, used);
            (t, o)
        })
        .collect();
    let (deltas, tip) = s.base().await;
    let stake = s.stake(w).await;
    let paid = s.prepaid().await;
    commit(&s, &items).await.unwrap();
    let sc = s.net.deployer.secret_contract(&s.contract).await.unwrap().unwrap();
    assert_eq!(sc.delta_count, deltas + 2);
    assert_eq!(sc.last_delta_hash, items[2].1.delta_hash);
    assert_ne!(sc.last_delta_hash, tip);
    assert_eq!(sc.balance, 1_000, "the successful task's value joins the contract");
    assert_eq!(sc.next_receipt_seq, batch.tasks[2].seq + 1);
    assert_eq!(s.stake(w).await - stake, u128::from((400 + 300 + 500) * PX), "gasUsed · gasPx");
    assert_eq!(
        s.prepaid().await - paid,
        u128::from((3 * LIMIT - 400 - 300 - 500) * PX),
        "the sender gets back what its tasks did not use"
    );
    let info = s.net.deployer.record_batch(batch.root()).await.unwrap().unwrap();
    assert_eq!(
        (0..5).map(|i| info.is_open(i)).collect::<Vec<_>>(),
        [false, false, false, true, true]
    );

    // The same receipt again, freshly signed: the tasks are closed.
    assert_rejected(commit(&s, &items[..1]).await, "BatchTaskNotOpen");

    // Task 4 lands before task 3, which can then only be refunded.
    let fourth = batch.proven(4).unwrap();
    let o = outcome(&fourth, 1, false, 10);
    commit(&s, &[(fourth.clone(), o)]).await.unwrap();
    let third = batch.proven(3).unwrap();
    let o = outcome(&third, 1, false, 10);
    assert_rejected(commit(&s, &[(third.clone(), o)]).await, "ReceiptOutOfOrder");

    // Refunds: not before the timeout, then the whole fee once, never of a committed task.
    assert_rejected(s.user.return_batch_task_fee(&third).await, "TaskNotTimedOut");
    s.net.mine(TIMEOUT).await;
    let paid = s.prepaid().await;
    s.net.deployer.return_batch_task_fee(&third).await.unwrap();
    assert_eq!(s.prepaid().await - paid, u128::from(LIMIT * PX));
    assert_rejected(s.net.deployer.return_batch_task_fee(&third).await, "BatchTaskNotOpen");
    assert_rejected(s.net.deployer.return_batch_task_fee(&fourth).await, "BatchTaskNotOpen");
    let info = s.net.deployer.record_batch(batch.root()).await.unwrap().unwrap();
    assert!((0..5).all(|i| !info.is_open(i)));
}

#[tokio::test]
async fn forged_proofs_foreign_contracts_and_direct_calls_are_refused() {
    let s = scenario().await;
    let w = s.selected();
    // A per-task record first: batch tasks and per-task records share the contract's order.
    let (single, single_inputs) = s.record("single").await;
    let batch = record_batch(&s, s.contract, "three", &[0, 0, 0]).await;
    let good = batch.proven(1).unwrap();
    let o = outcome(&good, 1, false, 5);

    // A submitter who changes what the task was recorded with.
    let mut t = good.clone();
    t.task.gas_limit += 1;
    assert_rejected(commit(&s, &[(t, o.clone())]).await, "InvalidBatchProof");
    let mut t = good.clone();
    t.task.value = 1;
    assert_rejected(commit(&s, &[(t, o.clone())]).await, "InvalidBatchProof");
    let mut t = good.clone();
    t.task.seq += 5;
    assert_rejected(commit(&s, &[(t, o.clone())]).await, "InvalidBatchProof");
    let mut t = good.clone();
    t.index = 2;
    assert_rejected(commit(&s, &[(t, o.clone())]).await, "InvalidBatchProof");
    let mut t = good.clone();
    t.index = 3;
    assert_rejected(commit(&s, &[(t, o.clone())]).await, "BatchTaskNotOpen");
    let mut t = good.clone();
    t.root = h("no batch");
    assert_rejected(commit(&s, &[(t, o.clone())]).await, "UnknownRecordBatch");
    let mut t = good.clone();
    t.proof.pop();
    assert_rejected(commit(&s, &[(t, o.clone())]).await, "InvalidBatchProof");

    // The task under another contract: its leaf names the contract it was recorded for.
    let other = s.deploy_another("other").await;
    let group = s.net.deployer.worker_group(s.epoch.first_block, &other).await.unwrap();
    let v = s.net.worker_of(group[0]);
    let signature = sign(&s, v, other, &[(good.clone(), o.clone())]).await;
    assert_rejected(
        s.net.workers[v]
            .chain
            .commit_batch_receipts(other, &[(good.clone(), o.clone())], &signature)
            .await,
        "InvalidBatchProof",
    );

    // A worker not selected for the contract.
    let stranger = 1 - w;
    let signature = sign(&s, stranger, s.contract, &[(good.clone(), o.clone())]).await;
    assert_rejected(
        s.net.workers[stranger]
            .chain
            .commit_batch_receipts(s.contract, &[(good.clone(), o.clone())], &signature)
            .await,
        "WorkerNotSelected",
    );

    // The honest receipt lands, and the per-task record before it can no longer.
    commit(&s, &[(good, o)]).await.unwrap();
    let receipt = s.compute_receipt(
        w,
        single,
        single_inputs,
        s.base().await,
        DeltaHash::ZERO,
        5,
        (vec![], enigma_types::Address::ZERO),
    );
    assert_rejected(s.net.workers[w].chain.commit_receipt(&receipt).await, "ReceiptOutOfOrder");

    // The extension called at its own address runs on no one's storage: it refuses.
    let extension = convert::eth(s.net.deployment.enigma).create(1);
    assert!(!s.net.deployer.provider().get_code_at(extension).await.unwrap().is_empty());
    let direct = EnigmaBatches::new(extension, s.net.deployer.provider().clone());
    let refused = direct.getRecordBatch(convert::b256(batch.root())).call().await;
    assert!(
        format!("{refused:?}").contains("NotDelegated")
            || refused.as_ref().is_err_and(|e| {
                e.as_revert_data().is_some_and(|d| describe_revert(&d).contains("NotDelegated"))
            }),
        "{refused:?}"
    );
}

#[tokio::test]
async fn batch_tasks_are_found_through_their_batch_end_every_way_and_run_callbacks() {
    use alloy::{primitives::U256, sol_types::SolCall};
    use enigma_chain::bindings::VotingETH;
    let s = scenario().await;
    let w = s.selected();
    let voting = deploy_voting(s.net.deployer.provider(), s.net.deployment.enigma).await.unwrap();
    let v = VotingETH::new(convert::eth(voting), s.net.deployer.provider().clone());
    v.createPoll(U256::from(50), "fund the park".into())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let batch = record_batch(&s, s.contract, "endings", &[0, 0, 0, 0]).await;
    let ids: Vec<_> = batch.tasks.iter().map(|t| t.task_id).collect();

    // The recording handle knows the batch; another learns it from the chain's events.
    let record = s.user.task(&ids[0]).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Created);
    assert_eq!(
        (record.seq, record.inputs_hash, record.gas_limit),
        (batch.tasks[0].seq, batch.tasks[0].inputs_hash, LIMIT)
    );
    assert!(record.names(&s.contract));
    let other = s.net.chain(USER).await;
    assert_eq!(other.task(&ids[0]).await.unwrap(), None, "no record of its own");
    let head = other.block_number().await.unwrap();
    assert_eq!(other.load_batches(0, head).await.unwrap(), 1);
    assert_eq!(other.task(&ids[0]).await.unwrap(), Some(record));

    // Task 0 alone, with a callback that runs.
    let t0 = batch.proven(0).unwrap();
    let payload = VotingETH::finalizePollCall { pollId: U256::ZERO, talliedQuorum: U256::from(75) }
        .abi_encode();
    let delta = DeltaHash(h("tally delta"));
    let receipt = s.compute_receipt(
        w,
        ids[0],
        t0.task.inputs_hash,
        s.base().await,
        delta,
        50_000,
        (payload, voting),
    );
    s.net.workers[w].chain.commit_batch_receipt(&t0, &receipt).await.unwrap();
    assert_eq!(
        v.getPoll(U256::ZERO).call().await.unwrap().talliedQuorum,
        U256::from(75),
        "the callback ran"
    );
    assert_eq!(s.base().await.1, delta);

    // Task 1 alone, with a callback that reverts: ended, its delta not appended, fees settled.
    let t1 = batch.proven(1).unwrap();
    let payload = VotingETH::revertWithCall { reason: "no".into() }.abi_encode();
    let prepaid = s.prepaid().await;
    let receipt = s.compute_receipt(
        w,
        ids[1],
        t1.task.inputs_hash,
        s.base().await,
        DeltaHash(h("lost delta")),
        50_000,
        (payload, voting),
    );
    s.net.workers[w].chain.commit_batch_receipt(&t1, &receipt).await.unwrap();
    assert_eq!(s.base().await.1, delta, "the failed callback's delta is not appended");
    assert_eq!(s.prepaid().await, prepaid + u128::from((LIMIT - 50_000) * PX));
    // The same receipt again: the task is closed.
    assert_rejected(
        s.net.workers[w].chain.commit_batch_receipt(&t1, &receipt).await,
        "BatchTaskNotOpen",
    );

    // Task 2 fails (a receipt batch of one); task 3 times out and is refunded.
    let t2 = batch.proven(2).unwrap();
    let o = outcome(&t2, 0, false, 7);
    commit(&s, &[(t2, o)]).await.unwrap();
    s.net.mine(TIMEOUT).await;
    s.user.return_fees(ids[3]).await.unwrap();

    for chain in [&s.user, &other] {
        let mut statuses = Vec::new();
        for id in &ids {
            statuses.push(chain.task(id).await.unwrap().unwrap().status);
        }
        assert_eq!(
            statuses,
            [
                TaskStatus::Verified,
                TaskStatus::FailedEth,
                TaskStatus::Failed,
                TaskStatus::FailedReturn
            ]
        );
    }
}

/// `items` packed as `commitBatchReceipts` reads them.
fn pack(items: &[(ProvenTask, BatchItemTx)]) -> Vec<u8> {
    pack_batch_receipts(items).unwrap()
}

/// What `commitBatchReceipts` says to `packed` on the scenario's contract, called directly: the
/// packing is checked before the signature, so none is needed to see those checks.
async fn try_packed(s: &Scenario, packed: Vec<u8>) -> String {
    let batches = EnigmaBatches::new(
        convert::eth(s.net.deployment.enigma),
        s.net.deployer.provider().clone(),
    );
    let r = batches
        .commitBatchReceipts(convert::b256(s.contract), packed.into(), vec![0u8; 65].into())
        .call()
        .await;
    match r {
        Ok(_) => "accepted".into(),
        Err(e) => e.as_revert_data().map_or_else(|| format!("{e}"), |d| describe_revert(&d)),
    }
}

#[tokio::test]
async fn scattered_tasks_prove_together_bad_packing_is_refused_and_chunked_deltas_read_back() {
    let s = scenario().await;
    let batch = record_batch(&s, s.contract, "thirteen", &[0; 13]).await;
    let all = batch.all_proven();
    let pick = |indices: &[usize]| -> Vec<(ProvenTask, BatchItemTx)> {
        indices
            .iter()
            .map(|&i| {
                let t = all[i].clone();
                let o = outcome(&t, 1, true, 100);
                (t, o)
            })
            .collect()
    };
    let items = pick(&[0, 3, 4, 7, 8]);
    let good = pack(&items);
    // n (2), one run's head (41), five tasks of 168 bytes, then the multiproof's count.
    let siblings_at = 2 + 41 + 5 * 168;
    let siblings = usize::from(good[siblings_at]);
    assert!(siblings >= 2, "five of thirteen leaves need siblings");
    assert_eq!(good.len(), siblings_at + 1 + 32 * siblings);

    let mut bad = good.clone();
    bad.pop();
    assert!(try_packed(&s, bad).await.contains("MalformedReceiptBatch"), "truncated");
    let mut bad = good.clone();
    bad.push(0);
    assert!(try_packed(&s, bad).await.contains("MalformedReceiptBatch"), "a byte past the end");
    let mut bad = good.clone();
    bad[1] = 6;
    assert!(try_packed(&s, bad).await.contains("MalformedReceiptBatch"), "six tasks announced");
    let mut bad = good.clone();
    bad[1] = 0;
    assert!(try_packed(&s, bad).await.contains("EmptyBatch"), "none announced");
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(try_packed(&s, bad).await.contains("InvalidBatchProof"), "a sibling changed");
    let mut bad = good.clone();
    bad[siblings_at] += 1;
    bad.extend_from_slice(&[7; 32]);
    assert!(try_packed(&s, bad).await.contains("InvalidBatchProof"), "a sibling too many");
    let mut bad = good.clone();
    bad[siblings_at] -= 1;
    bad.truncate(bad.len() - 32);
    assert!(try_packed(&s, bad).await.contains("InvalidBatchProof"), "a sibling missing");
    let mut bad = good.clone();
    bad[2 + 41 + 168 * 2] = 5; // the third task (index 4) said to be task 5
    assert!(try_packed(&s, bad).await.contains("InvalidBatchProof"), "a task moved");
    let mut bad = pick(&[0, 3, 4, 7, 8]);
    bad[2].1.status = 2;
    assert!(try_packed(&s, pack(&bad)).await.contains("InvalidReceiptStatus"), "status 2");
    let twice = pick(&[3, 3]);
    assert!(try_packed(&s, pack(&twice)).await.contains("BatchTaskNotOpen"), "a task twice");

    // The honest receipt: five scattered tasks under one multiproof, their deltas one chunk.
    let (base, _) = s.base().await;
    commit(&s, &items).await.unwrap();
    let info = s.net.deployer.record_batch(batch.root()).await.unwrap().unwrap();
    let open: Vec<usize> = (0..13).filter(|&i| info.is_open(i)).collect();
    assert_eq!(open, [1, 2, 5, 6, 9, 10, 11, 12]);
    // Four more: a second chunk.
    let more = pick(&[9, 10, 11, 12]);
    commit(&s, &more).await.unwrap();
    let expected: Vec<DeltaHash> = items.iter().chain(&more).map(|(_, o)| o.delta_hash).collect();
    let before = s.net.deployer.delta_hashes(&s.contract, 0, base).await.unwrap();
    assert_eq!(before.len() as u64, base);
    for chain in [&s.net.deployer, &s.net.chain(USER).await] {
        let got = chain.delta_hashes(&s.contract, base, base + 100).await.unwrap();
        assert_eq!(got, expected, "both chunks, read back from their events");
        let got = chain.delta_hashes(&s.contract, base + 3, base + 6).await.unwrap();
        assert_eq!(got, expected[3..6], "across the two chunks' boundary");
        let got = chain.delta_hashes(&s.contract, 0, base + 2).await.unwrap();
        assert_eq!(got[..base as usize], before[..], "slots and a chunk together");
        assert_eq!(got[base as usize..], expected[..2]);
    }
}

#[tokio::test]
async fn any_rising_subset_of_a_batch_proves_with_its_multiproof_and_a_changed_sibling_does_not() {
    let s = scenario().await;
    let w = s.selected();
    // 23 tasks: odd widths at several levels (23, 12, 6, 3, 2), so missing right neighbours
    // come up inside runs.
    let batch = record_batch(&s, s.contract, "twenty-three", &[0; 23]).await;
    let all = batch.all_proven();
    let batches = EnigmaBatches::new(
        convert::eth(s.net.deployment.enigma),
        s.net.deployer.provider().clone(),
    );
    // A fixed pseudo-random sequence of subsets (xorshift), plus the edges: each task alone,
    // the whole batch, the last two.
    let mut x: u32 = 0x9e37_79b9;
    let mut subsets: Vec<Vec<usize>> = (0..23).map(|i| vec![i]).collect();
    subsets.push((0..23).collect());
    subsets.push(vec![21, 22]);
    for _ in 0..40 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let picked: Vec<usize> = (0..23).filter(|i| x.rotate_left(*i as u32) & 3 == 0).collect();
        if !picked.is_empty() {
            subsets.push(picked);
        }
    }
    let mut with_siblings = 0;
    for indices in &subsets {
        let items: Vec<_> = indices
            .iter()
            .map(|&i| {
                let t = all[i].clone();
                let o = outcome(&t, 1, true, 100);
                (t, o)
            })
            .collect();
        let signature = sign(&s, w, s.contract, &items).await;
        let packed = pack(&items);
        let call = |packed: Vec<u8>| {
            let batches = &batches;
            let signature = signature.as_bytes().to_vec();
            async move {
                batches
                    .commitBatchReceipts(convert::b256(s.contract), packed.into(), signature.into())
                    .call()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        e.as_revert_data().map_or_else(|| format!("{e}"), |d| describe_revert(&d))
                    })
            }
        };
        call(packed.clone()).await.unwrap_or_else(|e| panic!("tasks {indices:?}: {e}"));
        // The multiproof's siblings are the last bytes: change one.
        let count_at = packed.len() - 1 - 32 * usize::from(packed[2 + 41 + 168 * items.len()]);
        if count_at + 1 < packed.len() {
            with_siblings += 1;
            let mut bad = packed.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0x80;
            let refused = call(bad).await.expect_err("a changed sibling");
            assert!(refused.contains("InvalidBatchProof"), "tasks {indices:?}: {refused}");
        }
    }
    assert!(with_siblings > 40, "most subsets need siblings ({with_siblings})");
}
