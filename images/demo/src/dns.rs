//! A stub DNS resolver (A records over UDP) that follows /etc/hosts and
//! /etc/resolv.conf (nameservers, search list, ndots) like libc does. A
//! statically linked glibc cannot use its own NSS-based resolver inside a
//! bare image, so the demo carries this one.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

struct ResolvConf {
    servers: Vec<IpAddr>,
    search: Vec<String>,
    ndots: usize,
}

fn resolv_conf() -> ResolvConf {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut conf = ResolvConf {
        servers: Vec::new(),
        search: Vec::new(),
        ndots: 1,
    };
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                    conf.servers.push(ip);
                }
            }
            Some("search" | "domain") => conf.search = words.map(str::to_string).collect(),
            Some("options") => {
                for opt in words {
                    if let Some(n) = opt.strip_prefix("ndots:").and_then(|n| n.parse().ok()) {
                        conf.ndots = n;
                    }
                }
            }
            _ => {}
        }
    }
    if conf.servers.is_empty() {
        conf.servers.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    conf
}

fn from_hosts(name: &str) -> Vec<IpAddr> {
    let text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let ip: IpAddr = words.next()?.parse().ok()?;
            words
                .any(|w| w.eq_ignore_ascii_case(name.trim_end_matches('.')))
                .then_some(ip)
        })
        .collect()
}

/// The names to try, in order, as the libc resolver builds them.
fn candidates(name: &str, conf: &ResolvConf) -> Vec<String> {
    if let Some(abs) = name.strip_suffix('.') {
        return vec![abs.to_string()];
    }
    let searched = conf.search.iter().map(|d| format!("{name}.{d}"));
    if name.matches('.').count() >= conf.ndots {
        std::iter::once(name.to_string()).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(name.to_string())).collect()
    }
}

enum Answer {
    Found(Vec<IpAddr>),
    NoSuchName,
}

fn query_packet(id: u16, name: &str) -> Result<Vec<u8>, String> {
    let mut p = Vec::with_capacity(512);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.split('.').filter(|l| !l.is_empty()) {
        if label.len() > 63 {
            return Err(format!("{name}: label too long"));
        }
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&[0, 1, 0, 1]); // type A, class IN
    Ok(p)
}

/// Skips a (possibly compressed) name at `pos`, returning the next offset.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)? as usize;
        if len == 0 {
            return Some(pos + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Some(pos + 2);
        }
        pos += 1 + len;
    }
}

fn parse_answer(msg: &[u8], id: u16) -> Result<Answer, String> {
    let be16 =
        |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?])) };
    let bad = || "malformed DNS response".to_string();
    if be16(0) != Some(id) {
        return Err("DNS response id mismatch".into());
    }
    let flags = be16(2).ok_or_else(bad)?;
    match flags & 0x000f {
        0 => {}
        3 => return Ok(Answer::NoSuchName),
        rcode => return Err(format!("DNS server error (rcode {rcode})")),
    }
    let qd = be16(4).ok_or_else(bad)?;
    let an = be16(6).ok_or_else(bad)?;
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(msg, pos).ok_or_else(bad)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..an {
        pos = skip_name(msg, pos).ok_or_else(bad)?;
        let rtype = be16(pos).ok_or_else(bad)?;
        let rdlen = be16(pos + 8).ok_or_else(bad)? as usize;
        let data = msg.get(pos + 10..pos + 10 + rdlen).ok_or_else(bad)?;
        if rtype == 1 && rdlen == 4 {
            ips.push(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            )));
        }
        pos += 10 + rdlen;
    }
    Ok(Answer::Found(ips))
}

fn query(server: IpAddr, name: &str, deadline: Instant) -> Result<Answer, String> {
    let bind = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    let id = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id()) as u16;
    let packet = query_packet(id, name)?;
    let target = SocketAddr::new(server, 53);
    // Two tries per server, each at most 2 s, as resolv.conf's defaults.
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        sock.send_to(&packet, target)
            .map_err(|e| format!("send to {target}: {e}"))?;
        sock.set_read_timeout(Some(left.min(Duration::from_secs(2))))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 1500];
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => return parse_answer(&buf[..n], id),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("{target}: {e}")),
        }
    }
    Err(format!("{target}: no answer (timed out)"))
}

/// Resolves `name` to addresses: /etc/hosts, then DNS (the given server, or
/// resolv.conf's).
pub fn resolve(
    name: &str,
    server: Option<IpAddr>,
    timeout: Duration,
) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let deadline = Instant::now() + timeout;
    let conf = resolv_conf();
    if server.is_none() {
        let local = from_hosts(name);
        if !local.is_empty() {
            return Ok(local);
        }
    }
    let servers = server.map(|s| vec![s]).unwrap_or(conf.servers.clone());
    let mut last_err = None;
    for candidate in candidates(name, &conf) {
        for s in &servers {
            match query(*s, &candidate, deadline) {
                Ok(Answer::Found(ips)) if !ips.is_empty() => return Ok(ips),
                // NXDOMAIN or no A record: the next candidate name.
                Ok(_) => break,
                Err(e) => last_err = Some(e),
            }
        }
    }
    Err(last_err.unwrap_or_else(|| format!("{name}: not found")))
}

pub fn lookup_command(name: &str, server: Option<&str>) -> i32 {
    let server = match server.map(str::parse::<IpAddr>) {
        None => None,
        Some(Ok(ip)) => Some(ip),
        Some(Err(_)) => {
            eprintln!("demo lookup: --server wants an IP address");
            return 2;
        }
    };
    match resolve(name, server, Duration::from_secs(10)) {
        Ok(ips) => {
            for ip in ips {
                println!("{ip}");
            }
            0
        }
        Err(e) => {
            eprintln!("demo lookup: {name}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order_follows_ndots() {
        let conf = ResolvConf {
            servers: vec![],
            search: vec![
                "default.svc.cluster.local".into(),
                "svc.cluster.local".into(),
            ],
            ndots: 5,
        };
        assert_eq!(
            candidates("web", &conf),
            [
                "web.default.svc.cluster.local",
                "web.svc.cluster.local",
                "web"
            ]
        );
        assert_eq!(candidates("a.b.", &conf), ["a.b"]);
    }

    #[test]
    fn parses_a_records() {
        let q = query_packet(7, "web").unwrap();
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1; // one answer
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 43, 0, 10]);
        match parse_answer(&r, 7).unwrap() {
            Answer::Found(ips) => assert_eq!(ips, vec!["10.43.0.10".parse::<IpAddr>().unwrap()]),
            Answer::NoSuchName => panic!("nxdomain"),
        }
    }
}
