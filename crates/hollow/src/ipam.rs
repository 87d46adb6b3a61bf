//! Addresses for hollow nodes and their pods. Nothing is ever routed to
//! them; they only have to be well-formed and unique, as a CNI plugin's
//! host-local IPAM would make them.

use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 range `a.b.c.d/prefix`, stored with the host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    base: u32,
    prefix: u8,
}

impl Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Cidr> {
        if prefix > 32 {
            return None;
        }
        Some(Cidr {
            base: u32::from(addr) & mask(prefix),
            prefix,
        })
    }

    /// `10.244.3.0/24`; IPv6 and malformed ranges are `None`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = s.trim().split_once('/')?;
        Cidr::new(addr.parse().ok()?, prefix.parse().ok()?)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.base
    }

    /// Number of addresses in the range, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The address `offset` places above the network address.
    fn at(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base.wrapping_add(offset))
    }

    fn offset_of(&self, ip: Ipv4Addr) -> Option<u32> {
        self.contains(ip).then(|| u32::from(ip) - self.base)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p)),
    }
}

/// Node `i`'s own pod range, taken only when no node IPAM controller
/// assigns one: consecutive /24s from 10.244.0.0 (node 256 gets
/// 10.245.0.0/24, and so on; past 10.255.255.0 it simply carries on).
pub fn node_pod_cidr(index: usize) -> Cidr {
    let base = u32::from(Ipv4Addr::new(10, 244, 0, 0)).wrapping_add((index as u32) << 8);
    Cidr { base, prefix: 24 }
}

/// Node `i`'s InternalIP: 10.128.0.1 upward. Never contacted.
pub fn node_internal_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 1)).wrapping_add(index as u32))
}

/// Ranges larger than this many addresses are only used up to it: a hollow
/// node never holds anywhere near that many pods.
const MAX_TRACKED: u64 = 1 << 16;

/// Pod addresses of one node, handed out like host-local IPAM does: the
/// network address, the gateway (`.1`) and the broadcast address are never
/// used, and allocation moves round-robin past the last address handed out,
/// so a freed address is reused only after the others (an Endpoints list
/// that still names the old pod does not suddenly point at a new one).
#[derive(Debug)]
pub struct PodIpam {
    cidr: Cidr,
    used: Vec<u64>,
    /// Usable offsets are `first..end`.
    first: u32,
    end: u32,
    /// The offset handed out last.
    last: u32,
    in_use: usize,
}

impl PodIpam {
    pub fn new(cidr: Cidr) -> PodIpam {
        let size = cidr.size().min(MAX_TRACKED) as u32;
        let (first, end) = if cidr.size() >= 4 {
            (2, size - u32::from(cidr.size() <= MAX_TRACKED))
        } else {
            (0, 0)
        };
        PodIpam {
            cidr,
            used: vec![0; size.div_ceil(64) as usize],
            first,
            end,
            // So that the first allocation is `first`.
            last: end.saturating_sub(1),
            in_use: 0,
        }
    }

    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    pub fn in_use(&self) -> usize {
        self.in_use
    }

    fn usable(&self, offset: u32) -> bool {
        (self.first..self.end).contains(&offset)
    }

    fn is_used(&self, offset: u32) -> bool {
        self.used[(offset / 64) as usize] & (1 << (offset % 64)) != 0
    }

    fn set(&mut self, offset: u32, used: bool) {
        let word = &mut self.used[(offset / 64) as usize];
        if used {
            *word |= 1 << (offset % 64);
        } else {
            *word &= !(1 << (offset % 64));
        }
    }

