#!/usr/bin/python3
# scripts/lib/cluster-dump.py: the records of an edge's LMDB mirror and of
# etcd, in one normalised form, to compare them (scripts/cluster-faults).
# Computed here from both sides (mdb_dump and etcdctl), as the
# implementation names them (src/core/etcd.hpp, cluster.hpp): etcd keeps a
# record of LMDB database <db> under <prefix><db>/<key>, key and value byte
# for byte; <prefix>heartbeat/ are the sync daemons' heartbeats (not
# records); the mirror's local meta records (cluster.cpp local_meta():
# schema_version, map_size, mirror_revision, mirror_fresh_at, mirror_of,
# mirror_cluster_id, valid_epoch, valid_epochs)
# are never in etcd.  Both are left out of the digest.
#
#   cluster-dump.py mirror --store DIR             -> lines "db<TAB>hexkey<TAB>hexvalue"
#   cluster-dump.py etcd --endpoints E --prefix P [--rev R]
#   cluster-dump.py compare --store DIR --endpoints E --prefix P
#       reads the mirror's revision R (meta mirror_revision), dumps etcd at
#       R, prints both digests, counts per database and the first
#       differences; exit 0 if equal, 1 if not, 2 on error.
# Standard library only.

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys

LOCAL_META = {b'schema_version', b'map_size', b'mirror_revision',
              b'mirror_fresh_at', b'mirror_of', b'mirror_cluster_id',
              b'valid_epoch', b'valid_epochs'}
SKIP_DBS = {'heartbeat'}


def mdb_dump(store):
    out = subprocess.run(['mdb_dump', '-a', store], check=True,
                         capture_output=True).stdout.decode('ascii')
    recs = set()
    meta = {}
    db = None
    in_data = False
    pending = None
    for line in out.split('\n'):
        if not in_data:
            if line.startswith('database='):
                db = line[len('database='):]
            elif line == 'HEADER=END':
                in_data = True
                pending = None
            continue
        if line == 'DATA=END':
            in_data = False
            db = None
            continue
        if not line.startswith(' '):
            continue
        b = bytes.fromhex(line[1:])
        if pending is None:
            pending = b
            continue
        k, v = pending, b
        pending = None
        if db is None:      # the main database: the names of the others
            continue
        if db == 'meta':
            meta[k] = v
            if k in LOCAL_META:
                continue
        recs.add((db, k, v))
    return recs, meta


def etcd_dump(endpoints, prefix, rev=None):
    cmd = ['etcdctl', '--endpoints', endpoints, '--command-timeout', '30s',
           'get', prefix, '--prefix', '-w', 'json']
    if rev:
        cmd += ['--rev', str(rev)]
    env = dict(os.environ, ETCDCTL_API='3')
    out = subprocess.run(cmd, check=True, capture_output=True, env=env).stdout
    j = json.loads(out)
    recs = set()
    skipped = 0
    p = prefix.encode()
    for kv in j.get('kvs', []):
        key = base64.b64decode(kv['key'])
        val = base64.b64decode(kv.get('value', ''))
        if not key.startswith(p):
            continue
        rest = key[len(p):]
        db, sep, k = rest.partition(b'/')
        db = db.decode('latin-1')
        if not sep or db in SKIP_DBS:
            skipped += 1
            continue
        recs.add((db, k, val))
    return recs, int(j['header']['revision']), skipped


def digest(recs):
    h = hashlib.sha256()
    for db, k, v in sorted(recs):
        h.update(f'{db}\t{k.hex()}\t{v.hex()}\n'.encode())
    return h.hexdigest()


def counts(recs):
    c = {}
    for db, _, _ in recs:
        c[db] = c.get(db, 0) + 1
    return ' '.join(f'{d}={n}' for d, n in sorted(c.items()))


def show(recs):
    for db, k, v in sorted(recs):
        print(f'{db}\t{k.hex()}\t{v.hex()}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('mode', choices=['mirror', 'etcd', 'compare'])
    ap.add_argument('--store')
    ap.add_argument('--endpoints')
    ap.add_argument('--prefix', default='/oauth2/')
    ap.add_argument('--rev', type=int)
    a = ap.parse_args()
    try:
        if a.mode == 'mirror':
            show(mdb_dump(a.store)[0])
            return 0
        if a.mode == 'etcd':
            show(etcd_dump(a.endpoints, a.prefix, a.rev)[0])
            return 0
        mrecs, meta = mdb_dump(a.store)
        rev = meta.get(b'mirror_revision')
        if rev is None:
            print('compare: the mirror has no meta mirror_revision')
            return 2
        rev = int(rev.decode())
        erecs, _, skipped = etcd_dump(a.endpoints, a.prefix, rev)
    except (subprocess.CalledProcessError, OSError, ValueError) as e:
        err = getattr(e, 'stderr', b'') or b''
        print(f'compare: {e} {err.decode(errors="replace").strip()}')
        return 2
    dm, de = digest(mrecs), digest(erecs)
    print(f'mirror at revision {rev}: {len(mrecs)} records, sha256 {dm[:16]} ({counts(mrecs)})')
    print(f'etcd   at revision {rev}: {len(erecs)} records, sha256 {de[:16]} ({counts(erecs)}; {skipped} heartbeat/other keys left out)')
    if dm == de:
        print('equal')
        return 0
    only_m = sorted(mrecs - erecs)
    only_e = sorted(erecs - mrecs)
    print(f'DIFFERENT: {len(only_m)} only in the mirror, {len(only_e)} only in etcd')
    for db, k, v in only_m[:5]:
        print(f'  mirror only: {db} {k[:60]!r} = {v[:40]!r}')
    for db, k, v in only_e[:5]:
        print(f'  etcd only:   {db} {k[:60]!r} = {v[:40]!r}')
    return 1


if __name__ == '__main__':
    sys.exit(main())
