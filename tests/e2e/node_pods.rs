//! The node agent end to end, pod features beyond node.rs: volumes, env,
//! pod DNS, securityContext, lifecycle hooks and restarts, streaming, and a
//! Deployment's pods. Each test runs `skiff server` with its agent (real
//! containerd, runc, CNI) in a network namespace of its own and drives it
//! with the real kubectl. Needs root, the runtime packages and the test
//! images (`make images`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{eventually, jsonpath, node_ready, phase, wait_phase, wait_ready, Server};

const BUSYBOX: &str = "localhost/busybox:1.35";
const DEMO: &str = "localhost/skiff-demo:0.1";

fn pod_json(s: &Server, pod: &str) -> serde_json::Value {
    serde_json::from_str(&s.ok(&["get", "pod", pod, "-o", "json"])).expect("pod JSON")
}

/// `kubectl exec <pod> -c <container> -- sh -c <script>` that must succeed.
#[track_caller]
fn sh(s: &Server, pod: &str, container: &str, script: &str) -> String {
    s.ok(&["exec", pod, "-c", container, "--", "sh", "-c", script])
}

fn restart_count(s: &Server, pod: &str) -> i64 {
    jsonpath(
        s,
        &format!("pod/{pod}"),
        "{.status.containerStatuses[0].restartCount}",
    )
    .parse()
    .unwrap_or(0)
}

#[test]
fn volumes_configmap_downward_projected_memory_hostpath_subpath_and_claims() {
    let s = Server::start_node(&[]);
    node_ready(&s);
    let host = s.data_dir().join("hostvol");
    let pv_dir = s.data_dir().join("pv");
    std::fs::create_dir_all(&pv_dir).unwrap();
    // No controller binds claims yet: the PV and the PVC are bound to each
    // other up front, and the claim's status is set as the binder would.
    s.apply_stdin(
        &["create"],
        &format!(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg}}
data: {{greeting: v1, other: o1}}
---
apiVersion: v1
kind: Secret
metadata: {{name: sec}}
stringData: {{password: s3cret}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: pv1}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {{path: "{pv}", type: Directory}}
  claimRef: {{namespace: default, name: claim}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: claim}}
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
  volumeName: pv1
