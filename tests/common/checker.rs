//! A delivery checker in the spirit of Jepsen's queue checker.
//!
//! It is given what producers acknowledged (the values of every `spool produce` run that exited
//! 0, with the offsets its JSON summary reported) and what consumers printed (`%p %o %v` lines,
//! with the stderr of each member to know where its holds of a partition began), and reports:
//! - lost: acknowledged values never consumed;
//! - corrupt: consumed values nobody produced, or a consumed (partition, offset) outside every
//!   acknowledged or attempted range with an unknown value;
//! - reused offsets: one (partition, offset) printed with two different values;
//! - out of order: a member's offsets of a partition jumping without a new hold;
//! - duplicates: (partition, offset) delivered more than once (allowed only where the scenario
//!   killed, stopped or fenced a member; the caller decides).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// One `spool produce` run.
#[derive(Debug, Clone)]
pub struct ProduceRun {
    pub values: Vec<String>,
    /// Whether it exited 0 (its records are acknowledged).
    pub acknowledged: bool,
    /// partition -> (first offset, last offset) from the JSON summary (acknowledged runs).
    pub ranges: BTreeMap<i32, (i64, i64)>,
}

/// What one consumer process printed.
#[derive(Debug, Clone, Default)]
pub struct ConsumerRun {
    pub stdout: Vec<String>,
    pub stderr: String,
    pub topic: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub produced: usize,
    pub acknowledged: usize,
    pub consumed: usize,
    pub deliveries: usize,
    pub duplicates: usize,
    pub lost: Vec<String>,
    pub corrupt: Vec<String>,
    pub reused_offsets: Vec<(i32, i64)>,
    pub out_of_order: Vec<String>,
    pub outside_ranges: Vec<(i32, i64, String)>,
}

impl Report {
    /// Fails the test on any violation; duplicates only when `duplicates_allowed` is false.
    pub fn assert_ok(&self, duplicates_allowed: bool) {
        eprintln!(
            "checker: produced {}, acknowledged {}, consumed {} ({} deliveries), duplicates {}, lost {}, corrupt {}, reused offsets {}, out of order {}",
            self.produced,
            self.acknowledged,
            self.consumed,
            self.deliveries,
            self.duplicates,
            self.lost.len(),
            self.corrupt.len(),
            self.reused_offsets.len(),
            self.out_of_order.len()
        );
        assert!(
            self.lost.is_empty(),
            "lost: {:?}",
            &self.lost[..self.lost.len().min(10)]
        );
        assert!(
            self.corrupt.is_empty(),
            "corrupt: {:?}",
            &self.corrupt[..self.corrupt.len().min(10)]
        );
        assert!(
            self.reused_offsets.is_empty(),
            "reused: {:?}",
            &self.reused_offsets[..self.reused_offsets.len().min(10)]
        );
        assert!(
            self.out_of_order.is_empty(),
            "out of order: {:?}",
            self.out_of_order
        );
        assert!(
            self.outside_ranges.is_empty(),
            "acknowledged value at an offset its producer did not report: {:?}",
            &self.outside_ranges[..self.outside_ranges.len().min(10)]
        );
        if !duplicates_allowed {
            assert_eq!(self.duplicates, 0, "duplicates where none are allowed");
        }
    }
}

/// Parses a `%p %o %v` line.
fn parse(line: &str) -> Option<(i32, i64, String)> {
    let mut it = line.splitn(3, ' ');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.to_owned(),
    ))
}

pub fn check(produced: &[ProduceRun], consumed: &[ConsumerRun]) -> Report {
    let mut report = Report::default();
    let attempted: HashSet<&str> = produced
        .iter()
        .flat_map(|r| r.values.iter().map(String::as_str))
        .collect();
    report.produced = attempted.len();
    // Which acknowledged value may sit at which offsets.
    let mut acked_ranges: HashMap<&str, &BTreeMap<i32, (i64, i64)>> = HashMap::new();
    for run in produced.iter().filter(|r| r.acknowledged) {
        for v in &run.values {
            acked_ranges.insert(v.as_str(), &run.ranges);
        }
    }
    report.acknowledged = acked_ranges.len();

    let mut at: HashMap<(i32, i64), String> = HashMap::new();
    let mut deliveries: HashMap<(i32, i64), usize> = HashMap::new();
    let mut seen_values: HashSet<String> = HashSet::new();
    for run in consumed {
        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
        let mut jumps: BTreeMap<i32, usize> = BTreeMap::new();
        for line in &run.stdout {
            let Some((p, o, v)) = parse(line) else {
                report.corrupt.push(format!("unparsable line {line:?}"));
                continue;
            };
            report.deliveries += 1;
            *deliveries.entry((p, o)).or_default() += 1;
            match at.get(&(p, o)) {
                Some(prev) if *prev != v => report.reused_offsets.push((p, o)),
                Some(_) => {}
                None => {
                    at.insert((p, o), v.clone());
                }
            }
            if !attempted.contains(v.as_str()) {
                report
                    .corrupt
                    .push(format!("{p}/{o}: {v:?} was never produced"));
            }
            if let Some(ranges) = acked_ranges.get(v.as_str()) {
                let inside = ranges.get(&p).is_some_and(|(a, b)| (*a..=*b).contains(&o));
                if !inside {
                    report.outside_ranges.push((p, o, v.clone()));
                }
            }
            if let Some(prev) = last.get(&p) {
                if o != prev + 1 {
                    *jumps.entry(p).or_default() += 1;
                }
            }
            last.insert(p, o);
            seen_values.insert(v);
        }
        for (p, n) in jumps {
            let holds = run
                .stderr
                .matches(&format!("Reading {}/{p} from", run.topic))
                .count();
            if n >= holds.max(1) {
                report.out_of_order.push(format!(
                    "partition {p}: {n} jumps in {holds} holds of one member"
                ));
            }
        }
    }
    report.consumed = at.len();
    report.duplicates = deliveries.values().map(|n| n - 1).sum();
    let mut lost: BTreeSet<String> = BTreeSet::new();
    for v in acked_ranges.keys() {
        if !seen_values.contains(*v) {
            lost.insert((*v).to_owned());
        }
    }
    report.lost = lost.into_iter().collect();
    report
}
