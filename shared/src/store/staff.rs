//! What operations staff change, each change in one transaction with its staff audit entry
//! (`put_new` on the entry's own id: written once, and no code path updates or deletes it).
//!
//! | route | calls |
//! |---|---|
//! | `POST /admin/astrologers/{id}/suspend` | 1 GetItem, 1 TransactWriteItems (astrologer: `REMOVE CATALOGUE`, audit), 1 GetItem (the schedule after), Query GSI2 `ASTROCONS#{id}` (scheduled and in progress), then per consultation the closing's calls (GetItem, BatchGetItem, TransactWriteItems): scheduled ones cancelled, ones in progress settled |
//! | `POST /admin/astrologers/{id}/reinstate` | 1 GetItem, 1 TransactWriteItems (astrologer, audit) |
//! | `POST /admin/astrologers/{id}/kyc-decision` | 1 Query (user + astrologer), 1 GetItem (request), the webhook's TransactWriteItems plus the staff audit entry |
//! | `POST /admin/promo-codes` | 1 TransactWriteItems (code `attribute_not_exists`, audit) |
//! | `GET /admin/promo-codes` | Query GSI1 `PROMO_CODES` (all pages) and 1 PutItem (the read's audit entry), concurrently |
//! | `POST /admin/promo-codes/{code}/deactivate` | 1 TransactWriteItems (code `active = true`, audit); 1 GetItem when it did not hold |
//! | `POST /admin/promotion-rules` | 1 Query `PROMO_RULES` (rules + set version), 1 TransactWriteItems (set version, rule, audit); a lost race reads again |
//! | `GET /admin/promotion-rules` | 1 Query `PROMO_RULES` and 1 PutItem (audit), concurrently |
//! | `POST /admin/promotion-rules/{id}/deactivate` | 1 Query `PROMO_RULES`, 1 TransactWriteItems (rule `active = true`, audit) |
//! | `GET /admin/users/{id}/wallet` | 1 Query (user partition), 1 GetItem (the wallet at its version), 1 Query `LEDGER#{id}` with `Limit` from the cursor (the page shown, and only it) and 1 PutItem (audit), all four concurrently: one round trip of latency |
//! | `GET /admin/audit` | 1 Query GSI1 `STAFF_AUDIT`, newest first, `Limit` from the cursor, and 1 PutItem (audit), concurrently |
//!
//! A staff READ is audited like a change (who, what, when: one entry, `put_new` on its own
//! id): reads change nothing to put the entry in a transaction with, so the entry is written
//! beside the read, and the answer is only sent once both succeeded: a look that could not be
//! recorded shows nothing.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::astrologers::read_astrologer;
use super::consultations::{promo_item, read_promo};
use super::items::{self, Item, get_str, get_time, opt_str};
use super::keys::{
    ASTROLOGER_SK, GSI1, LISTED, PROFILE_SK, PROMO_CODE_SK, PROMO_CODES_GSI1PK, PROMO_RULES_PK, PROMO_RULES_SET_SK,
    STAFF_AUDIT_GSI1PK, STAFF_AUDIT_SK, SUSPENDED, promo_code_pk, promo_rule_sk, staff_audit_pk, user_pk,
};
use super::tx::committed;
use super::wallet::{promo_rule_item, read_promo_rule};
use super::{Store, StoreError, Tx};
use crate::domain::astrologer::AstrologerRecord;
use crate::domain::booking::PromoCode;
use crate::domain::promotion::PromotionRule;
use crate::domain::staff::{AuditEntry, Reason, StaffAction};
use crate::domain::user::{ProfileStatus, UserId, VerificationStatus};

impl Tx {
    /// The staff audit entry of this transaction's change (label `staff_audit`).
    pub(crate) fn staff_audit(&mut self, entry: &AuditEntry) -> &mut Self {
        self.put_new("staff_audit", audit_item(entry))
    }
}

