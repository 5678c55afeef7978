
/*
 * ngx_http_oauth2_module: the module's tables, its configurations and
 * their merge, the access phase hook and the variables.  The directives
 * are in ngx_http_oauth2_directives.c, the process hooks in
 * ngx_http_oauth2_store.c.
 */


#include "ngx_http_oauth2.h"


#define NGX_HTTP_OAUTH2_ZONE_SIZE        (10 * 1024 * 1024)


static ngx_int_t ngx_http_oauth2_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_oauth2_init(ngx_conf_t *cf);
static void *ngx_http_oauth2_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_oauth2_init_main_conf(ngx_conf_t *cf, void *conf);
static void ngx_http_oauth2_conf_cleanup(void *data);
static void *ngx_http_oauth2_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_oauth2_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_oauth2_post_read_handler(ngx_http_request_t *r);
static void *ngx_http_oauth2_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_oauth2_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void ngx_http_oauth2_merge_endpoint(ngx_conf_t *cf,
    ngx_http_oauth2_loc_conf_t *conf, ngx_http_oauth2_loc_conf_t *prev);
static char *ngx_http_oauth2_merge_limits(ngx_conf_t *cf,
    ngx_http_oauth2_loc_conf_t *conf, ngx_http_oauth2_loc_conf_t *prev);
static void ngx_http_oauth2_default_rates(ngx_http_oauth2_loc_conf_t *conf,
    ngx_uint_t per_minute, ngx_uint_t per_hour);
static char *ngx_http_oauth2_merge_threads(ngx_conf_t *cf,
    ngx_http_oauth2_loc_conf_t *conf, ngx_http_oauth2_loc_conf_t *prev);
static ngx_int_t ngx_http_oauth2_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_oauth2_log_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_oauth2_expires_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_module_t  ngx_http_oauth2_module_ctx = {
    ngx_http_oauth2_add_variables,         /* preconfiguration */
    ngx_http_oauth2_init,                  /* postconfiguration */

    ngx_http_oauth2_create_main_conf,      /* create main configuration */
    ngx_http_oauth2_init_main_conf,        /* init main configuration */

    ngx_http_oauth2_create_srv_conf,       /* create server configuration */
    ngx_http_oauth2_merge_srv_conf,        /* merge server configuration */

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

    /* for log_format: why auth_oauth2 refused, the token request's grant,
     * the short id of the token validated or issued */

    { ngx_string("oauth2_error"), NULL, ngx_http_oauth2_log_variable,
      offsetof(ngx_http_oauth2_ctx_t, error), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth2_grant"), NULL, ngx_http_oauth2_log_variable,
      offsetof(ngx_http_oauth2_ctx_t, grant), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("oauth2_token_id"), NULL, ngx_http_oauth2_log_variable,
      offsetof(ngx_http_oauth2_ctx_t, token_id), NGX_HTTP_VAR_NOCACHEABLE,
      0 },

      ngx_http_null_variable
};




void *
ngx_http_oauth2_palloc(void *pool, size_t size)
{
    return ngx_pnalloc(pool, size);
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


/* the context of a request whose bearer token was valid, or NULL with the
 * variable not found */

static ngx_http_oauth2_ctx_t *
ngx_http_oauth2_valid_ctx(ngx_http_request_t *r, ngx_http_variable_value_t *v)
{
    ngx_http_oauth2_ctx_t  *ctx;

    ctx = ngx_http_oauth2_get_ctx(r);

    if (ctx == NULL || !ctx->valid) {
        v->not_found = 1;
        return NULL;
    }

    return ctx;
}


static ngx_int_t
ngx_http_oauth2_set_variable(ngx_http_variable_value_t *v, u_char *data,
    size_t len)
{
    v->len = len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t              *s;
    ngx_http_oauth2_ctx_t  *ctx;

    ctx = ngx_http_oauth2_valid_ctx(r, v);

    if (ctx == NULL) {
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    return ngx_http_oauth2_set_variable(v, s->data, s->len);
}


/* a variable of any request the module saw; not found when empty */

static ngx_int_t
ngx_http_oauth2_log_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t              *s;
    ngx_http_oauth2_ctx_t  *ctx;

    ctx = ngx_http_oauth2_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_oauth2_set_variable(v, s->data, s->len);
}


static ngx_int_t
ngx_http_oauth2_expires_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                 *p;
    ngx_http_oauth2_ctx_t  *ctx;

    ctx = ngx_http_oauth2_valid_ctx(r, v);

    if (ctx == NULL) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_oauth2_set_variable(v, p,
                                        ngx_sprintf(p, "%T", ctx->expires) - p);
}


