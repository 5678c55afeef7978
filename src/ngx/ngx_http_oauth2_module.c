
/*
 * ngx_http_oauth2_module: directives, configuration, process hooks and
 * variables.
 */


#include "ngx_http_oauth2.h"


#define NGX_HTTP_OAUTH2_DEFAULT_MAPSIZE  (256 * 1024 * 1024)
#define NGX_HTTP_OAUTH2_ZONE_SIZE        (10 * 1024 * 1024)
#define NGX_HTTP_OAUTH2_RETRY            1000
#define NGX_HTTP_OAUTH2_READER_CHECK     30000


static ngx_int_t ngx_http_oauth2_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_oauth2_init(ngx_conf_t *cf);
static void *ngx_http_oauth2_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_oauth2_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_oauth2_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_oauth2_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_oauth2_store_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_endpoint_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_auth_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_scope_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_default_scope_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_auth_limit_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_hash_limit_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_password_policy_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_thread_pool_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_login_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_template_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_rate_limit_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_jwt_key_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_solution_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_status_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_oauth2_settings(ngx_conf_t *cf,
    ngx_http_oauth2_loc_conf_t *conf);
static void ngx_http_oauth2_settings_cleanup(void *data);
static ngx_int_t ngx_http_oauth2_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_oauth2_init_process(ngx_cycle_t *cycle);
static void ngx_http_oauth2_exit_process(ngx_cycle_t *cycle);
static void ngx_http_oauth2_timer_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_oauth2_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_oauth2_expires_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_conf_enum_t  ngx_http_oauth2_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_oauth2_token_formats[] = {
    { ngx_string("opaque"), 0 },
    { ngx_string("jwt"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_oauth2_commands[] = {

    { ngx_string("oauth2_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_oauth2_store_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_token"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_TOKEN,
      NULL },

    { ngx_string("oauth2_revoke"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_REVOKE,
      NULL },

    { ngx_string("oauth2_authorize"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_AUTHORIZE,
      NULL },

    { ngx_string("oauth2_introspect"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_INTROSPECT,
      NULL },

    { ngx_string("oauth2_register"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_REGISTER,
      NULL },

    { ngx_string("oauth2_login"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_login_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_LOGIN,
      NULL },

    { ngx_string("oauth2_metadata"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_METADATA,
      NULL },

    { ngx_string("oauth2_handshake"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_HANDSHAKE,
      NULL },

    { ngx_string("oauth2_jwks"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_oauth2_endpoint_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_JWKS,
      NULL },

    { ngx_string("oauth2_jwt_token"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_login_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_JWT_TOKEN,
      NULL },

    { ngx_string("oauth2_jwt_refresh"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_login_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_JWT_REFRESH,
      NULL },

    { ngx_string("oauth2_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE3,
      ngx_http_oauth2_status_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OAUTH2_ENDPOINT_STATUS,
      NULL },

    { ngx_string("oauth2_rate_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_oauth2_rate_limit_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_jwt_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_oauth2_jwt_key_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, audience),
      NULL },

    { ngx_string("oauth2_access_token_format"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, jwt_access),
      &ngx_http_oauth2_token_formats },

    { ngx_string("oauth2_handshake_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, handshake_key),
      NULL },

    { ngx_string("oauth2_handshake_solution"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_oauth2_solution_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_handshake_max_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, handshake_max_ttl),
      NULL },

    { ngx_string("oauth2_refresh_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, refresh_token_ttl),
      NULL },

    { ngx_string("oauth2_refresh_token_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, refresh_grace),
      NULL },

    { ngx_string("oauth2_code_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, code_ttl),
      NULL },

    { ngx_string("oauth2_pbkdf2_iterations"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, pbkdf2_iterations),
      NULL },

    { ngx_string("oauth2_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, issuer),
      NULL },

    { ngx_string("oauth2_authorize_template"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_oauth2_template_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_auth_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("auth_oauth2_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_oauth2_scope_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_access_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, access_token_ttl),
      NULL },

    { ngx_string("oauth2_default_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_oauth2_default_scope_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_client_auth_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_oauth2_auth_limit_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, auth_limit),
      NULL },

    { ngx_string("oauth2_account_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_oauth2_auth_limit_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, account_limit),
      NULL },

    { ngx_string("oauth2_password_policy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_oauth2_password_policy_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_oauth2_main_conf_t, zone_size),
      NULL },

    { ngx_string("oauth2_hash_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_oauth2_hash_limit_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("oauth2_refusal_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_oauth2_loc_conf_t, refusal_log_level),
      &ngx_http_oauth2_log_levels },

    { ngx_string("oauth2_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_oauth2_thread_pool_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_oauth2_module_ctx = {
    ngx_http_oauth2_add_variables,         /* preconfiguration */
    ngx_http_oauth2_init,                  /* postconfiguration */

    ngx_http_oauth2_create_main_conf,      /* create main configuration */
    ngx_http_oauth2_init_main_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_oauth2_create_loc_conf,       /* create location configuration */
    ngx_http_oauth2_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_oauth2_module = {
    NGX_MODULE_V1,
    &ngx_http_oauth2_module_ctx,           /* module context */
    ngx_http_oauth2_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_oauth2_init_module,           /* init module */
    ngx_http_oauth2_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_oauth2_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_oauth2_vars[] = {

    { ngx_string("oauth2_client_id"), NULL, ngx_http_oauth2_variable,
      offsetof(ngx_http_oauth2_ctx_t, client_id), NGX_HTTP_VAR_NOCACHEABLE,
      0 },

    { ngx_string("oauth2_scope"), NULL, ngx_http_oauth2_variable,
      offsetof(ngx_http_oauth2_ctx_t, scope), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth2_user"), NULL, ngx_http_oauth2_variable,
      offsetof(ngx_http_oauth2_ctx_t, user), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth2_token_expires"), NULL,
      ngx_http_oauth2_expires_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_oauth2_default_realm = ngx_string("default");

/* per worker: the store handle and its maintenance timer */
static oauth2_store_t  *ngx_http_oauth2_worker_store;
static ngx_event_t      ngx_http_oauth2_timer;
static ngx_connection_t ngx_http_oauth2_timer_conn;


oauth2_store_t *
ngx_http_oauth2_store(ngx_log_t *log)
{
    u_char           err[256];
    oauth2_store_t  *store;

    static time_t    last_try;

    store = ngx_http_oauth2_worker_store;

    if (store == NULL) {
        return NULL;
    }

    if (!oauth2_store_is_open(store) && last_try != ngx_time()) {

        /*
         * lazily, at most once a second, so that a store that comes back
         * is used at once; the core answers 503 while it is closed
         */

        last_try = ngx_time();

        if (oauth2_store_open(store, (char *) err, sizeof(err)) != OAUTH2_OK) {
            return store;
        }

        ngx_log_error(NGX_LOG_NOTICE, log, 0, "oauth2: store opened");
    }

    return store;
}


void *
ngx_http_oauth2_palloc(void *pool, size_t size)
{
    return ngx_pnalloc(pool, size);
}


static const char *
ngx_http_oauth2_endpoint_name(ngx_uint_t endpoint)
{
    switch (endpoint) {
    case NGX_HTTP_OAUTH2_ENDPOINT_TOKEN:
        return "oauth2_token";
    case NGX_HTTP_OAUTH2_ENDPOINT_REVOKE:
        return "oauth2_revoke";
    case NGX_HTTP_OAUTH2_ENDPOINT_AUTHORIZE:
        return "oauth2_authorize";
    case NGX_HTTP_OAUTH2_ENDPOINT_INTROSPECT:
        return "oauth2_introspect";
    case NGX_HTTP_OAUTH2_ENDPOINT_REGISTER:
        return "oauth2_register";
    case NGX_HTTP_OAUTH2_ENDPOINT_LOGIN:
        return "oauth2_login";
    case NGX_HTTP_OAUTH2_ENDPOINT_METADATA:
        return "oauth2_metadata";
    case NGX_HTTP_OAUTH2_ENDPOINT_HANDSHAKE:
        return "oauth2_handshake";
    case NGX_HTTP_OAUTH2_ENDPOINT_JWKS:
        return "oauth2_jwks";
    case NGX_HTTP_OAUTH2_ENDPOINT_JWT_TOKEN:
        return "oauth2_jwt_token";
    case NGX_HTTP_OAUTH2_ENDPOINT_JWT_REFRESH:
        return "oauth2_jwt_refresh";
    case NGX_HTTP_OAUTH2_ENDPOINT_STATUS:
        return "oauth2_status";
    default:
        return "auth_oauth2";
    }
}


static ngx_int_t
ngx_http_oauth2_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_oauth2_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t              *s;
    ngx_http_oauth2_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth2_module);

    if (ctx == NULL || !ctx->valid) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_expires_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                 *p;
    ngx_http_oauth2_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth2_module);

    if (ctx == NULL || !ctx->valid) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%T", ctx->expires) - p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_oauth2_access_handler;

    return NGX_OK;
}


static void *
ngx_http_oauth2_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_oauth2_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_oauth2_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->store_path = { 0, NULL };
     *     mcf->shm_zone = NULL;
     */

    mcf->mapsize = NGX_CONF_UNSET_SIZE;
    mcf->zone_size = NGX_CONF_UNSET_SIZE;
    mcf->hash_running = NGX_CONF_UNSET_UINT;
    mcf->hash_waiting = NGX_CONF_UNSET_UINT;
    mcf->store_realm = ngx_http_oauth2_default_realm;

    return mcf;
}


static char *
ngx_http_oauth2_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_oauth2_main_conf_t *mcf = conf;

    ngx_str_t  name;

    ngx_conf_init_size_value(mcf->zone_size, NGX_HTTP_OAUTH2_ZONE_SIZE);
    ngx_conf_init_uint_value(mcf->hash_running, 2);
    ngx_conf_init_uint_value(mcf->hash_waiting, 64);

    if (mcf->store_path.len == 0) {
        return NGX_CONF_OK;
    }

    if (mcf->zone_size < 64 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_limit_zone\" must be at least 64k");
        return NGX_CONF_ERROR;
    }

    /* the throttles' and the rate limits' counters (R84) */

    ngx_str_set(&name, "oauth2_limits");

    mcf->shm_zone = ngx_shared_memory_add(cf, &name, mcf->zone_size,
                                          &ngx_http_oauth2_module);
    if (mcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    mcf->shm_zone->init = ngx_http_oauth2_limit_init_zone;

    return NGX_CONF_OK;
}


static void *
ngx_http_oauth2_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_oauth2_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_oauth2_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->endpoint = NGX_HTTP_OAUTH2_ENDPOINT_NONE;
     *     conf->realm = { 0, NULL };
     *     conf->scope_text = { 0, NULL };
     *     conf->default_scope = { 0, NULL };
     *     conf->thread_pool = NULL;
     *     conf->thread_pool_name = { 0, NULL };
     */

    conf->auth = NGX_CONF_UNSET;
    conf->scopes = NGX_CONF_UNSET_PTR;
    conf->access_token_ttl = NGX_CONF_UNSET;
    conf->auth_limit.count = NGX_CONF_UNSET_UINT;
    conf->account_limit.count = NGX_CONF_UNSET_UINT;
    conf->refusal_log_level = NGX_CONF_UNSET_UINT;
    conf->refresh_token_ttl = NGX_CONF_UNSET;
    conf->refresh_grace = NGX_CONF_UNSET;
    conf->code_ttl = NGX_CONF_UNSET;
    conf->pbkdf2_iterations = NGX_CONF_UNSET_UINT;
    conf->nrates = NGX_CONF_UNSET_UINT;
    conf->jwt_keys = NGX_CONF_UNSET_PTR;
    conf->solutions = NGX_CONF_UNSET_PTR;
    conf->handshake_max_ttl = NGX_CONF_UNSET;
    conf->jwt_access = NGX_CONF_UNSET;
#if (NGX_THREADS)
    conf->threads = NGX_CONF_UNSET;
#endif

    return conf;
}


static char *
ngx_http_oauth2_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_oauth2_loc_conf_t *prev = parent;
    ngx_http_oauth2_loc_conf_t *conf = child;

    ngx_http_oauth2_main_conf_t  *mcf;

    if (conf->auth == NGX_CONF_UNSET) {
        conf->auth = prev->auth == NGX_CONF_UNSET ? 0 : prev->auth;
        conf->realm = prev->realm;
    }

    ngx_conf_merge_ptr_value(conf->scopes, prev->scopes, NULL);

    if (conf->scope_text.data == NULL) {
        conf->scope_text = prev->scope_text;
    }

    ngx_conf_merge_sec_value(conf->access_token_ttl, prev->access_token_ttl,
                             36000);
    ngx_conf_merge_str_value(conf->default_scope, prev->default_scope,
                             "read write");
    if (conf->auth_limit.count == NGX_CONF_UNSET_UINT) {
        conf->auth_limit = prev->auth_limit;

        if (conf->auth_limit.count == NGX_CONF_UNSET_UINT) {
            conf->auth_limit.count = 10;
            conf->auth_limit.window = 60;
        }
    }

    if (conf->account_limit.count == NGX_CONF_UNSET_UINT) {
        conf->account_limit = prev->account_limit;

        if (conf->account_limit.count == NGX_CONF_UNSET_UINT) {
            conf->account_limit.count = 100;
            conf->account_limit.window = 3600;
        }
    }
    ngx_conf_merge_uint_value(conf->refusal_log_level,
                              prev->refusal_log_level, NGX_LOG_ERR);

    ngx_conf_merge_sec_value(conf->refresh_token_ttl, prev->refresh_token_ttl,
                             30 * 86400);
    ngx_conf_merge_sec_value(conf->refresh_grace, prev->refresh_grace, 10);
    ngx_conf_merge_sec_value(conf->code_ttl, prev->code_ttl, 60);
    ngx_conf_merge_uint_value(conf->pbkdf2_iterations, prev->pbkdf2_iterations,
                              600000);
    ngx_conf_merge_str_value(conf->issuer, prev->issuer, "");
    ngx_conf_merge_str_value(conf->login_template, prev->login_template, "");
    ngx_conf_merge_str_value(conf->consent_template, prev->consent_template,
                             "");
    ngx_conf_merge_str_value(conf->error_template, prev->error_template, "");

    if (conf->nrates == NGX_CONF_UNSET_UINT) {
        conf->rates_set = prev->rates_set;
        conf->nrates = prev->nrates == NGX_CONF_UNSET_UINT ? 0 : prev->nrates;
        ngx_memcpy(conf->rates, prev->rates, sizeof(conf->rates));
    }

    if (!conf->rates_set && conf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_REGISTER)
    {
        /* anonymous registrations are throttled per address by default */
        conf->rates[0].limit = 10;
        conf->rates[0].window = 60;
        conf->rates[1].limit = 100;
        conf->rates[1].window = 3600;
        conf->nrates = 2;
    }

    ngx_conf_merge_ptr_value(conf->jwt_keys, prev->jwt_keys, NULL);
    ngx_conf_merge_ptr_value(conf->solutions, prev->solutions, NULL);
    ngx_conf_merge_str_value(conf->handshake_key, prev->handshake_key, "");
    ngx_conf_merge_sec_value(conf->handshake_max_ttl, prev->handshake_max_ttl,
                             30 * 86400);
    ngx_conf_merge_value(conf->jwt_access, prev->jwt_access, 0);
    ngx_conf_merge_str_value(conf->audience, prev->audience, "");
    ngx_conf_merge_str_value(conf->password_policy, prev->password_policy,
                             "");

    if (conf->handshake_max_ttl < 60) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_handshake_max_ttl\" must be at least 60s");
        return NGX_CONF_ERROR;
    }

    if (conf->code_ttl <= 0 || conf->code_ttl > 600) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_code_ttl\" must be 1s to 10m "
                           "(RFC 6749 4.1.2)");
        return NGX_CONF_ERROR;
    }

    if (conf->refresh_token_ttl <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_refresh_token_ttl\" must be positive");
        return NGX_CONF_ERROR;
    }

    if (conf->pbkdf2_iterations == 0 || conf->pbkdf2_iterations > 100000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_pbkdf2_iterations\" must be 1 to "
                           "100000000");
        return NGX_CONF_ERROR;
    }

    while (conf->issuer.len && conf->issuer.data[conf->issuer.len - 1] == '/')
    {
        /* the endpoints' paths are appended to it */
        conf->issuer.len--;
    }

    if (conf->issuer.len
        && ngx_strncmp(conf->issuer.data, "https://", 8) != 0
        && ngx_strncmp(conf->issuer.data, "http://", 7) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_issuer\" must be an http or https URL");
        return NGX_CONF_ERROR;
    }

    if (conf->access_token_ttl <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_access_token_ttl\" must be positive");
        return NGX_CONF_ERROR;
    }

#if (NGX_THREADS)
    if (conf->threads == NGX_CONF_UNSET) {
        conf->threads = prev->threads == NGX_CONF_UNSET ? 1 : prev->threads;
        conf->thread_pool_name = prev->thread_pool_name;
    }

    if (conf->threads && conf->endpoint != NGX_HTTP_OAUTH2_ENDPOINT_NONE) {
        conf->thread_pool = ngx_thread_pool_add(cf,
                                conf->thread_pool_name.len
                                ? &conf->thread_pool_name : NULL);
        if (conf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }
#endif

    if (conf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_NONE && !conf->auth) {
        return NGX_CONF_OK;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth2_module);

    if (mcf->store_path.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" requires \"oauth2_store\" in the http block",
                           ngx_http_oauth2_endpoint_name(conf->endpoint));
        return NGX_CONF_ERROR;
    }

    return ngx_http_oauth2_settings(cf, conf);
}


/*
 * The core's settings of a location that serves or checks tokens: its key
 * files are read here, so a reload reads them again (a removed key stops
 * verifying at once).
 */

static char *
ngx_http_oauth2_settings(ngx_conf_t *cf, ngx_http_oauth2_loc_conf_t *conf)
{
    char                 err[512], path[NGX_MAX_PATH];
    ngx_str_t           *args;
    ngx_flag_t           simplejwt;
    ngx_uint_t           i, j;
    ngx_array_t         *sol;
    ngx_keyval_t        *kv;
    oauth2_str_t         cargs[16];
    oauth2_str_t         service;
    ngx_pool_cleanup_t  *cln;

    conf->settings = oauth2_settings_create();
    if (conf->settings == NULL) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        oauth2_settings_destroy(conf->settings);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_oauth2_settings_cleanup;
    cln->data = conf->settings;

    err[0] = '\0';

    if (conf->jwt_keys) {
        kv = conf->jwt_keys->elts;

        for (i = 0; i < conf->jwt_keys->nelts; i++) {
            ngx_cpystrn((u_char *) path, kv[i].key.data,
                        ngx_min(kv[i].key.len + 1, sizeof(path)));

            if (oauth2_settings_add_jwt_key(conf->settings, path,
                                            kv[i].value.len != 0,
                                            err, sizeof(err))
                != OAUTH2_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"oauth2_jwt_key\": %s", err);
                return NGX_CONF_ERROR;
            }
        }
    }

    if (conf->handshake_key.len) {
        if (ngx_conf_full_name(cf->cycle, &conf->handshake_key, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn((u_char *) path, conf->handshake_key.data,
                    ngx_min(conf->handshake_key.len + 1, sizeof(path)));

        if (oauth2_settings_set_handshake_key(conf->settings, path, err,
                                              sizeof(err))
            != OAUTH2_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"oauth2_handshake_key\": %s", err);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->solutions) {
        sol = conf->solutions->elts;

        for (i = 0; i < conf->solutions->nelts; i++) {
            args = sol[i].elts;

            for (j = 0; j < sol[i].nelts && j < 16; j++) {
                ngx_http_oauth2_str(&cargs[j], &args[j]);
            }

            if (oauth2_settings_add_solution(conf->settings, cargs, j, err,
                                             sizeof(err))
                != OAUTH2_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"oauth2_handshake_solution\": %s", err);
                return NGX_CONF_ERROR;
            }
        }
    }

    if (conf->password_policy.len) {
        ngx_http_oauth2_str(&service, &conf->password_policy);

        if (oauth2_settings_set_password_policy(conf->settings, service, err,
                                                sizeof(err))
            != OAUTH2_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"oauth2_password_policy\": %s", err);
            return NGX_CONF_ERROR;
        }
    }

    if (conf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_STATUS) {
        ngx_cpystrn((u_char *) path, conf->status_token_file.data,
                    ngx_min(conf->status_token_file.len + 1, sizeof(path)));
        ngx_http_oauth2_str(&service, &conf->status_service);

        if (oauth2_settings_set_status(conf->settings, service, path, err,
                                       sizeof(err))
            != OAUTH2_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"oauth2_status\": %s", err);
            return NGX_CONF_ERROR;
        }
    }

    simplejwt = (conf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_JWT_TOKEN
                 || conf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_JWT_REFRESH);

    if ((simplejwt
         || (conf->jwt_access
             && conf->endpoint != NGX_HTTP_OAUTH2_ENDPOINT_NONE))
        && !oauth2_settings_can_sign(conf->settings))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" issues JWTs: it requires "
                           "\"oauth2_jwt_key\" with a private or HMAC key",
                           simplejwt
                           ? ngx_http_oauth2_endpoint_name(conf->endpoint)
                           : "oauth2_access_token_format jwt");
        return NGX_CONF_ERROR;
    }

    if (conf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_HANDSHAKE
        && conf->solutions == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_handshake\" requires at least one "
                           "\"oauth2_handshake_solution\"");
        return NGX_CONF_ERROR;
    }

    /* R86: the key signing handshake tokens is a file, never the store */

    if (conf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_HANDSHAKE
        && conf->handshake_key.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_handshake\" requires "
                           "\"oauth2_handshake_key <file>\" (32 random bytes "
                           "or more: openssl rand -out <file> 32)");
        return NGX_CONF_ERROR;
    }

    /* R87: the issuer is configuration, never the request's Host */

    if (conf->issuer.len == 0
        && (conf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_METADATA
            || conf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_AUTHORIZE
            || conf->jwt_keys))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" requires \"oauth2_issuer <url>\", "
                           "which is never taken from the request",
                           conf->jwt_keys
                           && conf->endpoint
                              != NGX_HTTP_OAUTH2_ENDPOINT_METADATA
                           && conf->endpoint
                              != NGX_HTTP_OAUTH2_ENDPOINT_AUTHORIZE
                           ? "oauth2_jwt_key"
                           : ngx_http_oauth2_endpoint_name(conf->endpoint));
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_oauth2_settings_cleanup(void *data)
{
    oauth2_settings_destroy(data);
}


/* oauth2_rate_limit off | <n>/<unit> [<n>/<unit>]: s, m, h, d */

static char *
ngx_http_oauth2_rate_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    u_char     *slash;
    ngx_int_t   n;
    ngx_str_t  *value, unit;
    ngx_uint_t  i;

    if (olcf->nrates != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    olcf->rates_set = 1;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        olcf->nrates = 0;
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        slash = ngx_strlchr(value[i].data, value[i].data + value[i].len, '/');

        n = slash ? ngx_atoi(value[i].data, slash - value[i].data) : NGX_ERROR;

        if (n <= 0) {
            goto invalid;
        }

        unit.data = slash + 1;
        unit.len = value[i].data + value[i].len - unit.data;

        olcf->rates[i - 1].limit = n;

        if (ngx_strcmp(unit.data, "s") == 0
            || ngx_strcmp(unit.data, "second") == 0)
        {
            olcf->rates[i - 1].window = 1;

        } else if (ngx_strcmp(unit.data, "m") == 0
                   || ngx_strcmp(unit.data, "minute") == 0)
        {
            olcf->rates[i - 1].window = 60;

        } else if (ngx_strcmp(unit.data, "h") == 0
                   || ngx_strcmp(unit.data, "hour") == 0)
        {
            olcf->rates[i - 1].window = 3600;

        } else if (ngx_strcmp(unit.data, "d") == 0
                   || ngx_strcmp(unit.data, "day") == 0)
        {
            olcf->rates[i - 1].window = 86400;

        } else {
            goto invalid;
        }
    }

    if (cf->args->nelts == 3
        && olcf->rates[0].window == olcf->rates[1].window)
    {
        return "names the same window twice";
    }

    olcf->nrates = cf->args->nelts - 1;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid rate \"%V\" in \"%V\": use <n>/s, <n>/m, "
                       "<n>/h or <n>/d, e.g. 1000/h 100/m",
                       &value[i], &cmd->name);
    return NGX_CONF_ERROR;
}


/* oauth2_jwt_key <file> [hmac] */

static char *
ngx_http_oauth2_jwt_key_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t     *value;
    ngx_keyval_t  *kv;

    value = cf->args->elts;

    if (cf->args->nelts == 3 && ngx_strcmp(value[2].data, "hmac") != 0) {
        return "takes a file and optionally \"hmac\"";
    }

    if (olcf->jwt_keys == NGX_CONF_UNSET_PTR) {
        olcf->jwt_keys = ngx_array_create(cf->pool, 2, sizeof(ngx_keyval_t));
        if (olcf->jwt_keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    kv = ngx_array_push(olcf->jwt_keys);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    kv->key = value[1];

    if (ngx_conf_full_name(cf->cycle, &kv->key, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        kv->value = value[2];

    } else {
        ngx_str_null(&kv->value);
    }

    return NGX_CONF_OK;
}


/* oauth2_handshake_solution <name> <role>=<database> ... */

static char *
ngx_http_oauth2_solution_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t    *value, *args;
    ngx_uint_t    i;
    ngx_array_t  *sol;

    value = cf->args->elts;

    if (cf->args->nelts > 17) {
        return "takes at most 16 databases";
    }

    if (olcf->solutions == NGX_CONF_UNSET_PTR) {
        olcf->solutions = ngx_array_create(cf->pool, 2, sizeof(ngx_array_t));
        if (olcf->solutions == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    sol = ngx_array_push(olcf->solutions);
    if (sol == NULL
        || ngx_array_init(sol, cf->pool, cf->args->nelts - 1,
                          sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        args = ngx_array_push(sol);
        if (args == NULL) {
            return NGX_CONF_ERROR;
        }

        *args = value[i];
    }

    return NGX_CONF_OK;
}


/* oauth2_status <service name> <header> <token file> */

static char *
ngx_http_oauth2_status_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    u_char       c;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    if (value[1].len == 0 || value[2].len == 0) {
        return "needs a service name, a header name and a token file";
    }

    for (i = 0; i < value[2].len; i++) {
        c = ngx_tolower(value[2].data[i]);

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
              || c == '_'))
        {
            return "has an invalid header name";
        }

        value[2].data[i] = ngx_tolower(value[2].data[i]);
    }

    olcf->status_service = value[1];
    olcf->status_header = value[2];
    olcf->status_token_file = value[3];

    if (ngx_conf_full_name(cf->cycle, &olcf->status_token_file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_oauth2_endpoint_directive(cf, cmd, conf);
}


static char *
ngx_http_oauth2_store_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_main_conf_t *mcf = conf;

    off_t       size;
    ngx_str_t  *value, s;

    if (mcf->store_path.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_store\" needs a directory");
        return NGX_CONF_ERROR;
    }

    mcf->store_path = value[1];

    if (ngx_conf_full_name(cf->cycle, &mcf->store_path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    mcf->mapsize = NGX_HTTP_OAUTH2_DEFAULT_MAPSIZE;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "size=", 5) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" of \"oauth2_store\"",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        s.data = value[2].data + 5;
        s.len = value[2].len - 5;

        size = ngx_parse_offset(&s);

        if (size == NGX_ERROR || size < 1024 * 1024
            || (uint64_t) size > (uint64_t) NGX_MAX_SIZE_T_VALUE)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid size \"%V\" of \"oauth2_store\", "
                               "it must be at least 1m", &value[2]);
            return NGX_CONF_ERROR;
        }

        mcf->mapsize = (size_t) size;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_oauth2_endpoint_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t                    *path;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_oauth2_main_conf_t  *mcf;

    if (olcf->endpoint != NGX_HTTP_OAUTH2_ENDPOINT_NONE) {
        return "is duplicate";
    }

    olcf->endpoint = cmd->offset;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_oauth2_endpoint_handler;

    /* the first location of each endpoint is the one metadata names */

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth2_module);

    switch (olcf->endpoint) {

    case NGX_HTTP_OAUTH2_ENDPOINT_TOKEN:
        path = &mcf->token_path;
        break;

    case NGX_HTTP_OAUTH2_ENDPOINT_AUTHORIZE:
        path = &mcf->authorize_path;
        break;

    case NGX_HTTP_OAUTH2_ENDPOINT_REVOKE:
        path = &mcf->revoke_path;
        break;

    case NGX_HTTP_OAUTH2_ENDPOINT_INTROSPECT:
        path = &mcf->introspect_path;
        break;

    case NGX_HTTP_OAUTH2_ENDPOINT_JWKS:
        path = &mcf->jwks_path;
        break;

    default:
        path = NULL;
    }

    if (path && path->len == 0 && !clcf->named && !clcf->regex) {
        *path = clcf->name;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_oauth2_login_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > 200) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs the client_id of the "
                           "application whose tokens it issues", &cmd->name);
        return NGX_CONF_ERROR;
    }

    olcf->login_client_id = value[1];

    return ngx_http_oauth2_endpoint_directive(cf, cmd, conf);
}


static char *
ngx_http_oauth2_template_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ssize_t          n;
    ngx_str_t       *value, *dst, name;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "login") == 0) {
        dst = &olcf->login_template;

    } else if (ngx_strcmp(value[1].data, "consent") == 0) {
        dst = &olcf->consent_template;

    } else if (ngx_strcmp(value[1].data, "error") == 0) {
        dst = &olcf->error_template;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_authorize_template\": the page must be "
                           "\"login\", \"consent\" or \"error\", not \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (dst->data) {
        return "is duplicate";
    }

    name = value[2];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = name;
    file.log = cf->log;

    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"oauth2_authorize_template\": cannot open "
                           "\"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 256 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_authorize_template\": \"%V\" is not a "
                           "readable file of at most 256k", &name);
        (void) ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    dst->len = (size_t) ngx_file_size(&fi);
    dst->data = ngx_pnalloc(cf->pool, dst->len + 1);
    if (dst->data == NULL) {
        (void) ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, dst->data, dst->len, 0);

    (void) ngx_close_file(file.fd);

    if (n != (ssize_t) dst->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_authorize_template\": cannot read "
                           "\"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_oauth2_check_realm(ngx_str_t *realm)
{
    u_char  *p;

    for (p = realm->data; p < realm->data + realm->len; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\') {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static char *
ngx_http_oauth2_auth_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t  *value;

    if (olcf->auth != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        olcf->auth = 0;
        return NGX_CONF_OK;
    }

    if (value[1].len == 0 || value[1].len > 128
        || ngx_http_oauth2_check_realm(&value[1]) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid realm \"%V\" in \"auth_oauth2\": 1 to 128 "
                           "printable characters without '\"' or '\\'",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    olcf->auth = 1;
    olcf->realm = value[1];

    return NGX_CONF_OK;
}


/* the directive's arguments joined by single spaces (a scope list) */

static char *
ngx_http_oauth2_join_args(ngx_conf_t *cf, ngx_str_t *out)
{
    u_char      *p;
    size_t       len;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;
    len = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        len += value[i].len + 1;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    out->data = p;

    for (i = 1; i < cf->args->nelts; i++) {
        if (i > 1) {
            *p++ = ' ';
        }

        p = ngx_cpymem(p, value[i].data, value[i].len);
    }

    out->len = p - out->data;

    return NGX_CONF_OK;
}


static char *
ngx_http_oauth2_scope_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t     *value;
    ngx_uint_t     i;
    oauth2_str_t  *s;

    if (olcf->scopes != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    olcf->scopes = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                    sizeof(oauth2_str_t));
    if (olcf->scopes == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (!oauth2_scope_valid(value[i].data, value[i].len)
            || ngx_strlchr(value[i].data, value[i].data + value[i].len, ' '))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid scope \"%V\" in \"auth_oauth2_scope\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push(olcf->scopes);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_http_oauth2_str(s, &value[i]);
    }

    return ngx_http_oauth2_join_args(cf, &olcf->scope_text);
}


static char *
ngx_http_oauth2_default_scope_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    if (olcf->default_scope.data) {
        return "is duplicate";
    }

    if (ngx_http_oauth2_join_args(cf, &olcf->default_scope) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (!oauth2_scope_valid(olcf->default_scope.data,
                            olcf->default_scope.len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid scope \"%V\" in \"oauth2_default_scope\"",
                           &olcf->default_scope);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* oauth2_client_auth_limit, oauth2_account_limit: <n> <time> | off */

static char *
ngx_http_oauth2_auth_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    ngx_int_t                 n;
    ngx_str_t                *value;
    ngx_http_oauth2_limit_t  *limit;

    limit = (ngx_http_oauth2_limit_t *) (p + cmd->offset);

    if (limit->count != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        if (ngx_strcmp(value[1].data, "off") == 0) {
            limit->count = 0;
            limit->window = 60;
            return NGX_CONF_OK;
        }

        return "takes a count and a time, or \"off\"";
    }

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n == 0 || n > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid count \"%V\" in \"%V\": 1 to 100000",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    limit->count = n;
    limit->window = ngx_parse_time(&value[2], 1);

    if (limit->window == (time_t) NGX_ERROR || limit->window == 0
        || limit->window > 86400)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\" in \"%V\": 1s to 1d",
                           &value[2], &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* oauth2_password_policy off | min_length=<n> similarity=<x> ... */

static char *
ngx_http_oauth2_password_policy_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    char                err[256];
    oauth2_str_t        spec;
    oauth2_settings_t  *check;

    if (olcf->password_policy.data) {
        return "is duplicate";
    }

    if (ngx_http_oauth2_join_args(cf, &olcf->password_policy) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* checked here, so that nginx -t names this line */

    check = oauth2_settings_create();
    if (check == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_http_oauth2_str(&spec, &olcf->password_policy);

    if (oauth2_settings_set_password_policy(check, spec, err, sizeof(err))
        != OAUTH2_OK)
    {
        oauth2_settings_destroy(check);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    oauth2_settings_destroy(check);

    return NGX_CONF_OK;
}


/* oauth2_hash_limit <n> [queue=<m>] */

static char *
ngx_http_oauth2_hash_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_main_conf_t *mcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value, q;

    if (mcf->hash_running != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n == 0 || n > 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number \"%V\" in \"%V\": 1 to 1024",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    mcf->hash_running = n;
    mcf->hash_waiting = 64;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "queue=", 6) != 0) {
            return "takes a number and optionally queue=<n>";
        }

        q.data = value[2].data + 6;
        q.len = value[2].len - 6;

        n = ngx_atoi(q.data, q.len);
        if (n == NGX_ERROR || n > 100000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid queue \"%V\" in \"%V\": 0 to "
                               "100000", &value[2], &cmd->name);
            return NGX_CONF_ERROR;
        }

        mcf->hash_waiting = n;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_oauth2_thread_pool_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
#if (NGX_THREADS)
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t  *value;

    if (olcf->threads != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        olcf->threads = 0;
        return NGX_CONF_OK;
    }

    olcf->threads = 1;
    olcf->thread_pool_name = value[1];

    return NGX_CONF_OK;
#else
    ngx_str_t  *value;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        return NGX_CONF_OK;
    }

    return "requires nginx built with --with-threads";
#endif
}


static ngx_int_t
ngx_http_oauth2_init_module(ngx_cycle_t *cycle)
{
    long                          uid, gid;
    u_char                        err[512];
    ngx_core_conf_t              *ccf;
    ngx_http_oauth2_main_conf_t  *mcf;

    if (ngx_test_config) {
        /* "nginx -t" never touches the store */
        return NGX_OK;
    }

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_oauth2_module)
        == NULL)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_oauth2_module);

    if (mcf->store_path.len == 0) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    uid = -1;
    gid = -1;

    if (geteuid() == 0 && ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        uid = (long) ccf->user;
        gid = (long) ccf->group;
    }

    /*
     * Create the store and give it to the workers' user, as nginx does for
     * its temp paths.  A failure is not fatal here (a reload would kill the
     * master): workers retry and answer 503 meanwhile.
     */

    if (oauth2_store_prepare((char *) mcf->store_path.data, mcf->mapsize,
                             uid, gid, (char *) err, sizeof(err))
        != OAUTH2_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "oauth2: cannot prepare store \"%V\": %s",
                      &mcf->store_path, err);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_init_process(ngx_cycle_t *cycle)
{
    int                           dead;
    u_char                        err[512];
    ngx_http_oauth2_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_oauth2_module);

    if (mcf == NULL || mcf->store_path.len == 0) {
        return NGX_OK;
    }

    ngx_http_oauth2_worker_store =
        oauth2_store_create((char *) mcf->store_path.data, mcf->mapsize);

    if (ngx_http_oauth2_worker_store == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "oauth2: cannot allocate the store handle");
        return NGX_OK;
    }

    if (oauth2_store_open(ngx_http_oauth2_worker_store, (char *) err,
                          sizeof(err))
        == OAUTH2_OK)
    {
        (void) oauth2_store_reader_check(ngx_http_oauth2_worker_store, &dead);

        if (dead) {
            ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                          "oauth2: cleared %d stale store readers", dead);
        }

    } else {
        /* never NGX_ERROR: nginx would not respawn the worker */
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "oauth2: cannot open store \"%V\": %s, "
                      "answering 503 and retrying",
                      &mcf->store_path, err);
    }

    ngx_http_oauth2_timer_conn.fd = (ngx_socket_t) -1;
    ngx_http_oauth2_timer.handler = ngx_http_oauth2_timer_handler;
    ngx_http_oauth2_timer.log = cycle->log;
    ngx_http_oauth2_timer.data = &ngx_http_oauth2_timer_conn;
    ngx_http_oauth2_timer.cancelable = 1;

    ngx_add_timer(&ngx_http_oauth2_timer,
                  oauth2_store_is_open(ngx_http_oauth2_worker_store)
                  ? NGX_HTTP_OAUTH2_READER_CHECK : NGX_HTTP_OAUTH2_RETRY);

    return NGX_OK;
}


static void
ngx_http_oauth2_timer_handler(ngx_event_t *ev)
{
    int              dead;
    u_char           err[512];
    oauth2_store_t  *store;

    store = ngx_http_oauth2_worker_store;

    if (ngx_exiting || ngx_terminate || store == NULL) {
        return;
    }

    if (!oauth2_store_is_open(store)) {
        if (oauth2_store_open(store, (char *) err, sizeof(err)) == OAUTH2_OK) {
            ngx_log_error(NGX_LOG_NOTICE, ev->log, 0, "oauth2: store opened");
        }
    }

    if (oauth2_store_is_open(store)
        && oauth2_store_reader_check(store, &dead) == OAUTH2_OK
        && dead)
    {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "oauth2: cleared %d stale store readers", dead);
    }

    ngx_add_timer(ev, oauth2_store_is_open(store)
                      ? NGX_HTTP_OAUTH2_READER_CHECK : NGX_HTTP_OAUTH2_RETRY);
}


static void
ngx_http_oauth2_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_oauth2_worker_store) {
        oauth2_store_destroy(ngx_http_oauth2_worker_store);
        ngx_http_oauth2_worker_store = NULL;
    }
}