fn audit_item(e: &AuditEntry) -> Item {
    let mut item = items::key(staff_audit_pk(&e.audit_id), STAFF_AUDIT_SK);
    item.insert("entity".into(), items::s("staff_audit"));
    item.insert("audit_id".into(), items::s(&e.audit_id));
    item.insert("staff_id".into(), items::s(e.staff_id.as_str()));
    item.insert("action".into(), items::s(e.action.as_str()));
    item.insert("target".into(), items::s(&e.target));
    if let Some(reason) = &e.reason {
        item.insert("reason".into(), items::s(reason.as_str()));
    }
    item.insert("at".into(), items::time(e.at));
    item.insert("GSI1PK".into(), items::s(STAFF_AUDIT_GSI1PK));
    item.insert("GSI1SK".into(), items::s(format!("{}#{}", items::time_text(e.at), e.audit_id)));
    item
}

fn read_audit(item: &Item) -> Result<AuditEntry, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("staff audit: {what}"));
    Ok(AuditEntry {
        audit_id: get_str(item, "audit_id")?.to_owned(),
        staff_id: UserId::parse(get_str(item, "staff_id")?).map_err(|_| corrupt("staff_id"))?,
        action: StaffAction::parse(get_str(item, "action")?).ok_or_else(|| corrupt("action"))?,
        target: get_str(item, "target")?.to_owned(),
        reason: opt_str(item, "reason").map(Reason::parse).transpose().map_err(|_| corrupt("reason"))?,
        at: get_time(item, "at")?,
    })
}

/// Why and since when an astrologer is suspended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub at: DateTime<Utc>,
    pub by: UserId,
    pub reason: String,
}

/// An astrologer as staff see them: the record and any suspension.
#[derive(Debug, Clone)]
pub struct Standing {
    pub astrologer: AstrologerRecord,
    pub suspension: Option<Suspension>,
}

fn read_standing(item: &Item) -> Result<Standing, StoreError> {
    let suspension = match opt_str(item, "suspended") {
        None => None,
        Some(_) => Some(Suspension {
            at: get_time(item, "suspended_at")?,
            by: UserId::parse(get_str(item, "suspended_by")?)
                .map_err(|_| StoreError::Corrupt("astrologer: suspended_by".into()))?,
            reason: get_str(item, "suspension_reason")?.to_owned(),
        }),
    };
    Ok(Standing { astrologer: read_astrologer(item)?, suspension })
}

/// How a staff change to promotion rules ended.
#[derive(Debug, PartialEq, Eq)]
pub enum RulesWrite {
    Written,
    /// Another change to the rules committed since they were read: read and decide again.
    Moved,
}

impl Store {
    /// The astrologer and any suspension (one consistent GetItem). `None`: not an astrologer.
    pub async fn astrologer_standing(&self, id: &UserId) -> Result<Option<Standing>, StoreError> {
        self.get(items::key(user_pk(id), ASTROLOGER_SK)).await?.as_ref().map(read_standing).transpose()
    }

    /// Suspends the astrologer: out of the catalogue (`CATALOGUE` removed, which every
    /// booking's condition also checks) with the audit entry. `false`: already suspended or
    /// not an astrologer; nothing written.
    pub async fn suspend_astrologer(&self, id: &UserId, audit: &AuditEntry) -> Result<bool, StoreError> {
        let mut tx = self.tx();
        tx.update(
            "astrologer",
            items::key(user_pk(id), ASTROLOGER_SK),
            "SET suspended = :suspended, suspended_at = :at, suspended_by = :by, suspension_reason = :reason \
             REMOVE CATALOGUE",
            "attribute_exists(PK) AND attribute_not_exists(suspended)",
            vec![
                (":suspended", items::s(SUSPENDED)),
                (":at", items::time(audit.at)),
                (":by", items::s(audit.staff_id.as_str())),
                (":reason", items::s(audit.reason.as_ref().map_or("", Reason::as_str))),
            ],
        );
        // The user's profile says so too, and a KYC approval during the suspension keeps it
        // (it sets `profile_status = if_not_exists(suspended, approved)`).
        tx.update(
            "user",
            items::key(user_pk(id), PROFILE_SK),
            "SET profile_status = :suspended, suspended = :suspended",
            "attribute_exists(PK)",
            vec![(":suspended", items::s(ProfileStatus::Suspended.as_str()))],
        );
        tx.staff_audit(audit);
        committed(self.commit(tx).await, "astrologer")
    }

