//! Sticky assignment when subscriptions differ: Kafka's
//! `AbstractStickyAssignor.GeneralAssignmentBuilder`.
//!
//! 1. Every member keeps the owned partitions of topics it still subscribes to.
//! 2. Each unowned partition (topics sorted by how few members can take them, then by name)
//!    goes to the least loaded member that subscribes to its topic.
//! 3. Partitions are then moved, one at a time, from a member to a less loaded one that could
//!    take it, until no partition can move to a member with two or more fewer partitions. A
//!    partition whose earlier owner (a claim from an older generation) is much less loaded
//!    goes back to that owner first, and a move that would undo an earlier move between the
//!    same two members in the same topic moves that earlier partition back instead, so that
//!    partitions do not shuffle needlessly (Kafka's `PartitionMovements`).
//! 4. If that moving did not make the assignment more balanced than step 2 left it (by the
//!    sum over member pairs of their count difference), the moves are undone, unless the
//!    group is being assigned from scratch.
//!
//! Topics only one member can take, and members that already hold every partition they can
//! take and no partition anyone else could, stay out of step 3.

use std::collections::{BTreeMap, BTreeSet};

use super::Claims;
use crate::group::assignor::{MemberSubscription, TopicPartition};

/// A partition, with its topic borrowed from the topic map.
type Tp<'a> = (&'a str, i32);

pub(super) fn assign<'a>(
    topics: &'a BTreeMap<String, i32>,
    by_id: &BTreeMap<&'a str, &'a MemberSubscription>,
    claims: Claims<'a>,
) -> BTreeMap<&'a str, Vec<TopicPartition>> {
    let key = |topic: &str| topics.get_key_value(topic).map(|(k, _)| k.as_str());

    let mut topic_consumers: BTreeMap<&'a str, Vec<&'a str>> =
        topics.keys().map(|t| (t.as_str(), Vec::new())).collect();
    let mut consumer_topics: BTreeMap<&'a str, BTreeSet<&'a str>> = BTreeMap::new();
    for (&id, member) in by_id {
        let mine: BTreeSet<&'a str> = member.topics.iter().filter_map(|t| key(t)).collect();
        for &t in &mine {
            topic_consumers.get_mut(t).expect("known topic").push(id);
        }
        consumer_topics.insert(id, mine);
    }

    // All partitions, topics with fewer potential consumers first.
    let mut sorted_topics: Vec<&'a str> = topic_consumers.keys().copied().collect();
    sorted_topics.sort_by_key(|t| (topic_consumers[t].len(), *t));
    let all_partitions: Vec<Tp<'a>> = sorted_topics
        .iter()
        .flat_map(|&t| (0..topics[t]).map(move |p| (t, p)))
        .collect();

    // Claims from members of older generations: where a partition was before, if not now.
    let max_generation = by_id.values().map(|m| m.generation).fold(-1, i32::max);
    let mut previous: BTreeMap<Tp<'a>, (&'a str, i32)> = BTreeMap::new();
    for (&id, member) in by_id {
        if member.generation >= max_generation {
            continue;
        }
        for tp in &member.owned {
            let Some(t) = key(&tp.topic) else { continue };
            match previous.get(&(t, tp.partition)) {
                Some(&(_, g)) if g >= member.generation => {}
                _ => {
                    previous.insert((t, tp.partition), (id, member.generation));
                }
            }
        }
    }

    let mut builder = Builder {
        topics,
        topic_consumers,
        consumer_topics,
        assignment: BTreeMap::new(),
        owner: BTreeMap::new(),
        by_load: BTreeSet::new(),
        movements: Movements::default(),
    };
    let mut revocation_required = false;
    for (id, owned) in claims.owned {
        let mut kept = Vec::new();
        for tp in owned {
            let t = key(&tp.topic).expect("claims are on known topics");
            if builder.consumer_topics[id].contains(t) {
                kept.push((t, tp.partition));
                builder.owner.insert((t, tp.partition), id);
            } else {
                revocation_required = true;
            }
        }
        builder.by_load.insert((kept.len(), id));
        builder.assignment.insert(id, kept);
    }
    let unassigned: Vec<Tp<'a>> = all_partitions
        .iter()
        .filter(|tp| !builder.owner.contains_key(*tp))
        .copied()
        .collect();
    builder.balance(&previous, unassigned, all_partitions, revocation_required);

    builder
        .assignment
        .into_iter()
        .map(|(id, parts)| {
            let parts = parts
                .into_iter()
                .map(|(t, p)| TopicPartition::new(t, p))
                .collect();
            (id, parts)
        })
        .collect()
}

