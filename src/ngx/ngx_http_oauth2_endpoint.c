
/*
 * ngx_http_oauth2_module: the token and revocation endpoints.  The shim
 * reads the body and the headers, the core decides, and a store write the
 * core leaves pending runs in an nginx thread pool so that its fsync never
 * stalls the requests the worker is validating.
 */


#include "ngx_http_oauth2.h"


typedef struct {
    ngx_http_request_t          *request;
    ngx_http_oauth2_loc_conf_t  *conf;
    ngx_shm_zone_t              *zone;
    oauth2_op_t                 *op;
    ngx_http_oauth2_rate_state_t rate;
#if (NGX_THREADS)
    ngx_event_t                  guard;
#endif
} ngx_http_oauth2_endpoint_ctx_t;


static void ngx_http_oauth2_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_oauth2_process(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_oauth2_finish(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx, oauth2_response_t *resp);
static ngx_int_t ngx_http_oauth2_collect_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_oauth2_too_large(ngx_http_request_t *r);
static ngx_int_t ngx_http_oauth2_refuse(ngx_http_request_t *r,
    ngx_http_oauth2_loc_conf_t *olcf, int why, ngx_uint_t wait,
    oauth2_response_t *resp);
static ngx_int_t ngx_http_oauth2_address_key(ngx_http_request_t *r,
    ngx_str_t *key);
static unsigned ngx_http_oauth2_key_blocked(void *data, int kind,
    const unsigned char *id, size_t len);
static void ngx_http_oauth2_key_failed(void *data, int kind,
    const unsigned char *id, size_t len);
static unsigned ngx_http_oauth2_rate_take(void *data,
    const unsigned char *id, size_t len);
static ngx_int_t ngx_http_oauth2_cookies(ngx_http_request_t *r,
    ngx_str_t *out);
static ngx_int_t ngx_http_oauth2_issuer(ngx_http_request_t *r,
    ngx_http_oauth2_loc_conf_t *olcf, ngx_str_t *out);
#if (NGX_THREADS)
static void ngx_http_oauth2_thread_handler(void *data, ngx_log_t *log);
static void ngx_http_oauth2_thread_event_handler(ngx_event_t *ev);
static void ngx_http_oauth2_guard_handler(ngx_event_t *ev);
#endif


static ngx_str_t  ngx_http_oauth2_content_type = ngx_string("content-type");



ngx_int_t
ngx_http_oauth2_endpoint_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;
    ngx_str_t  empty;

    if (r->method != NGX_HTTP_POST) {
        /* GET for authorize and metadata; a 405 for the others */
        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }

        ngx_str_null(&empty);

        return ngx_http_oauth2_process(r, &empty);
    }

    if (r->headers_in.content_length_n > NGX_HTTP_OAUTH2_MAX_BODY) {
        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_oauth2_too_large(r);
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_oauth2_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_oauth2_body_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;
    ngx_str_t  body;

    rc = ngx_http_oauth2_collect_body(r, &body);

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_http_oauth2_too_large(r));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_oauth2_process(r, &body);

    if (rc == NGX_DONE) {
        /* a thread owns the request until its event handler runs */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_oauth2_process(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_int_t                        rc;
    ngx_str_t                        key;
    ngx_uint_t                       wait;
    oauth2_store_t                  *store;
    oauth2_response_t                resp;
    oauth2_endpoint_req_t            req;
    ngx_http_oauth2_loc_conf_t      *olcf;
    ngx_http_oauth2_main_conf_t     *mcf;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_oauth2_endpoint_ctx_t  *ectx;
#if (NGX_THREADS)
    ngx_thread_task_t               *task;
#endif

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_oauth2_module);

    ectx = ngx_pcalloc(r->pool, sizeof(ngx_http_oauth2_endpoint_ctx_t));
    if (ectx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ectx->request = r;
    ectx->conf = olcf;
    ectx->zone = olcf->auth_limit ? mcf->shm_zone : NULL;

    ngx_memzero(&resp, sizeof(oauth2_response_t));

    /* failed authentications from this address (R17) */

    if (ectx->zone && ngx_http_oauth2_address_key(r, &key) == NGX_OK) {
        wait = ngx_http_oauth2_limit_blocked(ectx->zone, &key,
                                             3 * olcf->auth_limit,
                                             olcf->auth_window);
        if (wait) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "oauth2: too many failed client authentications "
                          "from %V", &r->connection->addr_text);

            return ngx_http_oauth2_refuse(r, olcf, OAUTH2_REFUSED_LOCKED_OUT,
                                          wait, &resp);
        }
    }

    /* rate limits: by address, unless the core names the caller */

    if (olcf->nrates && !oauth2_rate_by_caller((int) olcf->endpoint)) {
        if (ngx_http_oauth2_address_key(r, &key) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        wait = ngx_http_oauth2_limit_take(mcf->shm_zone, &key, olcf->rates,
                                          olcf->nrates, &ectx->rate);
        if (wait) {
            if (ngx_http_oauth2_rate_headers(r, &ectx->rate) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_oauth2_refuse(r, olcf, OAUTH2_REFUSED_RATE_LIMIT,
                                          wait, &resp);
        }
    }

    ngx_memzero(&req, sizeof(oauth2_endpoint_req_t));

    if (olcf->nrates && oauth2_rate_by_caller((int) olcf->endpoint)) {
        req.rate.ctx = ectx;
        req.rate.take = ngx_http_oauth2_rate_take;
    }

    req.settings = olcf->settings;
    req.jwt_access_tokens = olcf->jwt_access ? 1 : 0;
    ngx_http_oauth2_str(&req.audience, &olcf->audience);
    ngx_http_oauth2_str(&req.issuer, &olcf->issuer);
    req.handshake_max_ttl = olcf->handshake_max_ttl;

    if (olcf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_HANDSHAKE) {
        /* create/, validate/, revoke/: the URI after the location's name */
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (r->uri.len >= clcf->name.len) {
            req.subpath.data = r->uri.data + clcf->name.len;
            req.subpath.len = r->uri.len - clcf->name.len;
        }
    }

    ngx_http_oauth2_str(&req.method, &r->method_name);
    req.has_query = (r->args.len > 0 || r->args_start != NULL);
    ngx_http_oauth2_str(&req.query, &r->args);
#if (NGX_HTTP_SSL)
    req.secure = (r->connection->ssl != NULL);
#endif

    if (r->headers_in.authorization) {
        req.has_authorization = 1;
        ngx_http_oauth2_str(&req.authorization,
                            &r->headers_in.authorization->value);
    }

    /* headers_in.content_type keeps only the first one (R2) */

    ngx_http_oauth2_find_header(r, &ngx_http_oauth2_content_type,
                                &req.content_type_count, &req.content_type);

    if (olcf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_STATUS) {
        ngx_http_oauth2_find_header(r, &olcf->status_header,
                                    &req.status_header_count,
                                    &req.status_header);
    }

    ngx_http_oauth2_str(&req.body, body);
    req.now = ngx_time();
    ngx_http_oauth2_str(&req.realm, &mcf->store_realm);
    req.access_token_ttl = olcf->access_token_ttl;
    req.refresh_token_ttl = olcf->refresh_token_ttl;
    req.refresh_grace = olcf->refresh_grace;
    req.code_ttl = olcf->code_ttl;
    ngx_http_oauth2_str(&req.default_scope, &olcf->default_scope);
    req.pbkdf2_iterations = (unsigned) olcf->pbkdf2_iterations;
    ngx_http_oauth2_str(&req.login_client_id, &olcf->login_client_id);

    /* what only the authorization and metadata endpoints use */

    if (olcf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_AUTHORIZE) {
        if (ngx_http_oauth2_cookies(r, &key) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_oauth2_str(&req.cookie, &key);
        ngx_http_oauth2_str(&req.login_template, &olcf->login_template);
        ngx_http_oauth2_str(&req.consent_template, &olcf->consent_template);
        ngx_http_oauth2_str(&req.error_template, &olcf->error_template);
    }

    if (olcf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_AUTHORIZE
        || olcf->endpoint == NGX_HTTP_OAUTH2_ENDPOINT_METADATA)
    {
        if (ngx_http_oauth2_issuer(r, olcf, &key) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_oauth2_str(&req.issuer, &key);
        ngx_http_oauth2_str(&req.token_path, &mcf->token_path);
        ngx_http_oauth2_str(&req.authorize_path, &mcf->authorize_path);
        ngx_http_oauth2_str(&req.revoke_path, &mcf->revoke_path);
        ngx_http_oauth2_str(&req.introspect_path, &mcf->introspect_path);
        ngx_http_oauth2_str(&req.jwks_path, &mcf->jwks_path);
    }

    if (ectx->zone) {
        req.throttle.ctx = ectx;
        req.throttle.blocked = ngx_http_oauth2_key_blocked;
        req.throttle.failed = ngx_http_oauth2_key_failed;
    }

    store = ngx_http_oauth2_store(r->connection->log);

    if (store == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    rc = oauth2_endpoint_begin(store, (int) olcf->endpoint, &req, &ectx->op,
                               ngx_http_oauth2_palloc, r->pool, &resp);

    if (rc == OAUTH2_OK) {

        /*
         * Refused before the caller was known (malformed, unauthenticated):
         * that answer did no work, and it counts against the address, so
         * that every response of the location carries the headers and a
         * flood of bad requests meets the limit too.
         */

        if (olcf->nrates && !ectx->rate.set
            && oauth2_rate_by_caller((int) olcf->endpoint))
        {
            if (ngx_http_oauth2_address_key(r, &key) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            wait = ngx_http_oauth2_limit_take(mcf->shm_zone, &key,
                                              olcf->rates, olcf->nrates,
                                              &ectx->rate);
            if (wait) {
                if (ngx_http_oauth2_rate_headers(r, &ectx->rate) != NGX_OK) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                return ngx_http_oauth2_refuse(r, olcf,
                                              OAUTH2_REFUSED_RATE_LIMIT,
                                              wait, &resp);
            }
        }

        return ngx_http_oauth2_finish(r, ectx, &resp);
    }

    if (rc != OAUTH2_PENDING) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

#if (NGX_THREADS)

    if (olcf->thread_pool) {
        task = ngx_thread_task_alloc(r->pool, 0);
        if (task == NULL) {
            oauth2_op_free(ectx->op);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        task->ctx = ectx;
        task->handler = ngx_http_oauth2_thread_handler;
        task->event.data = ectx;
        task->event.handler = ngx_http_oauth2_thread_event_handler;

        if (ngx_thread_task_post(olcf->thread_pool, task) != NGX_OK) {
            oauth2_op_free(ectx->op);
            return NGX_HTTP_SERVICE_UNAVAILABLE;
        }

        r->main->blocked++;
        r->aio = 1;

        /*
         * A timer that is not cancelable keeps a gracefully exiting worker
         * (reload, SIGQUIT) alive until the write is done and answered.
         */

        ectx->guard.handler = ngx_http_oauth2_guard_handler;
        ectx->guard.data = ectx;
        ectx->guard.log = r->connection->log;
        ngx_add_timer(&ectx->guard, 86400000);

        return NGX_DONE;
    }

#endif

    oauth2_op_run(ectx->op);

    if (oauth2_op_finish(ectx->op, ngx_http_oauth2_palloc, r->pool, &resp)
        != OAUTH2_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_oauth2_finish(r, ectx, &resp);
}


static ngx_int_t
ngx_http_oauth2_finish(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx, oauth2_response_t *resp)
{
    ngx_str_t  key;

    if (resp->auth_failed) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "oauth2: authentication failed");

        if (ectx->zone && ngx_http_oauth2_address_key(r, &key) == NGX_OK) {
            ngx_http_oauth2_limit_hit(ectx->zone, &key,
                                      ectx->conf->auth_window);
        }
    }

    if (ngx_http_oauth2_rate_headers(r, &ectx->rate) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (resp->status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "oauth2: answering %i, the store is unavailable%s%s",
                      (ngx_int_t) resp->status,
                      resp->store_error ? ": " : "",
                      resp->store_error ? resp->store_error : "");
    }

    return ngx_http_oauth2_send_json(r, resp);
}


#if (NGX_THREADS)

static void
ngx_http_oauth2_thread_handler(void *data, ngx_log_t *log)
{
    ngx_http_oauth2_endpoint_ctx_t  *ectx = data;

    oauth2_op_run(ectx->op);
}


static void
ngx_http_oauth2_thread_event_handler(ngx_event_t *ev)
{
    ngx_int_t                        rc;
    oauth2_response_t                resp;
    ngx_connection_t                *c;
    ngx_http_request_t              *r;
    ngx_http_oauth2_endpoint_ctx_t  *ectx;

    ectx = ev->data;
    r = ectx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    if (ectx->guard.timer_set) {
        ngx_del_timer(&ectx->guard);
    }

    ngx_memzero(&resp, sizeof(oauth2_response_t));

    if (oauth2_op_finish(ectx->op, ngx_http_oauth2_palloc, r->pool, &resp)
        != OAUTH2_OK)
    {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        rc = ngx_http_oauth2_finish(r, ectx, &resp);
    }

    ectx->op = NULL;

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}



static void
ngx_http_oauth2_guard_handler(ngx_event_t *ev)
{
    ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                  "oauth2: a store write has run for a day");
}

#endif


static ngx_int_t
ngx_http_oauth2_collect_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    off_t         len, size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    ngx_str_null(body);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len > NGX_HTTP_OAUTH2_MAX_BODY) {
        return NGX_DECLINED;
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        size = ngx_buf_size(b);

        if (size == 0) {
            /* e.g. the last_buf of a chunked body */
            continue;
        }

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, (size_t) size);
            continue;
        }

        /* bodies over client_body_buffer_size are in a temp file (R8) */

        if (!b->in_file || b->file == NULL) {
            return NGX_ERROR;
        }

        n = ngx_read_file(b->file, p, (size_t) size, b->file_pos);

        if (n != (ssize_t) size) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "oauth2: cannot read the request body file");
            return NGX_ERROR;
        }

        p += size;
    }

    body->len = p - body->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_too_large(ngx_http_request_t *r)
{
    oauth2_response_t            resp;
    ngx_http_oauth2_loc_conf_t  *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_module);

    return ngx_http_oauth2_refuse(r, olcf, OAUTH2_REFUSED_TOO_LARGE, 0, &resp);
}


