/*
 * tools/cli.h — what the parts of the omendb command-line program share.
 * The program uses the public API only (<omendb.h>).
 *
 * Exit codes (conventional, sysexits-style where one fits):
 *   0  success
 *   1  the operation failed (a database error, a verification failure)
 *   2  bad usage (unknown command or option, bad argument)
 *   3  the key was not found (get)
 *   66 the database does not exist (EX_NOINPUT)
 *   74 an input/output error reading or writing a file (EX_IOERR)
 * Errors go to stderr as "omendb <command>: <message>".
 */
#ifndef OMEN_TOOLS_CLI_H
#define OMEN_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2
#define CLI_NOTFOUND 3
#define CLI_NOINPUT 66
#define CLI_IOERR 74

/*
 * A progress line on stderr: "label  done/total  rate/s  ETA", redrawn at
 * most ~10 times a second, only when stderr is a terminal (silent
 * otherwise).  total 0 = unknown (no percentage, no ETA).
 */
typedef struct cli_progress {
	const char *label;
	uint64_t total;
	uint64_t done;
	double start, last_draw;
	bool tty;
} cli_progress;

void cli_progress_start(cli_progress *p, const char *label, uint64_t total);
void cli_progress_update(cli_progress *p, uint64_t done);
void cli_progress_finish(cli_progress *p);

/* Seconds on a monotonic clock. */
double cli_now(void);

/* `omendb demo [options] [DIR]` (tools/demo.c): argv[0] is "demo". */
int cli_demo_main(int argc, char **argv);

#endif
