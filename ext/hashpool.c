/* One layer on several cores (ls_options.threads > 1): the digests of regular files
 * computed by a pool of hashing threads while the scanner's own thread inflates,
 * parses and searches.
 *
 * The scanner's thread inflates into a ring of windows and hands each slice of file
 * data over as an op (bytes in a window; whether it begins or ends a file). MD5, SHA1
 * and SHA256 are three lanes over the same ops, each run in order with a context of its
 * own: so the three digests of one file can be computed by three threads at once, and
 * every digest is that of the bytes in tar order, as one thread computes it.
 *
 * The pool's threads serve every scanner alive in the process, taking the lane with the
 * most bytes waiting, at most `threads - 1` at a time on one scanner; the scanner's own
 * thread runs lanes too whenever it would otherwise wait (its oldest window, or an op
 * slot, still in use): those it waits for, else, while the pool runs those, any other
 * lane with work, so that it never idles while its scan has work left. So while a small
 * layer finishes, the cores it leaves idle hash for the big one. A window is reused once
 * every lane has passed its last op; the scanner's thread copies a file's digests into
 * the result when it retires the file's last op, so the pool's threads never touch the
 * result's growing buffers. Memory per scanner: RING_WINDOWS windows and RING_OPS ops,
 * whatever the layer's size.
 *
 * The pool starts its threads with the first scanner that wants them and joins them
 * when the last one is freed: no thread outlives the scans. Everything shared is under
 * one lock; the hashing itself runs outside it.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_sigmask */
#include "scanner.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define RING_WINDOWS 16
#define RING_OPS 2048
#define BATCH_COST ((int64_t)WINDOW) /* a pool thread's turn on one lane, before it chooses again */
#define OP_COST 512                  /* what an op costs beyond its bytes: a digest's init and final */
#define MAX_WORKERS 64

enum { OP_BEGIN = 1, OP_END = 2 };
enum { N_LANES = 3 };
static const size_t LANE_AT[N_LANES] = {0, LS_MD5_LEN, LS_MD5_LEN + LS_SHA1_LEN}; /* in ls_result.digests */

typedef struct {
    const unsigned char *p; /* in a window of the ring */
    size_t n, entry;        /* entry: of the file an OP_END ends */
    int flags;
    unsigned char digest[LS_DIGEST_LEN]; /* OP_END: each lane writes its own part */
} hash_op;

struct hash_ring {
    hash_ring *next; /* in pool.rings */
    int max_helpers, joined;
    unsigned char *windows; /* RING_WINDOWS * WINDOW bytes */
    hash_op *ops;           /* RING_OPS, op number i at i % RING_OPS */
    EVP_MD_CTX *ctx[N_LANES];
    /* the scanner's thread only */
    uint64_t appended, published, retired;
    uint64_t win_last[RING_WINDOWS]; /* 1 + the last op in each window, 0 for none */
    int64_t appended_cost;
    unsigned next_win, cur_win;
    int file_open; /* the file being read has ops in the ring */
    /* under pool.lock */
    uint64_t head, tail[N_LANES]; /* ops published; the next op of each lane */
    int64_t head_cost, tail_cost[N_LANES];
    int busy[N_LANES], helpers, failed, waiting;
    pthread_cond_t moved; /* a lane moved on or was let go: the scanner's thread waits for it */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work;
    pthread_mutex_t life; /* held while threads are started or joined */
    hash_ring *rings;
    int users, n, idle, stop;
    pthread_t threads[MAX_WORKERS];
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, 0, {0}};

static int64_t op_cost(const hash_op *op) { return (int64_t)op->n + OP_COST; }

/* Lane l of g over ops [from, to), stopping once `budget` is spent; the op after the
 * last one run. No lock held: the lane is the caller's alone (busy). */
static uint64_t run_lane(hash_ring *g, int l, uint64_t from, uint64_t to, int64_t budget, int64_t *spent, int *failed) {
    EVP_MD_CTX *c = g->ctx[l];
    const EVP_MD *md = file_digest_md(l);
    uint64_t i = from;
    for (*spent = 0; i < to && *spent < budget; i++) {
        hash_op *op = &g->ops[i % RING_OPS];
        if (((op->flags & OP_BEGIN) && !EVP_DigestInit_ex2(c, md, NULL)) ||
            (op->n && !EVP_DigestUpdate(c, op->p, op->n)) ||
            ((op->flags & OP_END) && !EVP_DigestFinal_ex(c, op->digest + LANE_AT[l], NULL)))
            *failed = 1;
        *spent += op_cost(op);
    }
    return i;
}

