
/*
 * ngx_http_oauth2_module: a merged location handed to the core, once per
 * configuration.  The core reads its key files (through the http{}
 * block's oauth2_conf_t, each file once) and checks what the settings
 * mean together; a reload builds everything again.
 */


#include "ngx_http_oauth2.h"


static void ngx_http_oauth2_location_cleanup(void *data);
static void ngx_http_oauth2_location_path(ngx_conf_t *cf,
    oauth2_location_conf_t *lc);
static void ngx_http_oauth2_location_tokens(ngx_http_oauth2_loc_conf_t *conf,
    oauth2_location_conf_t *lc);
static void ngx_http_oauth2_location_limits(ngx_http_oauth2_loc_conf_t *conf,
    oauth2_location_conf_t *lc);
static ngx_int_t ngx_http_oauth2_solutions(ngx_conf_t *cf,
    ngx_http_oauth2_loc_conf_t *conf, oauth2_location_conf_t *lc);


char *
ngx_http_oauth2_location(ngx_conf_t *cf, ngx_http_oauth2_loc_conf_t *conf)
{
    char                          err[512];
    oauth2_location_conf_t        lc;
    ngx_pool_cleanup_t           *cln;
    ngx_http_oauth2_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth2_module);

    ngx_memzero(&lc, sizeof(oauth2_location_conf_t));

    lc.endpoint = (int) conf->endpoint;
    ngx_http_oauth2_str(&lc.realm, &conf->store_realm);
    ngx_http_oauth2_location_path(cf, &lc);

    lc.auth = conf->auth ? 1 : 0;
    ngx_http_oauth2_str(&lc.auth_realm, &conf->realm);

    if (conf->scopes) {
        lc.scopes = conf->scopes->elts;
        lc.nscopes = conf->scopes->nelts;
    }

    ngx_http_oauth2_location_tokens(conf, &lc);

    ngx_http_oauth2_str(&lc.login_template, &conf->login_template);
    ngx_http_oauth2_str(&lc.consent_template, &conf->consent_template);
    ngx_http_oauth2_str(&lc.error_template, &conf->error_template);

    if (conf->handshake_key.len
        && ngx_conf_full_name(cf->cycle, &conf->handshake_key, 1) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_http_oauth2_str(&lc.handshake_key, &conf->handshake_key);
    lc.handshake_max_ttl = conf->handshake_max_ttl;

    if (ngx_http_oauth2_solutions(cf, conf, &lc) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_http_oauth2_str(&lc.status_service, &conf->status_service);
    ngx_http_oauth2_str(&lc.status_header, &conf->status_header);
    ngx_http_oauth2_str(&lc.status_token_file, &conf->status_token_file);

    lc.valid_cache = (unsigned) conf->valid_cache;
    lc.dpop = conf->dpop ? 1 : 0;
    lc.dpop_nonce = conf->dpop_nonce ? 1 : 0;
    lc.dpop_window = (unsigned) conf->dpop_window;

    ngx_http_oauth2_location_limits(conf, &lc);

    err[0] = '\0';

    conf->location = oauth2_location_create(mcf->conf, &lc, err, sizeof(err));

    if (conf->location == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        oauth2_location_destroy(conf->location);
        conf->location = NULL;
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_oauth2_location_cleanup;
    cln->data = conf->location;

    return NGX_CONF_OK;
}


static void
ngx_http_oauth2_location_cleanup(void *data)
{
    oauth2_location_destroy(data);
}


/* the first location of each endpoint in a realm, at a path, is the one
 * its metadata names; an "if" block's (noname) is its location's */

static void
ngx_http_oauth2_location_path(ngx_conf_t *cf, oauth2_location_conf_t *lc)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (!clcf->named && !clcf->regex && !clcf->noname) {
        ngx_http_oauth2_str(&lc->path, &clcf->name);
    }
}


/* what the token endpoints issue and how */

static void
ngx_http_oauth2_location_tokens(ngx_http_oauth2_loc_conf_t *conf,
    oauth2_location_conf_t *lc)
{
    lc->access_token_ttl = conf->access_token_ttl;
    lc->refresh_token_ttl = conf->refresh_token_ttl;
    lc->refresh_grace = conf->refresh_grace;
    lc->code_ttl = conf->code_ttl;
    lc->device_code_ttl = conf->device_code_ttl;
    ngx_http_oauth2_str(&lc->default_scope, &conf->default_scope);
    lc->pbkdf2_iterations = (unsigned) conf->pbkdf2_iterations;
    ngx_http_oauth2_str(&lc->login_client_id, &conf->login_client_id);
    ngx_http_oauth2_str(&lc->issuer, &conf->issuer);
    ngx_http_oauth2_str(&lc->audience, &conf->audience);
    ngx_http_oauth2_str(&lc->auth_audience, &conf->auth_audience);
    lc->jwt_access_tokens = conf->jwt_access ? 1 : 0;

    if (conf->jwt_keys) {
        lc->jwt_keys = conf->jwt_keys->elts;
        lc->njwt_keys = conf->jwt_keys->nelts;
    }
}


/* the limits the core decides (the shim keeps their counters) */

static void
ngx_http_oauth2_location_limits(ngx_http_oauth2_loc_conf_t *conf,
    oauth2_location_conf_t *lc)
{
    ngx_http_oauth2_str(&lc->password_policy, &conf->password_policy);
    lc->auth_limit = (unsigned) conf->auth_limit.count;
    lc->auth_window = (unsigned) conf->auth_limit.window;
    lc->account_limit = (unsigned) conf->account_limit.count;
    lc->account_window = (unsigned) conf->account_limit.window;
    ngx_memcpy(lc->rates, conf->rates, sizeof(lc->rates));
    lc->nrates = conf->nrates;
}


/* oauth2_handshake_solution, each a list of words */

static ngx_int_t
ngx_http_oauth2_solutions(ngx_conf_t *cf, ngx_http_oauth2_loc_conf_t *conf,
    oauth2_location_conf_t *lc)
{
    size_t                *sizes;
    ngx_uint_t             i;
    ngx_array_t           *sol;
    const oauth2_str_t   **words;

    if (conf->solutions == NULL) {
        return NGX_OK;
    }

    sol = conf->solutions->elts;

    words = ngx_palloc(cf->pool, conf->solutions->nelts * sizeof(void *));
    sizes = ngx_palloc(cf->pool, conf->solutions->nelts * sizeof(size_t));

    if (words == NULL || sizes == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < conf->solutions->nelts; i++) {
        words[i] = sol[i].elts;
        sizes[i] = sol[i].nelts;
    }

    lc->solutions = words;
    lc->solution_sizes = sizes;
    lc->nsolutions = conf->solutions->nelts;

    return NGX_OK;
}
