//! RFC 8785 canonical JSON bytes and SHA-256 digests: the byte-level basis of every hash and signature.

use crate::schema::string_schema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::Write as _;

/// RFC 8785 (JCS) bytes of any serialisable value.
///
/// Integers above 2^53 and ids are kept as strings throughout the domain, so JCS's
/// IEEE-double number model never loses information here.
///
/// The value is turned into a `serde_json::Value` and written by [`write_canonical`], which
/// is several times faster than `serde_json_canonicalizer` on the domain's objects (it hashes
/// every event, so this is on the ingest's hot path). Numbers other than safe integers are
/// still formatted by `serde_json_canonicalizer`, and a property test checks that both give
/// the same bytes for arbitrary JSON.
pub fn canonical_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("domain values always serialise to JSON");
    let mut out = Vec::with_capacity(1024);
    write_canonical(&value, &mut out);
    out
}

/// The RFC 8785 bytes of a JSON object without the members named in `skip`, written straight
/// from the parsed value (no copy of it).
pub fn canonical_object_bytes_without(
    map: &serde_json::Map<String, Value>,
    skip: &[&str],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(2048);
    write_object(
        map.iter().filter(|(k, _)| !skip.contains(&k.as_str())),
        &mut out,
    );
    out
}

/// Writes an object's RFC 8785 bytes member by member, for a caller that knows its members:
/// each value is written canonically where it stands, so a large member already held as a
/// `serde_json::Value` (an officer's signed command) is not copied into a new tree first, as
/// [`canonical_bytes`] of the whole object would.
pub struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    last: Option<&'static str>,
}

impl<'a> ObjectWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjectWriter { out, last: None }
    }

    /// The next member. Names must be ASCII, need no escape, and come in increasing order (as
    /// RFC 8785 orders them): the caller writes a fixed set of names in a fixed order.
    pub fn member<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> &mut Self {
        let value = serde_json::to_value(value).expect("domain values always serialise to JSON");
        self.value(name, &value)
    }

    /// The next member, a JSON value written as it is held.
    pub fn value(&mut self, name: &'static str, value: &Value) -> &mut Self {
        assert!(
            self.last.is_none_or(|last| last < name)
                && name.is_ascii()
                && !name.contains(['"', '\\']),
            "member {name} out of canonical order"
        );
        if self.last.is_some() {
            self.out.push(b',');
        }
        self.last = Some(name);
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        write_canonical(value, self.out);
        self
    }

    /// How many bytes the output holds so far: where the last member written ends.
    pub fn written(&self) -> usize {
        self.out.len()
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// The largest integer JCS (an IEEE double) writes as itself: 2^53.
const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// Appends the RFC 8785 bytes of `value` to `out`.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Every safe integer fits an i64.
        Value::Number(n) => match n.as_i64() {
            Some(i) if i.unsigned_abs() <= MAX_SAFE_INTEGER => {
                write!(out, "{i}").expect("writing to a Vec")
            }
            // Fractions and unsafe integers: ECMAScript's number-to-string, as the crate has it.
            _ => out.extend_from_slice(
                &serde_json_canonicalizer::to_vec(n).expect("a JSON number serialises"),
            ),
        },
        // serde_json escapes exactly what JCS escapes (`"`, `\\`, control characters, with the
        // short forms and lower-case `\u00xx`) and writes everything else as UTF-8.
        Value::String(s) => serde_json::to_writer(&mut *out, s).expect("writing to a Vec"),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map.iter(), out),
    }
}

fn write_object<'a>(members: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    // JCS orders properties by their names' UTF-16 code units. For names without characters
    // above U+FFFF that is their UTF-8 byte order, which a map without `preserve_order`
    // already has.
    let mut entries: Vec<(&String, &Value)> = members.collect();
    if !entries.is_sorted_by(|a, b| utf16_order(a.0, b.0).is_le()) {
        entries.sort_unstable_by(|a, b| utf16_order(a.0, b.0));
    }
    out.push(b'{');
    for (i, (name, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, name).expect("writing to a Vec");
        out.push(b':');
        write_canonical(item, out);
    }
    out.push(b'}');
}

