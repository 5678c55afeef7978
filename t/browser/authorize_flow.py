#!/usr/bin/python3
"""Drives the authorization-code flow in headless Chromium
(t/authorize_browser.t).

usage: authorize_flow.py <callback-port> <username> <password> <app-name>
           <allow-url> <deny-url> <form-post-url> <fragment-url>
           [--screenshot <png>]

The URLs are authorization requests whose redirect_uri is
http://127.0.0.1:<callback-port>/cb.  This script serves that port (a tiny
HTTP listener that records every query and form it gets), signs in on the
module's login page (once with a wrong password), checks the consent page,
clicks Authorize on the first request and Deny on the second; then, the
consent remembered, follows the third (response_mode=form_post: the page's
one script posts the code) and the fourth (response_mode=fragment: the code
stays in the browser).

Prints one line per check, "ok - <name>" or "not ok - <name> # <detail>",
which authorize_browser.t turns into ok()s; "callback <raw query>" for each
request that reached the redirect_uri (a form_post's form, a fragment's
fragment); "done <n> failures" at the end.
Exit status 0 unless the browser could not be driven at all.

Debian's chromium, chromium-driver and python3-selenium; run with
/usr/bin/python3, not a python3 from a virtualenv.
"""

import http.server
import queue
import sys
import threading
import urllib.parse

import chromium
from chromium import check
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# ------------------------------------------------------------ the client

