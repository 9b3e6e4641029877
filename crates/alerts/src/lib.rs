//! When alert rules fire. Pure decisions, no I/O: the server measures a rule's metric and
//! delivers what fires; `heartbeat-bench anomaly` measures the detector on generated traffic.
//!
//! - `anomaly`: the band the same window of previous weeks draws (median and MAD).
//! - `evaluate`: one evaluation of a rule (breached or not, what was expected) and the
//!   firing, cool-down and resolution between evaluations.

pub mod anomaly;
pub mod evaluate;
