//! The room store: what a restart (an upgrade, a crash, a power cut) must not lose.
//!
//! One JSON file, `rooms.json` in the state directory, holding each room's name, password hash,
//! lock, removed identities, seats (identity, token, name, host) and idle time. It is rewritten
//! whole (a few KiB; 2,048 full rooms are under 2 MiB), at most once a second after a change,
//! through a temp file, fsync and rename: a `kill -9` at any moment leaves the old file or the
//! new one, never a torn or empty one. Chat and media state are deliberately not kept.
//!
//! What a damaged disk cannot undo (issue 13): the file is read room by room, so one unreadable
//! entry costs that room, not every room; the generation before (`rooms.json.prev`, the file each
//! write replaces, kept by a hard link) stands in for what the current one lost; and a room taken
//! from it comes back *locked* unless the current file still shows which protection the room
//! had, since the previous generation may predate a password or a removal. See [`read`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::core::ids::ClientId;
use crate::core::rooms::RoomName;
use crate::util::time::unix_now;

pub use crate::core::snapshot::{SavedDenial, SavedKnock, SavedRemoval, SavedRoom, SavedSeat};

pub const FILE: &str = "rooms.json";
/// The generation before the current one: what `rooms.json` held before the last write.
pub const PREV: &str = "rooms.json.prev";
/// The store's format; a file with another version is set aside, not misread.
const VERSION: u32 = 1;
/// How often the writer looks for changes.
pub const DEBOUNCE: Duration = Duration::from_secs(1);
/// Rooms are rewritten this often even without a change, so idle times stay current.
pub const REFRESH: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct File {
    version: u32,
    /// Unix seconds when written, to add the downtime to every room's idle time.
    saved_at: u64,
    rooms: Vec<SavedRoom>,
}

/// [`File`] as read: each room is kept as raw JSON and read on its own.
#[derive(Deserialize)]
struct RawFile<'a> {
    version: u32,
    saved_at: u64,
    #[serde(borrow)]
    rooms: Vec<&'a RawValue>,
}

/// What can still be read of a room entry that does not read whole: each field on its own.
/// `None` is "unreadable"; `Some(None)` of the password is "readable: no password".
#[derive(Debug, Default)]
struct Salvage {
    name: Option<RoomName>,
    idle_secs: Option<u64>,
    password: Option<Option<String>>,
    locked: Option<bool>,
    /// Missing (an older store) reads as allowed, like the full entry does; unreadable as off,
    /// since it may have been the host's no.
    recording_off: Option<bool>,
    removed: Option<Vec<ClientId>>,
    /// Missing (an older store) reads as none, like the full entry does.
    removed_addrs: Option<Vec<SavedRemoval>>,
    seats: Option<Vec<SavedSeat>>,
    /// Who made the room; unreadable only loosens the room cap, so it is not a protection.
    creator: Option<Option<std::net::IpAddr>>,
    /// "Ask to join"; missing (an older store) reads as off, unreadable locks the room.
    ask: Option<bool>,
    /// Knocks and denials are not protections: unreadable, they are dropped.
    knocks: Option<Vec<SavedKnock>>,
    denied: Option<Vec<SavedDenial>>,
}

