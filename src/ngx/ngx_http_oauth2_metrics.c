
/*
 * ngx_http_oauth2_module: the metrics (oauth2_metrics), in Prometheus'
 * text format.  Every count lives in one shared memory zone, added to
 * with atomic adds by every worker (and by the core's committer, for the
 * store's commits), so that a scrape of any worker sees exact totals; a
 * reload keeps them.  Access is left to allow/deny, as for stub_status.
 *
 * The issued tokens' series name a realm and its client ids: a metrics
 * location shows its own realm's only ("oauth2_metrics all" every
 * realm's), and the realms of the token endpoints share the table out:
 * each is guaranteed SLOTS / (2 x realms) series, and takes more only
 * while the others' guarantees stay free, so that one realm's flood of
 * new applications leaves the others room.  Whether a realm has room is
 * arithmetic on counts each worker keeps (ngx_http_oauth2_metrics_tally_t)
 * and brings up to date only when a slot was filled: a realm past its
 * share pays nothing more per token than one that has room (R88).
 */


#include "ngx_http_oauth2.h"


#define NGX_HTTP_OAUTH2_ISSUED_SLOTS  1024
#define NGX_HTTP_OAUTH2_METRICS_SIZE  (1024 * 1024)


/* a (realm, client_id, grant) whose issued tokens are counted */
typedef struct {
    ngx_atomic_t               count;
    u_char                     grant;         /* 1 + index; 0: a free slot */
    u_char                     realm_len;
    u_char                     client_len;
    u_char                     realm[64];
    u_char                     client[200];
} ngx_http_oauth2_issued_t;


typedef struct {
    ngx_atomic_t               validations[OAUTH2_WHY_COUNT];
    ngx_atomic_t               cache_hits;    /* of validations[ok] */
    ngx_atomic_t               limited[3];    /* by OAUTH2_LIMITED_* */
    ngx_atomic_t               unavailable[OAUTH2_UNAVAILABLE_COUNT];
    ngx_atomic_t               issued_untracked;   /* the table was full */
    ngx_uint_t                 issued_filled;  /* slots of issued[] filled
                                                  (the mutex held); a slot
                                                  is never emptied */
    oauth2_write_metrics_t     writes;
    ngx_http_oauth2_issued_t   issued[NGX_HTTP_OAUTH2_ISSUED_SLOTS];
} ngx_http_oauth2_metrics_sh_t;


/*
 * A worker's count of the series of each realm of its configuration's
 * token endpoints (mcf->issuing_realms): each filled slot is counted once
 * (counted[]), when sh->issued_filled says slots were filled since the
 * last look, so that room() reads counts instead of asking every slot's
 * realm against every realm's name (1024 x realms comparisons, the
 * zone's mutex held).  Every field is read and written with the mutex
 * held.
 */
typedef struct {
    ngx_uint_t                 filled;        /* sh->issued_filled seen */
    ngx_uint_t                 guarantee;     /* SLOTS / (2 x realms) */
    ngx_uint_t                 reserved;      /* sum of each realm's
                                                 guarantee - its series,
                                                 where positive */
    ngx_uint_t                 nrealms;
    ngx_str_t                 *name;          /* mcf->issuing_realms */
    ngx_uint_t                *used;          /* series of name[k] */
    ngx_uint_t                *index;         /* 1 + k by its name's crc */
    ngx_uint_t                 mask;          /* index has mask + 1 */
    u_char                     counted[NGX_HTTP_OAUTH2_ISSUED_SLOTS];
} ngx_http_oauth2_metrics_tally_t;


static ngx_int_t ngx_http_oauth2_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_oauth2_metrics_sh_t *ngx_http_oauth2_metrics_sh(
    ngx_http_request_t *r, ngx_slab_pool_t **shpool);
static ngx_http_oauth2_issued_t *ngx_http_oauth2_metrics_series(
    ngx_http_oauth2_metrics_sh_t *sh, ngx_slab_pool_t *shpool,
    ngx_str_t *realm, oauth2_str_t *client, ngx_uint_t grant,
    ngx_http_oauth2_metrics_tally_t *t);
static ngx_http_oauth2_metrics_tally_t *ngx_http_oauth2_metrics_tally(
    ngx_http_oauth2_main_conf_t *mcf, ngx_log_t *log);
