//! Which addresses and host names are not the public internet: loopback, private, link-local
//! (cloud metadata such as 169.254.169.254), CGNAT, unique-local, and the names `localhost`,
//! `*.localhost` and `metadata.google.internal`. The agent URL guard (`agents::address`) and
//! the URL fetcher (`upstream::fetch`) both classify through here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Loopback, private (RFC 1918), link-local, unspecified, broadcast or CGNAT (100.64/10) IPv4;
/// loopback, unspecified, unique-local (fc00::/7) or link-local (fe80::/10) IPv6; and the
/// IPv4-mapped (`::ffff:a.b.c.d`) forms of the IPv4 ones. Multicast is not included (see
/// [`not_public_ip`]).
pub fn private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => private_v4(v4),
            None => private_v6(v6),
        },
    }
}

/// [`private_ip`], multicast (224/4, ff00::/8, mapped forms too), and IPv4-compatible IPv6
/// (`::a.b.c.d`, deprecated) of a private IPv4: every address a server-side fetch of a
/// caller's URL must not connect to.
pub fn not_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4) || v4.is_multicast(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return private_v4(v4) || v4.is_multicast();
            }
            if private_v6(v6) || v6.is_multicast() {
                return true;
            }
            // `::a.b.c.d` (the first 96 bits zero; `::` and `::1` are caught above).
            let s = v6.segments();
            if s[..6] == [0; 6] {
                let v4 =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return private_v4(v4) || v4.is_multicast();
            }
            false
        }
    }
}

/// `localhost`, a name under `.localhost`, or `metadata.google.internal` (case-insensitive, a
/// trailing dot ignored).
pub fn private_name(host: &str) -> bool {
    let d = host.trim_end_matches('.').to_ascii_lowercase();
    d == "localhost" || d.ends_with(".localhost") || d == "metadata.google.internal"
}

fn private_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || o[0] == 100 && (o[1] & 0xc0) == 64
}

fn private_v6(v6: Ipv6Addr) -> bool {
    let first = v6.segments()[0];
    v6.is_loopback()
        || v6.is_unspecified()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn classifies_addresses() {
        for s in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(private_ip(ip(s)), "{s}");
            assert!(not_public_ip(ip(s)), "{s}");
        }
        for s in [
            "224.0.0.1",
            "ff02::1",
            "::ffff:239.1.1.1",
            "::127.0.0.1",
            "::10.0.0.1",
        ] {
            assert!(!private_ip(ip(s)), "{s}");
            assert!(not_public_ip(ip(s)), "{s}");
        }
        for s in [
            "8.8.8.8",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "::8.8.8.8",
        ] {
            assert!(!not_public_ip(ip(s)), "{s}");
        }
    }

    #[test]
    fn classifies_names() {
        for n in [
            "localhost",
            "LOCALHOST.",
            "a.b.localhost",
            "metadata.google.internal",
        ] {
            assert!(private_name(n), "{n}");
        }
        for n in ["example.com", "localhost.example.com", "notlocalhost"] {
            assert!(!private_name(n), "{n}");
        }
    }
}