"#,
            pv = pv_dir.display()
        ),
    );
    s.ok(&[
        "patch",
        "pvc",
        "claim",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Bound","accessModes":["ReadWriteOnce"],"capacity":{"storage":"1Gi"}}}"#,
    ]);
    s.apply_stdin(
        &["create"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata:
  name: vols
  labels: {{app: vols, tier: back}}
  annotations: {{note: hi}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {{name: cfg, configMap: {{name: cfg}}}}
  - {{name: items, configMap: {{name: cfg, defaultMode: 0400, items: [{{key: greeting, path: sub/g.txt}}]}}}}
  - name: down
    downwardAPI:
      items:
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
      - {{path: annotations, fieldRef: {{fieldPath: metadata.annotations}}}}
      - {{path: name, fieldRef: {{fieldPath: metadata.name}}}}
      - {{path: mem, resourceFieldRef: {{containerName: c, resource: limits.memory, divisor: 1Mi}}}}
  - name: proj
    projected:
      sources:
      - configMap: {{name: cfg, items: [{{key: other, path: other}}]}}
      - secret: {{name: sec}}
      - downwardAPI: {{items: [{{path: ns, fieldRef: {{fieldPath: metadata.namespace}}}}]}}
  - {{name: mem, emptyDir: {{medium: Memory}}}}
  - {{name: host, hostPath: {{path: "{host}", type: DirectoryOrCreate}}}}
  - {{name: data, persistentVolumeClaim: {{claimName: claim}}}}
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sleep, "3600"]
    resources: {{limits: {{memory: 64Mi}}}}
    volumeMounts:
    - {{name: cfg, mountPath: /etc/cfg}}
    - {{name: cfg, mountPath: /etc/single, subPath: greeting}}
    - {{name: items, mountPath: /etc/items}}
    - {{name: down, mountPath: /etc/down}}
    - {{name: proj, mountPath: /etc/proj}}
    - {{name: mem, mountPath: /mem}}
    - {{name: host, mountPath: /host}}
    - {{name: host, mountPath: /nested, subPath: deep/er}}
    - {{name: data, mountPath: /data}}
"#,
            host = host.display()
        ),
    );
    wait_phase(&s, "vols", "Running");

    // configMap: every key, and items with their own paths and mode.
    assert_eq!(sh(&s, "vols", "c", "cat /etc/cfg/greeting"), "v1");
    assert_eq!(sh(&s, "vols", "c", "cat /etc/cfg/other"), "o1");
    assert_eq!(sh(&s, "vols", "c", "cat /etc/single"), "v1");
    assert_eq!(sh(&s, "vols", "c", "cat /etc/items/sub/g.txt"), "v1");
    assert_eq!(
        sh(&s, "vols", "c", "stat -L -c %a /etc/items/sub/g.txt").trim(),
        "400"
    );
    assert_eq!(
        sh(&s, "vols", "c", "stat -L -c %a /etc/cfg/greeting").trim(),
        "644"
    );
    let listed = sh(&s, "vols", "c", "ls /etc/items");
    assert_eq!(listed.trim(), "sub", "only the listed key: {listed}");

    // downwardAPI.
    let labels = sh(&s, "vols", "c", "cat /etc/down/labels");
    assert_eq!(labels, "app=\"vols\"\ntier=\"back\"", "{labels}");
    let annotations = sh(&s, "vols", "c", "cat /etc/down/annotations");
    assert!(annotations.contains("note=\"hi\""), "{annotations}");
    assert_eq!(sh(&s, "vols", "c", "cat /etc/down/name"), "vols");
    assert_eq!(sh(&s, "vols", "c", "cat /etc/down/mem"), "64");

    // projected: three sources in one directory.
    assert_eq!(sh(&s, "vols", "c", "cat /etc/proj/other"), "o1");
    assert_eq!(sh(&s, "vols", "c", "cat /etc/proj/password"), "s3cret");
    assert_eq!(sh(&s, "vols", "c", "cat /etc/proj/ns"), "default");

    // emptyDir on memory is a tmpfs.
    let mounts = sh(&s, "vols", "c", "mount");
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(" /mem ") && l.contains("tmpfs")),
        "{mounts}"
    );

    // hostPath and a subPath of it, seen on the host; the PV's directory.
    sh(
        &s,
        "vols",
        "c",
        "echo from-pod > /host/f && echo deep > /nested/g && echo claimed > /data/h",
    );
    assert_eq!(
        std::fs::read_to_string(host.join("f")).unwrap(),
        "from-pod\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("deep/er/g")).unwrap(),
        "deep\n"
    );
    assert_eq!(
        std::fs::read_to_string(pv_dir.join("h")).unwrap(),
        "claimed\n"
    );
    std::fs::write(host.join("from-host"), "hi pod").unwrap();
    assert_eq!(sh(&s, "vols", "c", "cat /host/from-host"), "hi pod");

    // An update of the configMap reaches the mounted files (not subPath
    // mounts, as upstream) within a minute.
    let manifest = s.ok(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=greeting=v2",
        "--from-literal=other=o2",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    s.apply_stdin(&["apply"], &manifest);
    let started = Instant::now();
    eventually(Duration::from_secs(75), || {
        (sh(&s, "vols", "c", "cat /etc/cfg/greeting") == "v2").then_some(())
    });
    assert!(started.elapsed() < Duration::from_secs(65), "too slow");
    eventually(Duration::from_secs(20), || {
        (sh(&s, "vols", "c", "cat /etc/items/sub/g.txt /etc/proj/other") == "v2o2").then_some(())
    });
    assert_eq!(sh(&s, "vols", "c", "cat /etc/single"), "v1");

    // Deleting the pod leaves the hostPath and PV data alone.
    s.ok(&["delete", "pod", "vols", "--wait=true", "--timeout=60s"]);
    assert!(host.join("f").exists() && pv_dir.join("h").exists());
}

