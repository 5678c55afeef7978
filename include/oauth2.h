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


typedef struct oauth2_store_s  oauth2_store_t;
typedef struct oauth2_op_s     oauth2_op_t;


typedef struct {
    const unsigned char  *data;
    size_t                len;
} oauth2_str_t;


/* returns NULL on failure; memory is owned by the caller's pool */
typedef void *(*oauth2_alloc_pt)(void *ctx, size_t size);


/* ---------------------------------------------------------------- store */

/*
 * Master process, at start and on reload (never with "nginx -t"): create
 * the directory if missing, create or validate the environment, close it,
 * and give the directory and its files to uid/gid (-1: leave as is).
 * Never destroys or rewrites data.
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

/* clears reader slots of dead processes; *dead gets how many */
int oauth2_store_reader_check(oauth2_store_t *store, int *dead) OAUTH2_NOEXCEPT;


/* ------------------------------------------------------------ endpoints */

#define OAUTH2_ENDPOINT_TOKEN       1
#define OAUTH2_ENDPOINT_REVOKE      2
#define OAUTH2_ENDPOINT_AUTHORIZE   3
#define OAUTH2_ENDPOINT_INTROSPECT  4
#define OAUTH2_ENDPOINT_REGISTER    5
#define OAUTH2_ENDPOINT_LOGIN       6
#define OAUTH2_ENDPOINT_METADATA    7
#define OAUTH2_ENDPOINT_HANDSHAKE   8   /* seed 002: create/, validate/... */
#define OAUTH2_ENDPOINT_JWKS        9
#define OAUTH2_ENDPOINT_JWT_TOKEN   10  /* seed 003: /api/token/ */
#define OAUTH2_ENDPOINT_JWT_REFRESH 11  /* seed 003: /api/token/refresh/ */
#define OAUTH2_ENDPOINT_STATUS      12  /* seed 003: /api/status/ */


/* ------------------------------------------------------------- settings */

/*
 * What a location's directives load from files at configuration time
 * (JWT keys, the handshake key, the status token) and the handshake
 * solutions.  Built once per configuration cycle, read-only afterwards and
 * shared by every thread; a reload builds a new one, so key files are read
 * again.  The add/set functions return OAUTH2_ERROR with a message in err
 * (for nginx -t).
 */
typedef struct oauth2_settings_s  oauth2_settings_t;

oauth2_settings_t *oauth2_settings_create(void) OAUTH2_NOEXCEPT;
void oauth2_settings_destroy(oauth2_settings_t *s) OAUTH2_NOEXCEPT;
/* a PEM key (ES256, EdDSA, RS256; a public key only verifies), or with
 * hmac an HS256 secret of at least 32 bytes; the first that can sign
 * signs */
int oauth2_settings_add_jwt_key(oauth2_settings_t *s, const char *path,
    int hmac, char *err, size_t errlen) OAUTH2_NOEXCEPT;
/* the HS256 key of handshake tokens; without one, the store's own */
int oauth2_settings_set_handshake_key(oauth2_settings_t *s, const char *path,
    char *err, size_t errlen) OAUTH2_NOEXCEPT;
/* a solution: its name, then "role=database" pairs */
int oauth2_settings_add_solution(oauth2_settings_t *s,
    const oauth2_str_t *args, size_t nargs, char *err, size_t errlen)
    OAUTH2_NOEXCEPT;
/* the status endpoint: the service name and the file holding the token
 * (only its SHA-256 is kept) */
int oauth2_settings_set_status(oauth2_settings_t *s, oauth2_str_t service,
    const char *token_path, char *err, size_t errlen) OAUTH2_NOEXCEPT;
/* oauth2_password_policy: "off" or "min_length=<n> similarity=<x>|off
 * common=on|off numeric=on|off" (without it: Django's defaults) */
int oauth2_settings_set_password_policy(oauth2_settings_t *s,
    oauth2_str_t spec, char *err, size_t errlen) OAUTH2_NOEXCEPT;
/* 1 if a key can sign JWTs */
int oauth2_settings_can_sign(const oauth2_settings_t *s) OAUTH2_NOEXCEPT;


/* ---------------------------------------------------------- rate limits */

/*
 * Request rate limits, counted by the shim in shared memory.  The core
 * calls take() once it knows who is calling ("k:" an API key's id, "c:" a
 * client id, "a:" an address); a request that ends without that is
 * counted by the shim against its address.
 */
