//! This function's part of the API contract (see `shared::http::openapi`).

use serde_json::json;
use shared::http::openapi::{
    ErrorCase, FunctionDoc, NOT_FOUND, Operation, Request, STORE_UNAVAILABLE, body, error, query, schema, success,
};

use crate::astrologers::{AstrologerStanding, KycDecisionBody, Suspended, Terms, TermsBody};
use crate::offers::{OfferBody, OfferList, OfferView, SegmentsBody};
use crate::promotions::{PromoCodeBody, PromoCodeList, PromoCodeView, RuleBody, RuleList, RuleView};
use crate::support::{AuditLog, UserWallet};
use crate::{Op, ROUTES, ReasonBody};

const READ_AUDITED: &str = "Audited: the look is recorded in the staff audit log (who, what, when) before it answers.";
const BUSY: ErrorCase = error(503, "busy", "what this changes kept changing underneath; retry (nothing is done twice)");
const REASON_MISSING: ErrorCase =
    error(400, "invalid_field", "`reason` is missing (this action needs one) or malformed");

pub fn openapi() -> FunctionDoc {
    let limit =
        || vec![query("limit", "how many (default 20)", json!({ "type": "integer", "minimum": 1, "maximum": 100 }))];
    let paged = || {
        let mut params = limit();
        params.push(query(
            "cursor",
            "`next_cursor` of the previous page, as returned (opaque)",
            json!({ "type": "string", "maxLength": 512 }),
        ));
        params
    };
    const PAGE_REFUSED: ErrorCase =
        error(400, "invalid_field", "`limit` is not 1 to 100, or `cursor` is not one we returned");
    let reason_body = || Request::Json(body(schema::<ReasonBody>));
    FunctionDoc::new("operations", "Operations (staff only)", ROUTES, &[STORE_UNAVAILABLE], |op| match op {
        Op::Suspend => Operation {
            summary: "Suspend an astrologer: out of the catalogue, unbookable, open consultations ended",
            description: "Cancels each scheduled consultation with a full refund and ends each one in progress, \
                          settled for the minutes used (`closed_by: staff`); a start racing the suspension is \
                          refused. Suspending a suspended astrologer writes nothing and ends anything still left; \
                          a 503 means some are left: retry.",
            request: reason_body(),
            responses: vec![success(
                200,
                "Suspended, with the consultations this call cancelled and ended",
                schema::<Suspended>,
            )],
            errors: vec![NOT_FOUND, REASON_MISSING, BUSY],
            ..Operation::default()
        },
        Op::Terms => Operation {
            summary: "Set an astrologer's revenue share and whether they take part in promotional offers",
            description: "`revenue_share_percent`: their share of what customers are charged (`null`: the \
                          platform's). Consultations are settled at the share in force when they were booked, so \
                          a change applies to bookings made after it. Audited (`set_astrologer_terms`), with the \
                          reason.",
            request: Request::Json(body(schema::<TermsBody>)),
            responses: vec![success(200, "The terms as set", schema::<Terms>)],
            errors: vec![
                NOT_FOUND,
                REASON_MISSING,
                error(400, "invalid_field", "`revenue_share_percent` is not 0 to 100"),
            ],
            ..Operation::default()
        },
        Op::Reinstate => Operation {
            summary: "Lift a suspension (listed again if KYC approved them)",
            description: "Reinstating one who is not suspended changes nothing.",
            request: reason_body(),
            responses: vec![success(200, "The astrologer", schema::<AstrologerStanding>)],
            errors: vec![NOT_FOUND, REASON_MISSING, BUSY],
            ..Operation::default()
        },
        Op::KycDecision => Operation {
            summary: "Approve or reject an astrologer's completed KYC by hand",
            description: "For a request the astrologer completed and Digio has not decided. Recorded in the KYC audit \
                          log with `verified_by`. The same decision again answers without writing; approval does not \
                          list a suspended astrologer.",
            request: Request::Json(body(schema::<KycDecisionBody>)),
            responses: vec![success(200, "The astrologer after the decision", schema::<AstrologerStanding>)],
            errors: vec![
                NOT_FOUND,
                error(400, "invalid_field", "`reason` is missing (a rejection needs one) or malformed"),
                error(409, "kyc_not_awaiting_review", "no KYC request of theirs is completed and undecided"),
            ],
            ..Operation::default()
        },
        Op::CreatePromoCode => Operation {
            summary: "Create a promo code",
            request: Request::Json(body(schema::<PromoCodeBody>)),
            responses: vec![success(201, "The code", schema::<PromoCodeView>)],
            errors: vec![error(409, "code_taken", "a code with these letters exists (codes ignore case)")],
            ..Operation::default()
        },
        Op::ListPromoCodes => Operation {
            summary: "Every promo code with its usage",
            description: READ_AUDITED,
            responses: vec![success(200, "The codes, by code", schema::<PromoCodeList>)],
            ..Operation::default()
        },
        Op::DeactivatePromoCode => Operation {
            summary: "Deactivate a promo code (bookings stop accepting it)",
            description: "Deactivating an inactive code changes nothing.",
            request: reason_body(),
            responses: vec![success(200, "The code", schema::<PromoCodeView>)],
            errors: vec![NOT_FOUND, REASON_MISSING],
            ..Operation::default()
        },
        Op::CreatePromotionRule => Operation {
            summary: "Create a top-up bonus rule",
            description: "Its amount range may not share an amount with an active rule's (both ends inclusive).",
            request: Request::Json(body(schema::<RuleBody>)),
            responses: vec![success(201, "The rule", schema::<RuleView>)],
            errors: vec![error(409, "rule_overlaps", "the range overlaps an active rule (named in `message`)"), BUSY],
            ..Operation::default()
        },
        Op::ListPromotionRules => Operation {
            summary: "Every top-up bonus rule",
            description: READ_AUDITED,
            responses: vec![success(200, "The rules", schema::<RuleList>)],
            ..Operation::default()
        },
        Op::DeactivatePromotionRule => Operation {
            summary: "Deactivate a top-up bonus rule",
            description: "Deactivating an inactive rule changes nothing.",
            request: reason_body(),
            responses: vec![success(200, "The rule", schema::<RuleView>)],
            errors: vec![NOT_FOUND, REASON_MISSING],
            ..Operation::default()
        },
        Op::CreateOffer => Operation {
            summary: "Create an offer: free minutes on a consultation",
            description: "For a customer's first consultation, a segment, or a milestone (e.g. 5 completed \
                          consultations). A booking reserves it, a completed session consumes it, anything else \
                          releases it. The customer pays nothing for the free minutes; the astrologer is paid their \
                          share of them from the platform's promotions ledger.",
            request: Request::Json(body(schema::<OfferBody>)),
            responses: vec![success(201, "The offer", schema::<OfferView>)],
            errors: vec![error(
                400,
                "invalid_field",
                "a field is malformed or the offer cannot work (named in `field`)",
            )],
            ..Operation::default()
        },
        Op::ListOffers => Operation {
            summary: "Every offer with its counters, oldest first",
            description: READ_AUDITED,
            responses: vec![success(200, "The offers", schema::<OfferList>)],
            ..Operation::default()
        },
        Op::DeactivateOffer => Operation {
            summary: "Deactivate an offer (bookings stop taking it; reservations made stand)",
            description: "Deactivating an inactive offer changes nothing.",
            request: reason_body(),
            responses: vec![success(200, "The offer", schema::<OfferView>)],
            errors: vec![NOT_FOUND, REASON_MISSING],
            ..Operation::default()
        },
        Op::OfferReport => Operation {
            summary: "An offer's effectiveness: reservations, consumptions, conversion, what it cost",
            description: READ_AUDITED,
            responses: vec![success(200, "The report", schema::<shared::domain::offer::OfferReport>)],
            errors: vec![NOT_FOUND],
            ..Operation::default()
        },
        Op::SetSegments => Operation {
            summary: "Set the thresholds that put customers in segments",
            description: "`lapsed`: nothing completed for `lapsed_after_days`; `high_value`: spent at least \
                          `high_value_spend` on consultations (and not lapsed). Offers for a segment follow at once.",
            request: Request::Json(body(schema::<SegmentsBody>)),
            responses: vec![success(200, "The thresholds", schema::<shared::domain::offer::SegmentThresholds>)],
            errors: vec![REASON_MISSING],
            ..Operation::default()
        },
        Op::UserWallet => Operation {
            summary: "A user's balances and a page of their ledger, newest first, with its check (support)",
            description: "Reads only the page it shows (`limit` entries after `cursor`); `ledger_check` checks that \
                          page: each entry follows from the one before, and on the first page the newest agrees with \
                          the balances. Audited (`view_user_wallet`, target `user:{id}`), a user not found included.",
            params: paged(),
            responses: vec![success(200, "The wallet", schema::<UserWallet>)],
            errors: vec![NOT_FOUND, PAGE_REFUSED],
            ..Operation::default()
        },
        Op::BirthDetails => Operation {
            summary: "A customer's first name, birth details and chart basics (support)",
            description: "Audited (`view_birth_details`, target `user:{id}`), a customer not found included. Astrologers \
                          and deleted accounts are not found.",
            responses: vec![success(200, "The customer", schema::<shared::store::people::CustomerForReading>)],
            errors: vec![NOT_FOUND],
            ..Operation::default()
        },
        Op::AuditLog => Operation {
            summary: "The staff audit log, newest first, a page at a time",
            description: "Reads are in it too: this look is recorded (`view_audit_log`), after the page it answers.",
            params: paged(),
            responses: vec![success(200, "A page of entries", schema::<AuditLog>)],
            errors: vec![PAGE_REFUSED],
            ..Operation::default()
        },
    })
}
