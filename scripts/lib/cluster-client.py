#!/usr/bin/python3
# scripts/lib/cluster-client.py: the measuring clients of the cluster-*
# scripts, on keep-alive connections (http.client, standard library only).
#
#   revocation --issue URL --edges URL,URL --basic B64 [--n 1000] [--poll-ms 1]
#       per round: a client_credentials token from --issue; polled on every
#       --edges edge until it validates (200); revoked at --issue; then each
#       edge polled every --poll-ms until it refuses the token (401).
#       Prints one line per round to --log, and the percentiles.
#   writes --edges URL,... --basic B64 --threads N --seconds S --out FILE
#       a stream of client_credentials issues, round robin over the edges,
#       N threads; each acknowledged token (200) written to FILE as
#       "<sent> <answered> <edge#> <token>" (epoch seconds); failures as
#       "E <sent> <answered> <edge#> <status>"; stops after S seconds or when
#       the file FILE.stop exists.
#   check --edges URL,... --tokens FILE [--expect 200]
#       every token (last field of FILE's lines not starting with E) on
#       every edge: prints how many answered otherwise, per edge
#   race-refresh --edges A,B --client-id ID --secret S --user U --password P [--n 100]
#   race-code    --edges A,B --client-id ID --secret S --user U --password P
#                --redirect-uri R [--n 100]
#       per round: a fresh refresh token (password grant) or authorization
#       code (login + consent on edge A), then the same refresh / redemption
#       sent to A and B at the same instant; counts rounds where exactly
#       one rotation / redemption won.

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse


class Conn:
    def __init__(self, url, timeout=10):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.timeout = timeout
        self.c = None

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if body is not None and 'Content-Type' not in headers:
            headers['Content-Type'] = 'application/x-www-form-urlencoded'
        for attempt in range(2):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.c.request(method, path, body=body, headers=headers)
                r = self.c.getresponse()
                data = r.read()
                if r.getheader('Connection', '').lower() == 'close':
                    self.c.close()
                    self.c = None
                return r.status, r.getheaders(), data
            except (OSError, http.client.HTTPException):
                if self.c:
                    self.c.close()
                self.c = None
                if attempt:
                    return 0, [], b''
        return 0, [], b''


def form(**kw):
    return urllib.parse.urlencode(kw)


def bearer(tok):
    return {'Authorization': 'Bearer ' + tok}


def issue(conn, basic):
    st, _, body = conn.request('POST', '/o/token/', form(grant_type='client_credentials'),
                               {'Authorization': 'Basic ' + basic})
    tok = None
    if st == 200:
        tok = json.loads(body)['access_token']
    return st, tok, body


def pct(v, p):
    if not v:
        return float('nan')
    v = sorted(v)
    i = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[i]


def summary(name, v):
    return (f'{name}: n={len(v)} p50={pct(v, 50):.1f} p90={pct(v, 90):.1f} '
            f'p99={pct(v, 99):.1f} max={max(v) if v else float("nan"):.1f} ms')


############################################################ revocation

