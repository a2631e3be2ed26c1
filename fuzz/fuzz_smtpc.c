/* fuzz_smtpc.c - arbitrary server bytes into an SMTP client session.
 *
 * Input: byte 0 picks the policies (TLS off/opportunistic/required, AUTH
 * none/if offered/required, how missing TLS or AUTH is classed), bytes 1-3
 * seed the choices (where the stream is cut, how each event is answered,
 * which messages are sent, stray answers at the wrong time); the rest is
 * what the server sends. Besides the sanitizers, it checks the engine's
 * promises: every CR on the wire is followed by LF and every LF follows a
 * CR; outside message content the output is whole printable command lines;
 * a finished message leaves no recipient undecided; every failure has a
 * class, a status of that class and a sentence. Byte 3 also picks the
 * mechanisms (NTLM, PLAIN, LOGIN) and whether there is a user and password:
 * the password, in clear or base64 (alone or in PLAIN's response), never
 * reaches the transcript, and never the wire before TLS is up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "smtpc.h"

#define FZ_USER     "fuzz-user"
#define FZ_PASSWORD "fuzz-password"

/* The password as it could leak: itself, base64 alone (LOGIN), and in
 * PLAIN's response. Filled once. */
static char leak[3][64];

static void leaks_init(void)
{
    static const char plain[] = "\0" FZ_USER "\0" FZ_PASSWORD;
    if (leak[0][0])
        return;
    strcpy(leak[0], FZ_PASSWORD);
    if (base64_encode((const unsigned char *)FZ_PASSWORD, strlen(FZ_PASSWORD), leak[1],
                      sizeof leak[1]) < 0 ||
        base64_encode((const unsigned char *)plain, sizeof plain - 1, leak[2], sizeof leak[2]) < 0)
        abort();
}

static int holds_password(const void *p, size_t n)
{
    const char *h = p;
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(leak[i]);
        for (size_t j = 0; j + k <= n; j++)
            if (memcmp(h + j, leak[i], k) == 0)
                return 1;
    }
    return 0;
}

static const char *const RCPTS[] = {
    "a@example.net", "<b@example.net>", "not an address", "c@[192.0.2.1]", "d@example.org",
};

static const char *const BODIES[] = {
    "Subject: x\r\n\r\nhello\r\n",
    ".\r\n..\r\n.x\n.\r.",
    "",
    "no final line end",
    "caf\xc3\xa9\r\n\r\n.\r\n",
};

struct fz {
    struct smtpc *s;
    uint32_t rng;
    int prev_cr;            /* the last octet on the wire was CR */
    unsigned messages;
};

static unsigned next(struct fz *f)
{
    f->rng = f->rng * 1664525u + 1013904223u;
    return f->rng >> 16;
}

/* Lines given to the transcript never hold a line end; sent ones are printable. */
static void transcript(void *arg, enum smtpc_dir dir, const char *line, size_t len)
{
    (void)arg;
    /* what we sent (the server may echo anything back) */
    if (dir != SMTPC_RECEIVED && dir != SMTPC_RECEIVED_TOKEN && holds_password(line, len))
        abort();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == '\r' || c == '\n')
            abort();
        if ((dir == SMTPC_SENT || dir == SMTPC_SENT_TOKEN) && (c < 32 || c > 126))
            abort();
    }
}

static void check_result(const struct smtpc_result *r)
{
    if (r->outcome == SMTPC_PENDING)
        abort();
    if (r->outcome != SMTPC_OK && r->why[0] == '\0')
        abort();
    char want = r->outcome == SMTPC_OK ? '2' : r->outcome == SMTPC_TRANSIENT ? '4' : '5';
    if (r->status[0] != want || r->status[1] != '.')
        abort();
    if (strlen(r->why) > SMTPC_WHY_MAX || strlen(r->reply.text) > SMTPC_REPLY_TEXT_MAX)
        abort();
}

static void drain(struct fz *f)
{
    size_t n;
    const unsigned char *p = smtpc_output(f->s, &n);
    int in_content = smtpc_timeout_kind(f->s) == SMTPC_TO_DATA_BLOCK;
    if (!(smtpc_flags(f->s) & SC_TLS) && holds_password(p, n))
        abort();            /* a password in clear */
    for (size_t i = 0; i < n; i++) {
        if (f->prev_cr != (p[i] == '\n'))
            abort();        /* a bare CR or a bare LF */
        f->prev_cr = p[i] == '\r';
    }
    if (n > 0 && !in_content && p[n - 1] != '\n')
        abort();            /* commands are only queued whole */
    /* Sometimes send it in two parts, as a short send() would. */
    if (n > 1 && (next(f) & 3) == 0) {
        smtpc_output_consumed(f->s, n / 2);
        p = smtpc_output(f->s, &n);
    }
    smtpc_output_consumed(f->s, n);
}

static void begin_message(struct fz *f)
{
    unsigned r = next(f);
    const char *to[4];
    size_t n = 1 + r % 4;
    for (size_t i = 0; i < n; i++)
        to[i] = RCPTS[(r >> (2 + 3 * i)) % 5];
    struct smtpc_message m = { (r & 0x4000) ? "" : "sender@example.com", to, n,
                               (r & 0x8000) ? 0 : 10 + r % 5000, (int)((r >> 13) & 1) };
    if (smtpc_message_begin(f->s, &m) != 0)
        abort();
    f->messages++;
}

