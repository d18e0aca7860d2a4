//! Chain reads shared by the requests that wait for them, none older than its request.
//!
//! Every query reads its contract's record from the chain (the delta tip it must run on). Under
//! load, a worker answering thousands of queries a second would send the chain as many reads of
//! the same record. Here the queries that arrive while a read of their key is on its way share
//! the next one, which starts as soon as that read is back: at most one read per key is on its
//! way, and each answer comes from a read that started after its request arrived, so sharing it
//! makes no answer staler than a read of its own would.

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::watch;

/// A read's outcome: the value, or why it failed (shared, so as text).
type Outcome<V> = Option<Result<V, String>>;

/// The reads on their way, by key.
pub(crate) struct SharedReads<K, V> {
    lines: Arc<Mutex<HashMap<K, Line<V>>>>,
}

/// One key's reads: whether one is on its way, and the next one its late comers wait for.
struct Line<V> {
    next: Option<watch::Sender<Outcome<V>>>,
}

impl<K, V> Default for SharedReads<K, V> {
    fn default() -> Self {
        Self { lines: Arc::new(Mutex::new(HashMap::new())) }
    }
}

impl<K, V> SharedReads<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// What `read` gives for `key`, from a read that starts now or, if one is on its way, as
    /// soon as it is back (shared with every request that came meanwhile). The reads run in a
    /// task of their own: a request that gives up does not stop them.
    pub(crate) async fn read<F, Fut>(&self, key: K, read: F) -> Result<V, String>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, String>> + Send + 'static,
    {
        let (mut waiting, lead) = {
            let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
            match lines.get_mut(&key) {
                // A read is on its way: wait for the one after it.
                Some(line) => match &line.next {
                    Some(next) => (next.subscribe(), None),
                    None => {
                        let (next, waiting) = watch::channel(None);
                        line.next = Some(next);
                        (waiting, None)
                    }
                },
                None => {
                    lines.insert(key.clone(), Line { next: None });
                    let (now, waiting) = watch::channel(None);
                    (waiting, Some(now))
                }
            }
        };
        if let Some(now) = lead {
            tokio::spawn(Self::run(self.lines.clone(), key, now, read));
        }
        let outcome = waiting
            .wait_for(Option::is_some)
            .await
            .map_err(|_| "the chain read was abandoned; retry".to_string())?;
        outcome.clone().unwrap_or_else(|| Err("the chain read gave nothing; retry".into()))
    }

    /// Reads for `key` while requests wait: each read's outcome to those waiting for it, then the
    /// next read for those who came meanwhile, until none did.
    async fn run<F, Fut>(
        lines: Arc<Mutex<HashMap<K, Line<V>>>>,
        key: K,
        mut now: watch::Sender<Outcome<V>>,
        read: F,
    ) where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, String>> + Send + 'static,
    {
        // Should a read panic, its key's line goes with it: those waiting are told (their
        // senders drop) and the next request reads afresh, instead of waiting for good.
        let mut gone = Forget { lines: lines.clone(), key: key.clone(), armed: true };
        loop {
            let outcome = read().await;
            // The line is settled before the outcome goes out: once idle, the key is gone by the
            // time its last request has its answer. Requests that came meanwhile wait for `next`.
            let next = {
                let mut lines = lines.lock().unwrap_or_else(PoisonError::into_inner);
                let next = lines.get_mut(&key).and_then(|line| line.next.take());
                if next.is_none() {
                    lines.remove(&key);
                    // Removed here, under the lock: a line a new request starts after this one
                    // is not this reader's to remove.
                    gone.armed = false;
                }
                next
            };
            now.send_replace(Some(outcome));
            match next {
                Some(next) => now = next,
                None => return,
            }
        }
    }
}

/// Removes a key's line when its reader ends other than by finishing (a panic).
struct Forget<K: Hash + Eq, V> {
    lines: Arc<Mutex<HashMap<K, Line<V>>>>,
    key: K,
    armed: bool,
}

impl<K: Hash + Eq, V> Drop for Forget<K, V> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Taken out before it drops (its senders wake their receivers), with the lock released.
        let line = self.lines.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
        drop(line);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// Requests that arrive while a read is on its way share the next read, and none gets a
    /// value read before it arrived.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_share_the_next_read_and_none_gets_an_older_one() {
        let reads = Arc::new(SharedReads::<u8, u64>::default());
        // The "chain": a counter that each read returns and bumps, so a value tells which read
        // gave it. The first read holds until released.
        let count = Arc::new(AtomicU64::new(0));
        let (release, released) = watch::channel(false);
        let read = {
            let (count, released) = (count.clone(), released.clone());
            move || {
                let (count, mut released) = (count.clone(), released.clone());
                async move {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    if n == 0 {
                        released.wait_for(|r| *r).await.map_err(|e| e.to_string())?;
                    }
                    Ok(n)
                }
            }
        };
        let first = tokio::spawn({
            let (reads, read) = (reads.clone(), read.clone());
            async move { reads.read(1, read).await }
        });
        while count.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Twenty requests arrive while read 0 is on its way.
        let late: Vec<_> = (0..20)
            .map(|_| {
                let (reads, read) = (reads.clone(), read.clone());
                tokio::spawn(async move { reads.read(1, read).await })
            })
            .collect();
        let waiting = || {
            reads
                .lines
                .lock()
                .unwrap()
                .get(&1)
                .and_then(|l| l.next.as_ref())
                .map(|n| n.receiver_count())
        };
        while waiting() != Some(20) {
            tokio::task::yield_now().await;
        }
        // Another key is read apart, at once.
        assert_eq!(reads.read(2, read.clone()).await, Ok(1));
        release.send_replace(true);
        assert_eq!(first.await.unwrap(), Ok(0));
        for l in late {
            assert_eq!(l.await.unwrap(), Ok(2), "the late comers share the read after read 0");
        }
        assert_eq!(count.load(Ordering::SeqCst), 3, "three reads for 22 requests");
        // Once idle, a request reads afresh.
        assert_eq!(reads.read(1, read).await, Ok(3));
        assert!(reads.lines.lock().unwrap().is_empty(), "nothing is kept once idle");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_that_panics_leaves_no_request_waiting_for_good() {
        let reads = Arc::new(SharedReads::<u8, u64>::default());
        let (release, released) = watch::channel(false);
        let panicking = move || {
            let mut released = released.clone();
            async move {
                let _ = released.wait_for(|r| *r).await;
                panic!("a reader that panics");
            }
        };
        let first = tokio::spawn({
            let (reads, read) = (reads.clone(), panicking.clone());
            async move { reads.read(1, read).await }
        });
        while reads.lines.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let late = tokio::spawn({
            let (reads, read) = (reads.clone(), panicking.clone());
            async move { reads.read(1, read).await }
        });
        while reads.lines.lock().unwrap().get(&1).is_none_or(|l| l.next.is_none()) {
            tokio::task::yield_now().await;
        }
        release.send_replace(true);
        assert!(first.await.unwrap().is_err(), "told the read was abandoned");
        assert!(late.await.unwrap().is_err(), "the one waiting for the next read too");
        assert_eq!(reads.read(1, || async { Ok(7) }).await, Ok(7), "and later ones read afresh");
    }

    #[tokio::test]
    async fn a_failed_read_is_told_to_its_requests() {
        let reads = SharedReads::<u8, u64>::default();
        let failing = || async { Err::<u64, _>("the node is down".to_string()) };
        assert_eq!(reads.read(1, failing).await, Err("the node is down".into()));
        assert_eq!(reads.read(1, || async { Ok(5) }).await, Ok(5), "and the next one reads again");
    }
}
