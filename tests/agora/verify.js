// The oracle for shared/tests/agora_oracle.rs: Agora's own token library (agora-token, pinned
// in package-lock.json, installed by scripts/setup.sh) reads tokens we built in Rust.
//
// stdin: JSON lines {"token": "007...", "app_certificate": "..."}. stdout: one JSON line each,
// what AccessToken2 parsed (app id, issue_ts, expire, salt, the RTC service's channel, uid and
// privileges), `signature_valid` (AccessToken2.verifySignature under the given certificate) and
// `payload_identical`: whether the library, building a token from the parsed fields and that
// certificate, packs the very bytes the token holds (before compression).
'use strict'

const readline = require('readline')
const zlib = require('zlib')

let AccessToken2, ServiceRtc, kRtcServiceType
try {
    ;({ AccessToken2, ServiceRtc, kRtcServiceType } = require('agora-token/src/AccessToken2'))
} catch (error) {
    console.error(`verify.js: agora-token is not installed (run scripts/setup.sh): ${error.message}`)
    process.exit(2)
}

// The uncompressed record of a 007 token.
const payload = token => zlib.inflateSync(Buffer.from(token.substring(3), 'base64'))

function verify({ token, app_certificate }) {
    const parsed = new AccessToken2('', '', 0, 0)
    if (!parsed.from_string(token)) {
        return { parsed: false, signature_valid: false, payload_identical: false }
    }
    const rtc = parsed.getServices(kRtcServiceType)
    const service = rtc[0]
    const privileges = service ? { ...service.__privileges } : {}

    // The same grant, built by the library itself.
    const rebuilt = new AccessToken2(parsed.appId.toString(), app_certificate, parsed.issueTs, parsed.expire)
    rebuilt.salt = parsed.salt
    if (service) {
        const again = new ServiceRtc(service.__channel_name.toString(), service.__uid.toString())
        for (const [privilege, expire] of Object.entries(privileges)) {
            again.add_privilege(Number(privilege), expire)
        }
        rebuilt.add_service(again)
    }
    const built = rebuilt.build()

    return {
        parsed: true,
        app_id: parsed.appId.toString(),
        issue_ts: parsed.issueTs,
        expire: parsed.expire,
        salt: parsed.salt,
        service_types: parsed.services.map(s => s.service_type()),
        channel: service ? service.__channel_name.toString() : null,
        uid: service ? service.__uid.toString() : null,
        privileges,
        signature_valid: parsed.verifySignature(app_certificate),
        payload_identical: built !== '' && payload(built).equals(payload(token)),
    }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
lines.on('line', line => {
    if (line.trim() !== '') {
        process.stdout.write(`${JSON.stringify(verify(JSON.parse(line)))}\n`)
    }
})
