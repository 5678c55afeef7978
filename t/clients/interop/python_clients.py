#!/usr/bin/python3
"""Debian's Python client libraries against the module (t/interop.t):
python3-requests-oauthlib (OAuth2Session over oauthlib's clients) and
python3-authlib (authlib.integrations.requests_client.OAuth2Session),
every flow each has, with the library's own calls.

usage: OAUTHLIB_INSECURE_TRANSPORT=1 python_clients.py < config.json

Prints one line per flow, "result <json>" with "lib" and "flow", then
"done"; an unexpected exception becomes {"exception": "<class>: <text>"}.
The login and consent pages are driven as in t/clients/oauthlib_flows.py
(user_agent_authorize, imported from there).
"""

import json
import os
import secrets
import sys
import traceback
import urllib.parse

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session as Authlib
from oauthlib.oauth2 import (BackendApplicationClient,
                             LegacyApplicationClient, WebApplicationClient)
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from oauthlib_flows import user_agent_authorize  # noqa: E402


def result(lib, flow, **kw):
    kw.update(lib=lib, flow=flow)
    print("result " + json.dumps(kw, sort_keys=True), flush=True)


def run_flows(lib, flows):
    for flow, fn in flows:
        try:
            out = fn()
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            out = {"exception": "%s: %s" % (type(e).__name__, e),
                   "error": getattr(e, "error", None)}
        result(lib, flow, **out)


def resource(cfg, token):
    return requests.get(cfg["base"] + "/api/v1/", headers={
        "Authorization": "Bearer " + token}).status_code


def active(cfg, app, token):
    """introspection by hand, as the token's own client"""
    return requests.post(cfg["base"] + "/o/introspect/", data={
        "token": token}, auth=HTTPBasicAuth(
            app["client_id"], app["client_secret"])).json()["active"]


def code_of(location):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)


def requests_oauthlib_flows(cfg):
    apps = cfg["apps"]["requests-oauthlib"]
    token_url = cfg["base"] + "/o/token/"
    st = {}

    def cc():
        cc = apps["cc"]
        s = OAuth2Session(client=BackendApplicationClient(
            client_id=cc["client_id"]), scope=["read"])
        # requests-oauthlib 1.3 sends the session's scope only when
        # fetch_token is given it too (else oauthlib warns of a change)
        t = s.fetch_token(token_url, scope=["read"], auth=HTTPBasicAuth(
            cc["client_id"], cc["client_secret"]))
        return {"token": bool(t.get("access_token")),
                "resource": s.get(cfg["base"] + "/api/v1/").status_code}

    def cc_wrong():
        cc = apps["cc"]
        s = OAuth2Session(client=BackendApplicationClient(
            client_id=cc["client_id"]))
        try:
            s.fetch_token(token_url, auth=HTTPBasicAuth(cc["client_id"],
                                                        "wrong"))
            return {"error": None}
        except Exception as e:
            return {"error": getattr(e, "error", repr(e))}

    def password():
        pw = apps["pw"]
        s = OAuth2Session(client=LegacyApplicationClient(
            client_id=pw["client_id"]), scope=["read"])
        t = s.fetch_token(token_url, username=cfg["username"],
                          password=cfg["password"], scope=["read"],
                          auth=HTTPBasicAuth(
                              pw["client_id"], pw["client_secret"]))
        return {"token": bool(t.get("access_token")),
                "refresh": "refresh_token" in t,
                "resource": resource(cfg, t["access_token"])}

    def code_flow(state):
        web = apps["web"]
        client = WebApplicationClient(web["client_id"])
        s = OAuth2Session(client=client, redirect_uri=web["redirect_uri"],
                          scope=["read", "write"], state=state)
        verifier = client.create_code_verifier(64)
        url, _ = s.authorization_url(
            cfg["base"] + "/o/authorize/", code_challenge_method="S256",
            code_challenge=client.create_code_challenge(verifier, "S256"))
        h1, location = user_agent_authorize(url, cfg["username"],
                                            cfg["password"])
        # fetch_token checks the state against the session's (oauthlib)
        t = s.fetch_token(token_url, authorization_response=location,
                          code_verifier=verifier, auth=HTTPBasicAuth(
                              web["client_id"], web["client_secret"]))
        st.update(session=s, location=location, verifier=verifier,
                  token=t, consent=h1)

    def code_pkce():
        code_flow("st-requests-oauthlib")
        return {"consent": st["consent"],
                "state_ok": code_of(st["location"])["state"]
                == ["st-requests-oauthlib"],
                "refresh": "refresh_token" in st["token"],
                "resource": st["session"].get(
                    cfg["base"] + "/api/v1/").status_code}

    def code_replay():
        web = apps["web"]
        s = OAuth2Session(client=WebApplicationClient(web["client_id"]),
                          redirect_uri=web["redirect_uri"])
        try:
            s.fetch_token(token_url, code=code_of(st["location"])["code"][0],
                          code_verifier=st["verifier"], auth=HTTPBasicAuth(
                              web["client_id"], web["client_secret"]))
            return {"error": None}
        except Exception as e:
            return {"error": getattr(e, "error", repr(e))}

    def refresh():
        code_flow("st-requests-oauthlib-2")
        web = apps["web"]
        old = st["token"]["refresh_token"]
        t = st["session"].refresh_token(token_url, auth=HTTPBasicAuth(
            web["client_id"], web["client_secret"]))
        st["token"] = t
        return {"rotated": t.get("refresh_token") not in (None, old),
                "resource": resource(cfg, t["access_token"])}

    def revoke():
        # oauthlib's own revocation request (RFC 7009), sent by the session
        web = apps["web"]
        at = st["token"]["access_token"]
        client = st["session"]._client
        url, headers, body = client.prepare_token_revocation_request(
            cfg["base"] + "/o/revoke_token/", at)
        r = st["session"].post(url, data=body, headers=headers,
                               auth=HTTPBasicAuth(web["client_id"],
                                                  web["client_secret"]),
                               withhold_token=True)
        return {"error": None if r.ok else r.status_code,
                "resource_after": resource(cfg, at),
                "active_after": active(cfg, web, at)}

    run_flows("requests-oauthlib", [
        ("client_credentials", cc),
        ("client_credentials_wrong_secret", cc_wrong),
        ("password", password),
        ("code_pkce", code_pkce),
        ("code_replay", code_replay),
        ("refresh", refresh),
        ("revoke", revoke),
    ])


