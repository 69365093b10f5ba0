//! Every HTTP function's route table, by binary name: the routes the tests walk (here, not
//! in the harness library: the function crates are the tests' dev-dependencies, which the
//! library cannot see).

/// A table as (route key, access), whatever the function's `Op` type.
pub fn table<H>(routes: &[shared::http::Route<H>]) -> Vec<(&'static str, shared::http::Access)> {
    routes.iter().map(|r| (r.key, r.access)).collect()
}

/// Every HTTP function's table, by binary name.
pub fn route_tables() -> std::collections::BTreeMap<&'static str, Vec<(&'static str, shared::http::Access)>> {
    std::collections::BTreeMap::from([
        ("otp-signup", table(otp_signup::ROUTES)),
        ("profile", table(profile::ROUTES)),
        ("kyc-initiate", table(kyc_initiate::ROUTES)),
        ("digio-webhook", table(digio_webhook::ROUTES)),
        ("call-session", table(call_session::ROUTES)),
        ("top-up", table(top_up::ROUTES)),
        ("astrologer-profile", table(astrologer_profile::ROUTES)),
        ("catalogue", table(catalogue::ROUTES)),
        ("book", table(book::ROUTES)),
        ("operations", table(operations::ROUTES)),
        ("inbox", table(inbox::ROUTES)),
        ("review", table(review::ROUTES)),
    ])
}
