//! Keeping the service CIDR on the node, with policy routing beside the
//! nftables rules (iproute2's `ip`).
//!
//! Service addresses exist only as DNAT rules; a packet still addressed to
//! one after DNAT (no endpoints, an unknown address or port, or the proxy
//! not running yet) must not follow the default route out of the node. A
//! rule `to <service CIDR> lookup 4343` sends such packets to a table whose
//! only route is `<service CIDR> dev lo`:
//! - forwarded (pod) traffic that DNAT did not rewrite reaches the filter
//!   forward hook, where `cluster-ips-check` rejects it (connection refused);
//!   without our nftables table the kernel answers host-unreachable at once,
//!   since it never forwards out of `lo`;
//! - the node's own connect() to a service address routes via `lo`, so nat
//!   output still runs and DNATs (the kernel re-routes after DNAT); what is
//!   left is rejected by the post-DNAT output check, or without our table
//!   dropped on `lo`. An `unreachable` route would instead fail the node's
//!   connect() before nat output runs, even for healthy Services.
//!
//! The source the node picks via `lo` is 127.0.0.1, hence
//! `route_localnet=1` (needed anyway for NodePorts on 127.0.0.1, as
//! kube-proxy's iptables mode sets it); such traffic is always masqueraded.

use tokio::process::Command;

use crate::cidr::Ipv4Cidr;

/// The routing table (and rule priority) the proxy owns.
pub const ROUTE_TABLE: u32 = 4343;

/// What changing the routing can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("cannot run ip: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("ip {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("cannot set net.ipv4.conf.all.route_localnet: {0}")]
    Sysctl(#[source] std::io::Error),
}

async fn ip(args: &[&str]) -> Result<String, RoutingError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(RoutingError::Spawn)?;
    if !out.status.success() {
        return Err(RoutingError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `to` prefixes of our rules (`ip -4 rule show pref 4343`).
fn parse_rule_destinations(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "to")?;
            words.next().map(str::to_string)
        })
        .collect()
}

/// The prefixes routed in our table (`ip -4 route show table 4343`).
fn parse_route_destinations(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Installs (idempotently) the routing for `service_cidrs`, removing what
/// an earlier run installed for other CIDRs.
pub async fn ensure(service_cidrs: &[Ipv4Cidr]) -> Result<(), RoutingError> {
    let table = ROUTE_TABLE.to_string();
    let wanted: Vec<String> = service_cidrs.iter().map(|c| c.to_string()).collect();
    for cidr in &wanted {
        ip(&["-4", "route", "replace", cidr, "dev", "lo", "table", &table]).await?;
    }
    let routes = parse_route_destinations(&ip(&["-4", "route", "show", "table", &table]).await?);
    for dst in routes.iter().filter(|d| !wanted.contains(d)) {
        ip(&["-4", "route", "del", dst, "table", &table]).await?;
    }
    let rules = parse_rule_destinations(&ip(&["-4", "rule", "show", "pref", &table]).await?);
    for cidr in wanted.iter().filter(|c| !rules.contains(c)) {
        ip(&[
            "-4", "rule", "add", "pref", &table, "to", cidr, "lookup", &table,
        ])
        .await?;
    }
    for dst in rules.iter().filter(|d| !wanted.contains(d)) {
        ip(&[
            "-4", "rule", "del", "pref", &table, "to", dst, "lookup", &table,
        ])
        .await?;
    }
    Ok(())
}

/// Lets 127.0.0.1 be DNATed out of `lo`: NodePorts on 127.0.0.1 and the
/// node's own service traffic (sourced from 127.0.0.1, see above).
pub fn enable_route_localnet() -> Result<(), RoutingError> {
    std::fs::write("/proc/sys/net/ipv4/conf/all/route_localnet", "1").map_err(RoutingError::Sysctl)
}

/// Removes our rules and routes; what is already gone is fine.
pub async fn cleanup() -> Result<(), RoutingError> {
    let table = ROUTE_TABLE.to_string();
    // `ip rule del pref N` removes one rule a call.
    for _ in 0..64 {
        if ip(&["-4", "rule", "del", "pref", &table]).await.is_err() {
            break;
        }
    }
    match ip(&["-4", "route", "flush", "table", &table]).await {
        Ok(_) => Ok(()),
        // Flushing an empty or never-made table fails; nothing to remove.
        Err(RoutingError::Failed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_output() {
        let rules = "4343:\tfrom all to 10.43.0.0/16 lookup 4343\n4343:\tfrom all to 10.44.0.0/16 lookup 4343\n";
        assert_eq!(
            parse_rule_destinations(rules),
            vec!["10.43.0.0/16", "10.44.0.0/16"]
        );
        let routes = "10.43.0.0/16 dev lo scope link \n";
        assert_eq!(parse_route_destinations(routes), vec!["10.43.0.0/16"]);
        assert!(parse_rule_destinations("").is_empty());
    }
}
