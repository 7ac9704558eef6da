/*
 * TCP ping-pong over 127.0.0.1 between two processes (blocking sockets, TCP_NODELAY): the
 * client writes REQ bytes, the server answers REP bytes. Prints, as JSON, the CPU µs per round
 * trip of each side (getrusage: user + system) and the round-trip time. Used by
 * scripts/floor-bench.ts as the machine's floor for one message exchange, with no runtime in
 * the way. Usage: pingpong ROUNDS REQ_BYTES REP_BYTES
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long cpu_us(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec * 1000000L + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1000000L + r.ru_stime.tv_usec;
}

static int read_full(int fd, char* buf, int n) {
  int got = 0;
  while (got < n) {
    int k = (int)read(fd, buf + got, (size_t)(n - got));
    if (k <= 0) return -1;
    got += k;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 4) { fprintf(stderr, "usage: pingpong ROUNDS REQ_BYTES REP_BYTES\n"); return 2; }
  int rounds = atoi(argv[1]), req = atoi(argv[2]), rep = atoi(argv[3]);
  int warm = rounds / 10;
  if (rounds < 10 || req < 1 || rep < 1 || req > 1 << 20 || rep > 1 << 20) { fprintf(stderr, "bad arguments\n"); return 2; }
  char* buf = calloc(1, (size_t)(req > rep ? req : rep));
  int one = 1;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001);
  socklen_t len = sizeof a;
  if (bind(ls, (struct sockaddr*)&a, sizeof a) != 0 || getsockname(ls, (struct sockaddr*)&a, &len) != 0 || listen(ls, 1) != 0) { perror("listen"); return 1; }
  int fds[2];
  if (pipe(fds) != 0) { perror("pipe"); return 1; }
  pid_t child = fork();
  if (child == 0) {
    int c = accept(ls, NULL, NULL);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    long c0 = 0;
    for (int i = 0; i < rounds; i++) {
      if (read_full(c, buf, req) != 0) _exit(1);
      if (i == warm) c0 = cpu_us();
      if (write(c, buf, (size_t)rep) != rep) _exit(1);
    }
    long used = cpu_us() - c0;
    if (write(fds[1], &used, sizeof used) != sizeof used) _exit(1);
    _exit(0);
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(s, (struct sockaddr*)&a, sizeof a) != 0) { perror("connect"); return 1; }
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timespec t0, t1;
  long c0 = 0;
  for (int i = 0; i < rounds; i++) {
    if (i == warm) { c0 = cpu_us(); clock_gettime(CLOCK_MONOTONIC, &t0); }
    if (write(s, buf, (size_t)req) != req) return 1;
    if (read_full(s, buf, rep) != 0) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long client = cpu_us() - c0;
  long server = 0;
  if (read(fds[0], &server, sizeof server) != sizeof server) return 1;
  waitpid(child, NULL, 0);
  double n = rounds - warm;
  double rtt = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1000.0 / n;
  printf("{\"clientCpuUs\":%.2f,\"serverCpuUs\":%.2f,\"rttUs\":%.2f}\n", client / n, server / n, rtt);
  return 0;
}
