//! The ledger invariant of every wallet and earnings account, asserted over a whole table
//! (the tests of single money paths; `money` checks every money invariant after a run).

use aws_sdk_dynamodb::types::AttributeValue;
use infra::LocalStack;

use crate::table::all_items;

fn num(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> rust_decimal::Decimal {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a Number in {item:?}"))
}

/// The ledger invariant, checked over the whole table: for every wallet, its ledger entries
/// (in key order) sum to its real and bonus balances, each entry's balances-after are the
/// running sums, and nothing is negative; then the same through `shared::domain::wallet::check_ledger`
/// (which also checks posting order and the lifetime totals). Returns the number of ledger entries checked.
pub async fn assert_ledger_balances(stack: &LocalStack) -> usize {
    assert_ledgers_in(stack, &all_items(stack).await).await
}

/// [`assert_ledger_balances`] over `items`, a scan of the whole table already made.
pub async fn assert_ledgers_in(
    stack: &LocalStack,
    items: &[std::collections::HashMap<String, AttributeValue>],
) -> usize {
    use rust_decimal::Decimal;
    let s = |i: &std::collections::HashMap<String, AttributeValue>, k: &str| {
        i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
    };
    let mut checked = 0;
    for wallet in items.iter().filter(|i| s(i, "SK") == "WALLET") {
        // A customer wallet (`USER#`, ledger `LEDGER#`) or an astrologer's earnings
        // (`EARNINGS#`, ledger `EARNLEDGER#`).
        let pk = s(wallet, "PK");
        let (user, ledger, account) = match pk.split_once('#') {
            Some(("USER", u)) => {
                (u.to_owned(), format!("LEDGER#{u}"), shared::store::Account::Wallet(shared::UserId::parse(u).unwrap()))
            }
            Some(("EARNINGS", u)) => (
                u.to_owned(),
                format!("EARNLEDGER#{u}"),
                shared::store::Account::Earnings(shared::UserId::parse(u).unwrap()),
            ),
            _ => panic!("a wallet under {pk}"),
        };
        let mut entries: Vec<_> = items.iter().filter(|i| s(i, "PK") == ledger).collect();
        entries.sort_by_key(|i| s(i, "SK"));
        let (mut real, mut bonus) = (Decimal::ZERO, Decimal::ZERO);
        for e in &entries {
            real += num(e, "real_delta");
            bonus += num(e, "bonus_delta");
            assert_eq!(num(e, "real_balance_after"), real, "real balance after {}", s(e, "SK"));
            assert_eq!(num(e, "bonus_balance_after"), bonus, "bonus balance after {}", s(e, "SK"));
            assert!(real >= Decimal::ZERO && bonus >= Decimal::ZERO, "negative balance at {}", s(e, "SK"));
        }
        assert_eq!(num(wallet, "real_cash"), real, "real cash of {user} is its ledger's sum");
        assert_eq!(num(wallet, "bonus_cash"), bonus, "bonus cash of {user} is its ledger's sum");
        for field in ["real_cash", "bonus_cash", "total_credited", "total_debited"] {
            assert!(num(wallet, field) >= Decimal::ZERO, "{field} of {user} is negative");
        }
        // The operators' check, through the store, agrees.
        let store = shared::store::Store::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.table_name());
        let (w, ledger) = store.wallet_with_ledger(&account).await.unwrap().unwrap();
        assert_eq!(ledger.len(), entries.len());
        shared::domain::wallet::check_ledger(&w, &ledger).unwrap_or_else(|e| panic!("ledger of {pk}: {e}"));
        checked += entries.len();
    }
    checked
}
