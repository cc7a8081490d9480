//! JSON request bodies, read strictly. poem-openapi's `Json` reads a number or a boolean sent for a text
//! field as its text (`{"name": false}` makes a token named "false"); the document says the field is a
//! string, so such a body is refused with a 400 that names the field.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::error::ParseRequestPayloadError;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde_json::Value;

/// A JSON request body whose text fields must be JSON strings.
#[derive(Debug)]
pub struct JsonIn<T>(pub T);

impl<T: Type> Payload for JsonIn<T> {
    const CONTENT_TYPE: &'static str = poem_openapi::payload::Json::<T>::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        poem_openapi::payload::Json::<T>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON> ParsePayload for JsonIn<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let refused = |reason: String| ParseRequestPayloadError { reason };
        let value = if data.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&data).map_err(|e| refused(e.to_string()))?
        };
        let mut registry = Registry::new();
        T::register(&mut registry);
        strings(&value, &T::schema_ref(), &registry, "").map_err(refused)?;
        T::parse_from_json(Some(value)).map(JsonIn).map_err(|e| refused(e.into_message()).into())
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonIn<T>, T: ParseFromJSON);

/// Checks that every value `schema` declares a string is one (or `null` where it is nullable).
fn strings(value: &Value, schema: &MetaSchemaRef, registry: &Registry, at: &str) -> Result<(), String> {
    let schema: &MetaSchema = match schema {
        MetaSchemaRef::Inline(s) => s,
        MetaSchemaRef::Reference(name) => match registry.schemas.get(name) {
            Some(s) => s,
            None => return Ok(()),
        },
    };
    for part in &schema.all_of {
        strings(value, part, registry, at)?;
    }
    match (schema.ty, value) {
        ("string", Value::String(_)) | (_, Value::Null) => Ok(()),
        ("string", other) => {
            let field = if at.is_empty() { "the body".to_owned() } else { format!("`{at}`") };
            Err(format!("{field} must be a string, not {other}"))
        }
        ("object", Value::Object(fields)) => {
            for (name, v) in fields {
                let path = if at.is_empty() { name.clone() } else { format!("{at}.{name}") };
                let declared = schema.properties.iter().find(|(p, _)| p == name).map(|(_, s)| s);
                if let Some(s) = declared.or(schema.additional_properties.as_deref()) {
                    strings(v, s, registry, &path)?;
                }
            }
            Ok(())
        }
        ("array", Value::Array(items)) => match &schema.items {
            Some(s) => items.iter().enumerate().try_for_each(|(i, v)| strings(v, s, registry, &format!("{at}[{i}]"))),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::contract::{SubscriptionIn, TokenIn};

    fn check<T: Type>(v: Value) -> Result<(), String> {
        let mut registry = Registry::new();
        T::register(&mut registry);
        strings(&v, &T::schema_ref(), &registry, "")
    }

    #[test]
    fn text_fields_take_strings_only() {
        assert_eq!(
            check::<TokenIn>(json!({ "name": false, "role": "viewer" })),
            Err("`name` must be a string, not false".into())
        );
        assert_eq!(check::<TokenIn>(json!({ "name": "ci", "role": "viewer" })), Ok(()));
        let headers =
            json!({ "source": "standard", "topic": "t", "account": "a", "destination_headers": { "X-A": 1 } });
        assert_eq!(check::<SubscriptionIn>(headers), Err("`destination_headers.X-A` must be a string, not 1".into()));
        assert_eq!(
            check::<SubscriptionIn>(json!({ "source": "standard", "topic": "t", "account": "a", "name": null })),
            Ok(())
        );
    }
}