/* a refusal the shim decides, answered in the endpoint's shape */

static ngx_int_t
ngx_http_oauth2_refuse(ngx_http_request_t *r, ngx_http_oauth2_loc_conf_t *olcf,
    int why, ngx_uint_t wait, oauth2_response_t *resp)
{
    ngx_memzero(resp, sizeof(oauth2_response_t));

    if (oauth2_refusal((int) olcf->endpoint, why, (unsigned) wait,
                       ngx_http_oauth2_palloc, r->pool, resp)
        != OAUTH2_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_oauth2_send_json(r, resp);
}


static ngx_int_t
ngx_http_oauth2_address_key(ngx_http_request_t *r, ngx_str_t *key)
{
    ngx_str_t  *addr;

    addr = &r->connection->addr_text;

    key->data = ngx_pnalloc(r->pool, addr->len + 2);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->data[0] = 'a';
    key->data[1] = ':';
    ngx_memcpy(key->data + 2, addr->data, addr->len);
    key->len = addr->len + 2;

    return NGX_OK;
}


/* the core's rate.take(): id is "k:<API key id>" or "c:<client_id>" */

static unsigned
ngx_http_oauth2_rate_take(void *data, const unsigned char *id, size_t len)
{
    ngx_str_t                        key;
    ngx_http_oauth2_main_conf_t     *mcf;
    ngx_http_oauth2_endpoint_ctx_t  *ectx = data;

    mcf = ngx_http_get_module_main_conf(ectx->request, ngx_http_oauth2_module);

    key.data = (u_char *) id;
    key.len = len;

    return (unsigned) ngx_http_oauth2_limit_take(mcf->shm_zone, &key,
                                                 ectx->conf->rates,
                                                 ectx->conf->nrates,
                                                 &ectx->rate);
}


/* "<kind>:<id>" in buf, as key; NGX_DECLINED if it does not fit */

static ngx_int_t
ngx_http_oauth2_throttle_key(u_char *buf, size_t size, int kind,
    const unsigned char *id, size_t len, ngx_str_t *key)
{
    if (len > size - 2) {
        return NGX_DECLINED;
    }

    buf[0] = (u_char) kind;
    buf[1] = ':';
    ngx_memcpy(buf + 2, id, len);

    key->data = buf;
    key->len = len + 2;

    return NGX_OK;
}


static unsigned
ngx_http_oauth2_key_blocked(void *data, int kind, const unsigned char *id,
    size_t len)
{
    ngx_http_oauth2_endpoint_ctx_t *ectx = data;

    u_char     buf[256];
    ngx_str_t  key;

    if (ngx_http_oauth2_throttle_key(buf, sizeof(buf), kind, id, len, &key)
        != NGX_OK)
    {
        return 0;
    }

    return (unsigned) ngx_http_oauth2_limit_blocked(ectx->zone, &key,
                                                    ectx->conf->auth_limit,
                                                    ectx->conf->auth_window);
}


static void
ngx_http_oauth2_key_failed(void *data, int kind, const unsigned char *id,
    size_t len)
{
    ngx_http_oauth2_endpoint_ctx_t *ectx = data;

    u_char     buf[256];
    ngx_str_t  key;

    if (ngx_http_oauth2_throttle_key(buf, sizeof(buf), kind, id, len, &key)
        == NGX_OK)
    {
        ngx_http_oauth2_limit_hit(ectx->zone, &key, ectx->conf->auth_window);
    }
}


/* every Cookie header, "; " joined (nginx 1.22 keeps them in an array) */

static ngx_int_t
ngx_http_oauth2_cookies(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char            *p;
    size_t             len;
    ngx_uint_t         i, n;
    ngx_table_elt_t  **h;

    ngx_str_null(out);

    n = r->headers_in.cookies.nelts;
    h = r->headers_in.cookies.elts;

    if (n == 0) {
        return NGX_OK;
    }

    len = 0;

    for (i = 0; i < n; i++) {
        len += h[i]->value.len + 2;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ';';
            *p++ = ' ';
        }

        p = ngx_cpymem(p, h[i]->value.data, h[i]->value.len);
    }

    out->len = p - out->data;

    return NGX_OK;
}


/* oauth2_issuer, or the scheme and Host of the request */

static ngx_int_t
ngx_http_oauth2_issuer(ngx_http_request_t *r, ngx_http_oauth2_loc_conf_t *olcf,
    ngx_str_t *out)
{
    u_char                    *p;
    ngx_str_t                 *host;
    ngx_http_core_srv_conf_t  *cscf;

    if (olcf->issuer.len) {
        *out = olcf->issuer;
        return NGX_OK;
    }

    host = r->headers_in.host ? &r->headers_in.host->value
                              : &r->headers_in.server;

    if (host->len == 0) {
        /* HTTP/1.0 without Host: the server's name */
        cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
        host = &cscf->server_name;
    }

    if (host->len == 0) {
        ngx_str_set(out, "http://localhost");
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, sizeof("https://") - 1 + host->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        p = ngx_cpymem(p, "https://", 8);
    } else
#endif
    {
        p = ngx_cpymem(p, "http://", 7);
    }

    p = ngx_cpymem(p, host->data, host->len);
    out->len = p - out->data;

    return NGX_OK;
}