static ngx_int_t ngx_http_oauth2_metrics_realm_index(
    ngx_http_oauth2_metrics_tally_t *t, u_char *name, size_t len);
static void ngx_http_oauth2_metrics_count(ngx_http_oauth2_metrics_sh_t *sh,
    ngx_http_oauth2_metrics_tally_t *t);
static ngx_uint_t ngx_http_oauth2_metrics_room(
    ngx_http_oauth2_metrics_sh_t *sh, ngx_str_t *realm,
    ngx_http_oauth2_metrics_tally_t *t);
static u_char *ngx_http_oauth2_metrics_label(u_char *p, u_char *s,
    size_t len);
static u_char *ngx_http_oauth2_metrics_issued(u_char *p,
    ngx_http_oauth2_metrics_sh_t *sh, ngx_slab_pool_t *shpool,
    ngx_str_t *realm);
static u_char *ngx_http_oauth2_metrics_counts(u_char *p,
    ngx_http_oauth2_metrics_sh_t *sh);
static u_char *ngx_http_oauth2_metrics_writes(u_char *p,
    oauth2_write_metrics_t *w);
static u_char *ngx_http_oauth2_metrics_mirror(u_char *p,
    oauth2_store_stats_t *st);
static u_char *ngx_http_oauth2_metrics_dpop_zone(u_char *p,
    ngx_http_request_t *r);
static u_char *ngx_http_oauth2_metrics_gauges(u_char *p,
    ngx_http_request_t *r);


ngx_int_t
ngx_http_oauth2_metrics_add_zone(ngx_conf_t *cf,
    ngx_http_oauth2_main_conf_t *mcf)
{
    ngx_str_t  name;

    ngx_str_set(&name, "oauth2_metrics");

    mcf->metrics_zone = ngx_shared_memory_add(cf, &name,
                                              NGX_HTTP_OAUTH2_METRICS_SIZE,
                                              &ngx_http_oauth2_module);
    if (mcf->metrics_zone == NULL) {
        return NGX_ERROR;
    }

    mcf->metrics_zone->init = ngx_http_oauth2_metrics_init_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_oauth2_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t               *shpool;
    ngx_http_oauth2_metrics_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    shm_zone->data = shpool;

    if (data || shm_zone->shm.exists) {
        /* a reload keeps the counts: Prometheus counters only grow */
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_oauth2_metrics_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;

    return NGX_OK;
}


/* the counters of the cycle's zone, for the committer of this worker */

oauth2_write_metrics_t *
ngx_http_oauth2_metrics_for_writes(ngx_cycle_t *cycle)
{
    ngx_slab_pool_t               *shpool;
    ngx_http_oauth2_metrics_sh_t  *sh;
    ngx_http_oauth2_main_conf_t   *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_oauth2_module);

    if (mcf == NULL || mcf->metrics_zone == NULL) {
        return NULL;
    }

    shpool = (ngx_slab_pool_t *) mcf->metrics_zone->shm.addr;
    sh = shpool->data;

    return &sh->writes;
}


static ngx_http_oauth2_metrics_sh_t *
ngx_http_oauth2_metrics_sh(ngx_http_request_t *r, ngx_slab_pool_t **shpool)
{
    ngx_slab_pool_t              *pool;
    ngx_http_oauth2_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_oauth2_module);

    if (mcf == NULL || mcf->metrics_zone == NULL) {
        return NULL;
    }

    pool = (ngx_slab_pool_t *) mcf->metrics_zone->shm.addr;

    if (shpool) {
        *shpool = pool;
    }

    return pool->data;
}


void
ngx_http_oauth2_metrics_validation(ngx_http_request_t *r, int why,
    ngx_uint_t cached)
{
    ngx_http_oauth2_metrics_sh_t  *sh;

    sh = ngx_http_oauth2_metrics_sh(r, NULL);

    if (sh == NULL || why < 0 || why >= OAUTH2_WHY_COUNT) {
        return;
    }

    (void) ngx_atomic_fetch_add(&sh->validations[why], 1);

    if (cached && why == OAUTH2_WHY_OK) {
        (void) ngx_atomic_fetch_add(&sh->cache_hits, 1);
    }

    if (why == OAUTH2_WHY_RATE_LIMITED) {
        (void) ngx_atomic_fetch_add(&sh->limited[OAUTH2_LIMITED_RATE], 1);
    }
}


