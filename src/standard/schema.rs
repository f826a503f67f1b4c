//! Business-parameter schemas: the JSON Schema subset of `schemas/*.json`, compiled into a
//! typed tree that validation walks. Any keyword outside the subset is a load problem, so a
//! schema can never say something that validation silently ignores.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::element::WireType;
use super::error::Problems;

/// A compiled schema node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A JSON object.
    Object(ObjectNode),
    /// A JSON array.
    Array(ArrayNode),
    /// A data element, by index into [`super::Standard::elements`].
    Element(usize),
    /// A plain parameter that is not a data element.
    Plain(PlainLeaf),
    /// A shared block of `schemas/common.json`.
    Ref(String, Arc<Node>),
}

impl Node {
    /// The node behind any reference.
    pub fn resolve(&self) -> &Node {
        match self {
            Self::Ref(_, n) => n.resolve(),
            n => n,
        }
    }
}

/// An object: its properties and which are required.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectNode {
    /// Properties, in schema order.
    pub properties: Vec<Property>,
    /// Conditional requirements: at least one branch's names must all be present.
    pub any_of: Vec<Vec<String>>,
    /// Description.
    pub description: String,
}

/// One property of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The JSON key.
    pub name: String,
    /// Whether it is required.
    pub required: bool,
    /// Description.
    pub description: String,
    /// Its schema.
    pub node: Node,
}

/// An array.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayNode {
    /// The schema of every item.
    pub items: Box<Node>,
    /// Fewest items.
    pub min_items: Option<u64>,
    /// Most items.
    pub max_items: Option<u64>,
}

/// A plain typed parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainLeaf {
    /// JSON type.
    pub ty: WireType,
    /// Fewest characters (strings).
    pub min_length: Option<u64>,
    /// Most characters (strings).
    pub max_length: Option<u64>,
    /// Allowed values.
    pub enumeration: Option<Vec<Value>>,
    /// Smallest value (numbers).
    pub minimum: Option<f64>,
    /// Largest value (numbers).
    pub maximum: Option<f64>,
    /// A code table the value must belong to, by index into [`super::Standard::tables`].
    pub table: Option<usize>,
}

/// Lookups the compiler needs from the rest of the standard.
pub(crate) struct Context<'a> {
    pub(crate) elements: &'a HashMap<String, usize>,
    pub(crate) tables: &'a HashMap<String, usize>,
    pub(crate) defs: &'a HashMap<String, Arc<Node>>,
}

const ANNOTATIONS: [&str; 6] = [
    "description",
    "title",
    "examples",
    "$comment",
    "default",
    "$schema",
];

/// Compiles one schema value. `at` is the JSON pointer used in problem reports.
pub(crate) fn compile(
    v: &Value,
    file: &str,
    at: &str,
    cx: &Context<'_>,
    p: &mut Problems,
) -> Option<Node> {
    let Some(obj) = v.as_object() else {
        p.push(file, at, "a schema must be a JSON object");
        return None;
    };
    if let Some(r) = obj.get("$ref") {
        check_keys(obj, &["$ref"], file, at, p);
        let target = r
            .as_str()
            .and_then(|s| s.strip_prefix("common.json#/$defs/"));
        return match target.and_then(|t| cx.defs.get(t).map(|n| (t, n))) {
            Some((t, n)) => Some(Node::Ref(t.to_owned(), Arc::clone(n))),
            None => {
                p.push(
                    file,
                    at,
                    format!("unresolvable $ref {r} (expected common.json#/$defs/<name>)"),
                );
                None
            }
        };
    }
    if let Some(e) = obj.get("x-phic-element") {
        check_keys(obj, &["x-phic-element"], file, at, p);
        return match e.as_str().and_then(|id| cx.elements.get(id)) {
            Some(&i) => Some(Node::Element(i)),
            None => {
                p.push(
                    file,
                    at,
                    format!("x-phic-element {e} is not an element of elements.toml"),
                );
                None
            }
        };
    }
    match obj.get("type").and_then(Value::as_str) {
        Some("object") => compile_object(obj, file, at, cx, p).map(Node::Object),
        Some("array") => {
            check_keys(obj, &["type", "items", "minItems", "maxItems"], file, at, p);
            let items = match obj.get("items") {
                Some(i) => compile(i, file, &format!("{at}/items"), cx, p)?,
                None => {
                    p.push(file, at, "an array needs `items`");
                    return None;
                }
            };
            Some(Node::Array(ArrayNode {
                items: Box::new(items),
                min_items: uint(obj, "minItems", file, at, p),
                max_items: uint(obj, "maxItems", file, at, p),
            }))
        }
        Some(t @ ("string" | "integer" | "number" | "boolean")) => {
            let ty = match t {
                "string" => WireType::String,
                "integer" => WireType::Integer,
                "number" => WireType::Number,
                _ => WireType::Boolean,
            };
            let allowed: &[&str] = match ty {
                WireType::String => &["type", "maxLength", "minLength", "enum", "x-phic-table"],
                WireType::Integer | WireType::Number => &["type", "minimum", "maximum", "enum"],
                WireType::Boolean => &["type"],
            };
            check_keys(obj, allowed, file, at, p);
            let table = match obj.get("x-phic-table") {
                None => None,
                Some(t) => match t.as_str().and_then(|t| cx.tables.get(t)) {
                    Some(&i) => Some(i),
                    None => {
                        p.push(
                            file,
                            at,
                            format!("x-phic-table {t} is not a table of tables.toml"),
                        );
                        None
                    }
                },
            };
            let enumeration = match obj.get("enum") {
                None => None,
                Some(Value::Array(a)) if !a.is_empty() => Some(a.clone()),
                Some(_) => {
                    p.push(file, at, "`enum` must be a non-empty array");
                    None
                }
            };
            Some(Node::Plain(PlainLeaf {
                ty,
                min_length: uint(obj, "minLength", file, at, p),
                max_length: uint(obj, "maxLength", file, at, p),
                enumeration,
                minimum: obj.get("minimum").and_then(Value::as_f64),
                maximum: obj.get("maximum").and_then(Value::as_f64),
                table,
            }))
        }
        other => {
            p.push(file, at, format!("unsupported or missing `type` {other:?}"));
            None
        }
    }
}