fn utf16_order(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// A SHA-256 digest, written as 64 lower-case hex characters on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The all-zero digest that stands before the first event of a stream.
    pub const ZERO: Digest = Digest([0; 32]);

    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    pub fn of_canonical<T: Serialize>(value: &T) -> Self {
        Self::of(&canonical_bytes(value))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The digest written as 64 hex characters (no `0x` prefix).
    pub fn from_hex(s: &str) -> Option<Self> {
        // `const-hex` would take a `0x` prefix; at 64 characters there is none.
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Digest(out))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Written on the stack, not into a new `String`.
        s.serialize_str(hex::Buffer::<32>::new().format(&self.0))
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read in place: a digest has no escapes, so the text is never copied.
        struct Hex;

        impl serde::de::Visitor<'_> for Hex {
            type Value = Digest;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("64 hex characters")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Digest, E> {
                Digest::from_hex(s).ok_or_else(|| E::custom("expected 64 hex characters"))
            }
        }

        d.deserialize_str(Hex)
    }
}

string_schema!(Digest, "Digest", {
    "description": "SHA-256 digest, 64 lower-case hex characters",
    "pattern": "^[0-9a-f]{64}$"
});

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn canonical_bytes_sort_keys_and_drop_whitespace() {
        let v = json!({"b": 1, "a": [true, null, "x"], "c": {"z": 1.5, "y": "中"}});
        assert_eq!(
            String::from_utf8(canonical_bytes(&v)).unwrap(),
            r#"{"a":[true,null,"x"],"b":1,"c":{"y":"中","z":1.5}}"#
        );
    }

    /// Arbitrary JSON: every number kind (safe and unsafe integers, fractions, exponents),
    /// strings with control, non-ASCII and astral characters, names that sort differently
    /// in UTF-8 and UTF-16.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-(1i64 << 54)..(1i64 << 54)).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[\\PC\\u{0}-\\u{1f}\"\\\\\u{7f}\u{e000}\u{ffff}\u{10000}-\u{10ffff}]{0,8}"
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    "[a-zA-Z_\u{e9}\u{e000}\u{ff61}\u{1f600}\u{10000}]{0,4}",
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonical_bytes_are_those_of_serde_json_canonicalizer(value in any_json()) {
            prop_assert_eq!(
                String::from_utf8(canonical_bytes(&value)).unwrap(),
                serde_json_canonicalizer::to_string(&value).unwrap()
            );
        }
    }

    #[test]
    fn an_object_without_some_members_is_the_object_with_them_removed() {
        let v = serde_json::json!({"hash": "x", "b": [1, {"z": 2, "a": "é"}], "notary": {},
                                   "a": null, "\u{10000}": 1, "\u{ffff}": 2});
        let mut removed = v.as_object().unwrap().clone();
        removed.remove("hash");
        removed.remove("notary");
        assert_eq!(
            canonical_object_bytes_without(v.as_object().unwrap(), &["hash", "notary"]),
            canonical_bytes(&removed)
        );
    }

    #[test]
    fn names_are_ordered_by_utf16_code_units() {
        // U+E000 is after U+1F600 in UTF-8 but before it in UTF-16 (a surrogate pair, D83D).
        let v = json!({"\u{e000}": 1, "\u{1f600}": 2, "a": 3});
        assert_eq!(
            String::from_utf8(canonical_bytes(&v)).unwrap(),
            "{\"a\":3,\"\u{1f600}\":2,\"\u{e000}\":1}"
        );
    }

    #[test]
    fn digest_round_trips_through_hex() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(Digest::from_hex("zz"), None);
        let json = format!("\"{}\"", d.to_hex());
        assert_eq!(serde_json::to_string(&d).unwrap(), json);
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(Digest::deserialize(&value).unwrap(), d);
        // Only the 64 characters themselves: no prefix, nothing short or long.
        for bad in [
            format!("0x{}", d.to_hex()),
            format!("0x{}", &d.to_hex()[2..]),
            d.to_hex()[1..].to_string(),
            format!("{}0", d.to_hex()),
        ] {
            assert_eq!(Digest::from_hex(&bad), None, "{bad}");
        }
        assert!(serde_json::from_str::<Digest>("1").is_err());
    }
}
