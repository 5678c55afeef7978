
/*
 * ngx_http_oauth2_module: declarations shared by the shim's files.
 * The shim is nginx glue only; every OAuth decision is made by the core
 * behind include/oauth2.h, which owns each location's settings (an
 * oauth2_location_t built once at configuration) and the endpoint table.
 */


#ifndef _NGX_HTTP_OAUTH2_H_INCLUDED_
#define _NGX_HTTP_OAUTH2_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <oauth2.h>


#define NGX_HTTP_OAUTH2_MAX_BODY         16384
/* what an endpoint reads of a longer body at most (client_max_body_size) */
#define NGX_HTTP_OAUTH2_MAX_READ         (1024 * 1024)
#define NGX_HTTP_OAUTH2_MAX_KEY          255   /* a counter's key */
#define NGX_HTTP_OAUTH2_MAX_RATE         1000000000  /* oauth2_rate_limit */
#define NGX_HTTP_OAUTH2_ZONE_FULL        ((ngx_uint_t) -1)
#define NGX_HTTP_OAUTH2_METRICS_REALM    1   /* oauth2_metrics; */
#define NGX_HTTP_OAUTH2_METRICS_ALL      2   /* oauth2_metrics all; */


/* n failures within window seconds (oauth2_client_auth_limit, ...) */
typedef struct {
    ngx_uint_t                 count;         /* 0: off */
    time_t                     window;
} ngx_http_oauth2_limit_t;


typedef struct {
    ngx_str_t                  store_path;
    size_t                     mapsize;
    ngx_shm_zone_t            *shm_zone;
    ngx_shm_zone_t            *metrics_zone;  /* oauth2_metrics' counts */
    ngx_array_t               *issuing_realms;  /* of ngx_str_t: the
                                                   token endpoints' realms,
                                                   which share its table
                                                   of issued series */
    void                      *issued_tally;  /* this worker's count of the
                                                 series each of them holds
                                                 (metrics.c) */
    size_t                     zone_size;     /* oauth2_limit_zone */
    size_t                     dpop_zone_size;  /* oauth2_dpop_zone */
    ngx_uint_t                 hash_running;  /* oauth2_hash_limit */
    ngx_uint_t                 hash_waiting;
    ngx_msec_t                 expiry_interval;  /* oauth2_expiry_cleanup;
                                                    0: off */
    ngx_uint_t                 expiry_batch;
#if (NGX_THREADS)
    ngx_thread_pool_t         *expiry_pool;
#endif
    oauth2_conf_t             *conf;          /* the core's, per cycle */
    ngx_str_t                  cluster_etcd;  /* oauth2_cluster etcd=, with
                                                 its NUL; empty: single node */
    ngx_str_t                  cluster_prefix;
    ngx_str_t                  cluster_cacert;  /* cacert=, cert=, key=:
                                                   full paths with their
                                                   NUL; empty: none */
    ngx_str_t                  cluster_cert;
    ngx_str_t                  cluster_key;
    ngx_msec_t                 max_staleness;
} ngx_http_oauth2_main_conf_t;


typedef struct {
    /* a location of the server has an endpoint or auth_oauth2: every
     * request's error.log lines drop the query string from the start,
     * before nginx's own (limit_req's, a 413's) log one (R64) */
    ngx_flag_t                 quiet;
} ngx_http_oauth2_srv_conf_t;


