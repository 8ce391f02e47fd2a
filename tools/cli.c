/*
 * tools/cli.c — the clock and the progress line shared by the omendb
 * command-line program's commands (see tools/cli.h).
 *
 * The progress line is drawn on stderr, and only when stderr is a
 * terminal: a command whose output is piped or redirected, or that runs
 * under a test harness, stays quiet.  It is redrawn in place ("\r" then
 * erase-to-end-of-line) at most every 0.1 s, so calling
 * cli_progress_update once per record costs a clock read and nothing
 * more.  Single-threaded: one cli_progress belongs to one thread.
 */
#include "tools/cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define CLI_PROGRESS_INTERVAL 0.1 /* seconds between redraws */
#define CLI_PROGRESS_BAR 20       /* cells of the bar when the total is known */

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* n with a k/M/G suffix in buf ("1.23M"); plain below 10,000. */
static void cli_human(char *buf, size_t cap, double n)
{
	if (n < 1e4)
		snprintf(buf, cap, "%.0f", n);
	else if (n < 1e6)
		snprintf(buf, cap, "%.1fk", n / 1e3);
	else if (n < 1e9)
		snprintf(buf, cap, "%.2fM", n / 1e6);
	else
		snprintf(buf, cap, "%.2fG", n / 1e9);
}

static void cli_progress_draw(cli_progress *p, double now)
{
	double secs = now - p->start;
	double rate = secs > 0 ? (double)p->done / secs : 0;
	char done[32], total[32], rt[32], bar[CLI_PROGRESS_BAR + 1];

	cli_human(done, sizeof(done), (double)p->done);
	cli_human(rt, sizeof(rt), rate);
	if (p->total == 0) {
		fprintf(stderr, "\r%s  %s  %s/s  %.1f s\033[K", p->label, done, rt, secs);
	} else {
		uint64_t shown = p->done < p->total ? p->done : p->total;
		double frac = (double)shown / (double)p->total;
		unsigned cells = (unsigned)(frac * CLI_PROGRESS_BAR);
		char eta[32];

		for (unsigned i = 0; i < CLI_PROGRESS_BAR; i++)
			bar[i] = i < cells ? '#' : '.';
		bar[CLI_PROGRESS_BAR] = '\0';
		cli_human(total, sizeof(total), (double)p->total);
		if (shown >= p->total) {
			snprintf(eta, sizeof(eta), "%.1f s", secs);
		} else if (rate > 0) {
			uint64_t left = (uint64_t)((double)(p->total - shown) / rate + 0.5);
			snprintf(eta, sizeof(eta), "ETA %" PRIu64 ":%02u", left / 60, (unsigned)(left % 60));
		} else {
			snprintf(eta, sizeof(eta), "ETA ?");
		}
		fprintf(stderr, "\r%s [%s] %3.0f%%  %s/%s  %s/s  %s\033[K", p->label, bar,
			frac * 100, done, total, rt, eta);
	}
	fflush(stderr);
	p->last_draw = now;
}

void cli_progress_start(cli_progress *p, const char *label, uint64_t total)
{
	p->label = label;
	p->total = total;
	p->done = 0;
	p->start = cli_now();
	p->last_draw = p->start; /* last_draw > start: something was drawn */
	p->tty = isatty(STDERR_FILENO) == 1;
}

void cli_progress_update(cli_progress *p, uint64_t done)
{
	double now;

	p->done = done;
	if (!p->tty)
		return;
	now = cli_now();
	if (now - p->last_draw >= CLI_PROGRESS_INTERVAL)
		cli_progress_draw(p, now);
}

/* Draw the final state and end the line, if a line was started; a job
 * that finished before the first redraw leaves the terminal untouched. */
void cli_progress_finish(cli_progress *p)
{
	if (!p->tty || p->last_draw <= p->start)
		return;
	cli_progress_draw(p, cli_now());
	fputc('\n', stderr);
	fflush(stderr);
}
