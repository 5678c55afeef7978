#!/usr/bin/python3
"""Debian's python3-authlib as an OpenID Connect relying party (t/oidc.t):
its requests OAuth2Session builds the authorization request (nonce,
PKCE S256) and redeems the code; authlib.jose checks the id_token against
the JWKS with authlib.oidc.core.CodeIDToken (iss, aud, exp, iat, nonce,
at_hash, auth_time); then userinfo with the session's token.

usage: python3 oidc_authlib.py < config.json

Prints "result <json>" per flow with "lib" and "flow", then "done".
"""

import json
import re
import sys
import time
import traceback
import urllib.parse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken


def result(flow, **kw):
    kw.update(lib="authlib", flow=flow)
    print("result " + json.dumps(kw, sort_keys=True), flush=True)


def field(page, name):
    m = re.search(r'name="%s" value="([^"]*)"' % name, page)
    return m.group(1) if m else None


class Browser:
    """signs in and consents on the module's pages, keeping its cookies"""

    def __init__(self, cfg):
        self.cfg = cfg
        self.http = requests.Session()

    def authorize(self, url):
        seen = []
        r = self.http.get(url, allow_redirects=False)
        for _ in range(4):
            if r.status_code != 200:
                break
            csrf = field(r.text, "csrf_token")
            if "<h1>Sign in" in r.text:
                seen.append("login")
                r = self.http.post(url, data={
                    "action": "login", "csrf_token": csrf,
                    "username": self.cfg["username"],
                    "password": self.cfg["password"]}, allow_redirects=False)
                url = urllib.parse.urljoin(url, r.headers["Location"])
                r = self.http.get(url, allow_redirects=False)
            elif "<h1>Authorize" in r.text:
                seen.append("consent")
                r = self.http.post(url, data={"action": "allow",
                                              "csrf_token": csrf},
                                   allow_redirects=False)
            else:
                break
        if r.status_code != 303:
            raise RuntimeError("no redirect: %d %s" % (r.status_code,
                                                        r.text[:200]))
        return seen, r.headers["Location"]


def main():
    cfg = json.load(sys.stdin)
    app = cfg["app"]
    meta = requests.get(cfg["issuer"]
                        + "/.well-known/openid-configuration").json()
    keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"]).json())
    browser = Browser(cfg)

    def code_flow(expect_nonce=None, **extra):
        session = OAuth2Session(app["client_id"], app["client_secret"],
                                scope="openid profile email",
                                redirect_uri=app["redirect_uri"],
                                code_challenge_method="S256")
        verifier = generate_token(48)
        nonce = generate_token(20)
        url, state = session.create_authorization_url(
            meta["authorization_endpoint"], nonce=nonce,
            code_verifier=verifier, **extra)
        seen, back = browser.authorize(url)
        token = session.fetch_token(meta["token_endpoint"],
                                    authorization_response=back,
                                    code_verifier=verifier)
        claims = jwt.decode(
            token["id_token"], keys, claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True,
                                    "value": meta["issuer"]}},
            claims_params={"nonce": expect_nonce or nonce,
                           "client_id": app["client_id"],
                           "access_token": token["access_token"]})
        claims.validate(leeway=5)
        return session, token, claims, seen

    flows = {}

    def first():
        session, token, claims, seen = code_flow()
        flows["first"] = (session, token, claims)
        return {"seen": seen, "sub": claims["sub"], "aud": claims["aud"],
                "nonce": bool(claims.get("nonce")),
                "at_hash": bool(claims.get("at_hash")),
                "auth_time": claims.get("auth_time")}

    def userinfo():
        session, token, claims = flows["first"]
        u = session.get(meta["userinfo_endpoint"]).json()
        return {"sub": u.get("sub"), "email": u.get("email"),
                "preferred_username": u.get("preferred_username"),
                "same_sub": u.get("sub") == claims["sub"]}

    def nonce_mismatch():
        try:
            code_flow(expect_nonce="not-the-nonce-sent")
            return {"error": None}
        except Exception as e:  # authlib's InvalidClaimError
            return {"thrown": type(e).__name__, "message": str(e)}

    def wrong_audience():
        _, token, _ = flows["first"]
        try:
            jwt.decode(token["id_token"], keys, claims_cls=CodeIDToken,
                       claims_params={"client_id": "another-client",
                                      "access_token": token["access_token"]}
                       ).validate(leeway=5)
            return {"error": None}
        except Exception as e:
            return {"thrown": type(e).__name__, "message": str(e)}

    def tampered_at_hash():
        _, token, _ = flows["first"]
        try:
            jwt.decode(token["id_token"], keys, claims_cls=CodeIDToken,
                       claims_params={"client_id": app["client_id"],
                                      "access_token": "another-token"}
                       ).validate(leeway=5)
            return {"error": None}
        except Exception as e:
            return {"thrown": type(e).__name__, "message": str(e)}

    def prompt_none():
        _, _, claims, seen = code_flow(prompt="none")
        return {"seen": seen, "sub": claims["sub"]}

    def max_age():
        time.sleep(2.1)
        _, _, claims, seen = code_flow(max_age="1")
        return {"seen": seen, "fresh": time.time() - claims["auth_time"] <= 3}

    for name, fn in [("code_flow", first), ("userinfo", userinfo),
                     ("nonce_mismatch", nonce_mismatch),
                     ("wrong_audience", wrong_audience),
                     ("tampered_at_hash", tampered_at_hash),
                     ("prompt_none", prompt_none), ("max_age", max_age)]:
        try:
            out = fn()
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            out = {"exception": "%s: %s" % (type(e).__name__, e)}
        result(name, **out)
    print("done", flush=True)


if __name__ == "__main__":
    main()
