//! Producing.
