/*
 * fanout_state.c - a subscription's state: its key's row, or its prefix's rows page by page,
 * and the state sent again after lost changes (see fanout.h and docs/table-events.md).
 *
 * A part of a state is read under the table's commit lock, after the subscription has taken
 * every change committed before: the part is exactly the store after those changes, and the
 * changes after it follow. A prefix's pages go out as the subscriber's queue has room (half of
 * it is left to the changes that arrive meanwhile), each as one write, so a page is sent whole
 * or read again later.
 */
#include "core/log.h"
#include "table/fanout_int.h"
#include "table/sse.h"

#include <string.h>

#define STATE_PAGE_ROWS 256                /* rows of a prefix's state per read transaction */
#define STATE_PAGE_BYTES (4 * 1024 * 1024) /* ...or fewer once their events pass this */

/* A part of a state: its text (a reset, events, a sync), the cursor it reached. */
struct page {
    struct ferry_buf text;
    size_t rows;      /* events of rows in text */
    size_t too_large; /* rows left out: their event would pass FANOUT_EVENT_MAX */
    unsigned char cursor[FERRY_STORE_CURSOR_MAX];
    size_t cursor_len;
    int found; /* a key's row exists; its place and its value's hash: */
    int32_t partition;
    int64_t offset;
    uint32_t hash;
};

static int page_row(void *arg, const struct ferry_store_entry *e)
{
    struct page *pg = arg;

    if (ferry_sse_put(&pg->text, e, NULL) == 0)
        pg->rows++;
    else
        pg->too_large++;
    memcpy(pg->cursor, e->cursor, e->cursor_len);
    pg->cursor_len = e->cursor_len;
    return pg->text.len >= STATE_PAGE_BYTES;
}

static int key_row(void *arg, const struct ferry_store_entry *e)
{
    struct page *pg = arg;

    pg->found = 1;
    pg->partition = e->row.partition;
    pg->offset = e->row.offset;
    if (ferry_sse_put(&pg->text, e, &pg->hash) == 0)
        pg->rows++;
    return 0;
}

/* Reads s's next page (a prefix) or its row (a key) into pg. Returns 1 when the state is
 * complete, 0 when more pages follow, -1 when the store failed. */
static int read_part(struct sub *s, struct page *pg, size_t rows)
{
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    ferry_store *store = ferry_table_store_acquire(s->tf->t);
    size_t next_len = 0;
    char why[512] = "its store is closed";
    int r = FERRY_STORE_ERROR;

    if (store && s->prefix)
        r = ferry_store_scan(store, s->key, s->key_len, s->cursor, s->cursor_len, rows, page_row,
                             pg, next, &next_len, why, sizeof(why));
    else if (store)
        r = ferry_store_view(store, s->key, s->key_len, key_row, pg, why, sizeof(why));
    if (store)
        ferry_table_store_release(s->tf->t);
    if (r < 0) {
        FLOG_WARN_REPEATED("table", s->tf->t->cfg->name, "subscriptions: %s", why);
        return -1;
    }
    return next_len == 0;
}

/* A key's state: nothing when the client resumes at the row's own id (its place and its value's
 * hash: a recreated topic may have put another value at the same place), a delete without an
 * id when it resumes and the key is gone, else the row read. */
static void key_part(struct sub *s, struct page *pg)
{
    if (pg->found && s->resume && ferry_etag_names(&s->last, pg->partition, pg->offset, pg->hash)) {
        ferry_buf_reset(&pg->text);
        pg->rows = 0;
    } else if (!pg->found && s->resume) {
        ferry_sse_delete(&pg->text, s->key, s->key_len, -1, 0);
    }
}

static void key_sent(struct sub *s, const struct page *pg)
{
    s->sent = 1;
    s->sent_deleted = !pg->found;
    s->sent_partition = pg->partition;
    s->sent_offset = pg->offset;
    s->sent_hash = pg->hash;
}

/* Rows s's queue has room for, leaving half of it to the changes that arrive meanwhile. */
static size_t page_room(const struct sub *s)
{
    size_t room = ferry_http_stream_room(s->stream);
    size_t reserve = (size_t)s->tf->t->cfg->limits.subscriber_queue / 2;
    size_t rows = room > reserve ? room - reserve : 0;

    return rows < STATE_PAGE_ROWS ? rows : STATE_PAGE_ROWS;
}