class Callback(http.server.BaseHTTPRequestHandler):
    """The client's redirect_uri: records /cb queries, frames on /frame."""

    hits = queue.Queue()
    frame_url = ""

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/cb":
            Callback.hits.put(query)
            body = b"<!DOCTYPE html><title>Client</title><h1>Callback" \
                   b" received</h1>"
        elif path == "/frame":
            # a page of another origin that tries to frame the consent page
            src = Callback.frame_url.replace("&", "&amp;").replace('"',
                                                                   "&quot;")
            body = ('<!DOCTYPE html><title>Framer</title><h1>Framer</h1>'
                    '<iframe id="f" src="%s"></iframe>' % src).encode()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        path = self.path.partition("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(length).decode("ascii", "replace")
        if path != "/cb":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        Callback.hits.put("POST " + form)
        body = b"<!DOCTYPE html><title>Client</title><h1>Form received</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_listener(port):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Callback)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ------------------------------------------------------------ the browser

class Browser:
    def __init__(self, driver):
        self.d = driver

    def text(self, tag):
        try:
            return self.d.find_element(By.TAG_NAME, tag).text
        except NoSuchElementException:
            return ""

    def fill(self, id_, value):
        el = self.d.find_element(By.ID, id_)
        el.clear()
        el.send_keys(value)

    def click_and_wait(self, el):
        chromium.click_and_wait(self.d, el)

    def button(self, label):
        for b in self.d.find_elements(By.CSS_SELECTOR, "main form button"):
            if b.text.strip() == label:
                return b
        raise NoSuchElementException("no button " + label)

    def login(self, username, password):
        self.fill("username", username)
        self.fill("password", password)
        self.click_and_wait(self.button("Sign in"))

    def log(self):
        try:
            return [e["message"] for e in self.d.get_log("browser")]
        except Exception:
            return []


def next_hit(timeout=10):
    try:
        return Callback.hits.get(timeout=timeout)
    except queue.Empty:
        return None


def run(b, port, username, password, app, urls, screenshot):
    allow_url, deny_url, form_post_url, fragment_url = urls
    d = b.d
    cb = "http://127.0.0.1:%d/cb" % port

    # the authorization request without a session: the login page
    d.get(allow_url)
    check(b.text("h1") == "Sign in", "the authorization request shows the "
          "login page", b.text("h1"))
    check(d.title == "Sign in", "the login page has a title", d.title)
    check(app in b.text("main"), "the login page names the application",
          b.text("main"))
    labels = [l.text for l in d.find_elements(By.CSS_SELECTOR, "label")]
    check(labels == ["Username", "Password"],
          "the login fields have labels", labels)
    active = d.switch_to.active_element.get_attribute("id")
    check(active == "username", "the username field has the focus", active)

    # a wrong password: the page again, with the error
    b.login(username, password + "-wrong")
    check(b.text("h1") == "Sign in", "a wrong password stays on the login "
          "page", b.text("h1"))
    alert = ""
    try:
        alert = d.find_element(By.CSS_SELECTOR, "[role=alert]").text
    except NoSuchElementException:
        pass
    check(alert == "Invalid username or password.",
          "a wrong password: the page says so", alert)
    check(d.get_cookie("oauth2_session") is None,
          "a wrong password: no session cookie")

    # the right one: the consent page
    b.login(username, password)
    check(b.text("h1") == "Authorize %s?" % app,
          "after signing in the consent page asks about the application",
          b.text("h1"))
    check(d.current_url == allow_url,
          "the consent page is at the same authorization request",
          d.current_url)
    scopes = [li.text for li in d.find_elements(By.CSS_SELECTOR, "main li")]
    check(scopes == ["read", "write"], "the consent page lists the scopes "
          "read and write", scopes)
    check("Signed in as %s." % username in b.text("main"),
          "the consent page says who is signed in", b.text("main"))
    session = d.get_cookie("oauth2_session") or {}
    check(session.get("httpOnly") is True, "the session cookie is HttpOnly",
          session)
    check(session.get("sameSite") == "Lax", "the session cookie is "
          "SameSite=Lax", session)
    check("oauth2_session" not in d.execute_script("return document.cookie"),
          "scripts cannot read the session cookie")
    csp = [m for m in b.log() if "Content Security Policy" in m]
    check(not csp, "the pages cause no CSP violation", csp)
    if screenshot:
        d.save_screenshot(screenshot)

    # Authorize: the browser lands on the client's redirect_uri
    b.click_and_wait(b.button("Authorize"))
    check(d.current_url.startswith(cb + "?code="),
          "Authorize sends the browser to the redirect_uri with a code",
          d.current_url)
    check(b.text("h1") == "Callback received",
          "the client's callback page is shown", b.text("h1"))
    hit = next_hit()
    check(hit is not None, "the client received the callback")
    print("callback " + (hit or ""), flush=True)

    # the session is kept: a second request (prompt=consent) goes straight
    # to consent; Deny
    d.get(deny_url)
    check(b.text("h1") == "Authorize %s?" % app,
          "signed in, the next request (prompt=consent) shows the consent page at once",
          b.text("h1"))
    b.click_and_wait(b.button("Deny"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(d.current_url).query)
    check(query.get("error") == ["access_denied"],
          "Deny sends the browser back with error=access_denied",
          d.current_url)
    hit = next_hit()
    check(hit is not None, "the client received the denial")
    print("callback " + (hit or ""), flush=True)

    # another origin cannot frame the consent page (R26)
    # (prompt=consent: the consent page itself, not the remembered grant)
    Callback.frame_url = deny_url
    b.log()
    d.get("http://127.0.0.1:%d/frame" % port)
    WebDriverWait(d, 10).until(
        lambda d: d.execute_script("return document.readyState")
        == "complete")
    frame = d.find_element(By.ID, "f")
    d.switch_to.frame(frame)
    framed = b.text("h1")
    d.switch_to.default_content()
    check("Authorize" not in framed,
          "a page of another origin cannot show the consent page in a frame"
          " (R26)", framed)
    blocked = [m for m in b.log()
               if "frame-ancestors" in m or "X-Frame-Options" in m]
    check(blocked, "Chromium reports the frame blocked by frame-ancestors or "
          "X-Frame-Options (R26)", b.log())
    check(Callback.hits.empty(), "the framed page produced no callback")

    # response_mode=form_post: the page's one script (its CSP allows it by
    # its hash) posts the code to the redirect_uri, at once
    b.log()
    d.get(form_post_url)
    WebDriverWait(d, 10).until(lambda d: b.text("h1") == "Form received")
    hit = next_hit()
    check(hit is not None and hit.startswith("POST "),
          "form_post: the browser posts the form to the redirect_uri at once",
          hit)
    check(d.current_url == cb, "form_post: no code in the browser's URL",
          d.current_url)
    csp = [m for m in b.log() if "Content Security Policy" in m]
    check(not csp, "form_post: its script runs under the page's CSP", csp)
    print("callback " + (hit or "")[5:], flush=True)

    # response_mode=fragment: the code reaches the client's page, never its
    # server
    d.get(fragment_url)
    WebDriverWait(d, 10).until(lambda d: b.text("h1") == "Callback received")
    fragment = urllib.parse.urlsplit(d.current_url).fragment
    check("code=" in fragment, "fragment: the code in the URL's fragment",
          d.current_url)
    hit = next_hit()
    check(hit == "", "fragment: the client's server got no code", hit)
    print("callback " + fragment, flush=True)


def main():
    args = sys.argv[1:]
    screenshot = None
    if "--screenshot" in args:
        i = args.index("--screenshot")
        screenshot = args[i + 1]
        del args[i:i + 2]
    if len(args) != 8:
        print(__doc__, file=sys.stderr)
        return 2
    port, username, password, app = args[:4]
    urls = args[4:]
    port = int(port)
    srv = start_listener(port)
    try:
        chromium.run_in_browser(
            "authorize-chromium-",
            lambda driver: run(Browser(driver), port, username, password,
                               app, urls, screenshot),
            "900,700")
    finally:
        srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
