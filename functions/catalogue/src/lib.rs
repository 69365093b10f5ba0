//! Customers find astrologers: `GET /astrologers` (approved, KYC-completed, not suspended;
//! filters by language, specialisation, mode and online now; sorted by rating, price either
//! way or experience; an opaque cursor) and `GET /astrologers/{id}` (the public profile and
//! the next free slots over 7 days, in the time zone the app asks for). One store call each;
//! no phone number, KYC detail or anything private is ever in a response. An astrologer's
//! picture is a presigned GET of the private images bucket (`shared::app::images`), made for
//! each read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use shared::app::images::Images;
use shared::config::{ConfigError, Vars};
use shared::domain::astrologer::{AstrologerRecord, CatalogueQuery, CatalogueSort, Mode, RatingSummary};
use shared::domain::availability::{DEFAULT_TIME_ZONE, Presence, free_slots, parse_time_zone};
use shared::http::{self, Access, Request, Response, Route, json};
use shared::store::{CatalogueCursor, Store};
use shared::{ApiError, Money, UserId};

/// How far ahead free slots are shown, and the shortest slot worth showing.
const SLOT_HORIZON: Duration = Duration::days(7);
const MIN_SLOT_MINUTES: i64 = 15;

/// Built once per cold start.
#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    /// Presigns the pictures' views.
    pub images: Images,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl Vars) -> Result<Self, ConfigError> {
        Ok(Self { store: Store::from_env(sdk, vars)?, images: Images::from_env(sdk, vars)? })
    }
}

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// This function's part of the API contract (see `shared::http::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::http::openapi::FunctionDoc {
    use serde_json::json;
    use shared::domain::astrologer::{LANGUAGES, SPECIALISATIONS};
    use shared::http::openapi::{FunctionDoc, Operation, STORE_UNAVAILABLE, error, query, schema, success};
    let names = |values: Vec<&str>| json!({ "type": "string", "enum": values });
    let time_zone = || {
        query(
            "time_zone",
            "the IANA zone to write the slots in (default Asia/Kolkata)",
            serde_json::to_value(shared::http::openapi::time_zone()).expect("a schema serialises"),
        )
    };
    FunctionDoc::new("catalogue", "Catalogue", ROUTES, &[STORE_UNAVAILABLE], |op| match op {
        Op::List => Operation {
            summary: "Find astrologers (approved, KYC-completed, not suspended)",
            description: "Filters combine; `online=true` keeps those who can take an instant consultation now. \
                          Pass the previous page's `next_cursor` as `cursor` (with the same `sort`) for the next.",
            params: vec![
                query(
                    "sort",
                    "order (default `rating`, best first)",
                    names(shared::domain::astrologer::CatalogueSort::ALL.iter().map(|s| s.as_str()).collect()),
                ),
                query("language", "speaks this language (ISO 639-1)", names(LANGUAGES.to_vec())),
                query("specialisation", "has this specialisation", names(SPECIALISATIONS.to_vec())),
                query("mode", "offers this mode", names(Mode::ALL.iter().map(|m| m.as_str()).collect())),
                query("online", "only those online now", json!({ "type": "string", "enum": ["true", "false"] })),
                query(
                    "limit",
                    "cards per page (default 20)",
                    json!({ "type": "integer", "minimum": 1, "maximum": 50 }),
                ),
                query(
                    "cursor",
                    "`next_cursor` of the previous page with the same `sort`, as returned (opaque)",
                    json!({ "type": "string", "maxLength": 400 }),
                ),
            ],
            responses: vec![success(200, "One page of catalogue cards", schema::<CataloguePage>)],
            errors: vec![error(
                400,
                "invalid_field",
                "a filter is not one of its values, `limit` is not 1 to 50, or `cursor` is not one we returned for this sort",
            )],
            ..Operation::default()
        },
        Op::Get => Operation {
            summary: "An astrologer's public profile and next free slots",
            params: vec![time_zone()],
            responses: vec![success(200, "The profile, and free slots over the next 7 days", schema::<AstrologerPage>)],
            errors: vec![
                error(404, "not_found", "no such astrologer in the catalogue"),
                error(400, "invalid_field", "`time_zone` is not an IANA time zone name"),
            ],
            ..Operation::default()
        },
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    Get,
}

/// Every route of this function in `template.yaml`.
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "GET /astrologers", access: Access::SignedIn, handler: Op::List },
    Route { key: "GET /astrologers/{id}", access: Access::SignedIn, handler: Op::Get },
];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, _caller) = http::dispatch(ROUTES, req)?;
    match op {
        Op::List => list(app, req).await,
        Op::Get => get(app, req).await,
    }
}

/// A catalogue card: what a customer sees of an astrologer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
struct Card<'a> {
    astrologer_id: &'a str,
    display_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bio: Option<&'a str>,
    experience_years: u32,
    languages: &'a [String],
    specialisations: &'a [String],
    rate_per_minute: Money,
    modes: &'a [Mode],
    /// The astrologer's picture: a presigned GET valid an hour, made for each read (read the
    /// page again for a fresh one). Absent: no picture.
    #[serde(skip_serializing_if = "Option::is_none")]
    picture_url: Option<String>,
    /// On the public profile only (`GET /astrologers/{id}`), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    education: Option<&'a str>,
    /// On the public profile only (`GET /astrologers/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    certifications: Option<&'a [String]>,
    rating: RatingSummary,
    presence: Presence,
}

