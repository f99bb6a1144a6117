//! hooksctl: the operator CLI and the local stack, as a library so tests drive the same code.

pub mod demo;
pub mod ops;
pub mod stack;
