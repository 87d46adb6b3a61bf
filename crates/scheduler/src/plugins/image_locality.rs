//! ImageLocality: favours nodes that already hold the pod's container
//! images, by their size, damped by how few nodes have them (so one node
//! holding a popular image does not attract every pod), scaled between
//! 23 MB and 1000 MB per container.

use std::sync::Arc;

use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Snapshot, MAX_NODE_SCORE};

pub const NAME: &str = "ImageLocality";
const STATE_KEY: &str = "PreScoreImageLocality";

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub struct ImageLocality;

/// The image name a runtime reports for `name`: a name without a registry
/// is on `docker.io`, a single-component one on Docker Hub is under
/// `library/`, and a name with neither tag nor digest is `:latest`
/// (`nginx` → `docker.io/library/nginx:latest`).
pub fn normalized_image_name(name: &str) -> String {
    let (domain, rest) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => ("docker.io", name),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let library = if domain == "docker.io" && !rest.contains('/') {
        "library/"
    } else {
        ""
    };
    let last = rest.rsplit('/').next().unwrap_or(rest);
    let tag = if rest.contains('@') || last.contains(':') {
        ""
    } else {
        ":latest"
    };
    format!("{domain}/{library}{rest}{tag}")
}

/// The spellings a node may report for the normalized image `full`:
/// without `docker.io/` (and `library/`), without `:latest`.
fn spellings(full: &str) -> Vec<String> {
    let mut bases = vec![full.to_string()];
    if let Some(rest) = full.strip_prefix("docker.io/") {
        bases.push(rest.to_string());
        if let Some(short) = rest.strip_prefix("library/") {
            bases.push(short.to_string());
        }
    }
    let untagged: Vec<String> = bases
        .iter()
        .filter_map(|b| b.strip_suffix(":latest").map(str::to_string))
        .collect();
    bases.extend(untagged);
    bases
}

#[derive(Clone)]
struct Wanted {
    spellings: Vec<String>,
    /// Nodes holding the image / all nodes.
    spread: f64,
}

#[derive(Clone)]
struct PreScoreState {
    images: Arc<Vec<Wanted>>,
}

fn container_images(pod: &PodInfo) -> Vec<&str> {
    let Some(spec) = pod.pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| c.image.as_deref().unwrap_or(""))
        .collect()
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        _nodes: &[Arc<NodeInfo>],
    ) {
        let total = snapshot.nodes.len().max(1) as f64;
        let images = container_images(pod)
            .into_iter()
            .map(|image| {
                let spellings = spellings(&normalized_image_name(image));
                let holders = spellings
                    .iter()
                    .filter_map(|s| snapshot.image_nodes.get(s))
                    .copied()
                    .max()
                    .unwrap_or(0);
                Wanted {
                    spellings,
                    spread: holders as f64 / total,
                }
            })
            .collect();
        state.write(
            STATE_KEY,
            PreScoreState {
                images: Arc::new(images),
            },
        );
    }

    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.read::<PreScoreState>(STATE_KEY) else {
            return 0;
        };
        let Some(node_images) = node.node.status.as_ref().and_then(|st| st.images.as_ref()) else {
            return 0;
        };
        if s.images.is_empty() {
            return 0;
        }
        let mut sum = 0i64;
        for want in s.images.iter() {
            let found = node_images.iter().find(|img| {
                img.names
                    .iter()
                    .flatten()
                    .any(|n| want.spellings.iter().any(|s| s == n))
            });
            if let Some(img) = found {
                sum += (img.size_bytes.unwrap_or(0) as f64 * want.spread) as i64;
            }
        }
        let max_threshold = MAX_CONTAINER_THRESHOLD * s.images.len() as i64;
        let clamped = sum.clamp(MIN_THRESHOLD, max_threshold);
        MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::{json, Value};

    use super::*;
    use crate::plugins::testutil::*;

    #[test]
    fn normalization() {
        assert_eq!(
            normalized_image_name("nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            normalized_image_name("nginx:1.25"),
            "docker.io/library/nginx:1.25"
        );
        assert_eq!(
            normalized_image_name("bitnami/redis"),
            "docker.io/bitnami/redis:latest"
        );
        assert_eq!(
            normalized_image_name("docker.io/nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            normalized_image_name("registry.k8s.io/pause:3.10"),
            "registry.k8s.io/pause:3.10"
        );
        assert_eq!(
            normalized_image_name("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            normalized_image_name("localhost/app"),
            "localhost/app:latest"
        );
        assert_eq!(
            normalized_image_name("nginx@sha256:abcd"),
            "docker.io/library/nginx@sha256:abcd"
        );
        assert!(spellings("docker.io/library/nginx:latest").contains(&"nginx".to_string()));
    }

    fn with_images(name: &str, images: Value) -> crate::framework::NodeInfo {
        node_info(
            node(json!({"metadata": {"name": name}, "status": {"images": images}})),
            &[],
        )
    }

    #[test]
    fn scores_by_size_and_spread() {
        let big = 500 * MB;
        let mut snap = snapshot(vec![
            with_images(
                "has",
                json!([{"names": ["docker.io/library/app:latest"], "sizeBytes": big}]),
            ),
            with_images("also", json!([{"names": ["app:latest"], "sizeBytes": big}])),
            with_images("none", json!([])),
            with_images(
                "other",
                json!([{"names": ["docker.io/library/other:1"], "sizeBytes": big}]),
            ),
        ]);
        snap.image_nodes = Arc::new(HashMap::from([
            ("docker.io/library/app:latest".to_string(), 1),
            ("app:latest".to_string(), 1),
            ("docker.io/library/other:1".to_string(), 1),
        ]));
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "app"}]}}),
        );
        // Held by one node of four (the counts of both spellings are not
        // summed): 500MB / 4 = 125MB, (125 - 23) / (1000 - 23) * 100 = 10.
        let s = run_score(&ImageLocality, &p, &snap);
        assert_eq!(s, vec![10, 10, 0, 0]);
        // Everywhere: the full size counts.
        snap.image_nodes = Arc::new(HashMap::from([(
            "docker.io/library/app:latest".to_string(),
            4,
        )]));
        let s = run_score(&ImageLocality, &p, &snap);
        assert_eq!(s[0], 100 * (500 - 23) / (1000 - 23));
    }
}
