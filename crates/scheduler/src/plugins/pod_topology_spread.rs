//! PodTopologySpread: the pod's `topologySpreadConstraints` spread matching
//! pods over topology domains (zones, hosts...). `DoNotSchedule`
//! constraints filter: placing the pod in a domain must not make its count
//! exceed the smallest domain's by more than `maxSkew`. `ScheduleAnyway`
//! constraints score: fewer matching pods in the node's domains is better.
//!
//! Counted pods are those in the pod's namespace matching the constraint's
//! selector (plus its `matchLabelKeys`), not terminating. Domains are the
//! values of the topology key on nodes that carry every constraint's key
//! and pass the inclusion policies: `nodeAffinityPolicy` (default Honor:
//! the pod's nodeSelector/required affinity must match the node) and
//! `nodeTaintsPolicy` (default Ignore; Honor: the pod must tolerate the
//! node's NoSchedule/NoExecute taints).
//!
//! Unlike upstream, there are no cluster-wide default constraints: a pod
//! without constraints is neither filtered nor scored here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::helper::{
    find_untolerated_taint, is_do_not_schedule, node_taints, par_chunks,
    pod_matches_node_selector_and_affinity, pod_tolerations, warm_pods,
};
use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Snapshot, Status, MAX_NODE_SCORE};

pub const NAME: &str = "PodTopologySpread";
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";
const HOSTNAME: &str = "kubernetes.io/hostname";
/// A node the scorer ignores (it lacks a topology key): 0 after normalizing.
const INVALID_SCORE: i64 = -1;

pub struct PodTopologySpread;

/// A constraint with its selector resolved (`matchLabelKeys` merged in)
/// and its defaults applied.
#[derive(Clone, Debug)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    /// `None` (no `labelSelector`) matches no pod.
    selector: Option<LabelSelector>,
    min_domains: usize,
    honor_node_affinity: bool,
    honor_node_taints: bool,
}

impl Constraint {
    fn new(c: &TopologySpreadConstraint, pod_labels: &BTreeMap<String, String>) -> Constraint {
        let mut selector = c.label_selector.clone();
        // matchLabelKeys: the pod's own values for those keys join the
        // selector (upstream merges them the same way; keys the pod lacks
        // are ignored).
        let extra: Vec<LabelSelectorRequirement> = c
            .match_label_keys
            .iter()
            .flatten()
            .filter_map(|k| {
                pod_labels.get(k).map(|v| LabelSelectorRequirement {
                    key: k.clone(),
                    operator: "In".into(),
                    values: Some(vec![v.clone()]),
                })
            })
            .collect();
        if !extra.is_empty() {
            let s = selector.get_or_insert_with(Default::default);
            s.match_expressions
                .get_or_insert_with(Vec::new)
                .extend(extra);
        }
        Constraint {
            max_skew: i64::from(c.max_skew),
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: c.min_domains.map(|m| m.max(1) as usize).unwrap_or(1),
            honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        }
    }

    fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector
            .as_ref()
            .is_some_and(|s| client::labels::matches(s, labels))
    }

    /// Whether `node` is a domain for this constraint under its inclusion
    /// policies; `affinity_ok` is the pod's node affinity result, computed
    /// once per node.
    fn includes(&self, pod: &Pod, node: &Node, affinity_ok: &mut Option<bool>) -> bool {
        if self.honor_node_affinity
            && !*affinity_ok
                .get_or_insert_with(|| pod_matches_node_selector_and_affinity(pod, node))
        {
            return false;
        }
        if self.honor_node_taints
            && find_untolerated_taint(node_taints(node), pod_tolerations(pod), is_do_not_schedule)
                .is_some()
        {
            return false;
        }
        true
    }
}

fn constraints(pod: &PodInfo, action: &str) -> Vec<Constraint> {
    let Some(spec) = pod.pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.topology_spread_constraints
        .iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == action)
        .map(|c| Constraint::new(c, pod.labels()))
        .collect()
}

fn has_all_keys(labels: &BTreeMap<String, String>, constraints: &[Constraint]) -> bool {
    constraints
        .iter()
        .all(|c| labels.contains_key(&c.topology_key))
}

