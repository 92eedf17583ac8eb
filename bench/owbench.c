/* ownwatch benchmark helper (see bench/run.py, issue 6).
 *
 *   owbench run OP DIR N [--as UID:GID] [--owner UID:GID] [--prefill K]
 *       A micro storm of N iterations of OP in DIR. Setup and cleanup run as the owner (so that
 *       ownwatch, watching DIR for its owner, sees nothing of them); only the loop runs as --as
 *       (default: the caller, root), after K untimed iterations. Prints one line:
 *           ns=<ns of the timed loop> iters=<N> events=<offending ops in it> prefill=<in K>
 *       OP: create mkdir rename chmod chown unlink openw ropen getppid, and storm (issue 14:
 *       create+write, rename, chmod, unlink, mkdir, rmdir: 6 offending ops an iteration);
 *       tarlike (what tar -x does with each file: create+write, fchown, fchmod, in x/y/z)
 *       and tardeep (the same in linux-6.1/drivers/net/ethernet/intel/e1000e)
 *
 *   owbench tail OUT LAT CTR
 *       Reads ownwatch's JSON lines from stdin in large chunks. Each line goes to OUT; for each
 *       event line, (CLOCK_REALTIME at the read that returned it) - (its "time" field, the
 *       kernel's boot-clock timestamp that ownwatch converts to wall-clock) goes to LAT as an
 *       int64 ns (INT64_MIN for {"op":"lost"} lines). CTR, mmap-ed, holds three u64 counters
 *       updated after each chunk is written: lines, sum of in-band lost counts, lost lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "owbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uid_t own_uid, as_uid;
static gid_t own_gid, as_gid;

/* Switch identity, keeping saved uid/gid 0 so that root can be taken back. */
static void become(uid_t u, gid_t g)
{
	if (geteuid() != 0 && setresuid(0, 0, 0))
		die("setresuid(0)");
	if (setresgid(g, g, 0))
		die("setresgid");
	if (setresuid(u, u, 0))
		die("setresuid");
}

static void parse_ids(const char *s, uid_t *u, gid_t *g)
{
	char *end;
	*u = strtoul(s, &end, 10);
	*g = *end == ':' ? strtoul(end + 1, NULL, 10) : *u;
}

/* One open(2) and its close; dies naming `what` if the open fails. */
static void open_close(const char *name, int flags, const char *what)
{
	int fd = open(name, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		die(what);
	close(fd);
}

static void touch(const char *name)
{
	open_close(name, O_CREAT | O_WRONLY, name);
}

static void unlink_quiet(const char *name)
{
	unlink(name);
}

/* tardeep's directory, as in linux-source, and its levels */
#define DEEP "linux-6.1/drivers/net/ethernet/intel/e1000e"
#define DEEP_LEVELS 6

/* The first `level` + 1 names of DEEP. */
static const char *deep_dir(int level)
{
	static char d[sizeof DEEP];
	int n = 0, slash = 0;

	while (DEEP[n] && !(DEEP[n] == '/' && slash++ == level))
		n++;
	memcpy(d, DEEP, n);
	d[n] = 0;
	return d;
}

/* fn(name) for the names fmt gives 0 .. count-1 ("u0", "u1", ...). */
static void numbered(const char *fmt, long count, void (*fn)(const char *))
{
	char name[128];
	for (long i = 0; i < count; i++) {
		snprintf(name, sizeof name, fmt, i);
		fn(name);
	}
}

/* What tar -x does with each file: create, write, fchown, fchmod through one fd (its
 * utimensat left out: not an op), for the files fmt names from .. to-1. */
static void tar_files(const char *fmt, long from, long to)
{
	char name[128];

	for (long i = from; i < to; i++) {
		snprintf(name, sizeof name, fmt, i);
		int fd = open(name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, "x", 1) != 1 || fchown(fd, own_uid, own_gid) ||
		    fchmod(fd, 0644))
			die(fmt);
		close(fd);
	}
}