def cmd_revocation(a):
    issuer = Conn(a.issue)
    edges = [Conn(u) for u in a.edges.split(',')]
    names = [f'edge{i + 2}' for i in range(len(edges))] if not a.names else a.names.split(',')
    basic = a.basic
    poll = a.poll_ms / 1000.0
    lat = {n: [] for n in names}
    prop = []
    revoke_ms = []
    failures = 0
    other = {}
    log = open(a.log, 'w') if a.log else None
    for rnd in range(a.n):
        st, tok, body = issue(issuer, basic)
        if st != 200:
            failures += 1
            print(f'round {rnd}: issue answered {st} {body[:200]!r}', file=sys.stderr)
            time.sleep(0.1)
            continue
        t_issued = time.monotonic()
        # valid on every other edge first
        ok = True
        for n, c in zip(names, edges):
            deadline = time.monotonic() + 5
            while True:
                s, _, _ = c.request('GET', '/protected/index.html', headers=bearer(tok))
                if s == 200:
                    break
                if time.monotonic() > deadline:
                    print(f'round {rnd}: {n} never validated the new token (last {s})', file=sys.stderr)
                    ok = False
                    break
                time.sleep(poll)
        prop.append((time.monotonic() - t_issued) * 1000)
        if not ok:
            failures += 1
            continue
        t_send = time.monotonic()
        s, _, body = issuer.request('POST', '/o/revoke_token/', form(token=tok),
                                    {'Authorization': 'Basic ' + basic})
        t0 = time.monotonic()
        revoke_ms.append((t0 - t_send) * 1000)
        if s != 200:
            failures += 1
            print(f'round {rnd}: revoke answered {s} {body[:200]!r}', file=sys.stderr)
            continue
        pending = dict(zip(names, edges))
        got = {}
        deadline = t0 + a.timeout
        next_poll = t0
        while pending:
            for n in list(pending):
                s, _, _ = pending[n].request('GET', '/protected/index.html', headers=bearer(tok))
                if s == 401:
                    got[n] = (time.monotonic() - t0) * 1000
                    del pending[n]
                elif s != 200:
                    other[s] = other.get(s, 0) + 1
            if time.monotonic() > deadline:
                break
            next_poll += poll
            d = next_poll - time.monotonic()
            if d > 0:
                time.sleep(d)
        for n in names:
            if n in got:
                lat[n].append(got[n])
            else:
                failures += 1
                print(f'round {rnd}: {n} still accepts the revoked token after {a.timeout}s', file=sys.stderr)
        if log:
            log.write(f'{rnd} ' + ' '.join(f'{n}={got.get(n, -1):.2f}' for n in names)
                      + f' revoke={revoke_ms[-1]:.2f}\n')
        if (rnd + 1) % 200 == 0:
            print(f'  {rnd + 1} rounds', file=sys.stderr, flush=True)
    allv = [x for n in names for x in lat[n]]
    print(summary('issue -> valid on every other edge', prop))
    print(summary('revoke request -> response at the issuing edge', revoke_ms))
    for n in names:
        print(summary(f'revoke response -> {n} refuses', lat[n]))
    print(summary('revoke response -> refused, all edges', allv))
    print(f'rounds {a.n}, failures {failures}, other statuses while polling {other}')
    print(f'RESULT p99_ms={pct(allv, 99):.2f} max_ms={max(allv) if allv else -1:.2f} '
          f'samples={len(allv)} failures={failures}')
    return 0


############################################################ writes

def cmd_writes(a):
    urls = a.edges.split(',')
    stop_at = time.time() + a.seconds
    lock = threading.Lock()
    out = open(a.out, 'w', buffering=1)

    def worker(k):
        conns = [Conn(u, timeout=30) for u in urls]
        i = k
        while time.time() < stop_at and not os.path.exists(a.out + '.stop'):
            e = i % len(urls)
            i += 1
            t1 = time.time()
            st, tok, body = issue(conns[e], a.basic)
            t2 = time.time()
            with lock:
                if st == 200:
                    out.write(f'{t1:.6f} {t2:.6f} {e + 1} {tok}\n')
                else:
                    out.write(f'E {t1:.6f} {t2:.6f} {e + 1} {st}\n')
            if st != 200:
                time.sleep(0.01)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.close()
    return 0


def cmd_check(a):
    toks = []
    with open(a.tokens) as f:
        for line in f:
            p = line.split()
            if p and p[0] != 'E':
                toks.append(p[-1])
    bad_total = 0
    for i, u in enumerate(a.edges.split(',')):
        c = Conn(u)
        bad = {}
        for t in toks:
            s, _, _ = c.request('GET', '/protected/index.html', headers=bearer(t))
            if s != a.expect:
                bad[s] = bad.get(s, 0) + 1
        n = sum(bad.values())
        bad_total += n
        print(f'{u}: {len(toks)} tokens, {n} not {a.expect} {bad if bad else ""}')
    print(f'RESULT checked={len(toks)} bad={bad_total}')
    return 0 if bad_total == 0 else 1


