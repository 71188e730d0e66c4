//! Canonical JSON text read as it is, without parsing it into a tree.
//!
//! The service stores every event as its RFC 8785 bytes. In such a text the bytes of an object
//! without some of its members are the text's own members, minus those, between braces: the
//! members are already in order, and each value is already canonical. Reading an event's hash
//! input or a command's signing bytes that way costs a scan of the text instead of a parse
//! into a `serde_json::Value` and a new canonical rendering. A text that is not canonical (an
//! old row, another writer, a tampered one) is seen for what it is by the caller, whose hash
//! of these bytes will not match, and takes the general path.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};
use std::fmt;

/// The members of a JSON object, borrowed from its text, in the text's order.
pub struct Members<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'a> Members<'a> {
    /// The members of `text`'s object, when the text is an object whose member names are
    /// ASCII, need no escape and stand in strictly increasing order (as RFC 8785 writes them,
    /// so no name appears twice); `None` otherwise.
    pub fn of(text: &'a str) -> Option<Self> {
        let mut de = serde_json::Deserializer::from_str(text);
        let members = Members::deserialize(&mut de).ok()?;
        de.end().ok()?;
        let ordered = members
            .0
            .windows(2)
            .all(|pair| pair[0].0.as_bytes() < pair[1].0.as_bytes());
        (ordered && members.0.iter().all(|(name, _)| name.is_ascii())).then_some(members)
    }

    /// The raw text of member `name`.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// Member `name` parsed as `T`.
    pub fn parse<T: Deserialize<'a>>(&self, name: &str) -> Option<T> {
        serde_json::from_str(self.get(name)?.get()).ok()
    }

    /// The object's bytes without the members named in `skip`, fed to `out` piece by piece.
    fn write_without(&self, skip: &[&str], mut out: impl FnMut(&[u8])) {
        out(b"{");
        let kept = self.0.iter().filter(|(name, _)| !skip.contains(name));
        for (i, (name, value)) in kept.enumerate() {
            if i > 0 {
                out(b",");
            }
            out(b"\"");
            out(name.as_bytes());
            out(b"\":");
            out(value.get().as_bytes());
        }
        out(b"}");
    }

    /// The object's bytes without the members named in `skip`.
    pub fn bytes_without(&self, skip: &[&str]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(2048);
        self.write_without(skip, |piece| bytes.extend_from_slice(piece));
        bytes
    }

    /// SHA-256 of [`bytes_without`](Self::bytes_without), without building them.
    pub fn sha256_without(&self, skip: &[&str]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        self.write_without(skip, |piece| hasher.update(piece));
        hasher.finalize().into()
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;

        impl<'de> Visitor<'de> for Object {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                // A `&str` name borrows from the text, which it can only when it has no escape.
                while let Some(member) = map.next_entry::<&'de str, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{canonical_bytes, canonical_object_bytes_without};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    #[test]
    fn a_canonical_object_without_members_is_its_own_text_without_them() {
        let value = json!({"b": [1, {"y": "é", "x": null}], "a": "\u{7}", "hash": "h", "z": {}});
        let text = String::from_utf8(canonical_bytes(&value)).unwrap();
        let members = Members::of(&text).unwrap();
        let expected = canonical_object_bytes_without(value.as_object().unwrap(), &["hash"]);
        assert_eq!(members.bytes_without(&["hash"]), expected);
        assert_eq!(
            members.sha256_without(&["hash"]),
            <[u8; 32]>::from(Sha256::digest(&expected))
        );
        assert_eq!(members.parse::<String>("a").as_deref(), Some("\u{7}"));
        assert_eq!(members.get("missing").map(|v| v.get()), None);
    }

    #[test]
    fn texts_not_in_canonical_member_order_are_not_read() {
        for text in [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"\u0061":1}"#,
            r#"{"é":1}"#,
            r#"[1]"#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
        ] {
            assert!(Members::of(text).is_none(), "{text}");
        }
        // Whitespace is kept in the values (so a hash over them will not match), not refused.
        assert_eq!(
            Members::of(r#"{"a":[1, 2]}"#).unwrap().bytes_without(&[]),
            br#"{"a":[1, 2]}"#
        );
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z\u{e9}\u{4e2d}\u{1f600}\"\\\\\u{7}]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z_]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn members_of_canonical_text_give_the_canonical_bytes_without_any_of_them(
            members in prop::collection::btree_map("[a-z_]{1,6}", json(), 0..8),
            skip in prop::collection::vec("[a-z_]{1,6}", 0..3),
        ) {
            let object: serde_json::Map<String, Value> = members.into_iter().collect();
            let text = String::from_utf8(canonical_bytes(&object)).unwrap();
            let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
            let read = Members::of(&text).unwrap();
            prop_assert_eq!(read.bytes_without(&skip), canonical_object_bytes_without(&object, &skip));
        }
    }
}
