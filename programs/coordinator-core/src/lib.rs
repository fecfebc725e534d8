//! The Psyche-TS coordinator state machine in Rust.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod sha256;
pub mod shuffle;
pub mod bloom;
pub mod committee;
pub mod data;
pub mod math;
pub mod config;
pub mod error;
pub mod hashes;
pub mod schedule;
pub mod coordinator;
