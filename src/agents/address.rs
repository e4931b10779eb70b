//! Agent URLs are called by the gateway: a URL on a loopback, private, link-local (cloud metadata
//! such as 169.254.169.254), unspecified or unique-local address, or `localhost`, is refused
//! unless `general_settings.agent_allow_private_urls` is on. Names are checked as written (a
//! public name that resolves to a private address is not caught here). The classification is
//! `util::net`'s.

use std::net::IpAddr;

use crate::util::net::{private_ip, private_name};

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
        Err(_) => private_name(bare),
    };
    private.then(|| {
        format!("'{url}' is a private or loopback address; set general_settings.{setting}: true to allow it")
    })
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
