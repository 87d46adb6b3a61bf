//! InterPodAffinity: pod affinity and anti-affinity between the pod being
//! scheduled and the pods already placed, per topology domain (the nodes
//! sharing a value of the term's `topologyKey`).
//!
//! Filter: the pod's required affinity terms must each find a pod (one
//! pod matching all of them) in the node's domain, unless no pod in the
//! cluster matches yet and the pod matches its own terms (the first of a
//! group of pods that want to be together); the pod's required
//! anti-affinity terms must find no matching pod in the node's domain; and
//! no pod already placed may have a required anti-affinity term matching
//! the pod within its domain. PreFilter counts, in one pass over the
//! pods, the matches per (topology key, value); Filter then only looks up
//! the node's values.
//!
//! Score: the pod's preferred affinity (+weight) and anti-affinity
//! (-weight) terms against the pods placed, and, symmetrically, the
//! placed pods' preferred terms (±weight) and required affinity terms
//! (weight 1, upstream's default hardPodAffinityWeight) matching the pod,
//! summed per domain, then scaled min–max to 0..100.
//!
//! Terms honour `namespaces` (empty, with no `namespaceSelector`: the term
//! owner's namespace), `namespaceSelector` (`{}`: every namespace) against
//! the snapshot's namespace labels, and `matchLabelKeys` /
//! `mismatchLabelKeys` (the owner's values for those keys must / must not
//! be the target's; the API server may already have merged them into the
//! selector, which gives the same answer).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::PodAffinityTerm;

use super::helper::{
    par_chunks, preferred_affinity_terms, preferred_anti_affinity_terms, required_affinity_terms,
    required_anti_affinity_terms, warm_pods,
};
use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Snapshot, Status, MAX_NODE_SCORE};

pub const NAME: &str = "InterPodAffinity";
pub const ERR_REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
pub const ERR_REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";

const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";
/// The score weight of a placed pod's required affinity term that the pod
/// matches (upstream's `hardPodAffinityWeight` default).
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

pub struct InterPodAffinity;

type NamespaceLabels = HashMap<String, BTreeMap<String, String>>;

fn empty_labels() -> &'static BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    &EMPTY
}

/// Whether `target` matches `term`, one of `owner`'s terms.
fn term_matches(
    term: &PodAffinityTerm,
    owner: &PodInfo,
    target: &PodInfo,
    ns_labels: &NamespaceLabels,
) -> bool {
    let namespaces = term.namespaces.as_deref().unwrap_or_default();
    let ns_ok = if namespaces.is_empty() && term.namespace_selector.is_none() {
        target.namespace == owner.namespace
    } else {
        namespaces.contains(&target.namespace)
            || term.namespace_selector.as_ref().is_some_and(|sel| {
                client::labels::is_empty(sel)
                    || client::labels::matches(
                        sel,
                        ns_labels.get(&target.namespace).unwrap_or(empty_labels()),
                    )
            })
    };
    if !ns_ok {
        return false;
    }
    // No labelSelector selects no pod.
    let Some(selector) = term.label_selector.as_ref() else {
        return false;
    };
    let labels = target.labels();
    if !client::labels::matches(selector, labels) {
        return false;
    }
    let own = owner.labels();
    let same = term
        .match_label_keys
        .iter()
        .flatten()
        .all(|k| own.get(k).is_none_or(|v| labels.get(k) == Some(v)));
    let differ = term
        .mismatch_label_keys
        .iter()
        .flatten()
        .all(|k| own.get(k).is_none_or(|v| labels.get(k) != Some(v)));
    same && differ
}

/// Counts per topology pair, as `key → value → count`, so a lookup needs
/// no allocation. Zero entries are dropped, so `is_empty` means "nothing
/// matched anywhere".
#[derive(Clone, Debug, Default)]
struct TopologyCounts(HashMap<String, HashMap<String, i64>>);