    /// Sets an astrologer's revenue share (`None`: the platform's) and promotional opt-in,
    /// with its audit entry, in one transaction. `false`: no such astrologer. Consultations
    /// booked before keep the share they were booked at (`Consultation::share_percent`).
    pub async fn set_astrologer_terms(
        &self,
        id: &UserId,
        share_percent: Option<rust_decimal::Decimal>,
        accepts_promotional_offers: bool,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (expression, mut values) = match share_percent {
            Some(share) => (
                "SET revenue_share_percent = :share, accepts_promotional_offers = :promo",
                vec![(":share", items::n(share))],
            ),
            None => ("SET accepts_promotional_offers = :promo REMOVE revenue_share_percent", vec![]),
        };
        values.push((":promo", aws_sdk_dynamodb::types::AttributeValue::Bool(accepts_promotional_offers)));
        let mut tx = self.tx();
        tx.update("astrologer", items::key(user_pk(id), ASTROLOGER_SK), expression, "attribute_exists(PK)", values);
        tx.staff_audit(audit);
        committed(self.commit(tx).await, "astrologer")
    }

    /// Lifts the suspension `seen`: back in the catalogue if KYC approved them (as read;
    /// the condition holds it), out of it otherwise. `false`: it changed since it was read.
    pub async fn reinstate_astrologer(&self, seen: &Standing, audit: &AuditEntry) -> Result<bool, StoreError> {
        let approved = seen.astrologer.verification_status == VerificationStatus::Approved;
        let lift = "suspended, suspended_at, suspended_by, suspension_reason";
        let (expression, mut values) = if approved {
            (format!("SET CATALOGUE = :listed REMOVE {lift}"), vec![(":listed", items::s(LISTED))])
        } else {
            (format!("REMOVE CATALOGUE, {lift}"), vec![])
        };
        values.push((":vs", items::s(seen.astrologer.verification_status.as_str())));
        let mut tx = self.tx();
        tx.update(
            "astrologer",
            items::key(user_pk(&seen.astrologer.id), ASTROLOGER_SK),
            &expression,
            "attribute_exists(suspended) AND verification_status = :vs",
            values,
        );
        let status = if approved { ProfileStatus::Approved } else { ProfileStatus::Pending };
        tx.update(
            "user",
            items::key(user_pk(&seen.astrologer.id), PROFILE_SK),
            "SET profile_status = :status REMOVE suspended",
            "attribute_exists(PK)",
            vec![(":status", items::s(status.as_str()))],
        );
        tx.staff_audit(audit);
        committed(self.commit(tx).await, "astrologer")
    }

    /// Creates a promo code with its audit entry. `false`: the code exists (any case: codes
    /// are stored upper case); nothing written.
    pub async fn create_promo_code_by_staff(&self, promo: &PromoCode, audit: &AuditEntry) -> Result<bool, StoreError> {
        let mut tx = self.tx();
        tx.put_new("promo", promo_item(promo));
        tx.staff_audit(audit);
        committed(self.commit(tx).await, "promo")
    }

    /// One promo code and how often it has been used (one GetItem).
    pub async fn promo_code(&self, code: &str) -> Result<Option<(PromoCode, u64)>, StoreError> {
        self.get(items::key(promo_code_pk(code), PROMO_CODE_SK)).await?.as_ref().map(read_promo).transpose()
    }

    /// Every promo code with its usage, by code (Query GSI1, all pages).
    pub async fn promo_codes(&self) -> Result<Vec<(PromoCode, u64)>, StoreError> {
        let found = self.index_items_upto(GSI1, ("GSI1PK", PROMO_CODES_GSI1PK), ("GSI1SK", "~".into())).await?;
        found.iter().map(read_promo).collect()
    }

    /// Deactivates an active code with its audit entry. `false`: missing or already inactive.
    pub async fn deactivate_promo_code(&self, code: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let mut tx = self.tx();
        tx.update(
            "promo",
            items::key(promo_code_pk(code), PROMO_CODE_SK),
            "SET active = :no",
            "active = :yes",
            vec![(":no", AttributeValue::Bool(false)), (":yes", AttributeValue::Bool(true))],
        );
        tx.staff_audit(audit);
        committed(self.commit(tx).await, "promo")
    }

