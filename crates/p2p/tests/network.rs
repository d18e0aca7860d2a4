//! Real libp2p between separate service instances on loopback: bootstrap, gossip, task
//! routing, and a misbehaving peer that is struck, banned and disconnected while honest peers
//! keep being served.

use std::time::Duration;

use enigma_p2p::{messages::encode, *};
use enigma_types::{ContractAddress, SignerAddress, TaskId};
use tokio::sync::mpsc;

/// What the test sees of a node's events (task requests are answered by the node's loop).
#[derive(Debug)]
enum Seen {
    Task(TaskRequest),
    #[allow(dead_code)]
    Gossip {
        from: PeerId,
        message: GossipMessage,
    },
    Event(Event),
}

/// A node whose events are handled by a task: tasks are answered `Accepted` (or `Rejected` for
/// task ids starting with 0xff); everything is forwarded to the test.
struct Node {
    handle: Handle,
    events: mpsc::Receiver<Seen>,
}

async fn node(bootstrap: Vec<Multiaddr>) -> Node {
    let (handle, mut raw) = spawn(Config { bootstrap, ..Config::default() }).await.unwrap();
    let (tx, events) = mpsc::channel(1024);
    tokio::spawn(async move {
        while let Some(event) = raw.recv().await {
            let seen = match event {
                Event::Task { request, reply, .. } => {
                    let id = match &request {
                        TaskRequest::Deploy { task_id, .. }
                        | TaskRequest::Compute { task_id, .. } => *task_id,
                        TaskRequest::Query(q) => TaskId(q.query_id),
                    };
                    let answer = if id.0[0] == 0xff {
                        TaskResponse::Rejected("not selected".into())
                    } else {
                        TaskResponse::Accepted
                    };
                    reply.send(answer).await;
                    Seen::Task(request)
                }
                // The node under test accepts every well-formed message, so it is relayed.
                Event::Gossip { from, message, verdict } => {
                    verdict.report(Verdict::Accept);
                    Seen::Gossip { from, message }
                }
                other => Seen::Event(other),
            };
            let _ = tx.send(seen).await;
        }
    });
    Node { handle, events }
}

