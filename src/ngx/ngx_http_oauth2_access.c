
/*
 * ngx_http_oauth2_module: bearer validation in the access phase (RFC 6750).
 */


#include "ngx_http_oauth2.h"


static ngx_int_t ngx_http_oauth2_access_rate(ngx_http_request_t *r,
    ngx_http_oauth2_loc_conf_t *olcf, ngx_http_oauth2_main_conf_t *mcf,
    ngx_http_oauth2_ctx_t *ctx);
static ngx_int_t ngx_http_oauth2_challenge(ngx_http_request_t *r,
    ngx_http_oauth2_loc_conf_t *olcf, ngx_uint_t result);


static ngx_str_t  ngx_http_oauth2_api_key = ngx_string("x-api-key");


ngx_int_t
ngx_http_oauth2_access_handler(ngx_http_request_t *r)
{
    oauth2_store_t               *store;
    ngx_http_oauth2_ctx_t        *ctx;
    oauth2_validate_req_t         req;
    oauth2_validate_res_t         res;
    ngx_http_oauth2_loc_conf_t   *olcf;
    ngx_http_oauth2_main_conf_t  *mcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_module);

    if (!olcf->auth) {
        return NGX_DECLINED;
    }

    ngx_memzero(&req, sizeof(oauth2_validate_req_t));

    if (r->headers_in.authorization) {
        req.has_authorization = 1;
        ngx_http_oauth2_str(&req.authorization,
                            &r->headers_in.authorization->value);
    }

    ngx_http_oauth2_find_header(r, &ngx_http_oauth2_api_key,
                                &req.api_key_count, &req.api_key);

    if (olcf->scopes) {
        req.scopes = olcf->scopes->elts;
        req.nscopes = olcf->scopes->nelts;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_oauth2_module);

    ngx_http_oauth2_str(&req.realm, &mcf->store_realm);
    req.now = ngx_time();
    req.settings = olcf->settings;
    ngx_http_oauth2_str(&req.issuer, &olcf->issuer);
    ngx_http_oauth2_str(&req.audience, &olcf->audience);

    store = ngx_http_oauth2_store(r->connection->log);

    if (store == NULL) {
        res.result = OAUTH2_UNAVAILABLE;

    } else if (oauth2_validate(store, &req, ngx_http_oauth2_palloc, r->pool,
                               &res)
               != OAUTH2_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (res.result != OAUTH2_VALID) {
        return ngx_http_oauth2_challenge(r, olcf, res.result);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_oauth2_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->client_id.data = (u_char *) res.client_id.data;
    ctx->client_id.len = res.client_id.len;
    ctx->scope.data = (u_char *) res.scope.data;
    ctx->scope.len = res.scope.len;
    ctx->user.data = (u_char *) res.user.data;
    ctx->user.len = res.user.len;
    ctx->expires = (time_t) res.expires;
    ctx->valid = 1;

    ngx_http_set_ctx(r, ctx, ngx_http_oauth2_module);

    /* oauth2_rate_limit: per client, whichever of its tokens it shows */

    if (olcf->nrates && !ngx_http_oauth2_rate_counted(r)) {
        return ngx_http_oauth2_access_rate(r, olcf, mcf, ctx);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_access_rate(ngx_http_request_t *r,
    ngx_http_oauth2_loc_conf_t *olcf, ngx_http_oauth2_main_conf_t *mcf,
    ngx_http_oauth2_ctx_t *ctx)
{
    u_char      *p;
    ngx_str_t    key, value;
    ngx_uint_t   wait;

    key.len = ctx->client_id.len + 2;
    key.data = ngx_pnalloc(r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    key.data[0] = 'c';
    key.data[1] = ':';
    ngx_memcpy(key.data + 2, ctx->client_id.data, ctx->client_id.len);

    wait = ngx_http_oauth2_limit_take(mcf->shm_zone, &key, olcf->rates,
                                      olcf->nrates, &ctx->rate,
                                      r->connection->log);

    if (ngx_http_oauth2_rate_headers(r, &ctx->rate) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (wait == 0) {
        return NGX_OK;
    }

    ngx_log_error(olcf->refusal_log_level, r->connection->log, 0,
                  "oauth2: client \"%V\" is over the rate limit, "
                  "answering 429", &ctx->client_id);

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.data = p;
    value.len = ngx_sprintf(p, "%ui", wait) - p;

    if (ngx_http_oauth2_add_header(r, "Retry-After", &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_TOO_MANY_REQUESTS;
}


static ngx_int_t
ngx_http_oauth2_challenge(ngx_http_request_t *r,
    ngx_http_oauth2_loc_conf_t *olcf, ngx_uint_t result)
{
    u_char     *p;
    size_t      len;
    ngx_int_t   status;
    ngx_str_t   value;
    const char *error;

    switch (result) {

    case OAUTH2_NO_TOKEN:
        status = NGX_HTTP_UNAUTHORIZED;
        error = NULL;
        break;

    case OAUTH2_INVALID_REQUEST:
        status = NGX_HTTP_BAD_REQUEST;
        error = "invalid_request";
        break;

    case OAUTH2_INSUFFICIENT_SCOPE:
        status = NGX_HTTP_FORBIDDEN;
        error = "insufficient_scope";
        break;

    case OAUTH2_UNAVAILABLE:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "oauth2: store unavailable, refusing the request");
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    default: /* OAUTH2_INVALID_TOKEN */
        status = NGX_HTTP_UNAUTHORIZED;
        error = "invalid_token";
        break;
    }

    if (error) {
        /* like auth_basic's "password mismatch": an attack shows */
        ngx_log_error(olcf->refusal_log_level, r->connection->log, 0,
                      "oauth2: bearer token refused: %s, answering %i",
                      error, status);
    }

    /*
     * Only the configured realm and scopes, both checked at configuration
     * time, and fixed error codes go into the header: never request input.
     */

    len = sizeof("Bearer realm=\"\"") - 1 + olcf->realm.len;

    if (error) {
        len += sizeof(", error=\"\"") - 1 + ngx_strlen(error);
    }

    if (result == OAUTH2_INSUFFICIENT_SCOPE) {
        len += sizeof(", scope=\"\"") - 1 + olcf->scope_text.len;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.data = p;

    p = ngx_sprintf(p, "Bearer realm=\"%V\"", &olcf->realm);

    if (error) {
        p = ngx_sprintf(p, ", error=\"%s\"", error);
    }

    if (result == OAUTH2_INSUFFICIENT_SCOPE) {
        p = ngx_sprintf(p, ", scope=\"%V\"", &olcf->scope_text);
    }

    value.len = p - value.data;

    if (ngx_http_oauth2_add_header(r, "WWW-Authenticate", &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return status;
}
