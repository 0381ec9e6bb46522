//! A located YAML tree and the ordered maps the spec is made of.
//!
//! The typed spec is read with serde; unknown keys are collected with `serde_ignored` as key
//! paths. To point at them we read the same text a second time into this small tree of nodes that
//! know their positions, and look the path up. Reading a few hundred lines twice costs
//! microseconds and keeps every unknown key's report exact.

use crate::diag::Pos;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A YAML node with the position of its value.
#[derive(Debug)]
pub enum Node {
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    let v = m.next_value::<Spanned<Node>>()?;
                    out.push((k, v));
                }
                Ok(Node::Map(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = s.next_element::<Spanned<Node>>()? {
                    out.push(v);
                }
                Ok(Node::Seq(out))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
        }
        d.deserialize_any(V)
    }
}

/// A scalar read as text whatever its YAML type: `PORT: 3000` and `DEBUG: true` are env values
/// too, and users should not have to quote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
        }
        d.deserialize_any(V)
    }
}

thread_local! {
    /// Value position → key position, from the located tree, while a typed parse runs. Map keys
    /// cannot be `Spanned` under `serde_ignored` (it captures keys as plain strings), so
    /// [`OrderedMap`] finds its keys' positions here through their values' positions.
    static KEY_AT: std::cell::RefCell<std::collections::HashMap<(u64, u64), serde_saphyr::Location>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn loc_key(l: &serde_saphyr::Location) -> (u64, u64) {
    (l.line(), l.column())
}

/// Runs `f` (a typed parse) with the key positions of `tree` available to [`OrderedMap`].
pub fn with_key_positions<R>(tree: &Spanned<Node>, f: impl FnOnce() -> R) -> R {
    fn index(
        n: &Spanned<Node>,
        out: &mut std::collections::HashMap<(u64, u64), serde_saphyr::Location>,
    ) {
        match &n.value {
            Node::Map(entries) => {
                for (k, v) in entries {
                    out.insert(loc_key(&v.referenced), k.referenced);
                    index(v, out);
                }
            }
            Node::Seq(items) => items.iter().for_each(|i| index(i, out)),
            Node::Scalar => {}
        }
    }
    let mut idx = std::collections::HashMap::new();
    index(tree, &mut idx);
    KEY_AT.with(|k| *k.borrow_mut() = idx);
    let r = f();
    KEY_AT.with(|k| k.borrow_mut().clear());
    r
}

/// A YAML mapping that keeps its keys' order and positions (layers deploy in the order they are
/// written; diagnostics point at the key).
#[derive(Debug, Clone)]
pub struct OrderedMap<T>(pub Vec<(Spanned<String>, T)>);

impl<T> Default for OrderedMap<T> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<T> OrderedMap<T> {
    pub fn iter(&self) -> impl Iterator<Item = (&Spanned<String>, &T)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k.value == key).map(|(_, v)| v)
    }
    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        self.0
            .iter()
            .find(|(k, _)| k.value == key)
            .map(|(k, _)| Pos::from_location(&k.referenced))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrderedMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OrderedMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    let v = m.next_value::<Spanned<T>>()?;
                    let at = KEY_AT.with(|idx| {
                        idx.borrow()
                            .get(&loc_key(&v.referenced))
                            .copied()
                            .unwrap_or(v.referenced)
                    });
                    out.push((
                        Spanned {
                            value: k,
                            referenced: at,
                            defined: at,
                        },
                        v.value,
                    ));
                }
                Ok(OrderedMap(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// One step of a key path as `serde_ignored` reports it, with serde-saphyr's `Spanned` wrappers
/// already removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Turns a `serde_ignored` path into key/index steps. `Spanned<T>` shows up in those paths as a
/// newtype followed by an internal `value` key (or a private marker key when the wrapper's own
/// bookkeeping is skipped); both are removed. Returns `None` for the wrapper's bookkeeping.
pub fn path_segments(path: &serde_ignored::Path) -> Option<Vec<Seg>> {
    use serde_ignored::Path;
    fn walk(p: &Path, out: &mut Vec<(Seg, bool)>) -> bool {
        match p {
            Path::Root => true,
            Path::Seq { parent, index } => {
                let ok = walk(parent, out);
                out.push((Seg::Index(*index), false));
                ok
            }
            Path::Map { parent, key } => {
                let ok = walk(parent, out);
                if key.starts_with("__serde_saphyr") {
                    return false;
                }
                let after_wrapper = matches!(
                    parent,
                    Path::Some { .. } | Path::NewtypeStruct { .. } | Path::NewtypeVariant { .. }
                );
                out.push((Seg::Key(key.clone()), after_wrapper && key == "value"));
                ok
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => walk(parent, out),
        }
    }
    let mut segs = Vec::new();
    if !walk(path, &mut segs) {
        return None;
    }
    Some(
        segs.into_iter()
            .filter(|(_, wrapper)| !wrapper)
            .map(|(s, _)| s)
            .collect(),
    )
}

/// The position of the key (or element) at `path` under `root`, if present.
pub fn find(root: &Spanned<Node>, path: &[Seg]) -> Option<Pos> {
    {
        let mut node = root;
        let mut pos = Pos::from_location(&root.referenced);
        for seg in path {
            match (seg, &node.value) {
                (Seg::Key(k), Node::Map(entries)) => {
                    let (key, value) = entries.iter().find(|(key, _)| &key.value == k)?;
                    pos = Pos::from_location(&key.referenced);
                    node = value;
                }
                (Seg::Index(i), Node::Seq(items)) => {
                    node = items.get(*i)?;
                    pos = Pos::from_location(&node.referenced);
                }
                _ => return None,
            }
        }
        Some(pos)
    }
}
