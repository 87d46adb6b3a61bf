//! `skiff`: Kubernetes in one binary. This file only lists the subcommands
//! and hands each to its `run` function; no logic lives here.

mod cli;

use clap::{Parser, Subcommand};

// The API server allocates many short-lived JSON trees; mimalloc keeps that
// fast and hands freed memory back instead of holding peaks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "skiff", version, about = "Kubernetes in one small binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server with its store) on this machine.
    Server(Box<cli::server::ServerArgs>),
    /// Run the node agent alone (kubelet with its own containerd) against a cluster.
    Agent(cli::agent::AgentArgs),
    /// Import and list images in the node's containerd.
    Images(cli::images::ImagesArgs),
    /// Stop every pod and the containerd of this machine's agent, and unmount what they left (like k3s-killall.sh).
    Killall(cli::agent::KillallArgs),
    /// Register hollow nodes (like kubemark/KWOK) for scale tests: Node objects with leases whose pods are marked Running without containers.
    HollowNodes(cli::hollow_nodes::HollowNodesArgs),
    /// Run the scheduler alone against a cluster (`skiff server` runs it in-process).
    Scheduler(cli::scheduler::SchedulerArgs),
    /// Run the controllers alone against a cluster (`skiff server` runs them in-process).
    ControllerManager(cli::controller_manager::ControllerManagerArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Server(args) => runtime.block_on(cli::server::run(*args)),
        Command::Agent(args) => runtime.block_on(cli::agent::run(args)),
        Command::Images(args) => runtime.block_on(cli::images::run(args)),
        Command::Killall(args) => runtime.block_on(cli::agent::killall(args)),
        Command::HollowNodes(args) => runtime.block_on(cli::hollow_nodes::run(args)),
        Command::Scheduler(args) => runtime.block_on(cli::scheduler::run(args)),
        Command::ControllerManager(args) => runtime.block_on(cli::controller_manager::run(args)),
    }
}
