//! The manifest's canonical form: compact JSON with every object's members sorted by key.
//!
//! Written by hand rather than relying on `serde_json::Map` iteration order, which changes to
//! insertion order when any crate in the build enables serde_json's `preserve_order` feature.

use serde_json::Value;

/// Serialise `value` canonically: no whitespace, object members sorted by key (byte order).
pub(crate) fn to_canonical_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            // serde_json's own compact output of a scalar is already canonical.
            out.push_str(&value.to_string());
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_value(&map[key], out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_recursively_and_drops_whitespace() {
        let v: Value = serde_json::from_str(r#"{"b": [1, {"z": 1, "a": "x"}], "a": null}"#).unwrap();
        assert_eq!(to_canonical_string(&v), r#"{"a":null,"b":[1,{"a":"x","z":1}]}"#);
    }
}
