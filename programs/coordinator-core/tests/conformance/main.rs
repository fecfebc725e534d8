//! Integration tests, in one binary (one link step keeps `cargo test` fast):
//! the conformance replay of `fixtures/coordinator/`, the account layout, and the property test.

mod layout;
mod properties;
mod replay;
