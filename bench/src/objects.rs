//! The objects the benchmarks write: 1 KiB ConfigMaps and realistic pods.

use bytes::Bytes;
use serde_json::json;

/// A ConfigMap whose serialized form is about 1 KiB.
pub fn configmap(name: &str) -> Bytes {
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"bench": "skiff"}},
        "data": {"payload": filler(name, 900)},
    });
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// A pod shaped like one a Deployment would create: two containers with
/// ports, env, resources, probes and mounts; about 2.5 KiB as JSON before
/// the server's defaulting.
pub fn pod(namespace: &str, index: usize) -> Bytes {
    let app = format!("app-{}", index % 25);
    let hash = format!(
        "{:010x}",
        (index as u64 / 40).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 24
    );
    let name = format!("{app}-{hash}-{index:05}");
    let body = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": app,
                "app.kubernetes.io/part-of": "bench",
                "pod-template-hash": hash,
                "tier": if index.is_multiple_of(3) { "frontend" } else { "backend" },
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090",
                "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z",
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": format!("registry.local/bench/{app}:1.{}.0", index % 7),
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["--listen=:8080", "--metrics=:9090", "--log-level=info"],
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                    ],
                    "env": [
                        {"name": "APP_NAME", "value": app},
                        {"name": "APP_ENV", "value": "production"},
                        {"name": "CACHE_URL", "value": "redis://cache.bench.svc.cluster.local:6379/0"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    ],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"cpu": "500m", "memory": "256Mi"},
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/healthz", "port": 8080},
                        "periodSeconds": 5,
                    },
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": 8080},
                        "initialDelaySeconds": 10,
                        "periodSeconds": 10,
                    },
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/app", "readOnly": true},
                        {"name": "cache", "mountPath": "/var/cache/app"},
                    ],
                },
                {
                    "name": "log-shipper",
                    "image": "registry.local/bench/log-shipper:2.3.1",
                    "args": ["--source=/var/log/app", "--sink=http://logs.bench.svc:8080"],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"memory": "64Mi"},
                    },
                    "volumeMounts": [{"name": "cache", "mountPath": "/var/log/app"}],
                },
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": format!("{app}-config")}},
                {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
            ],
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ],
            "affinity": {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }],
                },
            },
        },
    });
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// `len` printable bytes derived from `seed`, so payloads don't compress to nothing.
pub fn filler(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// A Deployment as a user's manifest would have it (two containers with
/// ports, env and resources), in the given namespace.
pub fn deployment(namespace: &str, name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name, "bench": "apply"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {
                        "name": "web",
                        "image": "registry.local/web:1.4.2",
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "env": [{"name": "MODE", "value": "production"}, {"name": "LOG", "value": "info"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                    },
                    {"name": "sidecar", "image": "registry.local/proxy:2.0", "args": ["--port", "9000"]},
                ]},
            },
        },
    })
}
