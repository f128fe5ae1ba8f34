/*
 * thp_churn SECONDS [MB] - split transparent huge pages until a deadline.
 *
 * Maps 2 MB-aligned anonymous regions with MADV_HUGEPAGE, touches them so the
 * kernel backs them with huge pages, then partially munmaps and mprotects them so
 * every huge page is split (and queued for deferred split). Loops until SECONDS
 * have passed. MB (default 64) bounds the memory mapped at once.
 * Built static on the controller by farm (farm/soak/load.py) and copied to the host.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define HPAGE (2UL << 20)

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif

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
	madvise(p, len, MADV_HUGEPAGE);
	for (size_t off = 0; off < len; off += 4096)
		p[off] = (char)(off + round);
	/* Split each huge page a different way: unmap a 4 KB hole, change the
	 * protection of its second half, or unmap its tail. */
	for (size_t off = 0; off < len; off += HPAGE) {
		switch ((off / HPAGE + round) % 3) {
		case 0:
			munmap(p + off + 4096, 4096);
			break;
		case 1:
			mprotect(p + off + HPAGE / 2, HPAGE / 2, PROT_READ);
			break;
		default:
			munmap(p + off + HPAGE / 2, HPAGE / 2);
			break;
		}
	}
	/* Touch what is left so split pages are used again, then drop it all. */
	for (size_t off = 0; off < len; off += HPAGE)
		if ((off / HPAGE + round) % 3 == 0)
			p[off] ^= 1;
	munmap(p, len);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: thp_churn SECONDS [MB]\n");
		return 2;
	}
	char *end;
	long seconds = strtol(argv[1], &end, 10);
	long mb = argc == 3 ? strtol(argv[2], NULL, 10) : 64;
	if (*end || seconds <= 0 || mb < 2) {
		fprintf(stderr, "thp_churn: SECONDS must be > 0 and MB >= 2\n");
		return 2;
	}
	size_t len = ((size_t)mb << 20) & ~(HPAGE - 1);
	time_t deadline = time(NULL) + seconds;
	unsigned long round = 0;
	while (time(NULL) < deadline)
		churn(len, round++);
	printf("thp_churn: %lu rounds of %ld MB\n", round, mb);
	return 0;
}
