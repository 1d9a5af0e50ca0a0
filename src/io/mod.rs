//! The layers under tungstenite, from the socket up: `coalesce` (one write per batch),
//! `inflight` (partly received bytes charged to their arena, paused when it is spent, under the
//! message deadline), `reframe` (the pure frame scanner and re-framer `inflight` drives).

pub mod coalesce;
pub mod inflight;
pub mod reframe;
