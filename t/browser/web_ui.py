#!/usr/bin/python3
"""Drives the /o/applications/ pages in headless Chromium (t/web_ui.t).

usage: web_ui.py <base-url> <username> <password> [--screenshot <png>]

Prints one line per check, "ok - <name>" or "not ok - <name> # <detail>",
which web_ui.t turns into ok()s.  Two lines are a conversation with it:
"credentials <client_id> <client_secret>" after registering an app (it
answers "go" on stdin once it has used them at /o/token/), and
"deleted <client_id>" after deleting it.  Exit status 0 unless the browser
could not be driven at all.

Debian's chromium, chromium-driver and python3-selenium; run with
/usr/bin/python3, not a python3 from a virtualenv.
"""

import sys

import chromium
from chromium import check
from selenium.common.exceptions import NoAlertPresentException
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.common.by import By

class Pages:
    def __init__(self, driver, base):
        self.d = driver
        self.base = base.rstrip("/")

    def go(self, path):
        self.d.get(self.base + path)

    def path(self):
        url = self.d.current_url
        return url[len(self.base):] if url.startswith(self.base) else url

    def h1(self):
        try:
            return self.d.find_element(By.TAG_NAME, "h1").text
        except NoSuchElementException:
            return ""

    def text(self):
        return self.d.find_element(By.TAG_NAME, "body").text

    def by_id(self, id_):
        return self.d.find_element(By.ID, id_)

    def fill(self, id_, value):
        el = self.by_id(id_)
        el.clear()
        el.send_keys(value)

    def click_and_wait(self, el):
        chromium.click_and_wait(self.d, el)

    def submit(self, css="main form button[type=submit]"):
        self.click_and_wait(self.d.find_element(By.CSS_SELECTOR, css))

    def link(self, text):
        self.click_and_wait(self.d.find_element(By.LINK_TEXT, text))

    def login(self, username, password):
        self.fill("id_username", username)
        self.fill("id_password", password)
        self.submit()

    def register(self, name, grants, client_type="confidential", uris="",
                 scope=""):
        self.go("/o/applications/register/")
        self.fill("id_name", name)
        self.by_id("id_client_type_" + client_type).click()
        for g in grants:
            box = self.by_id("id_grant_" + g)
            if not box.is_selected():
                box.click()
        if uris:
            self.fill("id_redirect_uris", uris)
        if scope:
            self.fill("id_scope", scope)
        self.submit()

    def no_alert(self):
        try:
            self.d.switch_to.alert.dismiss()
            return False
        except NoAlertPresentException:
            return True

    def severe_console(self):
        try:
            logs = self.d.get_log("browser")
        except Exception:  # pragma: no cover - older drivers
            return []
        return [e["message"] for e in logs if e.get("level") == "SEVERE"]


