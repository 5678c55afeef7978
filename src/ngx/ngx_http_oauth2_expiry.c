
/*
 * ngx_http_oauth2_module: the background expiry (oauth2_expiry_cleanup).
 * Every worker runs a timer; a round goes to the thread pool, where the
 * core removes what has expired if this worker holds the store's expiry
 * lease (one process at a time; another takes over once it lapses, so a
 * reload or a dead worker neither stops nor doubles it).  A round that
 * found a backlog is followed by the next one at once, so removal keeps
 * up with issuance while each round stays short.
 */


#include "ngx_http_oauth2.h"


#define NGX_HTTP_OAUTH2_EXPIRY_BACKLOG  10      /* ms: a full round */
#define NGX_HTTP_OAUTH2_EXPIRY_PASS     1000    /* ms: a pass goes on */


typedef struct {
    oauth2_store_t     *store;
    ngx_msec_t          interval;
    ngx_uint_t          batch;
    char                owner[64];       /* this worker, in the lease */
    int64_t             now;
    unsigned            held;
    unsigned            removed;
    unsigned            more;
    int                 rc;
    char                err[256];
    unsigned            running:1;
} ngx_http_oauth2_expiry_t;


static void ngx_http_oauth2_expiry_timer(ngx_event_t *ev);
static void ngx_http_oauth2_expiry_round(void *data, ngx_log_t *log);
static void ngx_http_oauth2_expiry_done(ngx_event_t *ev);


static ngx_http_oauth2_expiry_t  ngx_http_oauth2_expiry;
static ngx_event_t               ngx_http_oauth2_expiry_ev;
static ngx_connection_t          ngx_http_oauth2_expiry_conn;
#if (NGX_THREADS)
static ngx_thread_task_t        *ngx_http_oauth2_expiry_task;
static ngx_thread_pool_t        *ngx_http_oauth2_expiry_pool;
#endif


void
ngx_http_oauth2_expiry_start(ngx_cycle_t *cycle, oauth2_store_t *store)
{
    ngx_http_oauth2_expiry_t     *ex = &ngx_http_oauth2_expiry;
    ngx_http_oauth2_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_oauth2_module);

    if (mcf->expiry_interval == 0) {
        return;
    }

    ex->store = store;
    ex->interval = mcf->expiry_interval;
    ex->batch = mcf->expiry_batch;
    (void) ngx_snprintf((u_char *) ex->owner, sizeof(ex->owner) - 1,
                        "%P-%T-%ui%Z", ngx_pid, ngx_time(),
                        (ngx_uint_t) ngx_random());

#if (NGX_THREADS)
    ngx_http_oauth2_expiry_pool = mcf->expiry_pool;

    ngx_http_oauth2_expiry_task = ngx_thread_task_alloc(cycle->pool, 0);
    if (ngx_http_oauth2_expiry_task == NULL) {
        return;
    }

    ngx_http_oauth2_expiry_task->ctx = ex;
    ngx_http_oauth2_expiry_task->handler = ngx_http_oauth2_expiry_round;
    ngx_http_oauth2_expiry_task->event.data = ex;
    ngx_http_oauth2_expiry_task->event.handler = ngx_http_oauth2_expiry_done;
    ngx_http_oauth2_expiry_task->event.log = cycle->log;
#endif

    ngx_http_oauth2_expiry_conn.fd = (ngx_socket_t) -1;
    ngx_http_oauth2_expiry_ev.handler = ngx_http_oauth2_expiry_timer;
    ngx_http_oauth2_expiry_ev.log = cycle->log;
    ngx_http_oauth2_expiry_ev.data = &ngx_http_oauth2_expiry_conn;
    ngx_http_oauth2_expiry_ev.cancelable = 1;

    /* the first round soon after start, spread over the workers */
    ngx_add_timer(&ngx_http_oauth2_expiry_ev, 1000 + ngx_random() % 1000);
}


/* 1 if the store may be freed; 0 while a round still runs in a thread */

ngx_int_t
ngx_http_oauth2_expiry_stop(ngx_cycle_t *cycle)
{
    ngx_http_oauth2_expiry_t  *ex = &ngx_http_oauth2_expiry;

    if (ex->store == NULL) {
        return 1;
    }

    if (ex->running) {
        return 0;
    }

    /* the next process need not wait for the lease to lapse */
    oauth2_expiry_release(ex->store, ex->owner);

    return 1;
}


static void
ngx_http_oauth2_expiry_timer(ngx_event_t *ev)
{
    ngx_http_oauth2_expiry_t  *ex = &ngx_http_oauth2_expiry;

    if (ngx_exiting || ngx_terminate || ex->running) {
        return;
    }

    if (!oauth2_store_is_open(ex->store)) {
        ngx_add_timer(ev, ex->interval);
        return;
    }

    ex->now = ngx_time();

#if (NGX_THREADS)
    if (ngx_http_oauth2_expiry_task && ngx_http_oauth2_expiry_pool) {
        if (ngx_thread_task_post(ngx_http_oauth2_expiry_pool,
                                 ngx_http_oauth2_expiry_task)
            == NGX_OK)
        {
            ex->running = 1;
            return;
        }

        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "oauth2: cannot post the expiry round");
        ngx_add_timer(ev, ex->interval);
        return;
    }
#endif

    ngx_http_oauth2_expiry_round(ex, ev->log);
    ngx_http_oauth2_expiry_done(ev);
}


/* in the thread pool */

static void
ngx_http_oauth2_expiry_round(void *data, ngx_log_t *log)
{
    ngx_http_oauth2_expiry_t *ex = data;

    unsigned  lease;

    /* a lease outlives a few missed rounds, never a dead worker long */
    lease = (unsigned) (3 * ex->interval / 1000);

    ex->rc = oauth2_expiry_round(ex->store, ex->owner, ex->now, lease,
                                 (unsigned) ex->batch, &ex->held, &ex->removed,
                                 &ex->more, ex->err, sizeof(ex->err));
}


static void
ngx_http_oauth2_expiry_done(ngx_event_t *ev)
{
    ngx_msec_t                 next;
    ngx_http_oauth2_expiry_t  *ex = &ngx_http_oauth2_expiry;

    ex->running = 0;
    next = ex->interval;

    if (ex->rc != OAUTH2_OK) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "oauth2: expiry round failed: %s", ex->err);

    } else if (ex->held) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                       "oauth2: expiry removed %ud records (%s, more: %ud)",
                       ex->removed, ex->owner, ex->more);

        if (ex->removed >= ex->batch) {
            next = NGX_HTTP_OAUTH2_EXPIRY_BACKLOG;

        } else if (ex->more) {
            next = ngx_min(ex->interval, NGX_HTTP_OAUTH2_EXPIRY_PASS);
        }
    }

    if (ex->removed) {
        ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                      "oauth2: expiry removed %ud expired records",
                      ex->removed);
    }

    if (!ngx_exiting && !ngx_terminate) {
        ngx_add_timer(&ngx_http_oauth2_expiry_ev, next);
    }
}
