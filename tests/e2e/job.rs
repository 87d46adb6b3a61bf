//! End-to-end: Jobs, CronJobs and TTL-after-finished on hollow nodes, with
//! the real kubectl. Hollow nodes keep pods Running; the tests finish a pod
//! the way a kubelet would, by writing its status.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, HollowNodes, Server};
use serde_json::Value;

fn json(s: &Server, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&args)).expect("JSON from kubectl")
}

fn job_yaml(name: &str, extra_spec: &str) -> String {
    format!(
        r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{extra_spec}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: busybox
        command: ["true"]
"#
    )
}

/// The job's pods that are Running and not being deleted.
fn running_pods(s: &Server, job: &str) -> Vec<String> {
    json(s, &["get", "pods", "-l", &format!("job-name={job}")])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Ends a pod as a kubelet would report it; false if the pod was gone
/// (deleted by the controller meanwhile).
fn finish(s: &Server, pod: &str, exit_code: i32) -> bool {
    let phase = if exit_code == 0 {
        "Succeeded"
    } else {
        "Failed"
    };
    let reason = if exit_code == 0 { "Completed" } else { "Error" };
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let patch = format!(
        r#"{{"status":{{"phase":"{phase}","containerStatuses":[{{"name":"work","image":"busybox","imageID":"","ready":false,"restartCount":0,"state":{{"terminated":{{"exitCode":{exit_code},"reason":"{reason}","finishedAt":"{now}","startedAt":"{now}"}}}}}}]}}}}"#
    );
    s.kubectl(&[
        "patch",
        "pod",
        pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ])
    .status
    .success()
}

fn condition(s: &Server, job: &str, type_: &str) -> Option<Value> {
    json(s, &["get", "job", job])["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == "True")
        .cloned()
}

#[test]
fn job_completes_five_with_parallelism_two() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    s.apply_stdin(
        &["apply"],
        &job_yaml("five", "  completions: 5\n  parallelism: 2"),
    );
    let mut finished = 0;
    let start = Instant::now();
    while finished < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job stalled at {finished}"
        );
        let running = running_pods(&s, "five");
        assert!(
            running.len() <= 2,
            "never more than parallelism active: {running:?}"
        );
        if let Some(pod) = running.first() {
            if finish(&s, pod, 0) {
                finished += 1;
            }
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    s.ok(&[
        "wait",
        "--for=condition=complete",
        "job/five",
        "--timeout=30s",
    ]);
    let job = json(&s, &["get", "job", "five"]);
    assert_eq!(job["status"]["succeeded"], 5);
    assert!(job["status"]["completionTime"].is_string());
    // Counted pods lose the tracking finalizer.
    let pods = json(&s, &["get", "pods", "-l", "job-name=five"]);
    assert!(pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| !f.iter().any(|x| x == "batch.kubernetes.io/job-tracking"))));
    let describe = s.ok(&["describe", "job", "five"]);
    assert!(
        describe.contains("SuccessfulCreate") && describe.contains("Completed"),
        "{describe}"
    );
}