impl Salvage {
    fn of(entry: &RawValue) -> Salvage {
        // Each field as raw JSON, then read on its own with the same `from_str` the whole entry
        // is read with, so this adds little code (a `serde_json::Value` pass made the release
        // binary 19,200 bytes larger).
        #[derive(Deserialize)]
        struct Fields<'a> {
            #[serde(borrow)]
            name: Option<&'a RawValue>,
            #[serde(borrow)]
            idle_secs: Option<&'a RawValue>,
            #[serde(borrow)]
            password: Option<&'a RawValue>,
            #[serde(borrow)]
            locked: Option<&'a RawValue>,
            #[serde(borrow)]
            recording_off: Option<&'a RawValue>,
            #[serde(borrow)]
            removed: Option<&'a RawValue>,
            #[serde(borrow)]
            removed_addrs: Option<&'a RawValue>,
            #[serde(borrow)]
            seats: Option<&'a RawValue>,
            #[serde(borrow)]
            creator: Option<&'a RawValue>,
            #[serde(borrow)]
            ask: Option<&'a RawValue>,
            #[serde(borrow)]
            knocks: Option<&'a RawValue>,
            #[serde(borrow)]
            denied: Option<&'a RawValue>,
        }
        fn field<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
            raw.and_then(|raw| serde_json::from_str(raw.get()).ok())
        }
        let Ok(fields) = serde_json::from_str::<Fields<'_>>(entry.get()) else {
            return Salvage::default();
        };
        Salvage {
            name: field(fields.name),
            idle_secs: field(fields.idle_secs),
            password: field(fields.password),
            locked: field(fields.locked),
            recording_off: match fields.recording_off {
                None => Some(false),
                raw => field(raw),
            },
            removed: field(fields.removed),
            removed_addrs: match fields.removed_addrs {
                None => Some(Vec::new()),
                raw => field(raw),
            },
            seats: field(fields.seats),
            creator: field(fields.creator),
            ask: match fields.ask {
                None => Some(false),
                raw => field(raw),
            },
            knocks: field(fields.knocks),
            denied: field(fields.denied),
        }
    }

    /// The room as far as it can be trusted: `base` (its previous generation, or an empty room)
    /// under every field still readable here. A protection field (password, lock, removals)
    /// that is unreadable here may hold what `base` lacks, so the room is then locked.
    fn over(self, base: SavedRoom) -> SavedRoom {
        let mut room = base;
        if let Some(idle) = self.idle_secs {
            room.idle_secs = idle;
        }
        match self.password {
            Some(password) => room.password = password,
            None => room.locked = true,
        }
        match self.locked {
            Some(locked) => room.locked |= locked,
            None => room.locked = true,
        }
        // Recording off is kept if either generation says so, or if this one cannot be read.
        room.recording_off |= self.recording_off.unwrap_or(true);
        match self.removed {
            Some(removed) => {
                for client in removed {
                    if !room.removed.contains(&client) {
                        room.removed.push(client);
                    }
                }
            }
            None => room.locked = true,
        }
        match self.removed_addrs {
            Some(removed) => {
                for entry in removed {
                    if !room.removed_addrs.iter().any(|r| r.addr == entry.addr) {
                        room.removed_addrs.push(entry);
                    }
                }
            }
            None => room.locked = true,
        }
        if let Some(seats) = self.seats {
            room.seats = seats;
        }
        if let Some(creator) = self.creator {
            room.creator = creator;
        }
        match self.ask {
            Some(ask) => room.ask |= ask,
            None => room.locked = true,
        }
        if let Some(knocks) = self.knocks {
            room.knocks = knocks;
        }
        if let Some(denied) = self.denied {
            room.denied = denied;
        }
        room
    }
}

fn empty_room(name: RoomName) -> SavedRoom {
    SavedRoom {
        name,
        idle_secs: 0,
        password: None,
        locked: false,
        recording_off: false,
        removed: Vec::new(),
        removed_addrs: Vec::new(),
        creator: None,
        ask: false,
        knocks: Vec::new(),
        denied: Vec::new(),
        seats: Vec::new(),
    }
}

/// One generation of the store, read room by room.
struct Generation {
    saved_at: u64,
    rooms: Vec<SavedRoom>,
    /// Entries that did not read whole, with what could be read of them.
    damaged: Vec<Salvage>,
}

/// Why a generation could not be read at all.
enum Unread {
    Missing,
    Broken(String),
}

fn read_generation(path: &Path) -> Result<Generation, Unread> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unread::Missing),
        Err(e) => return Err(Unread::Broken(e.to_string())),
    };
    let raw: RawFile<'_> =
        serde_json::from_slice(&bytes).map_err(|e| Unread::Broken(e.to_string()))?;
    if raw.version != VERSION {
        return Err(Unread::Broken(format!("format version {}", raw.version)));
    }
    let mut generation = Generation {
        saved_at: raw.saved_at,
        rooms: Vec::new(),
        damaged: Vec::new(),
    };
    for (index, entry) in raw.rooms.into_iter().enumerate() {
        match serde_json::from_str::<SavedRoom>(entry.get()) {
            Ok(room) => generation.rooms.push(room),
            Err(e) => {
                let salvage = Salvage::of(entry);
                log::warn!(
                    "{}: room entry {index} ({}) is unreadable: {e}",
                    path.display(),
                    salvage.name.as_deref().unwrap_or("name unreadable")
                );
                generation.damaged.push(salvage);
            }
        }
    }
    Ok(generation)
}

