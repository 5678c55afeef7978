
/*
 * ngx_http_oauth2_module: the endpoints (token, revoke, introspect,
 * authorize, handshake, ...).  The shim reads the body and the headers,
 * the core decides, and work the core leaves pending (a store write, a
 * password hash) runs in an nginx thread pool so that neither fsync nor
 * PBKDF2 stalls the requests the worker is validating.  Password hashes
 * take a bounded number of the pool's threads (oauth2_hash_limit): a
 * flood of sign-ins waits in a bounded queue of its own, or is refused,
 * and never delays the store writes of token issuance behind it.
 */


#include "ngx_http_oauth2.h"


typedef struct {
    ngx_http_request_t          *request;
    ngx_http_oauth2_loc_conf_t  *conf;
    oauth2_op_t                 *op;
    ngx_str_t                    body;
    ngx_str_t                    resume;     /* the core's OAUTH2_AGAIN */
    ngx_queue_t                  queue;      /* waiting for a hash slot */
    unsigned                     hashing:1;  /* holds a hash slot */
#if (NGX_THREADS)
    ngx_event_t                  guard;
#endif
} ngx_http_oauth2_endpoint_ctx_t;


static ngx_http_oauth2_endpoint_ctx_t *ngx_http_oauth2_endpoint_ctx(
    ngx_http_request_t *r);
static void ngx_http_oauth2_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_oauth2_run(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx);
static ngx_int_t ngx_http_oauth2_fill_request(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx, oauth2_request_t *req);
static ngx_int_t ngx_http_oauth2_pending(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx);
static ngx_int_t ngx_http_oauth2_finished(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx, int rc, oauth2_response_t *resp);
static ngx_int_t ngx_http_oauth2_finish(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx, oauth2_response_t *resp);
static ngx_int_t ngx_http_oauth2_collect_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_oauth2_refuse(ngx_http_request_t *r,
    ngx_http_oauth2_loc_conf_t *olcf, int why, ngx_uint_t wait);
static ngx_int_t ngx_http_oauth2_refuse_busy(ngx_http_request_t *r,
    ngx_http_oauth2_loc_conf_t *olcf, ngx_uint_t reason);
static ngx_int_t ngx_http_oauth2_cookies(ngx_http_request_t *r,
    ngx_str_t *out);
#if (NGX_THREADS)
typedef struct ngx_http_oauth2_committer_s  ngx_http_oauth2_committer_t;

static ngx_int_t ngx_http_oauth2_post(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx);
static ngx_uint_t ngx_http_oauth2_client_gone(ngx_http_request_t *r);
static void ngx_http_oauth2_queued_reading(ngx_http_request_t *r);
static void ngx_http_oauth2_unhold(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx);
static void ngx_http_oauth2_leave_queue(
    ngx_http_oauth2_endpoint_ctx_t *ectx);
static void ngx_http_oauth2_next_hash(ngx_log_t *log);
static void ngx_http_oauth2_thread_handler(void *data, ngx_log_t *log);
static void ngx_http_oauth2_thread_event_handler(ngx_event_t *ev);
static void ngx_http_oauth2_guard_handler(ngx_event_t *ev);
static void ngx_http_oauth2_op_done(ngx_http_oauth2_endpoint_ctx_t *ectx);
static ngx_http_oauth2_committer_t *ngx_http_oauth2_committer(
    ngx_thread_pool_t *pool, ngx_log_t *log);
static ngx_int_t ngx_http_oauth2_batch_add(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx);
static void ngx_http_oauth2_batch_post(ngx_http_oauth2_committer_t *cm);
static void ngx_http_oauth2_batch_thread(void *data, ngx_log_t *log);
static size_t ngx_http_oauth2_batch_take(void *ctx, oauth2_op_t ***ops);
static void ngx_http_oauth2_batch_done(ngx_event_t *ev);
static void ngx_http_oauth2_batch_refused(ngx_event_t *ev);
#endif


static ngx_str_t  ngx_http_oauth2_content_type = ngx_string("content-type");
static ngx_str_t  ngx_http_oauth2_dpop_header = ngx_string("dpop");
static ngx_str_t  ngx_http_oauth2_fetch_site = ngx_string("sec-fetch-site");


#if (NGX_THREADS)

/* per worker: the password hashes running and those waiting for a slot */
static ngx_uint_t   ngx_http_oauth2_hashes_running;
static ngx_uint_t   ngx_http_oauth2_hashes_waiting;
static ngx_queue_t  ngx_http_oauth2_hash_queue;

