//! How the domain's values are read from a JSON body where serde's default is too strict.

/// `#[serde(deserialize_with = "shared::domain::json::whole_number")]` on a count in a request
/// body: a whole number as JSON (and JSON Schema's `integer`) means it, `36` or `36.0`,
/// since some encoders write every number with a decimal point; `36.5` and strings are refused.
pub fn whole_number<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::Deserialize;
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    let whole = n
        .as_u64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64).map(|f| f as u64));
    let whole = whole.ok_or_else(|| D::Error::custom(format!("{n} is not a whole number of 0 or more")))?;
    T::try_from(whole).map_err(|_| D::Error::custom(format!("{n} is too large")))
}
