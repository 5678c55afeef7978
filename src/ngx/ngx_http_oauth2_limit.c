
/*
 * ngx_http_oauth2_module: counters in shared memory (oauth2_limit_zone),
 * one fixed window per key, shared by every worker and kept across
 * reloads: the core's throttles of failed authentications and the request
 * rate limits (include/oauth2.h oauth2_counters_t); and, in a zone of
 * each realm's own (oauth2_dpop_zone), the DPoP proofs it has seen.  The
 * core decides the keys and the limits; this file only counts.
 *
 * A full zone never forgets a count that still matters: only entries
 * whose window has ended (or that never counted anything) are evicted,
 * and when none can be, the new key is refused (429) and the zone says so
 * at "alert", once until it has room again, as limit_req does.
 *
 * Nor does a reload: nginx keeps a zone whose size is the same, and
 * gives one of another size a new zone, into which its initialisation
 * copies the old zone's live entries (or fails the reload when they do
 * not fit); and a DPoP zone's proofs are kept, from their first use, as
 * long as the realm's widest iat_window of the new configuration would
 * take them again.
 */


#include "ngx_http_oauth2.h"


/* how many entries from the least recently used end one eviction looks at */
#define NGX_HTTP_OAUTH2_LIMIT_SCAN  64

/*
 * An entry that ends further off than this was dated by a clock that has
 * stepped back since (NTP, a resumed virtual machine): no window of the
 * zones runs more than a day.  It would count, and hold its slot, for as
 * long as the step; it starts again instead.  As the store's account lock
 * does (src/core/lockout.cpp).
 */
#define NGX_HTTP_OAUTH2_LIMIT_STEP  (2 * 86400)


typedef struct {
    u_char                       color;
    u_char                       len;
    u_short                      padding;
    ngx_queue_t                  queue;
    time_t                       start;       /* of the current window */
    time_t                       expire;      /* when the count is over */
    ngx_uint_t                   count;
    u_char                       data[1];
} ngx_http_oauth2_limit_node_t;


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  queue;       /* least recently used last */
    ngx_uint_t                   full;        /* the alert was logged */
} ngx_http_oauth2_limit_sh_t;


typedef struct {
    ngx_http_oauth2_limit_sh_t  *sh;
    ngx_slab_pool_t             *shpool;
    ngx_log_t                   *log;
} ngx_http_oauth2_limit_ctx_t;


/* what a zone's initialisation needs to know of its configuration */
typedef struct {
    const char                  *directive;
    ngx_cycle_t                 *old_cycle;   /* which a resize copies */
    time_t                       keep;        /* DPoP: 2 x widest + 1 */
} ngx_http_oauth2_zone_conf_t;


