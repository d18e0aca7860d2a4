//! The swarm service: one task owns the swarm; the node talks to it through a [`Handle`].

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use enigma_types::ContractAddress;
use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, gossipsub, identify,
    identity::Keypair,
    kad, noise,
    request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel},
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    codec::BytesCodec,
    messages::{
        self, GossipMessage, MAX_GOSSIP_BYTES, MAX_SYNC_REQUEST_BYTES, MAX_SYNC_RESPONSE_BYTES,
        MAX_TASK_REQUEST_BYTES, MAX_TASK_RESPONSE_BYTES, RESULTS_TOPIC, SyncRequest, SyncResponse,
        TaskRequest, TaskResponse, WORKERS_TOPIC,
    },
};

const TASK_PROTOCOL: &str = "/enigma/task/1";
const SYNC_PROTOCOL: &str = "/enigma/sync/1";
const KAD_PROTOCOL: &str = "/enigma/kad/1.0.0";
const IDENTIFY_PROTOCOL: &str = "/enigma/1.0.0";
/// Events waiting for the node.
const EVENT_QUEUE: usize = 1024;
/// Commands waiting for the service.
const COMMAND_QUEUE: usize = 256;
/// Inbound task requests awaiting the node's answer.
const MAX_INBOUND_TASKS: usize = 256;
/// The window strikes count in.
const STRIKE_WINDOW: Duration = Duration::from_secs(600);
/// How long a ban lasts.
const BAN_DURATION: Duration = Duration::from_secs(3_600);
/// Peers tracked for strikes and bans at once.
const MAX_TRACKED_PEERS: usize = 10_000;
/// Inbound sync requests awaiting the node's answer.
const MAX_INBOUND_SYNC: usize = 64;
/// Provider lookups in flight.
const MAX_PROVIDER_QUERIES: usize = 64;
/// How long a provider lookup may take.
const PROVIDER_QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// The most contracts a node keeps provider records for (its own and its peers'): Kademlia's
/// default of 1,024 silently dropped every contract past it. The store sets aside room for 20
/// providers per key (about 3 KB), so a peer flooding records for made-up contracts costs a
/// node at most about 300 MB; records are not yet filtered to contracts on chain.
pub const MAX_PROVIDER_KEYS: usize = 100_000;

