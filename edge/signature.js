// Signed, expiring delivery URLs, checked at the edge before the cache
// (origin/security/signing.py is the reference; the origin checks again):
//
//     /images/{id}/w600.webp?k={key id}&e={expires, unix seconds}&s={signature}
//     signature = base64url(HMAC-SHA256(secret[k], "{path}\n{e}")), unpadded
//
// `refusal` backs `js_set $signature_refusal`: "" when the URL is good, else the
// reason, which nginx returns as a 403 JSON body. Keys come from the rendered
// edge_settings.js (every key id listed verifies: rotation). Profiled: the whole
// check costs ~12 us of nginx CPU per request (see loadtest/run_loadtest.py).
import settings from 'edge_settings.js';
import crypto from 'crypto';

// Equal digests of equal strings: === on the digests leaks nothing an attacker can
// steer (a constant-time compare, cheaper in njs than a loop over the characters).
function digestOf(text) {
    return crypto.createHash('sha256').update(text).digest('base64');
}

function refusal(r) {
    // raw $arg_*: key ids, unix seconds and base64url need no decoding
    var v = r.variables;
    var kid = v.arg_k, e = v.arg_e, given = v.arg_s;
    if (!kid || !e || !given) {
        return 'this URL must be signed (k, e and s parameters)';
    }
    var secret = settings.keys[kid];
    if (typeof secret !== 'string') {
        return 'unknown or retired signing key';
    }
    var expires = Number(e);
    if (e.length > 12 || !Number.isInteger(expires) || String(expires) !== e) {
        return 'malformed expiry';
    }
    var mac = crypto.createHmac('sha256', secret).update(r.uri + '\n' + e).digest('base64url');
    if (digestOf(mac) !== digestOf(given)) {
        return 'signature does not match';
    }
    if (expires < Date.now() / 1000) {
        return 'signed URL has expired';
    }
    return '';
}

export default {refusal};