async fn wait_for(
    events: &mut mpsc::Receiver<Seen>,
    what: &str,
    mut pred: impl FnMut(&Seen) -> bool,
) -> Seen {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(_)) => {}
            Ok(None) => panic!("event stream ended while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

async fn publish_until_delivered(from: &Handle, message: &GossipMessage) {
    // Gossip needs the peers' subscriptions first; retry until a peer is there to send to.
    for _ in 0..100 {
        if from.publish(message).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not publish");
}

fn compute(task: u8) -> TaskRequest {
    TaskRequest::Compute {
        task_id: TaskId([task; 32]),
        contract: ContractAddress([2; 32]),
        encrypted_fn: vec![1; 40],
        encrypted_args: vec![2; 60],
        user_public_key: vec![3; 64],
        caller: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_gossip_and_route_tasks() {
    let mut a = node(Vec::new()).await;
    let boot = a.handle.dialable_addrs().await.unwrap();
    let mut b = node(boot.clone()).await;
    let mut c = node(boot).await;
    // Both: a message b publishes before c is connected to a never reaches c.
    for which in ["the first of b and c connects to a", "the second connects to a"] {
        wait_for(&mut a.events, which, |e| matches!(e, Seen::Event(Event::Connected(_)))).await;
    }

    let announcement = GossipMessage::Worker(WorkerAnnouncement {
        signer: SignerAddress([9; 20]),
        peer_id: b.handle.peer_id().to_bytes(),
        addresses: vec!["/ip4/127.0.0.1/tcp/1".into()],
        epoch: 7,
        io_public_key: vec![4; 64],
        signature: vec![5; 65],
        issued_at: 1,
        announcement_signature: vec![6; 65],
    });
    publish_until_delivered(&b.handle, &announcement).await;
    let got = wait_for(&mut c.events, "the announcement reaches c through a", |e| {
        matches!(e, Seen::Gossip { .. })
    })
    .await;
    assert!(matches!(got, Seen::Gossip { message, .. } if message == announcement));

    // c routes a task to b directly (it dials b through what identify and Kademlia learned, or a).
    c.handle.dial(b.handle.dialable_addrs().await.unwrap()[0].clone()).await.unwrap();
    assert_eq!(
        c.handle.send_task(b.handle.peer_id(), &compute(1)).await.unwrap(),
        TaskResponse::Accepted
    );
    assert_eq!(
        c.handle.send_task(b.handle.peer_id(), &compute(0xff)).await.unwrap(),
        TaskResponse::Rejected("not selected".into())
    );
    let e = wait_for(&mut b.events, "b sees the task", |e| matches!(e, Seen::Task(_))).await;
    assert!(matches!(e, Seen::Task(request) if request == compute(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_garbage_is_banned_while_honest_peers_are_served() {
    let mut victim = node(Vec::new()).await;
    let boot = victim.handle.dialable_addrs().await.unwrap();
    let honest = node(boot.clone()).await;
    let mallory = node(boot).await;
    let victim_id = victim.handle.peer_id();
    wait_for(&mut victim.events, "a connection", |e| matches!(e, Seen::Event(Event::Connected(_))))
        .await;

    // Garbage task requests: answered with a rejection naming the problem, and struck.
    let answer =
        mallory.handle.send_raw_task(victim_id, vec![0xde, 0xad, 0xbe, 0xef]).await.unwrap();
    assert!(matches!(answer, TaskResponse::Rejected(why) if why.contains("malformed")));
    // A message of another protocol version.
    let mut future = encode(&compute(1));
    future[0] = messages::VERSION + 1;
    let answer = mallory.handle.send_raw_task(victim_id, future).await.unwrap();
    let other = format!("version {}", messages::VERSION + 1);
    assert!(matches!(answer, TaskResponse::Rejected(why) if why.contains(&other)));
    // Garbage gossip.
    for _ in 0..50 {
        if mallory.handle.publish_raw(true, vec![0xff; 100]).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let banned = wait_for(&mut victim.events, "the victim bans mallory", |e| {
        matches!(e, Seen::Event(Event::Banned(_)))
    })
    .await;
    assert!(matches!(banned, Seen::Event(Event::Banned(p)) if p == mallory.handle.peer_id()));
    // Mallory is cut off; the honest peer is still served.
    assert!(mallory.handle.send_task(victim_id, &compute(3)).await.is_err());
    assert_eq!(
        honest.handle.send_task(victim_id, &compute(4)).await.unwrap(),
        TaskResponse::Accepted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_fails_and_the_node_keeps_serving() {
    let victim = node(Vec::new()).await;
    let boot = victim.handle.dialable_addrs().await.unwrap();
    let client = node(boot).await;
    let id = victim.handle.peer_id();
    for _ in 0..50 {
        if client.handle.connected().await.unwrap().contains(&id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let huge = TaskRequest::Deploy {
        task_id: TaskId([1; 32]),
        code: vec![0; 5 * 1024 * 1024],
        encrypted_fn: vec![],
        encrypted_args: vec![],
        user_public_key: vec![0; 64],
        caller: None,
    };
    assert!(
        client.handle.send_task(id, &huge).await.is_err(),
        "a 5 MiB request exceeds the 4 MiB bound"
    );
    assert_eq!(client.handle.send_task(id, &compute(5)).await.unwrap(), TaskResponse::Accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_are_found_for_more_contracts_than_kademlias_default_store_keeps() {
    // Kademlia's default store keeps provider records for 1,024 keys and drops the rest
    // silently: a network of more contracts would lose track of who holds them.
    let contracts = 1_500u16;
    let a = node(Vec::new()).await;
    let b = node(a.handle.dialable_addrs().await.unwrap()).await;
    let c = |i: u16| {
        let mut id = [0u8; 32];
        id[..2].copy_from_slice(&i.to_be_bytes());
        ContractAddress(id)
    };
    for i in 0..contracts {
        a.handle.provide(c(i)).await.unwrap();
    }
    let a_id = a.handle.peer_id();
    for i in [0, 1_023, 1_024, contracts - 1] {
        let mut found = Vec::new();
        for _ in 0..20 {
            found = b.handle.find_providers(c(i)).await.unwrap();
            if !found.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(found, vec![a_id], "the provider of contract {i}");
    }
}
