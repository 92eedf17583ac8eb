//! Helpers for the integration tests, by concern: the test environment (`env`: root, CI,
//! timeouts, knobs), raw syscalls (`sys`), the test's own files and temp trees (`fs`), the
//! agent under test and its sentinel (`agent`), the common shape of a watch test (`case`:
//! `root_dir!`, `watched!`, `shared!`, `By`), one agent shared by many tests (`shared`), actors as other users in forked children
//! (`creds`), and exact comparison of the JSON events (`expect`). `use common::*;` brings
//! them all; `#[macro_use] mod common;` also the macros `needs_root!`, `root_dir!`,
//! `watched!`, `sc!` and `fails!`.
#![allow(dead_code)]

pub mod agent;
pub mod case;
pub mod creds;
pub mod env;
pub mod expect;
pub mod fs;
pub mod shared;
pub mod sys;

pub use agent::*;
#[allow(unused_imports)] // (not every test binary has watch tests)
pub use case::*;
pub use creds::*;
pub use env::*;
pub use expect::*;
pub use fs::*;
pub use shared::*;
pub use sys::*;