def authlib_flows(cfg):
    apps = cfg["apps"]["authlib"]
    base = cfg["base"]
    token_url = base + "/o/token/"
    st = {}

    def session(app, secret=None, **kw):
        return Authlib(app["client_id"], secret or app["client_secret"],
                       token_endpoint_auth_method="client_secret_basic", **kw)

    def cc():
        s = session(apps["cc"], scope="read")
        t = s.fetch_token(token_url, grant_type="client_credentials")
        return {"token": bool(t.get("access_token")),
                "resource": s.get(base + "/api/v1/").status_code}

    def cc_wrong():
        try:
            session(apps["cc"], "wrong", scope="read").fetch_token(
                token_url, grant_type="client_credentials")
            return {"error": None}
        except OAuthError as e:
            return {"error": e.error}

    def password():
        s = session(apps["pw"], scope="read")
        t = s.fetch_token(token_url, username=cfg["username"],
                          password=cfg["password"])
        return {"token": bool(t.get("access_token")),
                "refresh": "refresh_token" in t,
                "resource": resource(cfg, t["access_token"])}

    def code_flow(state):
        web = apps["web"]
        s = session(web, scope="read write", redirect_uri=web["redirect_uri"],
                    code_challenge_method="S256")
        verifier = secrets.token_urlsafe(48)
        url, _ = s.create_authorization_url(base + "/o/authorize/",
                                            state=state,
                                            code_verifier=verifier)
        h1, location = user_agent_authorize(url, cfg["username"],
                                            cfg["password"])
        t = s.fetch_token(token_url, authorization_response=location,
                          state=state, code_verifier=verifier)
        st.update(session=s, location=location, verifier=verifier,
                  token=t, consent=h1)

    def code_pkce():
        code_flow("st-authlib")
        return {"consent": st["consent"],
                "state_ok": code_of(st["location"])["state"]
                == ["st-authlib"],
                "refresh": "refresh_token" in st["token"],
                "resource": st["session"].get(base + "/api/v1/").status_code}

    def code_replay():
        web = apps["web"]
        s = session(web, redirect_uri=web["redirect_uri"])
        try:
            s.fetch_token(token_url, code=code_of(st["location"])["code"][0],
                          code_verifier=st["verifier"])
            return {"error": None}
        except OAuthError as e:
            return {"error": e.error}

    def refresh():
        code_flow("st-authlib-2")
        old = st["token"]["refresh_token"]
        t = st["session"].refresh_token(token_url, refresh_token=old)
        st["token"] = t
        return {"rotated": t.get("refresh_token") not in (None, old),
                "resource": resource(cfg, t["access_token"])}

    def introspect():
        r = st["session"].introspect_token(base + "/o/introspect/",
                                           token=st["token"]["access_token"])
        j = r.json()
        return {"active": j.get("active"),
                "client_id_ok": j.get("client_id") == apps["web"]["client_id"]}

    def revoke():
        at = st["token"]["access_token"]
        r = st["session"].revoke_token(base + "/o/revoke_token/", token=at,
                                       token_type_hint="access_token")
        return {"error": None if r.ok else r.status_code,
                "resource_after": resource(cfg, at),
                "active_after": active(cfg, apps["web"], at)}

    run_flows("authlib", [
        ("client_credentials", cc),
        ("client_credentials_wrong_secret", cc_wrong),
        ("password", password),
        ("code_pkce", code_pkce),
        ("code_replay", code_replay),
        ("refresh", refresh),
        ("introspect", introspect),
        ("revoke", revoke),
    ])


def main():
    if os.environ.get("OAUTHLIB_INSECURE_TRANSPORT") != "1":
        print("set OAUTHLIB_INSECURE_TRANSPORT=1 (plain http on loopback)",
              file=sys.stderr)
        return 2
    cfg = json.load(sys.stdin)
    requests_oauthlib_flows(cfg)
    authlib_flows(cfg)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
