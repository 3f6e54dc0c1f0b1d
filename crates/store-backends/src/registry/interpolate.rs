//! Environment interpolation of config values: `${VAR}`, `${VAR:-default}`,
//! `$$`, and `{ env = "VAR" }` tables.

use std::ffi::OsString;

use serde_json::{Map, Value};

use super::child;

/// Where the values of environment variables come from: the process
/// environment in production, a fixed table in tests.
pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// `value` with every string expanded and every `{ env = "VAR" }` table
/// replaced by the variable's value, at any depth. `path` names `value` in
/// messages (`backends.lake.options`); messages never quote a value, so a
/// credential that fails to expand is not shown.
pub(super) fn interpolate(value: Value, path: &str, env: Env<'_>) -> Result<Value, String> {
    match value {
        Value::String(text) => expand(&text, path, env).map(Value::String),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| interpolate(item, &format!("{path}[{index}]"), env))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map) if map.len() == 1 && map.contains_key("env") => match map.get("env") {
            Some(Value::String(name)) => {
                variable(name, path, env)?.map(Value::String).ok_or_else(|| unset(name, path, false))
            }
            _ => Err(format!("{path}: {{ env = ... }} must name an environment variable as a string")),
        },
        Value::Object(map) => map
            .into_iter()
            .map(|(key, item)| {
                let item = interpolate(item, &child(path, &key), env)?;
                Ok((key, item))
            })
            .collect::<Result<Map<_, _>, String>>()
            .map(Value::Object),
        scalar => Ok(scalar),
    }
}

/// `text` with `$$` as `$` and each `${VAR}` or `${VAR:-default}` as the
/// variable's value; the default applies when the variable is unset or empty.
/// A `$` followed by anything else stays as it is.
fn expand(text: &str, path: &str, env: Env<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(reference) = after.strip_prefix('{') {
            let malformed = || {
                format!(
                    "{path}: \"${{\" must start a ${{VAR}} or ${{VAR:-default}} reference; write $$ for a literal $"
                )
            };
            let end = reference.find('}').ok_or_else(malformed)?;
            let (name, default) = match reference[..end].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&reference[..end], None),
            };
            if !is_variable_name(name) {
                return Err(malformed());
            }
            let value = match (variable(name, path, env)?, default) {
                (Some(value), Some(default)) if value.is_empty() => default.to_owned(),
                (Some(value), _) => value,
                (None, Some(default)) => default.to_owned(),
                (None, None) => return Err(unset(name, path, true)),
            };
            out.push_str(&value);
            rest = &reference[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The variable's value, `None` if it is unset.
fn variable(name: &str, path: &str, env: Env<'_>) -> Result<Option<String>, String> {
    env(name)
        .map(|value| {
            value.into_string().map_err(|_| format!("{path}: environment variable {name} is not valid Unicode"))
        })
        .transpose()
}

fn unset(name: &str, path: &str, in_string: bool) -> String {
    let hint = if in_string { format!(" (${{{name}:-default}} gives a fallback)") } else { String::new() };
    format!("{path}: environment variable {name} is not set{hint}")
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn env(name: &str) -> Option<OsString> {
        match name {
            "HOST" => Some("example.org".into()),
            "EMPTY" => Some("".into()),
            _ => None,
        }
    }

    fn expanded(value: Value) -> Result<Value, String> {
        interpolate(value, "backends.lake.options", &env)
    }

    #[test]
    fn references_expand_at_any_depth() {
        let value = json!({
            "url": "https://${HOST}/x",
            "fallback": "${MISSING:-http://127.0.0.1:9000}",
            "empty_default": "${EMPTY:-used}",
            "empty": "[${EMPTY}]",
            "nested": [{ "deep": "${HOST}${HOST}" }],
            "from_table": { "env": "HOST" },
            "number": 3,
        });
        assert_eq!(
            expanded(value).unwrap(),
            json!({
                "url": "https://example.org/x",
                "fallback": "http://127.0.0.1:9000",
                "empty_default": "used",
                "empty": "[]",
                "nested": [{ "deep": "example.orgexample.org" }],
                "from_table": "example.org",
                "number": 3,
            })
        );
    }

    #[test]
    fn dollars_escape_and_stray_dollars_stay() {
        let value = json!({ "a": "pa$$word", "b": "$${HOST}", "c": "cost: 5$", "d": "$HOME" });
        assert_eq!(expanded(value).unwrap(), json!({ "a": "pa$word", "b": "${HOST}", "c": "cost: 5$", "d": "$HOME" }));
    }

    #[test]
    fn unset_variables_name_the_variable_and_the_path() {
        let err = expanded(json!({ "secret": "x-${S3_SECRET}" })).unwrap_err();
        assert_eq!(
            err,
            "backends.lake.options.secret: environment variable S3_SECRET is not set \
             (${S3_SECRET:-default} gives a fallback)"
        );
        let err = expanded(json!({ "list": [{ "env": "S3_SECRET" }] })).unwrap_err();
        assert_eq!(err, "backends.lake.options.list[0]: environment variable S3_SECRET is not set");
    }

    #[test]
    fn malformed_references_are_errors_that_do_not_quote_the_value() {
        for text in ["hidden ${HOST", "hidden ${}", "hidden ${1X}", "hidden ${A B}"] {
            let err = expanded(json!({ "secret": text })).unwrap_err();
            assert!(err.starts_with("backends.lake.options.secret: "), "{err}");
            assert!(!err.contains("hidden"), "{err}");
        }
        let err = expanded(json!({ "key": { "env": 5 } })).unwrap_err();
        assert_eq!(err, "backends.lake.options.key: { env = ... } must name an environment variable as a string");
    }

    #[test]
    fn keys_that_are_not_bare_are_quoted_in_paths() {
        let err = expanded(json!({ "my key": "${NOPE}" })).unwrap_err();
        assert!(err.starts_with("backends.lake.options.\"my key\": "), "{err}");
    }
}