/* a 503 of an endpoint or of auth_oauth2: OAUTH2_UNAVAILABLE_* */

void
ngx_http_oauth2_metrics_unavailable(ngx_http_request_t *r, ngx_uint_t reason)
{
    ngx_http_oauth2_metrics_sh_t  *sh;

    sh = ngx_http_oauth2_metrics_sh(r, NULL);

    if (sh == NULL) {
        return;
    }

    if (reason == OAUTH2_UNAVAILABLE_NONE
        || reason >= OAUTH2_UNAVAILABLE_COUNT)
    {
        /* the core names each of its 503s: none goes uncounted */
        reason = OAUTH2_UNAVAILABLE_STORE;
    }

    (void) ngx_atomic_fetch_add(&sh->unavailable[reason], 1);
}


/* an endpoint's answer: a limit's refusal, a 503, or a token issued */

void
ngx_http_oauth2_metrics_response(ngx_http_request_t *r, ngx_str_t *realm,
    oauth2_response_t *resp)
{
    int                            g;
    ngx_slab_pool_t               *shpool;
    ngx_http_oauth2_issued_t      *e;
    ngx_http_oauth2_main_conf_t   *mcf;
    ngx_http_oauth2_metrics_sh_t  *sh;

    sh = ngx_http_oauth2_metrics_sh(r, &shpool);

    if (sh == NULL) {
        return;
    }

    if (resp->limited == OAUTH2_LIMITED_RATE
        || resp->limited == OAUTH2_LIMITED_THROTTLE)
    {
        (void) ngx_atomic_fetch_add(&sh->limited[resp->limited], 1);
    }

    /* seed 002's API answers its 503s as 500: the core says which */
    if (resp->status == NGX_HTTP_SERVICE_UNAVAILABLE
        || resp->unavailable != OAUTH2_UNAVAILABLE_NONE)
    {
        ngx_http_oauth2_metrics_unavailable(r, resp->unavailable);
    }

    if (resp->issued_client.len == 0) {
        return;
    }

    /* the core's list of grants, the device flow's among them */
    g = oauth2_grant_index(&resp->grant);

    if (g < 0
        || realm->len > sizeof(e->realm)
        || resp->issued_client.len > sizeof(e->client))
    {
        (void) ngx_atomic_fetch_add(&sh->issued_untracked, 1);
        return;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_oauth2_module);

    e = ngx_http_oauth2_metrics_series(sh, shpool, realm,
                                       &resp->issued_client,
                                       (ngx_uint_t) g + 1,
                                       ngx_http_oauth2_metrics_tally(
                                           mcf, r->connection->log));
    if (e == NULL) {
        (void) ngx_atomic_fetch_add(&sh->issued_untracked, 1);
        return;
    }

    (void) ngx_atomic_fetch_add(&e->count, 1);
}


/*
 * The series of (realm, client, grant), made if new; NULL: no room (or
 * no tally, which only a worker out of memory lacks: the series it has
 * are still counted).
 */