############################################################ races

def race(conns, path, body, headers):
    res = [None] * len(conns)
    bar = threading.Barrier(len(conns))

    def go(i):
        bar.wait()
        res[i] = conns[i].request('POST', path, body, headers)

    ts = [threading.Thread(target=go, args=(i,)) for i in range(len(conns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


def basic_of(cid, secret):
    q = urllib.parse.quote_plus
    return base64.b64encode(f'{q(cid)}:{q(secret)}'.encode()).decode()


def cmd_race_refresh(a):
    urls = a.edges.split(',')
    conns = [Conn(u) for u in urls]
    hdr = {'Authorization': 'Basic ' + basic_of(a.client_id, a.secret)}
    one, dbl, none, err = 0, 0, 0, 0
    for rnd in range(a.n):
        st, _, body = conns[0].request('POST', '/o/token/', form(
            grant_type='password', username=a.user, password=a.password), hdr)
        if st != 200:
            err += 1
            print(f'round {rnd}: password grant {st} {body[:200]!r}', file=sys.stderr)
            continue
        rt = json.loads(body)['refresh_token']
        # the other edges must have seen the new grant first (a race, not
        # a replication lag)
        time.sleep(a.settle_ms / 1000.0)
        res = race(conns, '/o/token/', form(grant_type='refresh_token', refresh_token=rt), hdr)
        wins = [json.loads(b) for s, _, b in res if s == 200]
        pairs = {(w['access_token'], w.get('refresh_token')) for w in wins}
        statuses = [s for s, _, _ in res]
        if len(pairs) == 1:
            one += 1
            # the winner's new refresh token must still work
            nrt = next(iter(pairs))[1]
            s2, _, b2 = conns[1].request('POST', '/o/token/', form(
                grant_type='refresh_token', refresh_token=nrt), hdr)
            if s2 != 200:
                err += 1
                print(f'round {rnd}: the winning pair\'s refresh token answered {s2} {b2[:200]!r}', file=sys.stderr)
        elif len(pairs) > 1:
            dbl += 1
            print(f'round {rnd}: {len(pairs)} different rotations won: {statuses}', file=sys.stderr)
        else:
            none += 1
            print(f'round {rnd}: nobody won: {statuses} {[b[:120] for _, _, b in res]}', file=sys.stderr)
        if a.verbose:
            print(f'round {rnd}: {statuses} distinct pairs {len(pairs)}', file=sys.stderr)
    print(f'refresh race: {a.n} rounds: exactly one rotation {one}, two rotations {dbl}, '
          f'none {none}, errors {err} (both 200 with the same pair counts as one: '
          f'oauth2_refresh_token_grace)')
    print(f'RESULT one={one} double={dbl} none={none} errors={err}')
    return 0 if one == a.n and err == 0 else 1


def csrf_of(body):
    m = re.search(rb'name="csrf_token" value="([^"]*)"', body)
    return m.group(1).decode() if m else None


def cookies(headers):
    c = {}
    for k, v in headers:
        if k.lower() == 'set-cookie':
            nv = v.split(';', 1)[0]
            n, _, val = nv.partition('=')
            c[n.strip()] = val.strip()
    return c


def location(headers):
    for k, v in headers:
        if k.lower() == 'location':
            return v
    return ''


def get_code(conn, a, session):
    verifier = secrets.token_urlsafe(48)
    chal = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b'=').decode()
    q = urllib.parse.urlencode(dict(response_type='code', client_id=a.client_id,
                                    redirect_uri=a.redirect_uri, state=secrets.token_hex(8),
                                    code_challenge=chal, code_challenge_method='S256'))
    path = '/o/authorize/?' + q
    if session[0] is None:
        st, h, body = conn.request('GET', path)
        csrf_cookie = cookies(h).get('oauth2_csrf', '')
        st, h, body = conn.request('POST', path, form(
            action='login', csrf_token=csrf_of(body) or csrf_cookie,
            username=a.user, password=a.password),
            {'Cookie': f'oauth2_csrf={csrf_cookie}'})
        s = cookies(h).get('oauth2_session')
        if not s:
            raise RuntimeError(f'login: {st} no session cookie: {body[:300]!r}')
        session[0] = f'oauth2_session={s}'
    st, h, body = conn.request('GET', path, headers={'Cookie': session[0]})
    if st in (302, 303) and 'code=' in location(h):
        loc = location(h)
    else:
        csrf = csrf_of(body)
        st, h, body = conn.request('POST', path, form(action='allow', csrf_token=csrf or ''),
                                   {'Cookie': session[0]})
        loc = location(h)
    p = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
    if 'code' not in p:
        raise RuntimeError(f'consent: {st} {loc} {body[:300]!r}')
    return p['code'][0], verifier


def cmd_race_code(a):
    urls = a.edges.split(',')
    conns = [Conn(u) for u in urls]
    session = [None]
    one, dbl, none, err = 0, 0, 0, 0
    for rnd in range(a.n):
        try:
            code, verifier = get_code(conns[0], a, session)
        except RuntimeError as e:
            err += 1
            print(f'round {rnd}: {e}', file=sys.stderr)
            if err > 5 and one == 0:
                break
            continue
        time.sleep(a.settle_ms / 1000.0)   # the code reaches every edge
        body = form(grant_type='authorization_code', code=code, redirect_uri=a.redirect_uri,
                    code_verifier=verifier, client_id=a.client_id, client_secret=a.secret)
        res = race(conns, '/o/token/', body, {})
        statuses = [s for s, _, _ in res]
        wins = [json.loads(b) for s, _, b in res if s == 200]
        if len(wins) == 1:
            one += 1
        elif len(wins) > 1:
            dbl += 1
            print(f'round {rnd}: both redeemed the code: {statuses}', file=sys.stderr)
        else:
            none += 1
            print(f'round {rnd}: nobody redeemed the code: {statuses} {[b[:120] for _, _, b in res]}', file=sys.stderr)
        if a.verbose:
            print(f'round {rnd}: {statuses}', file=sys.stderr)
    print(f'code race: {a.n} rounds: exactly one redemption {one}, two {dbl}, none {none}, errors {err}')
    print(f'RESULT one={one} double={dbl} none={none} errors={err}')
    return 0 if one == a.n and err == 0 else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('revocation')
    r.add_argument('--issue', required=True)
    r.add_argument('--edges', required=True)
    r.add_argument('--names')
    r.add_argument('--basic', required=True)
    r.add_argument('--n', type=int, default=1000)
    r.add_argument('--poll-ms', type=float, default=1.0)
    r.add_argument('--timeout', type=float, default=10.0)
    r.add_argument('--log')
    w = sub.add_parser('writes')
    w.add_argument('--edges', required=True)
    w.add_argument('--basic', required=True)
    w.add_argument('--threads', type=int, default=6)
    w.add_argument('--seconds', type=float, default=20)
    w.add_argument('--out', required=True)
    c = sub.add_parser('check')
    c.add_argument('--edges', required=True)
    c.add_argument('--tokens', required=True)
    c.add_argument('--expect', type=int, default=200)
    for name in ('race-refresh', 'race-code'):
        x = sub.add_parser(name)
        x.add_argument('--edges', required=True)
        x.add_argument('--client-id', required=True)
        x.add_argument('--secret', required=True)
        x.add_argument('--user', required=True)
        x.add_argument('--password', required=True)
        x.add_argument('--redirect-uri')
        x.add_argument('--n', type=int, default=100)
        x.add_argument('--verbose', action='store_true')
        x.add_argument('--settle-ms', type=float, default=150)
    a = ap.parse_args()
    return {'revocation': cmd_revocation, 'writes': cmd_writes, 'check': cmd_check,
            'race-refresh': cmd_race_refresh, 'race-code': cmd_race_code}[a.cmd](a)


if __name__ == '__main__':
    sys.exit(main())
