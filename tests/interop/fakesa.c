/*
 * LD_PRELOAD shim for the interop tests: lets libreswan's pluto finish IKEv1 Quick Mode on a
 * kernel whose XFRM netlink works but which has no ESP/AH (SA adds fail with errno 93).
 *
 * On NETLINK_XFRM sockets, requests that add or update an SA of protocol ESP (50), AH (51) or
 * IPComp (108) never reach the kernel: the shim keeps the SA in a table and queues the answer
 * the kernel would give (an ack), which the next receive call on that socket returns; deleting
 * or querying such a kept SA is answered the same way (an ack, the SA).  All other messages
 * (SPI allocation and the larval SAs it makes, policies, flushes) go to the kernel.  No packet is ever processed: only the IKE side sees its SAs installed.
 *
 * KI_FAKESA_LOG=/path appends one line per answered request (pluto closes stderr) and, per SA
 * added, its algorithms and keys (test keys only), so that the keys a daemon hands the kernel
 * can be compared with the peer's.  A queued answer makes select()/poll() report the socket
 * readable (Python's XFRM backend waits with select() before it receives).
 * Built by tests/interop/harness/pluto.py:  gcc -O2 -shared -fPIC -o fakesa.so fakesa.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>

#define KI_FDS 1024
#define KI_SAS 512

struct ki_pending {
    size_t len;
    unsigned char data[sizeof(struct nlmsghdr) + sizeof(struct xfrm_usersa_info) + 64];
};

static unsigned char ki_xfrm_fd[KI_FDS];
static struct ki_pending ki_queue[KI_FDS];
static struct xfrm_usersa_info ki_table[KI_SAS];
static unsigned char ki_used[KI_SAS];

static void ki_log(const char *what, unsigned proto, unsigned spi)
{
    const char *path = getenv("KI_FAKESA_LOG");
    if (path == NULL)
        return;
    FILE *f = fopen(path, "a");
    if (f == NULL)
        return;
    fprintf(f, "fakesa %s proto %u spi %08x\n", what, proto, spi);
    fclose(f);
}

/* one line per SA add with its algorithms and keys (test keys only), for the harness to compare
 * with the peer's key log: "fakesa KEYS proto P spi XXXXXXXX enc NAME HEX auth NAME HEX", plus
 * "encap TYPE SPORT DPORT" for a UDP-encapsulated SA (NAT-T) */
static void ki_log_keys(const struct nlmsghdr *req, const struct xfrm_usersa_info *sa)
{
    const char *path = getenv("KI_FAKESA_LOG");
    if (path == NULL)
        return;
    FILE *f = fopen(path, "a");
    if (f == NULL)
        return;
    fprintf(f, "fakesa KEYS proto %u spi %08x", sa->id.proto, ntohl(sa->id.spi));
    const unsigned char *end = (const unsigned char *)req + req->nlmsg_len;
    const unsigned char *p = (const unsigned char *)NLMSG_DATA(req) + NLMSG_ALIGN(sizeof(*sa));
    while (p + sizeof(struct nlattr) <= end) {
        const struct nlattr *a = (const struct nlattr *)p;
        if (a->nla_len < sizeof(*a) || p + a->nla_len > end)
            break;
        const unsigned char *data = p + NLA_HDRLEN;
        size_t dlen = a->nla_len - NLA_HDRLEN;
        const char *what = NULL;
        size_t head = 0;
        unsigned bits = 0;
        switch (a->nla_type & NLA_TYPE_MASK) {
        case XFRMA_ALG_CRYPT:
            what = "enc", head = sizeof(struct xfrm_algo);
            break;
        case XFRMA_ALG_AUTH:
            what = "auth", head = sizeof(struct xfrm_algo);
            break;
        case XFRMA_ALG_AUTH_TRUNC:
            what = "auth", head = sizeof(struct xfrm_algo_auth);
            break;
        case XFRMA_ALG_AEAD:
            what = "aead", head = sizeof(struct xfrm_algo_aead);
            break;
        default:
            break;
        }
        if ((a->nla_type & NLA_TYPE_MASK) == XFRMA_ENCAP && dlen >= sizeof(struct xfrm_encap_tmpl)) {
            const struct xfrm_encap_tmpl *e = (const struct xfrm_encap_tmpl *)data;
            fprintf(f, " encap %u %u %u", e->encap_type, ntohs(e->encap_sport),
                    ntohs(e->encap_dport));
        }
        if (what != NULL && dlen >= head) {
            memcpy(&bits, data + 64, sizeof(bits)); /* alg_key_len follows alg_name[64] */
            size_t n = (bits + 7) / 8;
            if (head + n > dlen)
                n = dlen - head;
            fprintf(f, " %s %.64s ", what, (const char *)data);
            for (size_t i = 0; i < n; i++)
                fprintf(f, "%02x", data[head + i]);
        }
        p += NLA_ALIGN(a->nla_len);
    }
    fprintf(f, "\n");
    fclose(f);
}

