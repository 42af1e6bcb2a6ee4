/*
 * cluster.c - rufd as one of several instances on one replicated store
 * (store_backend = jetstream, docs/OPERATIONS.md "Two sites").
 *
 * The store tells us, from its own thread, when entries committed by
 * another instance became readable in our local view, when a shared blob
 * changed, and when the cluster became unavailable or available again. The
 * notes are gathered under a lock and handed to the loop by a uv_async:
 *   - queues that grew: desks subscribed here get the new entries pushed
 *     at once, whichever instance ingested them;
 *   - the blob "directory": every instance keeps the newest signed
 *     directory, so one given to any instance (SIGHUP) with its
 *     revocations reaches all of them; a newer one is adopted only when it
 *     verifies under our root and names our Noise key;
 *   - availability: logged once per change (the metrics read it live).
 * With the embedded LMDB store there are no notes and nothing is shared.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "log.h"
#include "metrics.h"
#include "session.h"

#define DIRECTORY_BLOB "directory"
/* Distinct queues remembered between two loop wake-ups; beyond, every desk is pumped. */
#define NOTE_QUEUES_MAX 64
/* The store's availability is also looked at this often: notes may fold an outage away. */
#define STATE_POLL_MS 1000

struct rufd_cluster {
	uv_async_t async;
	struct rufd *d;
	bool shared; /* a replicated store: the directory is shared */

	pthread_mutex_t mu;
	/* under mu: what the store thread noted since the loop last looked */
	char queues[NOTE_QUEUES_MAX][RUF_QUEUE_NAME_MAX + 1];
	size_t n_queues;
	bool all_queues;
	bool directory_changed;
	bool state_changed, available;
	uint64_t notes;

	/* loop thread */
	uv_timer_t poll;
	int handles;  /* open uv handles; freed when both closed */
	bool sharing; /* a blob commit of our directory is in flight */
	bool reshare; /* it failed: offer it again once writes can succeed */
	bool up;      /* availability last logged */
};

/* The store's thread: remember, wake the loop. Short, never blocks on the loop. */
static void
on_note(void *ctx, const struct ruf_store_note *n)
{
	struct rufd_cluster *c = ctx;

	pthread_mutex_lock(&c->mu);
	switch (n->kind) {
	case RUF_STORE_NOTE_QUEUES:
		c->notes++;
		for (size_t i = 0; i < n->n_queues && !c->all_queues; i++) {
			size_t j;
			for (j = 0; j < c->n_queues; j++)
				if (strcmp(c->queues[j], n->queues[i]) == 0)
					break;
			if (j < c->n_queues)
				continue;
			if (c->n_queues == NOTE_QUEUES_MAX) {
				c->all_queues = true;
				break;
			}
			memcpy(c->queues[c->n_queues++], n->queues[i], sizeof(c->queues[0]));
		}
		break;
	case RUF_STORE_NOTE_BLOB:
		if (n->blob && strcmp(n->blob, DIRECTORY_BLOB) == 0)
			c->directory_changed = true;
		break;
	case RUF_STORE_NOTE_STATE:
		c->state_changed = true;
		c->available = n->available;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&c->mu);
	uv_async_send(&c->async);
}

/* Logs a change of availability once; back up: offers our directory again. */
static void
state_seen(struct rufd_cluster *c, bool up)
{
	if (up == c->up)
		return;
	c->up = up;
	if (up) {
		log_notice("store: cluster available again: accepting submissions");
		rufd_cluster_sync_directory(c->d);
	} else {
		log_err("store: cluster unavailable (unreachable or no quorum): submissions are "
		        "told to retry later, desks get what is stored here");
	}
}

static void
on_poll(uv_timer_t *t)
{
	struct rufd_cluster *c = t->data;
	bool up = ruf_store_available(c->d->store) == 1;

	state_seen(c, up);
	if (up && c->reshare) {
		c->reshare = false;
		rufd_cluster_sync_directory(c->d);
	}
}

static void
on_async(uv_async_t *a)
{
	struct rufd_cluster *c = a->data;
	struct rufd *d = c->d;
	char queues[NOTE_QUEUES_MAX][RUF_QUEUE_NAME_MAX + 1];
	size_t n;
	bool all, dir, state, avail;

	pthread_mutex_lock(&c->mu);
	n = c->n_queues;
	memcpy(queues, c->queues, n * sizeof(queues[0]));
	all = c->all_queues;
	dir = c->directory_changed;
	state = c->state_changed;
	avail = c->available;
	rufd_stats.cluster_notes = c->notes;
	c->n_queues = 0;
	c->all_queues = c->directory_changed = c->state_changed = false;
	pthread_mutex_unlock(&c->mu);

	if (state)
		state_seen(c, avail);
	if (dir)
		rufd_cluster_sync_directory(d);
	if (all) {
		for (struct session *s = d->sessions, *next; s; s = next) {
			next = s->next;
			if (s->delivery && s->state == S_OPEN)
				delivery_pump(s);
		}
	} else if (n > 0) {
		rufd_delivery_notify(d, (const char(*)[RUF_QUEUE_NAME_MAX + 1]) queues, n);
	}
}

