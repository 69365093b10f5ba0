//! Our Agora RTC tokens, read by Agora's own library: `agora-token` from npm, pinned in
//! tests/agora/package-lock.json and installed by scripts/setup.sh, through
//! tests/agora/verify.js. It must read back every field we put in, verify our signature under
//! our certificate (and not under another), and pack the very same record itself. Without
//! Node.js or the installed package this test fails: it never passes unchecked.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use shared::domain::booking::BookingId;
use shared::domain::booking::call::channel_name;
use shared::providers::agora::{RtcGrant, rtc_token, uid_of};

const VERIFY_JS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/agora/verify.js");
const INSTALLED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/agora/node_modules/agora-token/package.json");
const SETUP: &str = "run scripts/setup.sh (it installs Node.js's agora-token into tests/agora)";

const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
const CERTIFICATE: &str = "5CFd2fd1755d40ecb72977518be15d3b";
/// Well-formed (Agora checks a certificate is 32 hex characters before verifying), but not ours.
const OTHER_CERTIFICATE: &str = "5CFd2fd1755d40ecb72977518be15d3c";

/// Agora's reading of each `(token, certificate)`, one JSON object each.
fn agora_reads(checks: &[(String, &str)]) -> Vec<Value> {
    assert!(Path::new(INSTALLED).is_file(), "agora-token is not installed at {INSTALLED}: {SETUP}");
    let mut node = Command::new("node")
        .arg(VERIFY_JS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node` ({e}): install Node.js and {SETUP}"));
    let mut input = String::new();
    for (token, app_certificate) in checks {
        input.push_str(&json!({ "token": token, "app_certificate": app_certificate }).to_string());
        input.push('\n');
    }
    node.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = node.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "node {VERIFY_JS} failed ({}): {}\n{SETUP}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let reads: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(reads.len(), checks.len(), "one answer per token");
    reads
}

#[test]
fn agoras_library_reads_and_verifies_our_tokens() {
    let booking_channel = channel_name(&BookingId::parse("AT12345678").unwrap());
    // Agora's longest channel name, 64 bytes.
    let longest_channel = "B".repeat(64);
    let grants = [
        RtcGrant {
            app_id: APP_ID,
            channel: &booking_channel,
            uid: uid_of("user-1"),
            issued_at: 1_760_000_000,
            expires_at: 1_760_003_600,
            salt: 1,
        },
        RtcGrant {
            app_id: APP_ID,
            channel: &longest_channel,
            uid: u32::MAX,
            issued_at: 1_760_000_000,
            expires_at: 1_760_000_001,
            salt: u32::MAX,
        },
        RtcGrant {
            app_id: "0123456789abcdef0123456789ABCDEF",
            channel: "7d72365eb983485397e3e3f9d460bdda",
            uid: 2_882_341_273,
            issued_at: 1_111_111,
            expires_at: 1_111_711,
            salt: 0x0102_0304,
        },
        RtcGrant {
            app_id: APP_ID,
            channel: "ak-AT00000001",
            uid: 1,
            issued_at: u32::MAX - 86_400,
            expires_at: u32::MAX,
            salt: 99_999_999,
        },
        // Uid 0 ("any uid") is the empty string; an expiry already past, 0 seconds.
        RtcGrant {
            app_id: APP_ID,
            channel: "ak-AT00000002",
            uid: 0,
            issued_at: 1_760_000_000,
            expires_at: 1_700_000_000,
            salt: 7,
        },
    ];
    let tokens: Vec<String> = grants.iter().map(|grant| rtc_token(CERTIFICATE, grant)).collect();
    let checks: Vec<(String, &str)> =
        tokens.iter().flat_map(|token| [(token.clone(), CERTIFICATE), (token.clone(), OTHER_CERTIFICATE)]).collect();
    let reads = agora_reads(&checks);

    for (i, grant) in grants.iter().enumerate() {
        let (ours, other) = (&reads[2 * i], &reads[2 * i + 1]);
        let ttl = grant.expires_at.saturating_sub(grant.issued_at);
        let uid = if grant.uid == 0 { String::new() } else { grant.uid.to_string() };
        let expected = json!({
            "parsed": true,
            "app_id": grant.app_id,
            "issue_ts": grant.issued_at,
            "expire": ttl,
            "salt": grant.salt,
            "service_types": [1],
            "channel": grant.channel,
            "uid": uid,
            // join channel, publish audio, publish video, publish data stream
            "privileges": { "1": ttl, "2": ttl, "3": ttl, "4": ttl },
            "signature_valid": true,
            "payload_identical": true,
        });
        assert_eq!(ours, &expected, "token {i}: {}", tokens[i]);
        assert_eq!(other["parsed"], true, "token {i}");
        assert_eq!(other["signature_valid"], false, "token {i} verified under another certificate");
    }
}