    /// The next free address, or `None` when the range is full.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let span = self.end.checked_sub(self.first).filter(|s| *s > 0)?;
        for step in 1..=span {
            let offset = self.first + (self.last - self.first + step) % span;
            if !self.is_used(offset) {
                self.set(offset, true);
                self.last = offset;
                self.in_use += 1;
                return Some(self.cidr.at(offset));
            }
        }
        None
    }

    /// Marks `ip` as taken (an address a pod already had before a restart).
    /// False when it is outside the usable range or already taken.
    pub fn adopt(&mut self, ip: Ipv4Addr) -> bool {
        match self.cidr.offset_of(ip) {
            Some(o) if self.usable(o) && !self.is_used(o) => {
                self.set(o, true);
                self.in_use += 1;
                true
            }
            _ => false,
        }
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        if let Some(o) = self.cidr.offset_of(ip).filter(|o| self.usable(*o)) {
            if self.is_used(o) {
                self.set(o, false);
                self.in_use -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn node_ranges_are_distinct_24s() {
        let cases = [
            (0, "10.244.0.0/24"),
            (1, "10.244.1.0/24"),
            (255, "10.244.255.0/24"),
            (256, "10.245.0.0/24"),
            (1000, "10.247.232.0/24"),
        ];
        for (i, want) in cases {
            assert_eq!(node_pod_cidr(i).to_string(), want, "node {i}");
        }
        assert_eq!(node_internal_ip(0), ip("10.128.0.1"));
        assert_eq!(node_internal_ip(255), ip("10.128.1.0"));
        assert_eq!(node_internal_ip(1000), ip("10.128.3.233"));
    }

    #[test]
    fn parse_and_contains() {
        let c = Cidr::parse("10.244.3.7/24").unwrap();
        assert_eq!(c.to_string(), "10.244.3.0/24");
        assert!(c.contains(ip("10.244.3.254")));
        assert!(!c.contains(ip("10.244.4.1")));
        assert_eq!(Cidr::parse("fd00::/64"), None);
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("10.0.0.0"), None);
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().size(), 1 << 32);
    }

    #[test]
    fn allocates_from_2_to_254_then_runs_out() {
        let mut ipam = PodIpam::new(node_pod_cidr(1));
        assert_eq!(ipam.allocate(), Some(ip("10.244.1.2")));
        assert_eq!(ipam.allocate(), Some(ip("10.244.1.3")));
        let mut n = 2;
        while ipam.allocate().is_some() {
            n += 1;
        }
        assert_eq!(n, 253);
        assert_eq!(ipam.in_use(), 253);
        ipam.release(ip("10.244.1.100"));
        assert_eq!(ipam.allocate(), Some(ip("10.244.1.100")));
        assert_eq!(ipam.allocate(), None);
    }

    #[test]
    fn freed_addresses_come_back_round_robin() {
        let mut ipam = PodIpam::new(node_pod_cidr(0));
        let a = ipam.allocate().unwrap();
        let b = ipam.allocate().unwrap();
        ipam.release(a);
        // Not immediately reused: the cursor moves on first.
        assert_eq!(ipam.allocate(), Some(ip("10.244.0.4")));
        assert_ne!(ipam.allocate(), Some(a));
        assert!(ipam.adopt(a));
        assert_eq!(ipam.in_use(), 4);
        ipam.release(b);
        ipam.release(b);
        assert_eq!(ipam.in_use(), 3);
    }

    #[test]
    fn adopt_marks_existing_addresses() {
        let mut ipam = PodIpam::new(node_pod_cidr(0));
        assert!(ipam.adopt(ip("10.244.0.2")));
        assert!(!ipam.adopt(ip("10.244.0.2")), "already taken");
        assert!(!ipam.adopt(ip("10.244.0.1")), "gateway");
        assert!(!ipam.adopt(ip("10.244.0.255")), "broadcast");
        assert!(!ipam.adopt(ip("10.244.1.5")), "other node");
        assert_eq!(ipam.allocate(), Some(ip("10.244.0.3")));
    }

    #[test]
    fn tiny_and_huge_ranges() {
        let mut tiny = PodIpam::new(Cidr::parse("10.0.0.0/31").unwrap());
        assert_eq!(tiny.allocate(), None);
        let mut four = PodIpam::new(Cidr::parse("10.0.0.0/30").unwrap());
        assert_eq!(four.allocate(), Some(ip("10.0.0.2")));
        assert_eq!(four.allocate(), None);
        let mut big = PodIpam::new(Cidr::parse("10.0.0.0/8").unwrap());
        assert_eq!(big.allocate(), Some(ip("10.0.0.2")));
        assert!(big.adopt(ip("10.0.255.255")));
        assert!(!big.adopt(ip("10.1.0.0")), "beyond the tracked part");
    }
}