static int ki_ours(unsigned proto)
{
    return proto == IPPROTO_ESP || proto == IPPROTO_AH || proto == IPPROTO_COMP;
}

static int ki_lookup(const xfrm_address_t *daddr, unsigned spi, unsigned proto)
{
    for (int i = 0; i < KI_SAS; i++) {
        if (ki_used[i] && ki_table[i].id.spi == spi && ki_table[i].id.proto == proto &&
            memcmp(&ki_table[i].id.daddr, daddr, sizeof(*daddr)) == 0)
            return i;
    }
    return -1;
}

static unsigned ki_portid(int fd)
{
    struct sockaddr_nl nl;
    socklen_t len = sizeof(nl);
    memset(&nl, 0, sizeof(nl));
    if (getsockname(fd, (struct sockaddr *)&nl, &len) != 0)
        return 0;
    return nl.nl_pid;
}

/* queue NLMSG_ERROR carrying `err` (0 = ack) for request `req` on `fd` */
static void ki_queue_error(int fd, const struct nlmsghdr *req, int err)
{
    struct ki_pending *p = &ki_queue[fd];
    struct nlmsghdr *h = (struct nlmsghdr *)p->data;
    struct nlmsgerr *e = (struct nlmsgerr *)NLMSG_DATA(h);
    memset(p->data, 0, sizeof(p->data));
    h->nlmsg_len = NLMSG_LENGTH(sizeof(*e));
    h->nlmsg_type = NLMSG_ERROR;
    h->nlmsg_seq = req->nlmsg_seq;
    h->nlmsg_pid = ki_portid(fd);
    e->error = err;
    e->msg = *req;
    p->len = h->nlmsg_len;
}

/* the request if the shim answers it itself (returns 1), else 0 */
static int ki_answer(int fd, const void *buf, size_t len)
{
    const struct nlmsghdr *req = buf;
    if (fd < 0 || fd >= KI_FDS || !ki_xfrm_fd[fd] || len < sizeof(*req) ||
        req->nlmsg_len > len)
        return 0;
    switch (req->nlmsg_type) {
    case XFRM_MSG_NEWSA:
    case XFRM_MSG_UPDSA: {
        const struct xfrm_usersa_info *sa = NLMSG_DATA(req);
        if (req->nlmsg_len < NLMSG_LENGTH(sizeof(*sa)) || !ki_ours(sa->id.proto))
            return 0;
        int i = ki_lookup(&sa->id.daddr, sa->id.spi, sa->id.proto);
        for (int j = 0; i < 0 && j < KI_SAS; j++)
            if (!ki_used[j])
                i = j;
        if (i < 0) {
            ki_queue_error(fd, req, -ENOSPC);
            return 1;
        }
        ki_table[i] = *sa;
        memset(&ki_table[i].curlft, 0, sizeof(ki_table[i].curlft));
        memset(&ki_table[i].stats, 0, sizeof(ki_table[i].stats));
        ki_used[i] = 1;
        ki_log(req->nlmsg_type == XFRM_MSG_NEWSA ? "NEWSA" : "UPDSA", sa->id.proto,
               ntohl(sa->id.spi));
        ki_log_keys(req, sa);
        ki_queue_error(fd, req, 0);
        return 1;
    }
    case XFRM_MSG_DELSA:
    case XFRM_MSG_GETSA: {
        const struct xfrm_usersa_id *id = NLMSG_DATA(req);
        if (req->nlmsg_len < NLMSG_LENGTH(sizeof(*id)) || !ki_ours(id->proto))
            return 0;
        int i = ki_lookup(&id->daddr, id->spi, id->proto);
        if (i < 0)
            return 0; /* not one of ours (e.g. a larval SA from ALLOCSPI): the kernel's */
        if (req->nlmsg_type == XFRM_MSG_DELSA) {
            ki_used[i] = 0;
            ki_log("DELSA", id->proto, ntohl(id->spi));
            ki_queue_error(fd, req, 0);
            return 1;
        }
        struct ki_pending *p = &ki_queue[fd];
        struct nlmsghdr *h = (struct nlmsghdr *)p->data;
        memset(p->data, 0, sizeof(p->data));
        h->nlmsg_len = NLMSG_LENGTH(sizeof(struct xfrm_usersa_info));
        h->nlmsg_type = XFRM_MSG_NEWSA;
        h->nlmsg_seq = req->nlmsg_seq;
        h->nlmsg_pid = ki_portid(fd);
        memcpy(NLMSG_DATA(h), &ki_table[i], sizeof(ki_table[i]));
        p->len = h->nlmsg_len;
        ki_log("GETSA", id->proto, ntohl(id->spi));
        return 1;
    }
    default:
        return 0;
    }
}