/// Pods on `node` in `namespace` that `c` selects, skipping terminating ones.
fn count_matching(node: &NodeInfo, c: &Constraint, namespace: &str) -> i64 {
    node.pods
        .iter()
        .filter(|p| {
            p.namespace == namespace
                && p.pod.metadata.deletion_timestamp.is_none()
                && c.selects(p.labels())
        })
        .count() as i64
}

/// For each constraint flagged in `included`, how many pods on `node`
/// `count_matching` would count, in one pass over the pods.
fn count_matching_each(
    node: &NodeInfo,
    constraints: &[Constraint],
    included: &[bool],
    namespace: &str,
    out: &mut [i64],
) {
    out.fill(0);
    warm_pods(&node.pods, false);
    for p in &node.pods {
        if p.namespace != namespace || p.pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let labels = p.labels();
        for (i, c) in constraints.iter().enumerate() {
            if included[i] && c.selects(labels) {
                out[i] += 1;
            }
        }
    }
}

/// Matching pods per domain, for one constraint, with the counts kept in
/// a histogram so the smallest domain is known after any update.
#[derive(Clone, Debug, Default)]
struct DomainCounts {
    by_domain: HashMap<String, i64>,
    /// count → how many domains have it.
    histogram: BTreeMap<i64, usize>,
}

impl DomainCounts {
    fn add(&mut self, domain: &str, delta: i64) {
        match self.by_domain.get_mut(domain) {
            Some(c) => {
                let old = *c;
                *c += delta;
                self.moved(Some(old), old + delta);
            }
            None => self.add_new(domain.to_string(), delta),
        }
    }

    /// `add` for a domain taken by value (no copy when it is new).
    fn add_owned(&mut self, domain: String, delta: i64) {
        if self.by_domain.contains_key(&domain) {
            self.add(&domain, delta);
        } else {
            self.add_new(domain, delta);
        }
    }

    fn add_new(&mut self, domain: String, count: i64) {
        self.by_domain.insert(domain, count);
        self.moved(None, count);
    }

    /// Keeps the histogram in step with one domain going from `old` to `new`.
    fn moved(&mut self, old: Option<i64>, new: i64) {
        if let Some(old) = old {
            if let Some(n) = self.histogram.get_mut(&old) {
                *n -= 1;
                if *n == 0 {
                    self.histogram.remove(&old);
                }
            }
        }
        *self.histogram.entry(new).or_default() += 1;
    }

    fn get(&self, domain: &str) -> i64 {
        self.by_domain.get(domain).copied().unwrap_or(0)
    }

    /// The global minimum for the skew; 0 while there are fewer eligible
    /// domains than `min_domains`.
    fn min(&self, min_domains: usize) -> i64 {
        if self.by_domain.len() < min_domains {
            return 0;
        }
        self.histogram.keys().next().copied().unwrap_or(0)
    }
}

#[derive(Clone)]
struct PreFilterState {
    constraints: Arc<Vec<Constraint>>,
    /// Whether the incoming pod matches each constraint's selector.
    self_match: Arc<Vec<bool>>,
    counts: Vec<DomainCounts>,
}

impl PreFilterState {
    fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, delta: i64) {
        if other.namespace != pod.namespace {
            return;
        }
        let labels = node.labels();
        if !has_all_keys(labels, &self.constraints) {
            return;
        }
        let mut affinity_ok = None;
        for (i, c) in self.constraints.iter().enumerate() {
            if !c.selects(other.labels()) || !c.includes(&pod.pod, &node.node, &mut affinity_ok) {
                continue;
            }
            self.counts[i].add(&labels[&c.topology_key], delta);
        }
    }
}

