//! `bench`: whole-system benchmarks of `skiff server`.
//!
//! Starts the real release binary on a temporary data dir, drives it over
//! HTTPS with the admin client certificate, and prints each figure beside the
//! floor it is compared with (raw SQLite on the same disk), measured in the
//! same run. Figures are printed, never asserted.

mod apply;
mod client;
mod create;
mod deploy;
mod durability;
mod floor;
mod kubectl;
mod list;
mod node;
mod objects;
mod schedule;
mod server;
mod service;
mod stats;
mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;

use server::Server;
use stats::{dur, mib, ms, rate, secs, Row};

#[derive(Parser)]
#[command(about = "Whole-system benchmarks of skiff server")]
struct Args {
    /// The skiff binary (default: $CARGO_TARGET_DIR/release/skiff).
    #[arg(long, env = "SKIFF_BIN")]
    skiff: Option<PathBuf>,
    /// Where data dirs and floor databases go (same filesystem for both).
    #[arg(long, env = "BENCH_DIR", default_value = "/var/tmp")]
    work_dir: PathBuf,
    /// Phases to run, comma-separated: create,list,watch,apply,durability,schedule,deploy,node,service.
    #[arg(
        long,
        env = "BENCH_PHASES",
        default_value = "create,list,watch,apply,durability,schedule,deploy,node,service"
    )]
    phases: String,
    /// Hollow nodes registered for the schedule phase.
    #[arg(long, env = "BENCH_NODES", default_value_t = 1000)]
    nodes: usize,
    /// Pods created, then scheduled, in each run of the schedule phase.
    #[arg(long, env = "BENCH_SCHED_PODS", default_value_t = 10_000)]
    sched_pods: usize,
    /// Runs of the schedule phase, comma-separated: plain,anti-affinity.
    #[arg(long, env = "BENCH_SCHED_RUNS", default_value = "plain,anti-affinity")]
    sched_runs: String,
    /// Seconds from the scheduler's start until every pod must be bound and Running.
    #[arg(long, env = "BENCH_SCHED_TIMEOUT", default_value_t = 300)]
    sched_timeout: u64,
    /// Replicas the deploy phase scales its Deployment to (and rolls).
    #[arg(long, env = "BENCH_DEPLOY_REPLICAS", default_value_t = 10_000)]
    deploy_replicas: usize,
    /// Deployments in the deploy phase (one scaled, the rest at 0 replicas).
    #[arg(long, env = "BENCH_DEPLOYMENTS", default_value_t = 100)]
    deployments: usize,
    /// Seconds each of the deploy phase's scale-up and rollout may take.
    #[arg(long, env = "BENCH_DEPLOY_TIMEOUT", default_value_t = 300)]
    deploy_timeout: u64,
    /// Deployments written in each round of the apply phase.
    #[arg(long, env = "BENCH_APPLY_OBJECTS", default_value_t = 1000)]
    apply_objects: usize,
    /// Manifests in the directory given to `kubectl apply -f`.
    #[arg(long, env = "BENCH_KUBECTL_OBJECTS", default_value_t = 200)]
    kubectl_objects: usize,
    /// Duration of the create-rate run.
    #[arg(long, env = "BENCH_SECONDS", default_value_t = 20)]
    seconds: u64,
    /// Concurrent clients of the create-rate run.
    #[arg(long, env = "BENCH_CLIENTS", default_value_t = 32)]
    clients: usize,
    /// Duration of each SQLite floor measurement.
    #[arg(long, env = "BENCH_FLOOR_SECONDS", default_value_t = 3)]
    floor_seconds: u64,
    /// Pods stored for the LIST and memory figures.
    #[arg(long, env = "BENCH_PODS", default_value_t = 10_000)]
    pods: usize,
    /// Namespaces the pods are spread over.
    #[arg(long, env = "BENCH_NAMESPACES", default_value_t = 10)]
    namespaces: usize,
    /// Timed rounds of each LIST form.
    #[arg(long, env = "BENCH_LIST_RUNS", default_value_t = 10)]
    list_runs: usize,
    /// Concurrent watchers in the fan-out run.
    #[arg(long, env = "BENCH_WATCHERS", default_value_t = 500)]
    watchers: usize,
    /// Writes observed by the watchers.
    #[arg(long, env = "BENCH_WATCH_WRITES", default_value_t = 20)]
    watch_writes: usize,
    /// Clients creating objects while the server is killed.
    #[arg(long, env = "BENCH_DURABILITY_CLIENTS", default_value_t = 8)]
    durability_clients: usize,
    /// Seconds of load before the kill.
    #[arg(long, env = "BENCH_DURABILITY_SECONDS", default_value_t = 3)]
    durability_seconds: u64,
    /// Pods the node phase creates one at a time, then as many at once.
    #[arg(long, env = "BENCH_NODE_PODS", default_value_t = 30)]
    node_pods: usize,
    /// Pods the node phase runs on its one node for the memory figures.
    #[arg(long, env = "BENCH_NODE_MANY", default_value_t = 100)]
    node_many: usize,
    /// Repetitions of each container-start floor of the node phase.
    #[arg(long, env = "BENCH_NODE_FLOOR_REPS", default_value_t = 30)]
    node_floor_reps: usize,
    /// Seconds the node phase waits for one batch of pods to become Ready
    /// (4x for the big batch).
    #[arg(long, env = "BENCH_NODE_TIMEOUT", default_value_t = 60)]
    node_timeout: u64,
    /// Selector-less Services (one hand-written EndpointSlice each) of the
    /// service phase's rule and DNS figures.
    #[arg(long, env = "BENCH_SVC_COUNT", default_value_t = 1000)]
    svc_count: usize,
    /// Endpoints per slice in the service phase (1-250; each a node address).
    #[arg(long, env = "BENCH_SVC_ENDPOINTS", default_value_t = 10)]
    svc_endpoints: usize,
    /// Concurrent API clients writing the service phase's Services and slices.
    #[arg(long, env = "BENCH_SVC_CLIENTS", default_value_t = 8)]
    svc_clients: usize,
    /// Sequential requests to the demo app per target (ClusterIP, pod IP).
    #[arg(long, env = "BENCH_SVC_REQUESTS", default_value_t = 2000)]
    svc_requests: usize,
    /// Concurrent request loops to the demo app, per target.
    #[arg(long, env = "BENCH_SVC_CONCURRENCY", default_value_t = 8)]
    svc_concurrency: usize,
    /// Seconds of concurrent requests to each target. Short on purpose: one
    /// client address to one backend runs out of NAT tuples through the
    /// ClusterIP (conntrack keeps closed connections 120 s) after a few
    /// seconds at thousands of connections per second.
    #[arg(long, env = "BENCH_SVC_LOAD_SECONDS", default_value_t = 1)]
    svc_load_seconds: u64,
    /// Single EndpointSlice changes timed (each to the open port and back).
    #[arg(long, env = "BENCH_SVC_CHANGES", default_value_t = 20)]
    svc_changes: usize,
    /// Seconds of each dnsperf run of the service phase.
    #[arg(long, env = "BENCH_SVC_DNS_SECONDS", default_value_t = 5)]
    svc_dns_seconds: u64,
    /// Seconds the service phase waits for a pod, rules or the DNS.
    #[arg(long, env = "BENCH_SVC_TIMEOUT", default_value_t = 60)]
    svc_timeout: u64,
    /// Where `make images` put the test image tarballs
    /// (default: $CARGO_TARGET_DIR/images).
    #[arg(long, env = "SKIFF_IMAGES_DIR")]
    images_dir: Option<PathBuf>,
    /// Keep the data dirs (and server logs) after the run.
    #[arg(long, env = "BENCH_KEEP", value_parser = clap::builder::BoolishValueParser::new())]
    keep: bool,
}