static ngx_int_t ngx_http_oauth2_counter_zone_init(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_oauth2_zone_copy(ngx_shm_zone_t *shm_zone,
    ngx_http_oauth2_limit_ctx_t *ctx);
static void ngx_http_oauth2_zone_keep(ngx_http_oauth2_limit_ctx_t *ctx,
    time_t keep);
static ngx_int_t ngx_http_oauth2_zone_ctx(ngx_http_request_t *r,
    ngx_shm_zone_t *zone, ngx_http_oauth2_limit_ctx_t *ctx);
static ngx_uint_t ngx_http_oauth2_limit_key_ok(ngx_str_t *key);


static void
ngx_http_oauth2_limit_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t             **p;
    ngx_http_oauth2_limit_node_t   *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            ln = (ngx_http_oauth2_limit_node_t *) &node->color;
            lnt = (ngx_http_oauth2_limit_node_t *) &temp->color;

            p = (ngx_memn2cmp(ln->data, lnt->data, ln->len, lnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/*
 * A counter zone of the module: nginx finds one by its name, so that
 * every location of a realm, and every reload of the same size, gets the
 * same.
 */

ngx_shm_zone_t *
ngx_http_oauth2_counter_zone(ngx_conf_t *cf, ngx_str_t *name, size_t size,
    const char *directive)
{
    ngx_shm_zone_t               *zone;
    ngx_http_oauth2_zone_conf_t  *zc;

    zone = ngx_shared_memory_add(cf, name, size, &ngx_http_oauth2_module);
    if (zone == NULL) {
        return NULL;
    }

    if (zone->data == NULL) {
        zc = ngx_pcalloc(cf->pool, sizeof(ngx_http_oauth2_zone_conf_t));
        if (zc == NULL) {
            return NULL;
        }

        zc->directive = directive;
        zc->old_cycle = cf->cycle->old_cycle;

        zone->data = zc;
        zone->init = ngx_http_oauth2_counter_zone_init;
    }

    return zone;
}


/* a realm's zone of DPoP proofs, "oauth2_dpop:<realm>", which keeps each
 * proof for as long as the location of the widest window would take it
 * (as the core asks: src/core/location.hpp dpop_replay_window) */

ngx_shm_zone_t *
ngx_http_oauth2_dpop_zone(ngx_conf_t *cf, ngx_str_t *realm, size_t size,
    time_t window)
{
    ngx_str_t                     name;
    ngx_shm_zone_t               *zone;
    ngx_http_oauth2_zone_conf_t  *zc;

    name.len = sizeof("oauth2_dpop:") - 1 + realm->len;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NULL;
    }

    ngx_sprintf(name.data, "oauth2_dpop:%V", realm);

    zone = ngx_http_oauth2_counter_zone(cf, &name, size, "oauth2_dpop_zone");
    if (zone == NULL) {
        return NULL;
    }

    zc = zone->data;
    zc->keep = ngx_max(zc->keep, 2 * window + 1);

    return zone;
}


static ngx_int_t
ngx_http_oauth2_counter_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_oauth2_zone_conf_t *zc = shm_zone->data;

    size_t                        len;
    ngx_http_oauth2_limit_sh_t   *sh;
    ngx_http_oauth2_limit_ctx_t   ctx;

    ctx.shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    ctx.log = shm_zone->shm.log;

    if (data || shm_zone->shm.exists) {
        /* a reload keeps the zone of the same size, and its counts */
        ctx.sh = ctx.shpool->data;
        ngx_http_oauth2_zone_keep(&ctx, zc->keep);
        return NGX_OK;
    }

    sh = ngx_slab_alloc(ctx.shpool, sizeof(ngx_http_oauth2_limit_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ctx.shpool->data = sh;
    ctx.sh = sh;

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                    ngx_http_oauth2_limit_rbtree_insert);

    ngx_queue_init(&sh->queue);
    sh->full = 0;

    len = sizeof(" in  \"\"") + ngx_strlen(zc->directive)
          + shm_zone->shm.name.len;

    ctx.shpool->log_ctx = ngx_slab_alloc(ctx.shpool, len);
    if (ctx.shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx.shpool->log_ctx, " in %s \"%V\"%Z", zc->directive,
                &shm_zone->shm.name);

    /* a full zone is reported once, below, not at every allocation */
    ctx.shpool->log_nomem = 0;

    /* a reload that resizes the zone: what the old one counts goes on */
    if (ngx_http_oauth2_zone_copy(shm_zone, &ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_oauth2_zone_keep(&ctx, zc->keep);

    return NGX_OK;
}


/* the old cycle's zone of the same name, which a reload resizes; NULL if
 * there is none */

static ngx_slab_pool_t *
ngx_http_oauth2_old_zone(ngx_shm_zone_t *shm_zone, ngx_cycle_t *old_cycle)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_shm_zone_t   *oz;

    if (old_cycle == NULL) {
        return NULL;
    }

    part = &old_cycle->shared_memory.part;
    oz = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            oz = part->elts;
            i = 0;
        }

        if (oz[i].tag == shm_zone->tag
            && oz[i].shm.addr != NULL
            && oz[i].shm.name.len == shm_zone->shm.name.len
            && ngx_strncmp(oz[i].shm.name.data, shm_zone->shm.name.data,
                           shm_zone->shm.name.len)
               == 0)
        {
            return (ngx_slab_pool_t *) oz[i].shm.addr;
        }
    }
}


/* a live entry: it counts, and was not dated by a clock since stepped
 * back */

static ngx_uint_t
ngx_http_oauth2_limit_live(ngx_http_oauth2_limit_node_t *ln, time_t now)
{
    return ln->count && ln->expire > now
           && ln->expire <= now + NGX_HTTP_OAUTH2_LIMIT_STEP;
}


/*
 * Copies the live entries of the zone a reload resizes into its new one
 * (ctx, which no worker uses yet).  A zone too small for them fails the
 * reload (nginx keeps the running configuration): it would forget counts
 * and proofs that still matter.  The old zone's workers go on counting in
 * it until they exit; what they count after the copy is not carried over.
 */

static ngx_int_t
ngx_http_oauth2_zone_copy(ngx_shm_zone_t *shm_zone,
    ngx_http_oauth2_limit_ctx_t *ctx)
{
    ngx_http_oauth2_zone_conf_t *zc = shm_zone->data;

    size_t                         size;
    time_t                         now;
    ngx_uint_t                     copied, dropped;
    ngx_queue_t                   *q;
    ngx_slab_pool_t               *old;
    ngx_rbtree_node_t             *node;
    ngx_http_oauth2_limit_sh_t    *osh;
    ngx_http_oauth2_limit_node_t  *ln, *nln;

    old = ngx_http_oauth2_old_zone(shm_zone, zc->old_cycle);
    if (old == NULL || old->data == NULL) {
        return NGX_OK;
    }

    osh = old->data;
    now = ngx_time();
    copied = 0;
    dropped = 0;

    ngx_shmtx_lock(&old->mutex);

    for (q = ngx_queue_head(&osh->queue);
         q != ngx_queue_sentinel(&osh->queue);
         q = ngx_queue_next(q))
    {
        ln = ngx_queue_data(q, ngx_http_oauth2_limit_node_t, queue);

        if (!ngx_http_oauth2_limit_live(ln, now)) {
            continue;
        }

        size = offsetof(ngx_rbtree_node_t, color)
               + offsetof(ngx_http_oauth2_limit_node_t, data) + ln->len;

        node = ngx_slab_alloc_locked(ctx->shpool, size);
        if (node == NULL) {
            dropped++;
            continue;
        }

        copied++;

        node->key = ((ngx_rbtree_node_t *)
                        ((u_char *) ln - offsetof(ngx_rbtree_node_t, color)))
                    ->key;

        nln = (ngx_http_oauth2_limit_node_t *) &node->color;
        nln->len = ln->len;
        nln->start = ln->start;
        nln->expire = ln->expire;
        nln->count = ln->count;
        ngx_memcpy(nln->data, ln->data, ln->len);

        ngx_rbtree_insert(&ctx->sh->rbtree, node);
        ngx_queue_insert_tail(&ctx->sh->queue, &nln->queue);
    }

    ngx_shmtx_unlock(&old->mutex);

    if (dropped) {
        ngx_log_error(NGX_LOG_EMERG, ctx->log, 0,
                      "oauth2: the new size has no room for %ui of the "
                      "%ui live entries%s; keep the old size until fewer "
                      "are live, or restart", dropped, copied + dropped,
                      ctx->shpool->log_ctx);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A DPoP zone's proofs are kept `keep` seconds from their first use at
 * least: a reload that widens a location's iat_window would otherwise
 * take again a proof recorded for the narrower one (RFC 9449 11.1).
 */

static void
ngx_http_oauth2_zone_keep(ngx_http_oauth2_limit_ctx_t *ctx, time_t keep)
{
    time_t                         now;
    ngx_queue_t                   *q;
    ngx_http_oauth2_limit_node_t  *ln;

    if (keep == 0) {
        return;
    }

    now = ngx_time();

    ngx_shmtx_lock(&ctx->shpool->mutex);

    for (q = ngx_queue_head(&ctx->sh->queue);
         q != ngx_queue_sentinel(&ctx->sh->queue);
         q = ngx_queue_next(q))
    {
        ln = ngx_queue_data(q, ngx_http_oauth2_limit_node_t, queue);

        if (ngx_http_oauth2_limit_live(ln, now)
            && ln->expire < ln->start + keep)
        {
            ln->expire = ln->start + keep;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* the counters of the request's http{} block; NGX_DECLINED without them */

static ngx_int_t
ngx_http_oauth2_limit_ctx(ngx_http_request_t *r,
    ngx_http_oauth2_limit_ctx_t *ctx)
{
    ngx_http_oauth2_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_oauth2_module);

    return ngx_http_oauth2_zone_ctx(r, mcf->shm_zone, ctx);
}


static ngx_int_t
ngx_http_oauth2_zone_ctx(ngx_http_request_t *r, ngx_shm_zone_t *zone,
    ngx_http_oauth2_limit_ctx_t *ctx)
{
    if (zone == NULL) {
        return NGX_DECLINED;
    }

    ctx->shpool = (ngx_slab_pool_t *) zone->shm.addr;
    ctx->sh = ctx->shpool->data;
    ctx->log = r->connection->log;

    return NGX_OK;
}


static ngx_http_oauth2_limit_node_t *
ngx_http_oauth2_limit_lookup(ngx_http_oauth2_limit_ctx_t *ctx, ngx_str_t *key,
    uint32_t hash)
{
    ngx_int_t                      rc;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_oauth2_limit_node_t  *ln;

    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        ln = (ngx_http_oauth2_limit_node_t *) &node->color;

        rc = ngx_memn2cmp(key->data, ln->data, key->len, (size_t) ln->len);

        if (rc == 0) {
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_oauth2_limit_free(ngx_http_oauth2_limit_ctx_t *ctx,
    ngx_http_oauth2_limit_node_t *ln)
{
    ngx_rbtree_node_t  *node;

    ngx_queue_remove(&ln->queue);

    node = (ngx_rbtree_node_t *)
               ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

    ngx_rbtree_delete(&ctx->sh->rbtree, node);
    ngx_slab_free_locked(ctx->shpool, node);
}


/*
 * Frees up to max entries that no longer count, looking at most
 * NGX_HTTP_OAUTH2_LIMIT_SCAN entries from the least recently used end:
 * an entry still inside its window is never freed, and goes to the other
 * end, so that the next look reaches the entries behind it (otherwise
 * as many long windows as one look takes, a day's rate limit of callers
 * seen once, hide every finished entry behind them, and a full zone
 * stays full for their day).  Returns how many it freed.  Called with
 * the mutex held.
 */

static ngx_uint_t
ngx_http_oauth2_limit_expire(ngx_http_oauth2_limit_ctx_t *ctx, time_t now,
    ngx_uint_t max)
{
    ngx_uint_t                     n, freed;
    ngx_queue_t                   *q, *prev;
    ngx_http_oauth2_limit_node_t  *ln;

    freed = 0;

    if (ngx_queue_empty(&ctx->sh->queue)) {
        return 0;
    }

    q = ngx_queue_last(&ctx->sh->queue);

    for (n = 0; n < NGX_HTTP_OAUTH2_LIMIT_SCAN && freed < max; n++) {

        if (q == ngx_queue_sentinel(&ctx->sh->queue)) {
            break;
        }

        prev = ngx_queue_prev(q);
        ln = ngx_queue_data(q, ngx_http_oauth2_limit_node_t, queue);

        if (!ngx_http_oauth2_limit_live(ln, now)) {
            ngx_http_oauth2_limit_free(ctx, ln);
            freed++;

        } else {
            ngx_queue_remove(q);
            ngx_queue_insert_head(&ctx->sh->queue, q);
        }

        q = prev;
    }

    return freed;
}


/*
 * The key's entry, created for a window of `window` seconds from start if
 * missing; NULL if the zone has no room for it.  Called with the mutex
 * held.
 */

static ngx_http_oauth2_limit_node_t *
ngx_http_oauth2_limit_node(ngx_http_oauth2_limit_ctx_t *ctx, ngx_str_t *key,
    time_t start, time_t window)
{
    size_t                         size;
    time_t                         now;
    uint32_t                       hash;
    ngx_rbtree_node_t             *node;
    ngx_http_oauth2_limit_node_t  *ln;

    hash = ngx_crc32_short(key->data, key->len);

    ln = ngx_http_oauth2_limit_lookup(ctx, key, hash);
    now = ngx_time();

    if (ln) {
        if (ln->expire > now + NGX_HTTP_OAUTH2_LIMIT_STEP) {
            ln->start = start;
            ln->expire = start + window;
            ln->count = 0;
        }

        ngx_queue_remove(&ln->queue);
        ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);
        return ln;
    }

    /* keep the zone tidy: at most two finished entries per new one */
    (void) ngx_http_oauth2_limit_expire(ctx, now, 2);

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_oauth2_limit_node_t, data)
           + key->len;

    node = ngx_slab_alloc_locked(ctx->shpool, size);

    if (node == NULL
        && ngx_http_oauth2_limit_expire(ctx, now,
                                        NGX_HTTP_OAUTH2_LIMIT_SCAN))
    {
        node = ngx_slab_alloc_locked(ctx->shpool, size);
    }

    if (node == NULL) {
        if (!ctx->sh->full) {
            ctx->sh->full = 1;
            ngx_log_error(NGX_LOG_ALERT, ctx->log, 0,
                          "oauth2: the counter zone is full of live "
                          "entries, refusing new keys%s; increase its "
                          "size", ctx->shpool->log_ctx);
        }

        return NULL;
    }

    ctx->sh->full = 0;

    node->key = hash;

    ln = (ngx_http_oauth2_limit_node_t *) &node->color;
    ln->len = (u_char) key->len;
    ln->start = start;
    ln->expire = start + window;
    ln->count = 0;
    ngx_memcpy(ln->data, key->data, key->len);

    ngx_rbtree_insert(&ctx->sh->rbtree, node);
    ngx_queue_insert_head(&ctx->sh->queue, &ln->queue);

    return ln;
}


static ngx_uint_t
ngx_http_oauth2_limit_key_ok(ngx_str_t *key)
{
    return key->len > 0 && key->len <= NGX_HTTP_OAUTH2_MAX_KEY;
}


/*
 * Throttles of failed attempts: a window of `window` seconds opens at a
 * key's first failure.  check() returns the seconds until the key may try
 * again, 0 if it may now, or OAUTH2_COUNTER_FULL when the key is new and
 * there is no room to count it: the attempt is refused rather than let
 * through uncounted.
 */

static unsigned
ngx_http_oauth2_limit_check(void *data, const unsigned char *k, size_t len,
    unsigned limit, unsigned window)
{
    ngx_http_request_t *r = data;

    time_t                         now;
    unsigned                       wait;
    ngx_str_t                      key;
    ngx_http_oauth2_limit_ctx_t    ctx;
    ngx_http_oauth2_limit_node_t  *ln;

    key.data = (u_char *) k;
    key.len = len;

    if (limit == 0 || !ngx_http_oauth2_limit_key_ok(&key)) {
        return 0;
    }

    if (ngx_http_oauth2_limit_ctx(r, &ctx) != NGX_OK) {
        return 0;
    }

    now = ngx_time();
    wait = 0;

    ngx_shmtx_lock(&ctx.shpool->mutex);

    ln = ngx_http_oauth2_limit_node(&ctx, &key, now, window);

    if (ln == NULL) {
        wait = OAUTH2_COUNTER_FULL;

    } else if (ln->expire > now && ln->count >= limit) {
        wait = (unsigned) (ln->expire - now);
    }

    ngx_shmtx_unlock(&ctx.shpool->mutex);

    return wait;
}


static void
ngx_http_oauth2_limit_failed(void *data, const unsigned char *k, size_t len,
    unsigned window)
{
    ngx_http_request_t *r = data;

    time_t                         now;
    ngx_str_t                      key;
    ngx_http_oauth2_limit_ctx_t    ctx;
    ngx_http_oauth2_limit_node_t  *ln;

    key.data = (u_char *) k;
    key.len = len;

    if (!ngx_http_oauth2_limit_key_ok(&key)
        || ngx_http_oauth2_limit_ctx(r, &ctx) != NGX_OK)
    {
        return;
    }

    now = ngx_time();

    ngx_shmtx_lock(&ctx.shpool->mutex);

    ln = ngx_http_oauth2_limit_node(&ctx, &key, now, window);

    if (ln) {
        if (ln->expire <= now || ln->count == 0) {
            /* the first failure opens the window */
            ln->start = now;
            ln->expire = now + window;
            ln->count = 0;
        }

        ln->count++;
    }

    ngx_shmtx_unlock(&ctx.shpool->mutex);
}


/* the key of one window of a rate limit: one count per caller and limit,
 * so that locations with the same limit share a budget */

static void
ngx_http_oauth2_rate_key(ngx_str_t *key, u_char *buf, size_t size,
    const oauth2_rate_window_t *w, const unsigned char *id, size_t len)
{
    key->data = buf;
    key->len = ngx_snprintf(buf, size, "R%ui/%ui:%*s", (ngx_uint_t) w->window,
                            (ngx_uint_t) w->limit, len, id)
               - buf;
}


/* the windows of one rate-limited request: their keys and current starts */

typedef struct {
    const oauth2_rate_window_t  *w;
    size_t                       nw;
    time_t                       now;
    time_t                       start[OAUTH2_MAX_RATES];
    ngx_str_t                    key[OAUTH2_MAX_RATES];
    u_char                       buf[OAUTH2_MAX_RATES]
                                    [NGX_HTTP_OAUTH2_MAX_KEY + 64];
} ngx_http_oauth2_rate_t;


static ngx_http_oauth2_limit_node_t *
ngx_http_oauth2_rate_find(ngx_http_oauth2_limit_ctx_t *ctx, ngx_str_t *key)
{
    return ngx_http_oauth2_limit_lookup(ctx, key,
                                        ngx_crc32_short(key->data, key->len));
}


/* over a limit?  (looking only: nothing is made or freed here) */

static ngx_uint_t
ngx_http_oauth2_rate_wait(ngx_http_oauth2_limit_ctx_t *ctx,
    ngx_http_oauth2_rate_t *rt)
{
    ngx_uint_t                     i, wait;
    ngx_http_oauth2_limit_node_t  *ln;

    wait = 0;

    for (i = 0; i < rt->nw; i++) {
        ln = ngx_http_oauth2_rate_find(ctx, &rt->key[i]);

        if (ln && ln->start == rt->start[i] && ln->count >= rt->w[i].limit
            && (ngx_uint_t) (ln->expire - rt->now) > wait)
        {
            wait = ln->expire - rt->now;
        }
    }

    return wait;
}


/* counted in every window or in none; each entry counts at once, so that
 * making the next one can never evict it.  1 if there is no room to count
 * this caller: refused, never let through. */

static ngx_uint_t
ngx_http_oauth2_rate_count(ngx_http_oauth2_limit_ctx_t *ctx,
    ngx_http_oauth2_rate_t *rt)
{
    ngx_uint_t                     i, j;
    ngx_http_oauth2_limit_node_t  *ln;

    for (i = 0; i < rt->nw; i++) {
        ln = ngx_http_oauth2_limit_node(ctx, &rt->key[i], rt->start[i],
                                        rt->w[i].window);

        if (ln == NULL) {
            for (j = 0; j < i; j++) {
                ln = ngx_http_oauth2_rate_find(ctx, &rt->key[j]);

                if (ln && ln->count) {
                    ln->count--;
                }
            }

            return 1;
        }

        if (ln->start != rt->start[i]) {
            ln->start = rt->start[i];
            ln->expire = rt->start[i] + rt->w[i].window;
            ln->count = 0;
        }

        ln->count++;
    }

    return 0;
}


/* what the headers say: the fewest left, and when that window ends */

static void
ngx_http_oauth2_rate_state(ngx_http_oauth2_limit_ctx_t *ctx,
    ngx_http_oauth2_rate_t *rt, ngx_uint_t wait, oauth2_rate_state_t *st)
{
    time_t                         reset;
    ngx_uint_t                     i, left, least, count;
    ngx_http_oauth2_limit_node_t  *ln;

    least = NGX_MAX_UINT32_VALUE;
    reset = rt->now + (time_t) wait;

    for (i = 0; i < rt->nw; i++) {
        ln = ngx_http_oauth2_rate_find(ctx, &rt->key[i]);
        count = (ln && ln->start == rt->start[i]) ? ln->count : 0;

        left = count >= rt->w[i].limit ? 0 : rt->w[i].limit - count;

        if (left < least
            || (left == least
                && rt->start[i] + (time_t) rt->w[i].window > reset))
        {
            least = left;
            reset = rt->start[i] + rt->w[i].window;
        }
    }

    st->set = 1;
    st->limit = rt->w[0].limit;
    st->remaining = (unsigned) least;
    st->reset = reset;
}


/*
 * Request rate limits: fixed windows aligned to the clock (an hour window
 * resets on the hour).  A request is counted in every window or in none:
 * one refused by the minute's burst does not spend the hour's budget.
 * Returns 0 if allowed, else the seconds until it would be (1 when the
 * zone has no room for a new caller); *st gets what the X-RateLimit
 * headers say.
 */

static unsigned
ngx_http_oauth2_limit_take(void *data, const unsigned char *id, size_t len,
    const oauth2_rate_window_t *w, size_t nw, oauth2_rate_state_t *st)
{
    ngx_http_request_t *r = data;

    ngx_uint_t                    i, wait;
    ngx_http_oauth2_rate_t        rt;
    ngx_http_oauth2_limit_ctx_t   ctx;

    if (nw == 0 || nw > OAUTH2_MAX_RATES
        || ngx_http_oauth2_limit_ctx(r, &ctx) != NGX_OK)
    {
        return 0;
    }

    if (len > NGX_HTTP_OAUTH2_MAX_KEY - 32) {
        /* the core's keys are shorter: never a way around the limit */
        return 1;
    }

    rt.w = w;
    rt.nw = nw;
    rt.now = ngx_time();

    for (i = 0; i < nw; i++) {
        ngx_http_oauth2_rate_key(&rt.key[i], rt.buf[i], sizeof(rt.buf[i]),
                                 &w[i], id, len);
        rt.start[i] = rt.now - rt.now % w[i].window;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth2 rate: \"%*s\"", len, id);

    ngx_shmtx_lock(&ctx.shpool->mutex);

    wait = ngx_http_oauth2_rate_wait(&ctx, &rt);

    if (wait == 0) {
        wait = ngx_http_oauth2_rate_count(&ctx, &rt);
    }

    ngx_http_oauth2_rate_state(&ctx, &rt, wait, st);

    ngx_shmtx_unlock(&ctx.shpool->mutex);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "oauth2 rate: wait %ui, remaining %ui", wait,
                   (ngx_uint_t) st->remaining);

    return (unsigned) wait;
}


/*
 * Keys seen once (a DPoP proof's jti, RFC 9449 11.1), in the zone of the
 * location's realm (oauth2_dpop_zone): the first call for a key records
 * it for ttl seconds and returns 0; another within that time returns 1.
 * A live entry is never evicted, so a full zone refuses the new key
 * (OAUTH2_COUNTER_FULL) rather than forget an old one.
 */

static unsigned
ngx_http_oauth2_limit_seen(void *data, const unsigned char *k, size_t len,
    unsigned ttl)
{
    ngx_http_request_t *r = data;

    time_t                         now;
    unsigned                       rc;
    ngx_str_t                      key;
    ngx_http_oauth2_limit_ctx_t    ctx;
    ngx_http_oauth2_loc_conf_t    *olcf;
    ngx_http_oauth2_limit_node_t  *ln;

    key.data = (u_char *) k;
    key.len = len;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_oauth2_module);

    if (!ngx_http_oauth2_limit_key_ok(&key)
        || ngx_http_oauth2_zone_ctx(r, olcf->dpop_zone, &ctx) != NGX_OK)
    {
        return OAUTH2_COUNTER_FULL;
    }

    now = ngx_time();

    ngx_shmtx_lock(&ctx.shpool->mutex);

    ln = ngx_http_oauth2_limit_node(&ctx, &key, now, ttl);

    if (ln == NULL) {
        rc = OAUTH2_COUNTER_FULL;

    } else if (ln->count && ln->expire > now) {
        rc = 1;

    } else {
        ln->start = now;
        ln->expire = now + ttl;
        ln->count = 1;
        rc = 0;
    }

    ngx_shmtx_unlock(&ctx.shpool->mutex);

    return rc;
}


void
ngx_http_oauth2_counters(ngx_http_request_t *r, oauth2_counters_t *counters)
{
    counters->ctx = r;
    counters->take = ngx_http_oauth2_limit_take;
    counters->check = ngx_http_oauth2_limit_check;
    counters->failed = ngx_http_oauth2_limit_failed;
    counters->seen = ngx_http_oauth2_limit_seen;
}