#[test]
fn env_dns_host_network_and_security_context() {
    let s = Server::start_node(&[]);
    node_ready(&s);
    s.ok(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=alpha=a1",
        "--from-literal=beta=b1",
    ]);
    s.ok(&[
        "create",
        "secret",
        "generic",
        "sec",
        "--from-literal=TOKEN=t0k",
    ]);
    s.apply_stdin(
        &["apply"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: envs}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {BUSYBOX}
    envFrom:
    - {{prefix: CM_, configMapRef: {{name: cfg}}}}
    - {{secretRef: {{name: sec}}}}
    env:
    - {{name: WHO, value: world}}
    - {{name: GREET, value: "hello $(WHO)"}}
    - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - {{name: NODE, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
    - {{name: MEM_MI, valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}}}
    - {{name: CPU_M, valueFrom: {{resourceFieldRef: {{resource: requests.cpu, divisor: 1m}}}}}}
    resources: {{requests: {{cpu: 100m}}, limits: {{memory: 32Mi}}}}
    command: [sh, -c, 'echo "args [$1] [$2]"; sleep 3600', sh]
    args: ["$(GREET)", "$$(WHO)"]
---
apiVersion: v1
kind: Pod
metadata: {{name: custom-dns}}
spec:
  terminationGracePeriodSeconds: 1
  dnsPolicy: None
  dnsConfig:
    nameservers: [192.0.2.53]
    searches: [my.dns.search]
    options: [{{name: ndots, value: "2"}}, {{name: edns0}}]
  containers: [{{name: c, image: {BUSYBOX}, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: hostnet}}
spec:
  terminationGracePeriodSeconds: 1
  hostNetwork: true
  containers: [{{name: c, image: {BUSYBOX}, command: [sleep, "3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: secure}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {{runAsUser: 1000, runAsGroup: 3000}}
  volumes: [{{name: scratch, emptyDir: {{}}}}]
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sleep, "3600"]
    securityContext: {{readOnlyRootFilesystem: true}}
    volumeMounts: [{{name: scratch, mountPath: /scratch}}]
  - name: caps
    image: {BUSYBOX}
    command: [sleep, "3600"]
    securityContext:
      runAsUser: 0
      capabilities: {{drop: [ALL], add: [NET_ADMIN]}}
"#
        ),
    );
    for pod in ["envs", "custom-dns", "hostnet", "secure"] {
        wait_phase(&s, pod, "Running");
    }

    // env: envFrom with a prefix, $(VAR) expansion, field and resource refs.
    let env = s.ok(&["exec", "envs", "--", "env"]);
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in {env}"))
            .to_string()
    };
    assert_eq!(var("CM_alpha"), "a1");
    assert_eq!(var("CM_beta"), "b1");
    assert_eq!(var("TOKEN"), "t0k");
    assert_eq!(var("GREET"), "hello world");
    let pod_ip = jsonpath(&s, "pod/envs", "{.status.podIP}");
    assert!(pod_ip.starts_with("10.42."), "{pod_ip}");
    assert_eq!(var("POD_IP"), pod_ip);
    assert_eq!(var("NODE"), jsonpath(&s, "pod/envs", "{.spec.nodeName}"));
    assert_eq!(var("MEM_MI"), "32");
    assert_eq!(var("CPU_M"), "100");
    let logs = eventually(Duration::from_secs(20), || {
        let l = s.ok(&["logs", "envs"]);
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(logs.trim(), "args [hello world] [$(WHO)]");

    // Pod DNS: ClusterFirst and None; /etc/hosts has the pod.
    let resolv = s.ok(&["exec", "envs", "--", "cat", "/etc/resolv.conf"]);
    let resolv_lines: Vec<&str> = resolv.lines().collect();
    assert!(resolv_lines.contains(&"nameserver 10.43.0.10"), "{resolv}");
    assert!(
        resolv_lines.contains(&"search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{resolv}"
    );
    assert!(resolv_lines.contains(&"options ndots:5"), "{resolv}");
    let resolv = s.ok(&["exec", "custom-dns", "--", "cat", "/etc/resolv.conf"]);
    let resolv_lines: Vec<&str> = resolv.lines().collect();
    assert!(resolv_lines.contains(&"nameserver 192.0.2.53"), "{resolv}");
    assert!(resolv_lines.contains(&"search my.dns.search"), "{resolv}");
    assert!(resolv_lines.contains(&"options ndots:2 edns0"), "{resolv}");
    assert!(!resolv.contains("10.43.0.10"), "{resolv}");
    let hosts = s.ok(&["exec", "envs", "--", "cat", "/etc/hosts"]);
    assert!(
        hosts.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&pod_ip.as_str()) && f.contains(&"envs")
        }),
        "{hosts}"
    );
    assert!(hosts.contains("localhost"), "{hosts}");
    assert_eq!(s.ok(&["exec", "envs", "--", "hostname"]).trim(), "envs");

    // hostNetwork: the node's interfaces (its pod bridge) and addresses.
    let addrs = s.ok(&["exec", "hostnet", "--", "ip", "addr"]);
    assert!(addrs.contains("skiff0"), "{addrs}");
    let host_ip = jsonpath(&s, "pod/hostnet", "{.status.hostIP}");
    assert_eq!(jsonpath(&s, "pod/hostnet", "{.status.podIP}"), host_ip);
    let links = s.ok(&["exec", "envs", "--", "ip", "addr"]);
    assert!(!links.contains("skiff0"), "pod has its own netns: {links}");

    // securityContext: user and group, read-only root, capabilities.
    assert_eq!(sh(&s, "secure", "c", "id -u").trim(), "1000");
    assert_eq!(sh(&s, "secure", "c", "id -g").trim(), "3000");
    let out = s.kubectl(&["exec", "secure", "-c", "c", "--", "touch", "/rootfile"]);
    assert!(!out.status.success(), "write to a read-only root succeeded");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sh(&s, "secure", "c", "touch /scratch/ok");
    let caps = sh(&s, "secure", "caps", "grep CapEff /proc/self/status");
    assert_eq!(
        caps.split_whitespace().nth(1),
        Some("0000000000001000"),
        "only NET_ADMIN: {caps}"
    );
    assert_eq!(sh(&s, "secure", "caps", "id -u").trim(), "0");
}

#[test]
fn lifecycle_hooks_grace_restart_policies_and_probes() {
    let s = Server::start_node(&[]);
    node_ready(&s);
    let host = s.data_dir().join("hooks");
    s.apply_stdin(
        &["apply"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: hooks}}
spec:
  terminationGracePeriodSeconds: 10
  volumes: [{{name: host, hostPath: {{path: "{host}", type: DirectoryOrCreate}}}}]
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sh, -c, 'until [ -f /tmp/started ]; do sleep 0.1; done; echo "saw $(cat /tmp/started)"; trap "exit 0" TERM; while true; do sleep 0.2; done']
    volumeMounts: [{{name: host, mountPath: /host}}]
    lifecycle:
      postStart: {{exec: {{command: [sh, -c, "echo poststart > /tmp/s.tmp && mv /tmp/s.tmp /tmp/started"]}}}}
      preStop: {{exec: {{command: [sh, -c, "echo prestop-ran > /host/prestop"]}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: stubborn}}
spec:
  terminationGracePeriodSeconds: 4
  containers:
  - {{name: c, image: {BUSYBOX}, command: [sh, -c, 'trap "" TERM; sleep 1000']}}
---
apiVersion: v1
kind: Pod
metadata: {{name: onfailure}}
spec:
  restartPolicy: OnFailure
  volumes: [{{name: work, emptyDir: {{}}}}]
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sh, -c, 'if [ -f /work/ran ]; then echo second; exit 0; fi; touch /work/ran; echo first; exit 1']
    volumeMounts: [{{name: work, mountPath: /work}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: never}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sh, -c, 'echo "fatal: boom"; exit 3']
    terminationMessagePolicy: FallbackToLogsOnError
---
apiVersion: v1
kind: Pod
metadata: {{name: message}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sh, -c, 'echo "noise"; printf "custom goodbye" > /dev/termination-log']
---
apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  volumes: [{{name: work, emptyDir: {{}}}}]
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sh, -c, 'n=$(($(cat /work/n 2>/dev/null || echo 0) + 1)); echo $n > /work/n; echo "instance $n"; exit 1']
    volumeMounts: [{{name: work, mountPath: /work}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: slowstart}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {BUSYBOX}
    command: [sh, -c, "sleep 6; touch /tmp/up; sleep 3600"]
    startupProbe:
      exec: {{command: [cat, /tmp/up]}}
      periodSeconds: 1
      failureThreshold: 30
    livenessProbe:
      exec: {{command: [cat, /tmp/up]}}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {{name: tcp-ok}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {DEMO}
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: tcp-bad}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {DEMO}
    readinessProbe: {{tcpSocket: {{port: 9999}}, periodSeconds: 1}}
"#,
            host = host.display()
        ),
    );

    // postStart ran inside the container before it went on.
    wait_phase(&s, "hooks", "Running");
    let logs = eventually(Duration::from_secs(20), || {
        let l = s.ok(&["logs", "hooks"]);
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(logs.trim(), "saw poststart");

    // restartPolicy OnFailure: exit 1 restarts, exit 0 completes.
    wait_phase(&s, "onfailure", "Succeeded");
    let p = pod_json(&s, "onfailure");
    let cs = &p["status"]["containerStatuses"][0];
    assert_eq!(cs["restartCount"], 1, "{cs}");
    assert_eq!(cs["state"]["terminated"]["reason"], "Completed", "{cs}");
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 1, "{cs}");
    assert_eq!(s.ok(&["logs", "onfailure"]).trim(), "second");
    assert_eq!(s.ok(&["logs", "onfailure", "--previous"]).trim(), "first");

    // restartPolicy Never: a failure is final; the message falls back to
    // the logs. terminationMessagePath is read when written.
    wait_phase(&s, "never", "Failed");
    let p = eventually(Duration::from_secs(15), || {
        let p = pod_json(&s, "never");
        p["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
            .is_string()
            .then_some(p)
    });
    let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 3, "{t}");
    assert_eq!(t["reason"], "Error", "{t}");
    assert_eq!(t["message"], "fatal: boom\n", "{t}");
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);
    wait_phase(&s, "message", "Succeeded");
    assert_eq!(
        jsonpath(
            &s,
            "pod/message",
            "{.status.containerStatuses[0].state.terminated.message}"
        ),
        "custom goodbye"
    );

    // Readiness by tcpSocket.
    wait_ready(&s, "tcp-ok", "True");
    eventually(Duration::from_secs(30), || {
        let ev = s.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=tcp-bad",
        ]);
        (ev.contains("Unhealthy") && ev.contains("Readiness probe failed")).then_some(())
    });
    assert_eq!(phase(&s, "tcp-bad"), "Running");
    assert_eq!(
        jsonpath(
            &s,
            "pod/tcp-bad",
            "{.status.conditions[?(@.type==\"Ready\")].status}"
        ),
        "False"
    );

    // A startup probe holds the liveness probe back until it succeeds.
    wait_ready(&s, "slowstart", "True");
    assert_eq!(
        jsonpath(
            &s,
            "pod/slowstart",
            "{.status.containerStatuses[0].started}"
        ),
        "true"
    );
    assert_eq!(restart_count(&s, "slowstart"), 0, "liveness ran too early");

    // CrashLoopBackOff, with a back-off doubling from 10 s; --previous
    // shows the instance before the current one.
    let waiting = |s: &Server| {
        let p = pod_json(s, "crash");
        let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
        (
            w["reason"].as_str().unwrap_or_default().to_string(),
            w["message"].as_str().unwrap_or_default().to_string(),
        )
    };
    let msg = eventually(Duration::from_secs(60), || {
        let (reason, msg) = waiting(&s);
        (reason == "CrashLoopBackOff").then_some(msg)
    });
    assert!(
        msg.starts_with("back-off 10s restarting failed container=c pod=crash_default("),
        "{msg}"
    );
    let instance = |text: &str| -> i64 {
        text.trim()
            .strip_prefix("instance ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not an instance line: {text:?}"))
    };
    let current = instance(&s.ok(&["logs", "crash"]));
    let previous = instance(&s.ok(&["logs", "crash", "--previous"]));
    assert_eq!(
        previous + 1,
        current,
        "previous {previous}, current {current}"
    );
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=crash",
    ]);
    assert!(events.contains("BackOff"), "{events}");
    // The next back-off is 20 s: the restart count then stays put for
    // about that long.
    eventually(Duration::from_secs(60), || {
        let (reason, msg) = waiting(&s);
        (reason == "CrashLoopBackOff" && msg.starts_with("back-off 20s ")).then_some(())
    });
    let t = Instant::now();
    let n = restart_count(&s, "crash");
    eventually(Duration::from_secs(60), || {
        (restart_count(&s, "crash") > n).then_some(())
    });
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(15) && waited < Duration::from_secs(35),
        "20 s back-off took {waited:?}"
    );
    eventually(Duration::from_secs(10), || {
        waiting(&s).1.starts_with("back-off 40s ").then_some(())
    });

    // Graceful stop: preStop runs, SIGTERM ends a cooperative container
    // quickly; one ignoring SIGTERM is killed after its grace period.
    let t = Instant::now();
    s.ok(&["delete", "pod", "hooks", "--wait=true", "--timeout=60s"]);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert_eq!(
        std::fs::read_to_string(host.join("prestop")).unwrap_or_default(),
        "prestop-ran\n"
    );
    let t = Instant::now();
    s.ok(&["delete", "pod", "stubborn", "--wait=true", "--timeout=60s"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(3900) && took < Duration::from_secs(12),
        "grace 4s, took {took:?}"
    );
}

