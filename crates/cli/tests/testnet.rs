//! The network across hosts (`scripts/testnet`): anvil, the key manager, the workers and the
//! clients' gateway each in their own network namespace and process. Under a steady load of
//! tasks it takes lossy, slow links, a worker killed and restarted, another cut off for longer
//! than an epoch, the gateway killed and restarted, a new worker, and a key-manager restart. Counted against the chain at the end: every task verified, failed
//! with a receipt or refunded, none committed twice, and each contract's state what the chain's
//! verified tasks make it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::U256;
use alloy_sol_types::SolValue;
use enigma_chain::{Chain, ChainEvent, TaskStatus, Watcher, find_anvil};
use enigma_client::{Client, ClientConfig, Finality, QueryOptions, TaskOutcome};
use enigma_crypto::KeyPair;
use enigma_node::DevnetSummary;
use enigma_types::{ContractAddress, TaskId, task_id};

const ENG: u128 = 100_000_000;

/// A line of the run's report on stderr (`--nocapture` shows it).
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The testnet of one test: its own directory (kept under the target directory, logs and all,
/// for a failure to be read), namespace prefix and subnet; taken down on drop.
struct Testnet {
    dir: Dir,
    prefix: String,
    net: u32,
}

impl Testnet {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/testnet")
    }

    fn run(&self, args: &[&str]) {
        let started = Instant::now();
        let out = Command::new(Self::script())
            .args(args)
            .env("TESTNET_DIR", self.dir.path())
            .env("TESTNET_PREFIX", &self.prefix)
            .env("TESTNET_NET", self.net.to_string())
            .env("ENIGMA_BIN", env!("CARGO_BIN_EXE_enigma"))
            .env("ENIGMA_ANVIL", find_anvil().unwrap())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        report!(
            "[testnet {} {:.1}s] {}",
            args.join(" "),
            started.elapsed().as_secs_f64(),
            said.trim()
        );
        if !out.status.success() {
            for log in std::fs::read_dir(self.dir.path().join("logs")).into_iter().flatten() {
                let path = log.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                report!(
                    "--- {}:\n{}",
                    path.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            panic!("scripts/testnet {} failed: {said}", args.join(" "));
        }
    }

    async fn fault(self: &Arc<Self>, args: &[&str]) {
        let this = self.clone();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            this.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        })
        .await
        .unwrap();
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        let _ = Command::new(Self::script())
            .arg("down")
            .env("TESTNET_DIR", self.dir.path())
            .env("TESTNET_PREFIX", &self.prefix)
            .env("TESTNET_NET", self.net.to_string())
            .output();
    }
}

struct Dir(PathBuf);

impl Dir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

/// What one call of `record(amount)` came to, as its client saw it.
struct Sent {
    amount: u64,
    /// The tasks the chain recorded for it (its user sends one at a time: the records between
    /// the account's task nonce before and after the call).
    recorded: Vec<TaskId>,
    /// The task and the entry count it answered, or the client's error.
    outcome: Result<(TaskId, u64), String>,
    /// The answer itself, for [`Client::confirm`] at the end.
    answer: Option<TaskOutcome>,
}