static ngx_http_oauth2_issued_t *
ngx_http_oauth2_metrics_series(ngx_http_oauth2_metrics_sh_t *sh,
    ngx_slab_pool_t *shpool, ngx_str_t *realm, oauth2_str_t *client,
    ngx_uint_t grant, ngx_http_oauth2_metrics_tally_t *t)
{
    ngx_uint_t                 i, slot;
    ngx_http_oauth2_issued_t  *e, *found;

    slot = ngx_crc32_short((u_char *) client->data, client->len)
           ^ ngx_crc32_short(realm->data, realm->len);
    found = NULL;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < NGX_HTTP_OAUTH2_ISSUED_SLOTS; i++) {
        e = &sh->issued[(slot + i) % NGX_HTTP_OAUTH2_ISSUED_SLOTS];

        if (e->grant == 0) {
            if (t == NULL || !ngx_http_oauth2_metrics_room(sh, realm, t)) {
                break;
            }

            /* a new series: written whole before it is published */
            e->realm_len = (u_char) realm->len;
            ngx_memcpy(e->realm, realm->data, realm->len);
            e->client_len = (u_char) client->len;
            ngx_memcpy(e->client, client->data, client->len);
            e->grant = (u_char) grant;
            sh->issued_filled++;
            found = e;
            break;
        }

        if (e->grant == grant
            && e->realm_len == realm->len
            && e->client_len == client->len
            && ngx_memcmp(e->realm, realm->data, realm->len) == 0
            && ngx_memcmp(e->client, client->data, client->len) == 0)
        {
            found = e;
            break;
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return found;
}


/* whether e is a series of realm */

static ngx_inline ngx_uint_t
ngx_http_oauth2_metrics_of(ngx_http_oauth2_issued_t *e, ngx_str_t *realm)
{
    return e->realm_len == realm->len
           && ngx_memcmp(e->realm, realm->data, realm->len) == 0;
}


/*
 * This worker's tally, made at its first issued token from its
 * configuration's realms (in the cycle's pool: a reload's new workers
 * make theirs from the new list).
 */

static ngx_http_oauth2_metrics_tally_t *
ngx_http_oauth2_metrics_tally(ngx_http_oauth2_main_conf_t *mcf,
    ngx_log_t *log)
{
    ngx_str_t                        *name;
    ngx_uint_t                        k, n, h, size;
    ngx_http_oauth2_metrics_tally_t  *t;

    if (mcf->issued_tally) {
        return mcf->issued_tally;
    }

    name = mcf->issuing_realms ? mcf->issuing_realms->elts : NULL;
    n = mcf->issuing_realms ? mcf->issuing_realms->nelts : 0;

    for (size = 2; size < 2 * n; size <<= 1) { /* void */ }

    t = ngx_pcalloc(ngx_cycle->pool, sizeof(ngx_http_oauth2_metrics_tally_t));
    if (t == NULL) {
        goto failed;
    }

    t->used = ngx_pcalloc(ngx_cycle->pool, (n + 1) * sizeof(ngx_uint_t));
    t->index = ngx_pcalloc(ngx_cycle->pool, size * sizeof(ngx_uint_t));
    if (t->used == NULL || t->index == NULL) {
        goto failed;
    }

    t->guarantee = NGX_HTTP_OAUTH2_ISSUED_SLOTS / (2 * ngx_max(n, 1));
    t->guarantee = ngx_max(t->guarantee, 1);
    t->reserved = n * t->guarantee;
    t->nrealms = n;
    t->name = name;
    t->mask = size - 1;

    for (k = 0; k < n; k++) {
        h = ngx_crc32_short(name[k].data, name[k].len) & t->mask;

        while (t->index[h]) {
            h = (h + 1) & t->mask;
        }

        t->index[h] = k + 1;
    }

    mcf->issued_tally = t;

    return t;

failed:

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "oauth2_metrics: no memory for the count of issued "
                  "series: new series go untracked");
    return NULL;
}


/* the index of a realm in the tally's list; NGX_DECLINED: not in it */

static ngx_int_t
ngx_http_oauth2_metrics_realm_index(ngx_http_oauth2_metrics_tally_t *t,
    u_char *name, size_t len)
{
    ngx_uint_t  h, k;

    h = ngx_crc32_short(name, len) & t->mask;

    while (t->index[h]) {
        k = t->index[h] - 1;

        if (t->name[k].len == len
            && ngx_memcmp(t->name[k].data, name, len) == 0)
        {
            return (ngx_int_t) k;
        }

        h = (h + 1) & t->mask;
    }

    return NGX_DECLINED;
}


/*
 * Counts the slots filled since the tally last looked (the mutex held):
 * a slot's realm is looked up once, and nothing is read when no slot
 * was filled.
 */

static void
ngx_http_oauth2_metrics_count(ngx_http_oauth2_metrics_sh_t *sh,
    ngx_http_oauth2_metrics_tally_t *t)
{
    ngx_int_t                  k;
    ngx_uint_t                 i;
    ngx_http_oauth2_issued_t  *e;

    if (t->filled == sh->issued_filled) {
        return;
    }

    for (i = 0; i < NGX_HTTP_OAUTH2_ISSUED_SLOTS; i++) {
        e = &sh->issued[i];

        if (e->grant == 0 || t->counted[i]) {
            continue;
        }

        t->counted[i] = 1;

        k = ngx_http_oauth2_metrics_realm_index(t, e->realm, e->realm_len);
        if (k == NGX_DECLINED) {
            /* a realm an earlier configuration had: it reserves nothing */
            continue;
        }

        if (t->used[k] < t->guarantee) {
            t->reserved--;
        }

        t->used[k]++;
    }

    t->filled = sh->issued_filled;
}


