
/*
 * ngx_http_oauth2_module: bearer validation in the access phase (RFC 6750).
 * The core validates the token at the location (its realm, keys and
 * scopes), counts the location's rate limit per client and builds the
 * challenge of a refusal; the shim answers.
 */


#include "ngx_http_oauth2.h"


static void ngx_http_oauth2_ctx_cleanup(void *data);
static void ngx_http_oauth2_note_validation(ngx_http_request_t *r,
    ngx_http_oauth2_ctx_t *ctx, oauth2_validate_res_t *res);
static void ngx_http_oauth2_validate_req(ngx_http_request_t *r,
    ngx_http_oauth2_ctx_t *ctx, oauth2_validate_req_t *req);
static ngx_int_t ngx_http_oauth2_refuse_bearer(ngx_http_request_t *r,
    ngx_http_oauth2_loc_conf_t *olcf, oauth2_validate_res_t *res);
static ngx_int_t ngx_http_oauth2_challenge(ngx_http_request_t *r,
    oauth2_validate_res_t *res);


static ngx_str_t  ngx_http_oauth2_api_key = ngx_string("x-api-key");
static ngx_str_t  ngx_http_oauth2_dpop = ngx_string("dpop");


/*
 * The request's context, made on first use.  An internal redirect (index,
 * try_files, error_page) clears the module contexts and runs the access
 * phase again: the context is then found in the pool's cleanups, as
 * nginx-otel does, so that the request is counted once.  A subrequest
 * shares its main request's pool, and so its context: one client request,
 * one DPoP proof recorded once.
 */

ngx_http_oauth2_ctx_t *
ngx_http_oauth2_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t     *cln;
    ngx_http_oauth2_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth2_module);

    if (ctx) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_oauth2_ctx_cleanup) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "oauth2: context found again after a redirect");
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_oauth2_module);
            return ctx;
        }
    }

    return NULL;
}


ngx_http_oauth2_ctx_t *
ngx_http_oauth2_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t     *cln;
    ngx_http_oauth2_ctx_t  *ctx;

    ctx = ngx_http_oauth2_get_ctx(r);

    if (ctx) {
        return ctx;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_oauth2_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_oauth2_ctx_t));
    cln->handler = ngx_http_oauth2_ctx_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_oauth2_module);

    return ctx;
}


static void
ngx_http_oauth2_ctx_cleanup(void *data)
{
    /* nothing to free: its presence marks the context */
}


/*
 * The path a DPoP proof's htu names: the one the client sent (before any
 * internal redirect), without its query.
 */

void
ngx_http_oauth2_dpop_path(ngx_http_request_t *r, oauth2_str_t *path)
{
    u_char  *q;

    path->data = r->unparsed_uri.data;
    path->len = r->unparsed_uri.len;

    q = ngx_strlchr(r->unparsed_uri.data,
                    r->unparsed_uri.data + r->unparsed_uri.len, '?');

    if (q) {
        path->len = q - r->unparsed_uri.data;
    }
}


/*
 * The method a DPoP proof's htm names: the client's (RFC 9449 4.3, check
 * 8), the first word of the request line, which an internal redirect
 * (error_page to a URI, X-Accel-Redirect) keeps while it makes the
 * request a GET.
 */

static void
ngx_http_oauth2_dpop_method(ngx_http_request_t *r, oauth2_str_t *method)
{
    u_char  *sp;

    sp = ngx_strlchr(r->request_line.data,
                     r->request_line.data + r->request_line.len, ' ');

    if (sp && sp > r->request_line.data) {
        method->data = r->request_line.data;
        method->len = sp - r->request_line.data;
        return;
    }

    ngx_http_oauth2_str(method, &r->method_name);
}


/* the request as the core's validation sees it */

static void
ngx_http_oauth2_validate_req(ngx_http_request_t *r,
    ngx_http_oauth2_ctx_t *ctx, oauth2_validate_req_t *req)
{
    ngx_memzero(req, sizeof(oauth2_validate_req_t));

    if (r->headers_in.authorization) {
        req->has_authorization = 1;
        ngx_http_oauth2_str(&req->authorization,
                            &r->headers_in.authorization->value);
    }

    ngx_http_oauth2_find_header(r, &ngx_http_oauth2_api_key,
                                &req->api_key_count, &req->api_key);

    /* a DPoP proof (RFC 9449 7): the method and path it must name */

    ngx_http_oauth2_find_header(r, &ngx_http_oauth2_dpop, &req->dpop_count,
                                &req->dpop);
    ngx_http_oauth2_dpop_method(r, &req->method);
    ngx_http_oauth2_dpop_path(r, &req->path);
    req->dpop_recorded = ctx->dpop_recorded;

    req->now = ngx_time();
    req->rate_counted = ctx->rate_counted;
    ngx_http_oauth2_str(&req->address, &r->connection->addr_text);
    ngx_http_oauth2_counters(r, &req->counters);
}


