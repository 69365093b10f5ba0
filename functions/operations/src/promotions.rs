//! Promo codes (for bookings) and promotion rules (top-up bonus), as staff manage them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shared::domain::booking::{DiscountKind, PromoCode};
use shared::domain::promotion::PromotionRule;
use shared::domain::staff::{self, AuditEntry, Reason, StaffAction};
use shared::http::{self, Request, Response, json};
use shared::store::keys::bounded_id;
use shared::store::retry::{self, Attempt, Retry};
use shared::store::staff::RulesWrite;
use shared::{ApiError, Money, UserId, UserType};

use crate::{App, ReasonBody, reason};

const MAX_RULE_NAME_CHARS: usize = 100;

fn bad((field, problem): (&'static str, &'static str)) -> ApiError {
    ApiError::invalid_field(field, problem)
}

// ---------------------------------------------------------------- promo codes

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct PromoCodeBody {
    /// 1 to 32 of `A-Z 0-9 _ -`; kept upper case, unique whatever the case.
    #[cfg_attr(feature = "openapi", schema(pattern = "^\\s*[A-Za-z0-9_-]{1,32}\\s*$"))]
    code: String,
    discount_type: DiscountKind,
    /// A percentage (`10` = 10%, up to 100) or an amount in INR.
    #[cfg_attr(feature = "openapi", schema(value_type = String, examples("10")))]
    discount_value: Decimal,
    /// A percentage's cap.
    #[serde(default)]
    max_discount: Option<Money>,
    #[serde(default)]
    min_order: Option<Money>,
    /// Default: now.
    #[serde(default)]
    valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    valid_until: Option<DateTime<Utc>>,
    /// Uses across all customers; absent: unlimited.
    #[serde(default)]
    usage_limit: Option<u64>,
    /// Uses per customer; default 1.
    #[serde(default)]
    per_user_limit: Option<u64>,
    /// Only customers of this type; absent: anyone.
    #[serde(default)]
    user_type: Option<UserType>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 500))]
    reason: Option<Reason>,
}

/// A promo code and how often it has been used.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct PromoCodeView {
    code: String,
    discount_type: DiscountKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    discount_value: Decimal,
    max_discount: Option<Money>,
    min_order: Money,
    #[serde(serialize_with = "shared::domain::time::rfc3339")]
    valid_from: DateTime<Utc>,
    #[serde(serialize_with = "shared::domain::time::rfc3339_opt")]
    valid_until: Option<DateTime<Utc>>,
    usage_limit: Option<u64>,
    per_user_limit: u64,
    user_type: Option<UserType>,
    active: bool,
    /// Uses so far, by all customers.
    used_count: u64,
}

impl From<(PromoCode, u64)> for PromoCodeView {
    fn from((p, used_count): (PromoCode, u64)) -> Self {
        Self {
            code: p.code,
            discount_type: p.kind,
            discount_value: p.value,
            max_discount: p.max_discount,
            min_order: p.min_order,
            valid_from: p.valid_from,
            valid_until: p.valid_until,
            usage_limit: p.usage_limit,
            per_user_limit: p.per_user_limit,
            user_type: p.user_type,
            active: p.active,
            used_count,
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct PromoCodeList {
    promo_codes: Vec<PromoCodeView>,
}

fn code_target(code: &str) -> String {
    format!("promo_code:{code}")
}

pub(crate) async fn create_code(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let body: PromoCodeBody = http::json_body(req)?;
    let reason = reason(StaffAction::CreatePromoCode, body.reason)?;
    let code =
        PromoCode::normalize(&body.code).ok_or_else(|| ApiError::invalid_field("code", "is not a promo code"))?;
    let promo = PromoCode {
        code,
        kind: body.discount_type,
        value: body.discount_value,
        max_discount: body.max_discount,
        min_order: body.min_order.unwrap_or(Money::ZERO),
        valid_from: body.valid_from.unwrap_or_else(Utc::now),
        valid_until: body.valid_until,
        usage_limit: body.usage_limit,
        per_user_limit: body.per_user_limit.unwrap_or(1),
        user_type: body.user_type,
        active: true,
    };
    staff::check_promo_code(&promo).map_err(bad)?;
    let audit = AuditEntry::new(staff, StaffAction::CreatePromoCode, code_target(&promo.code), reason);
    if !app.store.create_promo_code_by_staff(&promo, &audit).await? {
        return Err(ApiError::conflict("code_taken", format!("promo code {} exists (codes ignore case)", promo.code)));
    }
    tracing::info!(code = %promo.code, "promo code created");
    Ok(json(201, &PromoCodeView::from((promo, 0))))
}

pub(crate) async fn list_codes(app: &App) -> Result<Response, ApiError> {
    let promo_codes = app.store.promo_codes().await?.into_iter().map(PromoCodeView::from).collect();
    Ok(json(200, &PromoCodeList { promo_codes }))
}

pub(crate) async fn deactivate_code(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let body: ReasonBody = http::json_body(req)?;
    let reason = reason(StaffAction::DeactivatePromoCode, body.reason)?;
    let code = PromoCode::normalize(http::path_param(req, "code")?).ok_or_else(|| ApiError::not_found("promo code"))?;
    let audit = AuditEntry::new(staff, StaffAction::DeactivatePromoCode, code_target(&code), reason);
    // Not written: it is missing (404) or already inactive (answered as it is).
    app.store.deactivate_promo_code(&code, &audit).await?;
    let now = app.store.promo_code(&code).await?.ok_or_else(|| ApiError::not_found("promo code"))?;
    Ok(json(200, &PromoCodeView::from(now)))
}

// ---------------------------------------------------------------- promotion rules

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct RuleBody {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    name: String,
    /// Recharges from this amount (inclusive).
    min_amount: Money,
    /// Up to this amount (inclusive); absent: no maximum.
    #[serde(default)]
    max_amount: Option<Money>,
    /// Percent of the recharge given as bonus cash (above 0, up to 100, two decimals).
    #[cfg_attr(feature = "openapi", schema(value_type = String, examples("20")))]
    bonus_percent: Decimal,
    #[serde(default)]
    first_recharge_only: bool,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 500))]
    reason: Option<Reason>,
}