struct Builder<'a> {
    topics: &'a BTreeMap<String, i32>,
    /// Members subscribed to each known topic.
    topic_consumers: BTreeMap<&'a str, Vec<&'a str>>,
    /// Known topics each member subscribes to.
    consumer_topics: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// Current assignment of the members taking part in balancing.
    assignment: BTreeMap<&'a str, Vec<Tp<'a>>>,
    /// Current owner of every assigned partition.
    owner: BTreeMap<Tp<'a>, &'a str>,
    /// Members taking part, least loaded first (ties by member id).
    by_load: BTreeSet<(usize, &'a str)>,
    movements: Movements<'a>,
}

impl<'a> Builder<'a> {
    fn load(&self, member: &str) -> usize {
        self.assignment[member].len()
    }

    fn max_assignment_size(&self, member: &str) -> usize {
        self.consumer_topics[member]
            .iter()
            .map(|&t| self.topics[t] as usize)
            .sum()
    }

    fn can_topic_move(&self, topic: &str) -> bool {
        self.topic_consumers[topic].len() >= 2
    }

    fn can_consumer_take_part(&self, member: &str) -> bool {
        self.load(member) < self.max_assignment_size(member)
            || self.assignment[member]
                .iter()
                .any(|(t, _)| self.can_topic_move(t))
    }

    /// The least loaded member subscribed to `topic`.
    fn least_loaded_for(&self, topic: &str) -> Option<&'a str> {
        self.by_load
            .iter()
            .find(|(_, m)| self.consumer_topics[m].contains(topic))
            .map(|&(_, m)| m)
    }

    fn give(&mut self, tp: Tp<'a>, member: &'a str) {
        let load = self.load(member);
        self.by_load.remove(&(load, member));
        self.assignment.get_mut(member).expect("member").push(tp);
        self.by_load.insert((load + 1, member));
        self.owner.insert(tp, member);
    }

    fn take(&mut self, tp: Tp<'a>, member: &'a str) {
        let load = self.load(member);
        self.by_load.remove(&(load, member));
        self.assignment
            .get_mut(member)
            .expect("member")
            .retain(|p| *p != tp);
        self.by_load.insert((load - 1, member));
    }

    fn balance(
        &mut self,
        previous: &BTreeMap<Tp<'a>, (&'a str, i32)>,
        mut unassigned: Vec<Tp<'a>>,
        mut all_partitions: Vec<Tp<'a>>,
        revocation_required: bool,
    ) {
        let initializing = self.by_load.last().is_none_or(|&(load, _)| load == 0);

        for &tp in &unassigned {
            if let Some(member) = self.least_loaded_for(tp.0) {
                self.give(tp, member);
            }
        }

        // Only partitions with two or more potential owners, and members that could gain or
        // lose something, take part in balancing.
        unassigned.retain(|(t, _)| self.can_topic_move(t));
        all_partitions.retain(|(t, _)| self.can_topic_move(t));
        let fixed_members: Vec<&'a str> = self
            .consumer_topics
            .keys()
            .copied()
            .filter(|m| !self.can_consumer_take_part(m))
            .collect();
        let mut fixed = BTreeMap::new();
        for member in fixed_members {
            self.by_load.remove(&(self.load(member), member));
            fixed.insert(member, self.assignment.remove(member).expect("member"));
        }

        let before = (self.assignment.clone(), self.owner.clone());
        if !revocation_required {
            self.perform_reassignments(&unassigned, previous);
        }
        let reassigned = self.perform_reassignments(&all_partitions, previous);
        if !initializing
            && reassigned
            && balance_score(&self.assignment) >= balance_score(&before.0)
        {
            (self.assignment, self.owner) = before;
        }
        self.assignment.extend(fixed);
    }

    /// Kafka's `performReassignments`: sweep `partitions` moving them to less loaded members
    /// until balanced or a sweep moves nothing. Returns whether anything moved.
    fn perform_reassignments(
        &mut self,
        partitions: &[Tp<'a>],
        previous: &BTreeMap<Tp<'a>, (&'a str, i32)>,
    ) -> bool {
        let mut reassigned = false;
        loop {
            let mut modified = false;
            for &tp in partitions {
                if self.is_balanced() {
                    break;
                }
                let current = self.owner[&tp];
                let load = self.load(current);
                if let Some(&(earlier, _)) = previous.get(&tp) {
                    // Kafka does not check that the earlier owner can still take the
                    // partition; spool does, so that a stale claim never yields an
                    // invalid assignment.
                    if self.topic_consumers[tp.0].contains(&earlier)
                        && load > self.load(earlier) + 1
                    {
                        self.reassign(tp, earlier);
                        reassigned = true;
                        modified = true;
                        continue;
                    }
                }
                let better_exists = self.topic_consumers[tp.0]
                    .iter()
                    .any(|other| load > self.load(other) + 1);
                if better_exists {
                    let target = self.least_loaded_for(tp.0).expect("a subscriber exists");
                    self.reassign(tp, target);
                    reassigned = true;
                    modified = true;
                }
            }
            if !modified {
                return reassigned;
            }
        }
    }

    fn reassign(&mut self, tp: Tp<'a>, to: &'a str) {
        let from = self.owner[&tp];
        let tp = self.movements.partition_to_move(tp, from, to);
        let from = self.owner[&tp];
        self.take(tp, from);
        self.give(tp, to);
        self.movements.record(tp, from, to);
    }

    /// Kafka's `isBalanced`: counts differ by at most one, or no member could take a
    /// partition from a member holding two or more partitions more than it.
    fn is_balanced(&self) -> bool {
        let (Some(&(min, _)), Some(&(max, _))) = (self.by_load.first(), self.by_load.last()) else {
            return true;
        };
        if min + 1 >= max {
            return true;
        }
        for &(load, member) in &self.by_load {
            if load == self.max_assignment_size(member) {
                continue;
            }
            for &topic in &self.consumer_topics[member] {
                for p in 0..self.topics[topic] {
                    match self.owner.get(&(topic, p)) {
                        Some(&other) if other != member && load + 1 < self.load(other) => {
                            return false
                        }
                        _ => {}
                    }
                }
            }
        }
        true
    }
}

