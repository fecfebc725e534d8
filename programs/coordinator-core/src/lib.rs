#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod account;
pub mod bloom;
pub mod committee;
pub mod config;
pub mod coordinator;
pub mod data;
pub mod error;
pub mod hashes;
pub mod math;
pub mod schedule;
pub mod sha256;
pub mod shuffle;
