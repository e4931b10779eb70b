//! The methods a route answers, as a set: GET always with HEAD, and the `Allow` header of a 405.

use http::Method;

/// A set of methods (GET includes HEAD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods(u8);

impl Methods {
    pub const NONE: Methods = Methods(0);
    /// GET, and HEAD with it.
    pub const GET: Methods = Methods(1);
    pub const POST: Methods = Methods(2);
    pub const PATCH: Methods = Methods(4);
    pub const DELETE: Methods = Methods(8);
    pub const PUT: Methods = Methods(16);
    /// Every method (provider pass-through).
    pub const ANY: Methods = Methods(32);

    /// Both sets.
    pub const fn or(self, other: Methods) -> Methods {
        Methods(self.0 | other.0)
    }

    /// The set of `methods` (others than GET, POST, PUT, PATCH and DELETE are ignored).
    pub fn of(methods: &[Method]) -> Methods {
        methods.iter().fold(Methods::NONE, |set, m| {
            set.or(match *m {
                Method::GET => Methods::GET,
                Method::POST => Methods::POST,
                Method::PUT => Methods::PUT,
                Method::PATCH => Methods::PATCH,
                Method::DELETE => Methods::DELETE,
                _ => Methods::NONE,
            })
        })
    }

    /// Whether `m` may call a route answering these.
    pub fn allows(self, m: &Method) -> bool {
        let bit = match *m {
            Method::GET | Method::HEAD => Methods::GET,
            Method::POST => Methods::POST,
            Method::PUT => Methods::PUT,
            Method::PATCH => Methods::PATCH,
            Method::DELETE => Methods::DELETE,
            _ => Methods::NONE,
        };
        self.0 & (bit.0 | Methods::ANY.0) != 0
    }

    /// The `Allow` header of a 405 ("*" for any method).
    pub fn allow(self) -> &'static str {
        if self.0 & Methods::ANY.0 != 0 {
            return "*";
        }
        ALLOW[usize::from(self.0 & 31)]
    }

    /// The methods by name, in `Allow` order.
    pub fn names(self) -> Vec<&'static str> {
        self.allow().split(", ").filter(|m| !m.is_empty()).collect()
    }
}

/// `Allow` of each set of GET (1), POST (2), PATCH (4), DELETE (8), PUT (16).
const ALLOW: [&str; 32] = [
    "",
    "GET, HEAD",
    "POST",
    "GET, HEAD, POST",
    "PATCH",
    "GET, HEAD, PATCH",
    "POST, PATCH",
    "GET, HEAD, POST, PATCH",
    "DELETE",
    "GET, HEAD, DELETE",
    "POST, DELETE",
    "GET, HEAD, POST, DELETE",
    "PATCH, DELETE",
    "GET, HEAD, PATCH, DELETE",
    "POST, PATCH, DELETE",
    "GET, HEAD, POST, PATCH, DELETE",
    "PUT",
    "GET, HEAD, PUT",
    "POST, PUT",
    "GET, HEAD, POST, PUT",
    "PUT, PATCH",
    "GET, HEAD, PUT, PATCH",
    "POST, PUT, PATCH",
    "GET, HEAD, POST, PUT, PATCH",
    "PUT, DELETE",
    "GET, HEAD, PUT, DELETE",
    "POST, PUT, DELETE",
    "GET, HEAD, POST, PUT, DELETE",
    "PUT, PATCH, DELETE",
    "GET, HEAD, PUT, PATCH, DELETE",
    "POST, PUT, PATCH, DELETE",
    "GET, HEAD, POST, PUT, PATCH, DELETE",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_exactly_the_allowed_methods() {
        let all = [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ];
        for bits in 0..32u8 {
            let set = Methods(bits);
            let allowed: Vec<&str> = all
                .iter()
                .filter(|m| set.allows(m))
                .map(Method::as_str)
                .collect();
            assert_eq!(set.names(), allowed, "{bits}");
            assert!(!set.allows(&Method::OPTIONS));
        }
        assert!(Methods::ANY.allows(&Method::PUT) && Methods::ANY.allows(&Method::OPTIONS));
        assert_eq!(
            Methods::of(&[Method::GET, Method::DELETE]),
            Methods::GET.or(Methods::DELETE)
        );
    }
}
