//! The node agent end to end: `skiff server` with its agent (real
//! containerd, runc, CNI) inside a network namespace of its own, driven with
//! the real kubectl. Needs root and the runtime packages (`make test`
//! installs them) and the test images (`make images`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{eventually, jsonpath, node_ready, wait_phase, wait_ready, Server};

const BUSYBOX: &str = "localhost/busybox:1.35";
const DEMO: &str = "localhost/skiff-demo:0.1";

#[test]
fn node_registers_and_runs_pods_with_logs_exec_and_port_forward() {
    let s = Server::start_node(&["--node-label", "tier=edge"]);
    node_ready(&s);
    let node = s.ok(&["get", "nodes", "-o", "json"]);
    let node: serde_json::Value = serde_json::from_str(&node).unwrap();
    let n = &node["items"][0];
    let labels = &n["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["tier"], "edge");
    assert_eq!(labels["node-role.kubernetes.io/control-plane"], "true");
    assert_eq!(n["status"]["capacity"]["pods"], "110");
    assert!(n["status"]["nodeInfo"]["containerRuntimeVersion"]
        .as_str()
        .unwrap()
        .starts_with("containerd://"));
    let lease = s.ok(&["get", "lease", "-n", "kube-node-lease", "-o", "name"]);
    assert!(lease.contains("lease"), "{lease}");

    // A configMap and a secret, as env and as files; init containers in
    // order; two containers talking over localhost.
    s.ok(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=greeting=hello-cm",
    ]);
    s.ok(&[
        "create",
        "secret",
        "generic",
        "sec",
        "--from-literal=password=s3cret",
    ]);
    s.apply_stdin(
        &["apply"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 2
  volumes:
  - {{name: work, emptyDir: {{}}}}
  - {{name: cfg, configMap: {{name: cfg}}}}
  - {{name: sec, secret: {{secretName: sec}}}}
  initContainers:
  - {{name: init-one, image: {BUSYBOX}, command: [sh, -c, "echo one >> /work/order"], volumeMounts: [{{name: work, mountPath: /work}}]}}
  - {{name: init-two, image: {BUSYBOX}, command: [sh, -c, "echo two >> /work/order"], volumeMounts: [{{name: work, mountPath: /work}}]}}
  containers:
  - name: app
    image: {DEMO}
    ports: [{{containerPort: 8080}}]
  - name: client
    image: {BUSYBOX}
    env:
    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: cfg, key: greeting}}}}}}
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: sec, key: password}}}}}}
    - {{name: MY_POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    command: [sh, -c]
    args:
    - |
      cat /work/order
      echo "env $GREETING $PASSWORD $MY_POD"
      echo "files $(cat /etc/cfg/greeting) $(cat /etc/sec/password)"
      i=0
      while true; do
        i=$((i+1))
        echo "tick $i $(wget -qO- http://127.0.0.1:8080/)"
        sleep 0.5
      done
    volumeMounts:
    - {{name: work, mountPath: /work}}
    - {{name: cfg, mountPath: /etc/cfg}}
    - {{name: sec, mountPath: /etc/sec}}
"#
        ),
    );
    wait_phase(&s, "web", "Running");
    wait_ready(&s, "web", "True");
    let pod_ip = jsonpath(&s, "pod/web", "{.status.podIP}");
    assert!(pod_ip.starts_with("10.42."), "pod IP {pod_ip}");
    let logs = eventually(Duration::from_secs(30), || {
        let l = s.ok(&["logs", "web", "-c", "client"]);
        l.contains("tick 2").then_some(l)
    });
    assert!(logs.starts_with("one\ntwo\n"), "init order: {logs}");
    assert!(logs.contains("env hello-cm s3cret web"), "{logs}");
    assert!(logs.contains("files hello-cm s3cret"), "{logs}");
    assert!(
        logs.contains("tick 1 hello from web"),
        "localhost traffic: {logs}"
    );
    let init = jsonpath(
        &s,
        "pod/web",
        "{.status.initContainerStatuses[*].state.terminated.reason}",
    );
    assert_eq!(init, "Completed Completed");

    // logs -f streams new lines as they come.
    let mut follow = s
        .kubectl_cmd()
        .args(["logs", "-f", "web", "-c", "client", "--tail=1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first: u64 = tick(&lines.next().unwrap().unwrap());
    let later: u64 = tick(&lines.nth(2).unwrap().unwrap());
    assert!(later >= first + 3, "{first} then {later}");
    let _ = follow.kill();
    let _ = follow.wait();
    let tail = s.ok(&["logs", "web", "-c", "client", "--tail=2", "--timestamps"]);
    assert_eq!(tail.lines().count(), 2, "{tail}");
    assert!(tail.starts_with("20"), "timestamps: {tail}");

    // exec with output and exit codes.
    let out = s.ok(&[
        "exec", "-it", "web", "-c", "client", "--", "sh", "-c", "echo hi",
    ]);
    assert_eq!(out.trim(), "hi");
    let out = s.kubectl(&["exec", "web", "-c", "client", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "exit code through exec");
    let out = s.kubectl_stdin(
        &["exec", "-i", "web", "-c", "client", "--", "cat"],
        "piped\n",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped\n");

    // port-forward serves the demo app on 127.0.0.1, from a pod or from a
    // Service (kubectl picks a pod behind it and maps the port).
    assert!(port_forward_get(&s, "pod/web", 8080).contains("hello from web"));
    s.ok(&[
        "expose",
        "pod",
        "web",
        "--port",
        "80",
        "--target-port",
        "8080",
    ]);
    assert!(port_forward_get(&s, "svc/web", 80).contains("hello from web"));

    // Stats from the runtime, through the API server's nodes/proxy.
    let node = jsonpath(&s, "pod/web", "{.spec.nodeName}");
    let summary = eventually(Duration::from_secs(30), || {
        let v = s.raw_json(&format!("/api/v1/nodes/{node}/proxy/stats/summary"));
        let pods = v["pods"].as_array()?.clone();
        let web = pods.into_iter().find(|p| p["podRef"]["name"] == "web")?;
        (web["containers"].as_array()?.len() == 2).then_some((v, web))
    });
    assert_eq!(summary.0["node"]["nodeName"], node.as_str());
    assert!(
        summary.1["memory"]["workingSetBytes"].as_u64().unwrap_or(0) > 0,
        "{}",
        summary.1
    );
    assert!(
        summary.1["cpu"]["usageCoreNanoSeconds"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{}",
        summary.1
    );

    // Deleting the pod leaves nothing behind: containers, sandbox, its
    // network namespace, IP lease, volumes and mounts.
    let ids = s.ctr(&["containers", "ls", "-q"]);
    assert!(!ids.trim().is_empty());
    let netns_paths: Vec<String> = ids
        .lines()
        .filter_map(|id| {
            let info: serde_json::Value =
                serde_json::from_str(&s.ctr(&["containers", "info", id])).ok()?;
            info["Spec"]["linux"]["namespaces"]
                .as_array()?
                .iter()
                .find(|n| n["type"] == "network")?["path"]
                .as_str()
                .map(String::from)
        })
        .filter(|p| p.starts_with("/var/run/netns/"))
        .collect();
    assert!(!netns_paths.is_empty(), "the sandbox's network namespace");
    assert!(std::path::Path::new(&netns_paths[0]).exists());
    s.ok(&["delete", "pod", "web", "--wait=true", "--timeout=60s"]);
    eventually(Duration::from_secs(30), || {
        s.ctr(&["containers", "ls", "-q"])
            .trim()
            .is_empty()
            .then_some(())
    });
    let ipam = s.data_dir().join("agent/cni/ipam/skiff");
    let leases: Vec<_> = std::fs::read_dir(&ipam)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("10."))
                .collect()
        })
        .unwrap_or_default();
    assert!(leases.is_empty(), "IP leases left: {leases:?}");
    let pods_dir = s.data_dir().join("agent/pods");
    eventually(Duration::from_secs(10), || {
        (std::fs::read_dir(&pods_dir).map(|d| d.count()).unwrap_or(0) == 0).then_some(())
    });
    for p in &netns_paths {
        assert!(!std::path::Path::new(p).exists(), "{p} left behind");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let pods_dir = pods_dir.display().to_string();
    assert!(!mounts.contains(&pods_dir), "mounts left under {pods_dir}");
}

/// `kubectl port-forward <target> <local>:<remote>`, then one GET through it.
fn port_forward_get(s: &Server, target: &str, remote: u16) -> String {
    let port = common::free_port();
    let mut pf = s
        .kubectl_cmd()
        .args(["port-forward", target, &format!("{port}:{remote}")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let body = eventually(Duration::from_secs(20), || {
        let out = s
            .in_netns("curl")
            .args([
                "-s",
                "--max-time",
                "3",
                &format!("http://127.0.0.1:{port}/"),
            ])
            .output()
            .ok()?;
        let b = String::from_utf8_lossy(&out.stdout).into_owned();
        b.contains("hello").then_some(b)
    });
    let _ = pf.kill();
    let _ = pf.wait();
    body
}

fn tick(line: &str) -> u64 {
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a tick line: {line}"))
}

#[test]
fn probes_restarts_and_oom() {
    let s = Server::start_node(&[]);
    node_ready(&s);
    s.apply_stdin(
        &["apply"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: live}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sh, -c, "touch /tmp/healthy; sleep 4; rm /tmp/healthy; sleep 600"]
    livenessProbe:
      exec: {{command: [cat, /tmp/healthy]}}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {{name: ready}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {DEMO}
    readinessProbe:
      httpGet: {{path: /healthz, port: 8080}}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {{name: hog}}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: {BUSYBOX}
    command: [tail, /dev/zero]
    resources:
      limits: {{memory: 20Mi}}
---
apiVersion: v1
kind: Pod
metadata: {{name: victim}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {BUSYBOX}, command: [sleep, "3600"]}}
"#
        ),
    );
    // A failing liveness probe restarts the container.
    eventually(Duration::from_secs(60), || {
        let n: i64 = jsonpath(
            &s,
            "pod/live",
            "{.status.containerStatuses[0].restartCount}",
        )
        .parse()
        .unwrap_or(0);
        (n >= 1).then_some(())
    });
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=live",
    ]);
    assert!(events.contains("Unhealthy"), "{events}");
    assert!(
        events.contains("failed liveness probe, will be restarted"),
        "{events}"
    );

    // Readiness follows the probe: switched off from outside, then on.
    wait_ready(&s, "ready", "True");
    let ip = jsonpath(&s, "pod/ready", "{.status.podIP}");
    let flip = |what: &str| {
        s.in_netns("curl")
            .args([
                "-s",
                "--max-time",
                "3",
                &format!("http://{ip}:8080/healthz/{what}"),
            ])
            .output()
            .unwrap();
    };
    flip("fail");
    wait_ready(&s, "ready", "False");
    flip("ok");
    wait_ready(&s, "ready", "True");

    // Over its memory limit: OOMKilled. containerd may report the exit
    // before its OOM event; the reported reason follows within a resync.
    eventually(Duration::from_secs(60), || {
        let r = jsonpath(
            &s,
            "pod/hog",
            "{.status.containerStatuses[0].state.terminated.reason}",
        );
        (r == "OOMKilled").then_some(())
    });
    assert_eq!(jsonpath(&s, "pod/hog", "{.status.phase}"), "Failed");

    // A container killed from outside is noticed and restarted.
    wait_phase(&s, "victim", "Running");
    let id = jsonpath(
        &s,
        "pod/victim",
        "{.status.containerStatuses[0].containerID}",
    );
    let id = id.trim_start_matches("containerd://");
    let tasks = s.ctr(&["tasks", "ls"]);
    let pid = tasks
        .lines()
        .find(|l| l.starts_with(id))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no task for {id}: {tasks}"))
        .to_string();
    std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    eventually(Duration::from_secs(20), || {
        let n = jsonpath(
            &s,
            "pod/victim",
            "{.status.containerStatuses[0].restartCount}",
        );
        let running = jsonpath(
            &s,
            "pod/victim",
            "{.status.containerStatuses[0].state.running}",
        );
        (n == "1" && !running.is_empty()).then_some(())
    });
    let last = jsonpath(
        &s,
        "pod/victim",
        "{.status.containerStatuses[0].lastState.terminated.exitCode}",
    );
    assert_eq!(last, "137");
}

