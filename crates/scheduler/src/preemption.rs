//! Preemption (upstream's DefaultPreemption PostFilter): when no node fits,
//! find the node where evicting the fewest, least important lower-priority
//! pods makes room, so the pod can be nominated there.

use std::sync::Arc;

use crate::cycle::{histogram, preemption_may_help, run_filters_with_nominated, Diagnosis};
use crate::framework::{CycleState, NodeInfo, PodInfo, Profile, Snapshot};

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// A node and the pods to evict there.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

fn start_time(p: &PodInfo) -> Option<jiff::Timestamp> {
    p.pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
        .or_else(|| p.pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn is_terminating(p: &PodInfo) -> bool {
    p.pod.metadata.deletion_timestamp.is_some()
}

/// Whether the pod may preempt at all: not with `preemptionPolicy: Never`,
/// and not again while lower-priority pods on its nominated node are still
/// terminating (the room it asked for is on its way).
pub fn eligible(pod: &PodInfo, snapshot: &Snapshot) -> Result<(), String> {
    let spec = pod.pod.spec.as_ref();
    if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.".into());
    }
    let nominated = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(nn) = nominated {
        if let Some(node) = snapshot.nodes.iter().find(|n| n.name == nn) {
            if node
                .pods
                .iter()
                .any(|p| is_terminating(p) && p.priority < pod.priority)
            {
                return Err("not eligible due to a terminating pod on the nominated node.".into());
            }
        }
    }
    Ok(())
}

/// The victims on one node, or None if evicting every lower-priority pod
/// there would still not make the pod fit. After removing all of them,
/// pods are reprieved one by one, most important first, as long as the pod
/// still fits.
fn select_victims_on_node(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    nominated: &[Arc<PodInfo>],
) -> Option<Vec<Arc<PodInfo>>> {
    let mut node = node.clone();
    let mut state = state.clone();
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return None;
    }
    for v in &potential {
        node.remove_pod(&v.uid);
        for p in &profile.filters {
            p.remove_pod(&mut state, pod, v, &node);
        }
    }
    if run_filters_with_nominated(profile, &state, pod, &node, nominated).is_err() {
        return None;
    }
    // Most important first: higher priority, then started earlier.
    potential.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| start_time(a).cmp(&start_time(b)))
    });
    let mut victims = Vec::new();
    for v in potential {
        node.add_pod(v.clone());
        for p in &profile.filters {
            p.add_pod(&mut state, pod, &v, &node);
        }
        if run_filters_with_nominated(profile, &state, pod, &node, nominated).is_err() {
            node.remove_pod(&v.uid);
            for p in &profile.filters {
                p.remove_pod(&mut state, pod, &v, &node);
            }
            victims.push(v);
        }
    }
    Some(victims)
}

/// Upstream's pickOneNodeForPreemption, without PodDisruptionBudgets: the
/// lowest highest-victim priority, then the lowest sum of priorities, then
/// the fewest victims, then the latest-started most important victim.
fn pick(candidates: Vec<Candidate>) -> Option<Candidate> {
    candidates.into_iter().min_by(|a, b| {
        let key = |c: &Candidate| {
            let highest = c
                .victims
                .iter()
                .map(|v| v.priority)
                .max()
                .unwrap_or(i32::MIN);
            let sum: i64 = c
                .victims
                .iter()
                .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
                .sum();
            (highest, sum, c.victims.len())
        };
        key(a).cmp(&key(b)).then_with(|| {
            // Later start of the most important victim is preferred.
            let latest = |c: &Candidate| {
                c.victims
                    .iter()
                    .max_by_key(|v| v.priority)
                    .and_then(|v| start_time(v))
            };
            latest(b).cmp(&latest(a))
        })
    })
}

/// Finds where to preempt. On failure, the `preemption: ...` part of the
/// FailedScheduling message.
pub fn preempt(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    snapshot: &Snapshot,
    diagnosis: &Diagnosis,
    nominated: &dyn Fn(&str) -> Vec<Arc<PodInfo>>,
) -> Result<Candidate, String> {
    eligible(pod, snapshot).map_err(|m| format!("preemption: {m}"))?;
    let mut reasons: Vec<&str> = Vec::new();
    let mut candidates = Vec::new();
    for node in &snapshot.nodes {
        let helps = diagnosis.pre_filter.is_none()
            && diagnosis
                .statuses
                .get(&node.name)
                .is_some_and(preemption_may_help);
        if !helps {
            reasons.push(NOT_HELPFUL);
            continue;
        }
        match select_victims_on_node(profile, state, pod, node, &nominated(&node.name)) {
            Some(victims) if !victims.is_empty() => candidates.push(Candidate {
                node: node.name.clone(),
                victims,
            }),
            _ => reasons.push(NO_VICTIMS),
        }
    }
    pick(candidates).ok_or_else(|| {
        format!(
            "preemption: 0/{} nodes are available: {}.",
            snapshot.nodes.len(),
            histogram(reasons.into_iter())
        )
    })
}
