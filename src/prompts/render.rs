//! Rendering a template with the request's `prompt_variables`: Jinja syntax (as LiteLLM's
//! dotprompt integration renders it, `{{ }}`, `{% %}`, `{# #}`) through minijinja, which runs no
//! code of the host. Every render is bounded: minijinja's fuel caps the instructions run and
//! the data made ([`FUEL`]), the output is cut at [`MAX_OUTPUT_BYTES`] (both a 400), and
//! neither macros nor includes exist. A variable the template prints but the request does not
//! give is a 400 naming it (`{% if x %}` and `x is defined` test an optional one); so is a
//! variable `input.schema` requires, or one of the wrong type.

use std::io::Write;

use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::{Map, Value};

use super::PromptError;

/// Work one render may do: minijinja charges an instruction 1 and 64 bytes of data made (or
/// written) 1, so this is about 300,000 instructions or 19 MB.
pub const FUEL: u64 = 300_000;

/// The longest rendered prompt.
pub const MAX_OUTPUT_BYTES: usize = 2 * 1024 * 1024;

/// Deepest nesting of blocks and loops.
const RECURSION_LIMIT: usize = 64;

fn environment<'s>() -> Environment<'s> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    // undefined values are traced to the expression that made them (the missing variable)
    env.set_debug(true);
    env
}

/// Compile `source` (a syntax error is a 400 naming its line).
pub fn check(source: &str) -> Result<(), PromptError> {
    guarded(|| {
        let env = environment();
        env.template_from_str(source)
            .map(|_| ())
            .map_err(|e| template_error(&e))
    })
}

/// Render `source` with `vars`.
pub fn render(source: &str, vars: &Map<String, Value>) -> Result<String, PromptError> {
    guarded(|| {
        let env = environment();
        let tmpl = env
            .template_from_str(source)
            .map_err(|e| template_error(&e))?;
        let mut out = Capped::default();
        let ctx = minijinja::Value::from(minijinja::value::Serde(vars));
        match tmpl.render_captured_to(ctx, &mut out) {
            Ok(_) => Ok(String::from_utf8_lossy(&out.buf).into_owned()),
            Err(_) if out.over => Err(PromptError::TooLarge(format!(
                "the rendered prompt is longer than {MAX_OUTPUT_BYTES} bytes"
            ))),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(PromptError::TooLarge(format!(
                "rendering the prompt needs more work than allowed ({FUEL} fuel)"
            ))),
            Err(e) if e.kind() == ErrorKind::UndefinedError => {
                let name = missing_name(&e, vars).or_else(|| {
                    let mut left: Vec<String> = tmpl
                        .undeclared_variables(false)
                        .into_iter()
                        .filter(|v| !vars.contains_key(v))
                        .collect();
                    left.sort();
                    left.into_iter().next()
                });
                Err(PromptError::MissingVariable(
                    name.unwrap_or_else(|| "(unknown)".into()),
                ))
            }
            Err(e) => Err(template_error(&e)),
        }
    })
}

/// Run `f`, a panic inside the template engine being a 400 rather than a dropped connection.
fn guarded<T>(f: impl FnOnce() -> Result<T, PromptError>) -> Result<T, PromptError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(PromptError::invalid(
            "the prompt template could not be rendered",
        ))
    })
}

/// A template error as the client reads it: what, and where.
fn template_error(e: &minijinja::Error) -> PromptError {
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    let at = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    PromptError::invalid(format!("prompt template error: {what}{at}"))
}

/// The missing variable an undefined error names: the expression minijinja traced the
/// undefined value to (`` `user.name` is undefined ``); its root when the request lacks that.
fn missing_name(e: &minijinja::Error, vars: &Map<String, Value>) -> Option<String> {
    let detail = e.detail()?;
    let end = detail.find("` is undefined")?;
    let start = detail[..end].rfind('`')? + 1;
    let expr = detail[start..end].trim();
    let root = expr.split(['.', '[']).next().unwrap_or(expr);
    if root.is_empty() || expr.starts_with('(') {
        return None;
    }
    Some(if vars.contains_key(root) { expr } else { root }.to_string())
}