#[test]
fn streaming_cp_attach_exec_and_logs() {
    let s = Server::start_node(&[]);
    node_ready(&s);
    s.apply_stdin(
        &["apply"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: stream}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: {BUSYBOX}
    env: [{{name: WHICH, value: first}}]
    command: [sh, -c, "echo started a; sleep 3600"]
  - name: b
    image: {BUSYBOX}
    env: [{{name: WHICH, value: second}}]
    stdin: true
    command: [sh, -c, 'while read l; do echo "got $l"; done']
---
apiVersion: v1
kind: Pod
metadata: {{name: creating}}
spec:
  volumes: [{{name: v, configMap: {{name: absent}}}}]
  containers:
  - {{name: c, image: {BUSYBOX}, command: [sleep, "3600"], volumeMounts: [{{name: v, mountPath: /v}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: initializing}}
spec:
  terminationGracePeriodSeconds: 1
  initContainers: [{{name: wait, image: {BUSYBOX}, command: [sleep, "3600"]}}]
  containers: [{{name: c, image: {BUSYBOX}, command: [sleep, "3600"]}}]
"#
        ),
    );
    wait_phase(&s, "stream", "Running");

    // exec picks the container with -c.
    assert_eq!(sh(&s, "stream", "a", "echo $WHICH").trim(), "first");
    assert_eq!(sh(&s, "stream", "b", "echo $WHICH").trim(), "second");

    // kubectl cp there and back, bytes unchanged.
    let local = s.data_dir().join("payload.bin");
    let payload: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&local, &payload).unwrap();
    s.ok(&[
        "cp",
        local.to_str().unwrap(),
        "default/stream:/tmp/payload.bin",
        "-c",
        "a",
    ]);
    let sum = sh(&s, "stream", "a", "sha256sum /tmp/payload.bin");
    let local_sum = std::process::Command::new("sha256sum")
        .arg(&local)
        .output()
        .unwrap();
    let local_sum = String::from_utf8_lossy(&local_sum.stdout).into_owned();
    assert_eq!(
        sum.split_whitespace().next(),
        local_sum.split_whitespace().next()
    );
    let back = s.data_dir().join("back.bin");
    s.ok(&[
        "cp",
        "stream:/tmp/payload.bin",
        back.to_str().unwrap(),
        "-c",
        "a",
    ]);
    assert!(std::fs::read(&back).unwrap() == payload, "cp round trip");

    // attach -i: our line reaches the container's stdin, its answer comes
    // back.
    let mut attach = s
        .kubectl_cmd()
        .args(["attach", "-i", "stream", "-c", "b"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = attach.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdin = attach.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = None;
    while got.is_none() && Instant::now() < deadline {
        // Lines sent before the stream is up may be dropped: resend.
        let _ = writeln!(stdin, "ping");
        let _ = stdin.flush();
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            got = Some(line);
        }
    }
    let _ = attach.kill();
    let _ = attach.wait();
    assert_eq!(got.as_deref(), Some("got ping"));

    // logs --since filters by time.
    let since = s.ok(&["logs", "stream", "-c", "a", "--since=1h"]);
    assert_eq!(since, "started a\n");
    std::thread::sleep(Duration::from_secs(3));
    let since = s.ok(&["logs", "stream", "-c", "a", "--since=2s"]);
    assert_eq!(since, "", "old lines filtered out");

    // logs of a container that has not started.
    eventually(Duration::from_secs(30), || {
        let ev = s.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=creating",
        ]);
        ev.contains("FailedMount").then_some(())
    });
    let err = s.fails(&["logs", "creating"]);
    assert!(
        err.contains("container \"c\" in pod \"creating\" is waiting to start: ContainerCreating"),
        "{err}"
    );
    wait_phase(&s, "initializing", "Pending");
    eventually(Duration::from_secs(30), || {
        (!jsonpath(
            &s,
            "pod/initializing",
            "{.status.initContainerStatuses[0].state.running}",
        )
        .is_empty())
        .then_some(())
    });
    let err = s.fails(&["logs", "initializing", "-c", "c"]);
    assert!(
        err.contains(
            "container \"c\" in pod \"initializing\" is waiting to start: PodInitializing"
        ),
        "{err}"
    );
}