/// A top-up bonus rule.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct RuleView {
    rule_id: String,
    name: String,
    min_amount: Money,
    max_amount: Option<Money>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    bonus_percent: Decimal,
    first_recharge_only: bool,
    active: bool,
}

impl From<PromotionRule> for RuleView {
    fn from(r: PromotionRule) -> Self {
        Self {
            rule_id: r.id,
            name: r.name,
            min_amount: r.min_amount,
            max_amount: r.max_amount,
            bonus_percent: r.bonus_percent,
            first_recharge_only: r.first_recharge_only,
            active: r.active,
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct RuleList {
    promotion_rules: Vec<RuleView>,
}

fn rule_target(id: &str) -> String {
    format!("promotion_rule:{id}")
}

/// Creates a rule unless its range shares an amount with an active rule's. The check and the
/// write are tied by the rules' version: of two overlapping creations racing, one commits
/// and the other reads again and is refused.
pub(crate) async fn create_rule(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let body: RuleBody = http::json_body(req)?;
    let reason = reason(StaffAction::CreatePromotionRule, body.reason)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > MAX_RULE_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field("name", "1 to 100 characters of text"));
    }
    let rule = PromotionRule {
        id: format!("r_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        name: name.to_owned(),
        min_amount: body.min_amount,
        max_amount: body.max_amount,
        bonus_percent: body.bonus_percent,
        first_recharge_only: body.first_recharge_only,
        active: true,
    };
    staff::check_rule(&rule).map_err(bad)?;
    // Another rule change won the race: read the rules and check again.
    let busy = |_| ApiError::unavailable("busy", "the promotion rules kept changing; retry");
    retry::on_conflict(Retry::DEFAULT, busy, || async {
        let (rules, version) = app.store.promotion_rules_versioned().await?;
        if let Some(clash) = staff::overlapping(&rules, &rule) {
            return Err(ApiError::conflict(
                "rule_overlaps",
                format!("the range overlaps active rule {} ({}); deactivate it first", clash.id, clash.name),
            ));
        }
        let audit = AuditEntry::new(staff, StaffAction::CreatePromotionRule, rule_target(&rule.id), reason.clone());
        Ok(match app.store.create_promotion_rule(&rule, version, &audit).await? {
            RulesWrite::Written => Attempt::Done(()),
            RulesWrite::Moved => Attempt::Conflict,
        })
    })
    .await?;
    tracing::info!(rule = %rule.id, "promotion rule created");
    Ok(json(201, &RuleView::from(rule)))
}

pub(crate) async fn list_rules(app: &App) -> Result<Response, ApiError> {
    let (rules, _) = app.store.promotion_rules_versioned().await?;
    Ok(json(200, &RuleList { promotion_rules: rules.into_iter().map(RuleView::from).collect() }))
}

pub(crate) async fn deactivate_rule(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let body: ReasonBody = http::json_body(req)?;
    let reason = reason(StaffAction::DeactivatePromotionRule, body.reason)?;
    let id =
        Some(http::path_param(req, "id")?).filter(|id| bounded_id(id)).ok_or_else(|| ApiError::not_found("rule"))?;
    let audit = AuditEntry::new(staff, StaffAction::DeactivatePromotionRule, rule_target(id), reason);
    // Not written: it is missing (404) or already inactive (answered as it is).
    app.store.deactivate_promotion_rule(id, &audit).await?;
    let (rules, _) = app.store.promotion_rules_versioned().await?;
    let rule = rules.into_iter().find(|r| r.id == id).ok_or_else(|| ApiError::not_found("rule"))?;
    Ok(json(200, &RuleView::from(rule)))
}
