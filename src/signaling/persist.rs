//! The room store's two tasks on the live room map: load it at start, write it after changes.
//! The file itself (format, salvage, the atomic write) is `ops::store`'s; these are the part that
//! holds the room lock, for microseconds, and never across the write.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::ops::store::{read, write, DEBOUNCE, FILE, REFRESH};
use crate::signaling::state::State;

/// Loads the store into the room map at start.
pub fn load(state: &State, dir: &Path) {
    let (saved, down) = read(dir);
    if saved.is_empty() {
        return;
    }
    let (rooms, seats) = state.rooms().restore(saved, down, Instant::now());
    log::info!(
        "restored {rooms} rooms and {seats} seats from {} (down {} s); seats wait {} s for their owners",
        dir.join(FILE).display(),
        down.as_secs(),
        state.limits().seat_grace_secs
    );
}

/// Writes the store after changes (at most once per [`DEBOUNCE`]) and once more at shutdown.
pub async fn writer(state: Arc<State>, dir: PathBuf, _done: mpsc::Sender<()>) {
    let mut written = state.rooms().changes();
    let mut last_write = Instant::now();
    let mut tick = tokio::time::interval(DEBOUNCE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            () = state.stopped() => true,
        };
        let (changes, saved) = {
            let rooms = state.rooms();
            let changes = rooms.changes();
            let due = changes != written
                || stopping
                || (rooms.room_count() > 0 && last_write.elapsed() >= REFRESH);
            if !due {
                continue;
            }
            (changes, rooms.save(Instant::now()))
        };
        let target = dir.clone();
        let result = tokio::task::spawn_blocking(move || write(&target, saved)).await;
        match result {
            Ok(Ok(())) => {
                written = changes;
                last_write = Instant::now();
            }
            Ok(Err(e)) => log::warn!("cannot write the room store: {e}"),
            Err(e) => log::warn!("room store writer failed: {e}"),
        }
        if stopping {
            return;
        }
    }
}