#[test]
fn bad_input_shows_waiting_reasons_and_spares_other_pods() {
    let s = Server::start_node(&[]);
    node_ready(&s);
    s.apply_stdin(
        &["apply"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: noimage}}
spec:
  containers: [{{name: c, image: "localhost/does-not-exist:1.0"}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: nocm}}
spec:
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sleep, "3600"]
    env: [{{name: X, valueFrom: {{configMapKeyRef: {{name: missing, key: k}}}}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: badcmd}}
spec:
  containers: [{{name: c, image: {BUSYBOX}, command: ["/no/such/binary"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: fine}}
spec:
  containers: [{{name: c, image: {BUSYBOX}, command: [sleep, "3600"]}}]
"#
        ),
    );
    let reason = |pod: &str| {
        jsonpath(
            &s,
            &format!("pod/{pod}"),
            "{.status.containerStatuses[0].state.waiting.reason}",
        )
    };
    eventually(Duration::from_secs(60), || {
        matches!(
            reason("noimage").as_str(),
            "ErrImagePull" | "ImagePullBackOff"
        )
        .then_some(())
    });
    eventually(Duration::from_secs(60), || {
        (reason("nocm") == "CreateContainerConfigError").then_some(())
    });
    let message = jsonpath(
        &s,
        "pod/nocm",
        "{.status.containerStatuses[0].state.waiting.message}",
    );
    assert_eq!(message, "configmap \"missing\" not found");
    eventually(Duration::from_secs(60), || {
        matches!(
            reason("badcmd").as_str(),
            "RunContainerError" | "CrashLoopBackOff"
        )
        .then_some(())
    });
    wait_phase(&s, "fine", "Running");
    let events = s.ok(&["get", "events"]);
    assert!(events.contains("Failed"), "{events}");
    // A configMap that appears later is picked up.
    s.ok(&["create", "configmap", "missing", "--from-literal=k=v"]);
    wait_phase(&s, "nocm", "Running");
}