#[derive(Clone)]
struct PreScoreState {
    constraints: Arc<Vec<Constraint>>,
    /// Matching pods per domain for each non-hostname constraint, over the
    /// domains of the feasible nodes (hostname counts are taken per node).
    counts: Arc<Vec<HashMap<String, i64>>>,
    /// `ln(domains + 2)` per constraint, so small topologies weigh more.
    weights: Arc<Vec<f64>>,
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Result<(), Status> {
        let constraints = constraints(pod, "DoNotSchedule");
        if constraints.is_empty() {
            return Ok(());
        }
        let scan = |nodes: &[Arc<NodeInfo>]| {
            let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
            let mut included = vec![false; constraints.len()];
            let mut matching = vec![0; constraints.len()];
            for node in nodes {
                let labels = node.labels();
                if !has_all_keys(labels, &constraints) {
                    continue;
                }
                let mut affinity_ok = None;
                for (inc, c) in included.iter_mut().zip(&constraints) {
                    *inc = c.includes(&pod.pod, &node.node, &mut affinity_ok);
                }
                count_matching_each(node, &constraints, &included, &pod.namespace, &mut matching);
                for (i, c) in constraints.iter().enumerate() {
                    if !included[i] {
                        continue;
                    }
                    // A domain exists even with no matching pod in it.
                    let domain = &labels[&c.topology_key];
                    match counts[i].get_mut(domain) {
                        Some(total) => *total += matching[i],
                        None => {
                            counts[i].insert(domain.clone(), matching[i]);
                        }
                    }
                }
            }
            counts
        };
        let mut counts = vec![DomainCounts::default(); constraints.len()];
        for part in par_chunks(&snapshot.nodes, scan) {
            for (i, domains) in part.into_iter().enumerate() {
                for (domain, n) in domains {
                    counts[i].add_owned(domain, n);
                }
            }
        }
        let self_match = constraints
            .iter()
            .map(|c| c.selects(pod.labels()))
            .collect();
        state.write(
            PRE_FILTER_KEY,
            PreFilterState {
                constraints: Arc::new(constraints),
                self_match: Arc::new(self_match),
                counts,
            },
        );
        Ok(())
    }

    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Ok(());
        };
        let labels = node.labels();
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.topology_key) else {
                return Err(Status::unresolvable(NAME, ERR_REASON_NODE_LABEL_NOT_MATCH));
            };
            let skew = s.counts[i].get(value) + i64::from(s.self_match[i])
                - s.counts[i].min(c.min_domains);
            if skew > c.max_skew {
                return Err(Status::unschedulable(
                    NAME,
                    ERR_REASON_CONSTRAINTS_NOT_MATCH,
                ));
            }
        }
        Ok(())
    }

    fn add_pod(&self, state: &mut CycleState, pod: &PodInfo, other: &PodInfo, node: &NodeInfo) {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.update(pod, other, node, 1);
        }
    }

    fn remove_pod(&self, state: &mut CycleState, pod: &PodInfo, other: &PodInfo, node: &NodeInfo) {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.update(pod, other, node, -1);
        }
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        nodes: &[Arc<NodeInfo>],
    ) {
        let constraints = constraints(pod, "ScheduleAnyway");
        if constraints.is_empty() || nodes.is_empty() {
            return;
        }
        // Domains come from the feasible nodes that carry every key.
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
        let mut eligible = 0usize;
        for node in nodes {
            let labels = node.labels();
            if !has_all_keys(labels, &constraints) {
                continue;
            }
            eligible += 1;
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key != HOSTNAME {
                    counts[i]
                        .entry(labels[&c.topology_key].clone())
                        .or_insert(0);
                }
            }
        }
        let weights = constraints
            .iter()
            .zip(&counts)
            .map(|(c, domains)| {
                let size = if c.topology_key == HOSTNAME {
                    eligible
                } else {
                    domains.len()
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        // Pods are counted on every node of the cluster in those domains.
        let mut included = vec![false; constraints.len()];
        let mut matching = vec![0; constraints.len()];
        for node in &snapshot.nodes {
            let labels = node.labels();
            if !has_all_keys(labels, &constraints) {
                continue;
            }
            let mut affinity_ok = None;
            for (i, c) in constraints.iter().enumerate() {
                included[i] = c.topology_key != HOSTNAME
                    && counts[i].contains_key(&labels[&c.topology_key])
                    && c.includes(&pod.pod, &node.node, &mut affinity_ok);
            }
            if !included.contains(&true) {
                continue;
            }
            count_matching_each(node, &constraints, &included, &pod.namespace, &mut matching);
            for (i, c) in constraints.iter().enumerate() {
                if let (true, Some(n)) = (included[i], counts[i].get_mut(&labels[&c.topology_key]))
                {
                    *n += matching[i];
                }
            }
        }
        state.write(
            PRE_SCORE_KEY,
            PreScoreState {
                constraints: Arc::new(constraints),
                counts: Arc::new(counts),
                weights: Arc::new(weights),
            },
        );
    }

    /// Σ over constraints of `count × weight + (maxSkew - 1)`, rounded.
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_KEY) else {
            return 0;
        };
        let labels = node.labels();
        if !has_all_keys(labels, &s.constraints) {
            return INVALID_SCORE;
        }
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            let count = if c.topology_key == HOSTNAME {
                count_matching(node, c, &pod.namespace)
            } else {
                s.counts[i]
                    .get(&labels[&c.topology_key])
                    .copied()
                    .unwrap_or(0)
            };
            score += count as f64 * s.weights[i] + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }

    /// Reversed min–max: the node with the fewest matching pods gets 100;
    /// ignored nodes get 0.
    fn normalize_score(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        if state.read::<PreScoreState>(PRE_SCORE_KEY).is_none() {
            return;
        }
        let valid = || scores.iter().copied().filter(|s| *s != INVALID_SCORE);
        let min = valid().min().unwrap_or(0);
        let max = valid().max().unwrap_or(0).max(0);
        for s in scores.iter_mut() {
            *s = if *s == INVALID_SCORE {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    fn web(name: &str) -> Arc<PodInfo> {
        labeled_pod(name, json!({"app": "web"}), json!({}))
    }

    fn spreading(constraints: Value) -> Arc<PodInfo> {
        labeled_pod(
            "new",
            json!({"app": "web"}),
            json!({"topologySpreadConstraints": constraints}),
        )
    }

    fn zone_constraint(max_skew: i32, when: &str) -> Value {
        json!([{"maxSkew": max_skew, "topologyKey": "zone", "whenUnsatisfiable": when,
                "labelSelector": {"matchLabels": {"app": "web"}}}])
    }

    /// Three zones: z1 has 2 web pods, z2 has 1, z3 none.
    fn three_zones() -> Snapshot {
        snapshot(vec![
            node_info(
                labeled_node("a", &[("zone", "z1")]),
                &[web("w1"), web("w2")],
            ),
            node_info(labeled_node("b", &[("zone", "z2")]), &[web("w3")]),
            node_info(labeled_node("c", &[("zone", "z3")]), &[]),
        ])
    }

    #[test]
    fn max_skew_over_three_zones() {
        let snap = three_zones();
        let p = spreading(zone_constraint(1, "DoNotSchedule"));
        // Only z3 (count 0 → 1, min 0) keeps the skew at 1.
        assert_eq!(feasible(&PodTopologySpread, &p, &snap), vec!["c"]);
        let (_, res) = run_filter(&PodTopologySpread, &p, &snap);
        let err = res[0].clone().unwrap_err();
        assert_eq!(err.code, Code::Unschedulable);
        assert_eq!(
            err.reasons,
            vec![ERR_REASON_CONSTRAINTS_NOT_MATCH.to_string()]
        );
        // maxSkew 2 also admits z2.
        let p = spreading(zone_constraint(2, "DoNotSchedule"));
        assert_eq!(feasible(&PodTopologySpread, &p, &snap), vec!["b", "c"]);
        // A pod the selector does not match does not count itself.
        let other = labeled_pod(
            "new",
            json!({"app": "db"}),
            json!({"topologySpreadConstraints": zone_constraint(1, "DoNotSchedule")}),
        );
        assert_eq!(feasible(&PodTopologySpread, &other, &snap), vec!["b", "c"]);
        // Pods without constraints pass everywhere.
        assert_eq!(feasible(&PodTopologySpread, &web("plain"), &snap).len(), 3);
    }

    #[test]
    fn missing_topology_label() {
        let mut nodes = vec![node_info(labeled_node("nolabel", &[]), &[])];
        nodes.push(node_info(labeled_node("c", &[("zone", "z3")]), &[]));
        let snap = snapshot(nodes);
        let p = spreading(zone_constraint(1, "DoNotSchedule"));
        let (_, res) = run_filter(&PodTopologySpread, &p, &snap);
        let err = res[0].clone().unwrap_err();
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(
            err.reasons,
            vec![ERR_REASON_NODE_LABEL_NOT_MATCH.to_string()]
        );
        assert!(res[1].is_ok());
    }

    #[test]
    fn other_namespaces_and_terminating_pods_do_not_count() {
        let elsewhere =
            pod(json!({"metadata": {"name": "x", "namespace": "other", "labels": {"app": "web"}}}));
        let leaving = pod(json!({"metadata": {"name": "y", "labels": {"app": "web"},
            "deletionTimestamp": "2024-01-01T00:00:00Z"}}));
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[("zone", "z1")]), &[elsewhere, leaving]),
            node_info(labeled_node("b", &[("zone", "z2")]), &[]),
        ]);
        let p = spreading(zone_constraint(1, "DoNotSchedule"));
        assert_eq!(feasible(&PodTopologySpread, &p, &snap), vec!["a", "b"]);
    }

    #[test]
    fn min_domains() {
        // Two zones with one pod each; minDomains 3 makes the global
        // minimum 0, so adding a second pod anywhere is a skew of 2.
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[("zone", "z1")]), &[web("w1")]),
            node_info(labeled_node("b", &[("zone", "z2")]), &[web("w2")]),
        ]);
        let p = spreading(
            json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "minDomains": 3, "labelSelector": {"matchLabels": {"app": "web"}}}]),
        );
        assert!(feasible(&PodTopologySpread, &p, &snap).is_empty());
        let p = spreading(zone_constraint(1, "DoNotSchedule"));
        assert_eq!(feasible(&PodTopologySpread, &p, &snap).len(), 2);
    }

    #[test]
    fn node_affinity_policy() {
        // z3 is empty but the pod's nodeSelector excludes it: with Honor it
        // is no domain, so z2 (1 pod) is the minimum.
        let snap = snapshot(vec![
            node_info(
                labeled_node("a", &[("zone", "z1"), ("pool", "x")]),
                &[web("w1"), web("w2")],
            ),
            node_info(
                labeled_node("b", &[("zone", "z2"), ("pool", "x")]),
                &[web("w3")],
            ),
            node_info(labeled_node("c", &[("zone", "z3")]), &[]),
        ]);
        let honor = labeled_pod(
            "new",
            json!({"app": "web"}),
            json!({"nodeSelector": {"pool": "x"},
            "topologySpreadConstraints": zone_constraint(1, "DoNotSchedule")}),
        );
        assert_eq!(feasible(&PodTopologySpread, &honor, &snap), vec!["b", "c"]);
        let mut c = zone_constraint(1, "DoNotSchedule");
        c[0]["nodeAffinityPolicy"] = json!("Ignore");
        let ignore = labeled_pod(
            "new",
            json!({"app": "web"}),
            json!({"nodeSelector": {"pool": "x"},
            "topologySpreadConstraints": c}),
        );
        assert_eq!(feasible(&PodTopologySpread, &ignore, &snap), vec!["c"]);
    }

    #[test]
    fn node_taints_policy() {
        let tainted = node(json!({"metadata": {"name": "c", "labels": {"zone": "z3"}},
            "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}));
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[("zone", "z1")]), &[web("w1")]),
            node_info(labeled_node("b", &[("zone", "z2")]), &[web("w2")]),
            node_info(tainted, &[]),
        ]);
        // Ignore (default): the tainted empty zone is the minimum.
        let p = spreading(zone_constraint(1, "DoNotSchedule"));
        assert_eq!(feasible(&PodTopologySpread, &p, &snap), vec!["c"]);
        let mut c = zone_constraint(1, "DoNotSchedule");
        c[0]["nodeTaintsPolicy"] = json!("Honor");
        let p = spreading(c);
        assert_eq!(feasible(&PodTopologySpread, &p, &snap), vec!["a", "b", "c"]);
    }

    #[test]
    fn match_label_keys() {
        // Only pods of the same revision count.
        let rev =
            |name: &str, r: &str| labeled_pod(name, json!({"app": "web", "rev": r}), json!({}));
        let snap = snapshot(vec![
            node_info(
                labeled_node("a", &[("zone", "z1")]),
                &[rev("o1", "1"), rev("o2", "1")],
            ),
            node_info(labeled_node("b", &[("zone", "z2")]), &[rev("n1", "2")]),
        ]);
        let mut c = zone_constraint(1, "DoNotSchedule");
        c[0]["matchLabelKeys"] = json!(["rev"]);
        let p = labeled_pod(
            "new",
            json!({"app": "web", "rev": "2"}),
            json!({"topologySpreadConstraints": c}),
        );
        assert_eq!(feasible(&PodTopologySpread, &p, &snap), vec!["a"]);
    }

    #[test]
    fn add_and_remove_pod_update_counts() {
        let snap = three_zones();
        let p = spreading(zone_constraint(1, "DoNotSchedule"));
        let (mut state, _) = run_filter(&PodTopologySpread, &p, &snap);
        // Removing both pods of z1 (as preemption would) makes z1 the
        // minimum with 0; adding one to z3 makes z3 skewed.
        PodTopologySpread.remove_pod(&mut state, &p, &snap.nodes[0].pods[0], &snap.nodes[0]);
        PodTopologySpread.remove_pod(&mut state, &p, &snap.nodes[0].pods[1], &snap.nodes[0]);
        PodTopologySpread.add_pod(&mut state, &p, &web("w9"), &snap.nodes[2]);
        let ok: Vec<bool> = snap
            .nodes
            .iter()
            .map(|n| PodTopologySpread.filter(&state, &p, n).is_ok())
            .collect();
        assert_eq!(ok, vec![true, false, false]);
    }

    /// 1,000 nodes in 3 zones × 10 pods; PreFilter and Filter on every
    /// node for a pod spreading over zones and hosts. Run with
    /// `--ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_spread_filter() {
        let nodes = (0..1000)
            .map(|n| {
                let pods: Vec<_> = (0..10)
                    .map(|i| {
                        let app = format!("app-{}", (n + i) % 20);
                        labeled_pod(&format!("p-{n}-{i}"), json!({"app": app}), json!({}))
                    })
                    .collect();
                let zone = format!("z{}", n % 3);
                node_info(
                    labeled_node(&format!("node-{n}"), &[("zone", &zone)]),
                    &pods,
                )
            })
            .collect();
        let snap = snapshot(nodes);
        let p = labeled_pod(
            "new",
            json!({"app": "app-7"}),
            json!({"topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"app": "app-7"}}},
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"app": "app-7"}}}]}),
        );
        let rounds = 50u32;
        let mut best = std::time::Duration::MAX;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            let t = std::time::Instant::now();
            let _ = run_filter(&PodTopologySpread, &p, &snap);
            best = best.min(t.elapsed());
        }
        let mean = start.elapsed() / rounds;
        println!(
            "PodTopologySpread pre_filter+filter over 1000 nodes / 10000 pods: \
             {mean:?} mean, {best:?} best"
        );
    }

    #[test]
    fn scoring() {
        let snap = three_zones();
        let p = spreading(zone_constraint(1, "ScheduleAnyway"));
        // Counts 2, 1, 0 with weight ln(5): raw 3, 2, 0.
        assert_eq!(run_score(&PodTopologySpread, &p, &snap), vec![0, 33, 100]);
        // ScheduleAnyway never filters.
        assert_eq!(feasible(&PodTopologySpread, &p, &snap).len(), 3);
        // Hostname spreading counts per node.
        let p = spreading(
            json!([{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}]),
        );
        assert_eq!(run_score(&PodTopologySpread, &p, &snap), vec![0, 33, 100]);
        // A node without the key scores 0.
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[("zone", "z1")]), &[web("w1")]),
            node_info(labeled_node("nolabel", &[]), &[]),
        ]);
        let p = spreading(zone_constraint(1, "ScheduleAnyway"));
        assert_eq!(run_score(&PodTopologySpread, &p, &snap), vec![100, 0]);
        // Pods on nodes that did not pass the filters still count for
        // their domain; domains come from the feasible nodes only.
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[("zone", "z1")]), &[]),
            node_info(
                labeled_node("a-full", &[("zone", "z1")]),
                &[web("w1"), web("w2")],
            ),
            node_info(labeled_node("b", &[("zone", "z2")]), &[web("w3")]),
        ]);
        let p = spreading(zone_constraint(1, "ScheduleAnyway"));
        let feasible = vec![snap.nodes[0].clone(), snap.nodes[2].clone()];
        // z1: 2 × ln(4) → 3, z2: 1 × ln(4) → 1; 100 × (max + min - s) / max.
        assert_eq!(
            run_score_on(&PodTopologySpread, &p, &snap, &feasible),
            vec![33, 100]
        );
        // No constraints: not scored.
        assert_eq!(
            run_score(&PodTopologySpread, &web("plain"), &snap),
            vec![0, 0, 0]
        );
    }
}
