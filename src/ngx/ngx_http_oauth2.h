
/*
 * ngx_http_oauth2_module: declarations shared by the shim's files.
 * The shim is nginx glue only; every OAuth decision is made by the core
 * behind include/oauth2.h.
 */


#ifndef _NGX_HTTP_OAUTH2_H_INCLUDED_
#define _NGX_HTTP_OAUTH2_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <oauth2.h>


#define NGX_HTTP_OAUTH2_ENDPOINT_NONE        0
#define NGX_HTTP_OAUTH2_ENDPOINT_TOKEN       OAUTH2_ENDPOINT_TOKEN
#define NGX_HTTP_OAUTH2_ENDPOINT_REVOKE      OAUTH2_ENDPOINT_REVOKE
#define NGX_HTTP_OAUTH2_ENDPOINT_AUTHORIZE   OAUTH2_ENDPOINT_AUTHORIZE
#define NGX_HTTP_OAUTH2_ENDPOINT_INTROSPECT  OAUTH2_ENDPOINT_INTROSPECT
#define NGX_HTTP_OAUTH2_ENDPOINT_REGISTER    OAUTH2_ENDPOINT_REGISTER
#define NGX_HTTP_OAUTH2_ENDPOINT_LOGIN       OAUTH2_ENDPOINT_LOGIN
#define NGX_HTTP_OAUTH2_ENDPOINT_METADATA    OAUTH2_ENDPOINT_METADATA

#define NGX_HTTP_OAUTH2_ENDPOINT_HANDSHAKE   OAUTH2_ENDPOINT_HANDSHAKE
#define NGX_HTTP_OAUTH2_ENDPOINT_JWKS        OAUTH2_ENDPOINT_JWKS
#define NGX_HTTP_OAUTH2_ENDPOINT_JWT_TOKEN   OAUTH2_ENDPOINT_JWT_TOKEN
#define NGX_HTTP_OAUTH2_ENDPOINT_JWT_REFRESH OAUTH2_ENDPOINT_JWT_REFRESH
#define NGX_HTTP_OAUTH2_ENDPOINT_STATUS      OAUTH2_ENDPOINT_STATUS

#define NGX_HTTP_OAUTH2_MAX_BODY         16384
#define NGX_HTTP_OAUTH2_MAX_RATES        2
#define NGX_HTTP_OAUTH2_MAX_KEY          255   /* a counter's key */
#define NGX_HTTP_OAUTH2_ZONE_FULL        ((ngx_uint_t) -1)


/* one window of oauth2_rate_limit: limit requests per window seconds */
typedef struct {
    ngx_uint_t                 limit;
    time_t                     window;
} ngx_http_oauth2_rate_t;


/* n failures within window seconds (oauth2_client_auth_limit, ...) */
typedef struct {
    ngx_uint_t                 count;         /* 0: off */
    time_t                     window;
} ngx_http_oauth2_limit_t;


/* what the X-RateLimit-* headers of a response say */
typedef struct {
    ngx_uint_t                 limit;
    ngx_uint_t                 remaining;
    time_t                     reset;
    unsigned                   set:1;
} ngx_http_oauth2_rate_state_t;


typedef struct {
    ngx_str_t                  store_path;
    size_t                     mapsize;
    ngx_shm_zone_t            *shm_zone;
    size_t                     zone_size;     /* oauth2_limit_zone */
    ngx_uint_t                 hash_running;  /* oauth2_hash_limit */
    ngx_uint_t                 hash_waiting;
    ngx_str_t                  store_realm;

    /* the first location of each endpoint, for the metadata */
    ngx_str_t                  token_path;
    ngx_str_t                  authorize_path;
    ngx_str_t                  revoke_path;
    ngx_str_t                  introspect_path;
    ngx_str_t                  jwks_path;
} ngx_http_oauth2_main_conf_t;