/*
 * Token requests decided on the event loop (oauth2_op_prepared) are
 * committed in batches: one thread task commits every such request that
 * came before it got the store's writer lock (while the previous batch
 * committed, and while another process's batch did), in one store
 * transaction and one sync, so that a batch costs one thread wake-up and
 * one notification however many tokens it holds.  One task of a worker
 * commits at a time; the event loop fills the next batch meanwhile, and
 * the task takes it under a mutex when it holds the writer lock.  A
 * request finding the batch full goes to the thread pool alone, as every
 * other write does.
 *
 * A worker keeps one committer (its batches and its task) for each thread
 * pool its token endpoints post to, made when the first request of that
 * pool joins: a request joins only its own pool's batch, so that a
 * server given its own pool (oauth2_thread_pool) commits there, never
 * in, nor refused by, another server's full pool.
 */

#define NGX_HTTP_OAUTH2_BATCH  256

typedef struct {
    ngx_uint_t                       n;
    ngx_http_oauth2_endpoint_ctx_t  *ectx[NGX_HTTP_OAUTH2_BATCH];
    oauth2_op_t                     *op[NGX_HTTP_OAUTH2_BATCH];
} ngx_http_oauth2_batch_t;

struct ngx_http_oauth2_committer_s {
    ngx_http_oauth2_committer_t  *next;
    ngx_thread_pool_t            *pool;
    ngx_http_oauth2_batch_t       batches[2];
    /* under the mutex: the batch filling, and the one the task took */
    ngx_http_oauth2_batch_t      *filling;
    ngx_http_oauth2_batch_t      *taken;
    /* the event loop's: whether the task is posted */
    ngx_uint_t                    committing;
    oauth2_store_t               *store;
    ngx_log_t                    *log;
    ngx_thread_task_t             task;
};

static ngx_thread_mutex_t            ngx_http_oauth2_batch_mutex;
/* the event loop's: the committers, one a pool, and the mutex made */
static ngx_http_oauth2_committer_t  *ngx_http_oauth2_committers;
static ngx_uint_t                    ngx_http_oauth2_batch_ready;

#endif


ngx_int_t
ngx_http_oauth2_endpoint_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_oauth2_ctx_t           *ctx;
    ngx_http_oauth2_loc_conf_t      *olcf;
    ngx_http_oauth2_endpoint_ctx_t  *ectx;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_module);

    ngx_http_oauth2_quiet_log(r);

    /*
     * R9: what nginx itself answers while the body is read (a malformed
     * chunked body, 400; one past the read limit, 413) follows no
     * error_page, which would take the request, its Authorization and
     * Cookie headers, to wherever the error_page leads
     */
    r->error_page = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth2: %V at %s", &r->method_name,
                   oauth2_endpoint_info((int) olcf->endpoint)->directive);

    if (r->method != NGX_HTTP_POST) {
        /* GET for authorize and metadata; a 405 for the others */
        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }

        ectx = ngx_http_oauth2_endpoint_ctx(r);
        if (ectx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_oauth2_run(r, ectx);

        if (rc == NGX_DONE) {
            /*
             * a GET that writes (a remembered consent's code, a sign-out)
             * waits for the thread pool: hold the request as reading a
             * body would, for the finalization when the write is done
             */
            r->main->count++;
        }

        return rc;
    }

    if (r->headers_in.content_length_n > NGX_HTTP_OAUTH2_MAX_BODY) {
        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_oauth2_refuse(r, olcf, OAUTH2_REFUSED_TOO_LARGE, 0);
    }

    ctx = ngx_http_oauth2_create_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->body = NULL;
    ctx->body_len = 0;
    ctx->body_too_large = 0;
    ctx->body_kept = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_oauth2_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static ngx_http_oauth2_endpoint_ctx_t *
ngx_http_oauth2_endpoint_ctx(ngx_http_request_t *r)
{
    ngx_http_oauth2_endpoint_ctx_t  *ectx;

    ectx = ngx_pcalloc(r->pool, sizeof(ngx_http_oauth2_endpoint_ctx_t));
    if (ectx == NULL) {
        return NULL;
    }

    ectx->request = r;
    ectx->conf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_module);

    return ectx;
}


