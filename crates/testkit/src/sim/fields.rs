//! Bitbucket Cloud partial responses: `fields=a,b.c` keeps only those, `-x` removes, `+x` adds,
//! `*` matches any key, arrays are transparent. A literal `+` in a query string decodes to a
//! space, so `+x` must be sent as `%2Bx`, and an undecoded `+x` acts as a plain `x`, as on
//! Bitbucket.

use serde_json::{Map, Value};

pub(crate) fn apply(full: Value, spec: &str) -> Value {
    let items: Vec<&str> = spec.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let paths = |prefix: Option<char>| -> Vec<Vec<&str>> {
        items
            .iter()
            .filter_map(|i| match (prefix, i.chars().next()) {
                (Some(p), Some(c)) if c == p => Some(&i[1..]),
                (None, Some(c)) if c != '-' && c != '+' => Some(*i),
                _ => None,
            })
            .map(|p| p.split('.').filter(|s| !s.is_empty()).collect())
            .collect()
    };
    let (plain, plus, minus) = (paths(None), paths(Some('+')), paths(Some('-')));
    let mut out = if plain.is_empty() {
        Some(full.clone())
    } else {
        let mut acc = None;
        for p in &plain {
            merge(&mut acc, pick(&full, p));
        }
        acc
    };
    for p in &plus {
        merge(&mut out, pick(&full, p));
    }
    let mut out = out.unwrap_or_else(|| Value::Object(Map::new()));
    for p in &minus {
        remove(&mut out, p);
    }
    out
}

fn pick(v: &Value, path: &[&str]) -> Option<Value> {
    let Some((first, rest)) = path.split_first() else { return Some(v.clone()) };
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                if *first == "*" || k == first {
                    if let Some(picked) = pick(child, rest) {
                        out.insert(k.clone(), picked);
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            Some(Value::Array(items.iter().map(|i| pick(i, path).unwrap_or(Value::Object(Map::new()))).collect()))
        }
        _ => None,
    }
}

fn merge(acc: &mut Option<Value>, add: Option<Value>) {
    let Some(add) = add else { return };
    match acc {
        None => *acc = Some(add),
        Some(cur) => merge_values(cur, add),
    }
}

fn merge_values(cur: &mut Value, add: Value) {
    match (cur, add) {
        (Value::Object(c), Value::Object(a)) => {
            for (k, v) in a {
                match c.get_mut(&k) {
                    Some(existing) => merge_values(existing, v),
                    None => {
                        c.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(c), Value::Array(a)) => {
            for (x, y) in c.iter_mut().zip(a) {
                merge_values(x, y);
            }
        }
        (cur, add) => *cur = add,
    }
}

fn remove(v: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else { return };
    match v {
        Value::Object(m) => {
            if rest.is_empty() {
                if *first == "*" {
                    m.clear();
                } else {
                    m.remove(*first);
                }
            } else {
                for (k, child) in m.iter_mut() {
                    if *first == "*" || k == first {
                        remove(child, rest);
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| remove(i, path)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::apply;
    use serde_json::json;

    #[test]
    fn keeps_adds_and_removes() {
        let full = json!({"type":"repository","full_name":"a/b","mainbranch":{"type":"branch","name":"main"},"links":{"self":{"href":"x"}}});
        assert_eq!(
            apply(full.clone(), "full_name,mainbranch.name"),
            json!({"full_name":"a/b","mainbranch":{"name":"main"}})
        );
        assert_eq!(
            apply(full.clone(), "-links"),
            json!({"type":"repository","full_name":"a/b","mainbranch":{"type":"branch","name":"main"}})
        );
        let page =
            json!({"pagelen":10,"values":[{"name":"a","target":{"hash":"1"}},{"name":"b","target":{"hash":"2"}}]});
        assert_eq!(apply(page.clone(), "values.name"), json!({"values":[{"name":"a"},{"name":"b"}]}));
        assert_eq!(
            apply(page, "-values.*.hash,-pagelen"),
            json!({"values":[{"name":"a","target":{}},{"name":"b","target":{}}]})
        );
        assert_eq!(apply(full, "mainbranch"), json!({"mainbranch":{"type":"branch","name":"main"}}));
    }
}