typedef struct {
    void      *ctx;
    /* counts one request; 0 if allowed, else seconds until it would be */
    unsigned (*take)(void *ctx, const unsigned char *key, size_t len);
} oauth2_rate_t;


/*
 * Counters of failed attempts that the shim keeps in shared memory
 * (oauth2_limit_zone) for the core's throttles; the core builds the keys
 * and decides the limits.  A window of `window` seconds opens at a key's
 * first failure.
 */

/* check(): the key is new and the zone has no room to count it */
#define OAUTH2_THROTTLE_FULL  0xffffffffu

typedef struct {
    void      *ctx;
    /* seconds until key may try again (it has `limit` failures in its
     * window), 0 if it may now, or OAUTH2_THROTTLE_FULL */
    unsigned (*check)(void *ctx, const unsigned char *key, size_t len,
                      unsigned limit, unsigned window);
    /* counts a failure of key */
    void     (*failed)(void *ctx, const unsigned char *key, size_t len,
                       unsigned window);
    unsigned   limit;            /* oauth2_client_auth_limit; 0: off */
    unsigned   window;           /* its seconds */
    unsigned   account_limit;    /* oauth2_account_limit; 0: off */
    unsigned   account_window;
} oauth2_throttle_t;


typedef struct {
    oauth2_str_t       method;
    oauth2_str_t       content_type;        /* the first Content-Type */
    unsigned           content_type_count;  /* how many were sent */
    unsigned           has_query;
    oauth2_str_t       query;               /* without '?' */
    unsigned           has_authorization;
    oauth2_str_t       authorization;
    oauth2_str_t       cookie;              /* Cookie headers, "; " joined */
    oauth2_str_t       body;
    unsigned           secure;              /* https: Secure cookies */
    int64_t            now;                 /* unix seconds */
    oauth2_str_t       address;             /* the client's, as text */
    oauth2_str_t       resume;              /* resp.resume of the pass
                                               before (OAUTH2_AGAIN) */

    /* settings of the location */
    oauth2_str_t       realm;               /* store realm, "default" */
    int64_t            access_token_ttl;    /* seconds */
    int64_t            refresh_token_ttl;
    int64_t            refresh_grace;       /* reuse of a rotated RT */
    int64_t            code_ttl;
    oauth2_str_t       default_scope;       /* space separated */
    unsigned           pbkdf2_iterations;
    oauth2_str_t       login_client_id;     /* oauth2_login's application */

    /* the authorization endpoint's pages; empty: the built-in ones */
    oauth2_str_t       login_template;
    oauth2_str_t       consent_template;
    oauth2_str_t       error_template;

    /* metadata (RFC 8414): the issuer and the endpoints' paths */
    oauth2_str_t       issuer;
    oauth2_str_t       token_path;
    oauth2_str_t       authorize_path;
    oauth2_str_t       revoke_path;
    oauth2_str_t       introspect_path;
    oauth2_str_t       jwks_path;

    oauth2_throttle_t  throttle;
    oauth2_rate_t      rate;                /* take is NULL: no limit */

    const oauth2_settings_t *settings;      /* NULL: none */
    oauth2_str_t       subpath;             /* the URI after the location */
    unsigned           jwt_access_tokens;   /* oauth2_access_token_format */
    oauth2_str_t       audience;            /* JWT "aud"; empty: issuer */
    int64_t            handshake_max_ttl;   /* seconds */
    unsigned           status_header_count; /* oauth2_status's header */
    oauth2_str_t       status_header;
} oauth2_endpoint_req_t;


#define OAUTH2_MAX_COOKIES  2


typedef struct {
    int                status;              /* HTTP status */
    unsigned           basic_challenge;     /* add WWW-Authenticate: Basic */
    unsigned           bearer_challenge;    /* ... Bearer realm="api" (DRF) */
    unsigned           auth_failed;         /* a credential was wrong */
    unsigned           html;                /* text/html + page headers */
    unsigned           retry_after;         /* seconds, 0: no header */
    oauth2_str_t       location;            /* from the allocator */
    oauth2_str_t       set_cookie[OAUTH2_MAX_COOKIES];
    unsigned char     *body;                /* from the allocator */
    size_t             body_len;
    const char        *store_error;         /* static text, for the log */
    oauth2_str_t       resume;              /* OAUTH2_AGAIN: req.resume of
                                               the next pass */
    const char        *refused;             /* a refusal worth a log line
                                               (static text), or NULL */
} oauth2_response_t;