/* Iterations [from, to) of OP; returns the offending ops they perform per iteration. */
static long ops(const char *op, long from, long to)
{
	char name[128];
	long per = 1;
	if (!strcmp(op, "create")) {
		for (long i = from; i < to; i++) {
			snprintf(name, sizeof name, "c%ld", i);
			open_close(name, O_CREAT | O_EXCL | O_WRONLY, "create");
		}
	} else if (!strcmp(op, "mkdir")) {
		for (long i = from; i < to; i++)
			if (mkdir("d", 0755) || rmdir("d"))
				die("mkdir/rmdir");
		per = 2;
	} else if (!strcmp(op, "rename")) {
		for (long i = from; i < to; i++)
			if (i & 1 ? rename("r1", "r0") : rename("r0", "r1"))
				die("rename");
	} else if (!strcmp(op, "chmod")) {
		for (long i = from; i < to; i++)
			if (chmod("f", i & 1 ? 0644 : 0600))
				die("chmod");
	} else if (!strcmp(op, "chown")) {
		/* to the owner, which every caller may do: what a root service "fixing" a file does */
		for (long i = from; i < to; i++)
			if (chown("f", own_uid, own_gid))
				die("chown");
	} else if (!strcmp(op, "unlink")) {
		for (long i = from; i < to; i++) {
			snprintf(name, sizeof name, "u%ld", i);
			if (unlink(name))
				die("unlink");
		}
	} else if (!strcmp(op, "storm")) {
		/* issue 14's mixed storm: create+write, rename, chmod, unlink, mkdir, rmdir */
		for (long i = from; i < to; i++) {
			int fd = open("s0", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
			if (fd < 0 || write(fd, "x", 1) != 1)
				die("storm: create+write");
			close(fd);
			if (rename("s0", "s1") || chmod("s1", 0600) || unlink("s1") ||
			    mkdir("sd", 0755) || rmdir("sd"))
				die("storm");
		}
		per = 6;
	} else if (!strcmp(op, "tarlike")) {
		/* what tar -x does with each file as root, three levels down */
		tar_files("x/y/z/t%ld", from, to);
		per = 3;
	} else if (!strcmp(op, "tardeep")) {
		/* the same, six levels down with names of the lengths a source tree has: what
		 * tar -x of linux-source does with each file of a directory */
		tar_files(DEEP "/netdev_%ld.c", from, to);
		per = 3;
	} else if (!strcmp(op, "openw")) {
		for (long i = from; i < to; i++)
			open_close("f", O_WRONLY, "openw");
	} else if (!strcmp(op, "ropen")) {
		for (long i = from; i < to; i++)
			open_close("f", O_RDONLY, "ropen");
		per = 0;
	} else if (!strcmp(op, "getppid")) {
		for (long i = from; i < to; i++)
			syscall(SYS_getppid);
		per = 0;
	} else {
		fprintf(stderr, "owbench: unknown op %s\n", op);
		exit(2);
	}
	return per;
}

static int run(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: owbench run OP DIR N [--as UID:GID] [--owner UID:GID] "
				"[--prefill K]\n");
		return 2;
	}
	const char *op = argv[2], *dir = argv[3];
	long n = atol(argv[4]), k = 0;
	as_uid = getuid();
	as_gid = getgid();
	own_uid = as_uid;
	own_gid = as_gid;
	for (int i = 5; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--as"))
			parse_ids(argv[i + 1], &as_uid, &as_gid);
		else if (!strcmp(argv[i], "--owner"))
			parse_ids(argv[i + 1], &own_uid, &own_gid);
		else if (!strcmp(argv[i], "--prefill"))
			k = atol(argv[i + 1]);
	}
	if (geteuid() == 0 && setgroups(0, NULL))
		die("setgroups");
	if (chdir(dir))
		die(dir);
	int root = geteuid() == 0;

	/* setup, as the owner */
	if (root)
		become(own_uid, own_gid);
	if (!strcmp(op, "unlink"))
		numbered("u%ld", k + n, touch);
	else if (!strcmp(op, "rename"))
		touch("r0");
	else if (!strcmp(op, "chmod") || !strcmp(op, "chown") || !strcmp(op, "openw") ||
		 !strcmp(op, "ropen"))
		touch("f");
	else if (!strcmp(op, "tarlike") && (mkdir("x", 0755) || mkdir("x/y", 0755) ||
					   mkdir("x/y/z", 0755)))
		die("tarlike: mkdir");
	else if (!strcmp(op, "tardeep"))
		for (int i = 0; i < DEEP_LEVELS; i++)
			if (mkdir(deep_dir(i), 0755))
				die("tardeep: mkdir");
	if (root)
		become(as_uid, as_gid);

	/* untimed iterations first (auditd: fill its queue, so that the timed loop runs in the
	 * steady state), then the timed loop */
	ops(op, 0, k);
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	long per = ops(op, k, k + n);
	uint64_t t1 = now_ns(CLOCK_MONOTONIC);

	/* cleanup, as the owner */
	if (root)
		become(own_uid, own_gid);
	if (!strcmp(op, "create"))
		numbered("c%ld", k + n, unlink_quiet);
	if (!strcmp(op, "tardeep")) {
		numbered(DEEP "/netdev_%ld.c", k + n, unlink_quiet);
		for (int i = DEEP_LEVELS - 1; i >= 0; i--)
			rmdir(deep_dir(i));
	}
	if (!strcmp(op, "tarlike")) {
		numbered("x/y/z/t%ld", k + n, unlink_quiet);
		rmdir("x/y/z");
		rmdir("x/y");
		rmdir("x");
	}
	unlink("r0");
	unlink("r1");
	unlink("f");
	printf("ns=%llu iters=%ld events=%ld prefill=%ld\n", (unsigned long long)(t1 - t0), n,
	       per * n, per * k);
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" -> ns since the epoch; 0 when malformed */
static int64_t days_from_civil(int y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int64_t parse_time(const char *s, const char *end)
{
	static char day[10];
	static int64_t day_ns;
	if (end - s < 30 || s[4] != '-' || s[10] != 'T' || s[19] != '.')
		return 0;
	if (memcmp(day, s, 10)) {
		memcpy(day, s, 10);
		day_ns = days_from_civil(atoi(s), atoi(s + 5), atoi(s + 8)) * 86400ll * 1000000000ll;
	}
	int64_t sec = ((s[11] - '0') * 10 + (s[12] - '0')) * 3600 +
		      ((s[14] - '0') * 10 + (s[15] - '0')) * 60 + (s[17] - '0') * 10 + (s[18] - '0');
	int64_t ns = 0;
	for (int i = 20; i < 29; i++)
		ns = ns * 10 + (s[i] - '0');
	return day_ns + sec * 1000000000ll + ns;
}

static void write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		p = (const char *)p + w;
		n -= w;
	}
}