/// The rendered bytes, refusing more than [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct Capped {
    buf: Vec<u8>,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT_BYTES {
            self.over = true;
            return Err(std::io::Error::other("rendered prompt too long"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Check `vars` against `input.schema`: every variable it names without a trailing `?` must be
/// given; a given one must be of its type (`string`, `number`, `integer`, `boolean`, `array`,
/// `object` and LiteLLM's aliases; `name(type)` and `type, description` as in picoschema).
pub fn check_schema(
    schema: &Map<String, Value>,
    vars: &Map<String, Value>,
) -> Result<(), PromptError> {
    for (key, spec) in schema {
        let mut name = key.trim();
        let mut kind = match spec {
            Value::String(s) => s.split(',').next().unwrap_or("").trim().to_lowercase(),
            Value::Object(_) => "object".to_string(),
            _ => String::new(),
        };
        if let Some((n, t)) = name.split_once('(') {
            kind = t.trim_end_matches(')').trim().to_lowercase();
            name = n.trim();
        }
        let optional = name.ends_with('?');
        let name = name.trim_end_matches('?').trim();
        let Some(v) = vars.get(name).filter(|v| !v.is_null()) else {
            if optional || name.is_empty() {
                continue;
            }
            return Err(PromptError::MissingVariable(name.to_string()));
        };
        let fits = match kind.as_str() {
            "string" | "str" => v.is_string(),
            "number" => v.is_number(),
            "integer" | "int" => v.is_i64() || v.is_u64(),
            "float" => v.is_f64(),
            "boolean" | "bool" => v.is_boolean(),
            "array" | "list" => v.is_array(),
            "object" | "dict" => v.is_object(),
            _ => true,
        };
        if !fits {
            return Err(PromptError::VariableType {
                name: name.to_string(),
                expected: kind,
                got: json_type(v),
            });
        }
    }
    Ok(())
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn renders_jinja() {
        let out = render(
            "{% if ctx %}System: {{ ctx }}\n{% endif %}User: {{ q | upper }}{% for t in tags %} #{{ t }}{% endfor %}",
            &vars(json!({"q": "hi", "tags": ["a", "b"]})),
        )
        .unwrap();
        assert_eq!(out, "User: HI #a #b");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let e = render("Hello {{ name }}", &Map::new()).unwrap_err();
        assert!(
            matches!(&e, PromptError::MissingVariable(n) if n == "name"),
            "{e}"
        );
        let e = render("{{ user.name }}", &vars(json!({"user": {}}))).unwrap_err();
        assert!(
            matches!(&e, PromptError::MissingVariable(n) if n == "user.name"),
            "{e}"
        );
        let e = render("{% for x in items %}{{ x }}{% endfor %}", &Map::new()).unwrap_err();
        assert!(
            matches!(&e, PromptError::MissingVariable(n) if n == "items"),
            "{e}"
        );
        assert_eq!(render("{{ x | default('d') }}", &Map::new()).unwrap(), "d");
        assert_eq!(
            render("{{ 'y' if x is defined else 'n' }}", &Map::new()).unwrap(),
            "n"
        );
    }

    #[test]
    fn work_and_output_are_bounded() {
        let doubling = "{% set a = 'xxxxxxxxxxxxxxxx' %}".to_string()
            + &(0..40).map(|_| "{% set a = a ~ a %}").collect::<String>()
            + "{{ a | length }}";
        assert!(matches!(
            render(&doubling, &Map::new()),
            Err(PromptError::TooLarge(_))
        ));
        let nested = "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}{% endfor %}";
        assert!(matches!(
            render(nested, &Map::new()),
            Err(PromptError::TooLarge(_))
        ));
        assert!(matches!(
            render("{{ 'x' * 100000000 }}", &Map::new()),
            Err(PromptError::TooLarge(_))
        ));
        let big = json!({"d": "y".repeat(MAX_OUTPUT_BYTES / 2 + 1)});
        assert!(matches!(
            render("{{ d }}{{ d }}", &vars(big)),
            Err(PromptError::TooLarge(_))
        ));
    }

    #[test]
    fn no_macros_no_includes() {
        assert!(check("{% macro m() %}x{% endmacro %}").is_err());
        assert!(check("{% include 'x' %}").is_err());
        assert!(check("{{ unclosed").is_err());
        assert!(check("Hello {{ name }}").is_ok());
    }

    #[test]
    fn schema_checks() {
        let schema =
            vars(json!({"q": "string, the question", "n?": "integer", "tags(array)": "tags"}));
        assert!(check_schema(&schema, &vars(json!({"q": "a", "tags": []}))).is_ok());
        let e = check_schema(&schema, &vars(json!({"tags": []}))).unwrap_err();
        assert!(matches!(&e, PromptError::MissingVariable(n) if n == "q"));
        let e = check_schema(&schema, &vars(json!({"q": 1, "tags": []}))).unwrap_err();
        assert!(e.to_string().contains("'q'"), "{e}");
        assert!(check_schema(&schema, &vars(json!({"q": "a", "n": "x", "tags": []}))).is_err());
    }
}