typedef struct {
    ngx_uint_t                 endpoint;

    ngx_flag_t                 auth;          /* auth_oauth2 on */
    ngx_str_t                  realm;         /* its challenge realm */
    ngx_array_t               *scopes;        /* of oauth2_str_t */
    ngx_str_t                  scope_text;    /* space separated */

    time_t                     access_token_ttl;
    ngx_str_t                  default_scope;

    ngx_http_oauth2_limit_t    auth_limit;    /* per address */
    ngx_http_oauth2_limit_t    account_limit; /* per account, in the store */
    ngx_uint_t                 refusal_log_level;

    time_t                     refresh_token_ttl;
    time_t                     refresh_grace;
    time_t                     code_ttl;
    ngx_uint_t                 pbkdf2_iterations;
    ngx_str_t                  login_client_id;   /* oauth2_login */
    ngx_str_t                  issuer;
    ngx_str_t                  login_template;    /* file contents */
    ngx_str_t                  consent_template;
    ngx_str_t                  error_template;

    ngx_http_oauth2_rate_t     rates[NGX_HTTP_OAUTH2_MAX_RATES];
    ngx_uint_t                 nrates;        /* NGX_CONF_UNSET_UINT: unset */
    ngx_flag_t                 rates_set;     /* oauth2_rate_limit given */

    ngx_array_t               *jwt_keys;      /* ngx_keyval_t: path, "hmac" */
    ngx_str_t                  handshake_key; /* a file; empty: the store's */
    ngx_array_t               *solutions;     /* of ngx_array_t of ngx_str_t */
    time_t                     handshake_max_ttl;
    ngx_flag_t                 jwt_access;    /* oauth2_access_token_format */
    ngx_str_t                  audience;
    ngx_str_t                  status_service;
    ngx_str_t                  status_header; /* lowercase */
    ngx_str_t                  status_token_file;
    ngx_str_t                  password_policy;   /* its words, joined */
    oauth2_settings_t         *settings;      /* built at merge */

#if (NGX_THREADS)
    ngx_flag_t                 threads;       /* oauth2_thread_pool */
    ngx_thread_pool_t         *thread_pool;
    ngx_str_t                  thread_pool_name;
#endif
} ngx_http_oauth2_loc_conf_t;


typedef struct {
    ngx_str_t                  client_id;
    ngx_str_t                  scope;
    ngx_str_t                  user;
    time_t                     expires;
    unsigned                   valid:1;
    ngx_http_oauth2_rate_state_t  rate;
} ngx_http_oauth2_ctx_t;


extern ngx_module_t  ngx_http_oauth2_module;


/* an nginx string as the core's view of it (no copy) */

static ngx_inline void
ngx_http_oauth2_str(oauth2_str_t *dst, ngx_str_t *src)
{
    dst->data = src->data;
    dst->len = src->len;
}


/* the worker's store handle, NULL outside workers */
oauth2_store_t *ngx_http_oauth2_store(ngx_log_t *log);

void *ngx_http_oauth2_palloc(void *pool, size_t size);

ngx_int_t ngx_http_oauth2_access_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_oauth2_endpoint_handler(ngx_http_request_t *r);

ngx_int_t ngx_http_oauth2_send_json(ngx_http_request_t *r,
    oauth2_response_t *resp);
ngx_int_t ngx_http_oauth2_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value);
/* how many request headers are named name (lowercase), and the first */
void ngx_http_oauth2_find_header(ngx_http_request_t *r, ngx_str_t *name,
    unsigned *count, oauth2_str_t *first);

/* counters in shared memory (oauth2_limit_zone) */
ngx_int_t ngx_http_oauth2_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
ngx_uint_t ngx_http_oauth2_limit_check(ngx_shm_zone_t *zone, ngx_str_t *key,
    ngx_uint_t limit, time_t window, ngx_log_t *log);
void ngx_http_oauth2_limit_hit(ngx_shm_zone_t *zone, ngx_str_t *key,
    time_t window, ngx_log_t *log);
ngx_uint_t ngx_http_oauth2_limit_take(ngx_shm_zone_t *zone, ngx_str_t *id,
    ngx_http_oauth2_rate_t *rates, ngx_uint_t nrates,
    ngx_http_oauth2_rate_state_t *st, ngx_log_t *log);
ngx_int_t ngx_http_oauth2_rate_headers(ngx_http_request_t *r,
    ngx_http_oauth2_rate_state_t *st);
ngx_int_t ngx_http_oauth2_rate_counted(ngx_http_request_t *r);


#endif /* _NGX_HTTP_OAUTH2_H_INCLUDED_ */