ngx_int_t
ngx_http_oauth2_access_handler(ngx_http_request_t *r)
{
    oauth2_validate_req_t        req;
    oauth2_validate_res_t        res;
    ngx_http_oauth2_ctx_t       *ctx;
    ngx_http_oauth2_loc_conf_t  *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_module);

    if (!olcf->auth || olcf->location == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_oauth2_quiet_log(r);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth2: checking the bearer token of \"%V\"", &r->uri);

    ctx = ngx_http_oauth2_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * each pass checks afresh: what an earlier location found valid is
     * not the identity of a request this one refuses ($oauth2_user)
     */
    ctx->valid = 0;

    ngx_http_oauth2_validate_req(r, ctx, &req);

    if (oauth2_validate(ngx_http_oauth2_store(r->connection->log),
                        olcf->location, &req, ngx_http_oauth2_palloc, r->pool,
                        &res)
        != OAUTH2_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "oauth2: cannot answer a bearer token (out of memory)");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth2: bearer validation result %d: %s", res.result,
                   oauth2_why_name(res.why));

    ngx_http_oauth2_note_validation(r, ctx, &res);

    if (res.dpop_recorded) {
        ctx->dpop_recorded = 1;
    }

    if (res.rate.set) {
        ctx->rate_counted = 1;

        if (ngx_http_oauth2_rate_headers(r, &res.rate) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (res.result != OAUTH2_VALID) {
        return ngx_http_oauth2_refuse_bearer(r, olcf, &res);
    }

    ngx_http_oauth2_str_from(&ctx->client_id, &res.client_id);
    ngx_http_oauth2_str_from(&ctx->scope, &res.scope);
    ngx_http_oauth2_str_from(&ctx->user, &res.user);
    ctx->expires = (time_t) res.expires;
    ctx->valid = 1;

    return NGX_OK;
}


/*
 * A subrequest to an auth_oauth2 location (auth_request, an SSI include)
 * is checked like a request: nginx's access phase skips subrequests, and
 * a location that let every subrequest through would let auth_request
 * allow every request (R67).  It is checked in the rewrite phase, before
 * the rewrite module's own handler (this module is loaded after it), so
 * that a "return 204" in the checking location answers only a request
 * that passed.  A refusal follows no error_page: "error_page 401 =200"
 * inherited by the checking location would turn it into a pass for
 * auth_request.  The main request's own check stays in the access
 * phase, where "satisfy" applies.
 */

ngx_int_t
ngx_http_oauth2_subrequest_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r == r->main) {
        return NGX_DECLINED;
    }

    /*
     * a pass goes on through the phase (NGX_OK would end the request
     * there), to the checking location's return, limit_req, limit_conn
     */

    rc = ngx_http_oauth2_access_handler(r);

    if (rc == NGX_OK) {
        return NGX_DECLINED;
    }

    r->error_page = 1;

    return rc;
}


/*
 * For the logs ($oauth2_error, $oauth2_token_id) and the metrics: the
 * last check of the request stands (an internal redirect may check again
 * at another location), and the log phase counts it once, its 503 with
 * it (oauth2_unavailable_total).  Once: a subrequest shares its main
 * request's context, and with log_subrequest on the log phase runs for
 * each (auth_request's check would count twice).
 */

static void
ngx_http_oauth2_note_validation(ngx_http_request_t *r,
    ngx_http_oauth2_ctx_t *ctx, oauth2_validate_res_t *res)
{
    ngx_http_oauth2_str_from(&ctx->token_id, &res->token_id);

    ctx->checked = 1;
    ctx->counted = 0;
    ctx->why = res->why;
    ctx->unavailable = res->unavailable;
    ctx->cached = res->cached ? 1 : 0;

    if (res->why == OAUTH2_WHY_OK) {
        ngx_str_null(&ctx->error);

    } else {
        ctx->error.data = (u_char *) oauth2_why_name(res->why);
        ctx->error.len = ngx_strlen(ctx->error.data);
    }
}