def run(p, username, password, screenshot):
    # not logged in: the login page, with next
    p.go("/o/applications/")
    check(p.path() == "/o/applications/login/?next=%2Fo%2Fapplications%2F",
          "not logged in: redirected to the login page with next", p.path())
    check(p.h1() == "Log in", "the login page has the heading Log in", p.h1())
    check(p.d.title.startswith("Log in"), "the login page has a title",
          p.d.title)
    check(len(p.d.find_elements(By.TAG_NAME, "main")) == 1,
          "the login page has one <main>")
    labels = [l.get_attribute("for")
              for l in p.d.find_elements(By.TAG_NAME, "label")]
    check("id_username" in labels and "id_password" in labels,
          "the login fields have labels", labels)

    # a wrong password
    p.login(username, password + "-wrong")
    check("Please enter the correct username and password" in p.text(),
          "a wrong password shows an error", p.text()[:200])
    check(p.path().startswith("/o/applications/login/"),
          "a wrong password stays on the login page", p.path())
    check(p.by_id("id_username").get_attribute("value") == username,
          "the username is kept after a failed login")

    # the right one
    p.login(username, password)
    check(p.path() == "/o/applications/",
          "logging in leads to the list of applications", p.path())
    check(p.h1() == "Applications", "the list has its heading", p.h1())
    check(("Logged in as " + username) in p.text(),
          "the page says who is logged in")

    # register a confidential client-credentials app (seeds 000, 001)
    p.link("Register a new application")
    check(p.path() == "/o/applications/register/",
          "the register link leads to the register form", p.path())
    check(p.h1() == "Register a new application",
          "the register form has its heading", p.h1())
    for text in ("Client credentials", "Authorization code",
                 "Resource owner password-based"):
        check(text in p.text(), "the register form offers " + text)
    p.register("worker", ["client_credentials"])
    check(p.h1() == "Application registered",
          "saving shows Application registered", p.h1())
    client_id = p.by_id("client_id").text.strip()
    secret = p.by_id("client_secret").text.strip()
    check(len(client_id) == 40 and client_id.isalnum(),
          "the page shows a 40-character client id", client_id)
    check(len(secret) == 128 and secret.isalnum(),
          "the page shows a 128-character client secret", len(secret))
    check("it will not be shown again" in p.text(),
          "the page says the secret will not be shown again")
    if screenshot:
        p.d.save_screenshot(screenshot)
    errors = [m for m in p.severe_console()
              if "Content Security Policy" in m or "Refused" in m]
    check(not errors, "no CSP violation in the console", errors)
    bg = p.d.find_element(By.TAG_NAME, "header").value_of_css_property(
        "background-color")
    check(bg == "rgba(31, 58, 95, 1)",
          "the style sheet applies (its CSP hash matches)", bg)

    print("credentials %s %s" % (client_id, secret), flush=True)
    answer = sys.stdin.readline().strip()
    check(answer == "go", "web_ui.t used the credentials", answer)

    # the list shows it; its page does not show the secret
    p.go("/o/applications/")
    check("worker" in p.text() and client_id in p.text(),
          "the list shows the new application and its client id")
    p.link("worker")
    check(p.path() == "/o/applications/%s/" % client_id,
          "the name links to the application's page", p.path())
    check(client_id in p.text(), "the application's page shows the client id")
    check(secret not in p.d.page_source,
          "the application's page never shows the secret")

    # edit its name
    p.link("Edit")
    check(p.path() == "/o/applications/%s/update/" % client_id,
          "Edit leads to the edit form", p.path())
    check(p.by_id("id_name").get_attribute("value") == "worker",
          "the edit form holds the current name")
    check(p.by_id("id_grant_client_credentials").is_selected(),
          "the edit form holds the current grant")
    p.fill("id_name", "worker renamed")
    p.submit()
    check(p.path() == "/o/applications/%s/" % client_id,
          "saving the edit leads back to the application", p.path())
    check(p.h1() == "worker renamed", "the new name is shown", p.h1())
    check("were saved" in p.text(), "a message says the changes were saved")

    # the form keeps what was typed when it is wrong
    p.go("/o/applications/register/")
    p.fill("id_name", "bad one")
    p.fill("id_redirect_uris", "http://evil.example/cb")
    p.submit()
    check(p.h1() == "Register a new application",
          "an invalid form is shown again", p.h1())
    check("Choose at least one authorization grant type." in p.text(),
          "a missing grant type is reported")
    check("is not an https URI" in p.text(),
          "a bad redirect URI is reported")
    check(p.by_id("id_name").get_attribute("value") == "bad one",
          "the typed name is kept")
    check(p.by_id("id_redirect_uris").get_attribute("value")
          == "http://evil.example/cb", "the typed redirect URI is kept")

    # redirect URIs on two lines (a textarea, as in DOT)
    p.register("web app", ["authorization_code", "refresh_token"],
               uris="https://client.example/cb\nhttp://127.0.0.1:8000/cb",
               scope="read write")
    check(p.h1() == "Application registered",
          "an authorization-code app with two redirect URIs is saved",
          p.h1() + " " + p.text()[:300])
    p.link("Go to the application")
    check("https://client.example/cb" in p.text()
          and "http://127.0.0.1:8000/cb" in p.text(),
          "both redirect URIs typed on two lines are kept")

    # HTML in a name is shown as text, never run
    evil = "<script>alert(1)</script>"
    p.register(evil, ["client_credentials"])
    check(p.h1() == "Application registered",
          "an app named <script>alert(1)</script> is saved", p.h1())
    check(p.no_alert(), "its name runs no script on the result page")
    p.go("/o/applications/")
    check(evil in p.text(), "the list shows the name as text")
    check(p.no_alert(), "its name runs no script on the list")

    # delete the first app
    p.go("/o/applications/%s/" % client_id)
    p.link("Delete")
    check(p.path() == "/o/applications/%s/delete/" % client_id,
          "Delete leads to a confirmation page", p.path())
    check("This cannot be undone" in p.text(),
          "the confirmation page warns")
    p.submit("main form button.danger")
    check(p.path() == "/o/applications/",
          "deleting leads back to the list", p.path())
    check("was deleted" in p.text(), "a message says the app was deleted")
    check(client_id not in p.text(), "the list no longer shows the app")
    print("deleted %s" % client_id, flush=True)

    # log out
    p.click_and_wait(p.d.find_element(By.CSS_SELECTOR, "header form button"))
    check(p.path().startswith("/o/applications/login/"),
          "Log out leads to the login page", p.path())
    p.go("/o/applications/register/")
    check(p.path() == "/o/applications/login/?next=%2Fo%2Fapplications"
          "%2Fregister%2F",
          "after logging out the pages ask to log in again", p.path())
    # next= brings the user back where they wanted to go
    p.login(username, password)
    check(p.path() == "/o/applications/register/",
          "logging in again goes to next", p.path())


def main():
    args = sys.argv[1:]
    screenshot = None
    if "--screenshot" in args:
        i = args.index("--screenshot")
        screenshot = args[i + 1]
        del args[i:i + 2]
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    base, username, password = args
    chromium.run_in_browser(
        "web-ui-chromium-",
        lambda driver: run(Pages(driver, base), username, password,
                           screenshot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