/* hand a queued answer to a receive call; -1 when none is queued for fd */
static ssize_t ki_take(int fd, void *buf, size_t len, int flags)
{
    if (fd < 0 || fd >= KI_FDS || ki_queue[fd].len == 0)
        return -1;
    size_t n = ki_queue[fd].len < len ? ki_queue[fd].len : len;
    memcpy(buf, ki_queue[fd].data, n);
    if (!(flags & MSG_PEEK))
        ki_queue[fd].len = 0;
    return (flags & MSG_TRUNC) ? (ssize_t)ki_queue[fd].len : (ssize_t)n;
}

static int ki_queued(int fd)
{
    return fd >= 0 && fd < KI_FDS && ki_queue[fd].len != 0;
}

#define KI_REAL(ret, name, ...) \
    static ret (*real)(__VA_ARGS__); \
    if (real == NULL) \
        real = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

/* a queued answer makes its socket readable at once (Python waits with select() before recv) */
int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *timeout)
{
    KI_REAL(int, "select", int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int ready = 0;
    for (int fd = 0; rd != NULL && fd < nfds && fd < KI_FDS; fd++)
        if (FD_ISSET(fd, rd) && ki_queued(fd))
            ready++;
    if (ready == 0)
        return real(nfds, rd, wr, ex, timeout);
    for (int fd = 0; fd < nfds; fd++)
        if (FD_ISSET(fd, rd) && !ki_queued(fd))
            FD_CLR(fd, rd);
    if (wr != NULL)
        FD_ZERO(wr);
    if (ex != NULL)
        FD_ZERO(ex);
    return ready;
}

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    KI_REAL(int, "poll", struct pollfd *, nfds_t, int);
    int ready = 0;
    for (nfds_t i = 0; i < n; i++) {
        fds[i].revents = (fds[i].events & POLLIN) && ki_queued(fds[i].fd) ? POLLIN : 0;
        ready += fds[i].revents != 0;
    }
    return ready ? ready : real(fds, n, timeout);
}

int socket(int domain, int type, int protocol)
{
    KI_REAL(int, "socket", int, int, int);
    int fd = real(domain, type, protocol);
    if (fd >= 0 && fd < KI_FDS) {
        ki_xfrm_fd[fd] = domain == AF_NETLINK && protocol == NETLINK_XFRM;
        ki_queue[fd].len = 0;
    }
    return fd;
}

int close(int fd)
{
    KI_REAL(int, "close", int);
    if (fd >= 0 && fd < KI_FDS) {
        ki_xfrm_fd[fd] = 0;
        ki_queue[fd].len = 0;
    }
    return real(fd);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    KI_REAL(ssize_t, "write", int, const void *, size_t);
    if (ki_answer(fd, buf, len))
        return (ssize_t)len;
    return real(fd, buf, len);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    KI_REAL(ssize_t, "send", int, const void *, size_t, int);
    if (ki_answer(fd, buf, len))
        return (ssize_t)len;
    return real(fd, buf, len, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
               socklen_t tolen)
{
    KI_REAL(ssize_t, "sendto", int, const void *, size_t, int, const struct sockaddr *,
            socklen_t);
    if (ki_answer(fd, buf, len))
        return (ssize_t)len;
    return real(fd, buf, len, flags, to, tolen);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    KI_REAL(ssize_t, "sendmsg", int, const struct msghdr *, int);
    if (msg != NULL && msg->msg_iovlen == 1 &&
        ki_answer(fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len))
        return (ssize_t)msg->msg_iov[0].iov_len;
    return real(fd, msg, flags);
}

ssize_t read(int fd, void *buf, size_t len)
{
    KI_REAL(ssize_t, "read", int, void *, size_t);
    ssize_t n = ki_take(fd, buf, len, 0);
    return n >= 0 ? n : real(fd, buf, len);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    KI_REAL(ssize_t, "recv", int, void *, size_t, int);
    ssize_t n = ki_take(fd, buf, len, flags);
    return n >= 0 ? n : real(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
                 socklen_t *fromlen)
{
    KI_REAL(ssize_t, "recvfrom", int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t n = ki_take(fd, buf, len, flags);
    if (n < 0)
        return real(fd, buf, len, flags, from, fromlen);
    if (from != NULL && fromlen != NULL && *fromlen >= sizeof(struct sockaddr_nl)) {
        struct sockaddr_nl *nl = (struct sockaddr_nl *)from;
        memset(nl, 0, sizeof(*nl));
        nl->nl_family = AF_NETLINK;
        *fromlen = sizeof(*nl);
    }
    return n;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    KI_REAL(ssize_t, "recvmsg", int, struct msghdr *, int);
    if (msg != NULL && msg->msg_iovlen >= 1) {
        ssize_t n = ki_take(fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len, flags);
        if (n >= 0) {
            if (msg->msg_name != NULL && msg->msg_namelen >= sizeof(struct sockaddr_nl)) {
                struct sockaddr_nl *nl = msg->msg_name;
                memset(nl, 0, sizeof(*nl));
                nl->nl_family = AF_NETLINK;
                msg->msg_namelen = sizeof(*nl);
            }
            msg->msg_controllen = 0;
            msg->msg_flags = 0;
            return n;
        }
    }
    return real(fd, msg, flags);
}
