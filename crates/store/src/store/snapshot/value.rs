//! One column's value as a snapshot carries it: read from either database through `Cols`,
//! written as JSON (timestamps in RFC 3339, dates as `YYYY-MM-DD`, bytes in base64), and read
//! back against the column's [`Kind`], so a snapshot line that does not fit is refused before
//! anything is written.

use super::schema::{Column, Kind};
use crate::store::dialect::Cols;
use crate::store::Result;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    Ts(DateTime<Utc>),
    Date(NaiveDate),
    Bytes(Vec<u8>),
}

impl Val {
    /// Reads `col` of a row of either database.
    pub fn read(row: &impl Cols, col: &Column) -> Result<Val> {
        let c = col.name;
        Ok(match col.kind {
            Kind::Int => row.opt_i64(c)?.map_or(Val::Null, Val::Int),
            Kind::Text => row.opt_str(c)?.map_or(Val::Null, Val::Text),
            Kind::Bool => row.opt_bool(c)?.map_or(Val::Null, Val::Bool),
            Kind::Ts => row.opt_ts(c)?.map_or(Val::Null, Val::Ts),
            Kind::Date => row.opt_date(c)?.map_or(Val::Null, Val::Date),
            Kind::Bytes => row.opt_bytes(c)?.map_or(Val::Null, Val::Bytes),
        })
    }

    pub fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Int(i) => Value::from(*i),
            Val::Text(s) => Value::from(s.as_str()),
            Val::Bool(b) => Value::from(*b),
            Val::Ts(t) => Value::from(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Val::Date(d) => Value::from(d.format("%Y-%m-%d").to_string()),
            Val::Bytes(b) => Value::from(B64.encode(b)),
        }
    }

    /// The value of a `kind` column in a snapshot line; `Err` says why it does not fit.
    pub fn from_json(kind: Kind, v: &Value) -> Result<Val, String> {
        if v.is_null() {
            return Ok(Val::Null);
        }
        let text = || v.as_str().ok_or_else(|| format!("expected a string, found {}", json_type(v)));
        Ok(match kind {
            Kind::Int => Val::Int(v.as_i64().ok_or_else(|| format!("expected an integer, found {}", json_type(v)))?),
            Kind::Text => Val::Text(text()?.to_owned()),
            Kind::Bool => {
                Val::Bool(v.as_bool().ok_or_else(|| format!("expected true or false, found {}", json_type(v)))?)
            }
            Kind::Ts => Val::Ts(
                DateTime::parse_from_rfc3339(text()?)
                    .map_err(|e| format!("expected an RFC 3339 time: {e}"))?
                    .with_timezone(&Utc),
            ),
            Kind::Date => {
                Val::Date(NaiveDate::parse_from_str(text()?, "%Y-%m-%d").map_err(|e| format!("expected a date: {e}"))?)
            }
            Kind::Bytes => Val::Bytes(B64.decode(text()?).map_err(|e| format!("expected base64: {e}"))?),
        })
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn text(&self) -> Option<String> {
        match self {
            Val::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
    pub fn bool(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn ts(&self) -> Option<DateTime<Utc>> {
        match self {
            Val::Ts(t) => Some(*t),
            _ => None,
        }
    }
    pub fn date(&self) -> Option<NaiveDate> {
        match self {
            Val::Date(d) => Some(*d),
            _ => None,
        }
    }
    pub fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Val::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