impl TopologyCounts {
    fn add(&mut self, key: &str, value: &str, delta: i64) {
        if delta == 0 {
            return;
        }
        let values = match self.0.get_mut(key) {
            Some(v) => v,
            None => self.0.entry(key.to_string()).or_default(),
        };
        let zero = match values.get_mut(value) {
            Some(c) => {
                *c += delta;
                *c == 0
            }
            None => {
                values.insert(value.to_string(), delta);
                false
            }
        };
        if zero {
            values.remove(value);
            if values.is_empty() {
                self.0.remove(key);
            }
        }
    }

    /// Adds `delta` for the node's value of `key`, if it has one.
    fn add_on(&mut self, labels: &BTreeMap<String, String>, key: &str, delta: i64) {
        if let Some(v) = labels.get(key) {
            self.add(key, v, delta);
        }
    }

    fn merge(&mut self, other: TopologyCounts) {
        for (k, values) in other.0 {
            for (v, c) in values {
                self.add(&k, &v, c);
            }
        }
    }

    fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .get(key)
            .and_then(|v| v.get(value))
            .copied()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether some pair of the node's labels has a positive count.
    fn any_positive_on(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().any(|(k, values)| {
            labels
                .get(k)
                .and_then(|v| values.get(v))
                .is_some_and(|c| *c > 0)
        })
    }

    /// Σ of the counts of the node's pairs.
    fn sum_on(&self, labels: &BTreeMap<String, String>) -> i64 {
        self.0
            .iter()
            .filter_map(|(k, values)| labels.get(k).and_then(|v| values.get(v)))
            .sum()
    }
}

/// Per (topology key, value), the placed pods that matter to the pod's
/// required terms.
#[derive(Clone, Debug, Default)]
struct Counts {
    /// Placed pods whose required anti-affinity terms match the pod.
    existing_anti_affinity: TopologyCounts,
    /// Placed pods matching all of the pod's required affinity terms.
    affinity: TopologyCounts,
    /// Placed pods matching the pod's required anti-affinity terms.
    anti_affinity: TopologyCounts,
}

/// Term results already computed in this pass, by pod key (see
/// `PodInfo::label_key`): replicas of one template are matched once.
#[derive(Default)]
struct Memo {
    /// Another pod's `anti_affinity_key` → which of its required
    /// anti-affinity terms match the pod being scheduled.
    existing: HashMap<u128, Vec<bool>, KeyHash>,
    /// Another pod's `label_key` → whether all the pod's required affinity
    /// terms match it, and which of its required anti-affinity terms do.
    own: HashMap<u128, (bool, Vec<bool>), KeyHash>,
}

/// The memo's keys are already hashes: use their low bits as they are.
type KeyHash = std::hash::BuildHasherDefault<KeyHasher>;

#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

impl Counts {
    /// Counts `other` (placed on a node with `labels`) against `pod`.
    fn count(
        &mut self,
        pod: &PodInfo,
        other: &PodInfo,
        labels: &BTreeMap<String, String>,
        ns: &NamespaceLabels,
        delta: i64,
        memo: &mut Memo,
    ) {
        if other.has_required_anti_affinity {
            let terms = required_anti_affinity_terms(&other.pod);
            let hits = memo
                .existing
                .entry(other.anti_affinity_key)
                .or_insert_with(|| {
                    terms
                        .iter()
                        .map(|t| term_matches(t, other, pod, ns))
                        .collect()
                });
            for (t, hit) in terms.iter().zip(hits.iter()) {
                if *hit {
                    self.existing_anti_affinity
                        .add_on(labels, &t.topology_key, delta);
                }
            }
        }
        let aff = required_affinity_terms(&pod.pod);
        let anti = required_anti_affinity_terms(&pod.pod);
        if aff.is_empty() && anti.is_empty() {
            return;
        }
        let (all_aff, anti_hits) = memo.own.entry(other.label_key).or_insert_with(|| {
            (
                !aff.is_empty() && aff.iter().all(|t| term_matches(t, pod, other, ns)),
                anti.iter()
                    .map(|t| term_matches(t, pod, other, ns))
                    .collect(),
            )
        });
        if *all_aff {
            for t in aff {
                self.affinity.add_on(labels, &t.topology_key, delta);
            }
        }
        for (t, hit) in anti.iter().zip(anti_hits.iter()) {
            if *hit {
                self.anti_affinity.add_on(labels, &t.topology_key, delta);
            }
        }
    }

