//! The astrologer item as the catalogue and the astrologer's own routes see it: profile,
//! weekly availability, presence, rating, and the sparse catalogue indexes.
//!
//! | route | calls |
//! |---|---|
//! | `GET /astrologers/me/profile` | 1 GetItem |
//! | `PUT /astrologers/me/profile`, `/availability`, `/presence` | 1 conditional UpdateItem, returning the item |
//! | `GET /astrologers/{id}` | 1 GetItem |
//! | `GET /astrologers/me/saved-replies` | 1 GetItem; `PUT`: 1 PutItem (the list, replaced whole) |
//! | `GET /astrologers` | 1 Query on the index of the sort, filtered by language, specialisation, mode, online |
//!
//! Why sparse GSIs and not one catalogue partition read whole: a listed astrologer's
//! projection is about 400 bytes, so 1,000 astrologers are ~400 KB and 10,000 are ~4 MB. A
//! page of 20 sorted by price reads the index in key order from the cursor and stops after
//! `4 x limit` items (at most 80 x 400 B = 32 KB, 4 read units), whatever the size of the
//! catalogue; reading a whole partition to sort in memory would cost 100 to 1,000 units
//! per page at those sizes. A filter that matches few astrologers returns a short page
//! with a cursor, and the app reads on.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::items::{self, Item, get_str, get_u64, opt_str};
use super::keys::{
    ASTROLOGER_SK, CATALOGUE, CATALOGUE_BY_EXPERIENCE, CATALOGUE_BY_PRICE, CATALOGUE_BY_RATING, LISTED, PK,
    SAVED_REPLIES_SK, SK, experience_sort_key, price_sort_key, rating_sort_key, saved_replies_pk, user_pk,
};
use super::{Store, StoreError};
use crate::domain::astrologer::{
    AstrologerRecord, Booked, CatalogueQuery, CatalogueSort, Mode, Profile, RatingSummary,
};
use crate::domain::availability::{Presence, WeeklyAvailability, parse_time_zone};
use crate::domain::image::PictureKey;
use crate::domain::saved_replies::SavedReplies;
use crate::domain::user::{KycStatus, UserId, VerificationStatus};

fn strings(item: &Item, name: &str) -> Vec<String> {
    let mut out = item.get(name).and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
    out.sort();
    out
}

fn set(values: &[String]) -> AttributeValue {
    AttributeValue::Ss(values.to_vec())
}

fn read_profile(item: &Item) -> Result<Option<Profile>, StoreError> {
    if !item.contains_key("rate_per_minute") {
        return Ok(None);
    }
    let corrupt = |what: &str| StoreError::Corrupt(format!("astrologer profile: {what}"));
    Ok(Some(Profile {
        display_name: get_str(item, "display_name")?.to_owned(),
        bio: opt_str(item, "bio").unwrap_or_default().to_owned(),
        experience_years: get_u64(item, "experience_years")? as u32,
        languages: strings(item, "languages"),
        specialisations: strings(item, "specialisations"),
        rate_per_minute: items::get_money(item, "rate_per_minute")?,
        modes: strings(item, "modes")
            .iter()
            .map(|m| Mode::parse(m).ok_or_else(|| corrupt("modes")))
            .collect::<Result<_, _>>()?,
        education: opt_str(item, "education").map(str::to_owned),
        certifications: item
            .get("certifications")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|c| c.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
    }))
}

fn read_availability(item: &Item) -> Result<WeeklyAvailability, StoreError> {
    let Some(zone) = opt_str(item, "time_zone") else { return Ok(WeeklyAvailability::none()) };
    let corrupt = || StoreError::Corrupt("astrologer availability".into());
    let tz = parse_time_zone(zone).map_err(|_| corrupt())?;
    let minutes: Vec<(u32, u32)> =
        serde_json::from_str(opt_str(item, "availability").unwrap_or("[]")).map_err(|_| corrupt())?;
    WeeklyAvailability::from_minutes(tz, minutes).ok_or_else(corrupt)
}

