/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where differences between the kernel lines we build for
 * (6.1 and 6.12) are bridged.  Features are detected by tools/kbuild.py
 * probing the target's headers (compat_autoconf.h), never by comparing
 * version numbers, so a backported API is picked up on its own.
 */
#ifndef LVS_COMPAT_H
#define LVS_COMPAT_H

#include <lvs/compat_autoconf.h>

#endif /* LVS_COMPAT_H */