/*
 * Whether realm may take one more series (the mutex held): it holds
 * fewer than its guarantee, or the table keeps more free slots than the
 * other realms' guarantees still need.
 */

static ngx_uint_t
ngx_http_oauth2_metrics_room(ngx_http_oauth2_metrics_sh_t *sh,
    ngx_str_t *realm, ngx_http_oauth2_metrics_tally_t *t)
{
    ngx_int_t   k;
    ngx_uint_t  i, mine, empty, reserved;

    ngx_http_oauth2_metrics_count(sh, t);

    k = ngx_http_oauth2_metrics_realm_index(t, realm->data, realm->len);

    if (k != NGX_DECLINED) {
        mine = t->used[k];

    } else {
        /* not a realm of this configuration's token endpoints */
        mine = 0;

        for (i = 0; i < NGX_HTTP_OAUTH2_ISSUED_SLOTS; i++) {
            if (sh->issued[i].grant
                && ngx_http_oauth2_metrics_of(&sh->issued[i], realm))
            {
                mine++;
            }
        }
    }

    if (mine < t->guarantee) {
        return 1;
    }

    /* the others' guarantees: this realm's own is met */
    reserved = t->reserved;
    empty = NGX_HTTP_OAUTH2_ISSUED_SLOTS - sh->issued_filled;

    return empty > reserved;
}


/* the realm of a token endpoint shares the table of issued series */

ngx_int_t
ngx_http_oauth2_metrics_realm(ngx_conf_t *cf, ngx_http_oauth2_loc_conf_t *olcf)
{
    ngx_str_t                    *name;
    ngx_uint_t                    i;
    ngx_http_oauth2_main_conf_t  *mcf;

    if (olcf->endpoint != OAUTH2_ENDPOINT_TOKEN
        && olcf->endpoint != OAUTH2_ENDPOINT_JWT_TOKEN
        && olcf->endpoint != OAUTH2_ENDPOINT_JWT_REFRESH)
    {
        return NGX_OK;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth2_module);

    if (mcf->issuing_realms == NULL) {
        mcf->issuing_realms = ngx_array_create(cf->pool, 4,
                                               sizeof(ngx_str_t));
        if (mcf->issuing_realms == NULL) {
            return NGX_ERROR;
        }
    }

    name = mcf->issuing_realms->elts;

    for (i = 0; i < mcf->issuing_realms->nelts; i++) {
        if (name[i].len == olcf->store_realm.len
            && ngx_memcmp(name[i].data, olcf->store_realm.data,
                          name[i].len) == 0)
        {
            return NGX_OK;
        }
    }

    name = ngx_array_push(mcf->issuing_realms);
    if (name == NULL) {
        return NGX_ERROR;
    }

    *name = olcf->store_realm;

    return NGX_OK;
}


/* oauth2_metrics [all]: this location serves the metrics */