/* With pool.lock held: one turn of lane l of g (not busy, with ops to run), unlocked meanwhile. */
static void lane_turn(hash_ring *g, int l, uint64_t to, int64_t budget, int helper) {
    g->busy[l] = 1;
    g->helpers += helper;
    uint64_t from = g->tail[l];
    pthread_mutex_unlock(&pool.lock);
    int64_t spent;
    int failed = 0;
    uint64_t end = run_lane(g, l, from, to, budget, &spent, &failed);
    pthread_mutex_lock(&pool.lock);
    g->tail[l] = end;
    g->tail_cost[l] += spent;
    g->failed |= failed;
    g->busy[l] = 0;
    g->helpers -= helper;
    if (g->waiting) pthread_cond_signal(&g->moved);
}

static void *worker(void *unused) {
    (void)unused;
    pthread_mutex_lock(&pool.lock);
    while (!pool.stop) {
        hash_ring *best = NULL;
        int lane = 0;
        int64_t most = 0;
        for (hash_ring *g = pool.rings; g; g = g->next) {
            if (g->helpers >= g->max_helpers) continue;
            for (int l = 0; l < N_LANES; l++) {
                int64_t waiting = g->head_cost - g->tail_cost[l];
                if (!g->busy[l] && waiting > most) best = g, lane = l, most = waiting;
            }
        }
        if (!best) {
            pool.idle++;
            pthread_cond_wait(&pool.work, &pool.lock);
            pool.idle--;
            continue;
        }
        lane_turn(best, lane, best->head, BATCH_COST, 1);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* Pool threads up to the ring's max_helpers (fewer if the system refuses more: the scanners' own threads
 * then run the lanes), and the ring in the pool's list. Signals stay with the threads
 * that had them: the pool's threads block them all. */
static void pool_join(hash_ring *g) {
    pthread_mutex_lock(&pool.life);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (pool.n < g->max_helpers && !pthread_create(&pool.threads[pool.n], NULL, worker, NULL)) pool.n++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_lock(&pool.lock);
    g->next = pool.rings;
    pool.rings = g;
    pool.users++;
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.life);
    g->joined = 1;
}

/* The ring out of the list once no thread runs its lanes; the last one out joins the threads. */
static void pool_leave(hash_ring *g) {
    pthread_mutex_lock(&pool.life);
    pthread_mutex_lock(&pool.lock);
    hash_ring **at = &pool.rings;
    while (*at != g) at = &(*at)->next;
    *at = g->next;
    while (g->busy[0] || g->busy[1] || g->busy[2]) {
        g->waiting = 1;
        pthread_cond_wait(&g->moved, &pool.lock);
    }
    int last = --pool.users == 0;
    if (last) {
        pool.stop = 1;
        pthread_cond_broadcast(&pool.work);
    }
    pthread_mutex_unlock(&pool.lock);
    if (last) {
        for (int i = 0; i < pool.n; i++) pthread_join(pool.threads[i], NULL);
        pool.n = 0;
        pool.stop = 0; /* no thread left to read it */
    }
    pthread_mutex_unlock(&pool.life);
}

int ring_new(ls_scanner *s) {
    hash_ring *g = s->ring = calloc(1, sizeof *g);
    if (!g || pthread_cond_init(&g->moved, NULL)) {
        free(g);
        s->ring = NULL;
        return -1;
    }
    g->max_helpers = s->o.threads - 1 < MAX_WORKERS ? s->o.threads - 1 : MAX_WORKERS;
    g->windows = malloc((size_t)RING_WINDOWS * WINDOW);
    g->ops = calloc(RING_OPS, sizeof *g->ops);
    for (int l = 0; l < N_LANES; l++)
        if (!(g->ctx[l] = EVP_MD_CTX_new())) return -1;
    if (!g->windows || !g->ops) return -1;
    pool_join(g);
    return 0;
}

void ring_free(ls_scanner *s) {
    hash_ring *g = s->ring;
    if (!g) return;
    if (g->joined) pool_leave(g);
    for (int l = 0; l < N_LANES; l++) EVP_MD_CTX_free(g->ctx[l]);
    pthread_cond_destroy(&g->moved);
    free(g->windows);
    free(g->ops);
    free(g);
    s->ring = NULL;
}

/* With pool.lock held: the lowest lane position, which no op before is still needed by. */
static uint64_t low_tail(const hash_ring *g) {
    uint64_t low = g->tail[0];
    for (int l = 1; l < N_LANES; l++)
        if (g->tail[l] < low) low = g->tail[l];
    return low;
}