#[test]
fn deployment_runs_real_pods_and_rollout_restart_replaces_them() {
    let s = Server::start_node(&[]);
    node_ready(&s);
    s.apply_stdin(
        &["apply"],
        &format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: {DEMO}
        ports: [{{containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
"#
        ),
    );
    s.ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    let pods = |s: &Server| -> Vec<(String, String)> {
        let out = jsonpath(
            s,
            "pods",
            "{range .items[?(@.status.phase==\"Running\")]}{.metadata.name} {.status.podIP}{\"\\n\"}{end}",
        );
        out.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let before = pods(&s);
    assert_eq!(before.len(), 3, "{before:?}");
    let mut ips: Vec<&String> = before.iter().map(|(_, ip)| ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3, "distinct pod IPs: {before:?}");
    // Each pod answers on its own IP from the node.
    for (name, ip) in &before {
        let out = s
            .in_netns("curl")
            .args(["-s", "--max-time", "3", &format!("http://{ip}:8080/")])
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(body.contains(&format!("hello from {name}")), "{body}");
    }
    // kubectl picks a pod for workload targets.
    s.ok(&["logs", "deploy/web"]);

    s.ok(&["rollout", "restart", "deployment/web"]);
    s.ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    let after = eventually(Duration::from_secs(60), || {
        let after = pods(&s);
        let all = jsonpath(&s, "pods", "{.items[*].metadata.name}");
        (after.len() == 3 && all.split_whitespace().count() == 3).then_some(after)
    });
    for (name, _) in &after {
        assert!(
            !before.iter().any(|(b, _)| b == name),
            "{name} survived the restart"
        );
    }
    // The old pods' containers and sandboxes are gone from the runtime.
    eventually(Duration::from_secs(30), || {
        let n = s.ctr(&["containers", "ls", "-q"]).lines().count();
        (n == 6).then_some(())
    });
}