static void
ngx_http_oauth2_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_oauth2_endpoint_ctx_t  *ectx;

    ectx = ngx_http_oauth2_endpoint_ctx(r);
    if (ectx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_oauth2_collect_body(r, &ectx->body);

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
            ngx_http_oauth2_refuse(r, ectx->conf, OAUTH2_REFUSED_TOO_LARGE,
                                   0));
        return;
    }

    if (rc != NGX_OK) {
        /*
         * answered here, in the endpoint's shape: a status handed back to
         * nginx would follow the server's error_page, taking the body (a
         * password, a code) to wherever that leads
         */
        ngx_http_finalize_request(r,
            ngx_http_oauth2_refuse(r, ectx->conf, OAUTH2_REFUSED_FAILED, 0));
        return;
    }

    rc = ngx_http_oauth2_run(r, ectx);

    if (rc == NGX_DONE) {
        /* a thread (or the hash queue) owns the request for now */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/* one pass of the core over the request (two for a slow client secret) */

static ngx_int_t
ngx_http_oauth2_run(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx)
{
    int                 rc;
    oauth2_request_t    req;
    oauth2_response_t   resp;

    if (ngx_http_oauth2_fill_request(r, ectx, &req) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&resp, sizeof(oauth2_response_t));

    rc = oauth2_endpoint_begin(ngx_http_oauth2_store(r->connection->log),
                               ectx->conf->location, &req, &ectx->op,
                               ngx_http_oauth2_palloc, r->pool, &resp);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth2: the core answered %d", rc);

    if (rc == OAUTH2_PENDING) {
        return ngx_http_oauth2_pending(r, ectx);
    }

    return ngx_http_oauth2_finished(r, ectx, rc, &resp);
}


/* the request as the core sees it: nothing of the configuration */

static ngx_int_t
ngx_http_oauth2_fill_request(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx, oauth2_request_t *req)
{
    ngx_str_t                      cookies, header;
    ngx_http_core_loc_conf_t      *clcf;
    const oauth2_endpoint_info_t  *info;

    info = oauth2_endpoint_info((int) ectx->conf->endpoint);

    ngx_memzero(req, sizeof(oauth2_request_t));

    ngx_http_oauth2_str(&req->method, &r->method_name);
    req->has_query = (r->args.len > 0 || r->args_start != NULL);
    ngx_http_oauth2_str(&req->query, &r->args);
    ngx_http_oauth2_str(&req->body, &ectx->body);
    ngx_http_oauth2_str(&req->address, &r->connection->addr_text);
    ngx_http_oauth2_str(&req->resume, &ectx->resume);
    req->now = ngx_time();
#if (NGX_HTTP_SSL)
    req->secure = (r->connection->ssl != NULL);
#endif

    if (r->headers_in.authorization) {
        req->has_authorization = 1;
        ngx_http_oauth2_str(&req->authorization,
                            &r->headers_in.authorization->value);
    }

    /* headers_in.content_type keeps only the first one (R2) */

    ngx_http_oauth2_find_header(r, &ngx_http_oauth2_content_type,
                                &req->content_type_count, &req->content_type);

    /* Fetch Metadata: a browser's request another site's page made */

    ngx_http_oauth2_find_header(r, &ngx_http_oauth2_fetch_site,
                                &req->fetch_site_count, &req->fetch_site);

    /* the one header the location names (oauth2_status) */

    req->header = oauth2_location_header(ectx->conf->location);

    if (req->header.len) {
        ngx_http_oauth2_str_from(&header, &req->header);
        ngx_http_oauth2_find_header(r, &header, &req->header_count,
                                    &req->header);
    }

    if (info->prefix) {
        /* create/, validate/, revoke/: the URI after the location's name */
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (r->uri.len >= clcf->name.len) {
            req->subpath.data = r->uri.data + clcf->name.len;
            req->subpath.len = r->uri.len - clcf->name.len;
        }
    }

    if (info->cookies) {
        if (ngx_http_oauth2_cookies(r, &cookies) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_oauth2_str(&req->cookie, &cookies);
    }

    ngx_http_oauth2_counters(r, &req->counters);

    /* a DPoP proof (RFC 9449) and the path its htu names */

    ngx_http_oauth2_find_header(r, &ngx_http_oauth2_dpop_header,
                                &req->dpop_count, &req->dpop);
    ngx_http_oauth2_dpop_path(r, &req->path);

    return NGX_OK;
}


/* the core left work: a thread runs it, or the event loop without one */

static ngx_int_t
ngx_http_oauth2_pending(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx)
{
    int                rc;
    oauth2_response_t  resp;

#if (NGX_THREADS)

    if (ectx->conf->thread_pool) {
        return ngx_http_oauth2_post(r, ectx);
    }

#endif

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth2: no thread pool, writing on the event loop");

    oauth2_op_run(ectx->op);

    ngx_memzero(&resp, sizeof(oauth2_response_t));

    rc = oauth2_op_finish(ectx->op, ngx_http_oauth2_palloc, r->pool, &resp);
    ectx->op = NULL;

    return ngx_http_oauth2_finished(r, ectx, rc, &resp);
}


/* what oauth2_op_finish() said: an answer, or one more pass of the core */

static ngx_int_t
ngx_http_oauth2_finished(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx, int rc, oauth2_response_t *resp)
{
    if (rc == OAUTH2_AGAIN) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "oauth2: the core asks for one more pass");

        ngx_http_oauth2_str_from(&ectx->resume, &resp->resume);

        return ngx_http_oauth2_run(r, ectx);
    }

    if (rc != OAUTH2_OK) {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, 0,
                      "oauth2: the core failed to answer (out of memory)");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_oauth2_finish(r, ectx, resp);
}


