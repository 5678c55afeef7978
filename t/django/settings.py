# The smallest Django site that runs django-oauth-toolkit, for
# t/import_django.t: make_dump.py builds its database and dumps it.  Run
# with Debian's /usr/bin/python3 (python3-django, python3-django-oauth-
# toolkit), never another python3 on PATH.
import os

SECRET_KEY = "t-import-django: not a secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "oauth2_provider",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # a file in the test's temp dir
        "NAME": os.environ["O2T_DJANGO_DB"],
    }
}

# PBKDF2 first, as Django ships it; MD5 only so that make_dump.py can
# make a legacy hash this server cannot verify
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]