#[test]
fn backoff_limit_and_deadline_fail_the_job() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    s.apply_stdin(&["apply"], &job_yaml("flaky", "  backoffLimit: 0"));
    let pod = eventually(Duration::from_secs(30), || {
        running_pods(&s, "flaky").into_iter().next()
    });
    assert!(finish(&s, &pod, 1));
    eventually(Duration::from_secs(30), || condition(&s, "flaky", "Failed"))
        .get("reason")
        .filter(|r| *r == "BackoffLimitExceeded")
        .expect("Failed with BackoffLimitExceeded");
    assert_eq!(json(&s, &["get", "job", "flaky"])["status"]["failed"], 1);

    s.apply_stdin(
        &["apply"],
        &job_yaml(
            "slow",
            "  activeDeadlineSeconds: 3\n  parallelism: 2\n  completions: 4",
        ),
    );
    eventually(Duration::from_secs(30), || {
        (running_pods(&s, "slow").len() == 2).then_some(())
    });
    let failed = eventually(Duration::from_secs(30), || condition(&s, "slow", "Failed"));
    assert_eq!(failed["reason"], "DeadlineExceeded");
    eventually(Duration::from_secs(30), || {
        running_pods(&s, "slow").is_empty().then_some(())
    });
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=Job",
    ]);
    assert!(
        events.contains("BackoffLimitExceeded")
            && events.contains("DeadlineExceeded")
            && events.contains("SuccessfulDelete"),
        "{events}"
    );

    // A suspended Job runs nothing until resumed.
    s.apply_stdin(&["apply"], &job_yaml("later", "  suspend: true"));
    let cond = eventually(Duration::from_secs(30), || {
        condition(&s, "later", "Suspended")
    });
    assert_eq!(cond["reason"], "JobSuspended");
    assert!(running_pods(&s, "later").is_empty());
    s.ok(&[
        "patch",
        "job",
        "later",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    eventually(Duration::from_secs(30), || {
        (running_pods(&s, "later").len() == 1).then_some(())
    });
    assert!(condition(&s, "later", "Suspended").is_none());

    // Deleting a running Job: its pods go too, tracking finalizer and all.
    s.apply_stdin(&["apply"], &job_yaml("dropped", "  parallelism: 2"));
    eventually(Duration::from_secs(30), || {
        (running_pods(&s, "dropped").len() == 2).then_some(())
    });
    s.ok(&["delete", "job", "dropped"]);
    eventually(Duration::from_secs(30), || {
        json(&s, &["get", "pods", "-l", "job-name=dropped"])["items"]
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    });
}

#[test]
fn indexed_jobs_ttl_and_cronjobs() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    s.apply_stdin(
        &["apply"],
        &job_yaml("indexed", "  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n  ttlSecondsAfterFinished: 2"),
    );
    let pods = eventually(Duration::from_secs(30), || {
        let p = running_pods(&s, "indexed");
        (p.len() == 3).then_some(p)
    });
    let mut indexes: Vec<String> = pods
        .iter()
        .map(|p| {
            json(&s, &["get", "pod", p])["metadata"]["annotations"]
                ["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
    for p in &pods {
        assert!(finish(&s, p, 0));
    }
    eventually(Duration::from_secs(30), || {
        condition(&s, "indexed", "Complete")
    });
    assert_eq!(
        json(&s, &["get", "job", "indexed"])["status"]["completedIndexes"],
        "0-2"
    );
    // ttlSecondsAfterFinished: 2 — the Job and its pods go.
    eventually(Duration::from_secs(30), || {
        (!s.kubectl(&["get", "job", "indexed"]).status.success()).then_some(())
    });

    // A bad schedule is refused by the API.
    let bad = s.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: bad\nspec:\n  schedule: \"61 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: c\n            image: busybox\n",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("schedule"));

    s.apply_stdin(
        &["apply"],
        r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "*/1 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: work
            image: busybox
"#,
    );
    // `kubectl create job --from=cronjob/...` runs one at once.
    s.ok(&["create", "job", "manual", "--from=cronjob/tick"]);
    assert!(
        json(&s, &["get", "job", "manual"])["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    );
    // The schedule fires within a minute, with upstream's job name.
    let job = eventually(Duration::from_secs(75), || {
        json(&s, &["get", "jobs"])["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| {
                j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
                    .is_string()
            })
            .cloned()
    });
    let name = job["metadata"]["name"].as_str().unwrap();
    let minutes: i64 = name.strip_prefix("tick-").unwrap().parse().unwrap();
    assert!(
        (minutes * 60 - jiff::Timestamp::now().as_second()).abs() < 120,
        "{name}"
    );
    let cj = json(&s, &["get", "cronjob", "tick"]);
    assert!(cj["status"]["lastScheduleTime"].is_string());
    assert!(s
        .ok(&["describe", "cronjob", "tick"])
        .contains("Created job tick-"));
}
