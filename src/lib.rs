//! spool: Apache Kafka's model as a library over a directory on local disk.

pub mod group;