char *
ngx_http_oauth2_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_oauth2_loc_conf_t *olcf = conf;

    ngx_str_t                    *value;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_oauth2_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_oauth2_module);

    if (mcf->store_path.len == 0) {
        return "requires \"oauth2_store\" in the http block before it";
    }

    /* one handler a location: the second would silently replace the first */
    if (olcf->metrics) {
        return "is duplicate";
    }

    if (olcf->endpoint != OAUTH2_ENDPOINT_NONE) {
        return "cannot share a location with an endpoint directive";
    }

    olcf->metrics = NGX_HTTP_OAUTH2_METRICS_REALM;

    if (cf->args->nelts == 2) {
        value = cf->args->elts;

        if (value[1].len != sizeof("all") - 1
            || ngx_strncmp(value[1].data, "all", value[1].len) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive, "
                               "it must be \"all\"", &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }

        /* every realm's issued series: the host's operator's */
        olcf->metrics = NGX_HTTP_OAUTH2_METRICS_ALL;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_oauth2_metrics_handler;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_oauth2_metrics_handler(ngx_http_request_t *r)
{
    size_t                         size;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_str_t                     *realm;
    ngx_chain_t                    out;
    ngx_slab_pool_t               *shpool;
    ngx_http_oauth2_loc_conf_t    *olcf;
    ngx_http_oauth2_metrics_sh_t  *sh;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    sh = ngx_http_oauth2_metrics_sh(r, &shpool);
    if (sh == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    /* each issued series at most: its labels escaped, and the count */
    size = 16384 + NGX_HTTP_OAUTH2_ISSUED_SLOTS
                   * (2 * (64 + 200) + 128 + NGX_ATOMIC_T_LEN);

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the issued series of the location's realm, unless "all" */

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_module);
    realm = (olcf->metrics == NGX_HTTP_OAUTH2_METRICS_ALL)
            ? NULL : &olcf->store_realm;

    b->last = ngx_http_oauth2_metrics_issued(b->last, sh, shpool, realm);
    b->last = ngx_http_oauth2_metrics_counts(b->last, sh);
    b->last = ngx_http_oauth2_metrics_writes(b->last, &sh->writes);
    b->last = ngx_http_oauth2_metrics_gauges(b->last, r);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    r->disable_not_modified = 1;  /* always the counts of now */

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* a label value as the text format escapes it: \\, \" and \n */

static u_char *
ngx_http_oauth2_metrics_label(u_char *p, u_char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (s[i] == '\\' || s[i] == '"') {
            *p++ = '\\';
            *p++ = s[i];

        } else if (s[i] == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else {
            *p++ = s[i];
        }
    }

    return p;
}


static u_char *
ngx_http_oauth2_metrics_issued(u_char *p, ngx_http_oauth2_metrics_sh_t *sh,
    ngx_slab_pool_t *shpool, ngx_str_t *realm)
{
    ngx_uint_t                 i;
    ngx_http_oauth2_issued_t  *e;

    p = ngx_sprintf(p,
        "# HELP oauth2_tokens_issued_total Access tokens issued by the token "
        "endpoint, by realm, application and grant.\n"
        "# TYPE oauth2_tokens_issued_total counter\n");

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < NGX_HTTP_OAUTH2_ISSUED_SLOTS; i++) {
        e = &sh->issued[i];

        if (e->grant == 0
            || (realm && !ngx_http_oauth2_metrics_of(e, realm)))
        {
            continue;
        }

        p = ngx_sprintf(p, "oauth2_tokens_issued_total{realm=\"");
        p = ngx_http_oauth2_metrics_label(p, e->realm, e->realm_len);
        p = ngx_sprintf(p, "\",client_id=\"");
        p = ngx_http_oauth2_metrics_label(p, e->client, e->client_len);
        p = ngx_sprintf(p, "\",grant=\"%s\"} %uA\n",
                        oauth2_grant_label(e->grant - 1), e->count);
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return ngx_sprintf(p,
        "# HELP oauth2_tokens_issued_untracked_total Access tokens issued "
        "once the table of %d series was full.\n"
        "# TYPE oauth2_tokens_issued_untracked_total counter\n"
        "oauth2_tokens_issued_untracked_total %uA\n",
        NGX_HTTP_OAUTH2_ISSUED_SLOTS, sh->issued_untracked);
}


static u_char *
ngx_http_oauth2_metrics_counts(u_char *p, ngx_http_oauth2_metrics_sh_t *sh)
{
    int  why, reason;

    p = ngx_sprintf(p,
        "# HELP oauth2_validations_total Bearer tokens checked by "
        "auth_oauth2, by outcome.\n"
        "# TYPE oauth2_validations_total counter\n");

    for (why = 0; why < OAUTH2_WHY_COUNT; why++) {
        p = ngx_sprintf(p, "oauth2_validations_total{outcome=\"%s\"} %uA\n",
                        oauth2_why_name(why), sh->validations[why]);
    }

    p = ngx_sprintf(p,
        "# HELP oauth2_validation_cache_hits_total Checks of outcome ok "
        "that oauth2_validation_cache answered without reading the "
        "store.\n"
        "# TYPE oauth2_validation_cache_hits_total counter\n"
        "oauth2_validation_cache_hits_total %uA\n", sh->cache_hits);

    p = ngx_sprintf(p,
        "# HELP oauth2_limit_refusals_total Requests answered 429 by "
        "oauth2_rate_limit or by a throttle of failed authentications.\n"
        "# TYPE oauth2_limit_refusals_total counter\n"
        "oauth2_limit_refusals_total{limit=\"rate_limit\"} %uA\n"
        "oauth2_limit_refusals_total{limit=\"throttle\"} %uA\n"
        "# HELP oauth2_unavailable_total Requests an endpoint or "
        "auth_oauth2 answered 503, by reason: the store, the mirror or "
        "etcd (oauth2_cluster), a full queue of password hashes or of "
        "the thread pool.\n"
        "# TYPE oauth2_unavailable_total counter\n",
        sh->limited[OAUTH2_LIMITED_RATE],
        sh->limited[OAUTH2_LIMITED_THROTTLE]);

    for (reason = 1; reason < OAUTH2_UNAVAILABLE_COUNT; reason++) {
        p = ngx_sprintf(p, "oauth2_unavailable_total{reason=\"%s\"} %uA\n",
                        oauth2_unavailable_name(reason),
                        sh->unavailable[reason]);
    }

    return p;
}


/* a bound as Prometheus prints one: 0.0005, 0.01, 1 */

static u_char *
ngx_http_oauth2_metrics_bound(u_char *p, double bound)
{
    u_char  *start, *last;

    start = p;
    p = ngx_sprintf(p, "%.4f", bound);

    for (last = p - 1; last > start && *last == '0'; last--) {
        /* the trailing zeros */
    }

    return (*last == '.') ? last : last + 1;
}


static u_char *
ngx_http_oauth2_metrics_writes(u_char *p, oauth2_write_metrics_t *w)
{
    uint64_t    sum;
    ngx_uint_t  i;

    p = ngx_sprintf(p,
        "# HELP oauth2_store_commit_seconds Time to commit one batch of "
        "store writes, its sync included (a batch that failed is none).\n"
        "# TYPE oauth2_store_commit_seconds histogram\n");

    for (sum = 0, i = 0; i < OAUTH2_COMMIT_BUCKETS; i++) {
        sum += w->commit[i];
        p = ngx_sprintf(p, "oauth2_store_commit_seconds_bucket{le=\"");
        p = (i + 1 < OAUTH2_COMMIT_BUCKETS)
            ? ngx_http_oauth2_metrics_bound(p, oauth2_commit_bound(i))
            : ngx_sprintf(p, "+Inf");
        p = ngx_sprintf(p, "\"} %uL\n", sum);
    }

    /*
     * _count is the +Inf bucket's sum, never w->batches: the committer
     * adds to the counters one after the other while this reads them,
     * and a count read apart from the buckets could hold a batch that no
     * bucket has yet
     */

    p = ngx_sprintf(p,
        "oauth2_store_commit_seconds_sum %uL.%06uL\n"
        "oauth2_store_commit_seconds_count %uL\n"
        "# HELP oauth2_store_commit_batch_size Changes committed together "
        "in one batch (group commit).\n"
        "# TYPE oauth2_store_commit_batch_size histogram\n",
        w->commit_usec / 1000000, w->commit_usec % 1000000, sum);

    for (sum = 0, i = 0; i < OAUTH2_BATCH_BUCKETS; i++) {
        sum += w->batch[i];
        p = (i + 1 < OAUTH2_BATCH_BUCKETS)
            ? ngx_sprintf(p, "oauth2_store_commit_batch_size_bucket"
                             "{le=\"%ud\"} %uL\n", oauth2_batch_bound(i), sum)
            : ngx_sprintf(p, "oauth2_store_commit_batch_size_bucket"
                             "{le=\"+Inf\"} %uL\n", sum);
    }

    return ngx_sprintf(p,
        "oauth2_store_commit_batch_size_sum %uL\n"
        "oauth2_store_commit_batch_size_count %uL\n"
        "# HELP oauth2_store_conflicts_total Changes run again because "
        "what they read had changed.\n"
        "# TYPE oauth2_store_conflicts_total counter\n"
        "oauth2_store_conflicts_total %uL\n"
        "# HELP oauth2_store_write_errors_total Changes a store error "
        "refused (a full store, a disk that failed): none was written.\n"
        "# TYPE oauth2_store_write_errors_total counter\n"
        "oauth2_store_write_errors_total %uL\n",
        w->changes, sum, w->conflicts, w->errors);
}


/* oauth2_cluster: how far the mirror has got, and how old it is */

static u_char *
ngx_http_oauth2_metrics_mirror(u_char *p, oauth2_store_stats_t *st)
{
    if (!st->cluster) {
        return p;
    }

    p = ngx_sprintf(p,
        "# HELP oauth2_mirror_revision The etcd revision this edge's mirror "
        "has applied (oauth2_cluster).\n"
        "# TYPE oauth2_mirror_revision gauge\n"
        "oauth2_mirror_revision %L\n"
        "# HELP oauth2_mirror_staleness_seconds Since the mirror was last "
        "known to hold all etcd had (its heartbeat came back); auth_oauth2 "
        "answers 503 past max_staleness.\n"
        "# TYPE oauth2_mirror_staleness_seconds gauge\n",
        st->mirror_revision);

    if (st->mirror_age_ms < 0) {
        return ngx_sprintf(p, "oauth2_mirror_staleness_seconds +Inf\n");
    }

    return ngx_sprintf(p, "oauth2_mirror_staleness_seconds %L.%03L\n",
                       st->mirror_age_ms / 1000, st->mirror_age_ms % 1000);
}


/* the zone of the DPoP proofs of the metrics location's realm */

static u_char *
ngx_http_oauth2_metrics_dpop_zone(u_char *p, ngx_http_request_t *r)
{
    size_t                       total;
    ngx_slab_pool_t             *zone;
    ngx_http_oauth2_loc_conf_t  *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_module);

    if (olcf->dpop_zone == NULL) {
        return p;
    }

    zone = (ngx_slab_pool_t *) olcf->dpop_zone->shm.addr;
    total = (zone->end - zone->start);

    return ngx_sprintf(p,
        "# HELP oauth2_dpop_zone_bytes The size of this realm's zone of "
        "DPoP proofs (oauth2_dpop_zone).\n"
        "# TYPE oauth2_dpop_zone_bytes gauge\n"
        "oauth2_dpop_zone_bytes %uz\n"
        "# HELP oauth2_dpop_zone_used_bytes What its proofs use.\n"
        "# TYPE oauth2_dpop_zone_used_bytes gauge\n"
        "oauth2_dpop_zone_used_bytes %uz\n",
        total, total - zone->pfree * ngx_pagesize);
}


static u_char *
ngx_http_oauth2_metrics_gauges(u_char *p, ngx_http_request_t *r)
{
    size_t                        total, used;
    oauth2_store_t               *store;
    ngx_slab_pool_t              *zone;
    oauth2_store_stats_t          st;
    ngx_http_oauth2_main_conf_t  *mcf;

    ngx_memzero(&st, sizeof(oauth2_store_stats_t));

    store = ngx_http_oauth2_store(r->connection->log);
    if (store) {
        oauth2_store_stats(store, &st);
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_oauth2_module);
    zone = (ngx_slab_pool_t *) mcf->shm_zone->shm.addr;
    total = (zone->end - zone->start);
    used = total - zone->pfree * ngx_pagesize;

    p = ngx_http_oauth2_metrics_mirror(p, &st);
    p = ngx_http_oauth2_metrics_dpop_zone(p, r);

    return ngx_sprintf(p,
        "# HELP oauth2_store_map_bytes The most the store may grow to "
        "(oauth2_store size=).\n"
        "# TYPE oauth2_store_map_bytes gauge\n"
        "oauth2_store_map_bytes %uL\n"
        "# HELP oauth2_store_used_bytes What the store's pages use.\n"
        "# TYPE oauth2_store_used_bytes gauge\n"
        "oauth2_store_used_bytes %uL\n"
        "# HELP oauth2_limit_zone_bytes The size of the counters' zone "
        "(oauth2_limit_zone).\n"
        "# TYPE oauth2_limit_zone_bytes gauge\n"
        "oauth2_limit_zone_bytes %uz\n"
        "# HELP oauth2_limit_zone_used_bytes What its counters use.\n"
        "# TYPE oauth2_limit_zone_used_bytes gauge\n"
        "oauth2_limit_zone_used_bytes %uz\n",
        st.map_size, st.used, total, used);
}
