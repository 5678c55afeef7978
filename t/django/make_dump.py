#!/usr/bin/python3
"""Builds a real Django + django-oauth-toolkit 1.x database and dumps it
with `manage.py dumpdata`, for t/import_django.t.

    /usr/bin/python3 t/django/make_dump.py <outdir>

writes into <outdir>:
  dump.json          dumpdata auth.user oauth2_provider.application, as
                     DOT 1.x leaves it: client secrets in clear
  dump-hashed.json   the same applications with client_secret replaced by
                     Django's make_password() of it, as DOT 2+ stores it
  dump-natural.json  dumpdata --natural-foreign --natural-primary (no pk)
  secrets.json       {"<app name>": {"client_id", "client_secret"}} and
                     {"users": {"<username>": {"pk", "password"}}}
"""
import json
import os
import sys
from datetime import datetime, timezone

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
from oauth2_provider.models import get_application_model  # noqa: E402

Application = get_application_model()

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

# valid in Django (its username validator takes any Unicode letter),
# not here
jose = User.objects.create_user("jos\u00e9", "jose@example.com", "jose-pass-5")
keep(jose, "jose-pass-5")

staff = User.objects.create_user(
    "staffer", "staffer@example.com", "staff-pass-6", is_staff=True)
keep(staff, "staff-pass-6")

apps = {}


def app(name, client_type, grant, redirect_uris=""):
    a = Application.objects.create(
        name=name, user=admin, client_type=client_type,
        authorization_grant_type=grant, redirect_uris=redirect_uris)
    apps[name] = {"client_id": a.client_id, "client_secret": a.client_secret}
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


def dump(name, **options):
    call_command("dumpdata", "auth.user", "oauth2_provider.application",
                 indent=2, output=os.path.join(OUT, name), verbosity=0,
                 **options)


dump("dump.json")
dump("dump-natural.json", use_natural_foreign_keys=True,
     use_natural_primary_keys=True)
# DOT 2+ hashes client secrets with Django's password hashers
for a in Application.objects.all():
    Application.objects.filter(pk=a.pk).update(
        client_secret=make_password(a.client_secret))
dump("dump-hashed.json")

with open(os.path.join(OUT, "secrets.json"), "w") as f:
    json.dump({"apps": apps, "users": users}, f, indent=2)
