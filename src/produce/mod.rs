//! Producing: from input bytes to records in partition logs.
//!
//! [`input`] cuts the input into records (`scan` finds a line's end and its key separator in
//! one pass), [`pipeline`] turns each into a Kafka record and picks its partition with
//! [`partitioner`], and [`producer`] batches records per partition and appends the batches.

pub mod input;
pub mod partitioner;
pub mod pipeline;
pub mod producer;
mod scan;