static ngx_int_t
ngx_http_oauth2_init(ngx_conf_t *cf)
{
    oauth2_str_t                  realm;
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_oauth2_main_conf_t  *mcf;

    /* a realm's device authorization response names its verification
     * page (every location is merged by now) */

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth2_module);

    if (oauth2_conf_device_page_missing(mcf->conf, &realm)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_device_authorization\" needs a prefix "
                           "or exact location with \"oauth2_device\" in "
                           "its realm (\"%*s\"), the verification_uri it "
                           "names", realm.len, realm.data);
        return NGX_ERROR;
    }

    /* OpenID Connect Discovery 3: a realm whose id_tokens are signed
     * names the keys that verify them (jwks_uri) */

    if (oauth2_conf_jwks_missing(mcf->conf, &realm)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"oauth2_authorize\" with an \"oauth2_jwt_key\" "
                           "that signs id_tokens needs a prefix or exact "
                           "location with \"oauth2_jwks\" in its realm "
                           "(\"%*s\"), the jwks_uri OpenID Connect clients "
                           "verify id_tokens with", realm.len, realm.data);
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_oauth2_access_handler;

    /* nginx runs no access handler in a subrequest: auth_oauth2 checks
     * one (auth_request, SSI) in the rewrite phase, before "return" */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_oauth2_subrequest_handler;

    /* the metrics count a request's bearer check once it is final */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_oauth2_log_handler;

    /* error.log lines without the query string from the request's start,
     * in a server of the module's locations (R64) */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_oauth2_post_read_handler;

    ngx_http_oauth2_body_filter_init();
    ngx_http_oauth2_header_filter_init();

    return NGX_OK;
}


static void *
ngx_http_oauth2_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_oauth2_srv_conf_t  *oscf;

    oscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_oauth2_srv_conf_t));
    if (oscf == NULL) {
        return NULL;
    }

    oscf->quiet = NGX_CONF_UNSET;

    return oscf;
}


static char *
ngx_http_oauth2_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_oauth2_srv_conf_t *prev = parent;
    ngx_http_oauth2_srv_conf_t *conf = child;

    ngx_conf_merge_value(conf->quiet, prev->quiet, 0);

    return NGX_CONF_OK;
}


/* the location's directive (an endpoint, auth_oauth2) marks its server,
 * or at http level every server */

void
ngx_http_oauth2_quiet_server(ngx_conf_t *cf)
{
    ngx_http_oauth2_srv_conf_t  *oscf;

    oscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_oauth2_module);
    oscf->quiet = 1;
}


static ngx_int_t
ngx_http_oauth2_post_read_handler(ngx_http_request_t *r)
{
    ngx_http_oauth2_srv_conf_t  *oscf;

    oscf = ngx_http_get_module_srv_conf(r, ngx_http_oauth2_module);

    if (oscf->quiet) {
        ngx_http_oauth2_quiet_log(r);
    }

    return NGX_DECLINED;
}


static void *
ngx_http_oauth2_create_main_conf(ngx_conf_t *cf)
{
    ngx_pool_cleanup_t           *cln;
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
    mcf->dpop_zone_size = NGX_CONF_UNSET_SIZE;
    mcf->hash_running = NGX_CONF_UNSET_UINT;
    mcf->hash_waiting = NGX_CONF_UNSET_UINT;
    mcf->expiry_interval = NGX_CONF_UNSET_MSEC;
    mcf->expiry_batch = NGX_CONF_UNSET_UINT;

    /* the core's side of this http{} block, freed with the cycle */

    mcf->conf = oauth2_conf_create();
    if (mcf->conf == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        oauth2_conf_destroy(mcf->conf);
        return NULL;
    }

    cln->handler = ngx_http_oauth2_conf_cleanup;
    cln->data = mcf->conf;

    return mcf;
}


