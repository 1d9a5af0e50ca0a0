//! What a restart keeps of a room, as plain values: the core makes and takes these
//! (`Rooms::save`, `Rooms::restore`); the file format, its generations and its salvage live at
//! the edge (`ops/store.rs`).

use serde::{Deserialize, Serialize};

use crate::core::ids::{ClientId, Name};
use crate::core::rooms::RoomName;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRoom {
    pub name: RoomName,
    pub idle_secs: u64,
    pub password: Option<String>,
    pub locked: bool,
    /// The host turned recording off. Absent in stores written before issue 17 (allowed).
    #[serde(default)]
    pub recording_off: bool,
    pub removed: Vec<ClientId>,
    /// Addresses someone was removed from (IPv4, or an IPv6 /64 as its first address) and the
    /// identities seated from them then. Personal data: kept only while the room lives, and only
    /// these. Absent in stores written before issue 13.
    #[serde(default)]
    pub removed_addrs: Vec<SavedRemoval>,
    /// The address that made the room (IPv4, or an IPv6 /64's first address), so the
    /// per-address room cap holds across a restart. Absent for exempt addresses and in older
    /// stores.
    #[serde(default)]
    pub creator: Option<std::net::IpAddr>,
    /// "Ask to join" (issue 16). Absent in older stores: off.
    #[serde(default)]
    pub ask: bool,
    /// People waiting to be let in, or admitted and not yet seated. Absent in older stores.
    #[serde(default)]
    pub knocks: Vec<SavedKnock>,
    /// Denied knockers still inside their retry delay. Absent in older stores.
    #[serde(default)]
    pub denied: Vec<SavedDenial>,
    pub seats: Vec<SavedSeat>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedKnock {
    pub id: u64,
    pub client: ClientId,
    pub token: String,
    pub name: Name,
    pub admitted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedDenial {
    pub client: ClientId,
    pub addr: Option<std::net::IpAddr>,
    /// Seconds of the retry delay left when saved (the downtime is not counted off).
    pub secs_left: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRemoval {
    pub addr: std::net::IpAddr,
    pub known: Vec<ClientId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSeat {
    pub id: u64,
    pub client: ClientId,
    pub token: String,
    pub name: Name,
    pub host: bool,
}
