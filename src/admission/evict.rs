//! HTTP connections in the order they came, so that when the connection arena is full the
//! oldest can be asked to go and a newcomer's page still loads.
//!
//! Why the oldest: page loads take milliseconds and upgraded WebSockets leave the arena, so a
//! connection that has been in it longest is a header trickler or an idle keep-alive, whose
//! closing costs an honest browser nothing (it reconnects). An attacker must then open
//! connections as fast as the arena turns over, within each address's connection rate, instead
//! of sitting on them. A connection younger than [`MIN_AGE`] is never told to go, so a page load
//! or a WebSocket upgrade that got in can finish, however fast an attacker churns.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long a connection is safe from being told to go.
pub const MIN_AGE: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Oldest {
    queue: Mutex<VecDeque<(Instant, Weak<Notify>)>>,
}

impl Oldest {
    /// Notes a new connection; `hint` is about how many are open at most, past which entries
    /// of connections already gone are dropped.
    pub fn push(&self, go: &Arc<Notify>, hint: usize, now: Instant) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.len() >= hint.max(16) * 2 {
            queue.retain(|(_, w)| w.strong_count() > 0);
        }
        queue.push_back((now, Arc::downgrade(go)));
    }

    /// Tells the oldest connection still open to close, if it is older than [`MIN_AGE`].
    /// False if there is none.
    pub fn evict_oldest(&self, now: Instant) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((since, weak)) = queue.front() {
            if weak.strong_count() == 0 {
                queue.pop_front();
                continue;
            }
            if now.saturating_duration_since(*since) < MIN_AGE {
                return false;
            }
            let go = weak.upgrade();
            queue.pop_front();
            if let Some(go) = go {
                go.notify_one();
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_live_connection_is_told_first() {
        let q = Oldest::default();
        let t = Instant::now();
        let later = t + MIN_AGE;
        let (a, b, c) = (
            Arc::new(Notify::new()),
            Arc::new(Notify::new()),
            Arc::new(Notify::new()),
        );
        q.push(&a, 4, t);
        q.push(&b, 4, t);
        q.push(&c, 4, t + Duration::from_millis(10));
        drop(a); // ended by itself
        assert!(!q.evict_oldest(t), "nobody is old enough yet");
        assert!(q.evict_oldest(later));
        // b was told (its permit is stored), c was not.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(50), b.notified())
                .await
                .expect("b told");
            assert!(
                tokio::time::timeout(std::time::Duration::from_millis(50), c.notified())
                    .await
                    .is_err(),
                "c not told"
            );
        });
        assert!(!q.evict_oldest(later), "c is 10 ms younger");
        assert!(q.evict_oldest(later + Duration::from_millis(10)), "c next");
        drop((b, c));
        assert!(!q.evict_oldest(later + MIN_AGE), "none left");
    }
}
