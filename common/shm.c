/*
 * shm.c - the POSIX shared memory region between posternd and postern-dp:
 * creation and re-attachment, snapshot publication (the writer) and
 * acquisition (the readers). The protocol and its proof sketch are in the
 * comment at the top of shm.h; this file follows it step by step.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "result.h"
#include "shm.h"

/* Spins of shm_acquire before it gives up (only a writer crash can get here). */
#define SHM_ACQUIRE_MAX_ROUNDS (1u << 20)

static int shm_fail(int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int shm_fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

uint64_t shm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * kill(pid, 0): EPERM still means the process exists (another user's). A
 * zombie also answers kill(): a killed dataplane nobody has reaped yet is
 * dead for us, or its successor could not take over.
 */
bool shm_pid_alive(pid_t pid)
{
	char path[64], stat[256];
	const char *paren;
	FILE *f;
	size_t n;

	if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return true; /* no procfs: trust kill() */
	n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	paren = strrchr(stat, ')');
	return paren == NULL || paren[1] == '\0' || (paren[2] != 'Z' && paren[2] != 'X');
}

/* Object names: same alphabet as the shm_name setting, no slash. */
static int shm_posix_name(const char *name, char *out, size_t outlen, char *err, size_t errlen)
{
	size_t n = strlen(name);

	if (n == 0 || n >= sizeof(((struct shm_map *)0)->name) || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                 "0123456789_.-") != n)
		return shm_fail(PG_ERROR, err, errlen, "bad shared memory name \"%s\"", name);
	snprintf(out, outlen, "/%s", name);
	return PG_OK;
}

static size_t shm_page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

static size_t shm_round_up(size_t v, size_t to)
{
	return (v + to - 1) / to * to;
}

static size_t shm_ev_stride(void)
{
	return shm_round_up(evring_bytes(SHM_EV_CAPACITY), SHM_CACHE_LINE);
}

static size_t shm_cmd_resp_offset(void)
{
	return shm_round_up(evring_bytes(SHM_CMD_REQ_CAPACITY), SHM_CACHE_LINE);
}

static size_t shm_cmd_stride(void)
{
	return shm_cmd_resp_offset() +
	       shm_round_up(evring_bytes(SHM_CMD_RESP_CAPACITY), SHM_CACHE_LINE);
}

/*
 * Header, event rings, command rings, slots: where the rings and the slots
 * start and how big the whole object is for a slot capacity.
 */
static void shm_layout(size_t slot_capacity, size_t *first_ring, size_t *first_cmd,
                       size_t *first_slot, size_t *capacity, size_t *total)
{
	size_t page = shm_page_size();

	*first_ring = shm_round_up(sizeof(struct shm_region), page);
	*first_cmd = *first_ring + shm_round_up(SHM_EV_RINGS * shm_ev_stride(), page);
	*first_slot = *first_cmd + shm_round_up(SHM_CMD_RINGS * shm_cmd_stride(), page);
	*capacity = shm_round_up(slot_capacity, page);
	*total = *first_slot + SHM_NSLOTS * *capacity;
}

/*
 * The slot table and the ring area of a mapped region must describe areas
 * inside the object, rings of the size this build writes.
 */
static bool shm_layout_sane(const struct shm_region *rg, size_t size)
{
	uint32_t cap = rg->events_capacity;

	if (rg->events_nrings != SHM_EV_RINGS || cap != SHM_EV_CAPACITY ||
	    rg->events_stride < evring_bytes(cap) || rg->events_offset < sizeof(*rg) ||
	    rg->events_offset > size ||
	    (size - rg->events_offset) / rg->events_stride < rg->events_nrings)
		return false;
	for (unsigned i = 0; i < rg->events_nrings; i++)
		if (shm_evring((struct shm_region *)rg, i)->capacity != cap)
			return false;
	if (rg->cmd_nworkers != SHM_CMD_RINGS || rg->cmd_req_capacity != SHM_CMD_REQ_CAPACITY ||
	    rg->cmd_resp_capacity != SHM_CMD_RESP_CAPACITY ||
	    rg->cmd_resp_offset < evring_bytes(SHM_CMD_REQ_CAPACITY) ||
	    rg->cmd_stride < rg->cmd_resp_offset + evring_bytes(SHM_CMD_RESP_CAPACITY) ||
	    rg->cmd_offset < sizeof(*rg) || rg->cmd_offset > size ||
	    (size - rg->cmd_offset) / rg->cmd_stride < rg->cmd_nworkers)
		return false;
	for (unsigned i = 0; i < rg->cmd_nworkers; i++)
		if (shm_cmd_request((struct shm_region *)rg, i)->capacity != SHM_CMD_REQ_CAPACITY ||
		    shm_cmd_response((struct shm_region *)rg, i)->capacity != SHM_CMD_RESP_CAPACITY)
			return false;
	for (unsigned i = 0; i < SHM_NSLOTS; i++) {
		const struct shm_slot *s = &rg->slots[i];

		if (s->offset < sizeof(*rg) || s->offset > size || s->capacity > size - s->offset)
			return false;
	}
	return true;
}

static void shm_init_region(struct shm_region *rg, size_t first_ring, size_t first_cmd,
                            size_t first_slot, size_t capacity, size_t total)
{
	memset(rg, 0, sizeof(*rg));
	rg->abi = SHM_ABI;
	rg->total_size = total;
	rg->slot_capacity = capacity;
	rg->events_offset = first_ring;
	rg->events_stride = shm_ev_stride();
	rg->events_nrings = SHM_EV_RINGS;
	rg->events_capacity = SHM_EV_CAPACITY;
	/* only the ring headers: record pages stay untouched until used */
	for (unsigned i = 0; i < SHM_EV_RINGS; i++)
		evring_init(shm_evring(rg, i), SHM_EV_CAPACITY);
	rg->cmd_offset = first_cmd;
	rg->cmd_stride = shm_cmd_stride();
	rg->cmd_resp_offset = shm_cmd_resp_offset();
	rg->cmd_nworkers = SHM_CMD_RINGS;
	rg->cmd_req_capacity = SHM_CMD_REQ_CAPACITY;
	rg->cmd_resp_capacity = SHM_CMD_RESP_CAPACITY;
	for (unsigned i = 0; i < SHM_CMD_RINGS; i++) {
		evring_init(shm_cmd_request(rg, i), SHM_CMD_REQ_CAPACITY);
		evring_init(shm_cmd_response(rg, i), SHM_CMD_RESP_CAPACITY);
	}
	for (unsigned i = 0; i < SHM_NSLOTS; i++) {
		rg->slots[i].offset = first_slot + i * capacity;
		rg->slots[i].capacity = capacity;
	}
	/* magic last: shm_attach treats a zero magic as "still being created" */
	__atomic_store_n(&rg->magic, SHM_MAGIC, __ATOMIC_RELEASE);
}

/*
 * A previous posternd may have died between storing published_slot and
 * published_gen. Make the two agree again: finish the publication if the
 * new slot is complete, else point back at the slot holding published_gen.
 */
static void shm_repair_publication(struct shm_region *rg)
{
	uint64_t g = atomic_load(&rg->published_gen);
	uint32_t s = atomic_load(&rg->published_slot);

	if (s < SHM_NSLOTS) {
		uint64_t sg = atomic_load(&rg->slots[s].gen);

		if (sg == g)
			return;
		if (sg > g && sg != SHM_SLOT_RETIRING) {
			atomic_store(&rg->published_gen, sg);
			return;
		}
	}
	for (uint32_t i = 0; i < SHM_NSLOTS; i++) {
		if (g != 0 && atomic_load(&rg->slots[i].gen) == g) {
			atomic_store(&rg->published_slot, i);
			return;
		}
	}
}

int shm_open_control(const char *name, size_t slot_capacity, struct shm_map *m, char *err,
                     size_t errlen)
{
	char pname[sizeof(m->name) + 1];
	size_t first_ring, first_cmd, first_slot, capacity, total;
	struct shm_region *rg;
	struct stat st;
	int fd;
	int32_t other;

	memset(m, 0, sizeof(*m));
	if (shm_posix_name(name, pname, sizeof(pname), err, errlen) != PG_OK)
		return PG_ERROR;
	if (slot_capacity < sizeof(struct snap_header))
		return shm_fail(PG_ERROR, err, errlen, "slot capacity %zu too small",
		                slot_capacity);
	shm_layout(slot_capacity, &first_ring, &first_cmd, &first_slot, &capacity, &total);

	/*
	 * Owner only (0600): snapshots carry the TLS private keys (ABI 1.2), so
	 * no other user may map the region; posternd and postern-dp run as the
	 * same user (root). fchmod also tightens an object that an older
	 * posternd created 0660 and that survived (the dataplane keeps it).
	 */
	fd = shm_open(pname, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		return shm_fail(PG_ERROR, err, errlen, "shm_open /dev/shm%s: %s", pname,
		                strerror(errno));
	if (fchmod(fd, 0600) != 0) {
		shm_fail(PG_ERROR, err, errlen, "cannot make /dev/shm%s mode 0600: %s", pname,
		         strerror(errno));
		close(fd);
		return PG_ERROR;
	}
	if (fstat(fd, &st) != 0) {
		shm_fail(PG_ERROR, err, errlen, "fstat /dev/shm%s: %s", pname, strerror(errno));
		close(fd);
		return PG_ERROR;
	}

	if ((size_t)st.st_size >= sizeof(struct shm_region)) {
		rg = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (rg == MAP_FAILED) {
			shm_fail(PG_ERROR, err, errlen, "mmap /dev/shm%s: %s", pname,
			         strerror(errno));
			close(fd);
			return PG_ERROR;
		}
		if (__atomic_load_n(&rg->magic, __ATOMIC_ACQUIRE) != 0) {
			close(fd);
			if (rg->magic != SHM_MAGIC || rg->abi != SHM_ABI ||
			    rg->slot_capacity != capacity || rg->total_size != total ||
			    (size_t)st.st_size != total || !shm_layout_sane(rg, total)) {
				shm_fail(PG_ERROR, err, errlen,
				         "/dev/shm%s exists with an incompatible layout (magic "
				         "0x%08" PRIx32 ", abi %" PRIu32 ", slot capacity %" PRIu64
				         ", size %jd; want abi %d, slot capacity %zu, size %zu):"
				         " stop postern-dp and remove it, or keep the old"
				         " shm_name/snapshot_max_size",
				         pname, rg->magic, rg->abi, rg->slot_capacity,
				         (intmax_t)st.st_size, SHM_ABI, capacity, total);
				munmap(rg, (size_t)st.st_size);
				return PG_ERROR;
			}
			/* one publisher at a time, or the slot protocol breaks */
			other = atomic_load(&rg->control_pid);
			if (other != 0 && other != getpid() && shm_pid_alive(other)) {
				munmap(rg, total);
				return shm_fail(
				    PG_ERROR, err, errlen,
				    "/dev/shm%s is in use by another posternd (pid %" PRId32 ")",
				    pname, other);
			}
			/* re-attach: keep published_gen so generations keep growing */
			shm_repair_publication(rg);
			atomic_store(&rg->control_pid, (int32_t)getpid());
			m->region = rg;
			m->size = total;
			snprintf(m->name, sizeof(m->name), "%s", name);
			return PG_OK;
		}
		/* zero magic: a creator died before finishing; start over */
		munmap(rg, (size_t)st.st_size);
	}

	if (ftruncate(fd, (off_t)total) != 0) {
		shm_fail(PG_ERROR, err, errlen, "ftruncate /dev/shm%s to %zu bytes: %s", pname,
		         total, strerror(errno));
		close(fd);
		return PG_ERROR;
	}
	rg = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (rg == MAP_FAILED)
		return shm_fail(PG_ERROR, err, errlen, "mmap /dev/shm%s: %s", pname,
		                strerror(errno));
	shm_init_region(rg, first_ring, first_cmd, first_slot, capacity, total);
	atomic_store(&rg->control_pid, (int32_t)getpid());
	m->region = rg;
	m->size = total;
	snprintf(m->name, sizeof(m->name), "%s", name);
	return PG_OK;
}

int shm_attach(const char *name, struct shm_map *m, char *err, size_t errlen)
{
	char pname[sizeof(m->name) + 1];
	struct shm_region *rg;
	struct stat st;
	size_t size;
	int fd;

	memset(m, 0, sizeof(*m));
	if (shm_posix_name(name, pname, sizeof(pname), err, errlen) != PG_OK)
		return PG_ERROR;
	fd = shm_open(pname, O_RDWR, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return shm_fail(PG_AGAIN, err, errlen,
			                "/dev/shm%s does not exist yet"
			                " (is posternd running?)",
			                pname);
		return shm_fail(PG_ERROR, err, errlen, "shm_open /dev/shm%s: %s", pname,
		                strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		shm_fail(PG_ERROR, err, errlen, "fstat /dev/shm%s: %s", pname, strerror(errno));
		close(fd);
		return PG_ERROR;
	}
	size = (size_t)st.st_size;
	if (size < sizeof(struct shm_region)) {
		close(fd);
		return shm_fail(PG_AGAIN, err, errlen, "/dev/shm%s is still being created", pname);
	}
	rg = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (rg == MAP_FAILED)
		return shm_fail(PG_ERROR, err, errlen, "mmap /dev/shm%s: %s", pname,
		                strerror(errno));
	if (__atomic_load_n(&rg->magic, __ATOMIC_ACQUIRE) == 0) {
		munmap(rg, size);
		return shm_fail(PG_AGAIN, err, errlen, "/dev/shm%s is still being created", pname);
	}
	if (rg->magic != SHM_MAGIC || rg->abi != SHM_ABI) {
		shm_fail(PG_ERROR, err, errlen,
		         "/dev/shm%s: magic 0x%08" PRIx32 " abi %" PRIu32
		         ", expected 0x%08x abi %d (posternd and postern-dp versions differ?)",
		         pname, rg->magic, rg->abi, SHM_MAGIC, SHM_ABI);
		munmap(rg, size);
		return PG_ERROR;
	}
	if (rg->total_size != size || !shm_layout_sane(rg, size)) {
		shm_fail(PG_ERROR, err, errlen,
		         "/dev/shm%s: size %zu, header says %" PRIu64
		         " or slots or event rings out of range",
		         pname, size, rg->total_size);
		munmap(rg, size);
		return PG_ERROR;
	}
	m->region = rg;
	m->size = size;
	snprintf(m->name, sizeof(m->name), "%s", name);
	return PG_OK;
}

void shm_detach(struct shm_map *m)
{
	if (m->region != NULL)
		munmap(m->region, m->size);
	memset(m, 0, sizeof(*m));
}

int shm_unlink_name(const char *name)
{
	char pname[sizeof(((struct shm_map *)0)->name) + 1];

	if (shm_posix_name(name, pname, sizeof(pname), NULL, 0) != PG_OK)
		return PG_ERROR;
	if (shm_unlink(pname) != 0 && errno != ENOENT)
		return PG_ERROR;
	return PG_OK;
}

struct evring *shm_evring(struct shm_region *rg, unsigned r)
{
	if (r >= rg->events_nrings)
		return NULL;
	return (struct evring *)((uint8_t *)rg + rg->events_offset + r * rg->events_stride);
}

struct evring *shm_cmd_request(struct shm_region *rg, unsigned w)
{
	if (w >= rg->cmd_nworkers)
		return NULL;
	return (struct evring *)((uint8_t *)rg + rg->cmd_offset + w * rg->cmd_stride);
}

struct evring *shm_cmd_response(struct shm_region *rg, unsigned w)
{
	if (w >= rg->cmd_nworkers)
		return NULL;
	return (struct evring *)((uint8_t *)rg + rg->cmd_offset + w * rg->cmd_stride +
	                         rg->cmd_resp_offset);
}

static uint8_t *shm_slot_data(struct shm_region *rg, unsigned s)
{
	return (uint8_t *)rg + rg->slots[s].offset;
}

/*
 * The generation whose data slot s holds. Normally slots[s].gen; but a slot
 * left RETIRING by an earlier attempt that found it busy still holds that
 * generation's bytes, and its header (stamped by us, immutable since) says
 * which one. Without this, a reader still holding the slot would no longer
 * match and the second attempt would overwrite it under the reader.
 */
static uint64_t shm_slot_data_gen(struct shm_region *rg, unsigned s)
{
	uint64_t g = atomic_load(&rg->slots[s].gen);
	const struct snap_header *h;

	if (g != SHM_SLOT_RETIRING)
		return g;
	h = (const struct snap_header *)shm_slot_data(rg, s);
	return h->generation;
}

/* Does any live reader announce generation g? (seq_cst loads: Dekker) */
static bool shm_gen_in_use(struct shm_region *rg, uint64_t g)
{
	int32_t dp_pid = atomic_load(&rg->dp.pid);

	/*
	 * Records of a dead dataplane are stale: nobody will ever release
	 * them, and honouring them would block publication forever.
	 */
	if (dp_pid != 0 && !shm_pid_alive(dp_pid))
		return false;
	for (unsigned r = 0; r < SHM_MAX_READERS; r++) {
		struct shm_reader *rd = &rg->readers[r];

		if (atomic_load(&rd->active) == 1 && atomic_load(&rd->announced) == g)
			return true;
	}
	return false;
}

int shm_publish(struct shm_map *m, const void *blob, size_t len, uint64_t *gen_out, char *err,
                size_t errlen)
{
	struct shm_region *rg = m->region;
	const struct snap_header *in = blob;
	struct snap_header *h;
	uint64_t pub_gen = atomic_load(&rg->published_gen);
	uint32_t pub_slot = atomic_load(&rg->published_slot);
	uint64_t gen = pub_gen + 1;
	char why[160];

	if (len < sizeof(*in) || in->size != len || in->magic != SNAP_MAGIC)
		return shm_fail(PG_ERROR, err, errlen, "not a snapshot blob (%zu bytes)", len);
	if (len > rg->slot_capacity)
		return shm_fail(PG_ERROR, err, errlen,
		                "snapshot is %zu bytes, slots hold %" PRIu64
		                " (raise snapshot_max_size and restart)",
		                len, rg->slot_capacity);

	for (unsigned i = 0; i < SHM_NSLOTS; i++) {
		unsigned s = (pub_slot + 1 + i) % SHM_NSLOTS;
		uint64_t old;

		if (pub_gen != 0 && s == pub_slot)
			continue; /* the current snapshot is never rewritten */
		old = shm_slot_data_gen(rg, s);
		/* Dekker, writer side: mark retiring, then look at announcements */
		atomic_store(&rg->slots[s].gen, SHM_SLOT_RETIRING);
		if (old != 0 && shm_gen_in_use(rg, old))
			continue; /* left RETIRING: no new reader can take it */

		h = (struct snap_header *)shm_slot_data(rg, s);
		memcpy(h, blob, len);
		h->generation = gen;
		h->checksum = 0;
		h->checksum = snap_checksum(h, len);
		/* the builder is ours, but a bad blob must not reach the workers */
		if (snap_validate(h, len, why, sizeof(why)) != 0) {
			h->generation = 0;
			return shm_fail(PG_ERROR, err, errlen, "refusing to publish: %s", why);
		}
		atomic_store_explicit(&rg->slots[s].size, len, memory_order_relaxed);
		atomic_store_explicit(&rg->slots[s].gen, gen, memory_order_release);
		atomic_store(&rg->published_slot, s);
		/* before the generation: a reader that sees gen sees its time too */
		atomic_store(&rg->published_ns, shm_now_ns());
		atomic_store(&rg->published_gen, gen);
		if (gen_out != NULL)
			*gen_out = gen;
		return PG_OK;
	}
	return shm_fail(PG_AGAIN, err, errlen, "every free slot is still held by a reader");
}

/* The slot carrying generation g, or SHM_NSLOTS. */
static unsigned shm_find_gen(struct shm_region *rg, uint64_t g)
{
	for (unsigned i = 0; i < SHM_NSLOTS; i++)
		if (atomic_load(&rg->slots[i].gen) == g)
			return i;
	return SHM_NSLOTS;
}

const struct snap_header *shm_acquire(struct shm_map *m, unsigned r, uint64_t *gen_out)
{
	struct shm_region *rg = m->region;
	struct shm_reader *rd;

	if (r >= SHM_MAX_READERS)
		return NULL;
	rd = &rg->readers[r];
	/* the writer ignores inactive records; be counted before announcing */
	if (atomic_load(&rd->active) != 1)
		atomic_store(&rd->active, 1);

	for (unsigned round = 0; round < SHM_ACQUIRE_MAX_ROUNDS; round++) {
		/* gen first: the writer stores slot before gen (see shm_publish) */
		uint64_t g = atomic_load(&rg->published_gen);
		uint32_t s = atomic_load(&rg->published_slot);

		if (g == 0) {
			atomic_store(&rd->announced, 0);
			return NULL;
		}
		/* the two fields may be out of sync: trust only the slot's own gen */
		if (s >= SHM_NSLOTS || atomic_load(&rg->slots[s].gen) != g)
			s = shm_find_gen(rg, g);
		if (s >= SHM_NSLOTS)
			continue;
		/* Dekker, reader side: announce, then re-check the slot */
		atomic_store(&rd->announced, g);
		if (atomic_load(&rg->slots[s].gen) != g)
			continue;
		if (gen_out != NULL)
			*gen_out = g;
		return (const struct snap_header *)shm_slot_data(rg, s);
	}
	atomic_store(&rd->announced, 0);
	return NULL;
}

void shm_release(struct shm_map *m, unsigned r)
{
	if (r < SHM_MAX_READERS)
		atomic_store_explicit(&m->region->readers[r].announced, 0, memory_order_release);
}