static void stream_content(struct fz *f)
{
    const char *b = BODIES[next(f) % 5];
    size_t len = strlen(b), off = 0;
    if ((next(f) & 15) == 0) {
        smtpc_timeout(f->s);
        return;
    }
    while (off < len) {
        size_t k = 1 + next(f) % 7;
        if (k > len - off)
            k = len - off;
        size_t took = smtpc_content(f->s, b + off, k);
        drain(f);
        off += took;
    }
    if (smtpc_content_end(f->s) != 0)
        abort();
}

static void answer(struct fz *f, const struct smtpc_event *ev)
{
    static const unsigned char tok[] = "NTLMSSP\0token-bytes-of-some-length";
    unsigned r = next(f);
    switch (ev->type) {
    case SMTPC_EV_STARTTLS:
        if (r % 8 == 0)
            smtpc_tls_failed(f->s, "SEC_E_ALGORITHM_MISMATCH");
        else if (smtpc_tls_started(f->s) != 0)
            abort();
        break;
    case SMTPC_EV_NTLM:
        if (!ev->first && (ev->len == 0 || ev->len > SMTPC_TOKEN_MAX))
            abort();
        if (r % 8 == 0)
            smtpc_ntlm_failed(f->s, "SEC_E_NO_CREDENTIALS");
        else if (smtpc_ntlm_token(f->s, tok, 1 + r % (sizeof tok - 1)) != 0)
            abort();
        break;
    case SMTPC_EV_READY:
        if (f->messages < 3 && r % 4 != 0)
            begin_message(f);
        else if (smtpc_quit(f->s) != 0)
            abort();
        break;
    case SMTPC_EV_CONTENT:
        stream_content(f);
        break;
    case SMTPC_EV_MESSAGE_DONE: {
        const struct smtpc_result *m = smtpc_message_result(f->s);
        if (!m)
            abort();
        check_result(m);
        for (size_t i = 0; i < smtpc_rcpt_count(f->s); i++)
            check_result(smtpc_rcpt_result(f->s, i));
        break;
    }
    case SMTPC_EV_CLOSE: {
        const struct smtpc_result *fr = smtpc_failure(f->s);
        check_result(fr);
        if (smtpc_timeout_kind(f->s) != SMTPC_TO_NONE)
            abort();
        break;
    }
    case SMTPC_EV_AUTHENTICATED:
    case SMTPC_EV_NONE:
        break;
    }
}

/* Answers at the wrong time must be refused, never acted on. */
static void stray(struct fz *f)
{
    switch (next(f) % 8) {
    case 0: (void)smtpc_tls_started(f->s); break;
    case 1: (void)smtpc_ntlm_token(f->s, "x", 1); break;
    case 2: (void)smtpc_content_end(f->s); break;
    case 3: (void)smtpc_content(f->s, "x", 1); break;
    case 4: (void)smtpc_timeout_secs(f->s); (void)smtpc_last_reply(f->s); break;
    default: break;
    }
}

static int pump(struct fz *f)
{
    struct smtpc_event ev;
    for (int guard = 0; guard < 100000; guard++) {
        if ((next(f) & 63) == 0)
            stray(f);
        enum smtpc_event_type t = smtpc_next(f->s, &ev);
        drain(f);
        answer(f, &ev);
        drain(f);
        if (t == SMTPC_EV_CLOSE)
            return 1;
        if (t == SMTPC_EV_NONE)
            return 0;
    }
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    struct smtpc_config cfg;
    struct fz f;
    memset(&cfg, 0, sizeof cfg);
    memset(&f, 0, sizeof f);
    cfg.helo_name = "client.example";
    cfg.transcript = transcript;
    cfg.tls = (enum smtpc_tls_policy)(data[0] % 3);
    cfg.auth = (enum smtpc_auth_policy)((data[0] >> 2) % 3);
    cfg.tls_missing = (enum smtpc_policy_class)((data[0] >> 4) % 3);
    cfg.auth_missing = (enum smtpc_policy_class)((data[0] >> 6) % 3);
    cfg.mechs = data[3] & 7u;
    cfg.auth_refused = (enum smtpc_policy_class)((data[3] >> 3) % 3);
    if (data[3] & 0x40) {
        cfg.user = FZ_USER;
        cfg.password = FZ_PASSWORD;
    }
    leaks_init();
    f.rng = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16;
    f.s = smtpc_new(&cfg);
    if (!f.s)
        abort();
    pump(&f);
    data += 4;
    size -= 4;
    size_t off = 0;
    int closed = 0;
    while (off < size && !closed) {
        size_t k = 1 + next(&f) % 97;
        if (k > size - off)
            k = size - off;
        size_t took = smtpc_feed(f.s, data + off, k);
        off += took;
        closed = pump(&f);
        if (took == 0 && !closed) {
            /* every event was answered and the output drained: input must flow */
            took = smtpc_feed(f.s, data + off, k);
            if (took == 0)
                abort();
            off += took;
            closed = pump(&f);
        }
    }
    if (!closed) {
        if (next(&f) & 1)
            smtpc_timeout(f.s);
        else
            smtpc_connection_lost(f.s);
        if (pump(&f) != 1 || !smtpc_closed(f.s))
            abort();
    }
    smtpc_free(f.s);
    return 0;
}
