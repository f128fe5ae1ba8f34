/*
 * thp_churn SECONDS [MB [CALM [BURST]]] - split transparent huge pages until a deadline.
 *
 * Maps 2 MB-aligned anonymous regions with MADV_HUGEPAGE and, huge page by huge
 * page, touches each one so the kernel backs it with a huge page, then splits it:
 * punches a 4 KB hole in it, makes its second half read-only, or unmaps its
 * second half. Partially unmapped huge pages go on the kernel's deferred split
 * queue. Each round also punches one 4 KB hole at a random place of the region.
 * Loops until SECONDS have passed. MB (default 64) bounds the memory mapped at
 * once.
 *
 * The process puts itself in a memory cgroup that a child process, the squeezer,
 * squeezes with memory.high the way another job of a busy machine would: at moments
 * unrelated to the load's rounds. Writing memory.high reclaims at once, in the
 * writer, so the deferred split shrinker (deferred_split_scan) runs while the load
 * is in the middle of a round with its huge pages half split. For the first CALM
 * seconds (default 0) there is no limit: the queue fills and the shrinker stays
 * idle. Then, with BURST 0 (the default), memory.high stays at 7/8 of MB: steady
 * reclaim. With BURST > 0, memory.high drops to 3/4 of MB, deep enough to swap, for
 * BURST_LEN seconds at random moments BURST seconds apart on average (each second
 * starts one with probability 1/BURST), and is lifted in between.
 * Without cgroup2 it runs unconfined and says so.
 * Built static on the controller by farm (farm/soak/load.py) and copied to the host.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define HPAGE (2UL << 20)
#define PAGE 4096UL
#define CGROOT "/sys/fs/cgroup"
#define BURST_LEN 1

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif

static char cgroup_dir[64];

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Confine the load to a memory cgroup, without a limit until the squeezer sets one. */
static void enter_memcg(void)
{
	char path[128], value[32];

	if (access(CGROOT "/cgroup.controllers", F_OK) != 0) {
		mkdir(CGROOT, 0755);
		mount("cgroup2", CGROOT, "cgroup2", 0, NULL);
	}
	write_file(CGROOT "/cgroup.subtree_control", "+memory");
	snprintf(cgroup_dir, sizeof(cgroup_dir), CGROOT "/thp_churn.%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/memory.high", cgroup_dir);
	if (mkdir(cgroup_dir, 0755) != 0 || write_file(path, "max") != 0) {
		fprintf(stderr, "thp_churn: no memory cgroup (%s), running unconfined\n",
			strerror(errno));
		rmdir(cgroup_dir);
		cgroup_dir[0] = '\0';
		return;
	}
	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup_dir);
	snprintf(value, sizeof(value), "%d", (int)getpid());
	write_file(path, value);
}

/*
 * Linux turns THP off by default on machines with less than 512 MB, which is
 * what a small QEMU host has: a load about huge pages turns them back on.
 */
static void enable_thp(void)
{
	const char *path = "/sys/kernel/mm/transparent_hugepage/enabled";
	char mode[64] = "";
	FILE *f = fopen(path, "r");

	if (f) {
		if (!fgets(mode, sizeof(mode), f))
			mode[0] = '\0';
		fclose(f);
	}
	if (strstr(mode, "[never]") && write_file(path, "always") == 0)
		fprintf(stderr, "thp_churn: transparent huge pages were off, turned them on\n");
}

/* memory.high: 0 lifts the limit. */
static void set_high(size_t bytes)
{
	char path[128], value[32];

	if (!cgroup_dir[0])
		return;
	snprintf(path, sizeof(path), "%s/memory.high", cgroup_dir);
	if (bytes)
		snprintf(value, sizeof(value), "%zu", bytes);
	else
		snprintf(value, sizeof(value), "max");
	write_file(path, value);
}

static void leave_memcg(void)
{
	char value[32];

	if (!cgroup_dir[0])
		return;
	snprintf(value, sizeof(value), "%d", (int)getpid());
	write_file(CGROOT "/cgroup.procs", value);
	rmdir(cgroup_dir);
}

static uint64_t rng_state;

static uint64_t next_random(void)
{
	/* xorshift64: the load only needs variety, not quality. */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* The squeezer (see the top); -1 when it could not start: the load runs unsqueezed. */
static pid_t start_squeezer(size_t len, long calm, long burst)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	rng_state ^= (uint64_t)getpid() << 32;
	sleep((unsigned int)calm);
	if (!burst) {
		set_high(len / 8 * 7);
		_exit(0);
	}
	for (;;) {
		sleep(1);
		if (next_random() % (uint64_t)burst)
			continue;
		set_high(len / 4 * 3);
		sleep(BURST_LEN);
		set_high(0);
	}
}

static void *map_aligned(size_t len)
{
	/* Over-map by one huge page and trim, so the region starts 2 MB aligned. */
	size_t span = len + HPAGE;
	char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uintptr_t start = ((uintptr_t)raw + HPAGE - 1) & ~(HPAGE - 1);
	if (start > (uintptr_t)raw)
		munmap(raw, start - (uintptr_t)raw);
	uintptr_t end = start + len;
	if ((uintptr_t)raw + span > end)
		munmap((void *)end, (uintptr_t)raw + span - end);
	return (void *)start;
}

static void churn(size_t len, unsigned long round)
{
	char *p = map_aligned(len);
	if (!p) {
		perror("thp_churn: mmap");
		sleep(1);
		return;
	}
	/* One more 4 KB hole per round, anywhere in the region. */
	size_t hole = next_random() % (len / PAGE) * PAGE;

	madvise(p, len, MADV_HUGEPAGE);
	for (size_t off = 0; off < len; off += HPAGE) {
		char *huge = p + off;

		for (size_t page = 0; page < HPAGE; page += PAGE)
			huge[page] = (char)(page + round);
		/* Split each huge page a different way. */
		switch ((off / HPAGE + round) % 3) {
		case 0:
			munmap(huge + PAGE, PAGE);
			break;
		case 1:
			mprotect(huge + HPAGE / 2, HPAGE / 2, PROT_READ);
			break;
		default:
			munmap(huge + HPAGE / 2, HPAGE / 2);
			break;
		}
		if (hole / HPAGE == off / HPAGE)
			munmap(p + hole, PAGE);
	}
	munmap(p, len);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 5) {
		fprintf(stderr, "usage: thp_churn SECONDS [MB [CALM [BURST]]]\n");
		return 2;
	}
	char *end;
	long seconds = strtol(argv[1], &end, 10);
	long mb = argc > 2 ? strtol(argv[2], NULL, 10) : 64;
	long calm = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
	long burst = argc > 4 ? strtol(argv[4], NULL, 10) : 0;
	if (*end || seconds <= 0 || mb < 2 || calm < 0 || burst < 0) {
		fprintf(stderr, "thp_churn: SECONDS must be > 0, MB >= 2, CALM and BURST >= 0\n");
		return 2;
	}
	size_t len = ((size_t)mb << 20) & ~(HPAGE - 1);
	time_t deadline = time(NULL) + seconds;
	unsigned long round = 0;
	pid_t squeezer = -1;

	rng_state = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9e3779b97f4a7c15ULL;
	enable_thp();
	enter_memcg();
	if (cgroup_dir[0])
		squeezer = start_squeezer(len, calm, burst);
	while (time(NULL) < deadline)
		churn(len, round++);
	if (squeezer > 0) {
		kill(squeezer, SIGKILL);
		waitpid(squeezer, NULL, 0);
	}
	leave_memcg();
	printf("thp_churn: %lu rounds of %ld MB\n", round, mb);
	return 0;
}