static ngx_int_t
ngx_http_oauth2_finish(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx, oauth2_response_t *resp)
{
    ngx_str_t               reason;
    ngx_uint_t              level;
    ngx_http_oauth2_ctx_t  *ctx;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth2: answering %d with %uz bytes", resp->status,
                   resp->body_len);

    ngx_http_oauth2_metrics_response(r, &ectx->conf->store_realm, resp);

    if (resp->grant.len || resp->token_id.len) {
        /* $oauth2_grant, $oauth2_token_id */
        ctx = ngx_http_oauth2_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_oauth2_str_from(&ctx->grant, &resp->grant);
        ngx_http_oauth2_str_from(&ctx->token_id, &resp->token_id);
    }

    if (resp->auth_failed) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "oauth2: authentication failed");
    }

    if (resp->refused) {
        level = resp->refused_info ? NGX_LOG_INFO
                                   : ectx->conf->refusal_log_level;

        ngx_log_error(level, r->connection->log, 0,
                      "oauth2: %s, answering %d", resp->refused,
                      resp->status);
    }

    if (ngx_http_oauth2_rate_headers(r, &resp->rate) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (resp->status >= NGX_HTTP_INTERNAL_SERVER_ERROR && !resp->refused) {
        /* the reason reaches the log: a store failure, or the core's */
        level = (resp->status == NGX_HTTP_SERVICE_UNAVAILABLE
                 || resp->unavailable != OAUTH2_UNAVAILABLE_NONE)
                ? NGX_LOG_ERR : NGX_LOG_CRIT;
        ngx_http_oauth2_str_from(&reason, &resp->reason);

        if (reason.len == 0) {
            ngx_str_set(&reason, "the store is unavailable");
        }

        ngx_log_error(level, r->connection->log, 0,
                      "oauth2: answering %d: %V", resp->status, &reason);
    }

    return ngx_http_oauth2_send_json(r, resp);
}


#if (NGX_THREADS)

/*
 * A password hash takes one of the worker's oauth2_hash_limit slots, or
 * waits in a bounded queue for one: NGX_OK (it has a slot, or is no
 * hash), NGX_AGAIN (queued), NGX_BUSY (the queue is full) or
 * NGX_DECLINED (its client is gone: no hash for nobody).
 */

static ngx_int_t
ngx_http_oauth2_hash_slot(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx)
{
    ngx_http_oauth2_main_conf_t  *mcf;

    if (!oauth2_op_slow(ectx->op) || ectx->hashing) {
        return NGX_OK;
    }

    if (ngx_http_oauth2_client_gone(r)) {
        return NGX_DECLINED;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_oauth2_module);

    if (ngx_http_oauth2_hash_queue.next == NULL) {
        ngx_queue_init(&ngx_http_oauth2_hash_queue);
    }

    if (ngx_http_oauth2_hashes_running < mcf->hash_running) {
        ngx_http_oauth2_hashes_running++;
        ectx->hashing = 1;
        return NGX_OK;
    }

    if (ngx_http_oauth2_hashes_waiting >= mcf->hash_waiting) {
        ngx_log_error(ectx->conf->refusal_log_level, r->connection->log, 0,
                      "oauth2: %ui password hashes are waiting, "
                      "refusing with 503 (oauth2_hash_limit)",
                      ngx_http_oauth2_hashes_waiting);
        return NGX_BUSY;
    }

    ngx_queue_insert_tail(&ngx_http_oauth2_hash_queue, &ectx->queue);
    ngx_http_oauth2_hashes_waiting++;

    /* a client that leaves while it waits gives its place back */
    if (r->read_event_handler == ngx_http_block_reading) {
        r->read_event_handler = ngx_http_oauth2_queued_reading;
    }

    return NGX_AGAIN;
}


/*
 * Whether the client closed the connection (or reset its HTTP/2 stream):
 * ngx_http_test_reading's check, without its finalization, which a held
 * request would defer.
 */

