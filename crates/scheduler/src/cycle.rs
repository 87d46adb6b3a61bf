//! One scheduling cycle for one pod, as upstream's `schedulePod`: run the
//! PreFilter and Filter plugins over (enough of) the nodes, score the
//! feasible ones, pick the best. Pure computation over a snapshot; the
//! caller does the writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::framework::{Code, CycleState, NodeInfo, PodInfo, Profile, Snapshot, Status};

/// Below this many nodes every node is checked; above it the adaptive
/// percentage applies (upstream's `minFeasibleNodesToFind`).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// Why no node was chosen.
#[derive(Clone, Debug, Default)]
pub struct Diagnosis {
    /// Each node that failed, with the status of the plugin that refused it.
    pub statuses: HashMap<String, Status>,
    /// A PreFilter rejection, which applies to every node.
    pub pre_filter: Option<Status>,
}

#[derive(Clone, Debug)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub diagnosis: Diagnosis,
    /// What preemption found, e.g. `preemption: 0/3 nodes are available: ...`.
    pub post_filter_msg: Option<String>,
}

/// Counts reasons as upstream's histogram: `1 node(s) had ..., 2 Insufficient cpu`,
/// sorted as strings.
pub fn histogram<'a>(reasons: impl Iterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r).or_default() += 1;
    }
    let mut parts: Vec<String> = counts
        .into_iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    parts.sort();
    parts.join(", ")
}

impl FitError {
    /// `0/3 nodes are available: 1 node(s) had untolerated taint {...}, 2 Insufficient cpu.`
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        match &self.diagnosis.pre_filter {
            Some(s) => msg.push_str(&format!(" {}.", s.reasons.join(", "))),
            None => {
                let reasons = self
                    .diagnosis
                    .statuses
                    .values()
                    .flat_map(|s| s.reasons.iter().map(String::as_str));
                msg.push_str(&format!(" {}.", histogram(reasons)));
            }
        }
        if let Some(p) = &self.post_filter_msg {
            msg.push(' ');
            msg.push_str(p);
        }
        msg
    }
}

/// How many feasible nodes to look for before scoring (upstream's
/// adaptive `numFeasibleNodesToFind` with percentageOfNodesToScore unset).
pub fn num_feasible_nodes_to_find(num_all_nodes: usize) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let pct = 50usize
        .saturating_sub(num_all_nodes / 125)
        .max(MIN_FEASIBLE_NODES_PERCENTAGE);
    (num_all_nodes * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Runs every PreFilter plugin.
pub fn run_pre_filters(
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    snapshot: &Snapshot,
) -> Result<(), Status> {
    for p in &profile.filters {
        p.pre_filter(state, pod, snapshot)?;
    }
    Ok(())
}

/// Runs the Filter plugins in order; the first refusal wins.
pub fn run_filters(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
) -> Result<(), Status> {
    for p in &profile.filters {
        p.filter(state, pod, node)?;
    }
    Ok(())
}

/// As upstream's `RunFilterPluginsWithNominatedPods`: when pods of equal
/// or higher priority are nominated to the node, the pod must fit with
/// them there (they were promised the room) and without them (they may
/// not come).
pub fn run_filters_with_nominated(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    nominated: &[Arc<PodInfo>],
) -> Result<(), Status> {
    if !nominated.is_empty() {
        let mut with = node.clone();
        let mut st = state.clone();
        for n in nominated {
            with.add_pod(n.clone());
            for p in &profile.filters {
                p.add_pod(&mut st, pod, n, &with);
            }
        }
        run_filters(profile, &st, pod, &with)?;
    }
    run_filters(profile, state, pod, node)
}

/// The outcome of a cycle that found a node.
pub struct Placement {
    pub node: String,
    /// Nodes checked, to advance the rotating start index.
    pub evaluated: usize,
    pub feasible: usize,
}

/// What a cycle decided; the state goes on to preemption or is dropped.
pub enum Outcome {
    Placed(Placement, CycleState),
    Unschedulable(FitError, CycleState),
}

/// Picks a node for `pod`, or says why none fits. `start` is where the
/// search begins (rotated between cycles so every node gets its turn);
/// `nominated(node)` gives the higher-priority pods nominated there.
pub fn schedule_pod(
    profile: &Profile,
    pod: &PodInfo,
    snapshot: &Snapshot,
    start: usize,
    nominated: &dyn Fn(&str) -> Vec<Arc<PodInfo>>,
) -> Outcome {
    let all = snapshot.nodes.len();
    let mut state = CycleState::default();
    if let Err(s) = run_pre_filters(profile, &mut state, pod, snapshot) {
        let mut diagnosis = Diagnosis::default();
        for n in &snapshot.nodes {
            diagnosis.statuses.insert(n.name.clone(), s.clone());
        }
        diagnosis.pre_filter = Some(s);
        return Outcome::Unschedulable(
            FitError {
                num_all_nodes: all,
                diagnosis,
                post_filter_msg: None,
            },
            state,
        );
    }
    // A pod that preemption made room for tries its nominated node first.
    if let Some(nn) = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty())
    {
        if let Some(node) = snapshot.nodes.iter().find(|n| n.name == nn) {
            if run_filters_with_nominated(profile, &state, pod, node, &nominated(nn)).is_ok() {
                let placement = Placement {
                    node: nn.to_string(),
                    evaluated: 0,
                    feasible: 1,
                };
                return Outcome::Placed(placement, state);
            }
        }
    }
    let want = num_feasible_nodes_to_find(all);
    let mut feasible: Vec<Arc<NodeInfo>> = Vec::with_capacity(want.min(all));
    let mut diagnosis = Diagnosis::default();
    let mut evaluated = 0;
    for i in 0..all {
        if feasible.len() >= want {
            break;
        }
        let node = &snapshot.nodes[(start + i) % all];
        evaluated += 1;
        match run_filters_with_nominated(profile, &state, pod, node, &nominated(&node.name)) {
            Ok(()) => feasible.push(node.clone()),
            Err(s) => {
                diagnosis.statuses.insert(node.name.clone(), s);
            }
        }
    }
    if feasible.is_empty() {
        return Outcome::Unschedulable(
            FitError {
                num_all_nodes: all,
                diagnosis,
                post_filter_msg: None,
            },
            state,
        );
    }
    if feasible.len() == 1 {
        let placement = Placement {
            node: feasible[0].name.clone(),
            evaluated,
            feasible: 1,
        };
        return Outcome::Placed(placement, state);
    }
    let scores = prioritize(profile, &mut state, pod, snapshot, &feasible);
    let best = select_host(&scores);
    let placement = Placement {
        node: feasible[best].name.clone(),
        evaluated,
        feasible: feasible.len(),
    };
    Outcome::Placed(placement, state)
}

