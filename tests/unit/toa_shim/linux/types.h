/* SPDX-License-Identifier: GPL-2.0 */
/* User-space stand-in for <linux/types.h>: compiles toa_parse.c for tests. */
#include <stdbool.h>
#include <stdint.h>
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint16_t __be16;
typedef uint32_t __be32;