static int tail(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: owbench tail OUT LAT CTR < lines\n");
		return 2;
	}
	int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int lat = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ctrfd = open(argv[4], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0 || lat < 0 || ctrfd < 0)
		die("open");
	if (ftruncate(ctrfd, 4096))
		die("ftruncate");
	volatile uint64_t *ctr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ctrfd, 0);
	if (ctr == MAP_FAILED)
		die("mmap");
	size_t cap = 4 << 20, have = 0;
	char *buf = malloc(cap);
	int64_t *lats = malloc(sizeof(int64_t) * (cap / 2));
	uint64_t lines = 0, lost = 0, lost_lines = 0;
	for (;;) {
		ssize_t r = read(0, buf + have, cap - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		int64_t now = (int64_t)now_ns(CLOCK_REALTIME);
		have += r;
		char *p = buf, *end = buf + have, *nl;
		size_t nlat = 0;
		while ((nl = memchr(p, '\n', end - p))) {
			lines++;
			if (nl - p > 40 && !memcmp(p, "{\"time\":\"", 9)) {
				const char *t = p + 9;
				char *lo = memmem(p, nl - p, "\"op\":\"lost\"", 11);
				if (lo) {
					char *c = memmem(p, nl - p, "\"count\":", 8);
					lost += c ? strtoull(c + 8, NULL, 10) : 0;
					lost_lines++;
					lats[nlat++] = INT64_MIN;
				} else {
					int64_t ts = parse_time(t, nl);
					lats[nlat++] = ts ? now - ts : INT64_MIN;
				}
			} else {
				lats[nlat++] = INT64_MIN;
			}
			p = nl + 1;
		}
		write_all(out, buf, p - buf);
		write_all(lat, lats, nlat * sizeof(int64_t));
		have = end - p;
		memmove(buf, p, have);
		if (have == cap) { /* a line longer than the buffer: pass it through */
			write_all(out, buf, have);
			have = 0;
		}
		ctr[1] = lost;
		ctr[2] = lost_lines;
		__atomic_store_n(&ctr[0], lines, __ATOMIC_RELEASE);
	}
	write_all(out, buf, have);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return run(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "tail"))
		return tail(argc, argv);
	fprintf(stderr, "usage: owbench run|tail ...\n");
	return 2;
}