static ngx_uint_t
ngx_http_oauth2_client_gone(ngx_http_request_t *r)
{
    u_char             buf[1];
    ssize_t            n;
    ngx_err_t          err;
    ngx_event_t       *rev;
    ngx_connection_t  *c;

    c = r->connection;
    rev = c->read;

    if (c->error) {
        return 1;
    }

#if (NGX_HTTP_V2)
    if (r->stream) {
        return 0;
    }
#endif

#if (NGX_HAVE_EPOLLRDHUP)

    if ((ngx_event_flags & NGX_USE_EPOLL_EVENT) && ngx_use_epoll_rdhup) {
        if (!rev->pending_eof) {
            return 0;
        }

        rev->eof = 1;
        c->error = 1;

        return 1;
    }

#endif

    n = recv(c->fd, buf, 1, MSG_PEEK);
    err = ngx_socket_errno;

    if (n == 0 || (n == -1 && err != NGX_EAGAIN)) {
        rev->eof = 1;
        c->error = 1;
        return 1;
    }

    if ((ngx_event_flags & NGX_USE_LEVEL_EVENT) && rev->active) {
        /* data, not the end: stop a level-triggered event from repeating */
        (void) ngx_del_event(rev, NGX_READ_EVENT, 0);
    }

    return 0;
}


/*
 * The read event of a request waiting for a hash slot: if its client is
 * gone, the request leaves the queue unhashed, so that an abandoned
 * flood of sign-ins costs no PBKDF2 and holds no place that a waiting
 * client could have.
 */

static void
ngx_http_oauth2_queued_reading(ngx_http_request_t *r)
{
    ngx_queue_t                     *q;
    ngx_http_oauth2_endpoint_ctx_t  *ectx;

    if (!ngx_http_oauth2_client_gone(r)) {
        return;
    }

    for (q = ngx_queue_head(&ngx_http_oauth2_hash_queue);
         q != ngx_queue_sentinel(&ngx_http_oauth2_hash_queue);
         q = ngx_queue_next(q))
    {
        ectx = ngx_queue_data(q, ngx_http_oauth2_endpoint_ctx_t, queue);

        if (ectx->request != r) {
            continue;
        }

        ngx_http_oauth2_leave_queue(ectx);

        oauth2_op_free(ectx->op);
        ectx->op = NULL;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "oauth2: the client left while its password hash "
                      "waited for a slot: dropped unhashed");

        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
        return;
    }
}


/*
 * The request waits for its op.  A timer that is not cancelable keeps a
 * gracefully exiting worker (reload, SIGQUIT) alive until the work is
 * done and answered.
 */

static ngx_int_t
ngx_http_oauth2_hold(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx)
{
    r->main->blocked++;
    r->aio = 1;

    ectx->guard.handler = ngx_http_oauth2_guard_handler;
    ectx->guard.data = ectx;
    ectx->guard.log = r->connection->log;
    ngx_add_timer(&ectx->guard, 86400000);

    return NGX_DONE;
}


/* the op is done, or will never run: the request is no longer held */

static void
ngx_http_oauth2_unhold(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx)
{
    r->main->blocked--;
    r->aio = 0;

    if (ectx->guard.timer_set) {
        ngx_del_timer(&ectx->guard);
    }
}


/* out of the hash queue: to its slot, or dropped */

static void
ngx_http_oauth2_leave_queue(ngx_http_oauth2_endpoint_ctx_t *ectx)
{
    ngx_http_request_t  *r;

    r = ectx->request;

    ngx_queue_remove(&ectx->queue);
    ngx_http_oauth2_hashes_waiting--;

    if (r->read_event_handler == ngx_http_oauth2_queued_reading) {
        r->read_event_handler = ngx_http_block_reading;
    }

    ngx_http_oauth2_unhold(r, ectx);
}


/*
 * Posts the op to the thread pool.  Password hashes are held to their
 * slots (ngx_http_oauth2_hash_slot), so that they never fill the pool
 * that the store writes need.
 */

static ngx_int_t
ngx_http_oauth2_post(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx)
{
    ngx_int_t           rc;
    ngx_thread_task_t  *task;

    if (oauth2_op_prepared(ectx->op)
        && ngx_http_oauth2_batch_add(r, ectx) == NGX_DONE)
    {
        return NGX_DONE;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth2: posting %s work to the thread pool",
                   oauth2_op_slow(ectx->op) ? "a password hash" : "store");

    rc = ngx_http_oauth2_hash_slot(r, ectx);

    if (rc == NGX_BUSY) {
        oauth2_op_free(ectx->op);
        ectx->op = NULL;
        return ngx_http_oauth2_refuse_busy(r, ectx->conf,
                                           OAUTH2_UNAVAILABLE_HASH_QUEUE);
    }

    if (rc == NGX_DECLINED) {
        oauth2_op_free(ectx->op);
        ectx->op = NULL;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "oauth2: the client left before its password hash "
                      "began: dropped unhashed");

        return NGX_HTTP_CLIENT_CLOSED_REQUEST;
    }

    if (rc == NGX_AGAIN) {
        return ngx_http_oauth2_hold(r, ectx);
    }

    task = ngx_thread_task_alloc(r->pool, 0);

    if (task != NULL) {
        task->ctx = ectx;
        task->handler = ngx_http_oauth2_thread_handler;
        task->event.data = ectx;
        task->event.handler = ngx_http_oauth2_thread_event_handler;

        if (ngx_thread_task_post(ectx->conf->thread_pool, task) == NGX_OK) {
            return ngx_http_oauth2_hold(r, ectx);
        }
    }

    if (ectx->hashing) {
        ectx->hashing = 0;
        ngx_http_oauth2_hashes_running--;
    }

    oauth2_op_free(ectx->op);
    ectx->op = NULL;

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "oauth2: could not post to the thread pool");

    return ngx_http_oauth2_refuse_busy(r, ectx->conf,
                                       OAUTH2_UNAVAILABLE_THREAD_QUEUE);
}


