/*
 * The boundary between the nginx shim (src/ngx/) and the C++ core
 * (src/core/).  Plain C only: opaque handles, POD structs, integer codes.
 *
 * Rules every function here follows:
 *   - never throws, never unwinds into nginx;
 *   - never returns a pointer into LMDB's map or into C++ storage: variable
 *     length results are copied into memory obtained from the caller's
 *     allocator (the shim points it at r->pool);
 *   - the allocator is only ever called on the thread that called the
 *     function (oauth2_op_run() never allocates through it).
 *
 * At configuration time the shim builds one oauth2_conf_t per http{} block
 * and one oauth2_location_t per location that serves an endpoint or checks
 * bearer tokens: the core owns every setting from then on.  Per request
 * the shim passes only the request (oauth2_request_t) and the counters it
 * keeps in shared memory; the core decides everything else.
 */

#ifndef OAUTH2_H
#define OAUTH2_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define OAUTH2_NOEXCEPT  noexcept
extern "C" {
#else
#define OAUTH2_NOEXCEPT
#endif


#define OAUTH2_OK        0
#define OAUTH2_ERROR    -1
#define OAUTH2_PENDING   1
#define OAUTH2_AGAIN     2


typedef struct oauth2_store_s     oauth2_store_t;
typedef struct oauth2_op_s        oauth2_op_t;
typedef struct oauth2_conf_s      oauth2_conf_t;
typedef struct oauth2_location_s  oauth2_location_t;


typedef struct {
    const unsigned char  *data;
    size_t                len;
} oauth2_str_t;


/* returns NULL on failure; memory is owned by the caller's pool */
typedef void *(*oauth2_alloc_pt)(void *ctx, size_t size);


/* ---------------------------------------------------------------- store */

/*
 * Master process, at start and on reload (never with "nginx -t"): create
 * the directory if missing and give it and its files to uid/gid (-1: leave
 * as is); check an existing environment without writing to it.
 */
int oauth2_store_prepare(const char *path, size_t mapsize, long uid, long gid,
    char *err, size_t errlen) OAUTH2_NOEXCEPT;

/* Worker process, after fork.  Does not open: see oauth2_store_open(). */
oauth2_store_t *oauth2_store_create(const char *path, size_t mapsize)
    OAUTH2_NOEXCEPT;
void oauth2_store_destroy(oauth2_store_t *store) OAUTH2_NOEXCEPT;

/* opens the environment if it is not open (or was closed after a panic) */
int oauth2_store_open(oauth2_store_t *store, char *err, size_t errlen)
    OAUTH2_NOEXCEPT;
int oauth2_store_is_open(oauth2_store_t *store) OAUTH2_NOEXCEPT;

/*
 * TLS towards etcd (oauth2_cluster cacert= cert= key=): PEM files, full
 * paths; NULL or "" for none.
 */
typedef struct {
    const char  *cacert;    /* the CA of etcd's certificate */
    const char  *cert;      /* this edge's client certificate ... */
    const char  *key;       /* ... and its key */
} oauth2_cluster_tls_t;

/*
 * Cluster mode (oauth2_cluster): every write of this store goes to etcd
 * (etcd: comma-separated http(s) URLs), the store being the mirror that
 * "oauth2-admin sync" keeps; validation fails closed (503) when the
 * mirror is older than max_staleness_ms.  Worker process, after create.
 */
int oauth2_store_cluster(oauth2_store_t *store, const char *etcd,
    const char *prefix, const oauth2_cluster_tls_t *tls,
    int64_t max_staleness_ms, char *err, size_t errlen) OAUTH2_NOEXCEPT;
/*
 * the directive's check: etcd's URLs, the prefix, and TLS's files (cert=
 * and key= together, only with an https:// URL, each readable)
 */
int oauth2_cluster_check(const char *etcd, const char *prefix,
    const oauth2_cluster_tls_t *tls, char *err, size_t errlen)
    OAUTH2_NOEXCEPT;

/* clears reader slots of dead processes; *dead gets how many */
int oauth2_store_reader_check(oauth2_store_t *store, int *dead) OAUTH2_NOEXCEPT;

/*
 * One round of the background expiry (oauth2_expiry_cleanup), on any
 * thread: if this process (owner) holds the store's expiry lease, or takes
 * it once it has lapsed for lease_ttl seconds, removes up to batch expired
 * tokens, codes, sessions and handshakes where the last round stopped.
 * OAUTH2_OK with *held, *removed and *more (the pass over the store is not
 * finished: go on soon), or OAUTH2_ERROR with why in err.
 */
int oauth2_expiry_round(oauth2_store_t *store, const char *owner, int64_t now,
    unsigned lease_ttl, unsigned batch, unsigned *held, unsigned *removed,
    unsigned *more, char *err, size_t errlen) OAUTH2_NOEXCEPT;
/* what this process's committer did: batches committed (one sync each),
 * changes submitted, changes that had to run again */
typedef struct {
    uint64_t  batches;
    uint64_t  changes;
    uint64_t  conflicts;
    uint64_t  map_size;     /* the most the store may grow to, bytes */
    uint64_t  used;         /* what its pages use now */
    int       cluster;      /* oauth2_cluster: the store is etcd's mirror */
    int64_t   mirror_revision;  /* the etcd revision it has applied */
    int64_t   mirror_age_ms;    /* since its freshness was last proven;
                                   -1: never */
} oauth2_store_stats_t;

/*
 * The commits of every process sharing these counters (the shim puts
 * them in shared memory, for oauth2_metrics): commits, the changes they
 * wrote and changes run again, the seconds each commit took (its sync
 * included) and how many changes it wrote, as histograms with the
 * bounds below (each bucket counted alone; the last one has no upper
 * bound), and the changes a store error refused.  A batch that failed
 * is no commit: each of its changes tried alone and written is one of
 * its own.  Updated with atomic adds by the committer's leader, one
 * counter after the other: a reader sums the buckets for the count.
 */
#define OAUTH2_COMMIT_BUCKETS  12
#define OAUTH2_BATCH_BUCKETS   10

typedef struct {
    uint64_t  batches;                          /* commits */
    uint64_t  changes;                          /* written */
    uint64_t  conflicts;
    uint64_t  errors;                           /* refused by the store */
    uint64_t  commit_usec;                      /* the sum */
    uint64_t  commit[OAUTH2_COMMIT_BUCKETS];
    uint64_t  batch[OAUTH2_BATCH_BUCKETS];
} oauth2_write_metrics_t;

/* the upper bounds: seconds, and changes per batch */
double oauth2_commit_bound(unsigned bucket) OAUTH2_NOEXCEPT;
unsigned oauth2_batch_bound(unsigned bucket) OAUTH2_NOEXCEPT;

/* from now on this store's commits are counted in *shared too (NULL: no
 * longer); kept across reopenings */
void oauth2_store_share_metrics(oauth2_store_t *store,
    oauth2_write_metrics_t *shared) OAUTH2_NOEXCEPT;

void oauth2_store_stats(oauth2_store_t *store, oauth2_store_stats_t *st)
    OAUTH2_NOEXCEPT;

/* gives the lease up if owner holds it (a worker that exits) */
void oauth2_expiry_release(oauth2_store_t *store, const char *owner)
    OAUTH2_NOEXCEPT;


/* ------------------------------------------------------- endpoint table */

#define OAUTH2_ENDPOINT_NONE        0   /* auth_oauth2 only */
#define OAUTH2_ENDPOINT_TOKEN       1
#define OAUTH2_ENDPOINT_REVOKE      2
#define OAUTH2_ENDPOINT_AUTHORIZE   3
#define OAUTH2_ENDPOINT_INTROSPECT  4
#define OAUTH2_ENDPOINT_REGISTER    5
#define OAUTH2_ENDPOINT_LOGIN       6
#define OAUTH2_ENDPOINT_METADATA    7
#define OAUTH2_ENDPOINT_HANDSHAKE   8
#define OAUTH2_ENDPOINT_JWKS        9
#define OAUTH2_ENDPOINT_JWT_TOKEN   10
#define OAUTH2_ENDPOINT_JWT_REFRESH 11
#define OAUTH2_ENDPOINT_STATUS      12
#define OAUTH2_ENDPOINT_USERINFO    13
#define OAUTH2_ENDPOINT_END_SESSION 14
#define OAUTH2_ENDPOINT_DEVICE_AUTHORIZATION 15  /* RFC 8628 3.1 */
#define OAUTH2_ENDPOINT_DEVICE      16  /* its verification page */
#define OAUTH2_ENDPOINT_AUTHORIZED_GRANTS 17
#define OAUTH2_ENDPOINT_MAX         18

/* what the shim needs to know of an endpoint kind (src/core/endpoint_table) */
typedef struct {
    const char  *directive;     /* "oauth2_token" */
    const char  *allow;         /* the Allow header of its 405 */
    unsigned     prefix:1;      /* serves the URIs under its location */
    unsigned     cookies:1;     /* reads the Cookie header */
} oauth2_endpoint_info_t;

/* NULL for an unknown id */
const oauth2_endpoint_info_t *oauth2_endpoint_info(int endpoint)
    OAUTH2_NOEXCEPT;


/* -------------------------------------------------------- configuration */

/*
 * One per http{} block and configuration cycle: the key files its
 * locations name (each read once), and the first location of each
 * endpoint kind in each realm (its metadata names them).  Read-only once
 * nginx has parsed the configuration, and shared by every thread.
 */
oauth2_conf_t *oauth2_conf_create(void) OAUTH2_NOEXCEPT;
void oauth2_conf_destroy(oauth2_conf_t *conf) OAUTH2_NOEXCEPT;

/*
 * Once every location is made: 1 and a realm (valid while conf is) that
 * has a device authorization endpoint but no verification page (a prefix
 * or exact location with oauth2_device) to name; 0 if none has.
 */
int oauth2_conf_device_page_missing(const oauth2_conf_t *conf,
    oauth2_str_t *realm) OAUTH2_NOEXCEPT;

/*
 * Once every location is made: 1 and a realm (valid while conf is) that
 * has an authorization endpoint and a key that signs id_tokens (at a
 * token endpoint, or at the metadata, which then offers OpenID) but no
 * JWKS (a prefix or exact location with oauth2_jwks) to name as the
 * jwks_uri relying parties verify them with; 0 if none has.
 */
int oauth2_conf_jwks_missing(const oauth2_conf_t *conf,
    oauth2_str_t *realm) OAUTH2_NOEXCEPT;

/*
 * A store realm's name (oauth2_realm, oauth2-admin --realm): 1 to 64
 * letters, digits, ".", "-" or "_".
 */
int oauth2_valid_realm(const oauth2_str_t *name) OAUTH2_NOEXCEPT;

/* one window of oauth2_rate_limit: limit requests per window seconds */
typedef struct {
    unsigned     limit;
    unsigned     window;
} oauth2_rate_window_t;

#define OAUTH2_MAX_RATES  2
/* oauth2_validation_cache's default: entries per location and worker */
#define OAUTH2_VALID_CACHE_DEFAULT  1024

/* a JWT key file of oauth2_jwt_key */
typedef struct {
    oauth2_str_t  path;
    unsigned      hmac;
} oauth2_key_file_t;

/* The settings of a location, as its directives give them (merged). */
typedef struct {
    int                       endpoint;         /* OAUTH2_ENDPOINT_* */
    oauth2_str_t              realm;            /* the store realm */
    oauth2_str_t              path;             /* an endpoint's own prefix
                                                   or exact location: its
                                                   name (the first of each
                                                   endpoint in a realm is
                                                   the one metadata names);
                                                   else empty */

    /* auth_oauth2 */
    unsigned                  auth;
    oauth2_str_t              auth_realm;       /* the challenge's realm */
    const oauth2_str_t       *scopes;           /* all required */
    size_t                    nscopes;
    unsigned                  valid_cache;      /* oauth2_validation_cache:
                                                   entries, 0: off */

    /* tokens */
    int64_t                   access_token_ttl; /* seconds */
    int64_t                   refresh_token_ttl;
    int64_t                   refresh_grace;
    int64_t                   code_ttl;
    int64_t                   device_code_ttl;  /* RFC 8628 */
    oauth2_str_t              default_scope;    /* space separated */
    unsigned                  pbkdf2_iterations;
    oauth2_str_t              login_client_id;  /* oauth2_login, ... */
    oauth2_str_t              issuer;
    oauth2_str_t              audience;         /* JWT "aud"; empty: issuer */
    oauth2_str_t              auth_audience;    /* auth_oauth2_audience;
                                                   empty: audience */
    unsigned                  jwt_access_tokens;
    const oauth2_key_file_t  *jwt_keys;
    size_t                    njwt_keys;

    /* the authorization endpoint's pages; empty: the built-in ones */
    oauth2_str_t              login_template;
    oauth2_str_t              consent_template;
    oauth2_str_t              error_template;

    /* seed 002's handshake, seed 003's status */
    oauth2_str_t              handshake_key;    /* a file */
    int64_t                   handshake_max_ttl;
    const oauth2_str_t *const *solutions;       /* each: name, role=db ... */
    const size_t             *solution_sizes;
    size_t                    nsolutions;
    oauth2_str_t              status_service;
    oauth2_str_t              status_header;    /* lower case */
    oauth2_str_t              status_token_file;

    /* limits */
    oauth2_str_t              password_policy;  /* empty: Django's */
    unsigned                  auth_limit;       /* oauth2_client_auth_limit */
    unsigned                  auth_window;
    unsigned                  account_limit;    /* oauth2_account_limit */
    unsigned                  account_window;
    oauth2_rate_window_t      rates[OAUTH2_MAX_RATES];
    size_t                    nrates;

    /* oauth2_dpop (RFC 9449) */
    unsigned                  dpop;
    unsigned                  dpop_nonce;
    unsigned                  dpop_window;      /* seconds */
} oauth2_location_conf_t;

/*
 * Builds the core's object of a location: key files are read here (once
 * per configuration, through conf), so a reload reads them again.  NULL
 * with a message in err (nginx -t shows it) on a bad setting.
 */
oauth2_location_t *oauth2_location_create(oauth2_conf_t *conf,
    const oauth2_location_conf_t *lc, char *err, size_t errlen)
    OAUTH2_NOEXCEPT;
void oauth2_location_destroy(oauth2_location_t *loc) OAUTH2_NOEXCEPT;

/* the one extra request header the location reads (oauth2_status's), or
 * an empty string */
oauth2_str_t oauth2_location_header(const oauth2_location_t *loc)
    OAUTH2_NOEXCEPT;

/* checks a directive's value at the directive (nginx -t names its line) */
int oauth2_check_password_policy(oauth2_str_t spec, char *err, size_t errlen)
    OAUTH2_NOEXCEPT;
/* 1 if a valid scope list (space separated NQCHAR tokens) */
int oauth2_scope_valid(const unsigned char *s, size_t len) OAUTH2_NOEXCEPT;
/* 1 if an RFC 8707 resource: an absolute URI without a fragment */
int oauth2_resource_valid(const unsigned char *s, size_t len) OAUTH2_NOEXCEPT;


/* ------------------------------------------------------------- counters */

/*
 * The counters the shim keeps in shared memory (oauth2_limit_zone), for
 * the limits the core decides (its keys and thresholds): request rates in
 * clock-aligned windows, and throttles of failed attempts in windows
 * opened at the first failure.  Called on the event loop only.
 */

/* check(): the key is new and the zone has no room to count it */
#define OAUTH2_COUNTER_FULL  0xffffffffu

typedef struct {
    unsigned     limit;         /* the first window's limit */
    unsigned     remaining;     /* the fewest left in any window */
    int64_t      reset;         /* when that window ends (unix time) */
    unsigned     set;           /* a rate limit counted this request */
} oauth2_rate_state_t;

typedef struct {
    void      *ctx;
    /* counts one request of key in every window or in none: 0 if
     * allowed, else the seconds until it would be; fills *st */
    unsigned (*take)(void *ctx, const unsigned char *key, size_t len,
                     const oauth2_rate_window_t *w, size_t nw,
                     oauth2_rate_state_t *st);
    /* seconds until key may try again (it has `limit` failures in its
     * window), 0 if it may now, or OAUTH2_COUNTER_FULL */
    unsigned (*check)(void *ctx, const unsigned char *key, size_t len,
                      unsigned limit, unsigned window);
    /* counts a failure of key */
    void     (*failed)(void *ctx, const unsigned char *key, size_t len,
                       unsigned window);
    /* records key for ttl seconds (a DPoP proof's jti): 0 if it was new,
     * 1 if it is recorded already, or OAUTH2_COUNTER_FULL if it cannot
     * be recorded; NULL: nothing can be (proofs are refused) */
    unsigned (*seen)(void *ctx, const unsigned char *key, size_t len,
                     unsigned ttl);
} oauth2_counters_t;


/* ------------------------------------------------------------ endpoints */

/* The request, as the shim read it: nothing of the configuration. */
typedef struct {
    oauth2_str_t       method;
    oauth2_str_t       content_type;        /* the first Content-Type */
    unsigned           content_type_count;  /* how many were sent */
    unsigned           has_query;
    oauth2_str_t       query;               /* without '?' */
    unsigned           has_authorization;
    oauth2_str_t       authorization;
    oauth2_str_t       cookie;              /* Cookie headers, "; " joined,
                                               if the endpoint reads them */
    unsigned           header_count;        /* oauth2_location_header() */
    oauth2_str_t       header;
    oauth2_str_t       body;
    oauth2_str_t       subpath;             /* the URI after the location */
    oauth2_str_t       address;             /* the client's, as text */
    unsigned           secure;              /* https: Secure cookies */
    int64_t            now;                 /* unix seconds */
    oauth2_str_t       resume;              /* resp.resume of the pass
                                               before (OAUTH2_AGAIN) */
    oauth2_counters_t  counters;            /* take NULL: none */
    unsigned           dpop_count;          /* DPoP headers sent */
    oauth2_str_t       dpop;                /* the first */
    oauth2_str_t       path;                /* the request's URI path (a
                                               DPoP proof's htu) */
    unsigned           fetch_site_count;    /* Sec-Fetch-Site headers */
    oauth2_str_t       fetch_site;          /* the first */
} oauth2_request_t;


#define OAUTH2_MAX_COOKIES  3


typedef struct {
    int                  status;            /* HTTP status */
    unsigned             basic_challenge;   /* add WWW-Authenticate: Basic */
    unsigned             bearer_challenge;  /* ... Bearer realm="api" (DRF) */
    unsigned             auth_failed;       /* a credential was wrong */
    unsigned             html;              /* text/html + page headers */
    unsigned             retry_after;       /* seconds, 0: no header */
    oauth2_str_t         location;          /* from the allocator */
    oauth2_str_t         set_cookie[OAUTH2_MAX_COOKIES];
    unsigned char       *body;              /* from the allocator */
    size_t               body_len;
    oauth2_rate_state_t  rate;              /* X-RateLimit-* */
    oauth2_str_t         resume;            /* OAUTH2_AGAIN: req.resume of
                                               the next pass */
    const char          *refused;           /* a refusal worth a log line
                                               (static text), or NULL */
    unsigned             refused_info;      /* ... at info, not at
                                               oauth2_refusal_log_level:
                                               the protocol's own course
                                               (use_dpop_nonce) */
    oauth2_str_t         reason;            /* why a 5xx, for the log */
    unsigned             limited;           /* OAUTH2_LIMITED_*: a 429 of
                                               a limit, for the metrics */
    oauth2_str_t         grant;             /* the token request's
                                               grant_type, if known */
    oauth2_str_t         issued_client;     /* an access token was issued
                                               to this client_id ... */
    oauth2_str_t         token_id;          /* ... under this short id */
    oauth2_str_t         www_authenticate;  /* a challenge the core built
                                               (userinfo), or empty */
    oauth2_str_t         dpop_nonce;        /* a DPoP-Nonce header */
    unsigned             unavailable;       /* a 503's reason:
                                               OAUTH2_UNAVAILABLE_* */
} oauth2_response_t;

#define OAUTH2_LIMITED_NONE      0
#define OAUTH2_LIMITED_RATE      1   /* oauth2_rate_limit */
#define OAUTH2_LIMITED_THROTTLE  2   /* failed authentications */

/*
 * The grants of the token endpoint, the core's one list: a response's
 * grant (its grant_type) is one of them, and oauth2_metrics labels the
 * tokens it issued with its label: client_credentials,
 * authorization_code, refresh_token, password, device_code (RFC 8628's
 * urn:ietf:params:oauth:grant-type:device_code).  The index of a grant
 * in the list, -1 if none; the label of an index, NULL out of range.
 */
#define OAUTH2_GRANT_COUNT       5

int oauth2_grant_index(const oauth2_str_t *grant) OAUTH2_NOEXCEPT;
const char *oauth2_grant_label(int index) OAUTH2_NOEXCEPT;


/*
 * On the event loop.  Parses and checks the request, authenticates the
 * client (read transactions only) and either fills *resp and returns
 * OAUTH2_OK, or returns OAUTH2_PENDING with *op set to the work that
 * remains.  Then: oauth2_op_run(op) on any thread (it may wait for the
 * store's writer lock and fsync, or hash a password), and
 * oauth2_op_finish() back on the event loop, which frees op and either
 * fills *resp (OAUTH2_OK) or returns OAUTH2_AGAIN: the request runs once
 * more through oauth2_endpoint_begin(), with req->resume set to
 * resp->resume (a client secret verified off the event loop).  store may
 * be NULL (not open in this process): the endpoints that need it answer
 * 503.
 */
int oauth2_endpoint_begin(oauth2_store_t *store, const oauth2_location_t *loc,
    const oauth2_request_t *req, oauth2_op_t **op, oauth2_alloc_pt alloc,
    void *ctx, oauth2_response_t *resp) OAUTH2_NOEXCEPT;
void oauth2_op_run(oauth2_op_t *op) OAUTH2_NOEXCEPT;
/* 1 if op hashes a password: the shim runs few of those at once
 * (oauth2_hash_limit), so that they cannot starve the store writes */
int oauth2_op_slow(const oauth2_op_t *op) OAUTH2_NOEXCEPT;
int oauth2_op_finish(oauth2_op_t *op, oauth2_alloc_pt alloc, void *ctx,
    oauth2_response_t *resp) OAUTH2_NOEXCEPT;
void oauth2_op_free(oauth2_op_t *op) OAUTH2_NOEXCEPT;
/*
 * 1 if op is a change decided already on the event loop, which needs only
 * its commit: the shim may commit several such ops together, on one
 * thread and in one store transaction with one sync, by
 * oauth2_ops_commit() instead of oauth2_op_run() on each; then
 * oauth2_op_finish() each as usual.  An op whose reads no longer hold at
 * its commit is decided again inside oauth2_ops_commit().
 *
 * oauth2_ops_commit() waits for the store's writer lock, then calls
 * take(ctx, &ops) once to learn which ops (at most 256; *ops stays the
 * caller's), so that ops queued while another process committed join
 * this batch.
 */
int oauth2_op_prepared(const oauth2_op_t *op) OAUTH2_NOEXCEPT;
typedef size_t (*oauth2_ops_take_pt)(void *ctx, oauth2_op_t ***ops);
void oauth2_ops_commit(oauth2_store_t *store, oauth2_ops_take_pt take,
    void *ctx) OAUTH2_NOEXCEPT;

/* what the shim refuses without the core's decision */
#define OAUTH2_REFUSED_TOO_LARGE   1   /* 413: the body */
#define OAUTH2_REFUSED_BUSY        2   /* 503: oauth2_hash_limit or the
                                           thread pool's queue is full */
#define OAUTH2_REFUSED_FAILED      3   /* 500: the body could not be read */

/*
 * Why an endpoint or auth_oauth2 answered 503, the reason label of
 * oauth2_metrics' oauth2_unavailable_total: the core's from the failure
 * behind it (a response's and a validation's "unavailable"), and the
 * shim's own refusals (OAUTH2_REFUSED_BUSY).
 */
#define OAUTH2_UNAVAILABLE_NONE          0
#define OAUTH2_UNAVAILABLE_STORE         1   /* not open, full, a disk
                                                 error, a mirror's file */
#define OAUTH2_UNAVAILABLE_MIRROR        2   /* oauth2_cluster: the mirror
                                                 is staler than
                                                 max_staleness or behind */
#define OAUTH2_UNAVAILABLE_CLUSTER       3   /* oauth2_cluster: etcd cannot
                                                 take the write (no
                                                 quorum, out of reach) */
#define OAUTH2_UNAVAILABLE_HASH_QUEUE    4   /* oauth2_hash_limit's queue */
#define OAUTH2_UNAVAILABLE_THREAD_QUEUE  5   /* the thread pool's queue */
#define OAUTH2_UNAVAILABLE_COUNT         6

/* "store", "mirror", "cluster", "hash_queue", "thread_queue"; "" for
 * NONE or out of range */
const char *oauth2_unavailable_name(int reason) OAUTH2_NOEXCEPT;

/* the refusal in the endpoint's shape (JSON, page, envelope) */
int oauth2_refusal(const oauth2_location_t *loc, int why,
    unsigned retry_after, oauth2_alloc_pt alloc, void *ctx,
    oauth2_response_t *resp) OAUTH2_NOEXCEPT;


/* ----------------------------------------------------- bearer validation */

#define OAUTH2_VALID               0
#define OAUTH2_NO_TOKEN            1   /* 401, challenge without error */
#define OAUTH2_INVALID_REQUEST     2   /* 400 error="invalid_request" */
#define OAUTH2_INVALID_TOKEN       3   /* 401 error="invalid_token" */
#define OAUTH2_INSUFFICIENT_SCOPE  4   /* 403 error="insufficient_scope" */
#define OAUTH2_UNAVAILABLE         5   /* 503 */
#define OAUTH2_RATE_LIMITED        6   /* 429: oauth2_rate_limit */

/*
 * Why a validation ended as it did, finer than the result: $oauth2_error
 * and the metrics' outcome label.  An opaque token that was revoked reads
 * as unknown (revocation deletes its record); a signed JWT whose record
 * is gone reads as revoked.
 */
#define OAUTH2_WHY_OK                  0
#define OAUTH2_WHY_MISSING             1
#define OAUTH2_WHY_MALFORMED           2
#define OAUTH2_WHY_UNKNOWN             3
#define OAUTH2_WHY_EXPIRED             4
#define OAUTH2_WHY_REVOKED             5
#define OAUTH2_WHY_DISABLED            6   /* its application or user */
#define OAUTH2_WHY_INSUFFICIENT_SCOPE  7
#define OAUTH2_WHY_RATE_LIMITED        8
#define OAUTH2_WHY_STORE_UNAVAILABLE   9
#define OAUTH2_WHY_AUDIENCE            10  /* not for this location */
#define OAUTH2_WHY_DPOP_NONCE          11  /* a DPoP proof without the
                                              nonce of now: answered
                                              use_dpop_nonce with one, RFC
                                              9449's normal course */
#define OAUTH2_WHY_COUNT               12

/* "ok", "missing", ... "store_unavailable"; "" out of range */
const char *oauth2_why_name(int why) OAUTH2_NOEXCEPT;


typedef struct {
    unsigned             has_authorization;
    oauth2_str_t         authorization;
    unsigned             api_key_count;     /* X-API-KEY headers sent */
    oauth2_str_t         api_key;
    int64_t              now;
    /* the location's rate limit, per client: counted unless this request
     * was counted already (an internal redirect runs the phase again);
     * a public client's tokens count per client and address */
    unsigned             rate_counted;
    oauth2_str_t         address;           /* the client's, as nginx has
                                               it (after realip) */
    oauth2_counters_t    counters;
    oauth2_str_t         method;            /* a DPoP proof's htm ... */
    oauth2_str_t         path;              /* ... and htu's path */
    unsigned             dpop_count;        /* DPoP headers sent */
    oauth2_str_t         dpop;              /* the first */
    unsigned             dpop_recorded;     /* this request's proof was
                                               recorded already (an
                                               internal redirect) */
} oauth2_validate_req_t;


typedef struct {
    int                  result;            /* OAUTH2_VALID ... */
    oauth2_str_t         client_id;         /* from the allocator */
    oauth2_str_t         scope;
    oauth2_str_t         user;
    int64_t              expires;           /* unix seconds */
    oauth2_rate_state_t  rate;              /* X-RateLimit-* */
    unsigned             retry_after;       /* OAUTH2_RATE_LIMITED */
    int                  status;            /* a refusal's HTTP status */
    const char          *error;             /* its RFC 6750 error, or NULL */
    oauth2_str_t         challenge;         /* WWW-Authenticate, or empty */
    oauth2_str_t         reason;            /* why OAUTH2_UNAVAILABLE, for
                                               the log */
    unsigned             unavailable;       /* ... and OAUTH2_UNAVAILABLE_*,
                                               for the metrics */
    int                  why;               /* OAUTH2_WHY_* */
    oauth2_str_t         token_id;          /* short, not secret; empty
                                               when none was presented */
    oauth2_str_t         dpop_nonce;        /* a DPoP-Nonce header */
    unsigned             dpop_recorded;     /* a proof was recorded */
    unsigned             cached;            /* answered by the location's
                                               oauth2_validation_cache */
} oauth2_validate_res_t;


/* store may be NULL (not open in this process): OAUTH2_UNAVAILABLE */
int oauth2_validate(oauth2_store_t *store, const oauth2_location_t *loc,
    const oauth2_validate_req_t *req, oauth2_alloc_pt alloc, void *ctx,
    oauth2_validate_res_t *res) OAUTH2_NOEXCEPT;


#ifdef __cplusplus
}
#endif

#endif /* OAUTH2_H */