static void
ngx_http_oauth2_conf_cleanup(void *data)
{
    oauth2_conf_destroy(data);
}


static char *
ngx_http_oauth2_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_oauth2_main_conf_t *mcf = conf;

    ngx_str_t  name;

    ngx_conf_init_size_value(mcf->zone_size, NGX_HTTP_OAUTH2_ZONE_SIZE);
    ngx_conf_init_size_value(mcf->dpop_zone_size, NGX_HTTP_OAUTH2_ZONE_SIZE);
    ngx_conf_init_uint_value(mcf->hash_running, 2);
    ngx_conf_init_uint_value(mcf->hash_waiting, 64);
    ngx_conf_init_msec_value(mcf->expiry_interval, 60000);
    ngx_conf_init_uint_value(mcf->expiry_batch, 1000);

    if (mcf->store_path.len == 0) {
        if (mcf->cluster_etcd.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"oauth2_cluster\" needs \"oauth2_store\", "
                               "the mirror that oauth2-admin sync keeps");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    /* the throttles' and the rate limits' counters (R84) */

    ngx_str_set(&name, "oauth2_limits");

    mcf->shm_zone = ngx_http_oauth2_counter_zone(cf, &name, mcf->zone_size,
                                                 "oauth2_limit_zone");
    if (mcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_oauth2_metrics_add_zone(cf, mcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

#if (NGX_THREADS)
    /* the expiry rounds run in the default thread pool */

    if (mcf->expiry_interval) {
        mcf->expiry_pool = ngx_thread_pool_add(cf, NULL);
        if (mcf->expiry_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }
#endif

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
     *     conf->endpoint = OAUTH2_ENDPOINT_NONE;
     *     conf->realm = { 0, NULL };
     *     conf->default_scope = { 0, NULL };
     *     conf->location = NULL;
     *     conf->rates_set = 0;
     */

    conf->auth = NGX_CONF_UNSET;
    conf->scopes = NGX_CONF_UNSET_PTR;
    conf->valid_cache = NGX_CONF_UNSET_UINT;
    conf->access_token_ttl = NGX_CONF_UNSET;
    conf->refresh_token_ttl = NGX_CONF_UNSET;
    conf->refresh_grace = NGX_CONF_UNSET;
    conf->code_ttl = NGX_CONF_UNSET;
    conf->device_code_ttl = NGX_CONF_UNSET;
    conf->pbkdf2_iterations = NGX_CONF_UNSET_UINT;
    conf->jwt_access = NGX_CONF_UNSET;
    conf->jwt_keys = NGX_CONF_UNSET_PTR;
    conf->handshake_max_ttl = NGX_CONF_UNSET;
    conf->solutions = NGX_CONF_UNSET_PTR;
    conf->auth_limit.count = NGX_CONF_UNSET_UINT;
    conf->account_limit.count = NGX_CONF_UNSET_UINT;
    conf->nrates = NGX_CONF_UNSET_UINT;
    conf->refusal_log_level = NGX_CONF_UNSET_UINT;
    conf->dpop = NGX_CONF_UNSET_UINT;
#if (NGX_THREADS)
    conf->threads = NGX_CONF_UNSET;
#endif

    return conf;
}


/*
 * An "if" (or limit_except) block in an endpoint's location: nginx keeps
 * the location's content handler, ours, and runs it with the block's
 * settings, so the block takes the endpoint's as the proxy module's take
 * their upstream (no endpoint there was a NULL core location at the
 * first request).
 */

static void
ngx_http_oauth2_merge_endpoint(ngx_conf_t *cf,
    ngx_http_oauth2_loc_conf_t *conf, ngx_http_oauth2_loc_conf_t *prev)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->noname && conf->endpoint == OAUTH2_ENDPOINT_NONE) {
        conf->metrics = prev->metrics;
        conf->endpoint = prev->endpoint;
        conf->login_client_id = prev->login_client_id;
        conf->status_service = prev->status_service;
        conf->status_header = prev->status_header;
        conf->status_token_file = prev->status_token_file;
    }

    /*
     * A method outside limit_except runs with the block's core settings,
     * whose content handler nginx takes (NULL: the static files'), so
     * the block names ours, as the proxy module's blocks name theirs.
     */

    if (clcf->lmt_excpt && clcf->handler == NULL) {
        if (conf->endpoint != OAUTH2_ENDPOINT_NONE) {
            clcf->handler = ngx_http_oauth2_endpoint_handler;

        } else if (conf->metrics) {
            clcf->handler = ngx_http_oauth2_metrics_handler;
        }
    }

    /*
     * R8: an endpoint takes 16 KiB, and refuses a longer body once it has
     * read it (a chunked one declares no length): nginx's client body
     * limit, inherited from a server that takes uploads (0, unlimited),
     * bounds that read to its default, 1m, past which nginx answers 413
     */

    if (conf->endpoint != OAUTH2_ENDPOINT_NONE
        && (clcf->client_max_body_size == 0
            || clcf->client_max_body_size > NGX_HTTP_OAUTH2_MAX_READ))
    {
        clcf->client_max_body_size = NGX_HTTP_OAUTH2_MAX_READ;
    }

    /*
     * R8: a body an endpoint takes (passwords, secrets, codes, refresh
     * tokens) stays in memory, never in a temporary file: the module's
     * body filter keeps it (ngx_http_oauth2_body_filter), and a
     * client_body_in_file_only inherited from a server that takes
     * uploads ("on" would keep a file for ever) is turned off; a buffer
     * of 16 KiB reads a body in one go
     */

    if (conf->endpoint != OAUTH2_ENDPOINT_NONE) {
        /* off: nginx keeps the names of its values private */
        clcf->client_body_in_file_only = 0;

        if (clcf->client_body_buffer_size < NGX_HTTP_OAUTH2_MAX_BODY) {
            clcf->client_body_buffer_size = NGX_HTTP_OAUTH2_MAX_BODY;
        }
    }
}


static char *
ngx_http_oauth2_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_oauth2_loc_conf_t *prev = parent;
    ngx_http_oauth2_loc_conf_t *conf = child;

    ngx_http_oauth2_main_conf_t  *mcf;

    ngx_http_oauth2_merge_endpoint(cf, conf, prev);

    if (conf->auth == NGX_CONF_UNSET) {
        conf->auth = prev->auth == NGX_CONF_UNSET ? 0 : prev->auth;
        conf->realm = prev->realm;
    }

    ngx_conf_merge_ptr_value(conf->scopes, prev->scopes, NULL);
    ngx_conf_merge_uint_value(conf->valid_cache, prev->valid_cache,
                              OAUTH2_VALID_CACHE_DEFAULT);
    ngx_conf_merge_sec_value(conf->access_token_ttl, prev->access_token_ttl,
                             36000);
    ngx_conf_merge_sec_value(conf->refresh_token_ttl, prev->refresh_token_ttl,
                             30 * 86400);
    ngx_conf_merge_sec_value(conf->refresh_grace, prev->refresh_grace, 10);
    ngx_conf_merge_sec_value(conf->code_ttl, prev->code_ttl, 60);
    ngx_conf_merge_sec_value(conf->device_code_ttl, prev->device_code_ttl,
                             600);
    ngx_conf_merge_str_value(conf->default_scope, prev->default_scope,
                             "read write");
    ngx_conf_merge_uint_value(conf->pbkdf2_iterations, prev->pbkdf2_iterations,
                              600000);
    ngx_conf_merge_str_value(conf->store_realm, prev->store_realm, "default");
    ngx_conf_merge_str_value(conf->issuer, prev->issuer, "");
    ngx_conf_merge_str_value(conf->audience, prev->audience, "");
    ngx_conf_merge_str_value(conf->auth_audience, prev->auth_audience, "");
    ngx_conf_merge_value(conf->jwt_access, prev->jwt_access, 0);
    ngx_conf_merge_ptr_value(conf->jwt_keys, prev->jwt_keys, NULL);
    ngx_conf_merge_str_value(conf->login_template, prev->login_template, "");
    ngx_conf_merge_str_value(conf->consent_template, prev->consent_template,
                             "");
    ngx_conf_merge_str_value(conf->error_template, prev->error_template, "");
    ngx_conf_merge_str_value(conf->handshake_key, prev->handshake_key, "");
    ngx_conf_merge_sec_value(conf->handshake_max_ttl, prev->handshake_max_ttl,
                             30 * 86400);
    ngx_conf_merge_ptr_value(conf->solutions, prev->solutions, NULL);
    ngx_conf_merge_str_value(conf->password_policy, prev->password_policy,
                             "");
    ngx_conf_merge_uint_value(conf->refusal_log_level,
                              prev->refusal_log_level, NGX_LOG_ERR);

    if (ngx_http_oauth2_merge_limits(cf, conf, prev) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_oauth2_merge_threads(cf, conf, prev) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth2_module);

    if (conf->endpoint == OAUTH2_ENDPOINT_NONE && !conf->auth) {
        return NGX_CONF_OK;
    }

    if (mcf->store_path.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" requires \"oauth2_store\" in the http block",
                           conf->endpoint
                           ? oauth2_endpoint_info(conf->endpoint)->directive
                           : "auth_oauth2");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_oauth2_metrics_realm(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_oauth2_location(cf, conf);
}


static char *
ngx_http_oauth2_merge_limits(ngx_conf_t *cf, ngx_http_oauth2_loc_conf_t *conf,
    ngx_http_oauth2_loc_conf_t *prev)
{
    ngx_http_oauth2_main_conf_t  *mcf;

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

    if (conf->nrates == NGX_CONF_UNSET_UINT) {
        conf->rates_set = prev->rates_set;
        conf->nrates = prev->nrates == NGX_CONF_UNSET_UINT ? 0 : prev->nrates;
        ngx_memcpy(conf->rates, prev->rates, sizeof(conf->rates));
    }

    if (conf->dpop == NGX_CONF_UNSET_UINT) {
        conf->dpop = prev->dpop == NGX_CONF_UNSET_UINT ? 1 : prev->dpop;
        conf->dpop_nonce = prev->dpop_nonce;
        conf->dpop_window = prev->dpop_window ? prev->dpop_window : 60;
    }

    /* a realm's DPoP proofs are remembered in a zone of its own (which
     * its oauth2_metrics shows): a flood of fresh proofs fills neither
     * the throttles' zone nor another realm's (R83) */

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth2_module);

    if (conf->dpop && mcf->store_path.len) {
        conf->dpop_zone = ngx_http_oauth2_dpop_zone(cf, &conf->store_realm,
                                                    mcf->dpop_zone_size,
                                                    conf->dpop_window);
        if (conf->dpop_zone == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    /*
     * the endpoints that write for callers who prove nothing have limits
     * without oauth2_rate_limit: a registration, per address; a public
     * client's device codes (written for anyone who sends its client_id),
     * per client and address, a confidential client's per client
     */

    if (!conf->rates_set && conf->endpoint == OAUTH2_ENDPOINT_REGISTER) {
        ngx_http_oauth2_default_rates(conf, 10, 100);
    }

    if (!conf->rates_set
        && conf->endpoint == OAUTH2_ENDPOINT_DEVICE_AUTHORIZATION)
    {
        ngx_http_oauth2_default_rates(conf, 60, 1000);
    }

    return NGX_CONF_OK;
}


/* a default oauth2_rate_limit: per_minute/m per_hour/h */

static void
ngx_http_oauth2_default_rates(ngx_http_oauth2_loc_conf_t *conf,
    ngx_uint_t per_minute, ngx_uint_t per_hour)
{
    conf->rates[0].limit = per_minute;
    conf->rates[0].window = 60;
    conf->rates[1].limit = per_hour;
    conf->rates[1].window = 3600;
    conf->nrates = 2;
}


static char *
ngx_http_oauth2_merge_threads(ngx_conf_t *cf,
    ngx_http_oauth2_loc_conf_t *conf, ngx_http_oauth2_loc_conf_t *prev)
{
#if (NGX_THREADS)
    if (conf->threads == NGX_CONF_UNSET) {
        conf->threads = prev->threads == NGX_CONF_UNSET ? 1 : prev->threads;
        conf->thread_pool_name = prev->thread_pool_name;
    }

    if (conf->threads && conf->endpoint != OAUTH2_ENDPOINT_NONE) {
        conf->thread_pool = ngx_thread_pool_add(cf,
                                conf->thread_pool_name.len
                                ? &conf->thread_pool_name : NULL);
        if (conf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }
#endif

    return NGX_CONF_OK;
}
