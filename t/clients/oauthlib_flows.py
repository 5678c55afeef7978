#!/usr/bin/python3
"""A real OAuth 2 client library against the module (t/oauthlib_client.t):
Debian's python3-requests-oauthlib (OAuth2Session over oauthlib).

usage: OAUTHLIB_INSECURE_TRANSPORT=1 oauthlib_flows.py < config.json

config.json: {"base": "http://127.0.0.1:<port>", "username": ..,
"password": .., "public": {client_id, redirect_uri}, "web": {client_id,
client_secret, redirect_uri}, "legacy": {client_id, client_secret},
"backend": {client_id, client_secret}}

Runs, each with the library's own client class:
  code_pkce_public  WebApplicationClient, S256 PKCE, public client
                    (client_id in the body, no secret), then a protected
                    call, then refresh (rotation)
  code_pkce_basic   the same with a confidential client and HTTP Basic
  code_replay       fetch_token with the same code again
  password          LegacyApplicationClient (grant_type=password), refresh
  password_wrong    a wrong password
  backend           BackendApplicationClient (client_credentials)
  backend_wrong     a wrong client secret
The login and consent pages are driven with requests itself: the hidden
csrf_token field is parsed from the HTML, the cookies kept by a
requests.Session, redirects followed by hand.

Prints one line per flow, "result <json>", with what the .t asserts; an
exception becomes {"flow": .., "exception": "<class>", "error": ..}.
"""

import html.parser
import json
import os
import sys
import traceback
import urllib.parse

import requests
from oauthlib.oauth2 import (BackendApplicationClient,
                             LegacyApplicationClient, WebApplicationClient)
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session


def result(flow, **kw):
    kw["flow"] = flow
    kw["lib"] = "requests-oauthlib"
    print("result " + json.dumps(kw, sort_keys=True), flush=True)


class Fields(html.parser.HTMLParser):
    """The <input> fields of a page: name -> value, and the <h1> text."""

    def __init__(self):
        super().__init__()
        self.fields = {}
        self.h1 = ""
        self._in_h1 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""
        if tag == "h1":
            self._in_h1 = True

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data):
        if self._in_h1:
            self.h1 += data


def parse(page):
    p = Fields()
    p.feed(page)
    return p


def user_agent_authorize(url, username, password):
    """What a user does in a browser: sign in, click Authorize.  Returns
    the consent page's title (None when the user's consent was remembered
    and no page was shown) and the Location that sends the browser to the
    client's redirect_uri."""
    ua = requests.Session()
    r = ua.get(url, allow_redirects=False)
    login = parse(r.text)
    if r.status_code != 200 or "csrf_token" not in login.fields:
        raise RuntimeError("no login page: %d %s" % (r.status_code, r.text))
    r = ua.post(url, allow_redirects=False, data={
        "action": "login", "csrf_token": login.fields["csrf_token"],
        "username": username, "password": password})
    if r.status_code != 303:
        raise RuntimeError("login failed: %d %s" % (r.status_code, r.text))
    url = urllib.parse.urljoin(url, r.headers["Location"])
    r = ua.get(url, allow_redirects=False)
    if r.status_code == 303 and "code=" in r.headers.get("Location", ""):
        return None, r.headers["Location"]  # remembered consent
    consent = parse(r.text)
    if r.status_code != 200 or "csrf_token" not in consent.fields:
        raise RuntimeError("no consent page: %d %s" % (r.status_code, r.text))
    r = ua.post(url, allow_redirects=False, data={
        "action": "allow", "csrf_token": consent.fields["csrf_token"]})
    if r.status_code != 303:
        raise RuntimeError("consent failed: %d %s" % (r.status_code, r.text))
    return consent.h1.strip(), r.headers["Location"]