/// Weighted sum of the normalized scores of every score plugin, per node.
pub fn prioritize(
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    snapshot: &Snapshot,
    nodes: &[Arc<NodeInfo>],
) -> Vec<i64> {
    let mut total = vec![0i64; nodes.len()];
    for (p, _) in &profile.scorers {
        p.pre_score(state, pod, snapshot, nodes);
    }
    let mut scores = vec![0i64; nodes.len()];
    for (p, weight) in &profile.scorers {
        for (s, n) in scores.iter_mut().zip(nodes) {
            *s = p.score(state, pod, n);
        }
        p.normalize_score(state, pod, &mut scores);
        for (t, s) in total.iter_mut().zip(&scores) {
            *t += s * weight;
        }
    }
    total
}

/// The index of the highest score; ties are broken at random (reservoir
/// sampling, as upstream's selectHost) so equal nodes share the load.
pub fn select_host(scores: &[i64]) -> usize {
    let mut best = 0;
    let mut ties = 1u32;
    for (i, s) in scores.iter().enumerate().skip(1) {
        if *s > scores[best] {
            best = i;
            ties = 1;
        } else if *s == scores[best] {
            ties += 1;
            if fastrand_below(ties) == 0 {
                best = i;
            }
        }
    }
    best
}

/// A cheap thread-local xorshift: tie-breaking needs no cryptographic quality.
fn fastrand_below(n: u32) -> u32 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(0x9E37_79B9_7F4A_7C15),
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        ((x >> 32) as u32) % n
    })
}

/// Whether preemption could help on a node that failed with `status`.
pub fn preemption_may_help(status: &Status) -> bool {
    status.code == Code::Unschedulable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_format() {
        let mut d = Diagnosis::default();
        d.statuses.insert(
            "a".into(),
            Status::unresolvable(
                "TaintToleration",
                "node(s) had untolerated taint {dedicated: gpu}",
            ),
        );
        d.statuses.insert(
            "b".into(),
            Status::unschedulable("NodeResourcesFit", "Insufficient cpu"),
        );
        d.statuses.insert(
            "c".into(),
            Status::unschedulable("NodeResourcesFit", "Insufficient cpu"),
        );
        let e = FitError {
            num_all_nodes: 3,
            diagnosis: d,
            post_filter_msg: None,
        };
        assert_eq!(
            e.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
        );
    }

    #[test]
    fn adaptive_node_count() {
        assert_eq!(num_feasible_nodes_to_find(50), 50);
        assert_eq!(num_feasible_nodes_to_find(1000), 420);
        assert_eq!(num_feasible_nodes_to_find(5000), 500);
        assert_eq!(num_feasible_nodes_to_find(200), 100);
    }

    #[test]
    fn select_host_prefers_highest_and_spreads_ties() {
        assert_eq!(select_host(&[1, 5, 3]), 1);
        let mut seen = [false; 3];
        for _ in 0..200 {
            seen[select_host(&[7, 7, 7])] = true;
        }
        assert_eq!(seen, [true, true, true]);
    }
}