/// The booked intervals, kept on the astrologer item as `[[start, end, "AT..."], ...]`
/// (epoch seconds): small, and read with the item by every booking and `GET /astrologers/{id}`.
/// Bounded: at most [`crate::domain::booking::MAX_SCHEDULED`] upcoming ones (a booking past it is
/// `409 schedule_full`), past ones pruned by every write, so at most 37 KB of the item's 400.
fn read_schedule(item: &Item) -> Result<Vec<Booked>, StoreError> {
    let corrupt = || StoreError::Corrupt("astrologer schedule".into());
    let entries: Vec<(i64, i64, String)> =
        serde_json::from_str(opt_str(item, "schedule").unwrap_or("[]")).map_err(|_| corrupt())?;
    entries
        .into_iter()
        .map(|(s, e, id)| {
            let (s, e) = DateTime::from_timestamp(s, 0).zip(DateTime::from_timestamp(e, 0)).ok_or_else(corrupt)?;
            Ok((s, e, id))
        })
        .collect()
}

pub(crate) fn schedule_json(booked: &[Booked]) -> String {
    let entries: Vec<(i64, i64, &str)> =
        booked.iter().map(|(s, e, id)| (s.timestamp(), e.timestamp(), id.as_str())).collect();
    serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn read_astrologer(item: &Item) -> Result<AstrologerRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("astrologer: {what}"));
    Ok(AstrologerRecord {
        id: UserId::parse(get_str(item, "user_id")?).map_err(|_| corrupt("user_id"))?,
        profile: read_profile(item)?,
        picture_key: opt_str(item, "picture_key").and_then(PictureKey::stored),
        availability: read_availability(item)?,
        presence: opt_str(item, "presence").and_then(Presence::parse).unwrap_or(Presence::Offline),
        online_until: get_u64(item, "online_until").ok().and_then(|t| DateTime::from_timestamp(t as i64, 0)),
        rating: RatingSummary {
            average_hundredths: get_u64(item, "rating_hundredths").unwrap_or(0) as u32,
            count: get_u64(item, "rating_count").unwrap_or(0),
        },
        booked: read_schedule(item)?,
        schedule_version: get_u64(item, "schedule_version").unwrap_or(0),
        listed: opt_str(item, CATALOGUE) == Some(LISTED),
        kyc_status: opt_str(item, "kyc_status").and_then(KycStatus::parse).ok_or_else(|| corrupt("kyc_status"))?,
        verification_status: opt_str(item, "verification_status")
            .and_then(VerificationStatus::parse)
            .ok_or_else(|| corrupt("verification_status"))?,
        revenue_share_percent: item
            .get("revenue_share_percent")
            .and_then(|v| v.as_n().ok())
            .map(|n| n.parse().map_err(|_| corrupt("revenue_share_percent")))
            .transpose()?,
        accepts_promotional_offers: item
            .get("accepts_promotional_offers")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(true),
    })
}

/// The index and its sort attribute for a catalogue order, and whether it reads forward.
fn index_for(sort: CatalogueSort) -> ((&'static str, &'static str), bool) {
    match sort {
        CatalogueSort::PriceAsc => (CATALOGUE_BY_PRICE, true),
        CatalogueSort::PriceDesc => (CATALOGUE_BY_PRICE, false),
        CatalogueSort::Rating => (CATALOGUE_BY_RATING, false),
        CatalogueSort::Experience => (CATALOGUE_BY_EXPERIENCE, false),
    }
}

/// Where a catalogue page ends: the sort key of its last astrologer (the id is inside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueCursor {
    pub sort: CatalogueSort,
    pub after: String,
}

/// One page of the catalogue, in the order asked for.
#[derive(Debug, Clone)]
pub struct CataloguePage {
    pub astrologers: Vec<AstrologerRecord>,
    pub next: Option<CatalogueCursor>,
}

impl Store {
    /// The astrologer's item (one consistent GetItem). `None`: not an astrologer.
    pub async fn astrologer(&self, id: &UserId) -> Result<Option<AstrologerRecord>, StoreError> {
        self.get(items::key(user_pk(id), ASTROLOGER_SK)).await?.as_ref().map(read_astrologer).transpose()
    }