static void
on_shared(struct commit_req *r)
{
	struct rufd *d = r->owner;

	if (d->cluster) {
		d->cluster->sharing = false;
		d->cluster->reshare = r->rc != 0;
	}
	if (r->rc == 0) {
		rufd_stats.directory_shared++;
		log_notice("directory version %llu shared with the other instances",
		           (unsigned long long)r->seq);
	} else {
		log_warnx("directory version %llu not shared yet (%s): tried again when the "
		          "store can write",
		          (unsigned long long)r->seq, ruf_strerror(r->rc));
	}
	rufd_commit_req_free(r);
}

/* Stores our directory as the shared blob (through the commit worker). */
static void
share_directory(struct rufd *d)
{
	struct rufd_cluster *c = d->cluster;
	const ruf_directory *dir = d->id->dir;
	struct commit_req *r;

	if (c->sharing)
		return; /* its answer comes first; the next sync looks again */
	if (!(r = calloc(1, sizeof(*r))) || !(r->blob = malloc(dir->rawlen))) {
		free(r);
		log_err("out of memory: directory not shared");
		return;
	}
	r->kind = COMMIT_BLOB;
	r->fd = -1;
	r->owner = d;
	r->done = on_shared;
	snprintf(r->blob_name, sizeof(r->blob_name), "%s", DIRECTORY_BLOB);
	memcpy(r->blob, dir->raw, dir->rawlen);
	r->blob_len = dir->rawlen;
	r->seq = dir->version; /* for the log */
	c->sharing = true;
	rufd_commit_submit(d, r);
}

/* Makes sd (taken) the running directory, with the identity files read again. */
static void
adopt_directory(struct rufd *d, ruf_directory *sd)
{
	struct rufd_ident *id;
	ruf_diag diag = {{0}};
	uint64_t v = sd->version;

	if (rufd_ident_load(&d->cfg, &id, &diag) != 0) {
		log_err("directory version %llu from the cluster not taken: %s",
		        (unsigned long long)v, diag.msg);
		ruf_directory_free(sd);
		return;
	}
	if (rufd_ident_replace_directory(id, sd, "the directory from the cluster", &diag) != 0) {
		log_err("directory version %llu from the cluster not taken: %s",
		        (unsigned long long)v, diag.msg);
		rufd_ident_free(id);
		return;
	}
	rufd_stats.directory_shared++;
	rufd_ident_install(d, id, "directory from the cluster");
}

void
rufd_cluster_sync_directory(struct rufd *d)
{
	struct rufd_cluster *c = d->cluster;
	ruf_directory *sd = NULL;
	uint8_t *raw = NULL;
	size_t len = 0;
	int rc;

	if (!c || !c->shared || d->draining)
		return;
	rc = ruf_store_blob_get(d->store, DIRECTORY_BLOB, &raw, &len);
	if (rc == 0) {
		rc = ruf_directory_load_mem(raw, len, d->id->root, ruf_now(), &sd);
		free(raw);
		if (rc != 0) {
			/* Expired, or not under our root: ours replaces it. */
			log_warnx("the store's shared directory is refused (%s): sharing ours",
			          ruf_strerror(rc));
			sd = NULL;
		}
	} else if (rc != RUF_E_NOTFOUND) {
		log_warnx("cannot read the store's shared directory: %s", ruf_strerror(rc));
		return;
	}
	if (sd && sd->version > d->id->dir->version) {
		adopt_directory(d, sd);
		return;
	}
	/*
	 * Ours is newer (or the store has none). Two instances putting at once
	 * may leave the older one in the store: the note of that put brings
	 * the newer instance here again, and it puts its own once more.
	 */
	if (!sd || sd->version < d->id->dir->version)
		share_directory(d);
	ruf_directory_free(sd);
}

int
rufd_cluster_start(struct rufd *d)
{
	struct rufd_cluster *c;

	if (!(c = calloc(1, sizeof(*c))))
		return RUF_E_NOMEM;
	c->d = d;
	c->shared = strcmp(d->cfg.store_backend, "lmdb") != 0;
	pthread_mutex_init(&c->mu, NULL);
	uv_async_init(d->loop, &c->async, on_async);
	c->async.data = c;
	uv_timer_init(d->loop, &c->poll);
	c->poll.data = c;
	c->handles = 2;
	d->cluster = c;
	ruf_store_set_notify(d->store, on_note, c);
	/* The first connection may still be on its way: the first look is in a second. */
	c->up = true;
	if (c->shared) {
		uv_timer_start(&c->poll, on_poll, STATE_POLL_MS, STATE_POLL_MS);
		uv_unref((uv_handle_t *)&c->poll);
	}
	rufd_cluster_sync_directory(d);
	return 0;
}

static void
on_closed(uv_handle_t *h)
{
	struct rufd_cluster *c = h->data;

	if (--c->handles > 0)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void
rufd_cluster_stop(struct rufd *d)
{
	struct rufd_cluster *c = d->cluster;

	if (!c)
		return;
	/* Once this returns no note runs or will run: the async may close. */
	ruf_store_set_notify(d->store, NULL, NULL);
	d->cluster = NULL;
	uv_close((uv_handle_t *)&c->async, on_closed);
	uv_close((uv_handle_t *)&c->poll, on_closed);
}