    /// Every promotion rule and the rules' version, in one Query of their partition.
    pub async fn promotion_rules_versioned(&self) -> Result<(Vec<PromotionRule>, u64), StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", items::s(PROMO_RULES_PK))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let (mut rules, mut version) = (Vec::new(), 0);
        for item in output.items() {
            if opt_str(item, "SK") == Some(PROMO_RULES_SET_SK) {
                version = items::get_u64(item, "version")?;
            } else {
                rules.push(read_promo_rule(item)?);
            }
        }
        Ok((rules, version))
    }

    /// Creates `rule`, conditioned on the rules' version read (the overlap check was made
    /// against that version), with its audit entry.
    pub async fn create_promotion_rule(
        &self,
        rule: &PromotionRule,
        version_read: u64,
        audit: &AuditEntry,
    ) -> Result<RulesWrite, StoreError> {
        let mut tx = self.tx();
        tx.update(
            "rules_set",
            items::key(PROMO_RULES_PK, PROMO_RULES_SET_SK),
            "SET version = :next, entity = :entity",
            "attribute_not_exists(version) OR version = :read",
            vec![
                (":next", items::n(version_read + 1)),
                (":read", items::n(version_read)),
                (":entity", items::s("promotion_rules_set")),
            ],
        );
        tx.put_new("rule", promo_rule_item(rule));
        tx.staff_audit(audit);
        match committed(self.commit(tx).await, "rules_set")? {
            true => Ok(RulesWrite::Written),
            false => Ok(RulesWrite::Moved),
        }
    }

    /// Deactivates an active rule with its audit entry. `false`: missing or already inactive.
    /// (Deactivating only ever removes an overlap, so it needs no version.)
    pub async fn deactivate_promotion_rule(&self, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let mut tx = self.tx();
        tx.update(
            "rule",
            items::key(PROMO_RULES_PK, promo_rule_sk(id)),
            "SET active = :no",
            "active = :yes",
            vec![(":no", AttributeValue::Bool(false)), (":yes", AttributeValue::Bool(true))],
        );
        tx.staff_audit(audit);
        committed(self.commit(tx).await, "rule")
    }

    /// Records a staff read (1 PutItem of its audit entry, written once).
    pub async fn record_staff_read(&self, audit: &AuditEntry) -> Result<(), StoreError> {
        match self.put_once(audit_item(audit)).await? {
            true => Ok(()),
            false => Err(StoreError::Corrupt(format!("staff audit id {} taken", audit.audit_id))),
        }
    }

    /// Up to `limit` staff audit entries, newest first, after `after` (a position
    /// [`crate::domain::staff::audit_log_position`] accepted): one Query on GSI1. Also the position
    /// to continue after, when there may be more.
    pub async fn staff_audit_log(
        &self,
        limit: i32,
        after: Option<(&str, &str)>,
    ) -> Result<(Vec<AuditEntry>, Option<String>), StoreError> {
        let start = after.map(|(at, id)| {
            let mut key = items::key(staff_audit_pk(id), STAFF_AUDIT_SK);
            key.insert("GSI1PK".into(), items::s(STAFF_AUDIT_GSI1PK));
            key.insert("GSI1SK".into(), items::s(format!("{at}#{id}")));
            key
        });
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", items::s(STAFF_AUDIT_GSI1PK))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let next = output.last_evaluated_key().and_then(|k| k.get("GSI1SK")).and_then(|v| v.as_s().ok()).cloned();
        Ok((output.items().iter().map(read_audit).collect::<Result<_, _>>()?, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_entries_round_trip() {
        let staff = UserId::parse("5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap();
        let entry = AuditEntry::new(
            &staff,
            StaffAction::SuspendAstrologer,
            "astrologer:x".into(),
            Some(Reason::parse("fraud").unwrap()),
        );
        let back = read_audit(&audit_item(&entry)).unwrap();
        assert_eq!((back.audit_id, back.action, back.reason), (entry.audit_id.clone(), entry.action, entry.reason));
        assert_eq!(back.at.timestamp_millis(), entry.at.timestamp_millis());
    }
}