    /// One conditional UpdateItem on the astrologer's item, returning it as it is after.
    async fn update_astrologer(
        &self,
        id: &UserId,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<AstrologerRecord>, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(user_pk(id), ASTROLOGER_SK)))
            .update_expression(expression)
            .condition_expression("attribute_exists(PK)")
            .return_values(ReturnValue::AllNew);
        for (k, v) in values {
            request = request.expression_attribute_values(k, v);
        }
        match request.send().await.map_err(StoreError::from_sdk) {
            Ok(out) => out.attributes.as_ref().map(read_astrologer).transpose(),
            Err(StoreError::ConditionFailed(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Saves the profile and the catalogue's sort keys (whether it shows in the catalogue
    /// is up to `CATALOGUE`, which only approval sets).
    pub async fn save_astrologer_profile(
        &self,
        id: &UserId,
        p: &Profile,
        now: DateTime<Utc>,
    ) -> Result<Option<AstrologerRecord>, StoreError> {
        let mut remove = Vec::new();
        let mut values = vec![
            (":name", items::s(&p.display_name)),
            (":years", items::n(p.experience_years)),
            (":languages", set(&p.languages)),
            (":specialisations", set(&p.specialisations)),
            (":rate", items::money(p.rate_per_minute)),
            (":modes", set(&p.modes.iter().map(|m| m.as_str().to_owned()).collect::<Vec<_>>())),
            (":price_key", items::s(price_sort_key(p.rate_per_minute, id))),
            (":experience_key", items::s(experience_sort_key(p.experience_years, id))),
            (":unrated", items::s(rating_sort_key(0, 0, id))),
            (":at", items::time(now)),
        ];
        let mut set_clause = String::from(
            "SET display_name = :name, experience_years = :years, languages = :languages, \
             specialisations = :specialisations, rate_per_minute = :rate, modes = :modes, \
             CAT_PRICE = :price_key, CAT_EXPERIENCE = :experience_key, \
             CAT_RATING = if_not_exists(CAT_RATING, :unrated), profile_updated_at = :at",
        );
        let certifications =
            (!p.certifications.is_empty()).then(|| AttributeValue::L(p.certifications.iter().map(items::s).collect()));
        // The optional attributes: set when there, removed when not (a PUT replaces the profile).
        for (name, placeholder, value) in [
            ("bio", ":bio", Some(p.bio.as_str()).filter(|b| !b.is_empty()).map(items::s)),
            ("education", ":education", p.education.as_deref().map(items::s)),
            ("certifications", ":certifications", certifications),
        ] {
            match value {
                Some(v) => {
                    set_clause.push_str(&format!(", {name} = {placeholder}"));
                    values.push((placeholder, v));
                }
                None => remove.push(name),
            }
        }
        let expression =
            if remove.is_empty() { set_clause } else { format!("{set_clause} REMOVE {}", remove.join(", ")) };
        self.update_astrologer(id, &expression, values).await
    }

    pub async fn save_astrologer_availability(
        &self,
        id: &UserId,
        availability: &WeeklyAvailability,
        now: DateTime<Utc>,
    ) -> Result<Option<AstrologerRecord>, StoreError> {
        let minutes = serde_json::to_string(availability.minutes()).unwrap_or_else(|_| "[]".into());
        self.update_astrologer(
            id,
            "SET time_zone = :tz, availability = :windows, availability_updated_at = :at",
            vec![
                (":tz", items::s(availability.time_zone.name())),
                (":windows", items::s(minutes)),
                (":at", items::time(now)),
            ],
        )
        .await
    }

    /// `online_until`: when an `online` lapses without another heartbeat.
    pub async fn save_astrologer_presence(
        &self,
        id: &UserId,
        presence: Presence,
        online_until: Option<DateTime<Utc>>,
    ) -> Result<Option<AstrologerRecord>, StoreError> {
        let until = online_until.map_or(0, |t| t.timestamp().max(0));
        self.update_astrologer(
            id,
            "SET presence = :presence, online_until = :until",
            vec![(":presence", items::s(presence.as_str())), (":until", items::n(until))],
        )
        .await
    }

    /// One page of listed astrologers (one Query on the sort's index). The cursor must be
    /// one a previous page of the same sort returned.
    pub async fn catalogue_page(
        &self,
        query: &CatalogueQuery,
        after: Option<&CatalogueCursor>,
        now: DateTime<Utc>,
    ) -> Result<CataloguePage, StoreError> {
        let ((index, sort_attr), forward) = index_for(query.sort);
        let mut filters = Vec::new();
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(format!("{CATALOGUE} = :listed"))
            .expression_attribute_values(":listed", items::s(LISTED))
            .scan_index_forward(forward)
            // Enough to fill most filtered pages in one call; the cursor continues the rest.
            .limit((query.limit * 4) as i32);
        if let Some(language) = &query.language {
            filters.push("contains(languages, :language)");
            request = request.expression_attribute_values(":language", items::s(language));
        }
        if let Some(spec) = &query.specialisation {
            filters.push("contains(specialisations, :specialisation)");
            request = request.expression_attribute_values(":specialisation", items::s(spec));
        }
        if let Some(mode) = query.mode {
            filters.push("contains(modes, :mode)");
            request = request.expression_attribute_values(":mode", items::s(mode.as_str()));
        }
        if query.online_now {
            filters.push("presence = :online AND online_until > :now");
            request = request
                .expression_attribute_values(":online", items::s(Presence::Online.as_str()))
                .expression_attribute_values(":now", items::n(now.timestamp()));
        }
        if !filters.is_empty() {
            request = request.filter_expression(filters.join(" AND "));
        }
        if let Some(cursor) = after.filter(|c| c.sort == query.sort) {
            let id = cursor.after.rsplit('#').next().and_then(|id| UserId::parse(id).ok());
            let id = id.ok_or_else(|| StoreError::Other("cursor without an astrologer id".into()))?;
            request = request.set_exclusive_start_key(Some(Item::from([
                (PK.to_owned(), items::s(user_pk(&id))),
                (SK.to_owned(), items::s(ASTROLOGER_SK)),
                (CATALOGUE.to_owned(), items::s(LISTED)),
                (sort_attr.to_owned(), items::s(&cursor.after)),
            ])));
        }
        let output = request.send().await.map_err(StoreError::from_sdk)?;
        let mut astrologers = Vec::new();
        let mut last_key = None;
        for item in output.items() {
            if astrologers.len() == query.limit {
                break;
            }
            astrologers.push(read_astrologer(item)?);
            last_key = opt_str(item, sort_attr).map(str::to_owned);
        }
        let truncated = output.items().len() > astrologers.len();
        let more = truncated || output.last_evaluated_key().is_some();
        // Past the last one read; when nothing matched, past what DynamoDB looked at.
        let after = last_key.or_else(|| {
            output.last_evaluated_key().and_then(|k| k.get(sort_attr)).and_then(|v| v.as_s().ok()).cloned()
        });
        Ok(CataloguePage {
            astrologers,
            next: more.then_some(after).flatten().map(|after| CatalogueCursor { sort: query.sort, after }),
        })
    }
}

impl Store {
    /// The astrologer's saved replies (one GetItem; none saved: an empty list).
    pub async fn saved_replies(&self, astrologer: &UserId) -> Result<SavedReplies, StoreError> {
        let item = self.get(items::key(saved_replies_pk(astrologer), SAVED_REPLIES_SK)).await?;
        let replies = item
            .as_ref()
            .and_then(|i| i.get("replies"))
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|r| r.as_s().ok().cloned()).collect())
            .unwrap_or_default();
        Ok(SavedReplies { replies })
    }

    /// Replaces the astrologer's saved replies (one PutItem).
    pub async fn save_replies(&self, astrologer: &UserId, replies: &SavedReplies) -> Result<(), StoreError> {
        let mut item = items::key(saved_replies_pk(astrologer), SAVED_REPLIES_SK);
        item.insert("entity".into(), items::s("saved_replies"));
        item.insert("replies".into(), AttributeValue::L(replies.replies.iter().map(items::s).collect()));
        self.put(item).await
    }
}

#[cfg(test)]
mod schedule_bound {
    use super::*;
    use crate::domain::booking::MAX_SCHEDULED;

    #[test]
    fn a_full_schedule_stays_far_inside_the_item_limit() {
        // The widest entries there can be: 10-digit times (until 2286), 10-character ids.
        let at = DateTime::from_timestamp(9_999_999_999, 0).unwrap();
        let full: Vec<Booked> = (0..MAX_SCHEDULED).map(|_| (at, at, "AT99999999".to_owned())).collect();
        let bytes = schedule_json(&full).len();
        assert!(bytes <= 37 * MAX_SCHEDULED + 1, "{bytes} bytes");
        assert!(bytes * 10 < 400 * 1024, "a tenth of DynamoDB's 400 KB item at most");
        assert_eq!(read_schedule(&Item::from([("schedule".into(), items::s(schedule_json(&full)))])).unwrap(), full);
    }
}
