#!/usr/bin/python3
"""Builds a real Django + django-oauth-toolkit 1.x database and dumps it
with `manage.py dumpdata`, for t/import_django.t.

    /usr/bin/python3 t/django/make_dump.py <outdir>

writes into <outdir>:
  dump.json          dumpdata auth.user oauth2_provider.application
                     oauth2_provider.accesstoken oauth2_provider.refreshtoken,
                     as DOT 1.x leaves it: client secrets in clear
  dump-hashed.json   the same applications with client_secret replaced by
                     Django's make_password() of it, as DOT 2+ stores it
  dump-natural.json  dumpdata --natural-foreign --natural-primary (no pk)
  dump-custom-user.json  dump.json with the users under "users.user", as
                     a project with AUTH_USER_MODEL = "users.User" dumps
                     them (its users are AbstractUser's fields)
  secrets.json       {"<app name>": {"client_id", "client_secret"}},
                     {"users": {"<username>": {"pk", "password"}}} and
                     {"tokens": {"<name>": {"token", "pk", ...}}}
"""
import json
import os
import sys
from datetime import datetime, timedelta, timezone

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.abspath(sys.argv[1])
os.environ["O2T_DJANGO_DB"] = os.path.join(OUT, "db.sqlite3")
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
sys.path.insert(0, HERE)

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from oauth2_provider.models import (  # noqa: E402
    get_access_token_model, get_application_model, get_refresh_token_model)
from oauthlib.common import generate_token  # noqa: E402

Application = get_application_model()
AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()

call_command("migrate", verbosity=0, interactive=False)

users = {}


def keep(user, password):
    users[user.username] = {"pk": user.pk, "password": password}


admin = User.objects.create_superuser(
    "admin", "admin@example.com", "admin-pass-1")
keep(admin, "admin-pass-1")

alice = User.objects.create_user(
    "alice", "alice@example.com", "alice-pass-2",
    first_name="Alice", last_name="Liddell")
alice.last_login = datetime(2024, 2, 29, 12, 30, 15, 250000,
                            tzinfo=timezone.utc)
alice.date_joined = datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
alice.save()
alice.groups.add(Group.objects.create(name="readers"))
keep(alice, "alice-pass-2")

# a deleted user leaves a hole in the ids: later ones keep theirs
User.objects.create_user("temp", "", "temp-pass").delete()

legacy = User.objects.create_user("legacy", "legacy@example.com")
legacy.password = make_password("legacy-pass-3", hasher="md5")
legacy.save()
keep(legacy, "legacy-pass-3")

nopass = User.objects.create_user("nopass", "nopass@example.com")
nopass.set_unusable_password()
nopass.save()
keep(nopass, None)

gone = User.objects.create_user(
    "gone", "gone@example.com", "gone-pass-4", is_active=False)
keep(gone, "gone-pass-4")

# Django's username validator takes any Unicode letter: so does the
# import, the user and their token
jose = User.objects.create_user("jos\u00e9", "jose@example.com", "jose-pass-5")
keep(jose, "jose-pass-5")

staff = User.objects.create_user(
    "staffer", "staffer@example.com", "staff-pass-6", is_staff=True)
keep(staff, "staff-pass-6")

apps = {}


apps_by_name = {}


def app(name, client_type, grant, redirect_uris=""):
    a = Application.objects.create(
        name=name, user=admin, client_type=client_type,
        authorization_grant_type=grant, redirect_uris=redirect_uris)
    apps[name] = {"client_id": a.client_id, "client_secret": a.client_secret}
    apps_by_name[name] = a
    return a


A = Application
app("service", A.CLIENT_CONFIDENTIAL, A.GRANT_CLIENT_CREDENTIALS)
app("web", A.CLIENT_CONFIDENTIAL, A.GRANT_AUTHORIZATION_CODE,
    "https://app.example/cb http://localhost:8000/cb\n"
    "http://127.0.0.1:8000/cb")
app("spa", A.CLIENT_PUBLIC, A.GRANT_AUTHORIZATION_CODE,
    "https://spa.example/cb")
app("legacy-password", A.CLIENT_CONFIDENTIAL, A.GRANT_PASSWORD)
app("old-implicit", A.CLIENT_PUBLIC, A.GRANT_IMPLICIT,
    "https://old.example/cb")
app("hybrid", A.CLIENT_CONFIDENTIAL, A.GRANT_OPENID_HYBRID,
    "https://hybrid.example/cb")


# DOT's tokens, made as its views make them (oauthlib's generate_token)
tokens = {}
NOW = datetime.now(timezone.utc)


def access(name, application, user, scope, expires):
    t = AccessToken.objects.create(
        token=generate_token(), application=apps_by_name[application],
        user=user, scope=scope, expires=expires)
    tokens[name] = {"token": t.token, "pk": t.pk, "scope": scope,
                    "exp": int(expires.timestamp()),
                    "client": application,
                    "user": user.username if user else None}
    return t


def refresh(name, application, user, access_token=None, revoked=None):
    r = RefreshToken.objects.create(
        token=generate_token(), application=apps_by_name[application],
        user=user, access_token=access_token, revoked=revoked)
    tokens[name] = {"token": r.token, "pk": r.pk, "client": application,
                    "user": user.username}
    return r


# seed 004: ACCESS_TOKEN_EXPIRE_SECONDS = 3153600000, 100 years
access("alice_100y", "web", alice, "read write",
       NOW + timedelta(seconds=3153600000))
access("service_cc", "service", None, "read", NOW + timedelta(hours=10))
access("staffer_expired", "web", staff, "read write",
       NOW - timedelta(hours=1))
linked = access("staffer_linked", "legacy-password", staff, "read",
                NOW + timedelta(hours=10))
refresh("staffer_refresh", "legacy-password", staff, access_token=linked)
refresh("alice_revoked", "legacy-password", alice,
        revoked=NOW - timedelta(days=1))
# a token of what the import skips: an implicit application
access("implicit_token", "old-implicit", alice, "read",
       NOW + timedelta(days=1))
# josé's, imported with josé
access("jose_token", "web", jose, "read", NOW + timedelta(days=1))


def dump(name, **options):
    call_command("dumpdata", "auth.user", "oauth2_provider.application",
                 "oauth2_provider.accesstoken",
                 "oauth2_provider.refreshtoken",
                 indent=2, output=os.path.join(OUT, name), verbosity=0,
                 **options)


dump("dump.json")
# a project whose AUTH_USER_MODEL is users.User (AbstractUser) dumps the
# same records under its own label; the tokens' user keys are its pks
with open(os.path.join(OUT, "dump.json")) as f:
    records = json.load(f)
for r in records:
    if r["model"] == "auth.user":
        r["model"] = "users.user"
with open(os.path.join(OUT, "dump-custom-user.json"), "w") as f:
    json.dump(records, f, indent=2)
dump("dump-natural.json", use_natural_foreign_keys=True,
     use_natural_primary_keys=True)
# DOT 2+ hashes client secrets with Django's password hashers
for a in Application.objects.all():
    Application.objects.filter(pk=a.pk).update(
        client_secret=make_password(a.client_secret))
dump("dump-hashed.json")

with open(os.path.join(OUT, "secrets.json"), "w") as f:
    json.dump({"apps": apps, "users": users, "tokens": tokens}, f, indent=2)