    fn merge(&mut self, other: Counts) {
        self.existing_anti_affinity
            .merge(other.existing_anti_affinity);
        self.affinity.merge(other.affinity);
        self.anti_affinity.merge(other.anti_affinity);
    }

    /// One pass over the pods of `nodes`: every pod when the pod has
    /// required terms of its own, else only the pods with required
    /// anti-affinity.
    fn scan(
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        own_terms: bool,
        ns: &NamespaceLabels,
    ) -> Counts {
        let mut c = Counts::default();
        let mut memo = Memo::default();
        for node in nodes {
            if !own_terms && node.pods_with_required_anti_affinity == 0 {
                continue;
            }
            warm_pods(&node.pods, true);
            let labels = node.labels();
            for other in &node.pods {
                if own_terms || other.has_required_anti_affinity {
                    c.count(pod, other, labels, ns, 1, &mut memo);
                }
            }
        }
        c
    }
}

#[derive(Clone)]
struct PreFilterState {
    counts: Counts,
    /// Whether the pod matches all its own required affinity terms.
    self_match: bool,
    namespace_labels: Arc<NamespaceLabels>,
}

#[derive(Clone)]
struct PreScoreState {
    scores: Arc<TopologyCounts>,
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Result<(), Status> {
        let own_terms =
            !required_affinity_terms(&pod.pod).is_empty() || pod.has_required_anti_affinity;
        let ns = &*snapshot.namespace_labels;
        let mut counts = Counts::default();
        for part in par_chunks(&snapshot.nodes, |nodes| {
            Counts::scan(pod, nodes, own_terms, ns)
        }) {
            counts.merge(part);
        }
        if counts.existing_anti_affinity.is_empty() && !own_terms {
            // Nothing to check on any node (upstream's Skip).
            return Ok(());
        }
        let aff = required_affinity_terms(&pod.pod);
        let self_match = !aff.is_empty() && aff.iter().all(|t| term_matches(t, pod, pod, ns));
        state.write(
            PRE_FILTER_KEY,
            PreFilterState {
                counts,
                self_match,
                namespace_labels: snapshot.namespace_labels.clone(),
            },
        );
        Ok(())
    }

    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_KEY) else {
            return Ok(());
        };
        let labels = node.labels();

        let aff = required_affinity_terms(&pod.pod);
        if !aff.is_empty() {
            let mut pods_exist = true;
            for t in aff {
                // Every topology key must be on the node, even for the
                // first pod of a group.
                let Some(v) = labels.get(&t.topology_key) else {
                    return Err(Status::unresolvable(NAME, ERR_REASON_AFFINITY));
                };
                if s.counts.affinity.get(&t.topology_key, v) <= 0 {
                    pods_exist = false;
                }
            }
            // The first of a group: nothing matches anywhere yet and the
            // pod matches its own terms.
            let first_of_group = s.counts.affinity.is_empty() && s.self_match;
            if !(pods_exist || first_of_group) {
                return Err(Status::unresolvable(NAME, ERR_REASON_AFFINITY));
            }
        }

        for t in required_anti_affinity_terms(&pod.pod) {
            if labels
                .get(&t.topology_key)
                .is_some_and(|v| s.counts.anti_affinity.get(&t.topology_key, v) > 0)
            {
                return Err(Status::unschedulable(NAME, ERR_REASON_ANTI_AFFINITY));
            }
        }

        if s.counts.existing_anti_affinity.any_positive_on(labels) {
            return Err(Status::unschedulable(
                NAME,
                ERR_REASON_EXISTING_ANTI_AFFINITY,
            ));
        }
        Ok(())
    }

    fn add_pod(&self, state: &mut CycleState, pod: &PodInfo, other: &PodInfo, node: &NodeInfo) {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.counts.count(
                pod,
                other,
                node.labels(),
                &s.namespace_labels,
                1,
                &mut Memo::default(),
            );
        }
    }

    fn remove_pod(&self, state: &mut CycleState, pod: &PodInfo, other: &PodInfo, node: &NodeInfo) {
        if let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_KEY) {
            s.counts.count(
                pod,
                other,
                node.labels(),
                &s.namespace_labels,
                -1,
                &mut Memo::default(),
            );
        }
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        nodes: &[Arc<NodeInfo>],
    ) {
        if nodes.is_empty() {
            return;
        }
        let pref_aff = preferred_affinity_terms(&pod.pod);
        let pref_anti = preferred_anti_affinity_terms(&pod.pod);
        let own_terms = !pref_aff.is_empty() || !pref_anti.is_empty();
        // Unless the pod has preferred terms, only placed pods with terms
        // of their own can score anything.
        if !own_terms && !snapshot.any_pods_with_affinity() {
            return;
        }
        let ns = &*snapshot.namespace_labels;
        let scan = |nodes: &[Arc<NodeInfo>]| {
            let mut scores = TopologyCounts::default();
            for node in nodes {
                if !own_terms && node.pods_with_affinity == 0 {
                    continue;
                }
                let labels = node.labels();
                if labels.is_empty() {
                    continue;
                }
                for other in &node.pods {
                    if !own_terms && !other.scores_others {
                        continue;
                    }
                    for t in pref_aff {
                        if term_matches(&t.pod_affinity_term, pod, other, ns) {
                            scores.add_on(
                                labels,
                                &t.pod_affinity_term.topology_key,
                                i64::from(t.weight),
                            );
                        }
                    }
                    for t in pref_anti {
                        if term_matches(&t.pod_affinity_term, pod, other, ns) {
                            scores.add_on(
                                labels,
                                &t.pod_affinity_term.topology_key,
                                -i64::from(t.weight),
                            );
                        }
                    }
                    if !other.scores_others {
                        continue;
                    }
                    for t in required_affinity_terms(&other.pod) {
                        if term_matches(t, other, pod, ns) {
                            scores.add_on(labels, &t.topology_key, HARD_POD_AFFINITY_WEIGHT);
                        }
                    }
                    for t in preferred_affinity_terms(&other.pod) {
                        if term_matches(&t.pod_affinity_term, other, pod, ns) {
                            scores.add_on(
                                labels,
                                &t.pod_affinity_term.topology_key,
                                i64::from(t.weight),
                            );
                        }
                    }
                    for t in preferred_anti_affinity_terms(&other.pod) {
                        if term_matches(&t.pod_affinity_term, other, pod, ns) {
                            scores.add_on(
                                labels,
                                &t.pod_affinity_term.topology_key,
                                -i64::from(t.weight),
                            );
                        }
                    }
                }
            }
            scores
        };
        let mut scores = TopologyCounts::default();
        for part in par_chunks(&snapshot.nodes, scan) {
            scores.merge(part);
        }
        if !scores.is_empty() {
            state.write(
                PRE_SCORE_KEY,
                PreScoreState {
                    scores: Arc::new(scores),
                },
            );
        }
    }

    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        state
            .read::<PreScoreState>(PRE_SCORE_KEY)
            .map(|s| s.scores.sum_on(node.labels()))
            .unwrap_or(0)
    }

    /// Min–max to 0..=100; all equal gives 0 everywhere.
    fn normalize_score(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        if state.read::<PreScoreState>(PRE_SCORE_KEY).is_none() {
            return;
        }
        let (Some(&min), Some(&max)) = (scores.iter().min(), scores.iter().max()) else {
            return;
        };
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::{json, Value};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    fn anti(label: Value, key: &str) -> Value {
        json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": label}, "topologyKey": key}]}}})
    }

    fn aff(label: Value, key: &str) -> Value {
        json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": label}, "topologyKey": key}]}}})
    }

    fn web_with_anti(name: &str) -> Arc<PodInfo> {
        labeled_pod(
            name,
            json!({"app": "web"}),
            anti(json!({"app": "web"}), "kubernetes.io/hostname"),
        )
    }

    #[test]
    fn anti_affinity_on_hostname_keeps_web_pods_apart() {
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[]), &[web_with_anti("web-1")]),
            node_info(labeled_node("b", &[]), &[]),
        ]);
        let p = web_with_anti("web-2");
        assert_eq!(feasible(&InterPodAffinity, &p, &snap), vec!["b"]);
        let (_, res) = run_filter(&InterPodAffinity, &p, &snap);
        let err = res[0].clone().unwrap_err();
        assert_eq!(err.code, Code::Unschedulable);
        // The pod's own anti-affinity is checked before the placed pod's.
        assert_eq!(err.reasons, vec![ERR_REASON_ANTI_AFFINITY.to_string()]);

        // A web pod without terms is still kept off by the placed pod's
        // anti-affinity (symmetry).
        let plain = labeled_pod("web-3", json!({"app": "web"}), json!({}));
        let (_, res) = run_filter(&InterPodAffinity, &plain, &snap);
        assert_eq!(
            res[0].clone().unwrap_err().reasons,
            vec![ERR_REASON_EXISTING_ANTI_AFFINITY.to_string()]
        );
        assert!(res[1].is_ok());
        // A pod of another app is not affected.
        let db = labeled_pod("db", json!({"app": "db"}), json!({}));
        assert_eq!(feasible(&InterPodAffinity, &db, &snap), vec!["a", "b"]);
    }

    #[test]
    fn zone_anti_affinity() {
        let snap = snapshot(vec![
            node_info(
                labeled_node("a1", &[("zone", "z1")]),
                &[labeled_pod("cache", json!({"app": "cache"}), json!({}))],
            ),
            node_info(labeled_node("a2", &[("zone", "z1")]), &[]),
            node_info(labeled_node("b1", &[("zone", "z2")]), &[]),
            node_info(labeled_node("nozone", &[]), &[]),
        ]);
        let p = labeled_pod(
            "cache-2",
            json!({"app": "cache"}),
            anti(json!({"app": "cache"}), "zone"),
        );
        // The whole of z1 is excluded; a node without the key is fine for
        // anti-affinity.
        assert_eq!(feasible(&InterPodAffinity, &p, &snap), vec!["b1", "nozone"]);
    }

    #[test]
    fn affinity_requires_co_located_pod() {
        let snap = snapshot(vec![
            node_info(
                labeled_node("a1", &[("zone", "z1")]),
                &[labeled_pod("store", json!({"app": "store"}), json!({}))],
            ),
            node_info(labeled_node("a2", &[("zone", "z1")]), &[]),
            node_info(labeled_node("b1", &[("zone", "z2")]), &[]),
            node_info(labeled_node("nozone", &[]), &[]),
        ]);
        let p = labeled_pod(
            "web",
            json!({"app": "web"}),
            aff(json!({"app": "store"}), "zone"),
        );
        assert_eq!(feasible(&InterPodAffinity, &p, &snap), vec!["a1", "a2"]);
        let (_, res) = run_filter(&InterPodAffinity, &p, &snap);
        let err = res[2].clone().unwrap_err();
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(err.reasons, vec![ERR_REASON_AFFINITY.to_string()]);
        let p = labeled_pod(
            "web",
            json!({"app": "web"}),
            aff(json!({"app": "store"}), "kubernetes.io/hostname"),
        );
        assert_eq!(feasible(&InterPodAffinity, &p, &snap), vec!["a1"]);
    }

    #[test]
    fn first_pod_of_a_group() {
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[("zone", "z1")]), &[]),
            node_info(labeled_node("b", &[("zone", "z2")]), &[]),
            node_info(labeled_node("nozone", &[]), &[]),
        ]);
        // Matches its own term and no pod matches yet: any node with the key.
        let p = labeled_pod(
            "g1",
            json!({"group": "g"}),
            aff(json!({"group": "g"}), "zone"),
        );
        assert_eq!(feasible(&InterPodAffinity, &p, &snap), vec!["a", "b"]);
        // Not matching its own term: nowhere.
        let p = labeled_pod(
            "x",
            json!({"group": "other"}),
            aff(json!({"group": "g"}), "zone"),
        );
        assert!(feasible(&InterPodAffinity, &p, &snap).is_empty());
        // Once a member exists, only its domain.
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[("zone", "z1")]), &[]),
            node_info(
                labeled_node("b", &[("zone", "z2")]),
                &[labeled_pod("g0", json!({"group": "g"}), json!({}))],
            ),
        ]);
        let p = labeled_pod(
            "g1",
            json!({"group": "g"}),
            aff(json!({"group": "g"}), "zone"),
        );
        assert_eq!(feasible(&InterPodAffinity, &p, &snap), vec!["b"]);
    }

    #[test]
    fn namespaces_and_namespace_selector() {
        let in_ns = |name: &str, ns: &str| {
            pod(json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": "db"}}}))
        };
        let snap = with_namespaces(
            snapshot(vec![
                node_info(labeled_node("a", &[]), &[in_ns("db1", "prod")]),
                node_info(labeled_node("b", &[]), &[in_ns("db2", "dev")]),
                node_info(labeled_node("c", &[]), &[]),
            ]),
            &[
                ("prod", &[("env", "prod")]),
                ("dev", &[("env", "dev")]),
                ("default", &[]),
            ],
        );
        let term = |extra: Value| {
            let mut t = json!({"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"});
            for (k, v) in extra.as_object().unwrap() {
                t[k] = v.clone();
            }
            labeled_pod(
                "p",
                json!({}),
                json!({"affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [t]}}}),
            )
        };
        // Default: the pod's own namespace (default) has no db pods.
        assert_eq!(
            feasible(&InterPodAffinity, &term(json!({})), &snap).len(),
            3
        );
        assert_eq!(
            feasible(
                &InterPodAffinity,
                &term(json!({"namespaces": ["prod"]})),
                &snap
            ),
            vec!["b", "c"]
        );
        let by_label = term(json!({"namespaceSelector": {"matchLabels": {"env": "dev"}}}));
        assert_eq!(
            feasible(&InterPodAffinity, &by_label, &snap),
            vec!["a", "c"]
        );
        let all = term(json!({"namespaceSelector": {}}));
        assert_eq!(feasible(&InterPodAffinity, &all, &snap), vec!["c"]);
    }

    #[test]
    fn match_label_keys() {
        let rev =
            |name: &str, r: &str| labeled_pod(name, json!({"app": "web", "rev": r}), json!({}));
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[]), &[rev("old", "1")]),
            node_info(labeled_node("b", &[]), &[rev("new", "2")]),
        ]);
        let p = labeled_pod(
            "p",
            json!({"app": "web", "rev": "2"}),
            json!({"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "web"}},
            "topologyKey": "kubernetes.io/hostname", "matchLabelKeys": ["rev"]}]}}}),
        );
        assert_eq!(feasible(&InterPodAffinity, &p, &snap), vec!["a"]);
        let p = labeled_pod(
            "p",
            json!({"app": "web", "rev": "2"}),
            json!({"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "web"}},
            "topologyKey": "kubernetes.io/hostname", "mismatchLabelKeys": ["rev"]}]}}}),
        );
        assert_eq!(feasible(&InterPodAffinity, &p, &snap), vec!["b"]);
    }

    #[test]
    fn add_and_remove_pod() {
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[]), &[web_with_anti("web-1")]),
            node_info(labeled_node("b", &[]), &[]),
        ]);
        let p = labeled_pod("web-2", json!({"app": "web"}), json!({}));
        let (mut state, res) = run_filter(&InterPodAffinity, &p, &snap);
        assert!(res[0].is_err());
        // Preemption removes web-1 from a: a fits.
        InterPodAffinity.remove_pod(&mut state, &p, &snap.nodes[0].pods[0], &snap.nodes[0]);
        assert!(InterPodAffinity.filter(&state, &p, &snap.nodes[0]).is_ok());
        // A nominated web pod with anti-affinity lands on b: b is closed.
        InterPodAffinity.add_pod(&mut state, &p, &web_with_anti("web-9"), &snap.nodes[1]);
        assert!(InterPodAffinity.filter(&state, &p, &snap.nodes[1]).is_err());
    }

    #[test]
    fn scoring() {
        let snap = snapshot(vec![
            node_info(
                labeled_node("a", &[("zone", "z1")]),
                &[labeled_pod("s", json!({"app": "store"}), json!({}))],
            ),
            node_info(
                labeled_node("b", &[("zone", "z2")]),
                &[labeled_pod("w", json!({"app": "web"}), json!({}))],
            ),
            node_info(labeled_node("c", &[("zone", "z3")]), &[]),
        ]);
        let p = labeled_pod(
            "p",
            json!({"app": "web"}),
            json!({"affinity": {
            "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "store"}}, "topologyKey": "zone"}}]},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 5, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}}]}}}),
        );
        // a: +10, b: -5, c: 0 → min–max.
        assert_eq!(run_score(&InterPodAffinity, &p, &snap), vec![100, 0, 33]);
        // No terms anywhere: no score.
        let plain = labeled_pod("q", json!({"app": "x"}), json!({}));
        assert_eq!(run_score(&InterPodAffinity, &plain, &snap), vec![0, 0, 0]);
    }

    #[test]
    fn scoring_symmetry() {
        // A placed pod's preferred and required affinity toward the pod
        // attract it; its preferred anti-affinity repels it.
        let attract = labeled_pod(
            "s",
            json!({"app": "store"}),
            json!({"affinity": {"podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 8, "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}}]}}}),
        );
        let hard = labeled_pod(
            "h",
            json!({"app": "store"}),
            aff(json!({"app": "web"}), "zone"),
        );
        let repel = labeled_pod(
            "r",
            json!({"app": "batch"}),
            json!({"affinity": {"podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 4, "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}}]}}}),
        );
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[("zone", "z1")]), &[attract]),
            node_info(labeled_node("b", &[("zone", "z2")]), &[hard]),
            node_info(labeled_node("c", &[("zone", "z3")]), &[repel]),
            node_info(labeled_node("d", &[("zone", "z4")]), &[]),
        ]);
        let p = labeled_pod("p", json!({"app": "web"}), json!({}));
        // a: 8, b: 1, c: -4, d: 0 → (s + 4) * 100 / 12.
        assert_eq!(
            run_score(&InterPodAffinity, &p, &snap),
            vec![100, 41, 0, 33]
        );
    }

    /// 1,000 nodes × 10 pods, every pod with required anti-affinity on the
    /// hostname against its app (100 apps); PreFilter and Filter on every
    /// node for one more pod. Run with `--ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_anti_affinity_filter() {
        let mut nodes = Vec::new();
        for n in 0..1000 {
            let pods: Vec<_> = (0..10)
                .map(|i| {
                    let app = format!("app-{}", (n * 10 + i) % 100);
                    labeled_pod(
                        &format!("p-{n}-{i}"),
                        json!({"app": app}),
                        anti(json!({"app": app}), "kubernetes.io/hostname"),
                    )
                })
                .collect();
            nodes.push(node_info(
                labeled_node(&format!("node-{n}"), &[("zone", &format!("z{}", n % 3))]),
                &pods,
            ));
        }
        let snap = snapshot(nodes);
        let p = labeled_pod(
            "new",
            json!({"app": "app-7"}),
            anti(json!({"app": "app-7"}), "kubernetes.io/hostname"),
        );
        let rounds = 50;
        let (mut fit, mut best) = (0, std::time::Duration::MAX);
        let start = Instant::now();
        for _ in 0..rounds {
            let t = Instant::now();
            let (_, res) = run_filter(&InterPodAffinity, &p, &snap);
            best = best.min(t.elapsed());
            fit = res.iter().filter(|r| r.is_ok()).count();
        }
        let mean = start.elapsed() / rounds;
        println!(
            "InterPodAffinity pre_filter+filter over 1000 nodes / 10000 pods: \
             {mean:?} mean, {best:?} best ({fit} feasible)"
        );
        assert_eq!(fit, 900);
        let start = Instant::now();
        for _ in 0..rounds {
            let _ = run_score(&InterPodAffinity, &p, &snap);
        }
        let mean = start.elapsed() / rounds;
        println!("InterPodAffinity pre_score+score+normalize: {mean:?} mean");
    }
}