/// Writes the rooms atomically (temp file, fsync, rename, fsync of the directory), after
/// keeping the file it replaces as [`PREV`]. The old file is hard-linked there (copied where
/// links are not possible), so there is a `rooms.json` at every instant.
pub fn write(dir: &Path, rooms: Vec<SavedRoom>) -> std::io::Result<()> {
    let file = File {
        version: VERSION,
        saved_at: unix_now(),
        rooms,
    };
    let json = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    let (current, prev, staged) = (
        dir.join(FILE),
        dir.join(PREV),
        dir.join("rooms.json.prev.new"),
    );
    if current.exists() {
        let _ = std::fs::remove_file(&staged);
        std::fs::hard_link(&current, &staged)
            .or_else(|_| std::fs::copy(&current, &staged).map(|_| ()))?;
        std::fs::rename(&staged, &prev)?;
    }
    crate::ops::state_dir::write_private(&current, &json)
}

/// Reads the store: the rooms and how long the server was down.
///
/// The current file is read room by room. If it reads whole, that is the store. Otherwise it is
/// moved aside (kept for a human; the next write then keeps [`PREV`] as it is) and the previous
/// generation fills in:
/// - a damaged entry whose name can be read is that room's previous entry (or an empty room)
///   under every field the damaged entry still shows; if its password, lock or removals cannot
///   be read, the room comes back locked (`Salvage::over`);
/// - rooms only the previous generation has (the current file unreadable as a whole, or an
///   entry without a readable name) come back from it locked, passwords and seats kept;
/// - a room known in neither generation cannot be brought back.
///
/// Locked rooms let their seated people resume with their tokens (host rights included, so the
/// host can unlock) and tell newcomers `locked`; an empty one expires after the room TTL.
pub fn read(dir: &Path) -> (Vec<SavedRoom>, Duration) {
    let path = dir.join(FILE);
    let mut current_missing = false;
    let current = match read_generation(&path) {
        Ok(generation) if generation.damaged.is_empty() => {
            let down = Duration::from_secs(unix_now().saturating_sub(generation.saved_at));
            return (generation.rooms, down);
        }
        Ok(generation) => Some(generation),
        Err(Unread::Missing) => {
            current_missing = true;
            None
        }
        Err(Unread::Broken(why)) => {
            log::warn!(
                "{} is not a room store this version reads ({why})",
                path.display()
            );
            None
        }
    };
    if path.exists() {
        let aside = aside_name(&path);
        log::warn!(
            "{} moved to {} for a human to look at",
            path.display(),
            aside.display()
        );
        let _ = std::fs::rename(&path, &aside);
    }
    let prev = read_generation(&dir.join(PREV)).ok();
    if current.is_none() && prev.is_none() {
        if !current_missing {
            log::warn!("no readable room store: starting with no rooms");
        }
        return (Vec::new(), Duration::ZERO);
    }
    let whole_lost = current.is_none();
    let now = unix_now();
    let (saved_at, mut rooms, damaged) = match current {
        Some(generation) => (generation.saved_at, generation.rooms, generation.damaged),
        None => (
            prev.as_ref().map_or(now, |p| p.saved_at),
            Vec::new(),
            Vec::new(),
        ),
    };
    let mut from_prev: Vec<SavedRoom> = Vec::new();
    let mut prev_damaged: Vec<Salvage> = Vec::new();
    if let Some(prev) = prev {
        // The previous generation's rooms were idle for longer by the time between the writes.
        let older = saved_at.saturating_sub(prev.saved_at);
        from_prev = prev
            .rooms
            .into_iter()
            .map(|mut room| {
                room.idle_secs += older;
                room
            })
            .collect();
        prev_damaged = prev.damaged;
    }
    let mut recovered = 0;
    let unnamed = damaged.iter().any(|d| d.name.is_none());
    for salvage in damaged {
        let Some(name) = salvage.name.clone() else {
            continue;
        };
        let base = match from_prev.iter().position(|r| r.name == name) {
            Some(i) => from_prev.swap_remove(i),
            None => empty_room(name.clone()),
        };
        let room = salvage.over(base);
        log::warn!(
            "room {name}: restored from what was readable{}",
            if room.locked { ", locked" } else { "" }
        );
        rooms.push(room);
        recovered += 1;
    }
    if whole_lost || unnamed {
        // The current file lost rooms it cannot name: any of the previous generation's rooms
        // it does not have may be one, with a protection added since. Locked, to be safe.
        for mut room in from_prev {
            if rooms.iter().any(|r| r.name == room.name) {
                continue;
            }
            log::warn!("room {}: restored from {PREV}, locked", room.name);
            room.locked = true;
            rooms.push(room);
            recovered += 1;
        }
        for salvage in prev_damaged {
            if let Some(name) = salvage.name.clone() {
                if !rooms.iter().any(|r| r.name == name) {
                    let mut room = salvage.over(empty_room(name));
                    room.locked = true;
                    rooms.push(room);
                    recovered += 1;
                }
            }
        }
    }
    log::warn!("room store: {recovered} rooms recovered with the previous generation's help");
    let down = Duration::from_secs(now.saturating_sub(saved_at));
    (rooms, down)
}

