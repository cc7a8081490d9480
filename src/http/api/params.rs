//! Parameters that carry their own rules: each declares in the API document exactly what it accepts, and
//! parses with the same rule, so a request the document calls valid is never refused for its parameters.

use std::borrow::Cow;
use std::fmt::Display;
use std::str::FromStr;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromParameter, ParseResult, Type};

use super::ApiError;
use crate::domain::audit::AuditAction;
use crate::domain::ids::{TypedId, ULID_CHARS};
use crate::domain::incident::{IncidentState, Rule};

/// What every parameter type here shares: it is its own raw value, and required unless wrapped in `Option`.
macro_rules! raw_self {
    () => {
        const IS_REQUIRED: bool = true;
        type RawValueType = Self;
        type RawElementValueType = Self;

        fn as_raw_value(&self) -> Option<&Self::RawValueType> {
            Some(self)
        }

        fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
            Box::new(self.as_raw_value().into_iter())
        }
    };
}

/// A typed id in a path or a cursor: `dlv_…`, `blk_…`, `tok_…`, declared with its pattern.
#[derive(Debug, Clone, Copy)]
pub struct Id<T>(pub T);

/// Parses a typed id from the text a page or a form sent; a 400 that says what an id looks like.
pub(crate) fn parse_id<T: TypedId>(raw: &str) -> Result<T, ApiError> {
    raw.parse::<T>().map_err(|e| ApiError::bad_request(e.to_string()))
}

impl<T: TypedId> Type for Id<T> {
    raw_self!();

    fn name() -> Cow<'static, str> {
        format!("{}id", T::PREFIX).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            pattern: Some(format!("^{}{ULID_CHARS}$", T::PREFIX)),
            example: Some(format!("{}01JE0000000000000000000000", T::PREFIX).into()),
            ..MetaSchema::new("string")
        }))
    }
}

impl<T: TypedId> ParseFromParameter for Id<T> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        value.parse::<T>().map(Id).map_err(ParseError::custom)
    }
}

/// A page size: `MIN` to 500, 50 when absent.
#[derive(Debug, Clone, Copy)]
pub struct Limit<const MIN: u32 = 1>(u32);

impl<const MIN: u32> Limit<MIN> {
    pub const MAX: u32 = 500;
    pub const DEFAULT: u32 = 50;

    pub fn get(self) -> u32 {
        self.0
    }

    /// The page size a query asks for, or the default.
    pub fn of(limit: Option<Self>) -> usize {
        limit.map_or(Self::DEFAULT, |l| l.0) as usize
    }

    /// Checks a page size from a page's own query string (the API's arrive parsed).
    pub fn check(limit: Option<u32>) -> Result<usize, ApiError> {
        let checked = limit.map(Self::new).transpose();
        checked.map(Self::of).map_err(|e| ApiError::bad_request(format!("`limit` {e}")))
    }

    fn new(v: u32) -> Result<Self, String> {
        if (MIN..=Self::MAX).contains(&v) {
            Ok(Self(v))
        } else {
            Err(format!("must be between {MIN} and {}, not {v}", Self::MAX))
        }
    }
}

impl<const MIN: u32> Type for Limit<MIN> {
    raw_self!();

    fn name() -> Cow<'static, str> {
        "integer(limit)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            format: Some("int32"),
            minimum: Some(f64::from(MIN)),
            maximum: Some(f64::from(Self::MAX)),
            default: Some(Self::DEFAULT.into()),
            ..MetaSchema::new("integer")
        }))
    }
}

impl<const MIN: u32> ParseFromParameter for Limit<MIN> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        let v = value.trim().parse::<u32>().map_err(|_| {
            ParseError::custom(format!("must be a whole number from {MIN} to {}, not `{value}`", Self::MAX))
        })?;
        Self::new(v).map_err(ParseError::custom)
    }
}

/// An instant in RFC 3339 (`2026-11-28T09:00:00Z`), declared as `date-time`; kept as sent, for the filters
/// that read it.
#[derive(Debug, Clone)]
pub struct Time(pub String);

impl Type for Time {
    raw_self!();

    fn name() -> Cow<'static, str> {
        "string(date-time)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema { format: Some("date-time"), ..MetaSchema::new("string") }))
    }
}

impl ParseFromParameter for Time {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        match crate::domain::Timestamp::parse_rfc3339(value) {
            Some(_) => Ok(Time(value.to_owned())),
            None => {
                Err(ParseError::custom(format!("must be an RFC 3339 time like 2026-11-28T09:00:00Z, not `{value}`")))
            }
        }
    }
}

/// A closed set of names (an audit action, an alert rule, an incident's state), declared as an enum.
#[derive(Debug, Clone, Copy)]
pub struct Choice<T>(pub T);

pub trait Choices: FromStr<Err: Display> + Copy + Send + Sync + 'static {
    const WHAT: &'static str;
    fn names() -> Vec<&'static str>;
}

impl<T: Choices> Type for Choice<T> {
    raw_self!();

    fn name() -> Cow<'static, str> {
        format!("string({})", T::WHAT).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let names = T::names().into_iter().map(serde_json::Value::from).collect();
        MetaSchemaRef::Inline(Box::new(MetaSchema { enum_items: names, ..MetaSchema::new("string") }))
    }
}

impl<T: Choices> ParseFromParameter for Choice<T> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        value.parse::<T>().map(Choice).map_err(|e| ParseError::custom(e.to_string()))
    }
}

macro_rules! choices {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl Choices for $t {
            const WHAT: &'static str = $what;
            fn names() -> Vec<&'static str> {
                <$t>::ALL.iter().map(|c| c.as_str()).collect()
            }
        }
    )*};
}

choices!(AuditAction => "audit action", Rule => "alert rule", IncidentState => "incident state");
