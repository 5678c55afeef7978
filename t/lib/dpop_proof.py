#!/usr/bin/python3
"""Makes DPoP proofs (RFC 9449) for t/dpop.t, with python3-cryptography.

  dpop_proof.py --key FILE [--kty ec|rsa|ed25519] --htm POST --htu URL
                [--iat N] [--jti J] [--token T (ath)] [--nonce N]
                [--count N] [--jkt] [--s low|high]
                [--alg A] [--typ T] [--private-jwk] [--sign-key FILE]

The key file (a PEM private key) is made if missing.  Prints one proof per
line (--count of them, each with a fresh jti), or with --jkt the key's
RFC 7638 thumbprint.  --iat may be fractional (a NumericDate, RFC 7519
2).  An ES256 signature's s is the one the library picked, low or high,
as real clients send it; --s low or --s high makes it that one of s and
n - s (both verify).  The --alg, --typ, --private-jwk and --sign-key
options make bad proofs: another algorithm in the header (HS256 signs
with the public key's bytes as the secret, none has no signature), a
private member in the jwk, a signature by another key.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_or_make(path, kty):
    if os.path.exists(path):
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), None)
    if kty == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif kty == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return key


def int_bytes(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return n.to_bytes(size, "big")


def jwk_of(key, private=False):
    if isinstance(key, ec.EllipticCurvePrivateKey):
        pub = key.public_key().public_numbers()
        jwk = {"crv": "P-256", "kty": "EC",
               "x": b64(int_bytes(pub.x, 32)), "y": b64(int_bytes(pub.y, 32))}
        if private:
            jwk["d"] = b64(int_bytes(key.private_numbers().private_value, 32))
        return jwk, "ES256"
    if isinstance(key, rsa.RSAPrivateKey):
        pub = key.public_key().public_numbers()
        jwk = {"e": b64(int_bytes(pub.e)), "kty": "RSA", "n": b64(int_bytes(pub.n))}
        if private:
            jwk["d"] = b64(int_bytes(key.private_numbers().d))
        return jwk, "RS256"
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": b64(raw)}
    if private:
        jwk["d"] = b64(key.private_bytes(serialization.Encoding.Raw,
                                         serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption()))
    return jwk, "EdDSA"


def thumbprint(jwk):
    members = {k: jwk[k] for k in sorted(jwk) if k in ("crv", "e", "kty", "n", "x", "y")}
    text = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64(hashlib.sha256(text.encode()).digest())


def sign(key, alg, data, jwk, which_s=None):
    if alg == "none":
        return b""
    if alg == "HS256":
        return hmac.new(json.dumps(jwk).encode(), data, hashlib.sha256).digest()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
        if (which_s == "low" and s > n // 2) or (which_s == "high" and s <= n // 2):
            s = n - s  # the twin: (r, n - s) verifies too
        return int_bytes(r, 32) + int_bytes(s, 32)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def proof(args, key, signer):
    jwk, alg = jwk_of(key, args.private_jwk)
    header = {"typ": args.typ, "alg": args.alg or alg, "jwk": jwk}
    claims = {"jti": args.jti or b64(os.urandom(16)), "htm": args.htm, "htu": args.htu,
              "iat": int(time.time()) if args.iat is None else args.iat}
    if args.token:
        claims["ath"] = b64(hashlib.sha256(args.token.encode()).digest())
    if args.nonce:
        claims["nonce"] = args.nonce
    data = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
    return data.decode() + "." + b64(sign(signer, args.alg or alg, data, jwk, args.s))


def numeric_date(text):
    """An integer as an int, anything else (1700000000.5) as a float."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--key", required=True)
    p.add_argument("--kty", default="ec")
    p.add_argument("--htm", default="POST")
    p.add_argument("--htu", default="")
    p.add_argument("--iat", type=numeric_date)
    p.add_argument("--jti")
    p.add_argument("--token")
    p.add_argument("--nonce")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--jkt", action="store_true")
    p.add_argument("--alg")
    p.add_argument("--typ", default="dpop+jwt")
    p.add_argument("--private-jwk", action="store_true")
    p.add_argument("--sign-key")
    p.add_argument("--s", choices=("low", "high"))
    args = p.parse_args()
    key = load_or_make(args.key, args.kty)
    if args.jkt:
        print(thumbprint(jwk_of(key)[0]))
        return
    signer = load_or_make(args.sign_key, args.kty) if args.sign_key else key
    for _ in range(args.count):
        print(proof(args, key, signer))


if __name__ == "__main__":
    sys.exit(main())