/// A network failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The transport or behaviour could not be built.
    #[error("could not start the p2p service: {0}")]
    Start(String),
    /// The listen address could not be used.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The service has stopped.
    #[error("the p2p service has stopped")]
    Stopped,
    /// Dialing failed.
    #[error("cannot reach {0}")]
    Dial(String),
    /// Publishing failed (e.g. no peer subscribed yet).
    #[error("cannot publish: {0}")]
    Publish(String),
    /// A request that failed: for a task request, one known not to have reached the peer (no
    /// connection, or the peer does not speak the protocol); for a sync request, any failure.
    #[error("the task request to {peer} failed: {reason}")]
    Request {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// A task request reached the peer (or may have), but no answer came back in time: the
    /// task may still run.
    #[error("the task request to {peer} got no answer in time ({reason}); the task may still run")]
    Unanswered {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's network identity (not an enclave key).
    pub keypair: Keypair,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start and to seed Kademlia with (each ending in `/p2p/<peer id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// How long a task request may take.
    pub request_timeout: Duration,
    /// Malformed messages a peer may send before it is disconnected and banned.
    pub max_strikes: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            keypair: Keypair::generate_ed25519(),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap_or_else(|_| Multiaddr::empty())],
            bootstrap: Vec::new(),
            request_timeout: Duration::from_secs(30),
            max_strikes: 3,
        }
    }
}

/// What the network delivers to the node.
#[derive(Debug)]
pub enum Event {
    /// A well-formed gossip message. It is forwarded to other peers only once the node
    /// accepts it through `verdict` (a message never judged is not forwarded).
    Gossip {
        /// Who forwarded it.
        from: PeerId,
        /// The message.
        message: GossipMessage,
        /// Where the node's judgement goes.
        verdict: GossipVerdict,
    },
    /// A task for this node; answer it through `reply`.
    Task {
        /// Who sent it.
        from: PeerId,
        /// The task.
        request: TaskRequest,
        /// Where the answer goes.
        reply: TaskReply,
    },
    /// A connection opened.
    Connected(PeerId),
    /// The last connection to a peer closed.
    Disconnected(PeerId),
    /// A peer was banned for sending garbage.
    Banned(PeerId),
    /// A state-sync request; answer it through `reply`.
    Sync {
        /// Who sent it.
        from: PeerId,
        /// The request.
        request: SyncRequest,
        /// Where the answer goes.
        reply: SyncReply,
    },
}

/// The way back to the peer that sent a sync request.
#[derive(Debug)]
pub struct SyncReply {
    id: u64,
    commands: mpsc::Sender<Command>,
}

impl SyncReply {
    /// Sends the answer.
    pub async fn send(self, response: SyncResponse) {
        let _ = self.commands.send(Command::RespondSync { id: self.id, response }).await;
    }
}

/// What the node decided about a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: keep forwarding it.
    Accept,
    /// Invalid (a forged signature, a result no selected worker signed): not forwarded, and the
    /// peer that sent it gets a strike (honest peers forward only what they accepted).
    Reject,
    /// Not useful (stale, a duplicate, nothing to check it against yet): not forwarded, no
    /// strike.
    Ignore,
}

/// The way to report a gossip message's [`Verdict`].
#[derive(Debug)]
pub struct GossipVerdict {
    id: gossipsub::MessageId,
    from: PeerId,
    commands: mpsc::Sender<Command>,
}

impl GossipVerdict {
    /// Reports the verdict (without waiting: a full command queue drops it, and the message is
    /// then not forwarded).
    pub fn report(self, verdict: Verdict) {
        let _ = self.commands.try_send(Command::Validate { id: self.id, from: self.from, verdict });
    }
}

/// The way back to the peer that sent a task.
#[derive(Debug)]
pub struct TaskReply {
    id: u64,
    commands: mpsc::Sender<Command>,
}

impl TaskReply {
    /// Sends the answer (dropping a reply answers nothing; the peer's request then fails).
    pub async fn send(self, response: TaskResponse) {
        let _ = self.commands.send(Command::Respond { id: self.id, response }).await;
    }
}

#[derive(Debug)]
enum Command {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Connected(oneshot::Sender<Vec<PeerId>>),
    Dial(Multiaddr, oneshot::Sender<Result<(), Error>>),
    Publish(&'static str, Vec<u8>, oneshot::Sender<Result<(), Error>>),
    SendTask(PeerId, Vec<u8>, oneshot::Sender<Result<TaskResponse, Error>>),
    Respond { id: u64, response: TaskResponse },
    SendSync(PeerId, Vec<u8>, oneshot::Sender<Result<SyncResponse, Error>>),
    RespondSync { id: u64, response: SyncResponse },
    Provide(ContractAddress),
    FindProviders(ContractAddress, oneshot::Sender<Vec<PeerId>>),
    Penalize(PeerId, String),
    Validate { id: gossipsub::MessageId, from: PeerId, verdict: Verdict },
    Shutdown,
}

/// Commands to the running service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl Handle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// This node's peer id.
    #[must_use]
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses it listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, Error> {
        self.ask(Command::ListenAddrs).await
    }

    /// The addresses it listens on, each with `/p2p/<peer id>` (what others bootstrap from).
    pub async fn dialable_addrs(&self) -> Result<Vec<Multiaddr>, Error> {
        let id = self.peer_id;
        Ok(self
            .listen_addrs()
            .await?
            .into_iter()
            .map(|a| a.with(libp2p::multiaddr::Protocol::P2p(id)))
            .collect())
    }

    /// The peers it is connected to.
    pub async fn connected(&self) -> Result<Vec<PeerId>, Error> {
        self.ask(Command::Connected).await
    }

    /// Connects to a peer.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), Error> {
        self.ask(|tx| Command::Dial(addr, tx)).await?
    }

    /// Publishes a gossip message on its topic.
    pub async fn publish(&self, message: &GossipMessage) -> Result<(), Error> {
        let bytes = messages::encode(message);
        self.ask(|tx| Command::Publish(message.topic(), bytes, tx)).await?
    }

    /// Sends a task to a peer and waits for its answer.
    pub async fn send_task(
        &self,
        peer: PeerId,
        request: &TaskRequest,
    ) -> Result<TaskResponse, Error> {
        let bytes = messages::encode(request);
        self.ask(|tx| Command::SendTask(peer, bytes, tx)).await?
    }

    /// Asks a peer for state (`/enigma/sync/1`) and waits for its answer.
    pub async fn send_sync(
        &self,
        peer: PeerId,
        request: &SyncRequest,
    ) -> Result<SyncResponse, Error> {
        let bytes = messages::encode(request);
        self.ask(|tx| Command::SendSync(peer, bytes, tx)).await?
    }

    /// Announces through Kademlia that this node provides `contract`'s code and deltas.
    pub async fn provide(&self, contract: ContractAddress) -> Result<(), Error> {
        self.commands.send(Command::Provide(contract)).await.map_err(|_| Error::Stopped)
    }

    /// The peers Kademlia knows to provide `contract` (never this node; empty if none is found
    /// within a few seconds).
    pub async fn find_providers(&self, contract: ContractAddress) -> Result<Vec<PeerId>, Error> {
        let asked = self.ask(|tx| Command::FindProviders(contract, tx));
        tokio::time::timeout(PROVIDER_QUERY_TIMEOUT + Duration::from_secs(1), asked)
            .await
            .unwrap_or(Ok(Vec::new()))
    }

    /// Counts a misbehaviour against a peer (e.g. it served data that fails verification); at
    /// the strike limit it is disconnected and banned.
    pub async fn penalize(&self, peer: PeerId, why: &str) -> Result<(), Error> {
        self.commands
            .send(Command::Penalize(peer, why.to_owned()))
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Publishes raw bytes on a topic (tests use it to play a misbehaving peer).
    #[doc(hidden)]
    pub async fn publish_raw(&self, results_topic: bool, bytes: Vec<u8>) -> Result<(), Error> {
        let topic = if results_topic { RESULTS_TOPIC } else { WORKERS_TOPIC };
        self.ask(|tx| Command::Publish(topic, bytes, tx)).await?
    }

    /// Sends raw bytes as a task request (tests use it to play a misbehaving peer).
    #[doc(hidden)]
    pub async fn send_raw_task(&self, peer: PeerId, bytes: Vec<u8>) -> Result<TaskResponse, Error> {
        self.ask(|tx| Command::SendTask(peer, bytes, tx)).await?
    }

    /// Stops the service.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    tasks: request_response::Behaviour<BytesCodec>,
    sync: request_response::Behaviour<BytesCodec>,
}

fn build_behaviour(key: &Keypair, request_timeout: Duration) -> Result<Behaviour, Error> {
    let peer_id = key.public().to_peer_id();
    let gossip_config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(MAX_GOSSIP_BYTES)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .heartbeat_interval(Duration::from_millis(500))
        .build()
        .map_err(|e| Error::Start(e.to_string()))?;
    let mut gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_config,
    )
    .map_err(|e| Error::Start(e.to_string()))?;
    for topic in [WORKERS_TOPIC, RESULTS_TOPIC] {
        gossipsub
            .subscribe(&gossipsub::IdentTopic::new(topic))
            .map_err(|e| Error::Start(e.to_string()))?;
    }
    let mut kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
    kad_config.set_query_timeout(PROVIDER_QUERY_TIMEOUT);
    let store = kad::store::MemoryStore::with_config(
        peer_id,
        kad::store::MemoryStoreConfig {
            max_provided_keys: MAX_PROVIDER_KEYS,
            ..kad::store::MemoryStoreConfig::default()
        },
    );
    let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
    kad.set_mode(Some(kad::Mode::Server));
    let tasks = request_response::Behaviour::with_codec(
        BytesCodec { max_request: MAX_TASK_REQUEST_BYTES, max_response: MAX_TASK_RESPONSE_BYTES },
        [(StreamProtocol::new(TASK_PROTOCOL), ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(request_timeout),
    );
    let sync = request_response::Behaviour::with_codec(
        BytesCodec { max_request: MAX_SYNC_REQUEST_BYTES, max_response: MAX_SYNC_RESPONSE_BYTES },
        [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(request_timeout)
            .with_max_concurrent_streams(256),
    );
    Ok(Behaviour {
        identify: identify::Behaviour::new(identify::Config::new(
            IDENTIFY_PROTOCOL.into(),
            key.public(),
        )),
        kad,
        gossipsub,
        tasks,
        sync,
    })
}

/// Starts the service: listens, dials the bootstrap peers, and runs until shut down.
pub async fn spawn(config: Config) -> Result<(Handle, mpsc::Receiver<Event>), Error> {
    let peer_id = config.keypair.public().to_peer_id();
    let timeout = config.request_timeout;
    let mut swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| Error::Start(e.to_string()))?
        .with_behaviour(|key| {
            build_behaviour(key, timeout)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| Error::Start(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build();
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| Error::Listen { addr: addr.to_string(), reason: e.to_string() })?;
    }
    // Wait for the listeners to be up, so the handle reports real addresses at once.
    let mut listening = 0;
    while listening < config.listen.len() {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { .. } => listening += 1,
            SwarmEvent::ListenerError { error, .. } => {
                return Err(Error::Listen { addr: String::new(), reason: error.to_string() });
            }
            _ => {}
        }
    }
    for addr in &config.bootstrap {
        if let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() {
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        }
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, error = %e, "cannot dial bootstrap peer");
        }
    }
    let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    let service = Service {
        swarm,
        commands,
        commands_tx: commands_tx.clone(),
        events: events_tx,
        strikes: HashMap::new(),
        banned: HashMap::new(),
        max_strikes: config.max_strikes,
        inbound: HashMap::new(),
        next_inbound: 0,
        outbound: HashMap::new(),
        inbound_sync: HashMap::new(),
        outbound_sync: HashMap::new(),
        provider_queries: HashMap::new(),
        dials: Vec::new(),
    };
    tokio::spawn(service.run());
    Ok((Handle { commands: commands_tx, peer_id }, events))
}

struct Service {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    commands_tx: mpsc::Sender<Command>,
    events: mpsc::Sender<Event>,
    /// Strikes per peer: the count and when the first of the current window came.
    strikes: HashMap<PeerId, (u32, std::time::Instant)>,
    /// Banned peers and until when.
    banned: HashMap<PeerId, std::time::Instant>,
    max_strikes: u32,
    inbound: HashMap<u64, ResponseChannel<Vec<u8>>>,
    next_inbound: u64,
    outbound: HashMap<OutboundRequestId, (PeerId, oneshot::Sender<Result<TaskResponse, Error>>)>,
    inbound_sync: HashMap<u64, ResponseChannel<Vec<u8>>>,
    outbound_sync:
        HashMap<OutboundRequestId, (PeerId, oneshot::Sender<Result<SyncResponse, Error>>)>,
    provider_queries: HashMap<kad::QueryId, (HashSet<PeerId>, oneshot::Sender<Vec<PeerId>>)>,
    dials: Vec<(Multiaddr, oneshot::Sender<Result<(), Error>>)>,
}

impl Service {
    async fn run(mut self) {
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.command(command),
                },
                event = self.swarm.select_next_some() => self.swarm_event(event),
            }
        }
    }

    fn emit(&self, event: Event) {
        // Never block the swarm on a slow node: a full queue drops the event (a task request
        // dropped this way fails at its sender, who may retry).
        if let Err(e) = self.events.try_send(event) {
            tracing::warn!(error = %e, "event queue full; dropping a network event");
        }
    }

    fn strike(&mut self, peer: PeerId, why: &str) {
        let now = std::time::Instant::now();
        let entry = self.strikes.entry(peer).or_insert((0, now));
        // Strikes count within a window: an honest peer caught by a rare race is not banned
        // for it later.
        if now.duration_since(entry.1) > STRIKE_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
        let count = entry.0;
        tracing::warn!(%peer, strikes = count, why, "bad message from peer");
        if count >= self.max_strikes {
            self.strikes.remove(&peer);
            if self.banned.insert(peer, now + BAN_DURATION).is_none() {
                tracing::warn!(%peer, "banning peer for repeated bad messages");
            }
            let _ = self.swarm.disconnect_peer_id(peer);
            self.emit(Event::Banned(peer));
        }
        // Bounded: expired entries go first, then the oldest.
        if self.strikes.len() > MAX_TRACKED_PEERS {
            self.strikes.retain(|_, (_, first)| now.duration_since(*first) <= STRIKE_WINDOW);
            while self.strikes.len() > MAX_TRACKED_PEERS {
                let oldest = self.strikes.iter().min_by_key(|(_, (_, t))| *t).map(|(p, _)| *p);
                oldest.map(|p| self.strikes.remove(&p));
            }
        }
        if self.banned.len() > MAX_TRACKED_PEERS {
            self.banned.retain(|_, until| *until > now);
            while self.banned.len() > MAX_TRACKED_PEERS {
                let first = self.banned.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p);
                first.map(|p| self.banned.remove(&p));
            }
        }
    }

    fn is_banned(&mut self, peer: &PeerId) -> bool {
        match self.banned.get(peer) {
            Some(until) if *until > std::time::Instant::now() => true,
            Some(_) => {
                self.banned.remove(peer);
                false
            }
            None => false,
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::ListenAddrs(tx) => {
                let _ = tx.send(self.swarm.listeners().cloned().collect());
            }
            Command::Connected(tx) => {
                let _ = tx.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Dial(addr, tx) => match self.swarm.dial(addr.clone()) {
                Ok(()) => self.dials.push((addr, tx)),
                Err(e) => {
                    let _ = tx.send(Err(Error::Dial(format!("{addr}: {e}"))));
                }
            },
            Command::Publish(topic, bytes, tx) => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(gossipsub::IdentTopic::new(topic), bytes)
                    .map(|_| ())
                    .map_err(|e| Error::Publish(e.to_string()));
                let _ = tx.send(result);
            }
            Command::SendTask(peer, bytes, tx) => {
                let id = self.swarm.behaviour_mut().tasks.send_request(&peer, bytes);
                self.outbound.insert(id, (peer, tx));
            }
            Command::Respond { id, response } => {
                if let Some(channel) = self.inbound.remove(&id) {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .tasks
                        .send_response(channel, messages::encode(&response));
                }
            }
            Command::SendSync(peer, bytes, tx) => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, bytes);
                self.outbound_sync.insert(id, (peer, tx));
            }
            Command::RespondSync { id, response } => {
                if let Some(channel) = self.inbound_sync.remove(&id) {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, messages::encode(&response));
                }
            }
            Command::Provide(contract) => {
                if let Err(e) =
                    self.swarm.behaviour_mut().kad.start_providing(kad::RecordKey::new(&contract.0))
                {
                    tracing::warn!(%contract, error = %e, "cannot announce as a provider");
                }
            }
            Command::FindProviders(contract, tx) => {
                if self.provider_queries.len() >= MAX_PROVIDER_QUERIES {
                    let _ = tx.send(Vec::new());
                    return;
                }
                let id =
                    self.swarm.behaviour_mut().kad.get_providers(kad::RecordKey::new(&contract.0));
                self.provider_queries.insert(id, (HashSet::new(), tx));
            }
            Command::Penalize(peer, why) => self.strike(peer, &why),
            Command::Validate { id, from, verdict } => {
                let acceptance = match verdict {
                    Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                    Verdict::Reject => {
                        self.strike(from, "an invalid gossip message");
                        gossipsub::MessageAcceptance::Reject
                    }
                    Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &from, acceptance);
            }
            Command::Shutdown => {}
        }
    }

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                if self.is_banned(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                let addr = endpoint.get_remote_address().clone();
                let mut done = Vec::new();
                for (i, (a, _)) in self.dials.iter().enumerate() {
                    if a.iter().any(|p| p == libp2p::multiaddr::Protocol::P2p(peer_id))
                        || *a == addr
                    {
                        done.push(i);
                    }
                }
                for i in done.into_iter().rev() {
                    let (_, tx) = self.dials.remove(i);
                    let _ = tx.send(Ok(()));
                }
                if num_established.get() == 1 {
                    self.emit(Event::Connected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                self.emit(Event::Disconnected(peer_id));
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                let text = error.to_string();
                let mut failed = Vec::new();
                for (i, (a, _)) in self.dials.iter().enumerate() {
                    if peer_id
                        .is_some_and(|p| a.iter().any(|x| x == libp2p::multiaddr::Protocol::P2p(p)))
                        || peer_id.is_none()
                    {
                        failed.push(i);
                    }
                }
                for i in failed.into_iter().rev() {
                    let (a, tx) = self.dials.remove(i);
                    let _ = tx.send(Err(Error::Dial(format!("{a}: {text}"))));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let decoded = messages::decode::<GossipMessage>(&message.data, MAX_GOSSIP_BYTES)
                    .map_err(|e| e.to_string())
                    .and_then(|m| {
                        if m.topic() == message.topic.as_str() {
                            Ok(m)
                        } else {
                            Err("message on the wrong topic".into())
                        }
                    });
                match decoded {
                    // The node judges it (signatures, the chain) and reports the verdict.
                    Ok(m) => self.emit(Event::Gossip {
                        from: propagation_source,
                        message: m,
                        verdict: GossipVerdict {
                            id: message_id,
                            from: propagation_source,
                            commands: self.commands_tx.clone(),
                        },
                    }),
                    Err(why) => {
                        self.strike(propagation_source, &why);
                        self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            gossipsub::MessageAcceptance::Reject,
                        );
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Tasks(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request { request, channel, .. } => {
                    match messages::decode::<TaskRequest>(&request, MAX_TASK_REQUEST_BYTES as usize)
                    {
                        Err(e) => {
                            self.strike(peer, &e.to_string());
                            let answer =
                                TaskResponse::Rejected(format!("malformed task request: {e}"));
                            let _ = self
                                .swarm
                                .behaviour_mut()
                                .tasks
                                .send_response(channel, messages::encode(&answer));
                        }
                        Ok(_) if self.inbound.len() >= MAX_INBOUND_TASKS => {
                            let answer =
                                TaskResponse::Busy("the worker is busy; try again shortly".into());
                            let _ = self
                                .swarm
                                .behaviour_mut()
                                .tasks
                                .send_response(channel, messages::encode(&answer));
                        }
                        Ok(request) => {
                            let id = self.next_inbound;
                            self.next_inbound += 1;
                            self.inbound.insert(id, channel);
                            self.emit(Event::Task {
                                from: peer,
                                request,
                                reply: TaskReply { id, commands: self.commands_tx.clone() },
                            });
                        }
                    }
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((from, tx)) = self.outbound.remove(&request_id) {
                        let decoded = messages::decode::<TaskResponse>(
                            &response,
                            MAX_TASK_RESPONSE_BYTES as usize,
                        );
                        if decoded.is_err() {
                            self.strike(from, "malformed task response");
                        }
                        // The peer had the request: what it did with it is unknown.
                        let _ = tx.send(decoded.map_err(|e| Error::Unanswered {
                            peer: from.to_string(),
                            reason: format!("malformed answer: {e}"),
                        }));
                    }
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Tasks(
                request_response::Event::OutboundFailure { peer, request_id, error, .. },
            )) => {
                if let Some((_, tx)) = self.outbound.remove(&request_id) {
                    let (peer, reason) = (peer.to_string(), error.to_string());
                    // Only a request that never left (no connection, or the peer does not
                    // speak the protocol) is known not to have arrived; an I/O error may come
                    // after the request was written.
                    let delivered = !matches!(
                        error,
                        request_response::OutboundFailure::DialFailure
                            | request_response::OutboundFailure::UnsupportedProtocols
                    );
                    let _ = tx.send(Err(if delivered {
                        Error::Unanswered { peer, reason }
                    } else {
                        Error::Request { peer, reason }
                    }));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                ..
            })) => {
                let me = *self.swarm.local_peer_id();
                let last =
                    step.last || !matches!(result, Ok(kad::GetProvidersOk::FoundProviders { .. }));
                if let Some((found, _)) = self.provider_queries.get_mut(&id)
                    && let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = result
                {
                    found.extend(providers.into_iter().filter(|p| *p != me));
                }
                if last && let Some((found, tx)) = self.provider_queries.remove(&id) {
                    let _ = tx.send(found.into_iter().collect());
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                peer,
                message,
                ..
            })) => self.sync_message(peer, message),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::OutboundFailure { peer, request_id, error, .. },
            )) => {
                if let Some((_, tx)) = self.outbound_sync.remove(&request_id) {
                    let _ = tx.send(Err(Error::Request {
                        peer: peer.to_string(),
                        reason: error.to_string(),
                    }));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::InboundFailure { .. },
            )) => {
                self.inbound_sync.retain(|_, c| c.is_open());
            }
            SwarmEvent::Behaviour(BehaviourEvent::Tasks(
                request_response::Event::InboundFailure { peer, error, .. },
            )) => {
                // A request that breaks the protocol (over its size) is a strike; a stream the
                // requester dropped (it gave up, its link was cut) is not.
                if matches!(&error, request_response::InboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData)
                {
                    self.strike(peer, &error.to_string());
                }
                // Forget channels the node can no longer answer.
                self.inbound.retain(|_, c| c.is_open());
            }
            _ => {}
        }
    }

    fn sync_message(&mut self, peer: PeerId, message: request_response::Message<Vec<u8>, Vec<u8>>) {
        match message {
            request_response::Message::Request { request, channel, .. } => {
                let answer = match messages::decode::<SyncRequest>(
                    &request,
                    MAX_SYNC_REQUEST_BYTES as usize,
                ) {
                    Err(e) => {
                        self.strike(peer, &e.to_string());
                        SyncResponse::Unavailable(format!("malformed sync request: {e}"))
                    }
                    Ok(_) if self.inbound_sync.len() >= MAX_INBOUND_SYNC => {
                        SyncResponse::Unavailable(messages::BUSY.into())
                    }
                    Ok(request) => {
                        let id = self.next_inbound;
                        self.next_inbound += 1;
                        self.inbound_sync.insert(id, channel);
                        self.emit(Event::Sync {
                            from: peer,
                            request,
                            reply: SyncReply { id, commands: self.commands_tx.clone() },
                        });
                        return;
                    }
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, messages::encode(&answer));
            }
            request_response::Message::Response { request_id, response } => {
                if let Some((from, tx)) = self.outbound_sync.remove(&request_id) {
                    let decoded = messages::decode::<SyncResponse>(
                        &response,
                        MAX_SYNC_RESPONSE_BYTES as usize,
                    );
                    if decoded.is_err() {
                        self.strike(from, "malformed sync response");
                    }
                    let _ = tx.send(decoded.map_err(|e| Error::Request {
                        peer: from.to_string(),
                        reason: e.to_string(),
                    }));
                }
            }
        }
    }
}