/*
 * On the event loop.  Parses and checks the request, authenticates the
 * client (read transaction only) and either fills *resp and returns
 * OAUTH2_OK, or returns OAUTH2_PENDING with *op set to the work that
 * remains.  Then: oauth2_op_run(op) on any thread (it may wait for the
 * store's writer lock and fsync, or hash a password), and
 * oauth2_op_finish() back on the event loop, which frees op and either
 * fills *resp (OAUTH2_OK) or returns OAUTH2_AGAIN: the request runs once
 * more through oauth2_endpoint_begin(), with req->resume set to
 * resp->resume (a client secret verified off the event loop).
 */
#define OAUTH2_AGAIN     2

int oauth2_endpoint_begin(oauth2_store_t *store, int endpoint,
    const oauth2_endpoint_req_t *req, oauth2_op_t **op,
    oauth2_alloc_pt alloc, void *ctx, oauth2_response_t *resp) OAUTH2_NOEXCEPT;
void oauth2_op_run(oauth2_op_t *op) OAUTH2_NOEXCEPT;
/* 1 if op hashes a password: the shim runs few of those at once
 * (oauth2_hash_queue), so that they cannot starve the store writes */
int oauth2_op_slow(const oauth2_op_t *op) OAUTH2_NOEXCEPT;
int oauth2_op_finish(oauth2_op_t *op, oauth2_alloc_pt alloc, void *ctx,
    oauth2_response_t *resp) OAUTH2_NOEXCEPT;

/* 1 if the endpoint calls rate.take() with its caller's identity; the
 * shim counts the others against the address before calling the core */
int oauth2_rate_by_caller(int endpoint) OAUTH2_NOEXCEPT;

/* what the shim refuses before the core sees a request */
#define OAUTH2_REFUSED_RATE_LIMIT  1   /* 429: oauth2_rate_limit */
#define OAUTH2_REFUSED_LOCKED_OUT  2   /* 429: failed authentications */
#define OAUTH2_REFUSED_TOO_LARGE   3   /* 413: the body */
#define OAUTH2_REFUSED_BUSY        4   /* 503: oauth2_hash_queue is full */

/* the refusal in the endpoint's shape (JSON, page, envelope) */
int oauth2_refusal(int endpoint, int why, unsigned retry_after,
    oauth2_alloc_pt alloc, void *ctx, oauth2_response_t *resp)
    OAUTH2_NOEXCEPT;
void oauth2_op_free(oauth2_op_t *op) OAUTH2_NOEXCEPT;


/* ----------------------------------------------------- bearer validation */

#define OAUTH2_VALID               0
#define OAUTH2_NO_TOKEN            1   /* 401, challenge without error */
#define OAUTH2_INVALID_REQUEST     2   /* 400 error="invalid_request" */
#define OAUTH2_INVALID_TOKEN       3   /* 401 error="invalid_token" */
#define OAUTH2_INSUFFICIENT_SCOPE  4   /* 403 error="insufficient_scope" */
#define OAUTH2_UNAVAILABLE         5   /* 503 */


typedef struct {
    unsigned             has_authorization;
    oauth2_str_t         authorization;
    unsigned             api_key_count;     /* X-API-KEY headers sent */
    oauth2_str_t         api_key;
    const oauth2_str_t  *scopes;            /* required, all of them */
    size_t               nscopes;
    oauth2_str_t         realm;             /* store realm */
    int64_t              now;

    /* JWT bearer tokens: verified by these keys (and the handshake key),
     * their iss and aud checked when not empty.  NULL settings: a JWT is
     * accepted on its jti's record alone (the admin daemon) */
    const oauth2_settings_t *settings;
    oauth2_str_t         issuer;
    oauth2_str_t         audience;
} oauth2_validate_req_t;


typedef struct {
    int                  result;            /* OAUTH2_VALID ... */
    oauth2_str_t         client_id;         /* from the allocator */
    oauth2_str_t         scope;
    oauth2_str_t         user;
    int64_t              expires;           /* unix seconds */
} oauth2_validate_res_t;


int oauth2_validate(oauth2_store_t *store, const oauth2_validate_req_t *req,
    oauth2_alloc_pt alloc, void *ctx, oauth2_validate_res_t *res)
    OAUTH2_NOEXCEPT;


/* --------------------------------------------------------------- checks */

/* 1 if s is a valid scope list (space separated NQCHAR tokens) */
int oauth2_scope_valid(const unsigned char *s, size_t len) OAUTH2_NOEXCEPT;


#ifdef __cplusplus
}
#endif

#endif /* OAUTH2_H */
