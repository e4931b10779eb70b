//! Golden fixtures under `tests/fixtures/{dir}/`. `TIANJI_BLESS=1` makes [`golden`] rewrite a
//! fixture with what the test got (review the diff before committing).

use serde_json::Value;

pub fn path(dir: &str, name: &str) -> String {
    format!("{}/tests/fixtures/{dir}/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn text(dir: &str, name: &str) -> String {
    std::fs::read_to_string(path(dir, name)).unwrap_or_else(|e| panic!("{dir}/{name}: {e}"))
}

pub fn json(dir: &str, name: &str) -> Value {
    serde_json::from_str(&text(dir, name)).unwrap_or_else(|e| panic!("{dir}/{name}: {e}"))
}

/// `got` must equal the fixture byte for byte.
pub fn golden(dir: &str, name: &str, got: &str) {
    if std::env::var("TIANJI_BLESS").is_ok() {
        std::fs::write(path(dir, name), got).unwrap();
        return;
    }
    assert_eq!(
        got,
        text(dir, name),
        "{dir}/{name} differs (TIANJI_BLESS=1 rewrites it)"
    );
}

/// Pretty JSON with a final newline, the form goldens are stored in.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}
