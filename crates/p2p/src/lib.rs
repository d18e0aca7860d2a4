//! The enigma peer-to-peer network on libp2p: Noise + Yamux over TCP, identify, Kademlia with
//! bootstrap peers, gossipsub for worker announcements and results, and request-response for
//! task routing (`/enigma/task/1`) and state sync (`/enigma/sync/1`, providers found
//! through Kademlia). No business logic: the node decides what to do with what
//! arrives.
//!
//! [`spawn`] starts a swarm service and returns a [`Handle`] (commands) and a bounded stream of
//! [`Event`]s. Every message is versioned and size-bounded ([`messages`]). A peer that sends
//! something that does not decode gets a strike; at [`Config::max_strikes`] it is disconnected
//! and banned. Nothing a peer sends can block the service: inbound work beyond the bounds is
//! answered "busy" or dropped.
//!
//! ```no_run
//! # async fn run() -> Result<(), enigma_p2p::Error> {
//! use enigma_p2p::{Config, Event, spawn};
//!
//! let (handle, mut events) = spawn(Config::default()).await?;
//! println!("listening as {} on {:?}", handle.peer_id(), handle.listen_addrs().await?);
//! while let Some(event) = events.recv().await {
//!     if let Event::Task { request, reply, .. } = event {
//!         reply.send(enigma_p2p::TaskResponse::Rejected(format!("not now: {request:?}"))).await;
//!     }
//! }
//! # Ok(()) }
//! ```

mod codec;
pub mod messages;
pub mod rpc;
mod service;

pub use libp2p::{Multiaddr, PeerId, identity::Keypair, multiaddr::Protocol};
pub use messages::{
    GossipMessage, QueryAnswerMessage, QueryMessage, ResultMessage, SyncRequest, SyncResponse,
    TaskRequest, TaskResponse, WorkerAnnouncement,
};
pub use service::{
    Config, Error, Event, GossipVerdict, Handle, MAX_PROVIDER_KEYS, SyncReply, TaskReply, Verdict,
    spawn,
};
