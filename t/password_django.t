# The password policy judges a password as Django itself does (README
# "Known limits" named the gap this closes: it compared as ASCII).
# Django 3.2's own validators (Debian's python3-django, under
# /usr/bin/python3) and the admin daemon's POST /api/users/ judge the same
# cases, and every verdict must be the same, in the same words and order:
# Unicode case (a Kelvin sign is a "k"; U+0130 lowers to two code points),
# Unicode spaces around a common password (a no-break space, U+3000,
# U+001C, U+0085), digits of every script (full-width, Arabic-Indic,
# superscripts, mathematical), names split on non-ASCII separators, and
# some hundreds of cases mixed at random (a fixed seed) from those.  The
# API strips the password first, as DRF's CharField does (str.strip()),
# so Django judges each password so stripped.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use OAuth2Test;

OAuth2Test::require_build();

my $t = OAuth2Test->new;
my $staff = $t->new_app(name => 'staff-app', scope => 'read write admin');
$t->write_config($t->default_http(
    extra_server => $t->daemon_locations))->run;
$t->run_daemon('--pbkdf2-iterations', 1000);
my $admin = $t->access_token($staff, scope => 'read write admin');

# the cases, and Django's verdict on each
my $py = "$t->{dir}/django_cases.py";
open(my $fh, '>', $py) or die $!;
print $fh <<'PY';
import json, random, sys
import django
from django.conf import settings
V = 'django.contrib.auth.password_validation.'
settings.configure(
    INSTALLED_APPS=['django.contrib.auth', 'django.contrib.contenttypes'],
    USE_I18N=False, DATABASES={},
    AUTH_PASSWORD_VALIDATORS=[{'NAME': V + n} for n in (
        'UserAttributeSimilarityValidator', 'MinimumLengthValidator',
        'CommonPasswordValidator', 'NumericPasswordValidator')])
django.setup()
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import (
    CommonPasswordValidator, validate_password)
from django.core.exceptions import ValidationError

common = sorted(CommonPasswordValidator().passwords)
rng = random.Random(20261206)
SPACES = ['\u00a0', '\u3000', '\u2003', '\u001c', '\u0085', '\u2028', ' ',
          '\t']
DIGITS = {d: [chr(z + d) for z in (0xFF10, 0x0660, 0x06F0, 0x0966,
                                   0x1D7CE)] for d in range(10)}
DIGITS[1] += ['\u00b9', '\u2460']
DIGITS[2] += ['\u00b2']
DIGITS[3] += ['\u00b3']
NAMES = ['J\u00f6rg', '\u00d1\u00da\u00d1EZ', '\u0130lker', 'Anna\u00b7Maria',
         'van\u2014der\u2014Berg', '\u03a3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2',
         '\u0394\u0397\u039c\u0397\u03a4\u03a1\u0397\u03a3', '\u00c4rger',
         '\U00010400\U00010401\U00010402\U00010403', '\uff34\uff45\uff53\uff54',
         '\u1e9ekr\u00e4\u1e9e', 'K\u00e5re', '\u00b7lead', 'trail\u2014',
         'Kelvin', 'Ivan']
EMAILS = ['anna.maria@example.com', 'jorg_berg@example.org',
          'kelvin@example.net', 'x@example.com']
ODD = ['\u212a', '\u0130', '\u1e9e', '\u00c4', '\u03a3', '\U00010400',
       '\uff41', '\u00df', '\u00b7', '\u2014'] + SPACES

def disguise(pw):
    out = []
    for ch in pw:
        r = rng.random()
        if ch == 'k' and r < 0.7:
            out.append('\u212a')
        elif ch == 'i' and r < 0.3:
            out.append('\u0130')
        elif ch.isdigit() and r < 0.4:
            out.append(rng.choice(DIGITS[int(ch)]))
        elif r < 0.5:
            out.append(ch.upper())
        else:
            out.append(ch)
    s = ''.join(out)
    if rng.random() < 0.8:
        s = ''.join(rng.choices(SPACES, k=rng.randint(0, 2))) + s + \
            ''.join(rng.choices(SPACES, k=rng.randint(0, 2)))
    return s

def numeric():
    n = rng.randint(1, 12)
    s = ''.join(rng.choice(DIGITS[rng.randint(0, 9)] + [str(rng.randint(0, 9))])
                for _ in range(n))
    if rng.random() < 0.2:
        p = rng.randrange(len(s) + 1)
        s = s[:p] + rng.choice(ODD + ['a']) + s[p:]
    return s

def like_name(name):
    s = ''.join(ch.upper() if rng.random() < 0.5 else ch.lower()
                for ch in name)
    return s + ''.join(rng.choices('xyz123\u00e9', k=rng.randint(0, 4)))

def junk():
    pool = ODD + list('abcdefghijKLMNOP0123456789-_.')
    return ''.join(rng.choices(pool, k=rng.randint(1, 14)))

