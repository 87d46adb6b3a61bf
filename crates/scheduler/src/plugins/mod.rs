//! The default plugins, named as in kube-scheduler, and the default
//! profile that runs them in upstream's order with upstream's weights.

use std::sync::Arc;

use crate::framework::{Plugin, Profile};

pub mod helper;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;
pub mod volume_binding;

#[cfg(test)]
mod testutil;

pub use image_locality::ImageLocality;
pub use inter_pod_affinity::InterPodAffinity;
pub use node_affinity::NodeAffinity;
pub use node_name::NodeName;
pub use node_ports::NodePorts;
pub use node_resources_balanced_allocation::NodeResourcesBalancedAllocation;
pub use node_resources_fit::NodeResourcesFit;
pub use node_unschedulable::NodeUnschedulable;
pub use pod_topology_spread::PodTopologySpread;
pub use taint_toleration::TaintToleration;
pub use volume_binding::VolumeBinding;

/// kube-scheduler's default profile: the filters in upstream's order and
/// the scorers with their default weights. A plugin that both filters and
/// scores is one shared instance.
pub fn default_profile(scheduler_name: &str) -> Profile {
    let taint_toleration: Arc<dyn Plugin> = Arc::new(TaintToleration);
    let node_affinity: Arc<dyn Plugin> = Arc::new(NodeAffinity);
    let fit: Arc<dyn Plugin> = Arc::new(NodeResourcesFit);
    let spread: Arc<dyn Plugin> = Arc::new(PodTopologySpread);
    let inter_pod: Arc<dyn Plugin> = Arc::new(InterPodAffinity);
    Profile {
        scheduler_name: scheduler_name.to_string(),
        filters: vec![
            Arc::new(NodeUnschedulable),
            Arc::new(NodeName),
            taint_toleration.clone(),
            node_affinity.clone(),
            Arc::new(NodePorts),
            fit.clone(),
            Arc::new(VolumeBinding),
            spread.clone(),
            inter_pod.clone(),
        ],
        scorers: vec![
            (taint_toleration, 3),
            (node_affinity, 2),
            (fit, 1),
            (spread, 2),
            (inter_pod, 2),
            (Arc::new(NodeResourcesBalancedAllocation), 1),
            (Arc::new(ImageLocality), 1),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_order_and_weights() {
        let p = default_profile("default-scheduler");
        assert_eq!(p.scheduler_name, "default-scheduler");
        let filters: Vec<&str> = p.filters.iter().map(|f| f.name()).collect();
        assert_eq!(
            filters,
            [
                "NodeUnschedulable",
                "NodeName",
                "TaintToleration",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "VolumeBinding",
                "PodTopologySpread",
                "InterPodAffinity"
            ]
        );
        let scorers: Vec<(&str, i64)> = p.scorers.iter().map(|(s, w)| (s.name(), *w)).collect();
        assert_eq!(
            scorers,
            [
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1),
                ("ImageLocality", 1)
            ]
        );
    }

    /// The whole default profile for one pod on 1,000 nodes × 10 pods,
    /// every pod with required hostname anti-affinity against its app and
    /// a zone spread constraint: PreFilter and Filter of every plugin in
    /// order on every node, then PreScore/Score/NormalizeScore on the
    /// feasible nodes, as the cycle does (single-threaded filter loop).
    /// Run with `cargo test --release -p scheduler bench_default_profile
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_default_profile() {
        use std::time::{Duration, Instant};

        use serde_json::json;

        use crate::framework::CycleState;
        use crate::plugins::testutil::*;

        let spec = |app: &str| {
            json!({
                "containers": [{"name": "c", "image": "app", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "kubernetes.io/hostname"}]}},
                "topologySpreadConstraints": [{"maxSkew": 5, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"app": app}}}]
            })
        };
        let nodes = (0..1000)
            .map(|n| {
                let pods: Vec<_> = (0..10)
                    .map(|i| {
                        let app = format!("app-{}", (n * 10 + i) % 100);
                        labeled_pod(&format!("p-{n}-{i}"), json!({"app": app}), spec(&app))
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
        let pod = labeled_pod("new", json!({"app": "app-7"}), spec("app-7"));
        let profile = default_profile("default-scheduler");
        let (rounds, mut best, mut feasible_count) = (20u32, Duration::MAX, 0);
        let start = Instant::now();
        for _ in 0..rounds {
            let t = Instant::now();
            let mut state = CycleState::default();
            for f in &profile.filters {
                f.pre_filter(&mut state, &pod, &snap).unwrap();
            }
            let feasible: Vec<_> = snap
                .nodes
                .iter()
                .filter(|n| {
                    profile
                        .filters
                        .iter()
                        .all(|f| f.filter(&state, &pod, n).is_ok())
                })
                .cloned()
                .collect();
            let mut total = vec![0i64; feasible.len()];
            for (s, w) in &profile.scorers {
                s.pre_score(&mut state, &pod, &snap, &feasible);
                let mut scores: Vec<i64> =
                    feasible.iter().map(|n| s.score(&state, &pod, n)).collect();
                s.normalize_score(&state, &pod, &mut scores);
                for (t, v) in total.iter_mut().zip(scores) {
                    *t += v * w;
                }
            }
            feasible_count = feasible.len();
            best = best.min(t.elapsed());
        }
        let mean = start.elapsed() / rounds;
        println!(
            "default profile, 1000 nodes / 10000 pods with anti-affinity and spread: \
             {mean:?} mean, {best:?} best per pod ({feasible_count} feasible)"
        );
        assert_eq!(feasible_count, 900);
    }
}
