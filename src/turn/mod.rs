//! The built-in STUN/TURN server and the TURN credentials handed to browsers.

pub mod codec;
pub mod credentials;
pub mod server;

pub use credentials::{base64, TurnConfig};