fixed = [  # (password, first, last, email)
    ('MON\u212aEY', '', '', 'x@example.com'),            # Kelvin: "monkey"
    ('\u00a0password\u00a0', '', '', 'x@example.com'),   # no-break spaces
    ('\u3000qwerty123\u2003', '', '', 'x@example.com'),
    ('\u001cpassword1\u0085', '', '', 'x@example.com'),
    ('\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18', '', '',
     'x@example.com'),                                  # full-width digits
    ('\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669', '', '',
     'x@example.com'),                                  # Arabic-Indic
    ('\u00b2\u00b3\u00b9\u2460' * 2, '', '', 'x@example.com'),
    ('J\u00d6RGENSEN1', 'J\u00f6rgensen', '', 'x@example.com'),
    ('\u0130LKER\u0130LKER', '\u0130lker', '', 'x@example.com'),
    ('VANDERBERG!', '', 'van\u2014der\u2014Berg', 'x@example.com'),
    ('MARIA-26', 'Anna\u00b7Maria', '', 'x@example.com'),
    ('\U00010428\U00010429\U0001042a\U0001042b!!', 'Deseret',
     '\U00010400\U00010401\U00010402\U00010403', 'x@example.com'),
]
cases = list(fixed)
for i in range(400):
    kind = rng.randrange(4)
    first = rng.choice(NAMES + [''])
    last = rng.choice(NAMES + [''])
    email = rng.choice(EMAILS)
    if kind == 0:
        pw = disguise(rng.choice(common))
    elif kind == 1:
        pw = numeric()
    elif kind == 2:
        pw = like_name(rng.choice([n for n in (first, last) if n] or NAMES))
    else:
        pw = junk()
    cases.append((pw, first, last, email))

for i, (pw, first, last, email) in enumerate(cases):
    username = 'case%d' % i
    user = User(username=username, first_name=first, last_name=last,
                email=email)
    # DRF's CharField strips the password (str.strip()) before the
    # validators see it, and refuses what is then empty
    checked = pw.strip()
    try:
        validate_password(checked, user)
        problems = [] if checked else ['This field may not be blank.']
    except ValidationError as e:
        problems = list(e.messages) if checked else \
            ['This field may not be blank.']
    print(json.dumps({'username': username, 'first_name': first,
                      'last_name': last, 'email': email, 'password': pw,
                      'checked': checked, 'django': problems}))
PY
close $fh;
my @cases = map { JSON::PP->new->decode($_) }
    split /\n/, scalar qx{/usr/bin/python3 $py};
is($?, 0, 'Django judged the cases');
cmp_ok(scalar @cases, '>', 400, 'more than 400 cases');
my %kinds;
$kinds{join '|', @{$_->{django}}}++ for @cases;
cmp_ok(scalar(keys %kinds), '>=', 8,
    'the cases reach at least 8 different verdicts of Django\'s');

my $ascii = JSON::PP->new->ascii->canonical;
my ($same, @differ) = (0);
for my $c (@cases) {
    my %body = map { $_ => $c->{$_} }
        qw(username first_name last_name email password);
    my $r = $t->api('POST', '/api/users/', token => $admin,
        body => $ascii->encode(\%body));
    my $ours = $r->{status} == 201 ? []
        : $r->{status} == 400 && keys %{$r->{json}} == 1
        ? $r->{json}{password} : undef;
    # a control character (C0, C1: TAB, U+001C, U+0085) no sign-in form
    # can carry: the API refuses it before the policy, where Django would
    # judge it (the policy's own verdict on those: the unit tests)
    my $want = $c->{checked} =~ /[\x00-\x1f\x7f-\x9f]/
        ? ['The password must not contain control characters.'] : $c->{django};
    if (defined $ours && join("\n", @$ours) eq join("\n", @$want)) {
        $same++;
    } else {
        push @differ, $ascii->encode({ case => \%body,
            django => $c->{django}, ours => $r->{json} // $r->{status} });
    }
}
my $judged = grep { $_->{checked} !~ /[\x00-\x1f\x7f-\x9f]/ } @cases;
cmp_ok($judged, '>=', 250, "$judged of them without a control character, "
    . 'which Django\'s verdict is compared with');
is($same, scalar @cases, 'every verdict is Django\'s, in its words and order')
    or diag(join "\n", @differ[0 .. ($#differ < 9 ? $#differ : 9)]);

# the fixed cases, named
my $SHORT = 'This password is too short. It must contain at least 8 characters.';
my $COMMON = 'This password is too common.';
my $NUMERIC = 'This password is entirely numeric.';
my %fixed = (
    0 => [$SHORT, $COMMON],
    1 => [$COMMON], 2 => [$COMMON], 3 => [$COMMON],
    4 => [$NUMERIC], 5 => [$NUMERIC], 6 => [$NUMERIC],
    7 => ['The password is too similar to the first name.'],
    9 => ['The password is too similar to the last name.'],
    10 => ['The password is too similar to the first name.'],
);
for my $i (sort keys %fixed) {
    is_deeply($cases[$i]{django}, $fixed{$i},
        "Django's verdict on fixed case $i is what this test expects");
}

$t->done_testing;