/* a hash slot is free: the longest waiting hash takes it */

static void
ngx_http_oauth2_next_hash(ngx_log_t *log)
{
    ngx_int_t                        rc;
    ngx_queue_t                     *q;
    ngx_connection_t                *c;
    ngx_http_request_t              *r;
    ngx_http_oauth2_main_conf_t     *mcf;
    ngx_http_oauth2_endpoint_ctx_t  *ectx;

    while (!ngx_queue_empty(&ngx_http_oauth2_hash_queue)) {

        q = ngx_queue_head(&ngx_http_oauth2_hash_queue);
        ectx = ngx_queue_data(q, ngx_http_oauth2_endpoint_ctx_t, queue);
        r = ectx->request;

        mcf = ngx_http_get_module_main_conf(r, ngx_http_oauth2_module);

        if (ngx_http_oauth2_hashes_running >= mcf->hash_running) {
            return;
        }

        ngx_http_oauth2_leave_queue(ectx);

        rc = ngx_http_oauth2_post(r, ectx);

        if (rc != NGX_DONE) {
            c = r->connection;
            ngx_http_finalize_request(r, rc);
            ngx_http_run_posted_requests(c);
        }
    }
}


static void
ngx_http_oauth2_thread_handler(void *data, ngx_log_t *log)
{
    ngx_http_oauth2_endpoint_ctx_t  *ectx = data;

    oauth2_op_run(ectx->op);
}


static void
ngx_http_oauth2_thread_event_handler(ngx_event_t *ev)
{
    ngx_http_oauth2_op_done(ev->data);
}


/* back on the event loop: the op's answer, or one more pass */

static void
ngx_http_oauth2_op_done(ngx_http_oauth2_endpoint_ctx_t *ectx)
{
    int                  rc;
    ngx_int_t            nrc;
    oauth2_response_t    resp;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ectx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    ngx_http_oauth2_unhold(r, ectx);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "oauth2: the thread pool finished its work");

    ngx_memzero(&resp, sizeof(oauth2_response_t));

    rc = oauth2_op_finish(ectx->op, ngx_http_oauth2_palloc, r->pool, &resp);
    ectx->op = NULL;

    if (ectx->hashing) {
        ectx->hashing = 0;
        ngx_http_oauth2_hashes_running--;
        ngx_http_oauth2_next_hash(c->log);
    }

    nrc = ngx_http_oauth2_finished(r, ectx, rc, &resp);

    if (nrc != NGX_DONE) {
        ngx_http_finalize_request(r, nrc);
    }

    ngx_http_run_posted_requests(c);
}


/* the committer of the request's pool, made at its first batch */

static ngx_http_oauth2_committer_t *
ngx_http_oauth2_committer(ngx_thread_pool_t *pool, ngx_log_t *log)
{
    ngx_http_oauth2_committer_t  *cm;

    for (cm = ngx_http_oauth2_committers; cm; cm = cm->next) {
        if (cm->pool == pool) {
            return cm;
        }
    }

    /* the worker's for as long as it runs, as its pools are */

    cm = ngx_calloc(sizeof(ngx_http_oauth2_committer_t), log);
    if (cm == NULL) {
        return NULL;
    }

    cm->pool = pool;
    cm->filling = &cm->batches[0];
    cm->next = ngx_http_oauth2_committers;
    ngx_http_oauth2_committers = cm;

    return cm;
}


/* NGX_DONE: the request waits in the batch; NGX_DECLINED: it is full */

