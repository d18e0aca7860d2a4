//! A network run the way an operator runs one on a public chain: anvil with one-second blocks
//! behind a TLS terminator (its own certificate authority, rate limits at first), the contracts
//! deployed by `enigma contracts deploy` under a fee cap, the key manager over `https` and the
//! worker over `wss` reading the chain file, a client's tasks verified end to end, and blocks
//! replaced while the network runs.

use std::{
    future::Future,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use alloy::{
    node_bindings::Anvil,
    providers::{Provider, ProviderBuilder},
};
use alloy_primitives::{Address as AlloyAddress, U256};
use alloy_sol_types::SolValue;
use enigma_chain::{ANVIL_ARGS, Chain, ChainOptions, TaskStatus, find_anvil};
use enigma_client::{Client, ClientConfig};
use enigma_crypto::KeyPair;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ENG: u128 = 100_000_000;

fn enigma(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enigma"))
        .args(args)
        .env_remove("ENIGMA_CHAIN_CA")
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Starts a long-running `enigma` command and returns it with its first line ("… ready …").
fn serve(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_enigma"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    (child, first)
}

/// Kills the child processes when the test ends, however it ends.
struct Reaper(Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TLS terminator for `localhost` in front of `backend`, with a certificate from its own
/// authority (returned as PEM). While `refuse` is above zero, each new connection is answered
/// `429 Too Many Requests` and closed, as a provider's rate limit would.
async fn terminator(backend: u16, refuse: Arc<AtomicUsize>) -> (u16, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "enigma test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            let refuse = refuse.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else { return };
                let limited =
                    refuse.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                if limited.is_ok() {
                    // Read the request (its head at least), then refuse it.
                    let mut request = [0u8; 4096];
                    let _ = tls.read(&mut request).await;
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n\
                              Content-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                    return;
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (port, ca.pem())
}

async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    for _ in 0..240 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting for {what}");
}

fn write_key(dir: &Path, name: &str, key: &KeyPair) -> String {
    let path = dir.join(name);
    std::fs::write(&path, hex::encode(key.secret_bytes().as_ref())).unwrap();
    format!("@{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_deployed_by_the_cli_runs_over_https_and_wss_with_rate_limits_a_fee_cap_and_a_reorg()
 {
    let anvil = Anvil::new()
        .path(find_anvil().unwrap())
        .args(ANVIL_ARGS)
        .block_time(1)
        .try_spawn()
        .unwrap();
    let plain = anvil.endpoint_url().to_string();
    let account = |i: usize| KeyPair::from_slice(&anvil.keys()[i].to_bytes()).unwrap();
    let refuse = Arc::new(AtomicUsize::new(0));
    let (port, ca_pem) = terminator(anvil.port(), refuse.clone()).await;
    let https = format!("https://localhost:{port}");
    let wss = format!("wss://localhost:{port}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = d.join("ca.pem");
    std::fs::write(&ca, &ca_pem).unwrap();
    let ca = ca.to_str().unwrap().to_owned();
    let deployer = write_key(d, "deployer.key", &account(0));
    let km_key = write_key(d, "km-operator.key", &account(9));
    let worker_key = write_key(d, "worker-operator.key", &account(1));
    let mut reaper = Reaper(Vec::new());

    // The network's simulation authority, as its own process.
    let authority_file = d.join("authority.key");
    let (child, ready) = serve(&[
        "attestation",
        "serve",
        "--key-file",
        authority_file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    reaper.0.push(child);
    let words: Vec<&str> = ready.split_whitespace().collect();
    assert_eq!(words[..2], ["attestation", "authority"], "{ready}");
    let authority = words[2].to_owned();
    let attestation_url = words.last().unwrap().to_string();

    // The key manager's signer, from its own data directory.
    let km_dir = d.join("km");
    let o = enigma(&[
        "km",
        "signer",
        "--data-dir",
        km_dir.to_str().unwrap(),
        "--operator-key",
        &km_key,
        "--sim-authority",
        &authority,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let principal: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let principal = principal["signer"].as_str().unwrap().to_owned();
    let out = d.join("chain.toml");
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "contracts",
            "deploy",
            "--rpc",
            &https,
            "--deployer-key",
            &deployer,
            "--principal",
            &principal,
            "--simulation-authority",
            &authority,
            "--epoch-size",
            "8",
            "--timeout-blocks",
            "200",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        enigma(&args)
    };
    let nonce = || {
        let plain = plain.clone();
        let from = account(0).address();
        async move {
            ProviderBuilder::new()
                .connect_http(plain.parse().unwrap())
                .get_transaction_count(alloy_primitives::Address::from(from.0))
                .await
                .unwrap()
        }
    };

    // Without the network's CA the certificate is refused, and said so.
    let o = deploy(&[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("certificate"), "{}", text(&o));
    // Under a fee cap below the base fee (anvil starts at 1 gwei) nothing is sent.
    let o = deploy(&["--chain-ca", &ca, "--max-fee-gwei", "0.5"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("base fee is 1 gwei"), "{}", text(&o));
    assert_eq!(nonce().await, 0, "a capped transaction was sent");
    assert!(!out.exists());

    // The deployment goes through the provider's first rate-limited answers.
    refuse.store(3, Ordering::SeqCst);
    let o = deploy(&["--chain-ca", &ca, "--max-fee-gwei", "40", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(refuse.load(Ordering::SeqCst), 0, "the rate limit was never met");
    let deployed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let chain_file = std::fs::read_to_string(&out).unwrap();
    assert!(chain_file.contains(&format!("chain-url = \"{https}\"")), "{chain_file}");
    assert!(chain_file.contains("chain-id = 31337"), "{chain_file}");
    let enigma_at: enigma_types::Address =
        deployed["chain"]["enigma"].as_str().unwrap().parse().unwrap();
    let token_at: enigma_types::Address =
        deployed["chain"]["token"].as_str().unwrap().parse().unwrap();
    // A second deployment over the same file is refused: it names a live network.
    let o = deploy(&["--chain-ca", &ca]);
    assert!(text(&o).contains("exists"), "{}", text(&o));

    // Every transaction sent was EIP-1559 and within the cap.
    let reader = ProviderBuilder::new().connect_http(plain.parse().unwrap());
    let sent = nonce().await;
    assert_eq!(sent, 3, "the token, the simulation verifier and Enigma");
    let head = reader.get_block_number().await.unwrap();
    let mut seen = 0;
    for n in 0..=head {
        let block = reader.get_block_by_number(n.into()).full().await.unwrap().unwrap();
        for tx in block.transactions.txns() {
            use alloy::consensus::Transaction as _;
            assert_eq!(tx.inner.tx_type() as u8, 2, "EIP-1559");
            assert!(tx.inner.max_fee_per_gas() <= 40_000_000_000);
            seen += 1;
        }
    }
    assert_eq!(seen, sent);

    // This process reaches the chain as the nodes do: over TLS, trusting the network's CA.
    let mut options = ChainOptions::default();
    options.trust_pem_file(Path::new(&ca)).unwrap();
    enigma_chain::configure(options).unwrap();
    let owner = Chain::connect(&https, Some(&account(0)), enigma_at, token_at).await.unwrap();
    owner.transfer_token(account(1).address(), 2_000 * ENG).await.unwrap();

    // The key manager over https and the worker over wss, both from the chain file.
    let km_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (child, ready) = serve(&[
        "km",
        "--chain-config",
        out.to_str().unwrap(),
        "--chain-ca",
        &ca,
        "--data-dir",
        km_dir.to_str().unwrap(),
        "--operator-key",
        &km_key,
        "--attestation-url",
        &attestation_url,
        "--rpc-listen",
        &format!("127.0.0.1:{km_port}"),
    ]);
    reaper.0.push(child);
    assert!(ready.contains(&principal) && ready.contains("ready"), "{ready}");
    let gateway = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (child, ready) = serve(&[
        "worker",
        "--chain-config",
        out.to_str().unwrap(),
        "--chain-url",
        &wss,
        "--chain-ca",
        &ca,
        "--data-dir",
        d.join("worker").to_str().unwrap(),
        "--operator-key",
        &worker_key,
        "--attestation-url",
        &attestation_url,
        "--km-url",
        &format!("http://127.0.0.1:{km_port}"),
        "--gateway-listen",
        &format!("127.0.0.1:{gateway}"),
        "--stake",
        &(1_000 * ENG).to_string(),
        "--batch-wait-ms",
        "200",
    ]);
    reaper.0.push(child);
    assert!(ready.contains("ready"), "{ready}");
    // Two epochs with the worker: a reorg that drops the newest epoch's transaction leaves the
    // one before in force (which one is newest when blocks are replaced is up to the chain).
    let epoch = eventually("two epochs in a row with the worker", || async {
        let epoch = owner.current_epoch().await.ok().flatten()?;
        let before = owner.epoch(epoch.nonce.checked_sub(1)?).await.ok()?;
        (epoch.workers.len() == 1 && before.workers == epoch.workers).then_some(epoch)
    })
    .await;

    // A node pointed at another chain than its file names refuses to start.
    let other = d.join("other.toml");
    std::fs::write(&other, chain_file.replace("chain-id = 31337", "chain-id = 1")).unwrap();
    let o = enigma(&[
        "km",
        "--chain-config",
        other.to_str().unwrap(),
        "--chain-ca",
        &ca,
        "--data-dir",
        d.join("km2").to_str().unwrap(),
        "--operator-key",
        &km_key,
    ]);
    assert!(
        text(&o).contains("serves chain 31337, but the chain file is for chain 1"),
        "{}",
        text(&o)
    );

    // Blocks replaced under the running network.
    let before = reader.get_block_number().await.unwrap();
    let _: serde_json::Value = reader
        .raw_request("anvil_reorg".into(), (2u64, Vec::<serde_json::Value>::new()))
        .await
        .unwrap();
    let user = account(5);
    owner.transfer_token(user.address(), 1_000 * ENG).await.unwrap();
    let client = Client::connect(ClientConfig {
        gateway_url: format!("http://127.0.0.1:{gateway}"),
        chain_url: https.clone(),
        enigma: enigma_at,
        token: token_at,
        account: user,
        gas_px: 1,
        policy: enigma_node::devnet_policy(authority.parse().unwrap()),
        result_timeout: Duration::from_secs(120),
    })
    .await
    .unwrap();
    client.deposit(500 * ENG).await.unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = enigma_contract_build::build(&enigma_contract_build::BuildOptions::examples(&root))
        .unwrap();
    let wasm =
        std::fs::read(&enigma_contract_build::find(&built, "millionaires").unwrap().wasm).unwrap();
    let deployed = client.deploy(&wasm, "construct()", &[], 50_000_000).await.unwrap();
    let contract = deployed.contract;
    for (who, worth) in [(1u8, 100u64), (2, 900)] {
        let args = (AlloyAddress::repeat_byte(who), U256::from(worth)).abi_encode_params();
        client
            .compute(contract, "add_millionaire(address,uint256)", &args, 50_000_000)
            .await
            .unwrap();
    }
    let richest = client.compute(contract, "compute_richest()", &[], 50_000_000).await.unwrap();
    assert_eq!(AlloyAddress::abi_decode(&richest.output).unwrap(), AlloyAddress::repeat_byte(2));
    let receipt = client.confirm(&richest).await.unwrap();
    assert_eq!(receipt.status, TaskStatus::Verified);
    assert_eq!(receipt.output_hash, richest.output_hash);
    let record = owner.task(&richest.task_id).await.unwrap().unwrap();
    assert!(record.created_at > before, "the task ran on the chain after the reorg");
    assert!(epoch.workers.contains(&richest.worker));
}