static void publish_locked(hash_ring *g) {
    if (g->head == g->appended) return;
    g->head = g->published = g->appended;
    g->head_cost = g->appended_cost;
    if (pool.idle) pthread_cond_broadcast(&pool.work);
}

void ring_publish(ls_scanner *s) {
    hash_ring *g = s->ring;
    if (g->published == g->appended) return;
    pthread_mutex_lock(&pool.lock);
    publish_locked(g);
    pthread_mutex_unlock(&pool.lock);
}

/* Publishes what was appended, then runs lanes (or waits for them) until every lane is
 * past op `target`, and copies the digests of the files so finished into the result. */
static int ring_wait(ls_scanner *s, uint64_t target) {
    hash_ring *g = s->ring;
    pthread_mutex_lock(&pool.lock);
    publish_locked(g);
    while (!g->failed && low_tail(g) < target) {
        int pick = -1; /* the lane furthest behind that no one runs */
        for (int l = 0; l < N_LANES; l++)
            if (!g->busy[l] && g->tail[l] < target && (pick < 0 || g->tail[l] < g->tail[pick])) pick = l;
        /* Else, rather than idle while the pool runs those, a turn of a lane with the most
         * still to do: work a pool thread would do later, which then finishes sooner. */
        int ahead = -1;
        for (int l = 0; l < N_LANES && pick < 0; l++)
            if (!g->busy[l] && g->tail[l] < g->head && (ahead < 0 || g->tail_cost[l] < g->tail_cost[ahead])) ahead = l;
        if (pick >= 0) {
            lane_turn(g, pick, target, INT64_MAX, 0);
        } else if (ahead >= 0) {
            lane_turn(g, ahead, g->head, BATCH_COST, 0);
        } else {
            g->waiting = 1;
            pthread_cond_wait(&g->moved, &pool.lock);
            g->waiting = 0;
        }
    }
    uint64_t done = low_tail(g);
    int failed = g->failed;
    pthread_mutex_unlock(&pool.lock);
    if (failed) return scanner_fail(s, LS_ERR_INTERNAL, s->pos, "OpenSSL digest failed on a hashing thread");
    for (; g->retired < done; g->retired++) {
        const hash_op *op = &g->ops[g->retired % RING_OPS];
        if (op->flags & OP_END) memcpy(s->r.digests.p + op->entry * LS_DIGEST_LEN, op->digest, LS_DIGEST_LEN);
    }
    return 0;
}

unsigned char *ring_window(ls_scanner *s) {
    hash_ring *g = s->ring;
    unsigned w = g->next_win;
    if (g->retired < g->win_last[w] && ring_wait(s, g->win_last[w])) return NULL;
    g->win_last[w] = 0;
    g->cur_win = w;
    g->next_win = (w + 1) % RING_WINDOWS;
    return g->windows + (size_t)w * WINDOW;
}

int ring_drain(ls_scanner *s) { return ring_wait(s, s->ring->appended); }

/* The next op slot, once it is free. */
static hash_op *append(ls_scanner *s) {
    hash_ring *g = s->ring;
    if (g->appended - g->retired == RING_OPS && ring_wait(s, g->appended - RING_OPS + 1)) return NULL;
    return &g->ops[g->appended % RING_OPS];
}

static void appended(hash_ring *g, const hash_op *op) {
    g->appended++;
    g->appended_cost += op_cost(op);
    g->win_last[g->cur_win] = g->appended;
}

int ring_file_data(ls_scanner *s, const unsigned char *p, size_t n) {
    hash_ring *g = s->ring;
    hash_op *op = append(s);
    if (!op) return s->r.error;
    op->p = p;
    op->n = n;
    op->flags = g->file_open ? 0 : OP_BEGIN;
    g->file_open = 1;
    appended(g, op);
    return 0;
}

int ring_file_end(ls_scanner *s) {
    hash_ring *g = s->ring;
    hash_op *op;
    if (g->file_open && g->appended > g->published) { /* its last op is not out yet: it ends the file */
        op = &g->ops[(g->appended - 1) % RING_OPS];
    } else {
        if (!(op = append(s))) return s->r.error;
        op->p = NULL;
        op->n = 0;
        op->flags = g->file_open ? 0 : OP_BEGIN;
        appended(g, op);
    }
    op->flags |= OP_END;
    op->entry = s->entry;
    g->file_open = 0;
    return 0;
}