ngx_int_t
ngx_http_oauth2_log_handler(ngx_http_request_t *r)
{
    ngx_http_oauth2_ctx_t  *ctx;

    ctx = ngx_http_oauth2_get_ctx(r);

    if (ctx && ctx->checked && !ctx->counted) {
        ctx->counted = 1;
        ngx_http_oauth2_metrics_validation(r, ctx->why, ctx->cached);

        if (ctx->why == OAUTH2_WHY_STORE_UNAVAILABLE) {
            ngx_http_oauth2_metrics_unavailable(r, ctx->unavailable);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_refuse_bearer(ngx_http_request_t *r,
    ngx_http_oauth2_loc_conf_t *olcf, oauth2_validate_res_t *res)
{
    u_char      *p;
    ngx_str_t    value;
    ngx_uint_t   level;

    if (res->result == OAUTH2_UNAVAILABLE) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "oauth2: cannot check the bearer token, answering "
                      "503: %*s", res->reason.len, res->reason.data);

        if (res->retry_after) {
            ngx_str_set(&value, "1");

            if (ngx_http_oauth2_add_header(r, "Retry-After", &value)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (res->result == OAUTH2_RATE_LIMITED) {
        ngx_log_error(olcf->refusal_log_level, r->connection->log, 0,
                      "oauth2: client \"%*s\" is over the rate limit, "
                      "answering 429", res->client_id.len,
                      res->client_id.data);

        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        value.data = p;
        value.len = ngx_sprintf(p, "%ui", (ngx_uint_t) res->retry_after) - p;

        if (ngx_http_oauth2_add_header(r, "Retry-After", &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_TOO_MANY_REQUESTS;
    }

    if (res->error) {
        /*
         * like auth_basic's "password mismatch": an attack shows; but a
         * DPoP nonce asked for is RFC 9449's normal course, met by every
         * client once a nonce window: at info
         */
        level = (res->why == OAUTH2_WHY_DPOP_NONCE)
                ? NGX_LOG_INFO : olcf->refusal_log_level;

        ngx_log_error(level, r->connection->log, 0,
                      "oauth2: bearer token refused: %s, answering %d",
                      res->error, res->status);
    }

    if (ngx_http_oauth2_challenge(r, res) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return res->status;
}


/* whether h is still one of r's response headers, a WWW-Authenticate (a
 * filter's error clears them, and the list reuses its slots) */

static ngx_uint_t
ngx_http_oauth2_header_out(ngx_http_request_t *r, ngx_table_elt_t *h)
{
    ngx_list_part_t  *part;

    for (part = &r->headers_out.headers.part; part; part = part->next) {
        if (h >= (ngx_table_elt_t *) part->elts
            && h < (ngx_table_elt_t *) part->elts + part->nelts)
        {
            return h->key.len == sizeof("WWW-Authenticate") - 1
                   && ngx_strncasecmp(h->key.data,
                                      (u_char *) "WWW-Authenticate",
                                      h->key.len)
                      == 0;
        }
    }

    return 0;
}


/*
 * Under "satisfy any", nginx hides the one WWW-Authenticate that
 * headers_out names when another check lets the request in; beside
 * auth_basic, which names its own, ours would stay on the 200.  A
 * response that is no refusal carries no challenge of ours (R65, R67).
 */

static ngx_http_output_header_filter_pt  ngx_http_oauth2_next_header_filter;


static ngx_int_t
ngx_http_oauth2_header_filter(ngx_http_request_t *r)
{
    ngx_http_oauth2_ctx_t  *ctx;

    if (r->headers_out.status < NGX_HTTP_BAD_REQUEST) {
        ctx = ngx_http_oauth2_get_ctx(r);

        if (ctx && ctx->challenged == r
            && ngx_http_oauth2_header_out(r, ctx->challenge))
        {
            ctx->challenge->hash = 0;
        }
    }

    return ngx_http_oauth2_next_header_filter(r);
}


void
ngx_http_oauth2_header_filter_init(void)
{
    ngx_http_oauth2_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_oauth2_header_filter;
}


/*
 * The core's challenge: the configured realm and scopes only.  One
 * WWW-Authenticate of ours: a second refusal (after an error_page)
 * replaces it.  It is named in headers_out unless another module's (an
 * auth_basic beside it, whose challenge stays) is, so that under "satisfy
 * any" nginx hides it when another check lets the request in (R65, R67).
 */

static ngx_int_t
ngx_http_oauth2_challenge(ngx_http_request_t *r, oauth2_validate_res_t *res)
{
    ngx_str_t               value;
    ngx_http_oauth2_ctx_t  *ctx;

    ngx_http_oauth2_str_from(&value, &res->challenge);

    ctx = ngx_http_oauth2_get_ctx(r);

    if (ctx->challenged == r && ngx_http_oauth2_header_out(r, ctx->challenge))
    {
        ctx->challenge->value = value;
        ctx->challenge->hash = 1;

    } else {
        ctx->challenge = ngx_http_oauth2_push_header(r, "WWW-Authenticate",
                                                     &value);
        if (ctx->challenge == NULL) {
            return NGX_ERROR;
        }

        ctx->challenged = r;

        if (r->headers_out.www_authenticate == NULL) {
            r->headers_out.www_authenticate = ctx->challenge;
        }
    }

    if (res->dpop_nonce.len) {
        /* a subrequest's headers never reach the client (auth_request
         * passes on only its WWW-Authenticate): the nonce goes on the
         * client's response itself, or it could never use one */
        ngx_http_oauth2_str_from(&value, &res->dpop_nonce);
        return ngx_http_oauth2_add_header(r->main, "DPoP-Nonce", &value);
    }

    return NGX_OK;
}
