/*
 * Layer net: what conn.c takes from net.c.
 */
#ifndef CORIO_NET_INTERNAL_H
#define CORIO_NET_INTERNAL_H

#include "../base.h"

struct sockaddr_storage;

/* Whether an address is this machine's (127/8, ::1, ::ffff:127/104). */
bool corio__addr_loopback(const struct sockaddr_storage *ss);

#endif