typedef struct {
    ngx_uint_t                 endpoint;      /* OAUTH2_ENDPOINT_* */
    ngx_uint_t                 metrics;       /* oauth2_metrics: its
                                                 realm's series, or all */
    ngx_str_t                  store_realm;   /* oauth2_realm */

    ngx_flag_t                 auth;          /* auth_oauth2 on */
    ngx_str_t                  realm;         /* its challenge realm */
    ngx_array_t               *scopes;        /* of oauth2_str_t */
    ngx_uint_t                 valid_cache;   /* oauth2_validation_cache */

    time_t                     access_token_ttl;
    time_t                     refresh_token_ttl;
    time_t                     refresh_grace;
    time_t                     code_ttl;
    time_t                     device_code_ttl;
    ngx_str_t                  default_scope;
    ngx_uint_t                 pbkdf2_iterations;
    ngx_str_t                  login_client_id;   /* oauth2_login ... */
    ngx_str_t                  issuer;
    ngx_str_t                  audience;
    ngx_str_t                  auth_audience; /* auth_oauth2_audience */
    ngx_flag_t                 jwt_access;    /* oauth2_access_token_format */
    ngx_array_t               *jwt_keys;      /* of oauth2_key_file_t */

    ngx_str_t                  login_template;    /* file contents */
    ngx_str_t                  consent_template;
    ngx_str_t                  error_template;

    ngx_str_t                  handshake_key; /* a file */
    time_t                     handshake_max_ttl;
    ngx_array_t               *solutions;     /* of ngx_array_t of
                                                 oauth2_str_t */
    ngx_str_t                  status_service;
    ngx_str_t                  status_header; /* lowercase */
    ngx_str_t                  status_token_file;

    ngx_str_t                  password_policy;   /* its words, joined */
    ngx_http_oauth2_limit_t    auth_limit;    /* per address */
    ngx_http_oauth2_limit_t    account_limit; /* per account, in the store */
    oauth2_rate_window_t       rates[OAUTH2_MAX_RATES];
    ngx_uint_t                 nrates;        /* NGX_CONF_UNSET_UINT: unset */
    ngx_flag_t                 rates_set;     /* oauth2_rate_limit given */
    ngx_uint_t                 refusal_log_level;

    ngx_uint_t                 dpop;          /* oauth2_dpop */
    ngx_uint_t                 dpop_nonce;
    time_t                     dpop_window;
    ngx_shm_zone_t            *dpop_zone;     /* its realm's proofs' jti */

    oauth2_location_t         *location;      /* the core's, built at merge */

#if (NGX_THREADS)
    ngx_flag_t                 threads;       /* oauth2_thread_pool */
    ngx_thread_pool_t         *thread_pool;
    ngx_str_t                  thread_pool_name;
#endif
} ngx_http_oauth2_loc_conf_t;


/* the request's context: what auth_oauth2 found, kept across internal
 * redirects by a pool cleanup (ngx_http_oauth2_get_ctx) */
typedef struct {
    ngx_str_t                  client_id;
    ngx_str_t                  scope;
    ngx_str_t                  user;
    time_t                     expires;
    ngx_str_t                  error;         /* $oauth2_error */
    ngx_str_t                  grant;         /* $oauth2_grant */
    ngx_str_t                  token_id;      /* $oauth2_token_id */
    int                        why;           /* the last check's
                                                 OAUTH2_WHY_*, counted in
                                                 the log phase */
    ngx_uint_t                 unavailable;   /* and its 503's reason */
    ngx_http_request_t        *challenged;    /* the request, and */
    ngx_table_elt_t           *challenge;     /* its WWW-Authenticate
                                                 of ours */
    unsigned                   valid:1;
    unsigned                   rate_counted:1;
    unsigned                   checked:1;     /* auth_oauth2 ran */
    unsigned                   counted:1;     /* ... and its last check
                                                 is in the metrics */
    unsigned                   dpop_recorded:1;  /* its DPoP proof's jti */
    unsigned                   cached:1;      /* its last check was a hit
                                                 of oauth2_validation_cache */

    /* an endpoint's body, as ngx_http_oauth2_body_filter keeps it */
    u_char                    *body;
    size_t                     body_len;
    unsigned                   body_kept:1;   /* the filter keeps it */
    unsigned                   body_too_large:1;
} ngx_http_oauth2_ctx_t;


extern ngx_module_t  ngx_http_oauth2_module;


/* an nginx string as the core's view of it (no copy) */

static ngx_inline void
ngx_http_oauth2_str(oauth2_str_t *dst, ngx_str_t *src)
{
    dst->data = src->data;
    dst->len = src->len;
}


/* the core's string as an nginx one (no copy) */

static ngx_inline void
ngx_http_oauth2_str_from(ngx_str_t *dst, const oauth2_str_t *src)
{
    dst->data = (u_char *) src->data;
    dst->len = src->len;
}


/* ngx_http_oauth2_metrics.c */
ngx_int_t ngx_http_oauth2_metrics_add_zone(ngx_conf_t *cf,
    ngx_http_oauth2_main_conf_t *mcf);