static ngx_int_t
ngx_http_oauth2_batch_add(ngx_http_request_t *r,
    ngx_http_oauth2_endpoint_ctx_t *ectx)
{
    ngx_uint_t                    n;
    ngx_http_oauth2_batch_t      *b;
    ngx_http_oauth2_committer_t  *cm;

    if (!ngx_http_oauth2_batch_ready) {
        if (ngx_thread_mutex_create(&ngx_http_oauth2_batch_mutex,
                                    r->connection->log)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        ngx_http_oauth2_batch_ready = 1;
    }

    cm = ngx_http_oauth2_committer(ectx->conf->thread_pool,
                                   r->connection->log);
    if (cm == NULL) {
        return NGX_DECLINED;
    }

    (void) ngx_thread_mutex_lock(&ngx_http_oauth2_batch_mutex,
                                 r->connection->log);

    b = cm->filling;
    n = b->n;

    if (n < NGX_HTTP_OAUTH2_BATCH) {
        b->ectx[n] = ectx;
        b->op[n] = ectx->op;
        b->n = n + 1;
    }

    (void) ngx_thread_mutex_unlock(&ngx_http_oauth2_batch_mutex,
                                   r->connection->log);

    if (n == NGX_HTTP_OAUTH2_BATCH) {
        return NGX_DECLINED;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth2: a prepared change joins a batch of %ui", n);

    (void) ngx_http_oauth2_hold(r, ectx);

    if (!cm->committing) {
        cm->store = ngx_http_oauth2_store(r->connection->log);
        ngx_http_oauth2_batch_post(cm);
    }

    return NGX_DONE;
}


/* the task commits what fills meanwhile */

static void
ngx_http_oauth2_batch_post(ngx_http_oauth2_committer_t *cm)
{
    ngx_thread_task_t  *task;

    cm->committing = 1;

    task = &cm->task;
    task->ctx = cm;
    task->handler = ngx_http_oauth2_batch_thread;
    task->event.data = cm;
    task->event.handler = ngx_http_oauth2_batch_done;
    task->event.log = ngx_cycle->log;

    if (ngx_thread_task_post(cm->pool, task) == NGX_OK) {
        return;
    }

    /*
     * The pool's queue is full (it said so): the batch is refused as a
     * single task is (503), once the handler that filled it has returned.
     * Committed here, on the event loop, it waited for the store's
     * writer lock and its sync, and every request of the worker with it.
     */

    task->event.handler = ngx_http_oauth2_batch_refused;
    ngx_post_event(&task->event, &ngx_posted_events);
}


static void
ngx_http_oauth2_batch_refused(ngx_event_t *ev)
{
    ngx_int_t                        rc;
    ngx_uint_t                       i, n;
    ngx_connection_t                *c;
    ngx_http_request_t              *r;
    ngx_http_oauth2_batch_t         *b;
    ngx_http_oauth2_committer_t     *cm;
    ngx_http_oauth2_endpoint_ctx_t  *refused[NGX_HTTP_OAUTH2_BATCH];

    cm = ev->data;

    (void) ngx_thread_mutex_lock(&ngx_http_oauth2_batch_mutex, ev->log);

    b = cm->filling;
    n = b->n;
    ngx_memcpy(refused, b->ectx, n * sizeof(refused[0]));
    b->n = 0;

    (void) ngx_thread_mutex_unlock(&ngx_http_oauth2_batch_mutex, ev->log);

    cm->committing = 0;

    ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                  "oauth2: could not post to the thread pool: %ui prepared "
                  "changes refused", n);

    for (i = 0; i < n; i++) {
        r = refused[i]->request;
        c = r->connection;

        ngx_http_set_log_request(c->log, r);
        ngx_http_oauth2_unhold(r, refused[i]);

        oauth2_op_free(refused[i]->op);
        refused[i]->op = NULL;

        rc = ngx_http_oauth2_refuse_busy(r, refused[i]->conf,
                                         OAUTH2_UNAVAILABLE_THREAD_QUEUE);
        if (rc != NGX_DONE) {
            ngx_http_finalize_request(r, rc);
        }

        ngx_http_run_posted_requests(c);
    }
}


static void
ngx_http_oauth2_batch_thread(void *data, ngx_log_t *log)
{
    ngx_http_oauth2_committer_t  *cm = data;

    cm->log = log;

    oauth2_ops_commit(cm->store, ngx_http_oauth2_batch_take, cm);
}


/* on the task's thread, holding the store's writer lock */

static size_t
ngx_http_oauth2_batch_take(void *ctx, oauth2_op_t ***ops)
{
    ngx_http_oauth2_committer_t  *cm = ctx;
    ngx_http_oauth2_batch_t      *b;

    (void) ngx_thread_mutex_lock(&ngx_http_oauth2_batch_mutex, cm->log);

    b = cm->filling;
    cm->filling = (b == &cm->batches[0]) ? &cm->batches[1]
                                         : &cm->batches[0];
    cm->taken = b;

    (void) ngx_thread_mutex_unlock(&ngx_http_oauth2_batch_mutex, cm->log);

    *ops = b->op;

    return b->n;
}


static void
ngx_http_oauth2_batch_done(ngx_event_t *ev)
{
    ngx_uint_t                       i, n, more;
    ngx_http_oauth2_batch_t         *b;
    ngx_http_oauth2_committer_t     *cm;
    ngx_http_oauth2_endpoint_ctx_t  *done[NGX_HTTP_OAUTH2_BATCH];

    cm = ev->data;

    (void) ngx_thread_mutex_lock(&ngx_http_oauth2_batch_mutex, ev->log);

    b = cm->taken;
    cm->taken = NULL;
    n = b->n;
    ngx_memcpy(done, b->ectx, n * sizeof(done[0]));
    b->n = 0;
    more = cm->filling->n;

    (void) ngx_thread_mutex_unlock(&ngx_http_oauth2_batch_mutex, ev->log);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "oauth2: a batch of %ui prepared changes is durable", n);

    /* the next batch commits while these are answered */

    cm->committing = 0;

    if (more) {
        ngx_http_oauth2_batch_post(cm);
    }

    for (i = 0; i < n; i++) {
        ngx_http_oauth2_op_done(done[i]);
    }
}


