//! Agent URLs are called by the gateway: a URL on a loopback, private, link-local (cloud metadata
//! such as 169.254.169.254), unspecified or unique-local address, or `localhost`, is refused
//! unless `general_settings.agent_allow_private_urls` is on. Names are checked as written (a
//! public name that resolves to a private address is not caught here).

use std::net::IpAddr;

/// Why `url` is refused, if it is.
pub fn refused(url: &str) -> Option<String> {
    refused_unless(url, "agent_allow_private_urls")
}

/// [`refused`], the reason naming `setting` (under `general_settings`) as what allows it.
pub fn refused_unless(url: &str, setting: &str) -> Option<String> {
    let Ok(u) = url.parse::<http::Uri>() else {
        return Some(format!("'{url}' is not a valid URL"));
    };
    if !matches!(u.scheme_str(), Some("http" | "https")) {
        return Some(format!("'{url}' must be an http or https URL"));
    }
    let Some(host) = u.host().filter(|h| !h.is_empty()) else {
        return Some(format!("'{url}' has no host"));
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let private = match bare.parse::<IpAddr>() {
        Ok(ip) => private_ip(ip),
        Err(_) => {
            let d = bare.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost") || d == "metadata.google.internal"
        }
    };
    private.then(|| {
        format!("'{url}' is a private or loopback address; set general_settings.{setting}: true to allow it")
    })
}

fn private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => private_ip(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::refused;

    #[test]
    fn refuses_private_loopback_and_metadata_addresses() {
        for url in [
            "http://127.0.0.1:9/a",
            "http://localhost/a",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "ftp://agents.example.com/",
            "not a url",
        ] {
            assert!(refused(url).is_some(), "{url}");
        }
        assert!(refused("https://agents.example.com/a2a").is_none());
        assert!(refused("http://8.8.8.8/").is_none());
    }
}