fn aside_name(path: &Path) -> PathBuf {
    path.with_extension(format!("json.unreadable-{}", unix_now()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::Name;

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
            recording_off: false,
            removed: vec![ClientId::try_from("gone-client").unwrap()],
            removed_addrs: vec![SavedRemoval {
                addr: "203.0.113.7".parse().unwrap(),
                known: vec![ClientId::try_from("housemate").unwrap()],
            }],
            creator: Some("198.51.100.4".parse().unwrap()),
            ask: true,
            knocks: vec![SavedKnock {
                id: 43,
                client: ClientId::try_from("knocker-1").unwrap(),
                token: "cd".repeat(16),
                name: Name::try_from("Cy").unwrap(),
                admitted: false,
            }],
            denied: vec![SavedDenial {
                client: ClientId::try_from("denied-1").unwrap(),
                addr: Some("192.0.2.8".parse().unwrap()),
                secs_left: 40,
            }],
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

    fn protected(name: &str, password: &str) -> SavedRoom {
        SavedRoom {
            password: Some(password.into()),
            locked: false,
            ..room(name)
        }
    }

    /// Writes `rooms.json` with these raw entries (JSON text each).
    fn write_raw(dir: &Path, entries: &[String]) {
        let text = format!(
            "{{\"version\":1,\"saved_at\":{},\"rooms\":[{}]}}",
            unix_now(),
            entries.join(",")
        );
        std::fs::write(dir.join(FILE), text).unwrap();
    }

    fn json(room: &SavedRoom) -> String {
        serde_json::to_string(room).unwrap()
    }

    fn find<'a>(rooms: &'a [SavedRoom], name: &str) -> &'a SavedRoom {
        rooms
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} in {rooms:?}"))
    }

    #[test]
    fn each_write_keeps_the_one_before() {
        let dir = dir("generations");
        write(&dir, vec![room("first")]).unwrap();
        assert!(!dir.join(PREV).exists(), "nothing before the first");
        write(&dir, vec![room("second")]).unwrap();
        let prev = read_generation(&dir.join(PREV)).ok().unwrap();
        assert_eq!(prev.rooms, vec![room("first")]);
        assert_eq!(read(&dir).0, vec![room("second")]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_damaged_entry_costs_only_that_room_and_the_previous_generation_fills_in() {
        let dir = dir("one-entry");
        write(
            &dir,
            vec![protected("family", "hash-a"), protected("team", "hash-b")],
        )
        .unwrap();
        write(
            &dir,
            vec![protected("family", "hash-a"), protected("team", "hash-b")],
        )
        .unwrap();
        // "team": seats damaged, protection readable; "family" whole; "club" damaged in its
        // lock, with no previous entry.
        let mut team = serde_json::to_value(protected("team", "hash-b")).unwrap();
        team["seats"] = serde_json::json!("garbage");
        let club = r#"{"name":"club","idle_secs":1,"password":null,"locked":"maybe","removed":[],"seats":[]}"#;
        write_raw(
            &dir,
            &[
                json(&protected("family", "hash-a")),
                team.to_string(),
                club.into(),
            ],
        );
        let (rooms, _) = read(&dir);
        assert_eq!(rooms.len(), 3, "{rooms:?}");
        assert_eq!(find(&rooms, "family"), &protected("family", "hash-a"));
        let team = find(&rooms, "team");
        assert_eq!(team.password.as_deref(), Some("hash-b"));
        assert!(!team.locked, "its protection was readable");
        assert_eq!(
            team.seats,
            room("team").seats,
            "the previous generation's seats"
        );
        let club = find(&rooms, "club");
        assert!(club.locked, "its lock was unreadable: locked");
        assert!(std::fs::read_dir(&dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("unreadable")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn recording_off_is_kept_an_older_entry_allows_it_and_an_unreadable_one_turns_it_off() {
        let dir = dir("recording-field");
        let mut off = room("off");
        off.recording_off = true;
        write(&dir, vec![off.clone(), room("old"), room("odd")]).unwrap();
        assert_eq!(find(&read(&dir).0, "off"), &off, "written and read whole");
        // "old": written before the field existed; "odd": the field damaged (the rest is whole).
        let mut old = serde_json::to_value(room("old")).unwrap();
        old.as_object_mut().unwrap().remove("recording_off");
        let mut odd = serde_json::to_value(room("odd")).unwrap();
        odd["recording_off"] = serde_json::json!("maybe");
        write_raw(&dir, &[json(&off), old.to_string(), odd.to_string()]);
        let (rooms, _) = read(&dir);
        assert!(find(&rooms, "off").recording_off);
        assert!(
            !find(&rooms, "old").recording_off,
            "an older store allows recording"
        );
        assert!(
            find(&rooms, "odd").recording_off,
            "unreadable: maybe the host's no"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unreadable_password_never_comes_back_as_no_password() {
        let dir = dir("password-field");
        // The previous generation predates the password.
        write(
            &dir,
            vec![SavedRoom {
                locked: false,
                ..room("family")
            }],
        )
        .unwrap();
        write(&dir, vec![protected("family", "hash-a")]).unwrap();
        let mut family = serde_json::to_value(protected("family", "hash-a")).unwrap();
        family["password"] = serde_json::json!(42);
        write_raw(&dir, &[family.to_string()]);
        let (rooms, _) = read(&dir);
        let family = find(&rooms, "family");
        assert!(family.locked, "{family:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_wholly_unreadable_file_falls_back_to_the_previous_generation_locked() {
        let dir = dir("whole");
        write(
            &dir,
            vec![
                protected("family", "hash-a"),
                SavedRoom {
                    locked: false,
                    ..room("open")
                },
            ],
        )
        .unwrap();
        write(&dir, vec![protected("family", "hash-a")]).unwrap();
        std::fs::write(
            dir.join(FILE),
            b"{\"version\":1,\"saved_at\":1,\"rooms\":[{\"na",
        )
        .unwrap();
        let (rooms, _) = read(&dir);
        let family = find(&rooms, "family");
        assert_eq!(family.password.as_deref(), Some("hash-a"));
        assert!(family.locked);
        assert!(
            find(&rooms, "open").locked,
            "it may have had a password since: locked"
        );
        // The damaged file went aside, so the next write keeps the good previous generation.
        write(&dir, rooms.clone()).unwrap();
        assert_eq!(
            read_generation(&dir.join(PREV)).ok().unwrap().rooms.len(),
            2
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_entry_without_a_readable_name_brings_back_the_rooms_only_the_previous_one_has() {
        let dir = dir("unnamed");
        write(
            &dir,
            vec![protected("family", "hash-a"), protected("team", "hash-b")],
        )
        .unwrap();
        write(
            &dir,
            vec![protected("family", "hash-a"), protected("team", "hash-b")],
        )
        .unwrap();
        write_raw(
            &dir,
            &[json(&protected("family", "hash-a")), r#"{"name":7}"#.into()],
        );
        let (rooms, _) = read(&dir);
        assert_eq!(find(&rooms, "family"), &protected("family", "hash-a"));
        let team = find(&rooms, "team");
        assert_eq!(
            (team.password.as_deref(), team.locked),
            (Some("hash-b"), true)
        );
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
