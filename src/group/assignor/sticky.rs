//! The sticky assignors, mirroring Kafka's `AbstractStickyAssignor` and its two subclasses
//! `StickyAssignor` (eager) and `CooperativeStickyAssignor` (cooperative), without rack
//! awareness.
//!
//! The sticky algorithm aims first at balance (member counts differing by at most one
//! wherever subscriptions allow it) and second at stickiness (a member keeps the partitions
//! it already owns). It starts from what members report in [`MemberSubscription::owned`]:
//!
//! 1. Claims are resolved as Kafka does (see [`resolve_claims`]): claims on unknown topics
//!    are dropped; when two members claim one partition the one with the higher `generation`
//!    keeps it, and if their generations are equal neither does.
//! 2. If every member has the same subscription, the quota-based algorithm of Kafka's
//!    `ConstrainedAssignmentBuilder` runs ([`constrained`]); otherwise the general,
//!    move-until-balanced algorithm of its `GeneralAssignmentBuilder` ([`general`]).
//!
//! The result is what [`sticky_target`] returns and what the eager `sticky` assignor hands
//! out. Kafka's eager `StickyAssignor` reads the previous assignment from its own user data
//! rather than from `owned` (under the eager protocol members own nothing when they rejoin);
//! spool has no user data, so callers pass the previous assignment in `owned` for both.
//!
//! The `cooperative-sticky` assignor computes the same target but, following the cooperative
//! protocol, hands out only the part of it that is safe right now: a partition that the
//! target gives to member B while another member A still claims it is withheld from B in this
//! round. A sees in its new assignment that it lost the partition, revokes it and rejoins, and
//! the follow-up rebalance (in which A no longer claims it) gives it to B.

mod constrained;
mod general;

use std::collections::{BTreeMap, BTreeSet};

use super::{
    empty_assignment, sort_all, subscribed_topics, Assignor, MemberSubscription, RebalanceProtocol,
    TopicPartition,
};

/// Kafka's eager `sticky` assignor.
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyAssignor;

/// Kafka's `cooperative-sticky` assignor: the sticky target minus the partitions another
/// member must revoke first (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl Assignor for StickyAssignor {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        sticky_target(partitions_per_topic, members)
    }
}

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    /// The sticky target, minus every partition that some other member still claims in
    /// `owned`. A claim does not count against a member that claims the partition too with a
    /// strictly higher generation: that member's ownership is the current one and the other
    /// claim is stale (this is how Kafka resolves such conflicts too).
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut assignment = sticky_target(partitions_per_topic, members);
        withhold_claimed_elsewhere(&mut assignment, members);
        assignment
    }
}

/// The full sticky assignment for these members: what the `sticky` assignor returns, and
/// what the `cooperative-sticky` assignor converges to once every partition that changes
/// owner has been revoked by its previous owner. Same contract as [`Assignor::assign`].
pub fn sticky_target(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
) -> BTreeMap<String, Vec<TopicPartition>> {
    let topics = subscribed_topics(partitions_per_topic, members);
    // Kafka walks members in hash-map order; spool walks them by member id so that the
    // result does not depend on the order of `members`.
    let by_id: BTreeMap<&str, &MemberSubscription> =
        members.iter().map(|m| (m.member_id.as_str(), m)).collect();
    let mut assignment = empty_assignment(members);
    if by_id.is_empty() {
        return assignment;
    }
    let claims = resolve_claims(&topics, &by_id);
    let result = if all_subscriptions_equal(&by_id) {
        constrained::assign(&topics, claims)
    } else {
        general::assign(&topics, &by_id, claims)
    };
    assignment.extend(
        result
            .into_iter()
            .map(|(id, parts)| (id.to_string(), parts)),
    );
    sort_all(&mut assignment);
    assignment
}

/// Previously owned partitions as the sticky algorithms see them.
pub(super) struct Claims<'a> {
    /// Every member's surviving claims on partitions of known topics.
    owned: BTreeMap<&'a str, Vec<TopicPartition>>,
    /// Partitions claimed by two members of the same generation: invalid for both.
    multiply_claimed: BTreeSet<TopicPartition>,
}

/// Kafka's claim resolution (done in `AbstractStickyAssignor.allSubscriptionsEqual`).
/// Members are visited in order; a claim on a partition already claimed by an earlier member
/// goes to the higher generation, and with equal generations the partition is taken from the
/// earlier member, denied to this one and marked as multiply claimed.
fn resolve_claims<'a>(
    topics: &BTreeMap<String, i32>,
    by_id: &BTreeMap<&'a str, &'a MemberSubscription>,
) -> Claims<'a> {
    let mut owned: BTreeMap<&'a str, Vec<TopicPartition>> =
        by_id.keys().map(|&id| (id, Vec::new())).collect();
    let mut multiply_claimed = BTreeSet::new();
    // Last member to have touched each partition's claim (Kafka's allPreviousPartitionsToOwner).
    let mut holder: BTreeMap<&'a TopicPartition, &'a str> = BTreeMap::new();
    for (&id, member) in by_id {
        let mut seen = BTreeSet::new();
        for tp in &member.owned {
            let known = topics
                .get(&tp.topic)
                .is_some_and(|&n| (0..n).contains(&tp.partition));
            if !known || !seen.insert(tp) {
                continue;
            }
            let Some(&other) = holder.get(tp) else {
                owned.get_mut(id).expect("member").push(tp.clone());
                holder.insert(tp, id);
                continue;
            };
            let other_generation = by_id[other].generation;
            if member.generation >= other_generation {
                owned.get_mut(other).expect("member").retain(|p| p != tp);
                holder.insert(tp, id);
                if member.generation == other_generation {
                    multiply_claimed.insert(tp.clone());
                } else {
                    owned.get_mut(id).expect("member").push(tp.clone());
                }
            }
        }
    }
    Claims {
        owned,
        multiply_claimed,
    }
}

/// True when every member subscribes to the same set of topics (unknown topics included,
/// duplicates ignored).
fn all_subscriptions_equal(by_id: &BTreeMap<&str, &MemberSubscription>) -> bool {
    let mut sets = by_id
        .values()
        .map(|m| m.topics.iter().collect::<BTreeSet<_>>());
    let first = sets.next().unwrap_or_default();
    sets.all(|s| s == first)
}

/// Cooperative protocol: drop from each member's assignment what another member still claims
/// (see [`CooperativeStickyAssignor::assign`]).
fn withhold_claimed_elsewhere(
    assignment: &mut BTreeMap<String, Vec<TopicPartition>>,
    members: &[MemberSubscription],
) {
    let mut claims: BTreeMap<&TopicPartition, Vec<(&str, i32)>> = BTreeMap::new();
    for m in members {
        for tp in m.owned.iter().collect::<BTreeSet<_>>() {
            claims
                .entry(tp)
                .or_default()
                .push((m.member_id.as_str(), m.generation));
        }
    }
    let generation: BTreeMap<&str, i32> = members
        .iter()
        .map(|m| (m.member_id.as_str(), m.generation))
        .collect();
    for (member, partitions) in assignment.iter_mut() {
        let own_generation = generation[member.as_str()];
        partitions.retain(|tp| {
            let Some(claimants) = claims.get(tp) else {
                return true;
            };
            let claims_it = claimants.iter().any(|&(c, _)| c == member);
            !claimants
                .iter()
                .any(|&(c, g)| c != member && (!claims_it || g >= own_generation))
        });
    }
}