fn compile_object(
    obj: &Map<String, Value>,
    file: &str,
    at: &str,
    cx: &Context<'_>,
    p: &mut Problems,
) -> Option<ObjectNode> {
    let allowed = [
        "type",
        "properties",
        "required",
        "additionalProperties",
        "anyOf",
        "$id",
        "$defs",
    ];
    check_keys(obj, &allowed, file, at, p);
    if obj.get("additionalProperties") != Some(&Value::Bool(false)) {
        p.push(file, at, "objects must say `additionalProperties: false`");
    }
    let names = |v: Option<&Value>, what: &str, p: &mut Problems| -> Vec<String> {
        match v {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|s| {
                    let s = s.as_str().map(str::to_owned);
                    if s.is_none() {
                        p.push(file, at, format!("`{what}` must list strings"));
                    }
                    s
                })
                .collect(),
            Some(_) => {
                p.push(file, at, format!("`{what}` must be an array"));
                Vec::new()
            }
        }
    };
    let required = names(obj.get("required"), "required", p);
    let Some(props) = obj.get("properties").and_then(Value::as_object) else {
        p.push(file, at, "an object needs `properties`");
        return None;
    };
    let mut properties = Vec::with_capacity(props.len());
    for (name, schema) in props {
        let here = format!("{at}/properties/{name}");
        let description = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if description.is_empty() {
            p.push(file, &here, "every property needs a `description`");
        }
        if let Some(node) = compile(schema, file, &here, cx, p) {
            properties.push(Property {
                name: name.clone(),
                required: required.contains(name),
                description,
                node,
            });
        }
    }
    for r in &required {
        if !props.contains_key(r) {
            p.push(file, at, format!("required `{r}` is not a property"));
        }
    }
    let mut any_of = Vec::new();
    if let Some(a) = obj.get("anyOf") {
        match a.as_array() {
            Some(branches) if !branches.is_empty() => {
                for (i, b) in branches.iter().enumerate() {
                    let here = format!("{at}/anyOf/{i}");
                    match b.as_object() {
                        Some(bo) if bo.keys().all(|k| k == "required") => {
                            let names = names(bo.get("required"), "required", p);
                            for n in &names {
                                if !props.contains_key(n) {
                                    p.push(file, &here, format!("`{n}` is not a property"));
                                }
                            }
                            any_of.push(names);
                        }
                        _ => p.push(file, &here, "anyOf branches may only hold `required`"),
                    }
                }
            }
            _ => p.push(file, at, "`anyOf` must be a non-empty array"),
        }
    }
    Some(ObjectNode {
        properties,
        any_of,
        description: obj
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], file: &str, at: &str, p: &mut Problems) {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) && !ANNOTATIONS.contains(&k.as_str()) {
            p.push(file, at, format!("keyword `{k}` is not supported here"));
        }
    }
}

fn uint(
    obj: &Map<String, Value>,
    key: &str,
    file: &str,
    at: &str,
    p: &mut Problems,
) -> Option<u64> {
    let v = obj.get(key)?;
    let n = v.as_u64();
    if n.is_none() {
        p.push(file, at, format!("`{key}` must be a non-negative integer"));
    }
    n
}