impl<'a> Card<'a> {
    /// `None` for an astrologer customers may not see (not listed, or no profile yet).
    /// `detail`: the public profile's card (bio, education, certifications).
    async fn of(images: &Images, r: &'a AstrologerRecord, detail: bool, now: DateTime<Utc>) -> Option<Self> {
        let p = r.profile.as_ref().filter(|_| r.visible())?;
        Some(Self {
            astrologer_id: r.id.as_str(),
            display_name: &p.display_name,
            bio: detail.then_some(p.bio.as_str()),
            experience_years: p.experience_years,
            languages: &p.languages,
            specialisations: &p.specialisations,
            rate_per_minute: p.rate_per_minute,
            modes: &p.modes,
            picture_url: images.picture_url_or_none(r.picture_key.as_ref(), now).await,
            education: p.education.as_deref().filter(|_| detail),
            certifications: detail.then_some(p.certifications.as_slice()),
            rating: r.rating,
            presence: r.presence_at(now),
        })
    }
}

fn encode_cursor(c: &CatalogueCursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::json!({ "sort": c.sort.as_str(), "after": c.after }).to_string())
}

/// A cursor this API returned for the same sort; anything else is a 400.
fn decode_cursor(raw: &str, sort: CatalogueSort) -> Result<CatalogueCursor, ApiError> {
    let bad = || ApiError::invalid_field("cursor", "is not a cursor this API returned for this sort");
    if raw.len() > 400 {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| bad())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let after = value.get("after").and_then(|v| v.as_str()).ok_or_else(bad)?;
    let id_ok = after.rsplit('#').next().is_some_and(|id| UserId::parse(id).is_ok());
    let digits_ok =
        after.split('#').rev().skip(1).all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if value.get("sort").and_then(|v| v.as_str()) != Some(sort.as_str()) || !id_ok || !digits_ok || after.len() > 120 {
        return Err(bad());
    }
    Ok(CatalogueCursor { sort, after: after.to_owned() })
}

async fn list(app: &App, req: &Request) -> Result<Response, ApiError> {
    let q = |name| http::query_param(req, name);
    let query =
        CatalogueQuery::parse(q("sort"), q("language"), q("specialisation"), q("mode"), q("online"), q("limit"))
            .map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    let after = q("cursor").map(|c| decode_cursor(c, query.sort)).transpose()?;
    let now = Utc::now();
    let page = app.store.catalogue_page(&query, after.as_ref(), now).await?;
    let mut cards: Vec<Card> = Vec::with_capacity(page.astrologers.len());
    for r in &page.astrologers {
        cards.extend(Card::of(&app.images, r, false, now).await);
    }
    let next_cursor = page.next.as_ref().map(encode_cursor);
    Ok(json(200, &CataloguePage { astrologers: cards, next_cursor }))
}

/// One page of the catalogue.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct CataloguePage<'a> {
    astrologers: Vec<Card<'a>>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// An astrologer's public page: the profile and when they can be booked.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct AstrologerPage<'a> {
    astrologer: Card<'a>,
    /// The zone the slots are written in (the `time_zone` asked for, or Asia/Kolkata).
    time_zone: &'a str,
    /// Free times over the next 7 days of at least 15 minutes, earliest first.
    next_free_slots: Vec<Slot>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
struct Slot {
    start: String,
    end: String,
}

async fn get(app: &App, req: &Request) -> Result<Response, ApiError> {
    let id = UserId::parse(http::path_param(req, "id")?).map_err(|_| ApiError::not_found("astrologer"))?;
    let tz: Tz = http::query_param(req, "time_zone")
        .map(parse_time_zone)
        .transpose()
        .map_err(|e| ApiError::invalid_field(e.field, e.message))?
        .unwrap_or(DEFAULT_TIME_ZONE);
    let now = Utc::now();
    let record = app.store.astrologer(&id).await?;
    let record = record.as_ref().ok_or_else(|| ApiError::not_found("astrologer"))?;
    let card = Card::of(&app.images, record, true, now).await.ok_or_else(|| ApiError::not_found("astrologer"))?;
    let windows = record.availability.occurrences(now, now + SLOT_HORIZON);
    let slots: Vec<Slot> = free_slots(&windows, &record.booked_intervals(), MIN_SLOT_MINUTES)
        .into_iter()
        .map(|(s, e)| Slot {
            start: s.with_timezone(&tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            end: e.with_timezone(&tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        })
        .collect();
    Ok(json(200, &AstrologerPage { astrologer: card, time_zone: tz.name(), next_free_slots: slots }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        let c = CatalogueCursor {
            sort: CatalogueSort::PriceAsc,
            after: "000000002500#5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&c), CatalogueSort::PriceAsc).unwrap(), c);
        assert!(decode_cursor(&encode_cursor(&c), CatalogueSort::Rating).is_err(), "another sort's cursor");
        let forged = [
            URL_SAFE_NO_PAD.encode(r#"{"sort":"price_asc","after":"PROFILE"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sort":"price_asc","after":"x#5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"}"#),
            "!!!".into(),
            "A".repeat(500),
        ];
        for bad in forged {
            assert_eq!(decode_cursor(&bad, CatalogueSort::PriceAsc).unwrap_err().field.as_deref(), Some("cursor"));
        }
    }
}
