//! The consumer-group operations of a [`Target`]: listing, describing and deleting groups,
//! deleting their offsets, and planning and executing offset resets. Each has its local
//! implementation ([`crate::group::view`], [`crate::group::reset`]) and its Kafka one
//! ([`crate::kafka::groups`], [`crate::kafka::offsets`]); both return the same views and plans.
//! (The group consumer itself is [`crate::group::consumer`] and
//! [`crate::kafka::group_consumer`].)

use super::Target;
use crate::group::reset::{self, AdminError, DeletedOffset, ResetPlan, ResetTo, Scope};
use crate::group::view::{self, GroupView, ViewOptions};
use crate::kafka::groups::GroupsError;
use crate::kafka::{groups as kafka_groups, offsets as kafka_offsets};
use crate::store::StoreError;

/// An error of a group operation, from the target that failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupOpError {
    #[error(transparent)]
    Local(#[from] AdminError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kafka(#[from] GroupsError),
}

impl GroupOpError {
    /// `--all-topics` found no committed offsets to select (on either target).
    pub fn is_nothing_committed(&self) -> bool {
        matches!(
            self,
            GroupOpError::Local(AdminError::NothingCommitted(_))
                | GroupOpError::Kafka(GroupsError::NothingCommitted(_))
        )
    }
}

impl Target {
    /// The names of the consumer groups, sorted.
    pub fn group_names(&self) -> Result<Vec<String>, GroupOpError> {
        Ok(match self {
            Target::Local(store) => crate::group::state::list_groups(store)?,
            Target::Kafka(cluster) => kafka_groups::list_group_names(cluster)?,
        })
    }

    /// The view of one group; `None` when it does not exist.
    pub fn describe_group(
        &self,
        group: &str,
        options: ViewOptions,
        now_ms: i64,
    ) -> Result<Option<GroupView>, GroupOpError> {
        Ok(match self {
            Target::Local(store) => view::describe_group(store, group, options, now_ms)?,
            Target::Kafka(cluster) => {
                kafka_groups::describe_group(cluster, group, options, now_ms)?
            }
        })
    }

    /// Views of every group, sorted by name.
    pub fn describe_all_groups(
        &self,
        options: ViewOptions,
        now_ms: i64,
    ) -> Result<Vec<GroupView>, GroupOpError> {
        Ok(match self {
            Target::Local(store) => view::describe_all(store, options, now_ms)?,
            Target::Kafka(cluster) => kafka_groups::describe_all(cluster, options, now_ms)?,
        })
    }

    /// Deletes a group without live members.
    pub fn delete_group(&self, group: &str, now_ms: i64) -> Result<(), GroupOpError> {
        match self {
            Target::Local(store) => reset::delete_group(store, group, now_ms)?,
            Target::Kafka(cluster) => kafka_groups::delete_group(cluster, group)?,
        }
        Ok(())
    }

    /// Deletes a group's committed offsets of some topics or partitions.
    pub fn delete_group_offsets(
        &self,
        group: &str,
        topics: &[(String, Option<Vec<i32>>)],
        now_ms: i64,
    ) -> Result<Vec<DeletedOffset>, GroupOpError> {
        Ok(match self {
            Target::Local(store) => reset::delete_offsets(store, group, topics, now_ms)?,
            Target::Kafka(cluster) => kafka_groups::delete_offsets(cluster, group, topics)?,
        })
    }

    /// A reset plan, changing nothing (a dry run).
    pub fn plan_reset(
        &self,
        group: &str,
        scope: &Scope,
        to: &ResetTo,
        now_ms: i64,
    ) -> Result<ResetPlan, GroupOpError> {
        Ok(match self {
            Target::Local(store) => reset::plan_reset(store, group, scope, to, now_ms)?,
            Target::Kafka(cluster) => kafka_offsets::plan_reset(cluster, group, scope, to)?,
        })
    }

    /// Resets a group's offsets and returns what was written.
    pub fn execute_reset(
        &self,
        group: &str,
        scope: &Scope,
        to: &ResetTo,
        now_ms: i64,
    ) -> Result<ResetPlan, GroupOpError> {
        Ok(match self {
            Target::Local(store) => reset::execute_reset(store, group, scope, to, now_ms)?,
            Target::Kafka(cluster) => kafka_offsets::execute_reset(cluster, group, scope, to)?,
        })
    }
}
