//! JSON Schema for the string newtypes whose serde is hand-written: the published contract
//! (`schemas/json/`) states the same shape their parsers accept.

/// Implements `schemars::JsonSchema` for a type that travels as one JSON string, with the
/// given name and extra keywords (pattern, lengths, description).
macro_rules! string_schema {
    ($ty:ty, $name:literal, { $($keywords:tt)* }) => {
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", $($keywords)* })
            }
        }
    };
}

pub(crate) use string_schema;
