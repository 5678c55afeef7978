#!/usr/bin/python3
"""Independent JWT checks for t/jwt.t and t/simplejwt.t: Debian's
python3-jwt (PyJWT 2.x), never the module's own code.

usage: jwt_verify.py < ops.json > results.json

ops.json is a JSON array of operations; the answer is a JSON array with
one result per operation, in order.  An operation that fails gives
{"ok": false, "error": "<exception class>: <message>"}.

  {"op": "verify", "token": T, "jwks": {"keys": [..]} | "key_file": F,
   "algorithms": ["ES256"], "audience": A | null, "issuer": I | null}
      Verifies T with PyJWT: with the JWKS key whose kid is the token's
      (jwt.PyJWK(jwk).key), or with the bytes of F as an HS256 secret.
      exp, iat and jti must be present; aud and iss are checked when
      given (aud null: aud is not checked).
      -> {"ok": true, "header": {..}, "claims": {..}}

  {"op": "sign", "header": {..}, "claims": {..}, "alg": "ES256" |
   "EdDSA" | "RS256" | "HS256" | "none", "key_file": F}
      Builds a JWS by hand (the header exactly as given, so it may lie
      about alg or kid).  The signature is made with alg: with the
      private key in F, or for HS256 with the raw bytes of F as the
      secret, whatever they are (a public key PEM gives the classic
      algorithm-confusion forgery); "none" gives an empty signature.
      -> {"ok": true, "token": ".."}
"""

import base64
import hashlib
import hmac
import json
import sys

import jwt
from jwt.algorithms import get_default_algorithms


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def verify(op):
    token = op["token"]
    algorithms = op["algorithms"]
    if "jwks" in op:
        kid = jwt.get_unverified_header(token).get("kid")
        found = [k for k in op["jwks"].get("keys", []) if k.get("kid") == kid]
        if len(found) != 1:
            raise LookupError("%d JWKS keys with kid %r" % (len(found), kid))
        key = jwt.PyJWK(found[0]).key
    else:
        key = read_bytes(op["key_file"])
    options = {"require": ["exp", "iat", "jti"]}
    kwargs = {}
    if op.get("audience") is None:
        options["verify_aud"] = False
    else:
        kwargs["audience"] = op["audience"]
    if op.get("issuer") is not None:
        kwargs["issuer"] = op["issuer"]
    claims = jwt.decode(token, key, algorithms=algorithms, options=options,
                        **kwargs)
    return {"ok": True, "header": jwt.get_unverified_header(token),
            "claims": claims}


# The order of P-256.  The module signs ES256 with the low s and refuses a
# high one (one encoding per token); cryptography picks either, so a
# forgery meant to be valid is brought to the low s ("high_s": true keeps
# or makes the high one, to show it is refused).
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def low_s(sig):
    r, s = sig[:32], int.from_bytes(sig[32:], "big")
    if s > P256_N // 2:
        s = P256_N - s
    return r + s.to_bytes(32, "big")


def high_s(sig):
    r, s = sig[:32], int.from_bytes(low_s(sig)[32:], "big")
    return r + (P256_N - s).to_bytes(32, "big")


def sign(op):
    signing_input = (b64url(compact(op["header"])) + "."
                     + b64url(compact(op["claims"]))).encode("ascii")
    alg = op["alg"]
    if alg == "none":
        sig = b""
    elif alg == "HS256":
        sig = hmac.new(read_bytes(op["key_file"]), signing_input,
                       hashlib.sha256).digest()
    else:
        impl = get_default_algorithms()[alg]
        key = impl.prepare_key(read_bytes(op["key_file"]))
        sig = impl.sign(signing_input, key)
        if alg == "ES256":
            sig = high_s(sig) if op.get("high_s") else low_s(sig)
    return {"ok": True, "token": signing_input.decode("ascii") + "."
            + b64url(sig)}


def main():
    ops = json.load(sys.stdin)
    out = []
    for op in ops:
        try:
            out.append({"verify": verify, "sign": sign}[op["op"]](op))
        except Exception as e:  # reported to the .t, which asserts on it
            out.append({"ok": False,
                        "error": "%s: %s" % (type(e).__name__, e)})
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