def code_flow(cfg, name, app, confidential):
    base = cfg["base"]
    client = WebApplicationClient(app["client_id"])
    oauth = OAuth2Session(client=client, redirect_uri=app["redirect_uri"],
                          scope=["read", "write"])
    verifier = client.create_code_verifier(64)
    challenge = client.create_code_challenge(verifier, "S256")
    url, state = oauth.authorization_url(
        base + "/o/authorize/", code_challenge=challenge,
        code_challenge_method="S256")
    h1, location = user_agent_authorize(url, cfg["username"],
                                        cfg["password"])
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    if confidential:
        # the library's default: HTTP Basic with client_id and secret
        token = oauth.fetch_token(
            base + "/o/token/", authorization_response=location,
            code_verifier=verifier, client_secret=app["client_secret"])
    else:
        token = oauth.fetch_token(
            base + "/o/token/", authorization_response=location,
            code_verifier=verifier, include_client_id=True)
    api = oauth.get(base + "/protected/")
    result(name, consent=h1, state_ok=back.get("state") == [state],
           iss=back.get("iss", [""])[0], token_type=token["token_type"],
           scope=" ".join(token["scope"]),
           refresh="refresh_token" in token, api=api.status_code)

    # refresh: a new pair (rotation), the new access token works
    old = dict(token)
    if confidential:
        new = oauth.refresh_token(base + "/o/token/", auth=HTTPBasicAuth(
            app["client_id"], app["client_secret"]))
    else:
        new = oauth.refresh_token(base + "/o/token/",
                                  client_id=app["client_id"])
    api = oauth.get(base + "/protected/")
    result(name + "_refresh", api=api.status_code,
           new_access=new["access_token"] != old["access_token"],
           new_refresh=new["refresh_token"] != old["refresh_token"],
           scope=" ".join(new["scope"]))
    return oauth, location, verifier


def run(cfg):
    base = cfg["base"]
    token_url = base + "/o/token/"

    try:
        code_flow(cfg, "code_pkce_public", cfg["public"], False)
    except Exception as e:
        fail("code_pkce_public", e)

    try:
        oauth, location, verifier = code_flow(cfg, "code_pkce_basic",
                                              cfg["web"], True)
        try:
            # the same code again, through the library
            again = OAuth2Session(client=WebApplicationClient(
                cfg["web"]["client_id"]),
                redirect_uri=cfg["web"]["redirect_uri"])
            again.fetch_token(token_url, code=urllib.parse.parse_qs(
                urllib.parse.urlsplit(location).query)["code"][0],
                code_verifier=verifier,
                client_secret=cfg["web"]["client_secret"])
            result("code_replay", error="none")
        except Exception as e:
            result("code_replay", error=getattr(e, "error", repr(e)),
                   api=oauth.get(base + "/protected/").status_code)
    except Exception as e:
        fail("code_pkce_basic", e)

    legacy = cfg["legacy"]
    try:
        oauth = OAuth2Session(client=LegacyApplicationClient(
            client_id=legacy["client_id"]))
        token = oauth.fetch_token(
            token_url, username=cfg["username"], password=cfg["password"],
            client_id=legacy["client_id"],
            client_secret=legacy["client_secret"])
        api = oauth.get(base + "/protected/")
        new = oauth.refresh_token(token_url, auth=HTTPBasicAuth(
            legacy["client_id"], legacy["client_secret"]))
        api2 = oauth.get(base + "/protected/")
        result("password", token_type=token["token_type"],
               scope=" ".join(token["scope"]),
               refresh="refresh_token" in token, api=api.status_code,
               refreshed=new["access_token"] != token["access_token"],
               api_after_refresh=api2.status_code)
    except Exception as e:
        fail("password", e)
    try:
        oauth = OAuth2Session(client=LegacyApplicationClient(
            client_id=legacy["client_id"]))
        oauth.fetch_token(token_url, username=cfg["username"],
                          password=cfg["password"] + "-wrong",
                          client_id=legacy["client_id"],
                          client_secret=legacy["client_secret"])
        result("password_wrong", error="none")
    except Exception as e:
        result("password_wrong", error=getattr(e, "error", repr(e)))

    backend = cfg["backend"]
    try:
        oauth = OAuth2Session(client=BackendApplicationClient(
            client_id=backend["client_id"]))
        token = oauth.fetch_token(token_url,
                                  client_secret=backend["client_secret"])
        api = oauth.get(base + "/protected/")
        result("backend", token_type=token["token_type"],
               scope=" ".join(token.get("scope", [])),
               refresh="refresh_token" in token, api=api.status_code)
    except Exception as e:
        fail("backend", e)
    try:
        oauth = OAuth2Session(client=BackendApplicationClient(
            client_id=backend["client_id"]))
        oauth.fetch_token(token_url, client_secret="wrong")
        result("backend_wrong", error="none")
    except Exception as e:
        result("backend_wrong", error=getattr(e, "error", repr(e)))


def fail(flow, e):
    traceback.print_exc(file=sys.stderr)
    result(flow, exception=type(e).__name__,
           error=getattr(e, "error", "") or str(e)[:300])


def main():
    if os.environ.get("OAUTHLIB_INSECURE_TRANSPORT") != "1":
        print("set OAUTHLIB_INSECURE_TRANSPORT=1 (plain http on loopback)",
              file=sys.stderr)
        return 2
    run(json.load(sys.stdin))
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