static void
ngx_http_oauth2_guard_handler(ngx_event_t *ev)
{
    ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                  "oauth2: a store write has run for a day");
}

#endif


/*
 * R64: an endpoint's body (a password, a client secret, a refresh token)
 * is copied by this filter into a buffer of its own, of 16 KiB at most,
 * and none of it goes on to nginx's save filter, which writes what it
 * holds to a temporary file whenever client_body_buffer_size fills before
 * the end: a body of no declared length (chunked, or HTTP/2 without
 * content-length) or of many small chunks.  Past 16 KiB the rest is read
 * and dropped, and the endpoint answers 413.  Only the last buffer,
 * emptied, goes on: nginx then knows the body is whole.
 */

static ngx_http_request_body_filter_pt  ngx_http_oauth2_next_body_filter;


static ngx_int_t
ngx_http_oauth2_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    off_t                   size;
    ngx_buf_t              *b;
    ngx_chain_t            *cl, *out, **ll;
    ngx_http_oauth2_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth2_module);

    if (ctx == NULL || !ctx->body_kept) {
        return ngx_http_oauth2_next_body_filter(r, in);
    }

    out = NULL;
    ll = &out;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;
        size = ngx_buf_size(b);

        if (size && !ngx_buf_in_memory(b)) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (size > (off_t) (NGX_HTTP_OAUTH2_MAX_BODY - ctx->body_len)) {
            ctx->body_too_large = 1;
        }

        if (size && !ctx->body_too_large) {
            if (ctx->body == NULL) {
                ctx->body = ngx_pnalloc(r->pool, NGX_HTTP_OAUTH2_MAX_BODY);
                if (ctx->body == NULL) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }
            }

            ngx_memcpy(ctx->body + ctx->body_len, b->pos, (size_t) size);
            ctx->body_len += (size_t) size;
        }

        b->pos = b->last;

        if (b->last_buf) {
            *ll = ngx_alloc_chain_link(r->pool);
            if (*ll == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            (*ll)->buf = b;
            ll = &(*ll)->next;
        }
    }

    *ll = NULL;

    return ngx_http_oauth2_next_body_filter(r, out);
}


void
ngx_http_oauth2_body_filter_init(void)
{
    ngx_http_oauth2_next_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_oauth2_body_filter;
}


static ngx_int_t
ngx_http_oauth2_collect_body(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_http_oauth2_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_oauth2_module);

    if (ctx == NULL || !ctx->body_kept) {
        return NGX_ERROR;
    }

    if (ctx->body_too_large) {
        return NGX_DECLINED;
    }

    body->data = ctx->body;
    body->len = ctx->body_len;

    return NGX_OK;
}


/* a refusal the shim decides, answered in the endpoint's shape */

static ngx_int_t
ngx_http_oauth2_refuse(ngx_http_request_t *r, ngx_http_oauth2_loc_conf_t *olcf,
    int why, ngx_uint_t wait)
{
    oauth2_response_t  resp;

    ngx_memzero(&resp, sizeof(oauth2_response_t));

    if (oauth2_refusal(olcf->location, why, (unsigned) wait,
                       ngx_http_oauth2_palloc, r->pool, &resp)
        != OAUTH2_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_oauth2_send_json(r, &resp);
}


/* the shim's 503 (a queue is full), counted by reason */

static ngx_int_t
ngx_http_oauth2_refuse_busy(ngx_http_request_t *r,
    ngx_http_oauth2_loc_conf_t *olcf, ngx_uint_t reason)
{
    ngx_http_oauth2_metrics_unavailable(r, reason);

    return ngx_http_oauth2_refuse(r, olcf, OAUTH2_REFUSED_BUSY, 1);
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
