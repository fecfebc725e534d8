//! The Psyche-TS coordinator state machine in Rust.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod sha256;
pub mod shuffle;
pub mod bloom;