oauth2_write_metrics_t *ngx_http_oauth2_metrics_for_writes(ngx_cycle_t *cycle);
void ngx_http_oauth2_metrics_validation(ngx_http_request_t *r, int why,
    ngx_uint_t cached);
void ngx_http_oauth2_metrics_unavailable(ngx_http_request_t *r,
    ngx_uint_t reason);
void ngx_http_oauth2_metrics_response(ngx_http_request_t *r, ngx_str_t *realm,
    oauth2_response_t *resp);
ngx_int_t ngx_http_oauth2_metrics_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_oauth2_metrics_realm(ngx_conf_t *cf,
    ngx_http_oauth2_loc_conf_t *olcf);
char *ngx_http_oauth2_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* ngx_http_oauth2_store.c: the worker's store handle, NULL outside
 * workers or while it is not open */
oauth2_store_t *ngx_http_oauth2_store(ngx_log_t *log);
ngx_int_t ngx_http_oauth2_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_oauth2_init_process(ngx_cycle_t *cycle);
void ngx_http_oauth2_exit_process(ngx_cycle_t *cycle);

/* ngx_http_oauth2_expiry.c: oauth2_expiry_cleanup in a worker */
void ngx_http_oauth2_expiry_start(ngx_cycle_t *cycle, oauth2_store_t *store);
ngx_int_t ngx_http_oauth2_expiry_stop(ngx_cycle_t *cycle);

/* ngx_http_oauth2_directives.c */
extern ngx_command_t  ngx_http_oauth2_commands[];
void ngx_http_oauth2_cluster_tls(ngx_http_oauth2_main_conf_t *mcf,
    oauth2_cluster_tls_t *tls);

/* ngx_http_oauth2_location.c: the core's object of a merged location */
char *ngx_http_oauth2_location(ngx_conf_t *cf,
    ngx_http_oauth2_loc_conf_t *conf);

void *ngx_http_oauth2_palloc(void *pool, size_t size);

ngx_int_t ngx_http_oauth2_access_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_oauth2_subrequest_handler(ngx_http_request_t *r);
void ngx_http_oauth2_dpop_path(ngx_http_request_t *r, oauth2_str_t *path);
ngx_int_t ngx_http_oauth2_log_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_oauth2_endpoint_handler(ngx_http_request_t *r);
void ngx_http_oauth2_body_filter_init(void);
void ngx_http_oauth2_header_filter_init(void);
ngx_http_oauth2_ctx_t *ngx_http_oauth2_get_ctx(ngx_http_request_t *r);
ngx_http_oauth2_ctx_t *ngx_http_oauth2_create_ctx(ngx_http_request_t *r);

void ngx_http_oauth2_quiet_log(ngx_http_request_t *r);
void ngx_http_oauth2_quiet_server(ngx_conf_t *cf);
ngx_int_t ngx_http_oauth2_send_json(ngx_http_request_t *r,
    oauth2_response_t *resp);
ngx_table_elt_t *ngx_http_oauth2_push_header(ngx_http_request_t *r,
    char *name, ngx_str_t *value);
ngx_int_t ngx_http_oauth2_add_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_oauth2_rate_headers(ngx_http_request_t *r,
    oauth2_rate_state_t *st);
/* how many request headers are named name (lowercase), and the first */
void ngx_http_oauth2_find_header(ngx_http_request_t *r, ngx_str_t *name,
    unsigned *count, oauth2_str_t *first);

/* ngx_http_oauth2_dpop.c */
char *ngx_http_oauth2_dpop_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_oauth2_limit.c: the core's counters in oauth2_limit_zone, and
 * the DPoP proofs seen in each realm's oauth2_dpop_zone */
ngx_shm_zone_t *ngx_http_oauth2_counter_zone(ngx_conf_t *cf, ngx_str_t *name,
    size_t size, const char *directive);
ngx_shm_zone_t *ngx_http_oauth2_dpop_zone(ngx_conf_t *cf, ngx_str_t *realm,
    size_t size, time_t window);
void ngx_http_oauth2_counters(ngx_http_request_t *r,
    oauth2_counters_t *counters);


#endif /* _NGX_HTTP_OAUTH2_H_INCLUDED_ */