fn key_of(s: &DevnetSummary, i: usize) -> KeyPair {
    KeyPair::from_slice(&hex::decode(s.accounts[i].private_key.trim_start_matches("0x")).unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testnet_loses_no_task_through_kills_partitions_a_new_worker_a_km_restart_and_lossy_links()
 {
    assert!(
        nix_is_root(),
        "this test builds network namespaces and needs root (the CI machine runs it as root)"
    );
    let testnet = Arc::new(Testnet {
        dir: {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("testnet");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        },
        // Fixed names: a run killed before its clean-up is cleaned up by the next one.
        prefix: "entst".into(),
        net: 199,
    });
    testnet.run(&["down"]);
    testnet.run(&["up", "--workers", "3", "--epoch-size", "20"]);
    let summary: DevnetSummary =
        serde_json::from_slice(&std::fs::read(testnet.dir.path().join("testnet.json")).unwrap())
            .unwrap();
    let deployer = KeyPair::from_slice(
        &hex::decode(
            std::fs::read_to_string(testnet.dir.path().join("keys/deployer.key"))
                .unwrap()
                .trim()
                .trim_start_matches("0x"),
        )
        .unwrap(),
    )
    .unwrap();
    let d = summary.deployment;
    let owner =
        Chain::connect(&summary.chain_url, Some(&deployer), d.enigma, d.token).await.unwrap();
    let policy = enigma_node::devnet_policy(summary.simulation_authority.parse().unwrap());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = enigma_contract_build::build(&enigma_contract_build::BuildOptions::examples(&root))
        .unwrap();
    let ledger =
        std::fs::read(&enigma_contract_build::find(&built, "ledger").unwrap().wasm).unwrap();

    // Three users, each with a ledger of their own.
    const USERS: usize = 3;
    let mut clients = Vec::new();
    for i in 0..USERS {
        let user = key_of(&summary, i);
        owner.transfer_token(user.address(), 1_000 * ENG).await.unwrap();
        let client = Client::connect(ClientConfig {
            gateway_url: summary.gateway_url.clone(),
            chain_url: summary.chain_url.clone(),
            enigma: d.enigma,
            token: d.token,
            account: user,
            gas_px: 1,
            policy: policy.clone(),
            result_timeout: Duration::from_secs(30),
        })
        .await
        .unwrap();
        client.deposit(900 * ENG).await.unwrap();
        clients.push(Arc::new(client));
    }
    let epoch_with_workers =
        || async { owner.current_epoch().await.ok().flatten().filter(|e| e.workers.len() == 3) };
    for _ in 0..120 {
        if epoch_with_workers().await.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(epoch_with_workers().await.is_some(), "no epoch with the three workers");
    let mut contracts = Vec::new();
    for c in &clients {
        contracts.push(c.deploy(&ledger, "construct()", &[], 50_000_000).await.unwrap().contract);
    }

    // The load: each user records unique amounts in their ledger, one task after another.
    let stop = Arc::new(AtomicBool::new(false));
    // When the faults ended, and which users have had a task answered since.
    let healed: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let recovered: Arc<Vec<AtomicBool>> =
        Arc::new((0..USERS).map(|_| AtomicBool::new(false)).collect());
    let mut load = Vec::new();
    for (i, (client, contract)) in clients.iter().zip(&contracts).enumerate() {
        let (client, contract, stop) = (client.clone(), *contract, stop.clone());
        let (healed, recovered) = (healed.clone(), recovered.clone());
        load.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            let mut k = 0u64;
            while !stop.load(Ordering::SeqCst) {
                k += 1;
                let amount = (i as u64 + 1) * 1_000_000 + k;
                let at = Instant::now();
                let args = (U256::from(amount),).abi_encode_params();
                let user = client.chain().account().unwrap();
                let before = client.chain().task_nonce(user).await.unwrap();
                let answer = client.compute(contract, "record(uint256)", &args, 50_000_000).await;
                let outcome = answer
                    .as_ref()
                    .map(|o| {
                        let (_, count) = <(U256, U256)>::abi_decode_params(&o.output).unwrap();
                        (o.task_id, count.to::<u64>())
                    })
                    .map_err(ToString::to_string);
                if outcome.is_ok() && healed.get().is_some_and(|h| at > *h) {
                    recovered[i].store(true, Ordering::SeqCst);
                }
                let after = client.chain().task_nonce(user).await.unwrap();
                let recorded = (before..after).map(|n| task_id(&user, n)).collect();
                sent.push(Sent { amount, recorded, outcome, answer: answer.ok() });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            sent
        }));
    }
    let started = Instant::now();
    let faults = [
        "every namespace drops 2 % of the packets it receives; 20 Mbit/s into each (no sch_netem in this kernel: no added delay)",
        "w2 killed (SIGKILL), restarted 8 s later",
        "w3 cut off for 30 s (1.5 epochs), then healed",
        "the gateway (a node of its own) killed (SIGKILL) and restarted 3 s later",
        "w4 added (registers, stakes, and an epoch draws it)",
        "the key manager killed (SIGKILL) and restarted",
    ];
    tokio::time::sleep(Duration::from_secs(5)).await;
    testnet.fault(&["impair", "--loss", "2%", "--rate", "20mbit"]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    testnet.fault(&["kill", "w2"]).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    testnet.fault(&["start", "w2"]).await;
    testnet.fault(&["partition", "w3"]).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    testnet.fault(&["kill", "gw"]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    testnet.fault(&["start", "gw"]).await;
    tokio::time::sleep(Duration::from_secs(17)).await;
    testnet.fault(&["heal", "w3"]).await;
    testnet.fault(&["add-worker"]).await;
    testnet.fault(&["kill", "km"]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    testnet.fault(&["start", "km"]).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    testnet.fault(&["impair", "off"]).await;
    healed.set(Instant::now()).unwrap();
    // The network recovers: every user's new tasks are answered again (a task caught by the
    // faults may first wait out its 30 s).
    let deadline = Instant::now() + Duration::from_secs(150);
    while !recovered.iter().all(|r| r.load(Ordering::SeqCst)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let recovery_secs = healed.get().unwrap().elapsed().as_secs_f64();
    // The added worker takes part: an epoch draws all four.
    let mut four = false;
    for _ in 0..120 {
        if owner.current_epoch().await.ok().flatten().is_some_and(|e| e.workers.len() == 4) {
            four = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(four, "no epoch drew the added worker");
    stop.store(true, Ordering::SeqCst);
    let mut sent: Vec<Vec<Sent>> = Vec::new();
    for l in load {
        sent.push(l.await.unwrap());
    }
    let load_secs = started.elapsed().as_secs_f64();

    // Every task the chain recorded, per user: each settles (a result's receipt, or a refund
    // once the record times out).
    let timeout_blocks = owner.enigma().timeoutBlocks().call().await.unwrap().to::<u64>();
    let mut statuses: BTreeMap<TaskId, (usize, TaskStatus)> = BTreeMap::new();
    for (i, client) in clients.iter().enumerate() {
        let user = client.chain().account().unwrap();
        let recorded = client.chain().task_nonce(user).await.unwrap();
        for n in 0..recorded {
            let id = task_id(&user, n);
            let deadline = Instant::now() + Duration::from_secs(240);
            let status = loop {
                let record = client.chain().task(&id).await.unwrap().expect("a recorded task");
                if record.status.is_final() {
                    break record.status;
                }
                let head = client.chain().block_number().await.unwrap();
                if head > record.created_at + timeout_blocks {
                    // A receipt may land first: the refund then fails and the status says why.
                    let _ = client.refund(id).await;
                    continue;
                }
                assert!(Instant::now() < deadline, "task {id} never settled");
                tokio::time::sleep(Duration::from_secs(1)).await;
            };
            statuses.insert(id, (i, status));
        }
    }
    let count = |s: TaskStatus| statuses.values().filter(|(_, st)| *st == s).count();
    assert_eq!(count(TaskStatus::Created), 0);

    // None committed twice: each settled task is in exactly one receipt event; refunds in none.
    let mut receipts: BTreeMap<TaskId, usize> = BTreeMap::new();
    let head = owner.block_number().await.unwrap();
    let mut watcher = Watcher::new(owner.provider().clone(), d.enigma, d.block, 0);
    while watcher.next_block() <= head {
        for e in watcher.poll().await.unwrap().events {
            match e.event {
                ChainEvent::ReceiptsVerified { task_ids, .. } => {
                    task_ids.into_iter().for_each(|t| *receipts.entry(t).or_default() += 1);
                }
                // A deployment's receipt is a ReceiptVerified beside its SecretContractDeployed.
                ChainEvent::ReceiptVerified { task_id, .. }
                | ChainEvent::ReceiptFailed { task_id, .. } => {
                    *receipts.entry(task_id).or_default() += 1;
                }
                _ => {}
            }
        }
    }
    for (id, (_, status)) in &statuses {
        let want = usize::from(*status != TaskStatus::FailedReturn);
        assert_eq!(receipts.get(id).copied().unwrap_or(0), want, "task {id} is {status:?}");
    }

    // Each ledger holds exactly the verified tasks' amounts, each once, in the order the chain
    // gave their results; every answer a client got is the entry it names.
    let mut deltas = 0;
    let mut withdrawn = 0;
    for (i, (client, contract)) in clients.iter().zip(&contracts).enumerate() {
        let verified = statuses
            .iter()
            .filter(|(id, (u, s))| {
                *u == i && *s == TaskStatus::Verified && ContractAddress::from(**id) != *contract
            })
            .count();
        let options = QueryOptions { anonymous: true, ..QueryOptions::default() };
        let answer = ask(client, *contract, "summary()", &[], &options).await;
        let (total, entries) = <(U256, U256)>::abi_decode_params(&answer.output).unwrap();
        let entries = entries.to::<u64>();
        assert_eq!(entries as usize, verified, "user {i}: one entry per verified task");
        let sent_amounts: BTreeSet<u64> = sent[i].iter().map(|s| s.amount).collect();
        let mut seen = BTreeSet::new();
        let mut sum = U256::ZERO;
        let mut by_index = Vec::new();
        for n in 0..entries {
            let args = (U256::from(n),).abi_encode_params();
            let e = ask(client, *contract, "entry(uint256)", &args, &options).await;
            let amount = U256::abi_decode(&e.output).unwrap().to::<u64>();
            assert!(
                sent_amounts.contains(&amount),
                "user {i}: entry {n} ({amount}) was never sent"
            );
            assert!(seen.insert(amount), "user {i}: {amount} recorded twice");
            sum += U256::from(amount);
            by_index.push(amount);
        }
        assert_eq!(total, sum, "user {i}: the total is the sum of the entries");
        // Exactly the verified tasks' amounts: a verified task's change is never lost, and a
        // refunded or failed task's is never applied.
        let verified_amounts: BTreeSet<u64> = sent[i]
            .iter()
            .filter(|s| {
                assert!(s.recorded.len() <= 1, "user {i}: one call recorded {:?}", s.recorded);
                s.recorded.iter().any(|id| statuses[id].1 == TaskStatus::Verified)
            })
            .map(|s| s.amount)
            .collect();
        assert_eq!(seen, verified_amounts, "user {i}: the ledger against the verified tasks");
        for s in &sent[i] {
            let (Ok((id, count)), Some(answer)) = (&s.outcome, &s.answer) else { continue };
            assert_eq!(s.recorded, vec![*id], "user {i}: an answered task is the call's record");
            // An answer is provisional until its receipt lands. One whose worker was cut off
            // before its receipts landed (the next holder took over from the chain) is refunded,
            // and the client says so when asked to confirm it; an answer the chain holds
            // confirms with the same hashes and names its entry.
            let confirmed = client.confirm(answer).await;
            match statuses[id].1 {
                TaskStatus::Verified => {
                    confirmed.unwrap_or_else(|e| {
                        panic!("user {i}: answered task {id} is verified but does not confirm: {e}")
                    });
                    assert_eq!(
                        by_index[*count as usize - 1],
                        s.amount,
                        "user {i}: an answer names its entry"
                    );
                }
                TaskStatus::FailedReturn => {
                    assert_eq!(
                        answer.finality,
                        Finality::Provisional,
                        "user {i}: task {id} was answered as confirmed and then refunded"
                    );
                    let e = confirmed.expect_err("a refunded answer confirms");
                    assert!(
                        e.to_string().contains("was refunded: its receipt never landed"),
                        "user {i}: task {id}: {e}"
                    );
                    withdrawn += 1;
                }
                other => panic!("user {i}: answered task {id} ended {other:?}"),
            }
        }
        deltas += entries + 1;
    }

    // Only a worker cut off with receipts unlanded voids answers (w2's kill, w3's partition),
    // and a user sends one task at a time: at most one such answer per user and fault.
    assert!(withdrawn <= 2 * USERS, "{withdrawn} answers were refunded afterwards");
    let answered = sent.iter().flatten().filter(|s| s.outcome.is_ok()).count();
    // Client errors by kind (hex numbers folded), with how many of each.
    let errors: BTreeMap<String, usize> = sent
        .iter()
        .flatten()
        .filter_map(|s| s.outcome.as_ref().err())
        .fold(BTreeMap::new(), |mut m, e| {
            let mut kind = String::new();
            let mut rest = e.as_str();
            while let Some(at) = rest.find("0x") {
                kind.push_str(&rest[..at]);
                kind.push_str("0x…");
                rest = rest[at + 2..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
            }
            kind.push_str(rest);
            *m.entry(kind).or_default() += 1;
            m
        });
    for (kind, n) in &errors {
        report!("client error ×{n}: {kind}");
    }
    report!(
        "testnet load: {} tasks sent in {load_secs:.0} s by {USERS} users ({answered} answered); \
         on chain {} recorded: {} verified, {} failed with a receipt, {} refunded ({withdrawn} of \
         them answered provisionally by a worker cut off before its receipt landed); {deltas} \
         deltas checked; every user answered again {recovery_secs:.0} s after the faults ended; \
         faults: {}",
        sent.iter().map(Vec::len).sum::<usize>(),
        statuses.len(),
        count(TaskStatus::Verified),
        count(TaskStatus::Failed),
        count(TaskStatus::FailedReturn),
        faults.join("; "),
    );
    for (i, r) in recovered.iter().enumerate() {
        assert!(r.load(Ordering::SeqCst), "user {i} got no answer within 150 s of the faults' end");
    }
}

/// A query, asked again after a transient failure (a gateway's peer connection that dropped):
/// the checks are about the state, not about one query's luck.
async fn ask(
    client: &Client,
    contract: ContractAddress,
    callable: &str,
    args: &[u8],
    options: &QueryOptions,
) -> enigma_client::QueryOutcome {
    let mut last = None;
    for _ in 0..5 {
        match client.query_with(contract, callable, args, options).await {
            Ok(answer) => return answer,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    panic!("{callable} of {contract}: {last:?}");
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
