
/*
 * ngx_http_oauth2_module: the store in nginx's processes.  The master
 * prepares it (directory, ownership; never a write) at start and on
 * reload; each worker opens it after fork, retries every second while it
 * cannot, and clears the reader slots of dead processes every 30 s.
 * Neither ever returns an error that would stop nginx or a worker.
 */


#include "ngx_http_oauth2.h"


#define NGX_HTTP_OAUTH2_RETRY            1000
#define NGX_HTTP_OAUTH2_READER_CHECK     30000


static void ngx_http_oauth2_timer_handler(ngx_event_t *ev);


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


ngx_int_t
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


/*
 * The TLS files towards etcd (into tls) are read at each handshake by the
 * workers' user, and nginx -t read them as root: a key of root's only
 * (0600, as keys are kept) would fail every write to etcd without a word.
 */

static void
ngx_http_oauth2_tls_readable(ngx_cycle_t *cycle,
    ngx_http_oauth2_main_conf_t *mcf, oauth2_cluster_tls_t *tls)
{
    ngx_uint_t   i;
    const char  *files[3];

    ngx_http_oauth2_cluster_tls(mcf, tls);

    files[0] = tls->cacert;
    files[1] = tls->cert;
    files[2] = tls->key;

    for (i = 0; i < 3; i++) {
        if (files[i] != NULL && access(files[i], R_OK) != 0) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                          "oauth2: the workers' user cannot read \"%s\" "
                          "(oauth2_cluster): every write to etcd fails "
                          "until it can", files[i]);
        }
    }
}


ngx_int_t
ngx_http_oauth2_init_process(ngx_cycle_t *cycle)
{
    int                           dead;
    u_char                        err[512];
    oauth2_cluster_tls_t          tls;
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

    oauth2_store_share_metrics(ngx_http_oauth2_worker_store,
                               ngx_http_oauth2_metrics_for_writes(cycle));

    ngx_http_oauth2_tls_readable(cycle, mcf, &tls);

    if (mcf->cluster_etcd.len
        && oauth2_store_cluster(ngx_http_oauth2_worker_store,
                                (char *) mcf->cluster_etcd.data,
                                (char *) mcf->cluster_prefix.data, &tls,
                                (int64_t) mcf->max_staleness,
                                (char *) err, sizeof(err))
           != OAUTH2_OK)
    {
        /* checked at configuration: only out of memory gets here */
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "oauth2: cannot set up the cluster: %s", err);
        return NGX_ERROR;
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

    ngx_http_oauth2_expiry_start(cycle, ngx_http_oauth2_worker_store);

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


void
ngx_http_oauth2_exit_process(ngx_cycle_t *cycle)
{
    oauth2_store_stats_t  st;

    if (ngx_http_oauth2_worker_store == NULL) {
        return;
    }

    oauth2_store_stats(ngx_http_oauth2_worker_store, &st);

    if (st.batches) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "oauth2: store writes: %uL changes in %uL commits, "
                      "%uL run again", st.changes, st.batches, st.conflicts);
    }

    if (!ngx_http_oauth2_expiry_stop(cycle)) {
        /* a round still runs in a thread: the process ends anyway */
        return;
    }

    oauth2_store_destroy(ngx_http_oauth2_worker_store);
    ngx_http_oauth2_worker_store = NULL;
}