/// Sum over all member pairs of the difference in their partition counts; 0 is perfect.
fn balance_score<T>(assignment: &BTreeMap<&str, Vec<T>>) -> i64 {
    let mut loads: Vec<i64> = assignment.values().map(|p| p.len() as i64).collect();
    loads.sort_unstable();
    let n = loads.len() as i64;
    (0i64..)
        .zip(loads)
        .map(|(i, load)| load * (2 * i - (n - 1)))
        .sum()
}

/// Kafka's `PartitionMovements`: the net moves made so far, per partition and per topic and
/// (source, destination) pair.
#[derive(Default)]
struct Movements<'a> {
    moves: BTreeMap<Tp<'a>, (&'a str, &'a str)>,
    by_topic: BTreeMap<&'a str, BTreeMap<(&'a str, &'a str), BTreeSet<Tp<'a>>>>,
}

impl<'a> Movements<'a> {
    /// Moving `tp` from `from` to `to`: if some partition of the same topic earlier moved from
    /// `to` to where `tp` originally was, move that one back instead.
    fn partition_to_move(&self, tp: Tp<'a>, from: &'a str, to: &'a str) -> Tp<'a> {
        let Some(topic_moves) = self.by_topic.get(tp.0) else {
            return tp;
        };
        let origin = self.moves.get(&tp).map_or(from, |&(src, _)| src);
        topic_moves
            .get(&(to, origin))
            .and_then(|set| set.first().copied())
            .unwrap_or(tp)
    }

    fn record(&mut self, tp: Tp<'a>, from: &'a str, to: &'a str) {
        match self.remove(tp) {
            Some((src, _)) if src == to => {}
            Some((src, _)) => self.add(tp, (src, to)),
            None => self.add(tp, (from, to)),
        }
    }

    fn add(&mut self, tp: Tp<'a>, pair: (&'a str, &'a str)) {
        self.moves.insert(tp, pair);
        self.by_topic
            .entry(tp.0)
            .or_default()
            .entry(pair)
            .or_default()
            .insert(tp);
    }

    fn remove(&mut self, tp: Tp<'a>) -> Option<(&'a str, &'a str)> {
        let pair = self.moves.remove(&tp)?;
        let topic_moves = self.by_topic.get_mut(tp.0).expect("recorded");
        let set = topic_moves.get_mut(&pair).expect("recorded");
        set.remove(&tp);
        if set.is_empty() {
            topic_moves.remove(&pair);
        }
        if topic_moves.is_empty() {
            self.by_topic.remove(tp.0);
        }
        Some(pair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn movements_undo_a_reverse_move_instead_of_swapping() {
        let mut m = Movements::default();
        // Nothing moved in the topic yet: move the partition asked for.
        assert_eq!(m.partition_to_move(("t", 0), "a", "b"), ("t", 0));
        m.record(("t", 0), "a", "b");
        // Moving t-1 from b to a would swap with t-0: move t-0 back instead.
        assert_eq!(m.partition_to_move(("t", 1), "b", "a"), ("t", 0));
        // Other topics and other pairs are unaffected.
        assert_eq!(m.partition_to_move(("u", 1), "b", "a"), ("u", 1));
        assert_eq!(m.partition_to_move(("t", 1), "b", "c"), ("t", 1));
        // A partition that moved a -> b and now b -> c is recorded as a -> c ...
        m.record(("t", 0), "b", "c");
        assert_eq!(m.moves[&("t", 0)], ("a", "c"));
        // ... so moving t-2 from its origin-side c back to a would undo it.
        assert_eq!(m.partition_to_move(("t", 2), "c", "a"), ("t", 0));
        // Moving it home erases the record entirely.
        m.record(("t", 0), "c", "a");
        assert!(m.moves.is_empty() && m.by_topic.is_empty());
    }
}