impl Args {
    fn wants(&self, phase: &str) -> bool {
        self.phases.split(',').any(|p| p.trim() == phase)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let bin = match &args.skiff {
        Some(b) => b.clone(),
        None => {
            PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
                .join("release/skiff")
        }
    };
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p skiff`",
            bin.display()
        );
    }
    let work = tempfile::Builder::new()
        .prefix("skiff-bench-")
        .tempdir_in(&args.work_dir)?;
    let cpus = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    eprintln!(
        "skiff bench: binary {}, data under {}, {cpus} CPUs (client and server share them)",
        bin.display(),
        work.path().display()
    );

    let mut rows = Vec::new();
    let mut problems = Vec::new();
    // A failed phase is reported in the table and the others still run.
    if args.wants("create") {
        let r = create_phase(&args, &bin, work.path(), &mut rows, &mut problems).await;
        failed("create", r, &mut rows);
    }
    if args.wants("list") || args.wants("watch") {
        let r = list_watch_phase(&args, &bin, work.path(), &mut rows, &mut problems).await;
        failed("list", r, &mut rows);
    }
    if args.wants("apply") {
        let r = apply_phase(&args, &bin, work.path(), &mut rows, &mut problems).await;
        failed("apply", r, &mut rows);
    }
    if args.wants("durability") {
        let r = durability_phase(&args, &bin, work.path(), &mut rows, &mut problems).await;
        failed("durability", r, &mut rows);
    }

    if args.wants("schedule") {
        schedule_phase(&args, &bin, work.path(), &mut rows, &mut problems).await;
    }
    if args.wants("deploy") {
        let r = deploy_phase(&args, &bin, work.path(), &mut rows, &mut problems).await;
        failed("deploy", r, &mut rows);
    }

    if args.wants("node") {
        let r = node_phase(&args, &bin, work.path(), &mut rows, &mut problems).await;
        failed("node", r, &mut rows);
    }

    if args.wants("service") {
        let r = service_phase(&args, &bin, work.path(), &mut rows, &mut problems).await;
        failed("service", r, &mut rows);
    }

    stats::print_table(&rows);
    if !problems.is_empty() {
        println!("\nlog WARN/ERROR lines ({}; first 20):", problems.len());
        for p in problems.iter().take(20) {
            println!("  {p}");
        }
    }
    if args.keep {
        let kept = work.keep();
        println!("\ndata dirs kept under {}", kept.display());
    }
    Ok(())
}

fn row(
    phase: &'static str,
    figure: impl Into<String>,
    value: impl Into<String>,
    context: impl Into<String>,
) -> Row {
    Row {
        phase,
        figure: figure.into(),
        value: value.into(),
        context: context.into(),
    }
}

async fn create_phase(
    args: &Args,
    bin: &Path,
    work: &Path,
    rows: &mut Vec<Row>,
    problems: &mut Vec<String>,
) -> Result<()> {
    eprintln!(
        "\n== floor: raw SQLite durable inserts (WAL, synchronous=FULL) in {}",
        work.display()
    );
    let secs = Duration::from_secs(args.floor_seconds);
    let mut floors = Vec::new();
    for batch in [1usize, 10, 100] {
        let dir = work.to_path_buf();
        let r =
            tokio::task::spawn_blocking(move || floor::insert_rate(&dir, batch, secs)).await??;
        eprintln!("  {batch} row(s) per transaction: {r:.0} rows/s");
        floors.push(r);
    }

    eprintln!(
        "\n== create rate: {} clients POSTing 1 KiB ConfigMaps for {} s",
        args.clients, args.seconds
    );
    let (mut server, ready) = Server::start(bin, &work.join("create")).await?;
    eprintln!("  server ready in {} (pid {:?})", ms(ready), server.pid());
    let (server_cpu0, bench_cpu0) = (server.cpu()?, server::cpu_of("/proc/self/stat")?);
    let r = create::run(&server, args.clients, Duration::from_secs(args.seconds)).await?;
    let server_cpu = server.cpu()? - server_cpu0;
    let bench_cpu = server::cpu_of("/proc/self/stat")? - bench_cpu0;
    let rss = server.rss_kib().unwrap_or(0);
    rows.push(row(
        "create",
        format!("ConfigMap creates/s ({} clients)", args.clients),
        rate(r.rate()),
        format!(
            "target >= 3000/s; {:.2}x / {:.2}x the SQLite batch-10 / batch-100 floors; ref kube-apiserver 1423/s",
            r.rate() / floors[1],
            r.rate() / floors[2]
        ),
    ));
    rows.push(row(
        "create",
        "  server CPU per create",
        format!(
            "{:.0} us",
            server_cpu.as_secs_f64() * 1e6 / r.created.max(1) as f64
        ),
        format!(
            "server {:.1} CPU-s, bench client {:.1} CPU-s over {:.1} s (they share the CPUs)",
            server_cpu.as_secs_f64(),
            bench_cpu.as_secs_f64(),
            r.elapsed.as_secs_f64()
        ),
    ));
    rows.push(row(
        "create",
        "  latency p50 / p99 / max",
        format!(
            "{} / {} / {}",
            ms(r.latencies.pct(50.0)),
            ms(r.latencies.pct(99.0)),
            ms(r.latencies.max())
        ),
        "target p99 < 50 ms; ref kube-apiserver p99 60 ms",
    ));
    rows.push(row(
        "create",
        "  floor: SQLite 1 row per txn",
        rate(floors[0]),
        "same disk, same run (ref 5300/s)",
    ));
    rows.push(row(
        "create",
        "  floor: SQLite 10 / 100 rows per txn",
        format!("{} / {}", rate(floors[1]), rate(floors[2])),
        "rows/s (ref 35000 / 88000)",
    ));
    let errors: u64 = r.errors.values().sum();
    rows.push(row(
        "create",
        "  failed creates",
        errors.to_string(),
        summarize(&r.errors),
    ));
    let size = |f: &str| {
        std::fs::metadata(work.join("create/server/db").join(f))
            .map(|m| m.len() / 1024)
            .unwrap_or(0)
    };
    rows.push(row(
        "create",
        "  server RSS after the run",
        mib(rss),
        format!(
            "{} objects stored; state.db {}, WAL {}",
            r.created,
            mib(size("state.db")),
            mib(size("state.db-wal"))
        ),
    ));
    rows.push(row(
        "server",
        "start to ready (empty data dir)",
        ms(ready),
        "",
    ));
    server.stop();
    problems.extend(server.log_problems("create"));
    Ok(())
}

async fn list_watch_phase(
    args: &Args,
    bin: &Path,
    work: &Path,
    rows: &mut Vec<Row>,
    problems: &mut Vec<String>,
) -> Result<()> {
    eprintln!(
        "\n== memory and LIST: {} pods over {} namespaces",
        args.pods, args.namespaces
    );
    let (mut server, _) = Server::start(bin, &work.join("list")).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = server.rss_kib()?;
    eprintln!("  idle RSS {}", mib(idle));
    rows.push(row(
        "memory",
        "server RSS idle after start",
        mib(idle),
        "ref kube-apiserver + etcd 331 MiB",
    ));

    if args.wants("list") {
        let p = list::populate(&server, args.namespaces, args.pods, args.clients).await?;
        let created = p.created;
        let stored = server.rss_kib()?;
        eprintln!(
            "  {} pods in {:.1} s; RSS {}",
            p.created,
            p.elapsed.as_secs_f64(),
            mib(stored)
        );
        rows.push(row(
            "list",
            format!(
                "pod creates/s ({} clients, {} pods)",
                args.clients, args.pods
            ),
            rate(p.created as f64 / p.elapsed.as_secs_f64()),
            format!(
                "p50 {} p99 {}; {} failed {}",
                ms(p.latencies.pct(50.0)),
                ms(p.latencies.pct(99.0)),
                p.errors.values().sum::<u64>(),
                summarize(&p.errors)
            ),
        ));
        rows.push(row(
            "memory",
            format!("server RSS with {created} pods"),
            mib(stored),
            format!(
                "+{} over idle; ref kube-apiserver + etcd 638 MiB",
                mib(stored.saturating_sub(idle))
            ),
        ));

        eprintln!(
            "\n== LIST /api/v1/pods, {} runs of each form",
            args.list_runs
        );
        let l = list::lists(&server, created, args.list_runs).await?;
        let after = server.rss_kib()?;
        let dir = work.to_path_buf();
        let (items, runs) = (l.items.clone(), args.list_runs);
        let fl =
            tokio::task::spawn_blocking(move || floor::list_floor(&dir, &items, runs)).await??;
        let avg = l.items.iter().map(Vec::len).sum::<usize>() / l.items.len().max(1);
        rows.push(row(
            "list",
            format!(
                "unpaged JSON p50 / p99 ({:.1} MiB)",
                l.unpaged_bytes as f64 / 1048576.0
            ),
            format!("{} / {}", ms(l.unpaged.pct(50.0)), ms(l.unpaged.pct(99.0))),
            format!("target < 150 ms; ref kube-apiserver 920 ms; pods avg {avg} B as stored"),
        ));
        rows.push(row(
            "list",
            "  floor: SQLite read + concat same rows",
            format!("{} / {}", ms(fl.pct(50.0)), ms(fl.pct(99.0))),
            "p50 / p99, same disk, same run",
        ));
        rows.push(row(
            "list",
            format!("paged walk limit=500 ({} pages) p50 / p99", l.pages),
            format!("{} / {}", ms(l.paged.pct(50.0)), ms(l.paged.pct(99.0))),
            "whole walk, client parses each page for its continue token",
        ));
        rows.push(row(
            "list",
            format!(
                "unpaged Table p50 / p99 ({:.1} MiB)",
                l.table_bytes as f64 / 1048576.0
            ),
            format!("{} / {}", ms(l.table.pct(50.0)), ms(l.table.pct(99.0))),
            "what `kubectl get pods -A` asks for",
        ));
        rows.push(row("memory", "server RSS after the LISTs", mib(after), ""));
    }

    if args.wants("watch") {
        eprintln!(
            "\n== watch fan-out: 1 watcher (floor), then {}",
            args.watchers
        );
        let one = watch::run(&server, 1, args.watch_writes, "one").await?;
        let many = watch::run(&server, args.watchers, args.watch_writes, "many").await?;
        let rss = server.rss_kib()?;
        rows.push(row(
            "watch",
            format!("{} watchers: all saw it p50 / p99", many.watchers),
            format!(
                "{} / {}",
                ms(many.all_saw.pct(50.0)),
                ms(many.all_saw.pct(99.0))
            ),
            format!(
                "target p99 < 100 ms; {} writes; {} (write, watcher) pairs missed",
                many.all_saw.len(),
                many.missed
            ),
        ));
        rows.push(row(
            "watch",
            "  per-watcher latency p50 / p99",
            format!(
                "{} / {}",
                ms(many.per_watcher.pct(50.0)),
                ms(many.per_watcher.pct(99.0))
            ),
            format!("from POST sent; watchers set up in {}", ms(many.setup)),
        ));
        rows.push(row(
            "watch",
            "  floor: 1 watcher latency p50 / p99",
            format!(
                "{} / {}",
                ms(one.per_watcher.pct(50.0)),
                ms(one.per_watcher.pct(99.0))
            ),
            format!("write ack alone p50 {}", ms(one.write_ack.pct(50.0))),
        ));
        rows.push(row(
            "watch",
            format!("  write ack p50 / p99 with {} watchers", many.watchers),
            format!(
                "{} / {}",
                ms(many.write_ack.pct(50.0)),
                ms(many.write_ack.pct(99.0))
            ),
            "",
        ));
        rows.push(row(
            "memory",
            format!("server RSS with {} watchers", many.watchers),
            mib(rss),
            "",
        ));
    }
    server.stop();
    problems.extend(server.log_problems("list/watch"));
    Ok(())
}

async fn apply_phase(
    args: &Args,
    bin: &Path,
    work: &Path,
    rows: &mut Vec<Row>,
    problems: &mut Vec<String>,
) -> Result<()> {
    eprintln!(
        "\n== apply: {} Deployments created, server-side applied, re-applied unchanged ({} clients)",
        args.apply_objects, args.clients
    );
    let (mut server, _) = Server::start(bin, &work.join("apply")).await?;
    let r = apply::run(&server, args.apply_objects, args.clients).await?;
    rows.push(row(
        "apply",
        "Deployment creates/s (POST)",
        rate(r.create),
        "the same Deployments, same run: the base for the two rows below",
    ));
    rows.push(row(
        "apply",
        "server-side applies/s (creating)",
        rate(r.apply),
        format!("{:.2}x the create rate", r.apply / r.create),
    ));
    rows.push(row(
        "apply",
        "server-side re-applies/s (unchanged)",
        rate(r.reapply),
        format!(
            "target >= 2x the create rate: {:.2}x; no-op applies write nothing",
            r.reapply / r.create
        ),
    ));
    if !r.errors.is_empty() {
        rows.push(row(
            "apply",
            "errors",
            r.errors.len().to_string(),
            r.errors.join("; "),
        ));
    }
    eprintln!(
        "\n== kubectl: create -f / apply -f / apply -f again of a {}-object directory",
        args.kubectl_objects
    );
    let dir = work.join("manifests");
    kubectl::write_manifests(&dir, args.kubectl_objects)?;
    let t = kubectl::run(&work.join("apply/kubeconfig.yaml"), &dir)?;
    rows.push(row(
        "kubectl",
        format!("kubectl create -f ({} objects)", args.kubectl_objects),
        ms(t.create),
        "wall time, one kubectl process",
    ));
    rows.push(row(
        "kubectl",
        format!("kubectl apply -f ({} objects, new)", args.kubectl_objects),
        ms(t.apply),
        format!(
            "{:.2}x create -f",
            t.apply.as_secs_f64() / t.create.as_secs_f64()
        ),
    ));
    rows.push(row(
        "kubectl",
        format!(
            "kubectl apply -f ({} objects, unchanged)",
            args.kubectl_objects
        ),
        ms(t.reapply),
        format!(
            "{:.2}x create -f",
            t.reapply.as_secs_f64() / t.create.as_secs_f64()
        ),
    ));
    server.stop();
    problems.extend(server.log_problems("apply"));
    Ok(())
}

async fn durability_phase(
    args: &Args,
    bin: &Path,
    work: &Path,
    rows: &mut Vec<Row>,
    problems: &mut Vec<String>,
) -> Result<()> {
    eprintln!(
        "\n== durability: {} clients creating, kill -9 after {} s, start again",
        args.durability_clients, args.durability_seconds
    );
    let (mut server, _) = Server::start(bin, &work.join("durability")).await?;
    let d = durability::run(
        &mut server,
        args.durability_clients,
        Duration::from_secs(args.durability_seconds),
    )
    .await?;
    rows.push(row(
        "durability",
        "acknowledged / present / lost",
        format!("{} / {} / {}", d.acknowledged, d.present, d.lost.len()),
        format!(
            "{} attempted; {} unacknowledged but committed (allowed){}",
            d.attempted,
            d.unacknowledged_present,
            if d.lost.is_empty() {
                String::new()
            } else {
                format!("; LOST e.g. {:?}", &d.lost[..d.lost.len().min(5)])
            }
        ),
    ));
    rows.push(row(
        "server",
        "restart to ready after kill -9",
        ms(d.restart),
        "",
    ));
    server.stop();
    problems.extend(server.log_problems("durability"));
    Ok(())
}

/// Two runs, each on a fresh data dir: plain pods, then pods with required
/// anti-affinity. A failed run is reported and the other still runs.
async fn schedule_phase(
    args: &Args,
    bin: &Path,
    work: &Path,
    rows: &mut Vec<Row>,
    problems: &mut Vec<String>,
) {
    for (name, anti_affinity) in [("plain", false), ("anti-affinity", true)] {
        if !args.sched_runs.split(',').any(|r| r.trim() == name) {
            continue;
        }
        eprintln!(
            "\n== schedule ({name}): {} hollow nodes, {} pods with requests from {} clients, then skiff scheduler",
            args.nodes, args.sched_pods, args.clients
        );
        let cfg = schedule::Config {
            nodes: args.nodes,
            pods: args.sched_pods,
            clients: args.clients,
            timeout: Duration::from_secs(args.sched_timeout),
            anti_affinity,
        };
        let dir = work.join(format!("schedule-{name}"));
        let label = format!("schedule {name}");
        let r = schedule::run(bin, &dir, &cfg, &label, problems).await;
        failed(
            "schedule",
            r.map(|o| schedule_rows(args, name, &o, rows)),
            rows,
        );
    }
}

fn schedule_rows(args: &Args, run: &str, o: &schedule::Outcome, rows: &mut Vec<Row>) {
    let anti = run == "anti-affinity";
    let p = "schedule";
    rows.push(row(
        p,
        format!("hollow-nodes registration {} nodes ({run} run)", args.nodes),
        secs(o.registration),
        format!(
            "spawn to \"registered\"; hollow-nodes RSS {}",
            mib(o.hollow_rss_kib)
        ),
    ));
    rows.push(row(
        p,
        format!("create {} pods/s (floor for the scheduler)", o.created),
        rate(o.create_rate()),
        format!(
            "{run} pods, {} clients, no scheduler; p50 {} p99 {}; {} failed {}",
            args.clients,
            ms(o.create_latencies.pct(50.0)),
            ms(o.create_latencies.pct(99.0)),
            o.create_errors.values().sum::<u64>(),
            summarize(&o.create_errors)
        ),
    ));
    let target = if anti { 300.0 } else { 1000.0 };
    rows.push(row(
        p,
        format!("pods scheduled/s ({run})"),
        rate(o.bind_rate()),
        format!(
            "target >= {target:.0}/s; {:.2}x the create rate; first to last bind, {} of {} bound{}",
            o.bind_rate() / o.create_rate(),
            o.bound,
            o.created,
            if o.bound < o.created {
                format!(" (NOT ALL within {} s)", args.sched_timeout)
            } else {
                String::new()
            }
        ),
    ));
    rows.push(row(
        p,
        "  pods scheduled/s from scheduler start",
        rate(o.rate_from_start()),
        format!(
            "{} bound by {}; includes start-up (lease, initial lists)",
            o.bound,
            o.last_bind.map(secs).unwrap_or_else(|| "-".into())
        ),
    ));
    rows.push(row(
        p,
        "  first bind after scheduler start",
        o.first_bind.map(dur).unwrap_or_else(|| "-".into()),
        "as seen by a pod watch",
    ));
    rows.push(row(
        p,
        "  all Running after scheduler start",
        match o.last_running {
            Some(t) if o.running >= o.created => secs(t),
            _ => "-".into(),
        },
        format!(
            "{} of {} Running (hollow nodes' status writes){}",
            o.running,
            o.created,
            match (o.last_running, o.last_bind) {
                (Some(r), Some(b)) if o.running >= o.created =>
                    format!("; {} after the last bind", dur(r.saturating_sub(b))),
                _ => String::new(),
            }
        ),
    ));
    rows.push(row(
        p,
        format!(
            "scheduler RSS with {} nodes, {} pods ({run})",
            args.nodes, o.created
        ),
        o.scheduler_rss_kib.map(mib).unwrap_or_else(|| "-".into()),
        "target < 100 MiB; VmRSS of skiff scheduler when all were bound",
    ));
    rows.push(row(
        p,
        "  CPU-s scheduler / server / hollow-nodes / bench",
        format!(
            "{:.1} / {:.1} / {:.1} / {:.1}",
            o.scheduler_cpu.as_secs_f64(),
            o.server_cpu.as_secs_f64(),
            o.hollow_cpu.as_secs_f64(),
            o.bench_cpu.as_secs_f64()
        ),
        format!(
            "over {} from scheduler start to all bound (all share the CPUs); server RSS after {}",
            secs(o.window),
            mib(o.server_rss_kib)
        ),
    ));
    rows.push(row(
        p,
        "  pod writes per pod during scheduling",
        format!("{:.2}", o.modified as f64 / o.created.max(1) as f64),
        "MODIFIED events the pod watch saw (binding, hollow node's Running status, ...); a create is 1",
    ));
    let pl = &o.placement;
    rows.push(row(
        p,
        "  nodes used / max pods per node",
        format!("{} / {}", pl.nodes_used, pl.max_per_node),
        format!(
            "final LIST: {} pods, {} unbound{}",
            pl.listed,
            pl.unbound,
            if pl.pending.is_empty() {
                String::new()
            } else {
                format!("; {}", summarize(&pl.pending))
            }
        ),
    ));
    if anti {
        rows.push(row(
            p,
            "  anti-affinity violations",
            pl.violations.to_string(),
            format!(
                "pods sharing a hostname with another of their group ({} groups); must be 0",
                schedule::GROUPS
            ),
        ));
    }
    if let Some(e) = &o.scheduler_exited {
        rows.push(row(p, "  ! stopped early", "-", e.clone()));
    }
    if o.watch_restarts > 0 {
        rows.push(row(
            p,
            "  pod watch reopened",
            o.watch_restarts.to_string(),
            "the stream ended; resumed from the last resourceVersion",
        ));
    }
}

/// A Deployment scaled 0 → N on hollow nodes, then rolled, with the
/// scheduler and the controller manager as their own processes.
async fn deploy_phase(
    args: &Args,
    bin: &Path,
    work: &Path,
    rows: &mut Vec<Row>,
    problems: &mut Vec<String>,
) -> Result<()> {
    eprintln!(
        "\n== deploy: {} hollow nodes, {} Deployments, one scaled 0 -> {} then rolled",
        args.nodes, args.deployments, args.deploy_replicas
    );
    let cfg = deploy::Config {
        nodes: args.nodes,
        replicas: args.deploy_replicas,
        deployments: args.deployments.max(1),
        clients: args.clients,
        timeout: Duration::from_secs(args.deploy_timeout),
    };
    let o = deploy::run(bin, &work.join("deploy"), &cfg, problems).await?;
    let p = "deploy";
    let n = o.floor_created;
    rows.push(row(
        p,
        format!("raw create of {n} pods (floor)"),
        secs(o.floor_elapsed),
        format!(
            "{} clients, no scheduler or controllers; {}",
            args.clients,
            rate(n as f64 / o.floor_elapsed.as_secs_f64())
        ),
    ));
    rows.push(row(
        p,
        format!("Deployment 0 -> {} replicas, all Running", args.deploy_replicas),
        o.scale_up.map(secs).unwrap_or_else(|| "-".into()),
        match o.scale_up {
            Some(t) => format!(
                "target within 1.5x the floor; {:.1}x; includes scheduling and hollow status writes",
                t.as_secs_f64() / o.floor_elapsed.as_secs_f64()
            ),
            None => format!("NOT DONE within {} s: {} Running", args.deploy_timeout, o.running),
        },
    ));
    rows.push(row(
        p,
        format!(
            "rolling update of {} replicas (maxSurge 25%)",
            args.deploy_replicas
        ),
        o.rollout.map(secs).unwrap_or_else(|| "-".into()),
        format!("target < 60 s; {}", o.rollout_status),
    ));
    rows.push(row(
        p,
        format!(
            "controller-manager RSS ({} pods, {} Deployments, {} nodes)",
            args.deploy_replicas, args.deployments, args.nodes
        ),
        mib(o.controller_manager_rss_kib),
        "target < 150 MiB; highest VmRSS of skiff controller-manager after the scale-up and the rollout",
    ));
    rows.push(row(
        p,
        "  CPU-s controller-manager / scheduler / server / hollow-nodes",
        format!(
            "{:.1} / {:.1} / {:.1} / {:.1}",
            o.controller_manager_cpu.as_secs_f64(),
            o.scheduler_cpu.as_secs_f64(),
            o.server_cpu.as_secs_f64(),
            o.hollow_cpu.as_secs_f64()
        ),
        format!(
            "over the scale-up and the rollout; hollow-nodes registration {}",
            secs(o.registration)
        ),
    ));
    Ok(())
}

/// Real containers: the container-start floors, pod startup latency and
/// the agent's memory with many pods, in a network namespace of its own.
async fn node_phase(
    args: &Args,
    bin: &Path,
    work: &Path,
    rows: &mut Vec<Row>,
    problems: &mut Vec<String>,
) -> Result<()> {
    eprintln!(
        "\n== node: skiff server --disable-agent + skiff agent in a network namespace; floors, {} pods one at a time and at once, {} pods",
        args.node_pods, args.node_many
    );
    let cfg = node::Config {
        pods: args.node_pods,
        many: args.node_many,
        floor_reps: args.node_floor_reps,
        timeout: Duration::from_secs(args.node_timeout),
        images_dir: images_dir(args),
    };
    let (bin, dir) = (bin.to_path_buf(), work.join("node"));
    let o = tokio::task::spawn_blocking(move || node::run(&bin, &dir, cfg)).await??;
    problems.extend(o.problems.iter().cloned());
    node_rows(args, &o, rows);
    Ok(())
}

fn node_rows(args: &Args, o: &node::Outcome, rows: &mut Vec<Row>) {
    let p = "node";
    let n = args.node_floor_reps;
    let floor = o.cri_total.pct(50.0);
    let p50_p99 = |l: &stats::Latencies| format!("{} / {}", ms(l.pct(50.0)), ms(l.pct(99.0)));
    rows.push(row(
        p,
        format!("floor: ctr run --rm busybox /bin/true ({n}x) p50 / p99"),
        p50_p99(&o.ctr_run),
        "through the agent's containerd; no CNI; includes the ctr process, snapshot, task and cleanup",
    ));
    rows.push(row(
        p,
        format!("floor: CRI sandbox + create + start ({n}x) p50 / p99"),
        p50_p99(&o.cri_total),
        format!(
            "busybox sleep, the agent's configs; RunPodSandbox p50 {} (CNI ADD), CreateContainer {}, StartContainer {}; stop + remove sandbox p50 {}",
            ms(o.cri_sandbox.pct(50.0)),
            ms(o.cri_create.pct(50.0)),
            ms(o.cri_start.pct(50.0)),
            ms(o.cri_teardown.pct(50.0))
        ),
    ));
    let verdict = |met: bool| if met { "met" } else { "missed" };
    let target = floor + Duration::from_millis(150);
    let serial = &o.serial;
    rows.push(row(
        p,
        format!(
            "pod create -> Ready, {} one at a time, p50 / p99",
            serial.len()
        ),
        p50_p99(serial),
        format!(
            "target p50 <= CRI floor + 150 ms = {} ({}), p99 <= 1 s ({}); {:.2}x the CRI floor",
            ms(target),
            verdict(serial.pct(50.0) <= target),
            verdict(serial.pct(99.0) <= Duration::from_secs(1)),
            serial.pct(50.0).as_secs_f64() / floor.as_secs_f64().max(1e-9)
        ),
    ));
    rows.push(row(
        p,
        "  create ack / seen bound, p50",
        format!(
            "{} / {}",
            ms(o.serial_ack.pct(50.0)),
            ms(o.serial_bind.pct(50.0))
        ),
        "from the POST being sent: the API's 201, then the watch seeing spec.nodeName (scheduler)",
    ));
    rows.push(row(
        p,
        format!("pod create -> Ready, {} at once, p50 / p99", o.burst.len()),
        p50_p99(&o.burst),
        format!(
            "target p50 <= {} ({}), p99 <= 1 s ({}); first POST to last Ready {}",
            ms(target),
            verdict(o.burst.pct(50.0) <= target),
            verdict(o.burst.pct(99.0) <= Duration::from_secs(1)),
            ms(o.burst_all)
        ),
    ));
    rows.push(row(
        p,
        format!(
            "  floor: {} CRI pods at once, p50 / p99",
            o.floor_burst.each.len()
        ),
        p50_p99(&o.floor_burst.each),
        format!(
            "sandbox + create + start each, all started after {}: skiff's p50 is {:.2}x this",
            ms(o.floor_burst.all),
            o.burst.pct(50.0).as_secs_f64() / o.floor_burst.each.pct(50.0).as_secs_f64().max(1e-9)
        ),
    ));
    rows.push(row(
        p,
        format!(
            "{} pods on one node: first create -> all Ready",
            o.many_created
        ),
        o.many_all_ready
            .map(stats::secs)
            .unwrap_or_else(|| "-".into()),
        format!(
            "10 clients; per pod p50 {} p99 {}; {} Ready",
            ms(o.many_ready.pct(50.0)),
            ms(o.many_ready.pct(99.0)),
            o.many_ready.len()
        ),
    ));
    rows.push(row(
        p,
        format!(
            "  floor: {} CRI pods at once, all started",
            o.floor_many.each.len()
        ),
        stats::secs(o.floor_many.all),
        format!(
            "per pod p50 {} p99 {}; skiff took {:.2}x this",
            ms(o.floor_many.each.pct(50.0)),
            ms(o.floor_many.each.pct(99.0)),
            o.many_all_ready.unwrap_or_default().as_secs_f64()
                / o.floor_many.all.as_secs_f64().max(1e-9)
        ),
    ));
    rows.push(row(
        p,
        format!("agent RSS with {} pods", o.many_created),
        mib(o.agent_rss_many),
        format!(
            "target < 60 MiB ({}); skiff agent alone: {} idle, {} with {} pods",
            verdict(o.agent_rss_many < 60 * 1024),
            mib(o.agent_rss_idle),
            mib(o.agent_rss_pods),
            args.node_pods
        ),
    ));
    rows.push(row(
        p,
        format!("  containerd / {} shims RSS", o.shims),
        format!("{} / {}", mib(o.containerd_rss_many), mib(o.shims_rss_many)),
        format!(
            "not the agent's; the shims' PSS (shared pages once) {}; API server {}",
            mib(o.shims_pss_many),
            mib(o.server_rss_many)
        ),
    ));
    rows.push(row(
        p,
        "  CPU-s agent / containerd / server",
        format!(
            "{:.1} / {:.1} / {:.1}",
            o.agent_cpu_many.as_secs_f64(),
            o.containerd_cpu_many.as_secs_f64(),
            o.server_cpu_many.as_secs_f64()
        ),
        format!(
            "while the {} pods started (shims not counted)",
            o.many_created
        ),
    ));
    rows.push(row(
        p,
        "  delete (grace 0) -> no sandbox left",
        o.teardown
            .iter()
            .map(|(_, d)| stats::secs(*d))
            .collect::<Vec<_>>()
            .join(" / "),
        format!(
            "for {} pods; node Ready {} after the agent's spawn",
            o.teardown
                .iter()
                .map(|(n, _)| n.to_string())
                .collect::<Vec<_>>()
                .join(" / "),
            ms(o.node_ready)
        ),
    ));
}

fn images_dir(args: &Args) -> PathBuf {
    args.images_dir.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
            .join("images")
    })
}

/// Service networking on a real node: ClusterIP against pod IP, rule
/// programming with many Services, the cluster DNS under load.
async fn service_phase(
    args: &Args,
    bin: &Path,
    work: &Path,
    rows: &mut Vec<Row>,
    problems: &mut Vec<String>,
) -> Result<()> {
    eprintln!(
        "\n== service: server + agent (proxy, DNS) in a network namespace; demo app via ClusterIP vs pod IP, {} Services x {} endpoints, DNS",
        args.svc_count, args.svc_endpoints
    );
    let cfg = service::Config {
        services: args.svc_count,
        endpoints: args.svc_endpoints,
        clients: args.svc_clients,
        requests: args.svc_requests,
        concurrency: args.svc_concurrency,
        load_seconds: args.svc_load_seconds,
        changes: args.svc_changes,
        dns_seconds: args.svc_dns_seconds,
        timeout: Duration::from_secs(args.svc_timeout),
        images_dir: images_dir(args),
    };
    let (bin, dir) = (bin.to_path_buf(), work.join("service"));
    let o = tokio::task::spawn_blocking(move || service::run(&bin, &dir, cfg)).await??;
    problems.extend(o.problems.iter().cloned());
    service_rows(args, &o, rows);
    Ok(())
}

fn service_rows(args: &Args, o: &service::Outcome, rows: &mut Vec<Row>) {
    let p = "service";
    let p50_p99 = |l: &stats::Latencies| format!("{} / {}", ms(l.pct(50.0)), ms(l.pct(99.0)));
    let verdict = |met: bool| if met { "met" } else { "missed" };
    let n = args.svc_requests;
    if o.seq_svc.len() > 0 {
        let (svc, pod) = (o.seq_svc.pct(50.0), o.seq_pod.pct(50.0));
        let added = (svc.as_secs_f64() / pod.as_secs_f64().max(1e-9) - 1.0) * 100.0;
        rows.push(row(
            p,
            format!("GET demo via ClusterIP, new conn each ({n}x) p50 / p99"),
            p50_p99(&o.seq_svc),
            format!(
                "target <= 5% added p50: {added:+.1}% ({}); from the node (nat output), interleaved with the pod-IP GETs; ClusterIP answered {} after the pod was Ready",
                verdict(added <= 5.0),
                o.svc_first_answer.map(dur).unwrap_or_else(|| "-".into())
            ),
        ));
    }
    if o.seq_pod.len() > 0 {
        rows.push(row(
            p,
            format!("  floor: GET straight to the pod IP ({n}x) p50 / p99"),
            p50_p99(&o.seq_pod),
            format!("same client, same run; {} GETs failed", o.seq_errors),
        ));
    }
    let c = args.svc_concurrency;
    if let Some(svc) = o.rps_svc {
        rows.push(row(
            p,
            format!("GETs/s via ClusterIP, {c} loops, new conn each"),
            rate(svc),
            format!(
                "{:.2}x the pod-IP rate; {} s each, in alternating halves; the demo app closes every connection",
                svc / o.rps_pod.unwrap_or(f64::NAN),
                args.svc_load_seconds
            ),
        ));
    }
    if let Some(pod) = o.rps_pod {
        rows.push(row(
            p,
            format!("  floor: GETs/s straight to the pod IP, {c} loops"),
            rate(pod),
            format!("{} GETs failed over both runs", o.load_errors),
        ));
    }
    if o.written > 0 {
        rows.push(row(
            p,
            format!(
                "API writes: {} Services + {} EndpointSlices",
                args.svc_count, args.svc_count
            ),
            secs(o.write_elapsed),
            format!(
                "{}, {} clients; selector-less, {} ready endpoints each",
                rate(o.written as f64 / o.write_elapsed.as_secs_f64()),
                args.svc_clients,
                args.svc_endpoints
            ),
        ));
        rows.push(row(
            p,
            "  last write -> rules in force",
            o.initial.map(dur).unwrap_or_else(|| "-".into()),
            format!(
                "until a connect to the last Service's clusterIP:80 is accepted; table ip skiff {} lines",
                o.table_lines
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "-".into())
            ),
        ));
    }
    if o.change_open.len() > 0 {
        rows.push(row(
            p,
            format!(
                "single EndpointSlice change -> in force ({}x) p50 / p99",
                o.change_open.len()
            ),
            p50_p99(&o.change_open),
            format!(
                "target < 100 ms ({}); PATCH response to the first accepted connect, {} Services in place; back to the closed port p50 / p99 {}; PATCH itself p50 {}{}",
                verdict(o.change_open.pct(99.0) < Duration::from_millis(100)),
                args.svc_count,
                p50_p99(&o.change_close),
                ms(o.change_ack.pct(50.0)),
                if o.changes_missed > 0 {
                    format!("; {} NOT in force within 10 s", o.changes_missed)
                } else {
                    String::new()
                }
            ),
        ));
    }
    if o.nft_elem.len() > 0 {
        rows.push(row(
            p,
            "  floor: nft -f add + delete one set element p50 / p99",
            p50_p99(&o.nft_elem),
            format!(
                "scratch `table ip floor`, with the Services' rules loaded; no-op transaction p50 {}; before the Services {} / no-op {}",
                ms(o.nft_empty.pct(50.0)),
                ms(o.nft_elem_before.pct(50.0)),
                ms(o.nft_empty_before.pct(50.0))
            ),
        ));
    }
    for (i, d) in o.dns.iter().enumerate() {
        let floor = d.target.starts_with("floor");
        rows.push(row(
            p,
            if floor {
                format!("  {} ({})", d.target, d.tool)
            } else {
                format!("DNS A svc-N lookups, {} ({})", d.target, d.tool)
            },
            rate(d.qps),
            format!(
                "p50 {} p99 {}; {} completed, {} lost; {}{}",
                ms(d.latency.pct(50.0)),
                ms(d.latency.pct(99.0)),
                d.completed,
                d.lost,
                d.rcodes,
                match o.dns.first() {
                    Some(f) if i > 0 && f.target.starts_with("floor") =>
                        format!("; {:.2}x the floor's rate", d.qps / f.qps.max(1e-9)),
                    _ => String::new(),
                }
            ),
        ));
    }
    rows.push(row(
        p,
        format!("agent RSS before / with {} Services", args.svc_count),
        format!("{} / {}", mib(o.agent_rss_before), mib(o.agent_rss_after)),
        format!(
            "VmRSS of skiff agent (kubelet, proxy, DNS; the demo pod); {} idle before the requests; node Ready {} after its spawn",
            mib(o.agent_rss_idle),
            ms(o.node_ready)
        ),
    ));
    for note in &o.notes {
        let first = note.lines().next().unwrap_or_default();
        rows.push(row(p, "  ! not measured", "-", first.to_owned()));
    }
}

fn failed(phase: &'static str, result: Result<()>, rows: &mut Vec<Row>) {
    if let Err(e) = result {
        let first = format!("{e:#}")
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        eprintln!("  ! phase {phase} failed: {e:#}");
        rows.push(row(phase, "PHASE FAILED", "-", first));
    }
}

fn summarize(errors: &std::collections::BTreeMap<String, u64>) -> String {
    errors
        .iter()
        .take(3)
        .map(|(k, v)| format!("{v}x {k}"))
        .collect::<Vec<_>>()
        .join("; ")
}