#[test]
fn agent_restart_keeps_containers_running() {
    let mut s = Server::start_node(&[]);
    node_ready(&s);
    s.apply_stdin(
        &["apply"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: steady}}
spec:
  containers: [{{name: c, image: {BUSYBOX}, command: [sleep, "3600"]}}]
"#
        ),
    );
    wait_phase(&s, "steady", "Running");
    let before = jsonpath(
        &s,
        "pod/steady",
        "{.status.containerStatuses[0].containerID}",
    );
    s.restart();
    node_ready(&s);
    std::thread::sleep(Duration::from_secs(3));
    wait_phase(&s, "steady", "Running");
    let after = jsonpath(
        &s,
        "pod/steady",
        "{.status.containerStatuses[0].containerID}",
    );
    assert_eq!(before, after, "the container survived the restart");
    assert_eq!(
        jsonpath(
            &s,
            "pod/steady",
            "{.status.containerStatuses[0].restartCount}"
        ),
        "0"
    );
}

/// Debian's docker-registry on 127.0.0.1 inside the node's namespace, as
/// the mirror of docker.io: an unmodified `image: nginx:1.25` manifest runs
/// from it.
#[test]
fn images_pull_through_a_registry_mirror() {
    let conf = tempfile::tempdir().unwrap();
    let registries = conf.path().join("registries.yaml");
    std::fs::write(
        &registries,
        "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://127.0.0.1:5000\"\n",
    )
    .unwrap();
    let registry_config = conf.path().join("registry.yml");
    std::fs::write(
        &registry_config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:5000\n",
            conf.path().join("blobs").display()
        ),
    )
    .unwrap();
    let s = Server::start_node(&["--private-registry", registries.to_str().unwrap()]);
    let mut registry = s
        .in_netns("docker-registry")
        .arg("serve")
        .arg(&registry_config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry (Debian package docker-registry)");
    node_ready(&s);
    // Publish the demo image as docker.io/library/nginx:1.25 in the registry.
    let socket = s.data_dir().join("agent/containerd/containerd.sock");
    let ctr = |args: &[&str]| {
        let out = s
            .in_netns("ctr")
            .arg("-a")
            .arg(&socket)
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    eventually(Duration::from_secs(20), || {
        s.in_netns("curl")
            .args(["-sf", "-o", "/dev/null", "http://127.0.0.1:5000/v2/"])
            .status()
            .ok()?
            .success()
            .then_some(())
    });
    ctr(&["images", "tag", DEMO, "127.0.0.1:5000/library/nginx:1.25"]);
    ctr(&[
        "images",
        "push",
        "--plain-http",
        "127.0.0.1:5000/library/nginx:1.25",
    ]);
    s.apply_stdin(
        &["apply"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: nginx}
spec:
  containers: [{name: nginx, image: "nginx:1.25", imagePullPolicy: Always}]
---
apiVersion: v1
kind: Pod
metadata: {name: missing}
spec:
  containers: [{name: c, image: "nginx:0.0-missing"}]
"#,
    );
    wait_phase(&s, "nginx", "Running");
    let image_id = jsonpath(&s, "pod/nginx", "{.status.containerStatuses[0].imageID}");
    assert!(image_id.contains("sha256:"), "{image_id}");
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=nginx",
    ]);
    assert!(
        events.contains("Successfully pulled image \"nginx:1.25\""),
        "{events}"
    );
    // A tag the mirror doesn't have: ErrImagePull, then ImagePullBackOff.
    eventually(Duration::from_secs(60), || {
        let r = jsonpath(
            &s,
            "pod/missing",
            "{.status.containerStatuses[0].state.waiting.reason}",
        );
        (r == "ImagePullBackOff").then_some(())
    });
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=missing",
    ]);
    assert!(
        events.contains("Failed to pull image \"nginx:0.0-missing\""),
        "{events}"
    );
    let _ = registry.kill();
    let _ = registry.wait();
}
