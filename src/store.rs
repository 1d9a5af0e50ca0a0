//! The room store: what a restart (an upgrade, a crash, a power cut) must not lose.
//!
//! One JSON file, `rooms.json` in the state directory, holding each room's name, password hash,
//! lock, removed identities, seats (identity, token, name, host) and idle time. It is rewritten
//! whole (a few KiB; 2,048 full rooms are under 2 MiB), at most once a second after a change,
//! through a temp file, fsync and rename: a `kill -9` at any moment leaves the old file or the
//! new one, never a torn or empty one. Chat and media state are deliberately not kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::protocol::{ClientId, Name};
use crate::rooms::RoomName;
use crate::state::State;

pub const FILE: &str = "rooms.json";
/// The store's format; a file with another version is set aside, not misread.
const VERSION: u32 = 1;
/// How often the writer looks for changes.
const DEBOUNCE: Duration = Duration::from_secs(1);
/// Rooms are rewritten this often even without a change, so idle times stay current.
const REFRESH: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRoom {
    pub name: RoomName,
    pub idle_secs: u64,
    pub password: Option<String>,
    pub locked: bool,
    pub removed: Vec<ClientId>,
    pub seats: Vec<SavedSeat>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSeat {
    pub id: u64,
    pub client: ClientId,
    pub token: String,
    pub name: Name,
    pub host: bool,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    /// Unix seconds when written, to add the downtime to every room's idle time.
    saved_at: u64,
    rooms: Vec<SavedRoom>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Writes the rooms atomically (temp file, fsync, rename, fsync of the directory).
pub fn write(dir: &Path, rooms: Vec<SavedRoom>) -> std::io::Result<()> {
    let file = File {
        version: VERSION,
        saved_at: unix_now(),
        rooms,
    };
    let json = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    crate::state_dir::write_private(&dir.join(FILE), &json)
}

/// Reads the store: the rooms and how long the server was down. A missing file is an empty
/// store; an unreadable one is renamed aside (kept for a human) and the server starts empty.
pub fn read(dir: &Path) -> (Vec<SavedRoom>, Duration) {
    let path = dir.join(FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), Duration::ZERO),
        Err(e) => {
            log::warn!(
                "cannot read {} ({e}): starting with no rooms",
                path.display()
            );
            return (Vec::new(), Duration::ZERO);
        }
    };
    match serde_json::from_slice::<File>(&bytes) {
        Ok(file) if file.version == VERSION => {
            let down = Duration::from_secs(unix_now().saturating_sub(file.saved_at));
            (file.rooms, down)
        }
        result => {
            let why = match result {
                Ok(file) => format!("format version {}", file.version),
                Err(e) => e.to_string(),
            };
            let aside = aside_name(&path);
            log::warn!(
                "{} is not a room store this version reads ({why}): moved to {}, starting with no rooms",
                path.display(),
                aside.display()
            );
            let _ = std::fs::rename(&path, &aside);
            (Vec::new(), Duration::ZERO)
        }
    }
}

fn aside_name(path: &Path) -> PathBuf {
    path.with_extension(format!("json.unreadable-{}", unix_now()))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("videomeet-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn room(name: &str) -> SavedRoom {
        SavedRoom {
            name: RoomName::try_from(name).unwrap(),
            idle_secs: 5,
            password: None,
            locked: true,
            removed: vec![ClientId::try_from("gone-client").unwrap()],
            seats: vec![SavedSeat {
                id: 42,
                client: ClientId::try_from("client-1").unwrap(),
                token: "ab".repeat(16),
                name: Name::try_from("Ada").unwrap(),
                host: true,
            }],
        }
    }

    #[test]
    fn round_trips() {
        let dir = dir("round");
        assert_eq!(read(&dir).0, Vec::new(), "no file: no rooms");
        write(&dir, vec![room("family"), room("team")]).unwrap();
        let (rooms, down) = read(&dir);
        assert_eq!(rooms, vec![room("family"), room("team")]);
        assert!(down < Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_file_is_set_aside_not_misread() {
        let dir = dir("damaged");
        for junk in [
            &b"{\"version\":1,\"saved_at\":1,\"rooms\":[{\"na"[..],
            b"",
            b"{\"version\":99,\"saved_at\":1,\"rooms\":[]}",
        ] {
            std::fs::write(dir.join(FILE), junk).unwrap();
            assert_eq!(read(&dir).0, Vec::new());
            assert!(!dir.join(FILE).exists(), "moved aside");
        }
        let kept = std::fs::read_dir(&dir).unwrap().count();
        assert!(kept >= 1, "the damaged file is kept for a human to look at");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