/* Sends the part read, as one write, and moves the state on. */
static void send_part(struct table_fanout *tf, struct sub *s, struct page *pg, int complete)
{
    uint64_t keys = s->state_keys + (s->prefix ? pg->rows : (uint64_t)pg->found);

    if (complete < 0) {
        ferry_fanout_end_notice(s, "error", "store_failed", "the table's store cannot be read");
        return;
    }
    if (pg->too_large)
        FLOG_WARN_REPEATED(
            "table", tf->t->cfg->name,
            "subscriptions: %zu row(s) left out of a state: larger than %d bytes as events",
            pg->too_large, FANOUT_EVENT_MAX);
    if (!s->prefix)
        key_part(s, pg);
    if ((complete && ferry_sse_sync(&pg->text, keys)) || !pg->text.len ||
        ferry_fanout_write(s, pg->text.data, pg->text.len, pg->rows ? pg->rows : 1))
        return; /* stalled (or out of memory): the part is read again later */
    if (!s->prefix)
        key_sent(s, pg);
    s->reset = 0;
    s->state_keys = keys;
    if (pg->cursor_len) {
        memcpy(s->cursor, pg->cursor, pg->cursor_len);
        s->cursor_len = pg->cursor_len;
    }
    s->phase = complete ? PHASE_LIVE : PHASE_STATE;
    if (complete)
        ferry_fanout_unlist_state(tf, s);
}

/* Takes every committed change and reads s's next part, under the commit lock. Returns as
 * read_part, or -2 when s cannot go on now (it waits for room, or for the open write
 * transaction to commit). */
static int read_locked(struct table_fanout *tf, struct sub *s, struct page *pg)
{
    size_t rows;

    if (tf->open_unrecorded) {
        tf->blocked = 1; /* its changes will not be listed: read after its commit */
        return -2;
    }
    ferry_fanout_absorb(tf);
    if (s->phase != PHASE_NEW)
        ferry_fanout_walk(tf, s); /* the changes before the part, for the keys already sent */
    rows = s->dead || s->waiting ? 0 : page_room(s);
    if (!rows) {
        if (!s->dead && !s->waiting)
            ferry_fanout_stall(s); /* until its queue drains */
        return -2;
    }
    if (s->phase == PHASE_NEW)
        s->pos = tf->tail;
    if (s->reset) /* set at admission, or by a lost batch the walk just met */
        ferry_sse_notice(&pg->text, "reset", s->resume ? "resume" : "resync",
                         "forget this subscription's keys: its whole state follows until sync");
    return read_part(s, pg, rows);
}

void ferry_fanout_state_step(struct table_fanout *tf, struct sub *s)
{
    struct page pg = {.rows = 0};
    int complete;

    ferry_buf_init(&pg.text, STATE_PAGE_BYTES + FANOUT_EVENT_MAX + 4096);
    pthread_mutex_lock(&tf->commit_lock);
    complete = read_locked(tf, s, &pg);
    pthread_mutex_unlock(&tf->commit_lock);
    if (complete > -2)
        send_part(tf, s, &pg, complete);
    ferry_buf_release(&pg.text);
}

/* ---- lost changes ---- */

/* A key subscription's state, read again: sent when it differs from what was sent last. */
static void resend_key(struct sub *s)
{
    struct page pg = {.rows = 0};
    int complete;

    ferry_buf_init(&pg.text, FANOUT_EVENT_MAX);
    complete = read_part(s, &pg, 1);
    if (!pg.found)
        ferry_sse_delete(&pg.text, s->key, s->key_len, -1, 0);
    if (complete >= 0 &&
        !(s->sent && s->sent_deleted == !pg.found &&
          (!pg.found || (s->sent_partition == pg.partition && s->sent_offset == pg.offset &&
                         s->sent_hash == pg.hash))) &&
        ferry_fanout_write(s, pg.text.data, pg.text.len, 1) == 0)
        key_sent(s, &pg);
    ferry_buf_release(&pg.text);
}

void ferry_fanout_resync(struct table_fanout *tf, struct sub *s)
{
    if (!s->prefix) {
        resend_key(s);
        return;
    }
    s->phase = PHASE_STATE;
    s->reset = 1;
    s->cursor_len = 0;
    s->state_keys = 0;
    ferry_fanout_list_state(tf, s);
}
